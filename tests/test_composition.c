/* test_composition.c — `headscope analyze composition` (analysis/composition.c) against independent
 * references:
 *   1. every Q/K/V score on the random fixtures (raw and --fold-ln) vs the definition on explicit
 *      D×D matrices: ‖W_OV^A·M_B‖_F/(‖W_OV^A‖_F‖M_B‖_F) formed densely in double; zeros where
 *      layer(A) >= layer(B);
 *   2. the Talking-Heads components of every edge vs a dense SVD of the sender's W_OV:
 *      share_i = σ_i²‖v_iᵀM_B‖²/‖W_OV M_B‖², score_i = ‖v_iᵀM_B‖/‖M_B‖_F, largest shares first;
 *   3. the Gaussian null: E[CS] ≈ 1/√D for iid heads (rotation invariance), seeded and reproducible;
 *   4. the planted model: the induction head 1.2's top K-composition sender is the previous-token
 *      head 0.1, by a z margin far above every other sender;
 *   5. reports validate against docs/report.schema.json (planted and the three shared models);
 *   6. CLI bad input exits 2 with one line.
 */
#include "testlib.h"
#include "fixture.h"
#include "analysis/fold_ln.h"
#include "analysis/json_schema.h"
#include "analysis/lowrank.h"
#include "datasets/plant.h"
#include <cblas.h>
#include <ftw.h>
#include <lapacke.h>
#include <sys/wait.h>
#include <unistd.h>

static cJSON *g_schema;

/* C (n, n) = A (n, n)·B (n, n), row-major double. */
static void mm(const double *A, const double *B, double *C, int n) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
}
static double fro(const double *A, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += A[i] * A[i]; return sqrt(s); }

/* Explicit circuits of one head in double: OV = W_V·W_O, QK = W_Q·W_Kᵀ, QKT = its transpose. */
static void circuits(const an_head_w *w, double *OV, double *QK, double *QKT) {
    int D = w->D, HD = w->HD;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double ov = 0, qk = 0;
            for (int t = 0; t < HD; t++) {
                ov += (double)w->W_V[(size_t)i * HD + t] * w->W_O[(size_t)t * D + j];
                qk += (double)w->W_Q[(size_t)i * HD + t] * w->W_K[(size_t)j * HD + t];
            }
            OV[(size_t)i * D + j] = ov; QK[(size_t)i * D + j] = qk; QKT[(size_t)j * D + i] = qk;
        }
}

static void check_dense(const char *name, const char *path, bool fold) {
    rt_model *m;
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load", name); return; }
    const rt_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, D = c->d_model, N = L * H;
    an_composition_params p;
    an_composition_defaults(&p);
    p.fold_ln = fold; p.threshold = -1e9; p.null_samples = 20;   /* every valid pair becomes an edge */
    an_composition_result r;
    if (an_composition_compute(m, &p, &r) != HS_OK) { tl_fail("%s: compute", name); an_composition_result_free(&r); rt_model_free(m); return; }
    size_t DD = (size_t)D * D;
    double *ov = hs_xmalloc(N * DD * sizeof(double)), *rc[3];
    for (int t = 0; t < 3; t++) rc[t] = hs_xmalloc(N * DD * sizeof(double));
    an_head_w w;
    an_head_w_init(&w, c);
    for (int A = 0; A < N; A++) {
        an_head_w_load(m, A / H, A % H, fold, &w);
        circuits(&w, ov + A * DD, rc[0] + A * DD, rc[1] + A * DD);
        memcpy(rc[2] + A * DD, ov + A * DD, DD * sizeof(double));
    }
    double *P = hs_xmalloc(DD * sizeof(double)), *s = hs_xmalloc((size_t)D * sizeof(double));
    double *U = hs_xmalloc(DD * sizeof(double)), *Vt = hs_xmalloc(DD * sizeof(double)), *tmp = hs_xmalloc(DD * sizeof(double));
    double emax = 0, smax = 0, eshare = 0, escore = 0, masked = 0;
    int n_valid = 0, order_bad = 0, n_checked = 0;
    for (int A = 0; A < N; A++)
        for (int B = 0; B < N; B++)
            for (int t = 0; t < 3; t++) {
                float got = r.score[((size_t)t * N + A) * N + B];
                if (A / H >= B / H) { masked = fmax(masked, fabs(got)); continue; }
                n_valid++;
                mm(ov + A * DD, rc[t] + B * DD, P, D);
                double fa = fro(ov + A * DD, DD), fb = fro(rc[t] + B * DD, DD), cs = fro(P, DD) / (fa * fb);
                emax = fmax(emax, fabs(got - cs)); smax = fmax(smax, cs);
            }
    /* components: dense SVD of each sender's OV */
    for (int e = 0; e < r.n_edges; e++) {
        const an_comp_edge *ed = &r.edges[e];
        memcpy(tmp, ov + ed->from * DD, DD * sizeof(double));
        HS_ASSERT(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', D, D, tmp, D, s, U, D, Vt, D) == 0);
        const double *M = rc[ed->type] + ed->to * DD;
        double tot = 0, fb = fro(M, DD), best = 0;
        double *cn2 = P;   /* ‖v_iᵀM‖² for every component i */
        for (int i = 0; i < D; i++) {
            double a = 0;
            for (int j = 0; j < D; j++) {
                double x = 0;
                for (int q = 0; q < D; q++) x += Vt[(size_t)i * D + q] * M[(size_t)q * D + j];
                a += x * x;
            }
            cn2[i] = a; tot += s[i] * s[i] * a;
            best = fmax(best, s[i] * s[i] * a);
        }
        for (int k = 0; k < ed->n_comp; k++) {
            int i = ed->comp[k].index;
            eshare = fmax(eshare, fabs(ed->comp[k].share - s[i] * s[i] * cn2[i] / tot));
            escore = fmax(escore, fabs(ed->comp[k].score - sqrt(cn2[i]) / fb));
            if (k > 0 && ed->comp[k].share > ed->comp[k - 1].share) order_bad++;
        }
        if (fabs(ed->comp[0].share - best / tot) > 1e-4) order_bad++;
        n_checked++;
    }
    const char *tag = fold ? " --fold-ln" : "";
    TL_CHECK(emax <= 1e-5 && masked == 0 && r.n_edges == n_valid,
             "%s%s: all %d Q/K/V scores == dense ‖OV_A·M_B‖_F/(‖OV_A‖‖M_B‖) on explicit %dx%d matrices (max |Δ| %.1e, "
             "largest score %.3f); same/later-layer entries are 0", name, tag, n_valid, D, D, emax, smax);
    TL_CHECK(n_checked == n_valid && eshare <= 1e-4 && escore <= 1e-4 && order_bad == 0,
             "%s%s: every edge's components == dense SVD of the sender's OV (max |Δshare| %.1e, |Δscore| %.1e), the "
             "largest share first", name, tag, eshare, escore);
    an_head_w_free(&w);
    free(ov); free(rc[0]); free(rc[1]); free(rc[2]); free(P); free(s); free(U); free(Vt); free(tmp);
    an_composition_result_free(&r);
    rt_model_free(m);
}

static void check_null(void) {
    rt_model *m;
    if (rt_model_load("tests/fixtures/models/rand-gpt2", &m) != HS_OK) { tl_fail("rand-gpt2: load"); return; }
    an_composition_params p;
    an_composition_defaults(&p);
    an_composition_result a, b, c;
    HS_ASSERT(an_composition_compute(m, &p, &a) == HS_OK && an_composition_compute(m, &p, &b) == HS_OK);
    p.seed = 7;
    HS_ASSERT(an_composition_compute(m, &p, &c) == HS_OK);
    double D = m->cfg.d_model, dev = 0, sdmin = INFINITY;
    bool same = true, differ = false;
    for (int t = 0; t < 3; t++) {
        dev = fmax(dev, fabs(a.null_mean[t] * sqrt(D) - 1));
        sdmin = fmin(sdmin, a.null_sd[t]);
        same = same && a.null_mean[t] == b.null_mean[t] && a.null_sd[t] == b.null_sd[t];
        differ = differ || a.null_mean[t] != c.null_mean[t];
    }
    TL_CHECK(dev < 0.05 && sdmin > 0, "null: mean CS of iid Gaussian heads ≈ 1/√D (D=%g: Q %.4f K %.4f V %.4f vs %.4f, "
             "max |mean·√D − 1| %.3f), sd > 0", D, a.null_mean[0], a.null_mean[1], a.null_mean[2], 1 / sqrt(D), dev);
    TL_CHECK(same && differ, "null: the same seed gives identical mean/sd, seed 7 a different draw (Q mean %.5f vs %.5f)",
             a.null_mean[0], c.null_mean[0]);
    an_composition_result_free(&a); an_composition_result_free(&b); an_composition_result_free(&c);
    rt_model_free(m);
}

/* A NaN in one head's weights: one error line, HS_EBADINPUT (rand-gpt2 is F16: writable arena). */
static void check_nan(void) {
    rt_model *m;
    if (rt_model_load("tests/fixtures/models/rand-gpt2", &m) != HS_OK) { tl_fail("rand-gpt2: load"); return; }
    float *w = (float *)m->layers[0].o.w;
    w[3] = INFINITY;
    an_composition_params p;
    an_composition_defaults(&p);
    p.null_samples = 4;
    an_composition_result r;
    printf("  (the next error line on stderr is expected)\n");
    fflush(stdout);
    int e0 = hs_log_error_count();
    hs_status st = an_composition_compute(m, &p, &r);
    an_composition_result_free(&r);
    TL_CHECK(st == HS_EBADINPUT && hs_log_error_count() == e0 + 1, "an Inf in layer 0's W_O -> HS_EBADINPUT, one error line");
    rt_model_free(m);
}

static bool validate(const cJSON *r, const char *what) {
    char err[512] = "";
    bool ok = r && an_schema_validate(g_schema, g_schema, r, err, sizeof err);
    TL_CHECK(ok, "%s: report validates against docs/report.schema.json%s%s", what, ok ? "" : " — ", err);
    return ok;
}

static cJSON *run_report(const char *path, bool fold, const char *out) {
    an_ctx ctx;
    if (an_ctx_open_model(path, &ctx) != HS_OK) return NULL;
    an_composition_params p;
    an_composition_defaults(&p);
    p.fold_ln = fold;
    hs_status st = an_composition_run(&ctx, &p, out);
    an_ctx_close(&ctx);
    return st == HS_OK ? fx_load(out) : NULL;
}

static void check_planted(const char *dir, const char *out) {
    rt_model *m;
    if (rt_model_load(dir, &m) != HS_OK) { tl_fail("planted: load"); return; }
    an_composition_params p;
    an_composition_defaults(&p);
    an_composition_result r;
    HS_ASSERT(an_composition_compute(m, &p, &r) == HS_OK);
    int H = r.H, N = r.N, ind = 1 * H + 2;
    double z[4], zq = 0, zv = 0;
    int best = 0;
    for (int a = 0; a < H; a++) {
        z[a] = (r.score[((size_t)AN_COMP_K * N + a) * N + ind] - r.null_mean[AN_COMP_K]) / r.null_sd[AN_COMP_K];
        if (z[a] > z[best]) best = a;
    }
    double other = -INFINITY;
    for (int a = 0; a < H; a++) if (a != 1) other = fmax(other, z[a]);
    zq = (r.score[((size_t)AN_COMP_Q * N + 1) * N + ind] - r.null_mean[AN_COMP_Q]) / r.null_sd[AN_COMP_Q];
    zv = (r.score[((size_t)AN_COMP_V * N + 1) * N + ind] - r.null_mean[AN_COMP_V]) / r.null_sd[AN_COMP_V];
    printf("        K-composition into 1.2, z by sender: 0.0 %.1f  0.1 %.1f  0.2 %.1f  0.3 %.1f (CS 0.1→1.2 = %.3f, null %.3f ± %.4f)\n",
           z[0], z[1], z[2], z[3], r.score[((size_t)AN_COMP_K * N + 1) * N + ind], r.null_mean[AN_COMP_K], r.null_sd[AN_COMP_K]);
    TL_CHECK(best == 1 && z[1] >= 50 && z[1] - other >= 40,
             "planted: the induction head 1.2's top K-composition sender is the previous-token head 0.1 (z %.1f; best "
             "other sender z %.1f)", z[1], other);
    TL_CHECK(zq < p.threshold && zv < p.threshold,
             "planted: 0.1 → 1.2 is K-composition only (Q z %.1f, V z %.1f below the threshold %.0f: 1.2 reads TOK there)",
             zq, zv, p.threshold);
    const an_comp_edge *e = NULL;
    for (int i = 0; i < r.n_edges && !e; i++)
        if (r.edges[i].from == 1 && r.edges[i].to == ind && r.edges[i].type == AN_COMP_K) e = &r.edges[i];
    double share = 0;
    if (e) for (int i = 0; i < e->n_comp; i++) share += e->comp[i].share;
    TL_CHECK(e && e == &r.edges[0] && e->n_comp == 3 && share < 0.1,
             "planted: 0.1 → 1.2 (K) is the strongest edge of the model; it is carried by all 63 TOK components evenly "
             "(top 3 carry %.3f of the norm: no 1-3 component edge, as built)", share);
    an_composition_result_free(&r);
    rt_model_free(m);
    cJSON *rep = run_report(dir, false, out);
    validate(rep, "composition planted");
    cJSON_Delete(rep);
    rep = run_report(dir, true, out);
    validate(rep, "composition planted --fold-ln");
    cJSON_Delete(rep);
}

static void check_shared(const char *name, const char *rel, const char *out) {
    const char *path = tl_shared_path(rel);
    if (!path) { tl_skip("%s: ../shared not found", name); return; }
    for (int fold = 0; fold < 2; fold++) {
        cJSON *rep = run_report(path, fold, out);
        char what[128];
        snprintf(what, sizeof what, "composition %s%s", name, fold ? " --fold-ln" : "");
        if (validate(rep, what)) {
            const cJSON *mx = cJSON_GetObjectItem(rep, "matrix");
            int N = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "model"), "n_layers")->valueint *
                    cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "model"), "n_heads")->valueint;
            bool shape = cJSON_GetArraySize(mx) == 3;
            for (int t = 0; t < 3 && shape; t++) {
                const cJSON *g = cJSON_GetArrayItem(mx, t);
                shape = cJSON_GetArraySize(g) == N && cJSON_GetArraySize(cJSON_GetArrayItem(g, N - 1)) == N;
            }
            TL_CHECK(shape, "%s: matrix is [3][%d][%d] (heads flattened l*H+h)", what, N, N);
        }
        cJSON_Delete(rep);
    }
}


static void check_cli(void) {
    const char *hs = tl_cli();
    if (!hs) return;
    const char *bad[] = { "analyze composition", "analyze composition --model tests/fixtures/models/rand-gpt2 --top 3",
                          "analyze composition --model tests/fixtures/models/rand-gpt2 --null-samples 1",
                          "analyze composition --model tests/fixtures/models/rand-gpt2 --threshold abc",
                          "analyze composition --model /nonexistent/model", "analyze composition --model tests/fixtures/models/rand-gpt2 --seed" };
    tl_check_cli_refuses(hs, bad, sizeof bad / sizeof *bad);
    int lines, st = tl_run_cli(hs, "analyze composition --help", &lines);
    TL_CHECK(st == 0 && lines == 0, "headscope analyze composition --help -> exit 0");
    st = tl_run_cli(hs, "analyze composition --model tests/fixtures/models/rand-llama-gqa --fold-ln --threshold 2 --null-samples 50 --seed 3", &lines);
    TL_CHECK(st == 0 && lines == 0, "headscope analyze composition on rand-llama-gqa with every option -> exit 0, silent stderr");
}


int main(void) {
    hs_log_quiet(true);
    openblas_set_num_threads(1);
    g_schema = fx_load("docs/report.schema.json");
    if (!g_schema) { tl_fail("docs/report.schema.json parses"); return tl_done(); }
    check_dense("rand-gpt2", "tests/fixtures/models/rand-gpt2", false);
    check_dense("rand-gpt2", "tests/fixtures/models/rand-gpt2", true);
    check_dense("rand-llama-gqa", "tests/fixtures/models/rand-llama-gqa", false);
    check_dense("rand-qwen2", "tests/fixtures/models/rand-qwen2", true);
    check_null();
    check_nan();
    char root[] = "/tmp/test_composition.XXXXXX";
    if (!mkdtemp(root)) { tl_fail("mkdtemp"); cJSON_Delete(g_schema); return tl_done(); }
    char dir[600], out[600];
    snprintf(dir, sizeof dir, "%s/planted", root);
    snprintf(out, sizeof out, "%s/report.json", root);
    if (ds_plant_write(dir, 1) == HS_OK) check_planted(dir, out);
    else tl_fail("ds_plant_write");
    check_shared("tiny-gpt2-shakespeare", "models/tiny-gpt2-shakespeare", out);
    check_shared("tiny-llama-shakespeare", "models/tiny-llama-shakespeare", out);
    check_shared("stories260K", "models/stories260K/stories260K.bin", out);
    tl_rm_tree(root);
    check_cli();
    cJSON_Delete(g_schema);
    return tl_done();
}
