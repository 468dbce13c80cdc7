/* test_svd.c — analysis/lowrank.c, analysis/fold_ln.c and `headscope analyze svd`, each against an
 * independent reference:
 *   1. the factored SVD of A·B vs LAPACK's dense SVD of the explicitly formed product (random
 *      matrices, shapes with r below, equal to and above m and n; strided/transposed views);
 *   2. the collapsed factor C: C·Cᵀ == P·Pᵀ and ‖X·P‖_F == ‖X·C‖_F;
 *   3. stable rank against ‖P‖_F²/‖P‖_2² from the entries, effective rank against the formula on
 *      the dense spectrum, and closed-form cases;
 *   4. an_svd_compute on the random fixtures vs dense SVDs of the explicit D×D circuits (OV, QK, Ω);
 *   5. --fold-ln vs the runtime: with folded weights, the head's q/k/v are the *unscaled*
 *      normalised residual times W', hook_result loses its mean (LayerNorm), and the folded
 *      unembedding direction reproduces the logits;
 *   6. the planted model: 1.3's OV is a rank-63 projector whose singular directions map each token
 *      to itself; 1.0 attends only through its query bias (QK = 0, augmented Ω rank 1);
 *   7. reports for the shared models validate against docs/report.schema.json;
 *   8. CLI bad input exits 2 with exactly one line.
 */
#include "testlib.h"
#include "fixture.h"
#include "analysis/fold_ln.h"
#include "analysis/json_schema.h"
#include "analysis/lowrank.h"
#include "datasets/plant.h"
#include "runtime/forward.h"
#include <cblas.h>
#include <ftw.h>
#include <lapacke.h>
#include <sys/wait.h>
#include <unistd.h>

static cJSON *g_schema;

static uint64_t g_rng = 12345;
static double urand(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; z ^= z >> 31;
    return (z >> 11) * 0x1.0p-53;
}
static float *rand_mat(int rows, int cols) {
    float *a = hs_xmalloc((size_t)rows * cols * sizeof(float));
    for (size_t i = 0; i < (size_t)rows * cols; i++) a[i] = (float)(2 * urand() - 1);
    return a;
}

/* P (m, n) row-major double = A·B from views, exact in double (float inputs). */
static double *dense_product(an_view A, an_view B) {
    int m = A.rows, r = A.cols, n = B.cols;
    double *P = hs_xcalloc((size_t)m * n, sizeof(double));
    for (int i = 0; i < m; i++)
        for (int t = 0; t < r; t++) {
            double a = A.p[i * A.rs + t * A.cs];
            for (int j = 0; j < n; j++) P[(size_t)i * n + j] += a * B.p[t * B.rs + j * B.cs];
        }
    return P;
}

/* Dense SVD of P (m, n) row-major: s (min(m, n)), U (m, min) row-major, Vt (min, n) row-major. */
static void dense_svd(const double *P, int m, int n, double *s, double *U, double *Vt) {
    int k = m < n ? m : n;
    double *a = hs_xmalloc((size_t)m * n * sizeof(double));
    memcpy(a, P, (size_t)m * n * sizeof(double));
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, U, k, Vt, n);
    HS_ASSERT(info == 0);
    free(a);
}

/* ---- 1-3: the linear algebra ---- */

static void check_factored(int m, int r, int n, bool transposed_b) {
    float *A = rand_mat(m, r), *Bs = transposed_b ? rand_mat(n, r) : rand_mat(r, n);
    an_view va = an_view_rm(A, m, r), vb = transposed_b ? an_view_tr(an_view_rm(Bs, n, r)) : an_view_rm(Bs, r, n);
    int kd = m < n ? m : n, k = kd < r ? kd : r;
    double *P = dense_product(va, vb);
    double *sd = hs_xmalloc((size_t)kd * sizeof(double)), *U = hs_xmalloc((size_t)m * kd * sizeof(double)),
           *Vt = hs_xmalloc((size_t)kd * n * sizeof(double));
    dense_svd(P, m, n, sd, U, Vt);
    an_lowrank *w = an_lowrank_init(m > n ? m : n, r);
    double *s = hs_xmalloc((size_t)k * sizeof(double)), *u = hs_xmalloc((size_t)m * k * sizeof(double)),
           *v = hs_xmalloc((size_t)n * k * sizeof(double));
    int got = an_lowrank_svd(w, va, vb, s, k, u, v);
    double es = 0, ev = 0, erec = 0, pmax = 0;
    for (int j = 0; j < k; j++) es = fmax(es, fabs(s[j] - sd[j]));
    for (int j = kd > k ? k : kd; j < kd; j++) es = fmax(es, sd[j]);   /* the dense tail beyond the rank bound is 0 */
    for (int j = 0; j < k && j < 3; j++) {   /* singular vectors up to a joint sign */
        double du = 0, dv = 0;
        for (int i = 0; i < m; i++) du += u[(size_t)j * m + i] * U[(size_t)i * kd + j];
        for (int i = 0; i < n; i++) dv += v[(size_t)j * n + i] * Vt[(size_t)j * n + i];
        ev = fmax(ev, fmax(1 - fabs(du), 1 - fabs(dv)));
        if (du * dv < 0) ev = 1;
    }
    for (int i = 0; i < m; i++)
        for (int c = 0; c < n; c++) {
            double x = 0;
            for (int j = 0; j < k; j++) x += u[(size_t)j * m + i] * s[j] * v[(size_t)j * n + c];
            erec = fmax(erec, fabs(x - P[(size_t)i * n + c]));
            pmax = fmax(pmax, fabs(P[(size_t)i * n + c]));
        }
    TL_CHECK(got == k && es <= 1e-10 * sd[0] && ev <= 1e-8 && erec <= 1e-10 * pmax,
             "factored SVD of (%d,%d)·(%d,%d)%s == dense dgesdd: k=%d, max|Δσ| %.1e (σ1 %.2f), top-3 vectors 1-|cos| %.1e, "
             "reconstruction %.1e", m, r, r, n, transposed_b ? " (B as a transposed view)" : "", got, es, sd[0], ev, erec / pmax);

    /* ranks: stable rank from the entries (‖P‖_F²) and the dense σ_max; effective rank on the dense spectrum */
    double f2 = 0, h = 0, ssum = 0;
    for (size_t i = 0; i < (size_t)m * n; i++) f2 += P[i] * P[i];
    for (int j = 0; j < kd; j++) ssum += sd[j];
    for (int j = 0; j < kd; j++) if (sd[j] > 0) h -= sd[j] / ssum * log(sd[j] / ssum);
    double sr = an_stable_rank(s, k), er = an_effective_rank(s, k);
    TL_CHECK(fabs(sr - f2 / (sd[0] * sd[0])) <= 1e-9 * sr && fabs(er - exp(h)) <= 1e-8 * er,
             "(%d,%d,%d): stable rank %.6f == ‖P‖_F²/σ_max² %.6f, effective rank %.6f == exp(H(σ/Σσ)) %.6f",
             m, r, n, sr, f2 / (sd[0] * sd[0]), er, exp(h));

    /* collapsed factor: C·Cᵀ == P·Pᵀ, and ‖X·P‖_F == ‖X·C‖_F for a random X */
    int kb = n < r ? n : r;
    float *C = hs_xmalloc((size_t)m * kb * sizeof(float));
    int kc = an_lowrank_collapse_r(w, va, vb, C, kb);
    double eg = 0, gmax = 0;
    for (int i = 0; i < m; i++)
        for (int i2 = 0; i2 < m; i2++) {
            double cc = 0, pp = 0;
            for (int j = 0; j < kb; j++) cc += (double)C[(size_t)i * kb + j] * C[(size_t)i2 * kb + j];
            for (int j = 0; j < n; j++) pp += P[(size_t)i * n + j] * P[(size_t)i2 * n + j];
            eg = fmax(eg, fabs(cc - pp)); gmax = fmax(gmax, fabs(pp));
        }
    float *X = rand_mat(5, m);
    double xp = 0, xc = 0;
    for (int a = 0; a < 5; a++) {
        for (int j = 0; j < n; j++) { double t = 0; for (int i = 0; i < m; i++) t += X[a * m + i] * P[(size_t)i * n + j]; xp += t * t; }
        for (int j = 0; j < kb; j++) { double t = 0; for (int i = 0; i < m; i++) t += (double)X[a * m + i] * C[(size_t)i * kb + j]; xc += t * t; }
    }
    TL_CHECK(kc == kb && eg <= 1e-5 * gmax && fabs(sqrt(xp) - sqrt(xc)) <= 1e-5 * sqrt(xp),
             "(%d,%d,%d): collapsed C (%d,%d): max|CCᵀ−PPᵀ| %.1e rel, ‖XP‖_F %.6f == ‖XC‖_F %.6f",
             m, r, n, m, kc, eg / gmax, sqrt(xp), sqrt(xc));
    an_lowrank_free(w);
    free(A); free(Bs); free(P); free(sd); free(U); free(Vt); free(s); free(u); free(v); free(C); free(X);
}

static void check_linalg(void) {
    check_factored(40, 8, 30, false);
    check_factored(64, 16, 64, true);
    check_factored(6, 10, 9, false);     /* m < r: rank bound m */
    check_factored(12, 10, 5, true);     /* n < r */
    check_factored(30, 30, 30, false);   /* r = m = n */
    check_factored(1, 3, 4, false);
    double eq[4] = { 2, 2, 2, 2 }, one[3] = { 5, 0, 0 }, zero[3] = { 0, 0, 0 };
    TL_CHECK(fabs(an_stable_rank(eq, 4) - 4) < 1e-12 && fabs(an_effective_rank(eq, 4) - 4) < 1e-12 &&
             an_stable_rank(one, 3) == 1 && an_effective_rank(one, 3) == 1 && an_stable_rank(zero, 3) == 0 &&
             an_effective_rank(zero, 3) == 0,
             "closed forms: 4 equal σ -> stable = effective = 4; rank 1 -> 1; zero matrix -> 0");
    float A[6] = { 1, 2, NAN, 4, 5, 6 }, B[6] = { 1, 0, 0, 1, 1, 1 };
    an_lowrank *w = an_lowrank_init(3, 2);
    double s[2];
    float C[6];
    TL_CHECK(an_lowrank_svd(w, an_view_rm(A, 3, 2), an_view_rm(B, 2, 3), s, 0, NULL, NULL) == -1 &&
             an_lowrank_collapse_r(w, an_view_rm(A, 3, 2), an_view_rm(B, 2, 3), C, 2) == -1,
             "a NaN in the factors -> -1 (the pass turns it into one error line)");
    an_lowrank_free(w);
}

/* ---- 4: an_svd_compute vs dense circuits on the random fixtures ---- */

static double max_sv_err(const double *got, const double *P, int m, int n, int k) {
    int kd = m < n ? m : n;
    double *s = hs_xmalloc((size_t)kd * sizeof(double)), *U = hs_xmalloc((size_t)m * kd * sizeof(double)),
           *Vt = hs_xmalloc((size_t)kd * n * sizeof(double));
    dense_svd(P, m, n, s, U, Vt);
    double e = 0;
    for (int j = 0; j < k; j++) e = fmax(e, fabs(got[j] - s[j]));
    e /= s[0] > 0 ? s[0] : 1;
    free(s); free(U); free(Vt);
    return e;
}

static void check_compute(const char *name, const char *path) {
    rt_model *m;
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load", name); return; }
    int D = m->cfg.d_model, HD = m->cfg.d_head, L = m->cfg.n_layers, H = m->cfg.n_heads;
    an_svd_params p;
    an_svd_defaults(&p);
    an_svd_result r;
    hs_status st = an_svd_compute(m, &p, &r);
    double eov = 0, eqk = 0, eaug = 0;
    float *aq = hs_xmalloc((size_t)(D + 1) * HD * sizeof(float)), *ak = hs_xmalloc((size_t)(D + 1) * HD * sizeof(float));
    for (int l = 0; l < L && st == HS_OK; l++)
        for (int h = 0; h < H; h++) {
            an_mat Q, K, V, O;
            an_head_matrix(m, l, h, AN_W_Q, &Q); an_head_matrix(m, l, h, AN_W_K, &K);
            an_head_matrix(m, l, h, AN_W_V, &V); an_head_matrix(m, l, h, AN_W_O, &O);
            size_t o = ((size_t)l * H + h) * r.k;
            double *P = dense_product(an_view_rm(V.w, D, HD), an_view_rm(O.w, HD, D));
            eov = fmax(eov, max_sv_err(r.ov_sv + o, P, D, D, r.k)); free(P);
            P = dense_product(an_view_rm(Q.w, D, HD), an_view_tr(an_view_rm(K.w, D, HD)));
            eqk = fmax(eqk, max_sv_err(r.qk_sv + o, P, D, D, r.k)); free(P);
            memcpy(aq, Q.w, (size_t)D * HD * sizeof(float)); an_head_bias(m, l, h, AN_W_Q, aq + (size_t)D * HD);
            memcpy(ak, K.w, (size_t)D * HD * sizeof(float)); an_head_bias(m, l, h, AN_W_K, ak + (size_t)D * HD);
            P = dense_product(an_view_rm(aq, D + 1, HD), an_view_tr(an_view_rm(ak, D + 1, HD)));
            eaug = fmax(eaug, max_sv_err(r.qk_aug_sv + o, P, D + 1, D + 1, r.k)); free(P);
            an_mat_free(&Q); an_mat_free(&K); an_mat_free(&V); an_mat_free(&O);
        }
    TL_CHECK(st == HS_OK && r.k == (HD < D ? HD : D) && eov <= 1e-9 && eqk <= 1e-9 && eaug <= 1e-9,
             "%s: every head's OV, QK and augmented-QK singular values (%d each) == dense dgesdd of the explicit "
             "%dx%d / %dx%d circuit (max rel err %.1e / %.1e / %.1e)", name, r.k, D, D, D + 1, D + 1, eov, eqk, eaug);
    an_svd_result_free(&r);
    free(aq); free(ak);
    rt_model_free(m);
}

/* ---- 5: --fold-ln against the runtime ---- */

typedef struct { int T, D, HD, H, KV; float *resid, *q, *k, *v, *res, *z, *final, *logits; int l; } fold_rec;

static void on_fold(const rt_hook_event *ev, void *user) {
    fold_rec *r = user;
    size_t n = (size_t)ev->rows * ev->cols;
    float *dst = NULL;
    if (ev->point == RT_HOOK_RESID_PRE) dst = r->resid;
    else if (ev->point == RT_HOOK_Q) dst = r->q + (size_t)ev->head * r->T * r->HD;
    else if (ev->point == RT_HOOK_K) dst = r->k + (size_t)ev->head * r->T * r->HD;
    else if (ev->point == RT_HOOK_V) dst = r->v + (size_t)ev->head * r->T * r->HD;
    else if (ev->point == RT_HOOK_Z) dst = r->z + (size_t)ev->head * r->T * r->HD;
    else if (ev->point == RT_HOOK_RESULT) dst = r->res + (size_t)ev->head * r->T * r->D;
    else if (ev->point == RT_HOOK_RESID_POST) dst = r->final;
    else if (ev->point == RT_HOOK_LOGITS) dst = r->logits;
    if (dst) memcpy(dst, ev->data, n * sizeof(float));
}

/* x̂ (D) = the norm without its gain: (x − μ)/σ (LayerNorm) or x/rms (RMSNorm). */
static void normalise(const rt_model *m, const float *x, double *out) {
    int D = m->cfg.d_model;
    double mu = 0, ss = 0;
    if (m->cfg.norm == RT_NORM_LAYER) for (int i = 0; i < D; i++) mu += x[i];
    mu /= D;
    for (int i = 0; i < D; i++) ss += (x[i] - mu) * (x[i] - mu);
    double sc = 1.0 / sqrt(ss / D + m->cfg.norm_eps);
    for (int i = 0; i < D; i++) out[i] = (x[i] - mu) * sc;
}

static void check_fold(const char *name, const char *path) {
    if (!path) { tl_skip("%s: ../shared not found", name); return; }
    rt_model *m;
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load", name); return; }
    const rt_config *c = &m->cfg;
    int T = 9, D = c->d_model, HD = c->d_head, H = c->n_heads, KV = c->n_kv_heads, V = c->vocab_size;
    int l = c->n_layers - 1, grp = H / KV;
    fold_rec r = { T, D, HD, H, KV, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, l };
    r.resid = hs_xmalloc((size_t)T * D * sizeof(float)); r.final = hs_xmalloc((size_t)T * D * sizeof(float));
    r.q = hs_xmalloc((size_t)H * T * HD * sizeof(float)); r.z = hs_xmalloc((size_t)H * T * HD * sizeof(float));
    r.k = hs_xmalloc((size_t)KV * T * HD * sizeof(float)); r.v = hs_xmalloc((size_t)KV * T * HD * sizeof(float));
    r.res = hs_xmalloc((size_t)H * T * D * sizeof(float)); r.logits = hs_xmalloc((size_t)T * V * sizeof(float));
    int ids[9], lsel[1] = { l };
    for (int t = 0; t < T; t++) ids[t] = (t * 31 + 7) % V;
    rt_hook_point pts[] = { RT_HOOK_RESID_PRE, RT_HOOK_Q, RT_HOOK_K, RT_HOOK_V, RT_HOOK_Z, RT_HOOK_RESULT, RT_HOOK_RESID_POST };
    rt_hook_req reqs[8];
    for (int i = 0; i < 7; i++) { rt_hook_req q = { pts[i], lsel, 1, NULL, 0, 0, 0, on_fold, &r, false }; reqs[i] = q; }
    rt_hook_req lg = { RT_HOOK_LOGITS, NULL, 0, NULL, 0, 0, 0, on_fold, &r, false };
    reqs[7] = lg;
    rt_hook_spec spec = { reqs, 8 };
    rt_forward *f = rt_forward_init(m);
    rt_seq sq = { ids, T, NULL };
    HS_ASSERT(rt_forward_run(f, &sq, 1, &spec, NULL) == HS_OK);
    rt_forward_free(f);

    an_head_w w;
    an_head_w_init(&w, c);
    double *xh = hs_xmalloc((size_t)T * D * sizeof(double));
    for (int t = 0; t < T; t++) normalise(m, r.resid + (size_t)t * D, xh + (size_t)t * D);
    double eq = 0, eo = 0, sq_ = 0, so = 0;
    for (int h = 0; h < H; h++) {
        an_head_w_load(m, l, h, true, &w);
        const float *Ws[3] = { w.W_Q, w.W_K, w.W_V }, *bs[3] = { w.b_Q, w.b_K, w.b_V };
        const float *refs[3] = { r.q + (size_t)h * T * HD, r.k + (size_t)(h / grp) * T * HD, r.v + (size_t)(h / grp) * T * HD };
        for (int which = 0; which < 3; which++)
            for (int t = 0; t < T; t++)
                for (int j = 0; j < HD; j++) {
                    double a = bs[which][j];
                    for (int i = 0; i < D; i++) a += xh[(size_t)t * D + i] * Ws[which][(size_t)i * HD + j];
                    double ref = refs[which][(size_t)t * HD + j];
                    eq = fmax(eq, fabs(a - ref)); sq_ = fmax(sq_, fabs(ref));
                }
        for (int t = 0; t < T; t++) {   /* z·W_O' == hook_result minus its mean over D (LayerNorm), else itself */
            const float *res = r.res + ((size_t)h * T + t) * D;
            double mu = 0;
            if (c->norm == RT_NORM_LAYER) for (int j = 0; j < D; j++) mu += res[j];
            mu /= D;
            for (int j = 0; j < D; j++) {
                double a = 0;
                for (int i = 0; i < HD; i++) a += (double)r.z[((size_t)h * T + t) * HD + i] * w.W_O[(size_t)i * D + j];
                eo = fmax(eo, fabs(a - (res[j] - mu))); so = fmax(so, fabs(res[j]));
            }
        }
    }
    /* the unembedding: logits − b_f·W_U == fold(x̂_final)·W_U, x̂ the gain-free final norm */
    float *dir = hs_xmalloc((size_t)D * sizeof(float));
    const float *WU = an_unembed_rows(m);
    double eu = 0, su = 0;
    for (int t = 0; t < T; t++) {
        double *xf = hs_xmalloc((size_t)D * sizeof(double));
        normalise(m, r.final + (size_t)t * D, xf);
        for (int i = 0; i < D; i++) dir[i] = (float)xf[i];
        an_fold_unembed_dir(m, true, dir, dir);
        for (int v = 0; v < V; v += 7) {
            double a = 0, b = 0;
            for (int i = 0; i < D; i++) {
                a += (double)dir[i] * WU[(size_t)v * D + i];
                if (m->ln_final.b) b += (double)m->ln_final.b[i] * WU[(size_t)v * D + i];
            }
            double ref = r.logits[(size_t)t * V + v] - b;
            eu = fmax(eu, fabs(a - ref)); su = fmax(su, fabs(ref));
        }
        free(xf);
    }
    TL_CHECK(eq <= 1e-4 * sq_ && eo <= 1e-4 * so && eu <= 1e-4 * su,
             "%s (%s) --fold-ln, layer %d: x̂·W' + b' == hook_q/k/v (rel %.1e), z·W_O' == hook_result%s (rel %.1e), "
             "fold(x̂_final)·W_U == logits − b_f·W_U (rel %.1e)", name, c->norm == RT_NORM_LAYER ? "LayerNorm" : "RMSNorm",
             l, eq / sq_, c->norm == RT_NORM_LAYER ? " − mean" : "", eo / so, eu / su);
    an_head_w_free(&w);
    free(xh); free(dir);
    free(r.resid); free(r.final); free(r.q); free(r.z); free(r.k); free(r.v); free(r.res); free(r.logits);
    rt_model_free(m);
}

/* ---- 6-7: reports ---- */

static bool validate(const cJSON *r, const char *what) {
    char err[512] = "";
    bool ok = r && an_schema_validate(g_schema, g_schema, r, err, sizeof err);
    TL_CHECK(ok, "%s: report validates against docs/report.schema.json%s%s", what, ok ? "" : " — ", err);
    return ok;
}

/* Every head: exactly HD singular values per list, descending, non-negative. */
static bool sv_lists_ok(const cJSON *rep, int HD) {
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(rep, "heads")) {
        const char *keys[3] = { "ov_sv", "qk_sv", "qk_aug_sv" };
        for (int i = 0; i < 3; i++) {
            const cJSON *a = cJSON_GetObjectItem(h, keys[i]), *e;
            if (cJSON_GetArraySize(a) != HD) return false;
            double prev = INFINITY;
            cJSON_ArrayForEach(e, a) { if (e->valuedouble > prev || e->valuedouble < 0) return false; prev = e->valuedouble; }
        }
    }
    return true;
}

static cJSON *run_report(const char *path, bool fold, const char *out) {
    an_ctx ctx;
    if (an_ctx_open_model(path, &ctx) != HS_OK) return NULL;
    if (rt_model_open_tokenizer(ctx.m, NULL, &ctx.tok) != HS_OK) ctx.tok = NULL;
    an_svd_params p;
    an_svd_defaults(&p);
    p.fold_ln = fold;
    hs_status st = an_svd_run(&ctx, &p, out);
    an_ctx_close(&ctx);
    return st == HS_OK ? fx_load(out) : NULL;
}

static void check_shared(const char *name, const char *rel, bool fold, const char *out) {
    const char *path = tl_shared_path(rel);
    if (!path) { tl_skip("%s: ../shared not found", name); return; }
    rt_model *m;
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load", name); return; }
    int HD = m->cfg.d_head;
    rt_model_free(m);
    cJSON *rep = run_report(path, fold, out);
    char what[128];
    snprintf(what, sizeof what, "svd %s%s", name, fold ? " --fold-ln" : "");
    if (validate(rep, what)) {
        const cJSON *first = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(rep, "heads"), 0), "ov_top_tokens");
        TL_CHECK(sv_lists_ok(rep, HD) && cJSON_GetArraySize(first) == 3,
                 "%s: every head lists exactly %d (= head_dim) descending singular values per circuit, 3 OV directions", what, HD);
    }
    cJSON_Delete(rep);
}

static const cJSON *head_of(const cJSON *rep, const char *name) {
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(rep, "heads"))
        if (strcmp(cJSON_GetObjectItem(h, "name")->valuestring, name) == 0) return h;
    return NULL;
}

static bool same_strings(const cJSON *a, const cJSON *b) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b) || cJSON_GetArraySize(a) == 0) return false;
    for (int i = 0; i < cJSON_GetArraySize(a); i++)
        if (strcmp(cJSON_GetArrayItem(a, i)->valuestring, cJSON_GetArrayItem(b, i)->valuestring) != 0) return false;
    return true;
}

static void print_tokens(const char *label, const cJSON *a) {
    printf("        %s:", label);
    const cJSON *e;
    cJSON_ArrayForEach(e, a) printf(" '%s'", e->valuestring);
    printf("\n");
}

static void check_planted(const char *dir, const char *out) {
    cJSON *rep = run_report(dir, false, out);
    if (!validate(rep, "svd planted (seed 1)")) { cJSON_Delete(rep); return; }
    const cJSON *cp = head_of(rep, "1.3"), *ind = head_of(rep, "1.2"), *prev = head_of(rep, "0.1"), *bos = head_of(rep, "1.0");
    const cJSON *sv = cJSON_GetObjectItem(cp, "ov_sv");
    double s0 = cJSON_GetArrayItem(sv, 0)->valuedouble, s62 = cJSON_GetArrayItem(sv, 62)->valuedouble,
           s63 = cJSON_GetArrayItem(sv, 63)->valuedouble, sr = cJSON_GetObjectItem(cp, "ov_stable_rank")->valuedouble;
    TL_CHECK(fabs(s0 - 1) < 1e-4 && fabs(s62 - 1) < 1e-4 && s63 < 1e-5 && fabs(sr - 63) < 1e-2,
             "planted 1.3 (copying): OV singular values σ1 = %.6f .. σ63 = %.6f, σ64 = %.1e, stable rank %.4f: the "
             "centred TOK projector (rank 63)", s0, s62, s63, sr);
    /* identity on the TOK channel: each top direction reads and writes the same vector, so the tokens
     * at either end of the input (W_E·u) are the tokens at the same end of the output (W_U·v) */
    int same = 0, n = 0;
    double cmin = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(cp, "ov_top_tokens")) {
        const cJSON *in = cJSON_GetObjectItem(d, "input"), *outp = cJSON_GetObjectItem(d, "output");
        same += same_strings(cJSON_GetObjectItem(in, "pos"), cJSON_GetObjectItem(outp, "pos")) &&
                same_strings(cJSON_GetObjectItem(in, "neg"), cJSON_GetObjectItem(outp, "neg"));
        cmin = fmin(cmin, cJSON_GetObjectItem(d, "cos_uv")->valuedouble);
        if (n++ == 0) {
            print_tokens("1.3 direction 0 input+ ", cJSON_GetObjectItem(in, "pos"));
            print_tokens("1.3 direction 0 output+", cJSON_GetObjectItem(outp, "pos"));
            print_tokens("1.3 direction 0 input- ", cJSON_GetObjectItem(in, "neg"));
            print_tokens("1.3 direction 0 output-", cJSON_GetObjectItem(outp, "neg"));
        }
    }
    TL_CHECK(n == 3 && same == 3 && cmin > 0.9999,
             "planted 1.3: all %d top OV directions map their top/bottom tokens to themselves (input list == output "
             "list at both ends), cos(u, v) >= %.6f", n, cmin);
    double si = cJSON_GetArrayItem(cJSON_GetObjectItem(ind, "ov_sv"), 0)->valuedouble;
    double cprev = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(prev, "ov_top_tokens"), 0), "cos_uv")->valuedouble;
    TL_CHECK(fabs(si - 4) < 1e-3 && fabs(cprev) < 0.05,
             "planted 1.2 (induction) OV σ1 = %.4f (IND_OV = 4, the same copy); 0.1 (previous-token) reads TOK and writes "
             "PREV: cos(u1, v1) = %.4f", si, cprev);
    double qk0 = cJSON_GetArrayItem(cJSON_GetObjectItem(bos, "qk_sv"), 0)->valuedouble;
    const cJSON *aug = cJSON_GetObjectItem(bos, "qk_aug_sv");
    double a0 = cJSON_GetArrayItem(aug, 0)->valuedouble, a1 = cJSON_GetArrayItem(aug, 1)->valuedouble;
    TL_CHECK(qk0 == 0 && a0 > 1 && a1 < 1e-6 * a0 && cJSON_GetArraySize(cJSON_GetObjectItem(bos, "qk_top_tokens")) == 0,
             "planted 1.0 (BOS sink) attends through its query bias only: QK σ1 = %g (no directions listed), augmented "
             "Ω σ1 = %.3f, σ2 = %.1e (rank 1)", qk0, a0, a1);
    cJSON_Delete(rep);
}

/* A NaN in one head's weights: the pass fails with exactly one error line naming the head. The
 * rand-gpt2 fixture is F16, so its weights live in the model's writable arena. */
static void check_nan(void) {
    rt_model *m;
    if (rt_model_load("tests/fixtures/models/rand-gpt2", &m) != HS_OK) { tl_fail("rand-gpt2: load"); return; }
    rt_linear *qkv = &m->layers[1].qkv;
    float *w = (float *)qkv->w;
    float keep = w[5];
    w[5] = NAN;   /* (in 5, out 0): W_Q of head 1.0 */
    an_svd_params p;
    an_svd_defaults(&p);
    an_svd_result r;
    printf("  (the next error line on stderr is expected)\n");
    fflush(stdout);
    int e0 = hs_log_error_count();
    hs_status st = an_svd_compute(m, &p, &r);
    an_svd_result_free(&r);
    TL_CHECK(st == HS_EBADINPUT && hs_log_error_count() == e0 + 1, "a NaN in head 1.0's W_Q -> HS_EBADINPUT, one error line");
    w[5] = keep;
    rt_model_free(m);
}

/* ---- 8: CLI ---- */

static void check_cli(void) {
    const char *hs = tl_cli();
    if (!hs) return;
    const char *bad[] = { "analyze svd", "analyze svd --model tests/fixtures/models/rand-gpt2 --bogus",
                          "analyze svd --model tests/fixtures/models/rand-gpt2 --top 0",
                          "analyze svd --model /nonexistent/model", "analyze svd --model" };
    tl_check_cli_refuses(hs, bad, sizeof bad / sizeof *bad);
    int lines, st = tl_run_cli(hs, "analyze svd --help", &lines);
    TL_CHECK(st == 0 && lines == 0, "headscope analyze svd --help -> exit 0");
    st = tl_run_cli(hs, "analyze svd --model tests/fixtures/models/rand-gpt2 --fold-ln --top 2", &lines);
    TL_CHECK(st == 0 && lines == 0, "headscope analyze svd on rand-gpt2 (no tokenizer: ids) -> exit 0, silent stderr");
}


int main(void) {
    hs_log_quiet(true);
    openblas_set_num_threads(1);
    g_schema = fx_load("docs/report.schema.json");
    if (!g_schema) { tl_fail("docs/report.schema.json parses"); return tl_done(); }
    check_linalg();
    check_nan();
    check_compute("rand-gpt2", "tests/fixtures/models/rand-gpt2");
    check_compute("rand-llama-gqa", "tests/fixtures/models/rand-llama-gqa");
    check_compute("rand-qwen2", "tests/fixtures/models/rand-qwen2");
    check_fold("rand-gpt2", "tests/fixtures/models/rand-gpt2");
    check_fold("rand-qwen2", "tests/fixtures/models/rand-qwen2");
    check_fold("tiny-gpt2-shakespeare", tl_shared_path("models/tiny-gpt2-shakespeare"));
    check_fold("tiny-llama-shakespeare", tl_shared_path("models/tiny-llama-shakespeare"));

    char root[] = "/tmp/test_svd.XXXXXX";
    if (!mkdtemp(root)) { tl_fail("mkdtemp"); cJSON_Delete(g_schema); return tl_done(); }
    char dir[600], out[600];
    snprintf(dir, sizeof dir, "%s/planted", root);
    snprintf(out, sizeof out, "%s/report.json", root);
    if (ds_plant_write(dir, 1) == HS_OK) check_planted(dir, out);
    else tl_fail("ds_plant_write");
    check_shared("tiny-gpt2-shakespeare", "models/tiny-gpt2-shakespeare", false, out);
    check_shared("tiny-gpt2-shakespeare", "models/tiny-gpt2-shakespeare", true, out);
    check_shared("tiny-llama-shakespeare", "models/tiny-llama-shakespeare", false, out);
    check_shared("stories260K", "models/stories260K/stories260K.bin", false, out);
    check_shared("stories260K", "models/stories260K/stories260K.bin", true, out);
    tl_rm_tree(root);
    check_cli();
    cJSON_Delete(g_schema);
    return tl_done();
}
