/* test_maps.c — the MAPS pass against independent references and a planted truth.
 *
 * 1. topk: target ranks and top-k lists against a brute-force sort, with exact ties planted.
 * 2. E′ = MLP_0(LN2_0(W_E)) against the runtime's own forward pass (blocks.0.hook_resid_mid
 *    overwritten with W_E rows, blocks.0.hook_mlp_out read back).
 * 3. Scores against a naive loop: M = E″·(W_V W_O)·W_U formed densely in double (every row for the
 *    small random checkpoints and the planted model, the relations' rows for the shared models),
 *    each row sorted, hit counts compared exactly — early-exit and exhaustive modes both; the
 *    salient tokens and their mapped tokens against the same dense computation.
 * 4. Planted model: copying head 1.3 (and 1.2, which also copies) score >= 0.9, fillers <= 0.1;
 *    dynamic (no-context) validation agrees, Pearson r high.
 * 5. Relation files: loading, single-token filtering on the real GPT-2 tokenizer and on the
 *    SentencePiece / llama2.c vocabularies, prompts; bad files -> one error line, exit 2 (CLI).
 * 6. Every report validates against docs/report.schema.json.
 * 7. The GPU path (--device cuda) on the CPU-reference backend: the ranking kernel's reference
 *    (rt_cuda_ref_rank_count) against topk.c with planted ties, and an_maps_scores_gpu against
 *    an_maps_scores — identical hit counts on the planted model and the shared models, every
 *    shipped relation (tests/test_cuda.c `maps` runs the same on the device).
 */
#include "testlib.h"
#include "fixture.h"
#include "analysis/json_schema.h"
#include "analysis/maps.h"
#include "analysis/topk.h"
#include "analysis/weights.h"
#include "datasets/plant.h"
#include "datasets/relations.h"
#include "runtime/cuda/rt_cuda_ops.h"
#include "runtime/forward.h"
#include <cblas.h>
#include <sys/wait.h>
#include <unistd.h>

static cJSON *g_schema;
static char g_tmp[64];

static uint64_t g_rng = 12345;
static uint64_t rnd(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float frand(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0) * 2 - 1); }

static void write_file(const char *path, const char *text) { FILE *f = fopen(path, "w"); if (f) { fputs(text, f); fclose(f); } }

static cJSON *check_report(const char *path, const char *what) {
    cJSON *r = fx_load(path);
    char err[512] = "unreadable";
    bool ok = r && an_schema_validate(g_schema, g_schema, r, err, sizeof err);
    TL_CHECK(ok, "%s: report validates against docs/report.schema.json%s%s", what, ok ? "" : " — ", ok ? "" : err);
    return r;
}

/* ------------------------------------------------------------------ 1. topk */

/* rank of t in (value desc, id asc) order among row[0..V), brute force */
static int brute_rank(const double *row, int V, int t, int sign) {
    int r = 0;
    for (int v = 0; v < V; v++)
        if (v != t && (sign * row[v] > sign * row[t] || (row[v] == row[t] && v < t))) r++;
    return r;
}

static void test_topk(void) {
    enum { R = 37, D = 16, V = 3000 };   /* V > the first block, so early exit really skips */
    float *Y = malloc(R * D * sizeof(float)), *W = malloc((size_t)V * D * sizeof(float));
    /* values are small multiples of 1/8, so every logit is exact in float and in double alike:
     * sgemm and the brute force agree bit for bit, and ties are real ties */
    for (int i = 0; i < R * D; i++) Y[i] = (float)((int)(frand() * 8)) / 8;
    for (int v = 0; v < V; v++)
        for (int i = 0; i < D; i++)   /* every 7th row repeats an earlier one: exact ties */
            W[(size_t)v * D + i] = (v % 7 == 6) ? W[(size_t)(v / 3) * D + i] : (float)((int)(frand() * 8)) / 8;
    int tgt[R], up[R], down[R], up2[R], down2[R];
    for (int r = 0; r < R; r++) tgt[r] = (int)(rnd() % V);
    tgt[0] = 6 * 7 - 1;   /* a duplicated row as target: its twin is a tie */
    an_topk_target_ranks(Y, R, D, W, V, tgt, 5, true, up, down);
    an_topk_target_ranks(Y, R, D, W, V, tgt, 5, false, up2, down2);
    int bad = 0, bad_early = 0, ties = 0;
    double *row = malloc(V * sizeof(double));
    for (int r = 0; r < R; r++) {
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int i = 0; i < D; i++) s += (double)Y[r * D + i] * W[(size_t)v * D + i];
            row[v] = s;
        }
        for (int v = 0; v < V; v++) ties += v != tgt[r] && row[v] == row[tgt[r]];
        int bu = brute_rank(row, V, tgt[r], 1), bd = brute_rank(row, V, tgt[r], -1);
        bad += up[r] != bu || down[r] != bd;
        bad_early += (up2[r] < 5) != (bu < 5) || (down2[r] < 5) != (bd < 5) || (up2[r] < 5 && up2[r] != bu);
    }
    TL_CHECK(bad == 0, "topk: exhaustive target ranks (up and down) equal a brute-force sort on %d rows x %d tokens, %d exact ties (%d differ)",
             R, V, ties, bad);
    TL_CHECK(bad_early == 0, "topk: early-exit hit/miss at cap 5 equals the brute force (%d differ)", bad_early);
    int k = 7, *ids = malloc(R * k * sizeof(int));
    float *vals = malloc(R * k * sizeof(float));
    an_topk_rows(Y, R, D, W, V, k, ids, vals);
    int badk = 0;
    for (int r = 0; r < R; r++) {
        for (int v = 0; v < V; v++) {
            double s = 0;
            for (int i = 0; i < D; i++) s += (double)Y[r * D + i] * W[(size_t)v * D + i];
            row[v] = s;
        }
        for (int j = 0; j < k; j++) badk += brute_rank(row, V, ids[r * k + j], 1) != j;
    }
    TL_CHECK(badk == 0, "topk: top-%d lists (ties by lower id) equal the brute-force order (%d wrong entries)", k, badk);
    /* the tie rule itself: Y = one row, W rows 0 and 1 identical -> 0 ranks before 1 */
    float y1[2] = { 1, 0 }, w2[6] = { 1, 0, 1, 0, 0.5f, 0 };
    int t1 = 1, u1, d1, id2[2];
    an_topk_target_ranks(y1, 1, 2, w2, 3, &t1, 1, true, &u1, &d1);
    an_topk_rows(y1, 1, 2, w2, 3, 2, id2, NULL);
    TL_CHECK(u1 == 1 && d1 == 2 && id2[0] == 0 && id2[1] == 1, "topk: an exact tie goes to the lower id (rank %d, bottom %d, top2 %d %d)", u1, d1, id2[0], id2[1]);
    free(Y); free(W); free(row); free(ids); free(vals);
}

/* ------------------------------------------------------------------ 2. E′ through the runtime */

typedef struct { const rt_model *m; int **ids; float *out; int chunk; } mlp_probe;

static void put_embedding(const rt_hook_event *ev, void *user) {
    mlp_probe *p = user;
    int D = p->m->cfg.d_model;
    for (int i = 0; i < ev->rows; i++)
        memcpy(ev->data + (size_t)i * D, p->m->tok_embed + (size_t)p->ids[ev->seq][i] * D, D * sizeof(float));
}
static void take_mlp_out(const rt_hook_event *ev, void *user) {
    mlp_probe *p = user;
    memcpy(p->out + (size_t)p->ids[ev->seq][0] * ev->cols, ev->data, (size_t)ev->rows * ev->cols * sizeof(float));
}

/* E′ of every token (V, D) from the runtime: resid_mid of layer 0 := W_E[token], read mlp_out. */
static float *runtime_first_mlp(const rt_model *m) {
    int V = m->cfg.vocab_size, D = m->cfg.d_model, T = m->cfg.n_ctx < 128 ? m->cfg.n_ctx : 128;
    int ns = (V + T - 1) / T;
    float *out = malloc((size_t)V * D * sizeof(float));
    int **ids = malloc(ns * sizeof(int *));
    rt_seq *seqs = malloc(ns * sizeof(rt_seq));
    for (int s = 0; s < ns; s++) {
        int n = V - s * T < T ? V - s * T : T;
        ids[s] = malloc(n * sizeof(int));
        for (int i = 0; i < n; i++) ids[s][i] = s * T + i;
        seqs[s] = (rt_seq){ ids[s], n, NULL };
    }
    mlp_probe p = { m, ids, out, T };
    int l0 = 0;
    rt_hook_req reqs[2] = {
        { RT_HOOK_RESID_MID, &l0, 1, NULL, 0, 0, 0, put_embedding, &p, false },
        { RT_HOOK_MLP_OUT, &l0, 1, NULL, 0, 0, 0, take_mlp_out, &p, false },
    };
    rt_hook_spec spec = { reqs, 2 };
    rt_forward *f = rt_forward_init(m);
    hs_status rc = rt_forward_run(f, seqs, ns, &spec, NULL);
    rt_forward_free(f);
    for (int s = 0; s < ns; s++) free(ids[s]);
    free(ids); free(seqs);
    if (rc != HS_OK) { free(out); return NULL; }
    return out;
}

/* ------------------------------------------------------------------ 3. naive dense MAPS */

typedef struct { const char *name; int k; int n; int *src, *tgt; } rel;

static rel make_rel(const char *name, int k, int n, int V, bool copy) {
    rel r = { name, k, n, malloc(n * sizeof(int)), malloc(n * sizeof(int)) };
    for (int i = 0; i < n; i++) {
        r.src[i] = copy ? (int)((i * 7919L) % V) : (int)(rnd() % V);
        r.tgt[i] = copy ? r.src[i] : (int)(rnd() % V);
    }
    return r;
}

/* W_VO (D, D) in double for head (l, h) */
static double *wvo_double(const rt_model *m, int l, int h) {
    int D = m->cfg.d_model, HD = m->cfg.d_head;
    an_mat v, o;
    an_head_matrix(m, l, h, AN_W_V, &v);
    an_head_matrix(m, l, h, AN_W_O, &o);
    double *w = calloc((size_t)D * D, sizeof(double));
    for (int i = 0; i < D; i++)
        for (int k = 0; k < HD; k++) {
            double a = v.w[(size_t)i * HD + k];
            for (int j = 0; j < D; j++) w[(size_t)i * D + j] += a * o.w[(size_t)k * D + j];
        }
    an_mat_free(&v); an_mat_free(&o);
    return w;
}

/* row (V) = e (D) · W_VO · W_U in double; a (D) scratch */
static void m_row(const rt_model *m, const double *wvo, const float *e, double *a, double *row) {
    int D = m->cfg.d_model, V = m->cfg.vocab_size;
    const float *U = an_unembed_rows(m);
    for (int j = 0; j < D; j++) a[j] = 0;
    for (int i = 0; i < D; i++) { double x = e[i]; if (x != 0) for (int j = 0; j < D; j++) a[j] += x * wvo[(size_t)i * D + j]; }
    for (int v = 0; v < V; v++) { double s = 0; const float *u = U + (size_t)v * D; for (int j = 0; j < D; j++) s += a[j] * u[j]; row[v] = s; }
}

/* order of token ids in one row of M: value descending, ties by lower id (the library's order) */
static const double *g_row;
static int cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (g_row[x] != g_row[y]) return g_row[x] > g_row[y] ? -1 : 1;
    return x - y;
}

/* MAPS by brute force for every head, compared with the library. full: form all V rows of M
 * (V×V) densely and sort each row; otherwise form the rows the relations and salient tokens need. */
static void naive_compare(const char *what, const rt_model *m, bool first_mlp, const float *eprime, const rel *rels, int n_rels, bool full) {
    int L = m->cfg.n_layers, H = m->cfg.n_heads, D = m->cfg.d_model, V = m->cfg.vocab_size, LH = L * H;
    an_maps *mp = an_maps_init(m, first_mlp);
    double *row = malloc((size_t)V * sizeof(double)), *a = malloc(D * sizeof(double));
    double *M = full ? malloc((size_t)V * V * sizeof(double)) : NULL;      /* (V, V) */
    int *pos = full ? malloc((size_t)V * V * sizeof(int)) : NULL;          /* (V, V) rank of token v in row s */
    int *ord = malloc(V * sizeof(int));
    int hit_bad = 0, hit_total = 0;
    double *sc = malloc(LH * sizeof(double)), *su = malloc(LH * sizeof(double));
    double *sc2 = malloc(LH * sizeof(double)), *su2 = malloc(LH * sizeof(double));
    double *nh = calloc((size_t)n_rels * LH, sizeof(double)), *ns = calloc((size_t)n_rels * LH, sizeof(double));
    /* salient reference */
    enum { NS = 5, NM = 3 };
    int *tok = malloc(LH * NS * sizeof(int)), *map = malloc(LH * NS * NM * sizeof(int));
    float *sal = malloc(LH * NS * sizeof(float));
    an_maps_salient(mp, NS, NM, tok, sal, map);
    int sal_bad = 0, map_bad = 0;
    double *salv = malloc(V * sizeof(double));
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            int lh = l * H + h;
            double *wvo = wvo_double(m, l, h);
            const float *E = (first_mlp && l > 0) ? eprime : m->tok_embed;
            if (full)   /* M densely, every row sorted: pos = the rank of every token in every row */
                for (int s = 0; s < V; s++) {
                    m_row(m, wvo, E + (size_t)s * D, a, M + (size_t)s * V);
                    for (int v = 0; v < V; v++) ord[v] = v;
                    g_row = M + (size_t)s * V;
                    qsort(ord, V, sizeof(int), cmp_desc);
                    for (int j = 0; j < V; j++) pos[(size_t)s * V + ord[j]] = j;
                }
            for (int ri = 0; ri < n_rels; ri++)
                for (int i = 0; i < rels[ri].n; i++) {
                    int s = rels[ri].src[i], t = rels[ri].tgt[i];
                    const double *r = full ? M + (size_t)s * V : row;
                    if (!full) m_row(m, wvo, E + (size_t)s * D, a, row);
                    nh[ri * LH + lh] += (full ? pos[(size_t)s * V + t] : brute_rank(r, V, t, 1)) < rels[ri].k;
                    ns[ri * LH + lh] += brute_rank(r, V, t, -1) < rels[ri].k;
                }
            /* saliency of every token: ‖E″[s] W_VO‖ / ‖E″[s]‖ */
            for (int s = 0; s < V; s++) {
                const float *e = E + (size_t)s * D;
                double ne = 0, na = 0;
                for (int j = 0; j < D; j++) a[j] = 0;
                for (int i = 0; i < D; i++) { ne += (double)e[i] * e[i]; for (int j = 0; j < D; j++) a[j] += e[i] * wvo[(size_t)i * D + j]; }
                for (int j = 0; j < D; j++) na += a[j] * a[j];
                salv[s] = ne > 0 ? sqrt(na / ne) : -1;
            }
            for (int i = 0; i < NS; i++) {   /* i-th by the library = i-th by brute force, in value */
                int t = tok[lh * NS + i], best = 0;
                for (int s = 0; s < V; s++) best += s != t && salv[s] > salv[t];
                sal_bad += t < 0 || best != i || fabs(salv[t] - sal[lh * NS + i]) > 1e-4 * (salv[t] + 1e-30);
                if (t < 0) continue;
                if (full) {
                    for (int j = 0; j < NM; j++) map_bad += pos[(size_t)t * V + map[(lh * NS + i) * NM + j]] != j;
                } else {
                    m_row(m, wvo, E + (size_t)t * D, a, row);
                    for (int j = 0; j < NM; j++) map_bad += brute_rank(row, V, map[(lh * NS + i) * NM + j], 1) != j;
                }
            }
            free(wvo);
        }
    for (int ri = 0; ri < n_rels; ri++) {
        an_maps_relation r = { .name = rels[ri].name, .k = rels[ri].k, .n = rels[ri].n, .src = rels[ri].src, .tgt = rels[ri].tgt };
        an_maps_scores(mp, &r, false, sc, su);
        an_maps_scores(mp, &r, true, sc2, su2);
        for (int lh = 0; lh < LH; lh++) {
            int lib = (int)lround(sc[lh] * r.n), libs = (int)lround(su[lh] * r.n);
            hit_bad += lib != (int)nh[ri * LH + lh] || libs != (int)ns[ri * LH + lh];
            hit_bad += sc[lh] != sc2[lh] || su[lh] != su2[lh];
            hit_total += lib + libs;
        }
    }
    TL_CHECK(hit_bad == 0, "%s (first-mlp %s): relation and suppression hits of %d heads x %d relations equal the naive dense loop "
             "(%d hits in all; early exit = exhaustive)%s", what, first_mlp ? "on" : "off", LH, n_rels, hit_total,
             full ? ", every row of M formed" : "");
    TL_CHECK(sal_bad == 0, "%s (first-mlp %s): top-%d salient tokens per head equal the brute-force saliency over %d tokens (%d differ)",
             what, first_mlp ? "on" : "off", NS, V, sal_bad);
    TL_CHECK(map_bad == 0, "%s (first-mlp %s): top-%d mapped tokens of each salient token equal the sorted M row (%d differ)",
             what, first_mlp ? "on" : "off", NM, map_bad);
    an_maps_free(mp);
    free(row); free(a); free(M); free(pos); free(ord); free(sc); free(su); free(sc2); free(su2); free(nh); free(ns);
    free(tok); free(map); free(sal); free(salv);
}

static void test_naive_model(const char *what, const char *path) {
    rt_model *m;
    if (!path) { tl_skip("%s: ../shared is absent", what); return; }
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load %s", what, path); return; }
    int V = m->cfg.vocab_size, D = m->cfg.d_model;
    float *ep = runtime_first_mlp(m);
    if (!ep) { tl_fail("%s: runtime forward for E'", what); rt_model_free(m); return; }
    /* E′ from maps.c against the runtime's own MLP */
    an_maps *mp = an_maps_init(m, true);
    int *ids = malloc(V * sizeof(int));
    for (int i = 0; i < V; i++) ids[i] = i;
    float *mine = malloc((size_t)V * D * sizeof(float));
    an_maps_embed(mp, 1, ids, V, mine);
    double mx = 0, ref = 0;
    for (size_t i = 0; i < (size_t)V * D; i++) { double d = fabs(mine[i] - ep[i]); if (d > mx) mx = d; if (fabs(ep[i]) > ref) ref = fabs(ep[i]); }
    TL_CHECK(mx <= 1e-5 * ref + 1e-7, "%s: E' = MLP_0(LN2_0(W_E)) equals the forward pass's blocks.0.hook_mlp_out on W_E rows (max |diff| %.1e, max |E'| %.2f)",
             what, mx, ref);
    an_maps_embed(mp, 0, ids, V, mine);
    TL_CHECK(memcmp(mine, m->tok_embed, (size_t)V * D * sizeof(float)) == 0, "%s: layer 0 uses the raw embedding W_E", what);
    an_maps_free(mp);
    bool full = V <= 512;
    rel rels[3] = { make_rel("copy", 1, 60, V, true), make_rel("rand10", 10, 60, V, false), make_rel("rand3", 3, 40, V, false) };
    naive_compare(what, m, true, ep, rels, 3, full);
    naive_compare(what, m, false, ep, rels, 3, full);
    for (int i = 0; i < 3; i++) { free(rels[i].src); free(rels[i].tgt); }
    free(ids); free(mine); free(ep);
    rt_model_free(m);
}

/* ------------------------------------------------------------------ 4. planted */

static double head_score(const cJSON *grid, const char *name) {
    int l, h;
    if (sscanf(name, "%d.%d", &l, &h) != 2) return NAN;
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetArrayItem(grid, l), h);
    return v ? v->valuedouble : NAN;
}

static void test_planted(void) {
    char dir[128], relf[160], out[160], pj[160];
    snprintf(dir, sizeof dir, "%s/planted", g_tmp);
    snprintf(relf, sizeof relf, "%s/byte_copying.json", g_tmp);
    snprintf(out, sizeof out, "%s/planted_maps.json", g_tmp);
    snprintf(pj, sizeof pj, "%s/planted.json", dir);
    if (ds_plant_write(dir, 1) != HS_OK) { tl_fail("planted: write the model"); return; }
    /* The planted vocabulary is bytes: copying pairs are single characters without a leading
     * space (with one, only the 7 merged tokens like " t" are single tokens). */
    char text[4096] = "{\"leading_space\": false, \"template\": \"{}\", \"pairs\": [";
    const char *chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (const char *c = chars; *c; c++) {
        char e[32]; snprintf(e, sizeof e, "%s[\"%c\", \"%c\"]", c == chars ? "" : ", ", *c, *c);
        strcat(text, e);
    }
    strcat(text, "]}");
    write_file(relf, text);
    cJSON *truth = fx_load(pj);
    an_ctx ctx;
    ds_relation *rels = NULL; int nr = 0;
    ds_pairs q = { 0 };
    if (!truth || ds_relations_load(relf, &rels, &nr) != HS_OK || an_ctx_open_model(dir, &ctx) != HS_OK) {
        tl_fail("planted: load planted.json, the relation and the model"); cJSON_Delete(truth); ds_relations_free(rels, nr); return;
    }
    if (rt_model_open_tokenizer(ctx.m, NULL, &ctx.tok) != HS_OK || ds_relation_resolve(&rels[0], ctx.tok, true, &q) != HS_OK) {
        tl_fail("planted: tokenizer and pairs"); goto done;
    }
    TL_CHECK(q.n == 62 && q.k == 1, "planted: 62 single-byte copying pairs, k=1 (name contains \"copying\"): %d, k=%d", q.n, q.k);
    an_maps_relation r = { .name = rels[0].name, .k = q.k, .n = q.n, .src = q.src, .tgt = q.tgt,
                           .prompt = (const int *const *)q.prompt, .prompt_len = q.prompt_len, .src_pos = q.src_pos,
                           .source = rels[0].path, .template_text = q.template_text, .n_listed = q.n_listed };
    an_maps_params p; an_maps_defaults(&p);
    /* The planted MLPs are near-zero random noise (docs/planted.md), so MAPS's E′ — the MLP output
     * alone — carries no token identity; the planted heads read W_E. Hence --first-mlp off. */
    p.first_mlp = false;
    p.validate = true;
    p.n_salient = 3; p.n_mapped = 2;
    TL_CHECK(an_maps_run(&ctx, &p, &r, 1, out) == HS_OK, "planted: the maps pass runs (first-mlp off, validate)");
    cJSON *rep = check_report(out, "planted maps");
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "relations"), "byte_copying");
    const cJSON *sc = cJSON_GetObjectItem(e, "scores"), *dn = cJSON_GetObjectItem(e, "dynamic_no_context");
    const char *cp = cJSON_GetStringValue(cJSON_GetObjectItem(truth, "copying"));
    const cJSON *also = cJSON_GetArrayItem(cJSON_GetObjectItem(truth, "also_copying"), 0);
    double s13 = head_score(sc, cp ? cp : "?"), s12 = head_score(sc, also ? also->valuestring : "?");
    TL_CHECK(s13 >= 0.9, "planted: copying head %s scores %.3f >= 0.9", cp ? cp : "?", s13);
    TL_CHECK(s12 >= 0.9, "planted: %s (induction, also copies — expected) scores %.3f >= 0.9", also ? also->valuestring : "?", s12);
    double worst = 0; char wn[16] = "";
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(truth, "filler")) {
        double s = head_score(sc, f->valuestring);
        if (!(s <= worst)) { worst = s; snprintf(wn, sizeof wn, "%s", f->valuestring); }
    }
    TL_CHECK(worst <= 0.1, "planted: every filler head scores <= 0.1 (worst %s %.3f)", wn, worst);
    const cJSON *top = cJSON_GetObjectItem(e, "top_heads");
    TL_CHECK(cJSON_GetArraySize(top) >= 2 && cp && strcmp(cJSON_GetArrayItem(top, 0)->valuestring, cp) == 0,
             "planted: top_heads starts with %s (the tie with 1.2 goes to the later head, as MAPS ranks)", cp ? cp : "?");
    double d13 = head_score(dn, cp ? cp : "?");
    const cJSON *rn = cJSON_GetObjectItem(e, "pearson_r_no_context");
    /* the schema's maps branch rejects what breaks the contract */
    char err[256];
    cJSON *bad = cJSON_Duplicate(rep, true);
    cJSON *be = cJSON_GetObjectItem(cJSON_GetObjectItem(bad, "relations"), "byte_copying");
    cJSON_ReplaceItemInObject(be, "pearson_r", cJSON_CreateString("high"));
    bool rej1 = !an_schema_validate(g_schema, g_schema, bad, err, sizeof err);
    cJSON_DeleteItemFromObject(be, "suppression");
    cJSON_ReplaceItemInObject(be, "pearson_r", cJSON_CreateNumber(0.5));
    bool rej2 = !an_schema_validate(g_schema, g_schema, bad, err, sizeof err);
    cJSON_Delete(bad);
    TL_CHECK(rej1 && rej2, "planted: the schema rejects a string pearson_r and a relation without suppression (%s)", err);
    TL_CHECK(d13 >= 0.9 && cJSON_IsNumber(rn) && rn->valuedouble > 0.9,
             "planted: dynamic w/o context: %s scores %.3f, Pearson r static vs dynamic %.3f > 0.9", cp ? cp : "?", d13,
             cJSON_IsNumber(rn) ? rn->valuedouble : NAN);
    /* with MAPS's E′ (first-mlp on) only layer 1 changes: layer 0 always reads W_E */
    an_maps *mp = an_maps_init(ctx.m, true), *mp0 = an_maps_init(ctx.m, false);
    double on[8], off[8], su[8];
    an_maps_scores(mp, &r, false, on, su);
    an_maps_scores(mp0, &r, false, off, su);
    TL_CHECK(memcmp(on, off, 4 * sizeof(double)) == 0, "planted: layer-0 scores are the same with first-mlp on and off");
    an_maps_free(mp); an_maps_free(mp0);
    cJSON_Delete(rep);
done:
    ds_pairs_free(&q);
    ds_relations_free(rels, nr);
    an_ctx_close(&ctx);
    cJSON_Delete(truth);
}

/* ------------------------------------------------------------------ 5. relation files */

static int count_kept(const ds_relation *rels, int n, const char *name, const rt_tokenizer *tok, int *listed) {
    for (int i = 0; i < n; i++)
        if (strcmp(rels[i].name, name) == 0) {
            ds_pairs q;
            if (ds_relation_resolve(&rels[i], tok, false, &q) != HS_OK) return -1;
            int k = q.n;
            *listed = q.n_listed;
            ds_pairs_free(&q);
            return k;
        }
    return -1;
}

static void test_relations_gpt2(void) {
    rt_tokenizer *tok;
    if (rt_tokenizer_load_json("tests/fixtures/tokenizers/gpt2.tokenizer.json", &tok) != HS_OK) { tl_fail("gpt2 tokenizer fixture loads"); return; }
    ds_relation *rels = NULL; int n = 0;
    TL_CHECK(ds_relations_load("datasets/relations", &rels, &n) == HS_OK && n >= 10, "datasets/relations loads (%d relations)", n);
    static const char *knowledge[] = { "country_capital", "adj_comparative", "verb_past_tense", "antonym" };
    for (int i = 0; i < 4; i++) {
        int listed = 0, kept = count_kept(rels, n, knowledge[i], tok, &listed);
        TL_CHECK(listed >= 60 && kept >= 30 && kept * 2 > listed,
                 "gpt2 tokenizer: %s keeps %d of %d listed pairs as single tokens with a leading space (most, and >= 30: MAPS's minimum)",
                 knowledge[i], kept, listed);
    }
    int listed = 0, kept = count_kept(rels, n, "copying", tok, &listed);
    TL_CHECK(kept == 500 && listed > 500, "gpt2 tokenizer: copying generates 500 pairs from %d single-token vocabulary words", listed);
    kept = count_kept(rels, n, "name_copying", tok, &listed);
    TL_CHECK(kept * 2 > listed, "gpt2 tokenizer: name_copying keeps %d of %d", kept, listed);
    kept = count_kept(rels, n, "next_number", tok, &listed);
    TL_CHECK(kept >= 250, "gpt2 tokenizer: next_number keeps %d of %d", kept, listed);
    int paris = ds_single_token(tok, "Paris", true), kath = ds_single_token(tok, "Kathmandu", true);
    int *ids, ni;
    rt_tokenizer_encode(tok, " Paris", 6, false, &ids, &ni);
    TL_CHECK(ni == 1 && paris == ids[0] && kath == -1, "gpt2 tokenizer: \" Paris\" is one token (%d), \" Kathmandu\" is not (%d)", paris, kath);
    free(ids);
    /* a prompt: the whole text tokenizes naturally, the source sits where it says */
    for (int i = 0; i < n; i++)
        if (strcmp(rels[i].name, "country_capital") == 0) {
            ds_pairs q;
            if (ds_relation_resolve(&rels[i], tok, true, &q) != HS_OK || q.n == 0) { tl_fail("country_capital prompts"); break; }
            char *txt; size_t len;
            rt_tokenizer_decode(tok, q.prompt[0], q.prompt_len[0], &txt, &len);
            int *full, nf;
            rt_tokenizer_encode(tok, txt, len, true, &full, &nf);
            TL_CHECK(strcmp(txt, "The capital of France is") == 0 && q.prompt[0][q.src_pos[0]] == q.src[0] && nf == q.prompt_len[0] &&
                     memcmp(full, q.prompt[0], nf * sizeof(int)) == 0,
                     "gpt2 tokenizer: prompt \"%s\" = the natural tokenization, source at position %d", txt, q.src_pos[0]);
            free(txt); free(full);
            ds_pairs_free(&q);
        }
    ds_relations_free(rels, n);
    rt_tokenizer_free(tok);
}

/* The SentencePiece (Metaspace) and llama2.c tokenizers add their own dummy-prefix space. */
static void test_relations_spaced(void) {
    const char *paths[2] = { tl_shared_path("models/tiny-llama-shakespeare"), tl_shared_path("models/stories260K/stories260K.bin") };
    const char *spaced[2] = { "\xe2\x96\x81the", " the" };
    for (int i = 0; i < 2; i++) {
        if (!paths[i]) { tl_skip("spaced tokenizers: ../shared is absent"); return; }
        rt_model *m; rt_tokenizer *tok;
        if (rt_model_load(paths[i], &m) != HS_OK || rt_model_open_tokenizer(m, NULL, &tok) != HS_OK) { tl_fail("load %s", paths[i]); return; }
        int id = ds_single_token(tok, "the", true);
        const char *piece = id >= 0 ? rt_tokenizer_piece(tok, id) : "(none)";
        TL_CHECK(id >= 0 && strcmp(piece, spaced[i]) == 0, "%s: \"the\" with a leading space is the single token '%s' (id %d)", paths[i], piece, id);
        ds_relation g = { .name = "copying", .generated = true, .max_pairs = 500, .leading_space = true };
        ds_pairs q;
        ds_relation_resolve(&g, tok, true, &q);
        int bad = 0;
        for (int j = 0; j < q.n; j++) bad += q.prompt[j][q.src_pos[j]] != q.src[j] || q.src[j] != q.tgt[j];
        TL_CHECK(q.n >= 50 && bad == 0, "%s: copying generates %d vocabulary words; every prompt holds its source token (%d bad)", paths[i], q.n, bad);
        ds_pairs_free(&q);
        rt_tokenizer_free(tok);
        rt_model_free(m);
    }
}

/* Bad files: exactly one error line naming the file (and the entry), HS_EBADINPUT. */
static void test_bad_files(void) {
    static const struct { const char *name, *text, *expect; } cases[] = {
        { "notjson", "[[\"a\", \"b\"],", "not valid JSON" },
        { "notpair", "[[\"a\", \"b\"], [\"c\", \"d\"], [\"e\"]]", "entry 2" },
        { "triple", "[[\"a\", \"b\", \"c\"]]", "entry 0" },
        { "number", "[[\"a\", \"b\"], [\"c\", 4]]", "entry 1" },
        { "emptystr", "[[\"\", \"b\"]]", "entry 0" },
        { "ctrl", "[[\"a\\nb\", \"b\"]]", "entry 0" },
        { "empty", "[]", "no pairs" },
        { "scalar", "42", "list of [source, target] pairs" },
        { "unknown", "{\"pairs\": [[\"a\", \"b\"]], \"kk\": 3}", "unknown member" },
        { "badk", "{\"pairs\": [[\"a\", \"b\"]], \"k\": 0}", "\"k\"" },
        { "badtmpl", "{\"pairs\": [[\"a\", \"b\"]], \"template\": \"no slot\"}", "template" },
        { "twoslots", "{\"pairs\": [[\"a\", \"b\"]], \"template\": \"{} and {}\"}", "template" },
        { "both", "{\"pairs\": [[\"a\", \"b\"]], \"generate\": \"vocab_words\"}", "exactly one" },
        { "badgen", "{\"generate\": \"numbers\"}", "generate" },
        { "pairsobj", "{\"pairs\": {\"a\": \"b\"}}", "list of [source, target]" },
    };
    int ok = 0, n_cases = (int)(sizeof cases / sizeof *cases);
    char path[256];
    for (int i = 0; i < n_cases; i++) {
        snprintf(path, sizeof path, "%s/%s.json", g_tmp, cases[i].name);
        write_file(path, cases[i].text);
        ds_relation *rels = NULL; int n = 0;
        int e0 = hs_log_error_count();
        hs_status rc = ds_relations_load(path, &rels, &n);
        int lines = hs_log_error_count() - e0;
        if (rc == HS_EBADINPUT && lines == 1 && n == 0) ok++;
        else tl_fail("bad relation file %s: status %d, %d error lines, %d loaded", cases[i].name, rc, lines, n);
        ds_relations_free(rels, n);
    }
    TL_CHECK(ok == n_cases, "%d malformed relation files: each rejected with exactly one error line", n_cases);
    /* a missing path, a folder without relations, a relation loaded twice */
    ds_relation *rels = NULL; int n = 0;
    int e0 = hs_log_error_count();
    hs_status rc1 = ds_relations_load("/nonexistent/rel.json", &rels, &n);
    snprintf(path, sizeof path, "%s/emptydir", g_tmp);
    mkdir(path, 0755);
    hs_status rc2 = ds_relations_load(path, &rels, &n);
    TL_CHECK(rc1 == HS_EIO && rc2 == HS_EBADINPUT && hs_log_error_count() - e0 == 2 && n == 0,
             "missing path -> HS_EIO, folder without *.json -> HS_EBADINPUT, one line each");
    e0 = hs_log_error_count();
    hs_status a = ds_relations_load("datasets/relations/antonym.json", &rels, &n);
    hs_status b = ds_relations_load("datasets/relations/antonym.json", &rels, &n);
    TL_CHECK(a == HS_OK && b == HS_EBADINPUT && n == 1 && hs_log_error_count() - e0 == 1, "the same relation twice is rejected (one line), the first stays loaded");
    ds_relations_free(rels, n);
}

/* Run the CLI; returns the exit status, *lines = stderr lines, the text of stderr in err. */
static int run_cli(const char *args, int *lines, char *err, size_t n) {
    char cmd[2048], ef[160];
    snprintf(ef, sizeof ef, "%s/stderr.txt", g_tmp);
    snprintf(cmd, sizeof cmd, "bin/headscope analyze maps %s >/dev/null 2>%s", args, ef);
    int st = system(cmd);
    FILE *f = fopen(ef, "r");
    size_t k = f ? fread(err, 1, n - 1, f) : 0;
    err[k] = 0;
    if (f) fclose(f);
    *lines = 0;
    for (size_t i = 0; i < k; i++) *lines += err[i] == '\n';
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    if (access("bin/headscope", X_OK) != 0) { tl_skip("CLI: bin/headscope not built"); return; }
    char args[1024], err[4096], bad[160], out[160], planted[160];
    int lines;
    snprintf(bad, sizeof bad, "%s/notpair.json", g_tmp);   /* written by test_bad_files */
    snprintf(planted, sizeof planted, "%s/planted", g_tmp);
    snprintf(args, sizeof args, "--model %s --relations %s", planted, bad);
    int st = run_cli(args, &lines, err, sizeof err);
    TL_CHECK(st == 2 && lines == 1 && strstr(err, "notpair.json") && strstr(err, "entry 2"),
             "CLI: bad relation file -> exit 2, one line naming the file and the entry (%d, %d lines: %.200s)", st, lines, err);
    snprintf(args, sizeof args, "--model %s --relations datasets/relations --first-mlp maybe", planted);
    st = run_cli(args, &lines, err, sizeof err);
    TL_CHECK(st == 2 && lines == 1, "CLI: --first-mlp maybe -> exit 2, one line (%d, %d)", st, lines);
    snprintf(args, sizeof args, "--relations datasets/relations");
    st = run_cli(args, &lines, err, sizeof err);
    TL_CHECK(st == 2 && lines == 1, "CLI: no --model -> exit 2, one line (%d, %d)", st, lines);
    snprintf(args, sizeof args, "--model %s/nope --relations datasets/relations", g_tmp);
    st = run_cli(args, &lines, err, sizeof err);
    TL_CHECK(st == 2 && lines == 1, "CLI: missing model -> exit 2, one line (%d, %d)", st, lines);
    /* the shipped relations on the planted model (byte vocabulary: most relations keep no pair) */
    snprintf(out, sizeof out, "%s/cli_maps.json", g_tmp);
    snprintf(args, sizeof args, "--model %s --relations datasets/relations --validate --quiet --out %s", planted, out);
    st = run_cli(args, &lines, err, sizeof err);
    TL_CHECK(st == 0 && lines == 0, "CLI: maps on the planted model with every shipped relation, --validate (exit %d, %d stderr lines)", st, lines);
    cJSON *r = check_report(out, "CLI planted, shipped relations");
    const cJSON *cc = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "relations"), "country_capital");
    TL_CHECK(cJSON_GetObjectItem(cc, "n_pairs") && cJSON_GetObjectItem(cc, "n_pairs")->valueint == 0 &&
             cJSON_GetArraySize(cJSON_GetObjectItem(cc, "scores")) == 0,
             "CLI: a relation with no single-token pair reports n_pairs 0 and empty grids");
    cJSON_Delete(r);
}

static void test_shared_reports(void) {
    static const char *models[] = { "models/tiny-gpt2-shakespeare", "models/tiny-llama-shakespeare", "models/stories260K/stories260K.bin" };
    for (int i = 0; i < 3; i++) {
        const char *p = tl_shared_path(models[i]);
        if (!p) { tl_skip("shared reports: ../shared is absent"); return; }
        an_ctx ctx;
        ds_relation *rels = NULL; int nr = 0;
        if (ds_relations_load("datasets/relations", &rels, &nr) != HS_OK || an_ctx_open_model(p, &ctx) != HS_OK) { tl_fail("open %s", p); return; }
        rt_model_open_tokenizer(ctx.m, NULL, &ctx.tok);
        ds_pairs *q = calloc(nr, sizeof *q);
        an_maps_relation *mr = calloc(nr, sizeof *mr);
        for (int j = 0; j < nr; j++) {
            ds_relation_resolve(&rels[j], ctx.tok, true, &q[j]);
            mr[j] = (an_maps_relation){ .name = rels[j].name, .k = q[j].k, .n = q[j].n, .src = q[j].src, .tgt = q[j].tgt,
                                        .prompt = (const int *const *)q[j].prompt, .prompt_len = q[j].prompt_len,
                                        .src_pos = q[j].src_pos, .template_text = q[j].template_text, .n_listed = q[j].n_listed,
                                        .n_multi_token = q[j].n_multi_token, .n_duplicate = q[j].n_duplicate };
        }
        an_maps_params pp; an_maps_defaults(&pp);
        pp.validate = true;
        char out[160];
        snprintf(out, sizeof out, "%s/shared%d.json", g_tmp, i);
        hs_log_quiet(true);
        hs_status rc = an_maps_run(&ctx, &pp, mr, nr, out);
        hs_log_quiet(false);
        TL_CHECK(rc == HS_OK, "%s: maps over every shipped relation with --validate", models[i]);
        cJSON *r = check_report(out, models[i]);
        const cJSON *cp = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "relations"), "copying");
        const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "heads"), 0);
        TL_CHECK(cJSON_GetObjectItem(cp, "n_pairs")->valueint >= 50 && cJSON_GetArraySize(cJSON_GetObjectItem(h0, "salient")) == 15 &&
                 cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(h0, "salient"), 0), "mapped")) == 5,
                 "%s: copying has %d pairs; each head lists 15 salient tokens with 5 mapped tokens", models[i],
                 cJSON_GetObjectItem(cp, "n_pairs")->valueint);
        cJSON_Delete(r);
        for (int j = 0; j < nr; j++) ds_pairs_free(&q[j]);
        free(q); free(mr);
        ds_relations_free(rels, nr);
        an_ctx_close(&ctx);
    }
}


/* ------------------------------------------------------------------ 7. GPU path (emulated) */

/* The rank kernel's reference, block by block, against topk.c's exhaustive counts (ties planted). */
static void test_rank_ref(void) {
    int R = 37, D = 16, V = 3000, blk = 700;
    float *Y = malloc((size_t)R * D * sizeof(float)), *W = malloc((size_t)V * D * sizeof(float));
    for (int i = 0; i < R * D; i++) Y[i] = frand();
    for (int i = 0; i < V * D; i++) W[i] = frand();
    for (int v = 100; v < 140; v++) memcpy(W + (size_t)v * D, W + (size_t)(v % 7) * D, D * sizeof(float));   /* exact ties */
    int *tg = malloc(R * sizeof(int)), *up = malloc(R * sizeof(int)), *down = malloc(R * sizeof(int)), *cnt = calloc(4 * R, sizeof(int));
    for (int r = 0; r < R; r++) tg[r] = r % 3 == 0 ? 100 + r % 40 : (int)(rnd() % V);
    double *lt = malloc(R * sizeof(double)), *yn = malloc(R * sizeof(double));
    float *C = malloc((size_t)R * blk * sizeof(float));
    an_topk_target_ranks(Y, R, D, W, V, tg, 1, true, up, down);
    rt_cuda_ref_target_dots(Y, R, D, W, tg, lt, yn);
    for (int v0 = 0; v0 < V; v0 += blk) {
        int w = V - v0 < blk ? V - v0 : blk;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, w, D, 1.0f, Y, D, W + (size_t)v0 * D, D, 0.0f, C, w);
        rt_cuda_ref_rank_count(C, R, w, v0, tg, lt, yn, 1e-3, cnt);
    }
    int bad = 0, sure_bad = 0;
    for (int r = 0; r < R; r++) {
        if (cnt[4 * r] != up[r] || cnt[4 * r + 1] != down[r]) bad++;
        if (cnt[4 * r + 2] > up[r] || cnt[4 * r + 3] > down[r]) sure_bad++;   /* sure counts are subsets */
    }
    TL_CHECK(bad == 0 && sure_bad == 0, "GPU rank reference: above/below counts over %d-token blocks equal topk.c's exhaustive ranks on %d rows "
             "with planted exact ties (%d differ), sure counts never exceed them (%d)", blk, R, bad, sure_bad);
    free(Y); free(W); free(tg); free(up); free(down); free(cnt); free(lt); free(yn); free(C);
}

/* an_maps_scores_gpu (emulate) against an_maps_scores on every relation that keeps pairs. */
static void gpu_parity_model(const char *what, const char *path, const char *extra_rel) {
    if (!path) { tl_skip("%s: GPU path: ../shared is absent", what); return; }
    an_ctx ctx;
    ds_relation *rels = NULL; int nr = 0;
    if (ds_relations_load("datasets/relations", &rels, &nr) != HS_OK || (extra_rel && ds_relations_load(extra_rel, &rels, &nr) != HS_OK) ||
        an_ctx_open_model(path, &ctx) != HS_OK) { tl_fail("%s: GPU path: open model and relations", what); ds_relations_free(rels, nr); return; }
    rt_model_open_tokenizer(ctx.m, NULL, &ctx.tok);
    int LH = ctx.m->cfg.n_layers * ctx.m->cfg.n_heads;
    double *a = malloc(LH * sizeof(double)), *b = malloc(LH * sizeof(double)), *c = malloc(LH * sizeof(double)), *d = malloc(LH * sizeof(double));
    for (int fm = 0; fm < 2; fm++) {
        an_maps *mp = an_maps_init(ctx.m, fm == 0);
        an_maps_gpu *gs = NULL;
        hs_log_quiet(true);
        hs_status st = an_maps_gpu_init(mp, 0, true, &gs);
        hs_log_quiet(false);
        if (st != HS_OK) { tl_fail("%s: an_maps_gpu_init (emulate)", what); an_maps_free(mp); continue; }
        int n_rel = 0, rows = 0, host = 0, diff = 0, hits = 0;
        char first_bad[128] = "";
        for (int j = 0; j < nr; j++) {
            ds_pairs q;
            if (ds_relation_resolve(&rels[j], ctx.tok, false, &q) != HS_OK) continue;
            if (q.n > 0) {
                an_maps_relation r = { .name = rels[j].name, .k = q.k, .n = q.n, .src = q.src, .tgt = q.tgt };
                int nh = 0;
                an_maps_scores(mp, &r, false, a, b);
                if (an_maps_scores_gpu(gs, &r, c, d, &nh) != HS_OK) { diff++; snprintf(first_bad, sizeof first_bad, "%s: GPU path failed", r.name); }
                else if (memcmp(a, c, LH * sizeof(double)) || memcmp(b, d, LH * sizeof(double))) {
                    diff++;
                    if (!first_bad[0]) snprintf(first_bad, sizeof first_bad, "%s differs", r.name);
                }
                for (int i = 0; i < LH; i++) hits += (int)lround(a[i] * q.n) + (int)lround(b[i] * q.n);
                n_rel++; rows += q.n * LH; host += nh;
            }
            ds_pairs_free(&q);
        }
        TL_CHECK(diff == 0 && n_rel > 0, "%s: first-mlp %s: GPU path (emulated) = CPU scores and suppression exactly on %d relations, "
                 "%d rows, %d hits; %d rows re-ranked on the host (margin) %s", what, fm == 0 ? "on" : "off", n_rel, rows, hits, host, first_bad);
        an_maps_gpu_free(gs);
        an_maps_free(mp);
    }
    free(a); free(b); free(c); free(d);
    ds_relations_free(rels, nr);
    an_ctx_close(&ctx);
}

static void test_gpu_emulated(void) {
    char dir[128], relf[160], out[160];
    snprintf(dir, sizeof dir, "%s/planted", g_tmp);
    snprintf(relf, sizeof relf, "%s/byte_copying.json", g_tmp);
    snprintf(out, sizeof out, "%s/planted_gpu.json", g_tmp);
    test_rank_ref();
    gpu_parity_model("planted (byte copying + shipped relations)", dir, relf);
    gpu_parity_model("tiny-gpt2-shakespeare", tl_shared_path("models/tiny-gpt2-shakespeare"), NULL);
    gpu_parity_model("tiny-llama-shakespeare", tl_shared_path("models/tiny-llama-shakespeare"), NULL);
    gpu_parity_model("stories260K", tl_shared_path("models/stories260K/stories260K.bin"), NULL);
    /* the whole pass with p.cuda (emulated): its report validates and records the device */
    an_ctx ctx;
    ds_relation *rels = NULL; int nr = 0;
    ds_pairs q = { 0 };
    if (ds_relations_load(relf, &rels, &nr) != HS_OK || an_ctx_open_model(dir, &ctx) != HS_OK) { tl_fail("GPU report: open the planted model"); ds_relations_free(rels, nr); return; }
    rt_model_open_tokenizer(ctx.m, NULL, &ctx.tok);
    ds_relation_resolve(&rels[0], ctx.tok, false, &q);
    an_maps_relation r = { .name = rels[0].name, .k = q.k, .n = q.n, .src = q.src, .tgt = q.tgt };
    an_maps_params p; an_maps_defaults(&p);
    p.first_mlp = false; p.n_salient = 2; p.n_mapped = 2; p.cuda = true; p.emulate = true;
    hs_log_quiet(true);
    hs_status st = an_maps_run(&ctx, &p, &r, 1, out);
    hs_log_quiet(false);
    cJSON *rep = st == HS_OK ? check_report(out, "planted maps --device cuda (emulated)") : NULL;
    const cJSON *dev = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "params"), "device");
    double s13 = rep ? head_score(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "relations"), rels[0].name), "scores"), "1.3") : -1;
    TL_CHECK(st == HS_OK && cJSON_IsString(dev) && strstr(dev->valuestring, "emulated") && s13 >= 0.9,
             "GPU report (emulated): runs, params.device = %s, copying head 1.3 scores %.3f", cJSON_IsString(dev) ? dev->valuestring : "?", s13);
    cJSON_Delete(rep);
    ds_pairs_free(&q);
    ds_relations_free(rels, nr);
    an_ctx_close(&ctx);
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hs-maps-XXXXXX");
    if (!mkdtemp(g_tmp)) { tl_fail("mkdtemp"); return tl_done(); }
    g_schema = fx_load("docs/report.schema.json");
    if (!g_schema) { tl_fail("docs/report.schema.json parses"); return tl_done(); }
    openblas_set_num_threads(2);
    test_topk();
    test_naive_model("rand-gpt2 (tied, F16)", "tests/fixtures/models/rand-gpt2");
    test_naive_model("rand-llama-gqa (GQA 4/2, SwiGLU, untied)", "tests/fixtures/models/rand-llama-gqa");
    test_naive_model("rand-qwen2 (q/k/v bias)", "tests/fixtures/models/rand-qwen2");
    test_naive_model("tiny-gpt2-shakespeare", tl_shared_path("models/tiny-gpt2-shakespeare"));
    test_naive_model("tiny-llama-shakespeare (GQA 8/4)", tl_shared_path("models/tiny-llama-shakespeare"));
    test_naive_model("stories260K (GQA, llama2.c)", tl_shared_path("models/stories260K/stories260K.bin"));
    test_planted();
    test_relations_gpt2();
    test_relations_spaced();
    test_bad_files();
    test_cli();
    test_shared_reports();
    test_gpu_emulated();
    TL_CHECK(fabs(an_pearson((double[]){ 1, 2, 3, 4 }, (double[]){ 2, 4, 5, 9 }, 4) - 11 / sqrt(130.0)) < 1e-12 &&
             isnan(an_pearson((double[]){ 1, 1 }, (double[]){ 1, 2 }, 2)), "Pearson r of a hand example; NaN for a constant series");
    cJSON_Delete(g_schema);
    char cmd[128]; snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0) tl_fail("clean %s", g_tmp);
    return tl_done();
}
