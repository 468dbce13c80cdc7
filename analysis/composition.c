/* composition.c — `headscope analyze composition`: Q-, K- and V-composition between every ordered
 * pair of heads in different layers, a Gaussian null, z-scores, and the Talking-Heads components
 * that carry each strong edge (methods.md §6.2; issue 5).
 *
 * Definitions (TransformerLens all_composition_scores; Elhage et al. 2021), row-vector convention:
 *   CS(A, B) = ‖W_OV^A·M_B‖_F / (‖W_OV^A‖_F ‖M_B‖_F),  layer(A) < layer(B),
 *   M_B = W_QK^B = W_Q^B·W_K^Bᵀ (Q), (W_QK^B)ᵀ (K), W_OV^B = W_V^B·W_O^B (V).
 * K-composition uses the transpose because A's output enters B's key: x_q·W_QK·(y·W_OV^A)ᵀ =
 * x_q·(W_QK·W_OV^Aᵀ)·yᵀ, whose Frobenius norm is ‖W_OV^A·W_QKᵀ‖.
 *
 * How it stays cheap (no D×D product anywhere):
 *   sender   F_A = S·Vᵀ (K, D) from W_OV^A = U S Vᵀ (an_lowrank_svd): ‖W_OV^A·X‖ = ‖F_A·X‖ since U is
 *            orthonormal, and row i of F_A·X is σ_i·v_iᵀX — the rank-1 component i's contribution;
 *   receiver C_B (D, K) = an_lowrank_collapse_r of M_B's factors: ‖X·M_B‖ = ‖X·C_B‖.
 * So ‖W_OV^A·M_B‖_F = ‖F_A·C_B‖_F, a K×K block, and all blocks between sender layer l and receiver
 * layer l' are one (H·K, D)·(D, 3·H·K) SGEMM. GPT-2 small: 66 layer pairs × 2·768·768·2304 flop.
 * Talking Heads for free: the block's squared row norms split ‖F_A·C_B‖² over A's components.
 *
 * Null: `null_samples` pairs of heads whose W_Q, W_K, W_V, W_O are iid Gaussian with the model's
 * shapes (seeded), scored by the same code; CS is scale-free, so the variance does not matter.
 * z = (CS − mean_type)/sd_type. The null is "no alignment beyond chance between random subspaces of
 * these dimensions"; trained weights sit far above it (anisotropy), which is why the default
 * threshold is high and why ranks within a receiver matter more than absolute z.
 */
#include "lowrank.h"
#include "fold_ln.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_type_names[AN_COMP_N] = { "Q", "K", "V" };

void an_composition_defaults(an_composition_params *p) {
    p->fold_ln = false; p->threshold = 4.0; p->null_samples = 200; p->seed = 0;
}

void an_composition_result_free(an_composition_result *r) {
    free(r->score); free(r->edges);
    memset(r, 0, sizeof *r);
}

/* ---- seeded Gaussian draws: splitmix64 and Marsaglia's polar method in float — one 64-bit draw
 * gives the two 24-bit uniforms of a disc point, and one logf/sqrtf gives two normals. The null
 * draws ~60 M normals for GPT-2 small, so this is most of its cost (~7 ns per normal here, against
 * ~12 ns for double Box–Muller). Reproducible on every platform with the same libm. ---- */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* x (n) = iid N(0, 1) from the stream *s. */
static void gauss_fill(uint64_t *s, float *x, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint64_t z = splitmix(s);
        float a = (float)(z >> 40) * 0x1.0p-23f - 1.0f, b = (float)((z >> 8) & 0xFFFFFF) * 0x1.0p-23f - 1.0f;
        float q = a * a + b * b;
        if (q >= 1.0f || q == 0.0f) continue;   /* outside the unit disc, or its centre (log 0) */
        float f = sqrtf(-2.0f * logf(q) / q);
        x[i++] = a * f;
        if (i < n) x[i++] = b * f;
    }
}

/* ---- per-head factors ---- */

typedef struct {
    an_lowrank *lr;
    an_head_w hw;
    double *v;       /* (D, K) col-major: right singular vectors of the sender's W_OV */
} comp_scratch;

/* The head in s->hw as a sender — F (K, D) row-major = S·Vᵀ, sv (K) its singular values — and as a
 * receiver: C[t] (D, K) with row stride ldc, cn[t] = ‖C[t]‖_F. Either side may be skipped (NULL).
 * Returns K, or a negative an_lowrank code. */
static int head_factors(comp_scratch *s, float *F, double *sv, double *fn, float *const C[AN_COMP_N], int ldc,
                        double cn[AN_COMP_N]) {
    const an_head_w *w = &s->hw;
    int D = w->D, HD = w->HD, K = HD < D ? HD : D;
    an_view wq = an_view_rm(w->W_Q, D, HD), wk = an_view_rm(w->W_K, D, HD);
    an_view wv = an_view_rm(w->W_V, D, HD), wo = an_view_rm(w->W_O, HD, D);
    if (F) {
        int k = an_lowrank_svd(s->lr, wv, wo, sv, K, NULL, s->v);
        if (k < 0) return k;
        double ss = 0;
        for (int i = 0; i < K; i++) {
            ss += sv[i] * sv[i];
            const double *vi = s->v + (size_t)i * D;
            for (int j = 0; j < D; j++) F[(size_t)i * D + j] = (float)(sv[i] * vi[j]);
        }
        *fn = sqrt(ss);
    }
    if (C) {
        an_view a[AN_COMP_N] = { wq, wk, wv }, b[AN_COMP_N] = { an_view_tr(wk), an_view_tr(wq), wo };
        for (int t = 0; t < AN_COMP_N; t++) {
            if (an_lowrank_collapse_r(s->lr, a[t], b[t], C[t], ldc) < 0) return -1;
            double ss = 0;
            for (int i = 0; i < D; i++)
                for (int j = 0; j < K; j++) { double x = C[t][(size_t)i * ldc + j]; ss += x * x; }
            cn[t] = sqrt(ss);
        }
    }
    return K;
}

/* Squared row norms rn2 (K) of the K×K block at P (row stride ldp); returns their sum. */
static double block_rows(const float *P, int ldp, int K, double *rn2) {
    double sum = 0;
    for (int i = 0; i < K; i++) {
        const float *row = P + (size_t)i * ldp;
        double a = 0;
        for (int j = 0; j < K; j++) a += (double)row[j] * row[j];
        rn2[i] = a; sum += a;
    }
    return sum;
}

static double cs_of(double comp2, double fn, double cn) {
    double den = fn * cn;
    return den > 0 ? sqrt(comp2) / den : 0.0;   /* a zero circuit composes with nothing */
}

/* The null: mean and sd of CS per type over n random (sender, receiver) pairs. The sender's factor
 * is a collapse of the transposed OV (F_Aᵀ = W_Oᵀ·R_vᵀ, (D, K)), which gives the same ‖W_OV·X‖ as
 * S·Vᵀ without the vectors the null never reads. */
static void null_baseline(comp_scratch *s, const an_composition_params *p, int D, int K,
                          double mean[AN_COMP_N], double sd[AN_COMP_N]) {
    int HD = s->hw.HD;
    float *Ft = hs_xmalloc((size_t)D * K * sizeof(float)), *Cb = hs_xmalloc((size_t)D * 3 * K * sizeof(float));
    float *P = hs_xmalloc((size_t)K * 3 * K * sizeof(float));
    double *rn2 = hs_xmalloc((size_t)K * sizeof(double));
    float *const C[AN_COMP_N] = { Cb, Cb + K, Cb + 2 * K };
    double sum[AN_COMP_N] = { 0 }, sum2[AN_COMP_N] = { 0 }, cn[AN_COMP_N] = { 0 };
    uint64_t rng = p->seed ^ 0x636f6d706f736974ull;   /* "composit": a stream of its own */
    size_t dh = (size_t)D * HD;   /* W_Q, W_K, W_V, W_O are contiguous in an_head_w */
    an_view wv = an_view_rm(s->hw.W_V, D, HD), wo = an_view_rm(s->hw.W_O, HD, D);
    for (int smp = 0; smp < p->null_samples; smp++) {
        gauss_fill(&rng, s->hw.W_V, 2 * dh);   /* the sender: W_V and W_O only */
        HS_ASSERT(an_lowrank_collapse_r(s->lr, an_view_tr(wo), an_view_tr(wv), Ft, K) == K);
        double fn = 0;
        for (size_t i = 0; i < (size_t)D * K; i++) fn += (double)Ft[i] * Ft[i];
        fn = sqrt(fn);
        gauss_fill(&rng, s->hw.W_Q, 4 * dh);   /* the receiver: all four */
        HS_ASSERT(head_factors(s, NULL, NULL, NULL, C, 3 * K, cn) == K);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, 3 * K, D, 1.0f, Ft, K, Cb, 3 * K, 0.0f, P, 3 * K);
        for (int t = 0; t < AN_COMP_N; t++) {
            double cs = cs_of(block_rows(P + (size_t)t * K, 3 * K, K, rn2), fn, cn[t]);
            sum[t] += cs; sum2[t] += cs * cs;
        }
    }
    int n = p->null_samples;
    for (int t = 0; t < AN_COMP_N; t++) {
        mean[t] = sum[t] / n;
        double var = (sum2[t] - n * mean[t] * mean[t]) / (n > 1 ? n - 1 : 1);
        sd[t] = var > 0 ? sqrt(var) : 0.0;
    }
    free(Ft); free(Cb); free(P); free(rn2);
}

/* The fewest of A's components (largest share first) whose shares reach 1/2, at most 3. */
static void edge_components(an_comp_edge *e, const double *rn2, double comp2, const double *sv, double cn, int K) {
    int best[3] = { -1, -1, -1 };
    for (int i = 0; i < K; i++) {
        int j = 3;
        while (j > 0 && (best[j - 1] < 0 || rn2[best[j - 1]] < rn2[i])) j--;
        if (j >= 3) continue;
        for (int q = 2; q > j; q--) best[q] = best[q - 1];
        best[j] = i;
    }
    double cum = 0;
    e->n_comp = 0;
    for (int j = 0; j < 3 && best[j] >= 0; j++) {
        int i = best[j];
        an_comp_component *c = &e->comp[e->n_comp++];
        c->index = i; c->sv = sv[i];
        c->score = sv[i] > 0 && cn > 0 ? sqrt(rn2[i]) / (sv[i] * cn) : 0.0;
        c->share = comp2 > 0 ? rn2[i] / comp2 : 0.0;
        cum += c->share;
        if (cum >= 0.5) break;
    }
}

static int edge_cmp(const void *a, const void *b) {
    const an_comp_edge *x = a, *y = b;
    if (x->z != y->z) return x->z < y->z ? 1 : -1;
    if (x->type != y->type) return x->type - y->type;
    if (x->from != y->from) return x->from - y->from;
    return x->to - y->to;
}

hs_status an_composition_compute(const rt_model *m, const an_composition_params *p, an_composition_result *r) {
    const rt_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, D = c->d_model, HD = c->d_head, K = HD < D ? HD : D;
    int N = L * H, HK = H * K, ldw = 3 * HK;
    HS_ASSERT(p->null_samples >= 2);
    memset(r, 0, sizeof *r);
    r->L = L; r->H = H; r->N = N; r->null_samples = p->null_samples;
    r->score = hs_xcalloc((size_t)3 * N * N, sizeof(float));
    float *Z = hs_xmalloc((size_t)N * K * D * sizeof(float));          /* (N·K, D) senders' F_A */
    float *W = hs_xmalloc((size_t)L * D * ldw * sizeof(float));         /* (L, D, 3·H·K) receivers' C_B */
    float *P = hs_xmalloc((size_t)HK * ldw * sizeof(float));            /* (H·K, 3·H·K) one layer pair */
    double *sv = hs_xmalloc((size_t)N * K * sizeof(double)), *fn = hs_xmalloc((size_t)N * sizeof(double));
    double *cn = hs_xmalloc((size_t)3 * N * sizeof(double)), *rn2 = hs_xmalloc((size_t)K * sizeof(double));
    comp_scratch s;
    s.lr = an_lowrank_init(D, HD);
    an_head_w_init(&s.hw, c);
    s.v = hs_xmalloc((size_t)D * K * sizeof(double));
    hs_status rc = HS_OK;
    int cap = 0;

    int threads = an_blas_serial_begin();
    null_baseline(&s, p, D, K, r->null_mean, r->null_sd);
    for (int l = 0; l < L && rc == HS_OK; l++)
        for (int h = 0; h < H; h++) {
            int A = l * H + h;
            float *Wl = W + (size_t)l * D * ldw;
            float *const C[AN_COMP_N] = { Wl + h * K, Wl + HK + h * K, Wl + 2 * HK + h * K };
            double cnh[AN_COMP_N];
            an_head_w_load(m, l, h, p->fold_ln, &s.hw);
            int k = head_factors(&s, Z + (size_t)A * K * D, sv + (size_t)A * K, fn + A, C, ldw, cnh);
            if (k < 0) {
                if (k == -1) hs_log_error("analyze", "head %d.%d's weights contain NaN or Inf (%s) — check the checkpoint", l, h, m->path);
                else hs_log_error("analyze", "the SVD of head %d.%d's OV circuit did not converge (%s) — check the weights for extreme values", l, h, m->path);
                rc = HS_EBADINPUT; break;
            }
            for (int t = 0; t < AN_COMP_N; t++) cn[(size_t)t * N + A] = cnh[t];
        }
    an_blas_serial_end(threads);
    for (int l = 0; l + 1 < L && rc == HS_OK; l++)
        for (int l2 = l + 1; l2 < L; l2++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, HK, ldw, D, 1.0f, Z + (size_t)l * H * K * D, D,
                        W + (size_t)l2 * D * ldw, ldw, 0.0f, P, ldw);
            for (int a = 0; a < H; a++)
                for (int t = 0; t < AN_COMP_N; t++)
                    for (int b = 0; b < H; b++) {
                        int A = l * H + a, B = l2 * H + b;
                        double comp2 = block_rows(P + (size_t)a * K * ldw + t * HK + b * K, ldw, K, rn2);
                        double cs = cs_of(comp2, fn[A], cn[(size_t)t * N + B]);
                        r->score[((size_t)t * N + A) * N + B] = (float)cs;
                        double z = r->null_sd[t] > 0 ? (cs - r->null_mean[t]) / r->null_sd[t] : 0.0;
                        if (!(z >= p->threshold)) continue;
                        if (r->n_edges == cap) {   /* amortised doubling: rare, not per pair */
                            cap = cap ? 2 * cap : 64;
                            r->edges = hs_xrealloc(r->edges, (size_t)cap * sizeof *r->edges);
                        }
                        an_comp_edge *e = &r->edges[r->n_edges++];
                        e->from = A; e->to = B; e->type = t; e->score = cs; e->z = z;
                        edge_components(e, rn2, comp2, sv + (size_t)A * K, cn[(size_t)t * N + B], K);
                    }
        }
    if (r->n_edges > 1) qsort(r->edges, (size_t)r->n_edges, sizeof *r->edges, edge_cmp);
    an_lowrank_free(s.lr); an_head_w_free(&s.hw); free(s.v);
    free(Z); free(W); free(P); free(sv); free(fn); free(cn); free(rn2);
    return rc;
}

/* ---- report ---- */

static void head_name(int flat, int H, char *buf, size_t n) { snprintf(buf, n, "%d.%d", flat / H, flat % H); }

static cJSON *edge_json(const an_comp_edge *e, int H, bool with_components) {
    char from[32], to[32];
    head_name(e->from, H, from, sizeof from);
    head_name(e->to, H, to, sizeof to);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", from);
    cJSON_AddStringToObject(o, "to", to);
    cJSON_AddStringToObject(o, "type", k_type_names[e->type]);
    cJSON_AddNumberToObject(o, "score", e->score);
    cJSON_AddNumberToObject(o, "z", e->z);
    if (!with_components) return o;
    cJSON *cs = cJSON_AddArrayToObject(o, "components");
    for (int i = 0; i < e->n_comp; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", e->comp[i].index);
        cJSON_AddNumberToObject(c, "sv", e->comp[i].sv);
        cJSON_AddNumberToObject(c, "score", e->comp[i].score);
        cJSON_AddNumberToObject(c, "share", e->comp[i].share);
        cJSON_AddItemToArray(cs, c);
    }
    return o;
}

void an_composition_build(const an_composition_result *r, const an_composition_params *p, cJSON *root) {
    int N = r->N, H = r->H;
    cJSON *edges = cJSON_AddArrayToObject(root, "edges");
    for (int i = 0; i < r->n_edges; i++) cJSON_AddItemToArray(edges, edge_json(&r->edges[i], H, true));
    /* matrix[type][from][to]; scores lie in [0, 1] and are rounded to 1e-6 so a GPT-2-sized matrix
     * (3 × 144 × 144) prints short numbers instead of 17-digit float expansions */
    cJSON *mx = cJSON_AddArrayToObject(root, "matrix");
    for (int t = 0; t < AN_COMP_N; t++) {
        cJSON *grid = cJSON_CreateArray();
        for (int a = 0; a < N; a++) {
            cJSON *row = cJSON_CreateArray();
            for (int b = 0; b < N; b++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber(round(r->score[((size_t)t * N + a) * N + b] * 1e6) / 1e6));
            cJSON_AddItemToArray(grid, row);
        }
        cJSON_AddItemToArray(mx, grid);
    }
    cJSON *nl = cJSON_AddObjectToObject(root, "null");
    cJSON_AddStringToObject(nl, "distribution", "iid Gaussian W_Q, W_K, W_V, W_O with the model's shapes");
    cJSON_AddNumberToObject(nl, "samples", r->null_samples);
    cJSON_AddNumberToObject(nl, "seed", (double)p->seed);
    for (int t = 0; t < AN_COMP_N; t++) {
        cJSON *o = cJSON_AddObjectToObject(nl, k_type_names[t]);
        cJSON_AddNumberToObject(o, "mean", r->null_mean[t]);
        cJSON_AddNumberToObject(o, "sd", r->null_sd[t]);
    }
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddStringToObject(sum, "weights", p->fold_ln ? "fold_ln" : "raw");
    cJSON_AddNumberToObject(sum, "threshold", p->threshold);
    int L = r->L;
    cJSON_AddNumberToObject(sum, "pairs_per_type", (double)H * H * L * (L - 1) / 2);
    cJSON *ne = cJSON_AddObjectToObject(sum, "n_edges");
    for (int t = 0; t < AN_COMP_N; t++) {
        int n = 0;
        for (int i = 0; i < r->n_edges; i++) n += r->edges[i].type == t;
        cJSON_AddNumberToObject(ne, k_type_names[t], n);
    }
    cJSON *top = cJSON_AddArrayToObject(sum, "top_edges");
    for (int i = 0; i < r->n_edges && i < 10; i++) cJSON_AddItemToArray(top, edge_json(&r->edges[i], H, false));
}

hs_status an_composition_run(an_ctx *ctx, const an_composition_params *p, const char *out_path) {
    an_composition_result r;
    hs_status rc = an_composition_compute(ctx->m, p, &r);
    if (rc != HS_OK) { an_composition_result_free(&r); return rc; }
    cJSON *params = cJSON_CreateObject();
    cJSON_AddBoolToObject(params, "fold_ln", p->fold_ln);
    cJSON_AddStringToObject(params, "weights", p->fold_ln ? "fold_ln" : "raw");
    cJSON_AddNumberToObject(params, "threshold", p->threshold);
    cJSON_AddNumberToObject(params, "null_samples", p->null_samples);
    cJSON_AddNumberToObject(params, "seed", (double)p->seed);
    cJSON *root = an_report_begin(ctx, "composition", params);
    an_composition_build(&r, p, root);
    an_composition_result_free(&r);
    return an_report_finish(ctx, root, out_path);
}
