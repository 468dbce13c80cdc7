/* svd.c — `headscope analyze svd`: the singular structure of every head's OV and QK circuits, read
 * from the weights alone (methods.md §6; issue 5).
 *
 * Per head h of layer l (TransformerLens row-vector convention, fold_ln.h for the weights):
 *   OV  = W_V·W_O          (D, D), rank <= HD: x·OV is what the head writes when it attends to x
 *   QK  = W_Q·W_Kᵀ         (D, D): the attention logit is x_q·QK·x_kᵀ (before 1/√HD, without RoPE)
 *   Ω   = [W_Q; b_Q]·[W_K; b_K]ᵀ   (D+1, D+1): Franco & Crovella's augmented QK, which absorbs the
 *         biases: x̃_q·Ω·x̃_kᵀ with x̃ = [x, 1] is the exact (unscaled, pre-RoPE) logit
 * each through an_lowrank_svd (two thin QRs + an HD×HD SVD; never a D×D SVD). Reported: all HD
 * singular values, stable rank Σσ²/σ_max², entropy-effective rank, and for the top `directions`
 * singular pairs (u_j read side, v_j write/key side) the tokens at both ends of
 *   OV input  W_E·u_j  (W_E rows = token embeddings)     OV output  W_U·v_j (logit direction)
 *   QK query  W_E·u_j                                     QK key     W_E·v_j
 * "pos" lists the largest values, "neg" the most negative. An SVD sign flip swaps u_j and v_j
 * together, so "input pos → output pos" (and neg → neg) is the sign-free statement of what the
 * direction maps. The token projections of all heads share one GEMM per 2048-token chunk of the
 * vocabulary (vocab_tops), so W_E and W_U are each streamed once.
 */
#include "lowrank.h"
#include "fold_ln.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void an_svd_defaults(an_svd_params *p) { p->fold_ln = false; p->top = 5; p->directions = 3; }

void an_svd_result_free(an_svd_result *r) {
    free(r->ov_sv); free(r->qk_sv); free(r->qk_aug_sv);
    memset(r, 0, sizeof *r);
}

/* Scratch for one pass over the heads: allocated once, reused by every head. */
typedef struct {
    an_lowrank *lr;
    an_head_w hw;
    float *aug_q, *aug_k;     /* (D+1, HD) [W_Q; b_Q], [W_K; b_K] */
} svd_scratch;

static void scratch_init(svd_scratch *s, const rt_config *c) {
    int D = c->d_model, HD = c->d_head;
    s->lr = an_lowrank_init(D + 1, HD);
    an_head_w_init(&s->hw, c);
    s->aug_q = hs_xmalloc((size_t)(D + 1) * HD * sizeof(float));
    s->aug_k = hs_xmalloc((size_t)(D + 1) * HD * sizeof(float));
}

static void scratch_free(svd_scratch *s) {
    an_lowrank_free(s->lr); an_head_w_free(&s->hw);
    free(s->aug_q); free(s->aug_k);
}

static bool svd_failed(int k, const rt_model *m, int l, int h, const char *circuit) {
    if (k > 0) return false;
    if (k == -1)
        hs_log_error("analyze", "head %d.%d's %s weights contain NaN or Inf (%s) — check the checkpoint", l, h, circuit, m->path);
    else
        hs_log_error("analyze", "the SVD of head %d.%d's %s circuit did not converge (%s) — check the weights for extreme values",
                     l, h, circuit, m->path);
    return true;
}

/* The three circuits of head (l, h): singular values into ov/qk/aug (k each); with nd > 0 the top
 * nd singular vectors of OV (u_ov, v_ov) and QK (u_qk, v_qk), each (D, nd) col-major. */
static bool head_circuits(const rt_model *m, int l, int h, bool fold, svd_scratch *s, double *ov, double *qk,
                          double *aug, int nd, double *u_ov, double *v_ov, double *u_qk, double *v_qk) {
    int D = m->cfg.d_model, HD = m->cfg.d_head;
    an_head_w *w = &s->hw;
    an_head_w_load(m, l, h, fold, w);
    an_view wq = an_view_rm(w->W_Q, D, HD), wk = an_view_rm(w->W_K, D, HD);
    int k = an_lowrank_svd(s->lr, an_view_rm(w->W_V, D, HD), an_view_rm(w->W_O, HD, D), ov, nd, u_ov, v_ov);
    if (svd_failed(k, m, l, h, "OV")) return false;
    k = an_lowrank_svd(s->lr, wq, an_view_tr(wk), qk, nd, u_qk, v_qk);
    if (svd_failed(k, m, l, h, "QK")) return false;
    /* Ω's factors: the bias is one more residual coordinate, the constant 1. Ω is (D+1)² with rank
     * <= min(D+1, HD); its values go into aug (room for k + 1) */
    memcpy(s->aug_q, w->W_Q, (size_t)D * HD * sizeof(float));
    memcpy(s->aug_q + (size_t)D * HD, w->b_Q, (size_t)HD * sizeof(float));
    memcpy(s->aug_k, w->W_K, (size_t)D * HD * sizeof(float));
    memcpy(s->aug_k + (size_t)D * HD, w->b_K, (size_t)HD * sizeof(float));
    int ka = an_lowrank_svd(s->lr, an_view_rm(s->aug_q, D + 1, HD), an_view_tr(an_view_rm(s->aug_k, D + 1, HD)), aug, 0, NULL, NULL);
    return !svd_failed(ka, m, l, h, "augmented QK");
}

/* min(D, HD) — the rank bound of every circuit (HD in every real model). The augmented Ω can reach
 * min(D+1, HD); when HD > D its extra value is dropped so all three lists have the same length. */
static int rank_bound(const rt_config *c) { return c->d_head < c->d_model ? c->d_head : c->d_model; }

hs_status an_svd_compute(const rt_model *m, const an_svd_params *p, an_svd_result *r) {
    const rt_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, k = rank_bound(c);
    memset(r, 0, sizeof *r);
    r->L = L; r->H = H; r->k = k;
    size_t n = (size_t)L * H * k;
    r->ov_sv = hs_xcalloc(n, sizeof(double));
    r->qk_sv = hs_xcalloc(n, sizeof(double));
    r->qk_aug_sv = hs_xcalloc(n, sizeof(double));
    double *aug = hs_xmalloc((size_t)(k + 1) * sizeof(double));
    svd_scratch s;
    scratch_init(&s, c);
    hs_status rc = HS_OK;
    int threads = an_blas_serial_begin();
    for (int l = 0; l < L && rc == HS_OK; l++)
        for (int h = 0; h < H; h++) {
            size_t o = ((size_t)l * H + h) * k;
            if (!head_circuits(m, l, h, p->fold_ln, &s, r->ov_sv + o, r->qk_sv + o, aug, 0, NULL, NULL, NULL, NULL)) {
                rc = HS_EBADINPUT; break;
            }
            memcpy(r->qk_aug_sv + o, aug, (size_t)k * sizeof(double));
        }
    an_blas_serial_end(threads);
    scratch_free(&s);
    free(aug);
    return rc;
}

/* ---- report ---- */

/* A token as report text: the tokenizer's piece when it is valid UTF-8, else "#id"; the id when
 * there is no tokenizer. Writes into buf. */
static const char *token_text(const rt_tokenizer *tok, int id, char *buf, size_t n) {
    const char *piece = tok ? rt_tokenizer_piece(tok, id) : NULL;
    size_t bad;
    if (piece && hs_utf8_valid(piece, strlen(piece), &bad)) return piece;
    snprintf(buf, n, tok ? "#%d" : "%d", id);
    return buf;
}

/* Running top-n lists of one direction's scores: "pos" the largest, "neg" the most negative. */
typedef struct {
    int have[2];
    int *idx;        /* (2, n) */
    float *val;      /* (2, n) descending within each list (neg stores −score) */
} top_lists;

/* Insert (y, t) into the descending list val/idx of length *have (capacity n). n is a handful, so a
 * short insertion list beats a heap. */
static inline void keep_top(float y, int t, int n, int *have, int *idx, float *val) {
    if (*have == n && !(y > val[n - 1])) return;
    int j = *have < n ? (*have)++ : n - 1;
    while (j > 0 && val[j - 1] < y) { val[j] = val[j - 1]; idx[j] = idx[j - 1]; j--; }
    val[j] = y; idx[j] = t;
}

/* Feed the scores x (nv) of tokens t0 .. t0+nv-1 into the lists. */
static void scan(top_lists *tl, const float *x, int t0, int nv, int n) {
    for (int t = 0; t < nv; t++) {
        keep_top(x[t], t0 + t, n, &tl->have[0], tl->idx, tl->val);
        keep_top(-x[t], t0 + t, n, &tl->have[1], tl->idx + n, tl->val + n);
    }
}

static cJSON *token_list(const rt_tokenizer *tok, const int *idx, int n) {
    char buf[32];
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(token_text(tok, idx[i], buf, sizeof buf)));
    return a;
}

static cJSON *ends(const rt_tokenizer *tok, const top_lists *tl, int n) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "pos", token_list(tok, tl->idx, tl->have[0]));
    cJSON_AddItemToObject(o, "neg", token_list(tok, tl->idx + n, tl->have[1]));
    return o;
}

/* Score every direction (rows of dirs, (n_dirs, D)) against every row of the vocabulary matrix
 * E (V, D) and keep each direction's top lists. The vocabulary is walked in chunks of VC tokens:
 * one GEMM per chunk for all directions of all heads, so each chunk of E is packed once and the
 * scores stay in cache for the scan. out: (n_dirs, VC) scratch. */
enum { VC = 2048 };
static void vocab_tops(const float *dirs, int n_dirs, const float *E, int V, int D, int n, float *out, top_lists *tl) {
    for (int t0 = 0; t0 < V; t0 += VC) {
        int nv = V - t0 < VC ? V - t0 : VC;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_dirs, nv, D, 1.0f, dirs, D, E + (size_t)t0 * D, D,
                    0.0f, out, VC);
        for (int d = 0; d < n_dirs; d++) scan(&tl[d], out + (size_t)d * VC, t0, nv, n);
    }
}

static cJSON *number_array(const double *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

static double frobenius(const double *s, int k) {
    double ss = 0;
    for (int i = 0; i < k; i++) ss += s[i] * s[i];
    return sqrt(ss);
}

static double dot_d(const double *a, const double *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d += a[i] * b[i];
    return d;
}

/* Directions worth listing: the first nd with σ_j above round-off of σ_0 (a zero circuit — e.g. a
 * head with W_Q = 0 — has none). */
static int live_directions(const double *s, int k, int nd) {
    int n = 0;
    while (n < nd && n < k && s[n] > 1e-6 * s[0] && s[n] > 0) n++;
    return n;
}

/* Ranked list of the n heads with the smallest value (ascending), as {"head": "l.h", "score": x}. */
static cJSON *rank_lowest(const double *x, int L, int H, int n) {
    int N = L * H;
    double *neg = hs_xmalloc((size_t)N * sizeof(double));
    for (int i = 0; i < N; i++) neg[i] = -x[i];
    cJSON *a = an_rank(neg, L, H, n);   /* an_rank sorts descending; flip the scores back */
    cJSON *e;
    cJSON_ArrayForEach(e, a) {
        cJSON *sc = cJSON_GetObjectItem(e, "score");
        cJSON_SetNumberValue(sc, -sc->valuedouble);
    }
    free(neg);
    return a;
}

hs_status an_svd_build(const rt_model *m, const rt_tokenizer *tok, const an_svd_params *p, cJSON *root) {
    const rt_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, N = L * H, D = c->d_model, V = c->vocab_size, k = rank_bound(c);
    int nd = p->directions < k ? p->directions : k, ntop = p->top < V ? p->top : V;
    HS_ASSERT(nd >= 0 && ntop >= 1);
    /* Phase 1, per head: singular values, and the top nd directions as rows of
     *   din  (N, 3, nd, D): [OV u | QK u | QK v], read through W_E,
     *   dout (N, nd, D):    OV v through the final norm, read through W_U. */
    size_t nin = (size_t)N * 3 * nd, nout = (size_t)N * nd, ks = (size_t)k + 1;
    float *din = hs_xcalloc((nin ? nin : 1) * D, sizeof(float)), *dout = hs_xcalloc((nout ? nout : 1) * D, sizeof(float));
    double *ov = hs_xmalloc(N * ks * sizeof(double)), *qk = hs_xmalloc(N * ks * sizeof(double)), *aug = hs_xmalloc(N * ks * sizeof(double));
    double *cosv = hs_xcalloc((nout ? nout : 1) * 2, sizeof(double));   /* (N, 2, nd) cos(u, v) of OV, QK */
    double *u_ov = hs_xmalloc((size_t)D * (nd ? nd : 1) * sizeof(double)), *v_ov = hs_xmalloc((size_t)D * (nd ? nd : 1) * sizeof(double));
    double *u_qk = hs_xmalloc((size_t)D * (nd ? nd : 1) * sizeof(double)), *v_qk = hs_xmalloc((size_t)D * (nd ? nd : 1) * sizeof(double));
    float *vtmp = hs_xmalloc((size_t)D * sizeof(float));
    svd_scratch s;
    scratch_init(&s, c);
    hs_status rc = HS_OK;
    int threads = an_blas_serial_begin();
    for (int A = 0; A < N && rc == HS_OK; A++) {
        double *o = ov + A * ks, *q = qk + A * ks, *a = aug + A * ks;
        if (!head_circuits(m, A / H, A % H, p->fold_ln, &s, o, q, a, nd, u_ov, v_ov, u_qk, v_qk)) { rc = HS_EBADINPUT; break; }
        for (int j = 0; j < nd; j++) {
            const double *uo = u_ov + (size_t)j * D, *vo = v_ov + (size_t)j * D;
            const double *uq = u_qk + (size_t)j * D, *vq = v_qk + (size_t)j * D;
            float *r_ov = din + ((size_t)A * 3 * nd + j) * D, *r_q = r_ov + (size_t)nd * D, *r_k = r_q + (size_t)nd * D;
            for (int i = 0; i < D; i++) { r_ov[i] = (float)uo[i]; r_q[i] = (float)uq[i]; r_k[i] = (float)vq[i]; vtmp[i] = (float)vo[i]; }
            an_fold_unembed_dir(m, p->fold_ln, vtmp, dout + ((size_t)A * nd + j) * D);
            cosv[((size_t)A * 2 + 0) * nd + j] = dot_d(uo, vo, D);
            cosv[((size_t)A * 2 + 1) * nd + j] = dot_d(uq, vq, D);
        }
    }
    an_blas_serial_end(threads);
    scratch_free(&s);
    free(u_ov); free(v_ov); free(u_qk); free(v_qk); free(vtmp);

    /* Phase 2: every direction against the whole vocabulary */
    size_t ntl = nin + nout;
    top_lists *tl = hs_xcalloc(ntl ? ntl : 1, sizeof *tl);
    int *idx = hs_xmalloc((ntl ? ntl : 1) * 2 * ntop * sizeof(int));
    float *val = hs_xmalloc((ntl ? ntl : 1) * 2 * ntop * sizeof(float));
    for (size_t i = 0; i < ntl; i++) { tl[i].idx = idx + i * 2 * ntop; tl[i].val = val + i * 2 * ntop; }
    if (rc == HS_OK && nd > 0) {
        size_t most = nin > nout ? nin : nout;
        float *scores = hs_xmalloc(most * VC * sizeof(float));
        vocab_tops(din, (int)nin, m->tok_embed, V, D, ntop, scores, tl);
        vocab_tops(dout, (int)nout, an_unembed_rows(m), V, D, ntop, scores, tl + nin);
        free(scores);
    }
    free(din); free(dout);

    /* Phase 3: the report */
    cJSON *heads = cJSON_AddArrayToObject(root, "heads");
    double *sr_ov = hs_xmalloc((size_t)N * sizeof(double)), *sr_qk = hs_xmalloc((size_t)N * sizeof(double));
    double sum_ov = 0, sum_qk = 0;
    for (int A = 0; A < N && rc == HS_OK; A++) {
        const double *o = ov + A * ks, *q = qk + A * ks, *a = aug + A * ks;
        char name[32];
        snprintf(name, sizeof name, "%d.%d", A / H, A % H);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(heads, e);
        cJSON_AddNumberToObject(e, "layer", A / H);
        cJSON_AddNumberToObject(e, "head", A % H);
        cJSON_AddStringToObject(e, "name", name);
        cJSON_AddItemToObject(e, "ov_sv", number_array(o, k));
        cJSON_AddItemToObject(e, "qk_sv", number_array(q, k));
        cJSON_AddItemToObject(e, "qk_aug_sv", number_array(a, k));
        double so = an_stable_rank(o, k), sq = an_stable_rank(q, k);
        sr_ov[A] = so; sr_qk[A] = sq;
        sum_ov += so; sum_qk += sq;
        cJSON_AddNumberToObject(e, "ov_stable_rank", so);
        cJSON_AddNumberToObject(e, "qk_stable_rank", sq);
        cJSON_AddNumberToObject(e, "qk_aug_stable_rank", an_stable_rank(a, k));
        cJSON_AddNumberToObject(e, "ov_effective_rank", an_effective_rank(o, k));
        cJSON_AddNumberToObject(e, "qk_effective_rank", an_effective_rank(q, k));
        cJSON_AddNumberToObject(e, "qk_aug_effective_rank", an_effective_rank(a, k));
        cJSON_AddNumberToObject(e, "ov_frobenius", frobenius(o, k));
        cJSON_AddNumberToObject(e, "qk_frobenius", frobenius(q, k));
        cJSON *ovt = cJSON_AddArrayToObject(e, "ov_top_tokens"), *qkt = cJSON_AddArrayToObject(e, "qk_top_tokens");
        int no = live_directions(o, k, nd), nq = live_directions(q, k, nd);
        const top_lists *ti = tl + (size_t)A * 3 * nd, *to = tl + nin + (size_t)A * nd;
        for (int j = 0; j < no; j++) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddItemToArray(ovt, d);
            cJSON_AddNumberToObject(d, "index", j);
            cJSON_AddNumberToObject(d, "sv", o[j]);
            cJSON_AddNumberToObject(d, "cos_uv", cosv[((size_t)A * 2 + 0) * nd + j]);
            cJSON_AddItemToObject(d, "input", ends(tok, &ti[j], ntop));
            cJSON_AddItemToObject(d, "output", ends(tok, &to[j], ntop));
        }
        for (int j = 0; j < nq; j++) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddItemToArray(qkt, d);
            cJSON_AddNumberToObject(d, "index", j);
            cJSON_AddNumberToObject(d, "sv", q[j]);
            cJSON_AddNumberToObject(d, "cos_uv", cosv[((size_t)A * 2 + 1) * nd + j]);
            cJSON_AddItemToObject(d, "query", ends(tok, &ti[nd + j], ntop));
            cJSON_AddItemToObject(d, "key", ends(tok, &ti[2 * nd + j], ntop));
        }
    }
    if (rc == HS_OK) {
        cJSON *sum = cJSON_AddObjectToObject(root, "summary");
        cJSON_AddStringToObject(sum, "weights", p->fold_ln ? "fold_ln" : "raw");
        cJSON_AddNumberToObject(sum, "rank_bound", k);
        cJSON_AddNumberToObject(sum, "mean_ov_stable_rank", sum_ov / N);
        cJSON_AddNumberToObject(sum, "mean_qk_stable_rank", sum_qk / N);
        cJSON_AddItemToObject(sum, "lowest_ov_stable_rank", rank_lowest(sr_ov, L, H, 5));
        cJSON_AddItemToObject(sum, "lowest_qk_stable_rank", rank_lowest(sr_qk, L, H, 5));
    }
    free(ov); free(qk); free(aug); free(cosv); free(tl); free(idx); free(val); free(sr_ov); free(sr_qk);
    return rc;
}

hs_status an_svd_run(an_ctx *ctx, const an_svd_params *p, const char *out_path) {
    cJSON *params = cJSON_CreateObject();
    cJSON_AddBoolToObject(params, "fold_ln", p->fold_ln);
    cJSON_AddStringToObject(params, "weights", p->fold_ln ? "fold_ln" : "raw");
    cJSON_AddNumberToObject(params, "top", p->top);
    cJSON_AddNumberToObject(params, "directions", p->directions);
    cJSON_AddBoolToObject(params, "tokenizer", ctx->tok != NULL);
    cJSON *root = an_report_begin(ctx, "svd", params);
    hs_status rc = an_svd_build(ctx->m, ctx->tok, p, root);
    if (rc != HS_OK) { cJSON_Delete(root); return rc; }
    return an_report_finish(ctx, root, out_path);
}
