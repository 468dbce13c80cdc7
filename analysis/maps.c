/* maps.c — MAPS static relation scores, salient operations and dynamic validation (see maps.h).
 *
 * Shapes: L layers, H query heads, KV key/value heads, D d_model, HD d_head, V vocab, F d_mlp,
 * n pairs of a relation. The static path does, per layer, one (n, D)·(D, KV·HD) sgemm for the
 * values of every KV head and one (n, HD)·(HD, D) per query head; the (rows, V) logits are ranked by
 * topk.c without being stored. Saliency needs ‖x W_V^h W_O^h‖ for every vocabulary token x. With
 * the eigendecomposition W_O^h W_O^hᵀ = Q Λ Qᵀ (HD×HD), ‖z W_O^h‖ = ‖z Q Λ^½‖, so S^h = W_V^h Q Λ^½
 * (D, HD) gives ‖x W_V^h W_O^h‖ = ‖x S^h‖: one (tokens, D)·(D, H·HD) sgemm per layer and a sum of
 * squares (no cancellation), instead of a (tokens, D) product per head.
 */
#include "maps.h"
#include "runtime/ops.h"
#include "topk.h"
#include "weights.h"
#include "runtime/forward.h"
#include "runtime/gpu.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    VOCAB_CHUNK = 1024,   /* tokens per E″/saliency chunk: bounds the MLP scratch to 1024·F floats */
    ROWS_FLOATS = 16 << 20, /* head-rows handed to one ranking call: up to 64 MiB of (rows, D). One
                             * call for all heads at GPT-2 small, so the rows that survive the first
                             * vocabulary block share the later blocks' sgemm (topk.c) */
    DYN_BATCH = 64,       /* prompts per forward call in --validate */
};

struct an_maps {
    const rt_model *m;      /* borrowed */
    bool first_mlp;
    int L, H, KV, D, HD, V, F;
    float *wv;              /* (L, D, KV*HD) columns g*HD.. = W_V of KV head g */
    float *wo;              /* (L, H, HD, D) W_O^h */
    float *sal;             /* (L, D, H*HD) columns h*HD.. = S^h = W_V^h Q_h Λ_h^½ */
    const float *wu;        /* (V, D) unembedding rows, borrowed from the model */
};

void an_maps_defaults(an_maps_params *p) {
    memset(p, 0, sizeof *p);
    p->first_mlp = true;
    p->n_salient = 15;
    p->n_mapped = 5;
    p->n_top_heads = 10;
    p->min_pairs = 30;
}

/* ------------------------------------------------------------------ weights */

an_maps *an_maps_init(const rt_model *m, bool first_mlp) {
    const rt_config *c = &m->cfg;
    an_maps *mp = hs_xcalloc(1, sizeof *mp);
    mp->m = m;
    mp->first_mlp = first_mlp;
    mp->L = c->n_layers; mp->H = c->n_heads; mp->KV = c->n_kv_heads;
    mp->D = c->d_model; mp->HD = c->d_head; mp->V = c->vocab_size; mp->F = c->d_mlp;
    int L = mp->L, H = mp->H, KV = mp->KV, D = mp->D, HD = mp->HD, KD = KV * HD;
    HS_ASSERT(KV > 0 && H % KV == 0);
    mp->wv = hs_xmalloc((size_t)L * D * KD * sizeof(float));
    mp->wo = hs_xmalloc((size_t)L * H * HD * D * sizeof(float));
    mp->sal = hs_xmalloc((size_t)L * D * H * HD * sizeof(float));
    mp->wu = an_unembed_rows(m);
    double *qs = hs_xmalloc((size_t)HD * HD * sizeof(double)), *lam = hs_xmalloc((size_t)HD * sizeof(double));
    double *od = hs_xmalloc((size_t)HD * D * sizeof(double)), *vd = hs_xmalloc((size_t)D * HD * sizeof(double));
    double *sd = hs_xmalloc((size_t)D * HD * sizeof(double));
    for (int l = 0; l < L; l++) {
        for (int g = 0; g < KV; g++) {   /* query head g·(H/KV) is one that reads KV head g */
            an_mat v;
            an_head_matrix(m, l, g * (H / KV), AN_W_V, &v);
            float *dst = mp->wv + (size_t)l * D * KD + (size_t)g * HD;
            for (int i = 0; i < D; i++) memcpy(dst + (size_t)i * KD, v.w + (size_t)i * HD, (size_t)HD * sizeof(float));
            an_mat_free(&v);
        }
        for (int h = 0; h < H; h++) {
            an_mat o;
            an_head_matrix(m, l, h, AN_W_O, &o);
            float *wo = mp->wo + ((size_t)l * H + h) * HD * D;
            memcpy(wo, o.w, (size_t)HD * D * sizeof(float));
            an_mat_free(&o);
            /* G = W_O W_Oᵀ = Q Λ Qᵀ in double (saliency ranks tokens by small differences);
             * then qs := Q Λ^½ (column j scaled by √λ_j) */
            for (size_t i = 0; i < (size_t)HD * D; i++) od[i] = wo[i];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, HD, HD, D, 1.0, od, D, od, D, 0.0, qs, HD);
            /* dsyev cannot fail on a finite symmetric matrix; NaN weights are the only way, and
             * then the saliency is NaN too, which is what such a head deserves */
            if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', HD, qs, HD, lam) != 0)
                for (int i = 0; i < HD * HD; i++) qs[i] = NAN;
            for (int j = 0; j < HD; j++) {
                double sq = lam[j] > 0 ? sqrt(lam[j]) : 0;   /* rounding can leave tiny negatives */
                for (int i = 0; i < HD; i++) qs[(size_t)i * HD + j] *= sq;
            }
            /* S^h (D, HD) = W_V^{g(h)} · Q Λ^½, stored as columns h*HD.. of the layer's (D, H*HD) */
            const float *v = mp->wv + (size_t)l * D * KD + (size_t)(h / (H / KV)) * HD;
            for (int d = 0; d < D; d++)
                for (int i = 0; i < HD; i++) vd[(size_t)d * HD + i] = v[(size_t)d * KD + i];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, HD, HD, 1.0, vd, HD, qs, HD, 0.0, sd, HD);
            float *sh = mp->sal + (size_t)l * D * H * HD + (size_t)h * HD;
            for (int d = 0; d < D; d++)
                for (int j = 0; j < HD; j++) sh[(size_t)d * H * HD + j] = (float)sd[(size_t)d * HD + j];
        }
    }
    free(qs); free(lam); free(od); free(vd); free(sd);
    return mp;
}

void an_maps_free(an_maps *mp) {
    if (!mp) return;
    free(mp->wv); free(mp->wo); free(mp->sal);
    free(mp);
}

/* ------------------------------------------------------------------ E″ */

static float act_fn(rt_act a, float x) {
    if (a == RT_ACT_SILU) return x / (1.0f + expf(-x));
    if (a == RT_ACT_GELU_EXACT) return (float)(0.5 * x * (1.0 + erf(x / 1.4142135623730951)));
    double xd = x;   /* gelu_tanh, as HF "gelu_new" */
    return (float)(0.5 * xd * (1.0 + tanh(0.7978845608028654 * (xd + 0.044715 * xd * xd * xd))));
}

/* out (n, D) = MLP_0(LN2_0(x)) for x (n, D); scratch xn (n, D), hid and gate (n, F). */
static void first_mlp_rows(const an_maps *mp, const float *x, int n, float *out, float *xn, float *hid, float *gate) {
    const rt_config *c = &mp->m->cfg;
    const rt_layer *L0 = &mp->m->layers[0];
    size_t nf = (size_t)n * mp->F;
    rt_norm_apply(c, &L0->ln2, x, n, xn);
    rt_linear_apply(&L0->up, xn, n, hid);
    if (c->arch == RT_ARCH_GPT2) {
        for (size_t i = 0; i < nf; i++) hid[i] = act_fn(c->act, hid[i]);
    } else {
        rt_linear_apply(&L0->gate, xn, n, gate);
        for (size_t i = 0; i < nf; i++) hid[i] *= act_fn(c->act, gate[i]);
    }
    rt_linear_apply(&L0->down, hid, n, out);
}

static bool uses_mlp(const an_maps *mp, int layer) { return mp->first_mlp && layer > 0; }

void an_maps_embed(const an_maps *mp, int layer, const int *ids, int n, float *out) {
    int D = mp->D;
    for (int i = 0; i < n; i++) {
        HS_ASSERT(ids[i] >= 0 && ids[i] < mp->V);
        memcpy(out + (size_t)i * D, mp->m->tok_embed + (size_t)ids[i] * D, (size_t)D * sizeof(float));
    }
    if (!uses_mlp(mp, layer) || n == 0) return;
    int ch = n < VOCAB_CHUNK ? n : VOCAB_CHUNK;
    float *x = hs_xmalloc((size_t)ch * D * sizeof(float));
    float *xn = hs_xmalloc((size_t)ch * D * sizeof(float));
    float *hid = hs_xmalloc((size_t)ch * mp->F * sizeof(float));
    float *gate = hs_xmalloc((size_t)ch * mp->F * sizeof(float));
    for (int i0 = 0; i0 < n; i0 += ch) {
        int cn = n - i0 < ch ? n - i0 : ch;
        memcpy(x, out + (size_t)i0 * D, (size_t)cn * D * sizeof(float));
        first_mlp_rows(mp, x, cn, out + (size_t)i0 * D, xn, hid, gate);
    }
    free(x); free(xn); free(hid); free(gate);
}

/* ------------------------------------------------------------------ static scores */

/* y (n, D) = x_v (n, HD; row stride ldz) · W_O^h: one head's write for n value vectors. */
static void head_out(const an_maps *mp, int l, int h, const float *zg, int ldz, int n, float *y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, mp->D, mp->HD, 1.0f, zg, ldz,
                mp->wo + ((size_t)l * mp->H + h) * mp->HD * mp->D, mp->D, 0.0f, y, mp->D);
}

/* z (n, KV*HD) = x (n, D) · W_V of every KV head of layer l. */
static void values_all(const an_maps *mp, int l, const float *x, int n, float *z) {
    int KD = mp->KV * mp->HD;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, KD, mp->D, 1.0f, x, mp->D,
                mp->wv + (size_t)l * mp->D * KD, KD, 0.0f, z, KD);
}

/* Rank rows y (rows, D) (head-major blocks of n) and add hits to the heads they belong to. */
static void rank_and_count(const an_maps *mp, const float *y, int rows, const int *tg, int k, bool exhaustive,
                           int *up, int *down, const int *head_of_row, double *hit, double *shit) {
    an_topk_target_ranks(y, rows, mp->D, mp->wu, mp->V, tg, k, exhaustive, up, down);
    for (int r = 0; r < rows; r++) {
        if (up[r] < k) hit[head_of_row[r]] += 1;
        if (down[r] < k) shit[head_of_row[r]] += 1;
    }
}

void an_maps_scores(const an_maps *mp, const an_maps_relation *r, bool exhaustive, double *scores, double *suppression) {
    int L = mp->L, H = mp->H, D = mp->D, HD = mp->HD, KD = mp->KV * HD, n = r->n;
    memset(scores, 0, (size_t)L * H * sizeof(double));
    memset(suppression, 0, (size_t)L * H * sizeof(double));
    if (n == 0) return;
    HS_ASSERT(r->k >= 1);
    int rows_max = ROWS_FLOATS / D;
    int cap = n > rows_max ? n : rows_max - rows_max % n;   /* whole heads per batch */
    if (cap > L * H * n) cap = L * H * n;
    float *x0 = hs_xmalloc((size_t)n * D * sizeof(float));      /* (n, D) E″ for layer 0 */
    float *x1 = hs_xmalloc((size_t)n * D * sizeof(float));      /* (n, D) E″ for layers >= 1 */
    float *z = hs_xmalloc((size_t)n * KD * sizeof(float));      /* (n, KV*HD) */
    float *y = hs_xmalloc((size_t)cap * D * sizeof(float));     /* (cap, D) head writes */
    int *tg = hs_xmalloc((size_t)cap * sizeof(int));
    int *hr = hs_xmalloc((size_t)cap * sizeof(int));            /* head index of each row */
    int *up = hs_xmalloc((size_t)cap * sizeof(int)), *down = hs_xmalloc((size_t)cap * sizeof(int));
    an_maps_embed(mp, 0, r->src, n, x0);
    an_maps_embed(mp, 1 < L ? 1 : 0, r->src, n, x1);
    int rows = 0;
    for (int l = 0; l < L; l++) {
        values_all(mp, l, uses_mlp(mp, l) ? x1 : x0, n, z);
        for (int h = 0; h < H; h++) {
            if (rows + n > cap) {
                rank_and_count(mp, y, rows, tg, r->k, exhaustive, up, down, hr, scores, suppression);
                rows = 0;
            }
            head_out(mp, l, h, z + (size_t)(h / (H / mp->KV)) * HD, KD, n, y + (size_t)rows * D);
            for (int i = 0; i < n; i++) { tg[rows + i] = r->tgt[i]; hr[rows + i] = l * H + h; }
            rows += n;
        }
    }
    if (rows) rank_and_count(mp, y, rows, tg, r->k, exhaustive, up, down, hr, scores, suppression);
    for (int i = 0; i < L * H; i++) { scores[i] /= n; suppression[i] /= n; }
    free(x0); free(x1); free(z); free(y); free(tg); free(hr); free(up); free(down);
}

/* ------------------------------------------------------------------ static scores on the GPU */

enum {
    GPU_ROW_CHUNK = 2048,   /* rows per logits GEMM */
    GPU_VOCAB_BLOCK = 8192, /* vocabulary entries per logits GEMM: the (rows, block) buffer is 64 MiB */
};
/* Why 1e-3: two fp32 GEMMs that sum in different orders differ by ~1e-6 of ‖y‖·‖w‖ in a logit
 * (and the head rows y by ~1e-6 relative); a margin 1000 times that decides every row whose
 * target is not within a hair of the top-k boundary, and those go to the host. */
#define GPU_MARGIN 1e-3

struct an_maps_gpu {
    const an_maps *mp;      /* borrowed */
    rt_gpu *g;
    float *wv;              /* device (L, D, KV*HD), as mp->wv */
    float *wo;              /* device (L, H, HD, D), as mp->wo */
    float *wu;              /* device (V, D) unembedding rows */
    double rel;             /* GPU_MARGIN · max_j ‖W_U[j]‖ */
};

void an_maps_gpu_free(an_maps_gpu *gs) {
    if (!gs) return;
    if (gs->g) { rt_gpu_mem_free(gs->g, gs->wv); rt_gpu_mem_free(gs->g, gs->wo); rt_gpu_mem_free(gs->g, gs->wu); }
    rt_gpu_free(gs->g);
    free(gs);
}

hs_status an_maps_gpu_init(const an_maps *mp, int device, bool emulate, an_maps_gpu **out) {
    *out = NULL;
    rt_gpu_opts o;
    rt_gpu_opts_default(&o);
    o.dtype = RT_GPU_F32;   /* pedantic fp32 GEMMs */
    o.device = device; o.emulate = emulate; o.no_weights = true;
    an_maps_gpu *gs = hs_xcalloc(1, sizeof *gs);
    gs->mp = mp;
    hs_status st = rt_gpu_init(mp->m, &o, &gs->g);
    if (st != HS_OK) { free(gs); return st; }
    size_t nv = (size_t)mp->L * mp->D * mp->KV * mp->HD, no = (size_t)mp->L * mp->H * mp->HD * mp->D, nu = (size_t)mp->V * mp->D;
    gs->wv = rt_gpu_mem_alloc(gs->g, nv * sizeof(float), "the MAPS W_V matrices");
    gs->wo = gs->wv ? rt_gpu_mem_alloc(gs->g, no * sizeof(float), "the MAPS W_O matrices") : NULL;
    gs->wu = gs->wo ? rt_gpu_mem_alloc(gs->g, nu * sizeof(float), "the unembedding") : NULL;
    if (!gs->wu) { an_maps_gpu_free(gs); return HS_EIO; }
    rt_gpu_mem_upload(gs->g, gs->wv, mp->wv, nv * sizeof(float));
    rt_gpu_mem_upload(gs->g, gs->wo, mp->wo, no * sizeof(float));
    rt_gpu_mem_upload(gs->g, gs->wu, mp->wu, nu * sizeof(float));
    double wmax = 0;
    for (int v = 0; v < mp->V; v++) {
        double q = 0;
        for (int d = 0; d < mp->D; d++) q += (double)mp->wu[(size_t)v * mp->D + d] * mp->wu[(size_t)v * mp->D + d];
        if (q > wmax) wmax = q;
    }
    gs->rel = GPU_MARGIN * sqrt(wmax);
    if ((st = rt_gpu_calc_check(gs->g, "uploading the MAPS matrices")) != HS_OK) { an_maps_gpu_free(gs); return st; }
    *out = gs;
    return HS_OK;
}

/* Device scratch of one relation. */
typedef struct {
    float *x0, *x1, *z, *y, *c;   /* (n, D) ×2, (n, KD), (cap, D), (GPU_ROW_CHUNK, GPU_VOCAB_BLOCK) */
    int *tg, *cnt;                /* (cap), (cap, 4) */
    double *lt, *yn;              /* (cap) each */
} gpu_rel_bufs;

/* Host re-ranking of the rows the device could not decide, exactly as an_maps_scores ranks them:
 * the head's rows recomputed with the same sgemm calls, then an_topk_target_ranks. */
typedef struct {
    const an_maps *mp;
    const an_maps_relation *r;
    const float *x0, *x1;
    float *zc, *yh;               /* (n, KD), (n, D); the layer / head they hold */
    int zl, yl;
    float *fy; int *ft, *fh, nf;  /* (cap, D), (cap), (cap) gathered undecided rows */
} host_fix;

static void host_fix_add(host_fix *hf, int lh, int i) {
    const an_maps *mp = hf->mp;
    int l = lh / mp->H, h = lh % mp->H, n = hf->r->n;
    if (hf->zl != l) { values_all(mp, l, uses_mlp(mp, l) ? hf->x1 : hf->x0, n, hf->zc); hf->zl = l; hf->yl = -1; }
    if (hf->yl != lh) { head_out(mp, l, h, hf->zc + (size_t)(h / (mp->H / mp->KV)) * mp->HD, mp->KV * mp->HD, n, hf->yh); hf->yl = lh; }
    memcpy(hf->fy + (size_t)hf->nf * mp->D, hf->yh + (size_t)i * mp->D, (size_t)mp->D * sizeof(float));
    hf->ft[hf->nf] = hf->r->tgt[i];
    hf->fh[hf->nf] = lh;
    hf->nf++;
}

/* Rank `rows` device rows (whole heads, head index hr[row]) and add the hits. */
static hs_status gpu_rank(an_maps_gpu *gs, gpu_rel_bufs *b, const int *tg, const int *hr, int rows, int k, int *cnt,
                          host_fix *hf, double *hit, double *shit) {
    const an_maps *mp = gs->mp;
    int D = mp->D, V = mp->V, n = hf->r->n;
    rt_gpu_mem_upload(gs->g, b->tg, tg, (size_t)rows * sizeof(int));
    rt_gpu_calc_target_dots(gs->g, b->y, rows, D, gs->wu, b->tg, b->lt, b->yn);
    rt_gpu_mem_zero(gs->g, b->cnt, (size_t)rows * 4 * sizeof(int));
    for (int v0 = 0; v0 < V; v0 += GPU_VOCAB_BLOCK) {
        int w = V - v0 < GPU_VOCAB_BLOCK ? V - v0 : GPU_VOCAB_BLOCK;
        for (int r0 = 0; r0 < rows; r0 += GPU_ROW_CHUNK) {
            int nc = rows - r0 < GPU_ROW_CHUNK ? rows - r0 : GPU_ROW_CHUNK;
            rt_gpu_calc_gemm(gs->g, false, true, nc, w, D, 1.0f, b->y + (size_t)r0 * D, D, gs->wu + (size_t)v0 * D, D, 0.0f,
                             b->c, w);
            rt_gpu_calc_rank_count(gs->g, b->c, nc, w, v0, b->tg + r0, b->lt + r0, b->yn + r0, gs->rel, b->cnt + (size_t)4 * r0);
        }
    }
    hs_status st = rt_gpu_mem_download(gs->g, cnt, b->cnt, (size_t)rows * 4 * sizeof(int));
    if (st != HS_OK) return st;
    int f0 = hf->nf;
    for (int r = 0; r < rows; r++) {
        const int *c = cnt + (size_t)4 * r;
        int sa = c[2], sb = c[3];
        /* certain: k tokens surely beat the target, or fewer than k can */
        bool up_sure = sa >= k || V - 1 - sb < k, down_sure = sb >= k || V - 1 - sa < k;
        if (up_sure && down_sure) {
            if (c[0] < k) hit[hr[r]] += 1;
            if (c[1] < k) shit[hr[r]] += 1;
        } else {
            host_fix_add(hf, hr[r], r % n);
        }
    }
    int nf = hf->nf - f0;
    if (nf > 0) {
        int *up = hs_xmalloc((size_t)nf * sizeof(int)), *down = hs_xmalloc((size_t)nf * sizeof(int));
        an_topk_target_ranks(hf->fy + (size_t)f0 * D, nf, D, mp->wu, V, hf->ft + f0, k, false, up, down);
        for (int i = 0; i < nf; i++) {
            if (up[i] < k) hit[hf->fh[f0 + i]] += 1;
            if (down[i] < k) shit[hf->fh[f0 + i]] += 1;
        }
        free(up); free(down);
    }
    return HS_OK;
}

hs_status an_maps_scores_gpu(an_maps_gpu *gs, const an_maps_relation *r, double *scores, double *suppression, int *n_host) {
    const an_maps *mp = gs->mp;
    int L = mp->L, H = mp->H, D = mp->D, HD = mp->HD, KD = mp->KV * HD, n = r->n;
    memset(scores, 0, (size_t)L * H * sizeof(double));
    memset(suppression, 0, (size_t)L * H * sizeof(double));
    if (n_host) *n_host = 0;
    if (n == 0) return HS_OK;
    HS_ASSERT(r->k >= 1);
    int rows_max = ROWS_FLOATS / D;
    int cap = n > rows_max ? n : rows_max - rows_max % n;   /* whole heads per batch, as an_maps_scores */
    if (cap > L * H * n) cap = L * H * n;
    hs_status st = HS_OK;
    gpu_rel_bufs b;
    memset(&b, 0, sizeof b);
    void **all[] = { (void **)&b.x0, (void **)&b.x1, (void **)&b.z, (void **)&b.y, (void **)&b.c, (void **)&b.tg,
                     (void **)&b.cnt, (void **)&b.lt, (void **)&b.yn };
    size_t sizes[] = { (size_t)n * D * sizeof(float), (size_t)n * D * sizeof(float), (size_t)n * KD * sizeof(float),
                       (size_t)cap * D * sizeof(float), (size_t)GPU_ROW_CHUNK * GPU_VOCAB_BLOCK * sizeof(float),
                       (size_t)cap * sizeof(int), (size_t)cap * 4 * sizeof(int), (size_t)cap * sizeof(double),
                       (size_t)cap * sizeof(double) };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (!(*all[i] = rt_gpu_mem_alloc(gs->g, sizes[i], "the MAPS ranking buffers"))) { st = HS_EIO; goto done; }
    {
        float *x0 = hs_xmalloc((size_t)n * D * sizeof(float)), *x1 = hs_xmalloc((size_t)n * D * sizeof(float));
        int *tg = hs_xmalloc((size_t)cap * sizeof(int)), *hr = hs_xmalloc((size_t)cap * sizeof(int));
        int *cnt = hs_xmalloc((size_t)cap * 4 * sizeof(int));
        host_fix hf = { mp, r, x0, x1, hs_xmalloc((size_t)n * KD * sizeof(float)), hs_xmalloc((size_t)n * D * sizeof(float)),
                        -1, -1, hs_xmalloc((size_t)cap * D * sizeof(float)), hs_xmalloc((size_t)cap * sizeof(int)),
                        hs_xmalloc((size_t)cap * sizeof(int)), 0 };
        int host_rows = 0;
        an_maps_embed(mp, 0, r->src, n, x0);
        an_maps_embed(mp, 1 < L ? 1 : 0, r->src, n, x1);
        rt_gpu_mem_upload(gs->g, b.x0, x0, (size_t)n * D * sizeof(float));
        rt_gpu_mem_upload(gs->g, b.x1, x1, (size_t)n * D * sizeof(float));
        int rows = 0;
        for (int l = 0; l < L && st == HS_OK; l++) {
            rt_gpu_calc_gemm(gs->g, false, false, n, KD, D, 1.0f, uses_mlp(mp, l) ? b.x1 : b.x0, D, gs->wv + (size_t)l * D * KD, KD,
                             0.0f, b.z, KD);
            for (int h = 0; h < H && st == HS_OK; h++) {
                if (rows + n > cap) {
                    hf.nf = 0;
                    st = gpu_rank(gs, &b, tg, hr, rows, r->k, cnt, &hf, scores, suppression);
                    host_rows += hf.nf;
                    rows = 0;
                }
                rt_gpu_calc_gemm(gs->g, false, false, n, D, HD, 1.0f, b.z + (size_t)(h / (H / mp->KV)) * HD, KD,
                                 gs->wo + ((size_t)l * H + h) * HD * D, D, 0.0f, b.y + (size_t)rows * D, D);
                for (int i = 0; i < n; i++) { tg[rows + i] = r->tgt[i]; hr[rows + i] = l * H + h; }
                rows += n;
            }
        }
        if (st == HS_OK && rows) {
            hf.nf = 0;
            st = gpu_rank(gs, &b, tg, hr, rows, r->k, cnt, &hf, scores, suppression);
            host_rows += hf.nf;
        }
        if (st == HS_OK)
            for (int i = 0; i < L * H; i++) { scores[i] /= n; suppression[i] /= n; }
        if (n_host) *n_host = host_rows;
        free(x0); free(x1); free(tg); free(hr); free(cnt);
        free(hf.zc); free(hf.yh); free(hf.fy); free(hf.ft); free(hf.fh);
    }
done:
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) rt_gpu_mem_free(gs->g, *all[i]);
    return st;
}

/* ------------------------------------------------------------------ salient operations */

static inline bool sal_better(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

/* Offer (v, id) to a bounded min-heap (root = worst kept) of capacity k holding *fill entries. */
static void heap_offer(float *hv, int *hi, int *fill, int k, float v, int id) {
    int p;
    if (*fill < k) {
        p = (*fill)++;
        hv[p] = v; hi[p] = id;
        while (p > 0 && sal_better(hv[(p - 1) / 2], hi[(p - 1) / 2], hv[p], hi[p])) {
            int q = (p - 1) / 2;
            float tv = hv[p]; hv[p] = hv[q]; hv[q] = tv;
            int ti = hi[p]; hi[p] = hi[q]; hi[q] = ti;
            p = q;
        }
        return;
    }
    if (!sal_better(v, id, hv[0], hi[0])) return;
    hv[0] = v; hi[0] = id; p = 0;
    for (;;) {
        int a = 2 * p + 1, b = a + 1, m = p;
        if (a < k && sal_better(hv[m], hi[m], hv[a], hi[a])) m = a;
        if (b < k && sal_better(hv[m], hi[m], hv[b], hi[b])) m = b;
        if (m == p) return;
        float tv = hv[p]; hv[p] = hv[m]; hv[m] = tv;
        int ti = hi[p]; hi[p] = hi[m]; hi[m] = ti;
        p = m;
    }
}

void an_maps_salient(const an_maps *mp, int n_sal, int n_map, int *tokens, float *saliency, int *mapped) {
    int L = mp->L, H = mp->H, D = mp->D, HD = mp->HD, KD = mp->KV * HD, V = mp->V, LH = L * H;
    HS_ASSERT(n_sal >= 1 && n_sal <= V && n_map >= 1 && n_map <= V);
    int ch = V < VOCAB_CHUNK ? V : VOCAB_CHUNK;
    float *hv = hs_xmalloc((size_t)LH * n_sal * sizeof(float));   /* (LH, n_sal) heaps */
    int *hi = hs_xmalloc((size_t)LH * n_sal * sizeof(int));
    int *fill = hs_xcalloc((size_t)LH, sizeof(int));
    int *ids = hs_xmalloc((size_t)ch * sizeof(int));
    float *x0 = hs_xmalloc((size_t)ch * D * sizeof(float)), *x1 = hs_xmalloc((size_t)ch * D * sizeof(float));
    double *n0 = hs_xmalloc((size_t)ch * sizeof(double)), *n1 = hs_xmalloc((size_t)ch * sizeof(double));
    float *z = hs_xmalloc((size_t)ch * H * HD * sizeof(float));   /* (ch, H*HD) x · S^h for every head */
    for (int v0 = 0; v0 < V; v0 += ch) {
        int cn = V - v0 < ch ? V - v0 : ch;
        for (int i = 0; i < cn; i++) ids[i] = v0 + i;
        an_maps_embed(mp, 0, ids, cn, x0);
        if (mp->first_mlp && L > 1) an_maps_embed(mp, 1, ids, cn, x1);
        for (int i = 0; i < cn; i++) {
            double a = 0, b = 0;
            for (int j = 0; j < D; j++) {
                a += (double)x0[(size_t)i * D + j] * x0[(size_t)i * D + j];
                if (mp->first_mlp && L > 1) b += (double)x1[(size_t)i * D + j] * x1[(size_t)i * D + j];
            }
            n0[i] = sqrt(a); n1[i] = sqrt(b);
        }
        for (int l = 0; l < L; l++) {
            bool mlp = uses_mlp(mp, l);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cn, H * HD, D, 1.0f, mlp ? x1 : x0, D,
                        mp->sal + (size_t)l * D * H * HD, H * HD, 0.0f, z, H * HD);
            const double *nrm = mlp ? n1 : n0;
            for (int h = 0; h < H; h++) {
                int lh = l * H + h;
                for (int i = 0; i < cn; i++) {
                    if (nrm[i] == 0) continue;   /* a zero row (unused token) has no direction to score */
                    const float *zr = z + (size_t)i * H * HD + (size_t)h * HD;
                    double ss = 0;   /* ‖x W_V W_O‖² = ‖x S^h‖² */
                    for (int j = 0; j < HD; j++) ss += (double)zr[j] * zr[j];
                    heap_offer(hv + (size_t)lh * n_sal, hi + (size_t)lh * n_sal, &fill[lh], n_sal, (float)(sqrt(ss) / nrm[i]), v0 + i);
                }
            }
        }
    }
    /* heaps -> best-first lists */
    for (int lh = 0; lh < LH; lh++) {
        float *v = hv + (size_t)lh * n_sal;
        int *id = hi + (size_t)lh * n_sal, m = fill[lh];
        for (int i = m; i < n_sal; i++) { tokens[(size_t)lh * n_sal + i] = -1; saliency[(size_t)lh * n_sal + i] = NAN; }
        for (; m > 0; m--) {
            tokens[(size_t)lh * n_sal + m - 1] = id[0];
            saliency[(size_t)lh * n_sal + m - 1] = v[0];
            v[0] = v[m - 1]; id[0] = id[m - 1];
            int f = m - 1;   /* sift the moved element down within the shrunk heap */
            for (int p = 0;;) {
                int a = 2 * p + 1, b = a + 1, s = p;
                if (a < f && sal_better(v[s], id[s], v[a], id[a])) s = a;
                if (b < f && sal_better(v[s], id[s], v[b], id[b])) s = b;
                if (s == p) break;
                float tv = v[p]; v[p] = v[s]; v[s] = tv;
                int ti = id[p]; id[p] = id[s]; id[s] = ti;
                p = s;
            }
        }
    }
    /* mapped tokens: the salient sources' M rows, ranked over the full vocabulary. E″ of all the
     * sources at once (layer-0 heads' rows from W_E, the others' through MLP_0 in one call). */
    size_t ns = (size_t)LH * n_sal, n0r = (size_t)H * n_sal;
    float *y = hs_xmalloc(ns * D * sizeof(float));    /* (LH, n_sal, D) head writes */
    float *xs = hs_xmalloc(ns * D * sizeof(float));   /* (LH, n_sal, D) E″ of each head's sources */
    float *zs = hs_xmalloc((size_t)n_sal * KD * sizeof(float));
    int *src = hs_xmalloc(ns * sizeof(int));
    for (size_t i = 0; i < ns; i++) src[i] = tokens[i] < 0 ? 0 : tokens[i];
    an_maps_embed(mp, 0, src, (int)n0r, xs);
    if (L > 1) an_maps_embed(mp, 1, src + n0r, (int)(ns - n0r), xs + n0r * D);
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            size_t lh = (size_t)l * H + h;
            values_all(mp, l, xs + lh * n_sal * D, n_sal, zs);
            head_out(mp, l, h, zs + (size_t)(h / (H / mp->KV)) * HD, KD, n_sal, y + lh * n_sal * D);
        }
    an_topk_rows(y, (int)ns, D, mp->wu, V, n_map, mapped, NULL);
    for (size_t i = 0; i < ns; i++)
        if (tokens[i] < 0)
            for (int j = 0; j < n_map; j++) mapped[i * n_map + j] = -1;
    free(y); free(xs); free(zs); free(src);
    free(hv); free(hi); free(fill); free(ids); free(x0); free(x1); free(n0); free(n1); free(z);
}

/* ------------------------------------------------------------------ dynamic validation */

typedef struct {
    const an_maps *mp;
    int nb;                 /* prompts in the batch */
    const int *src_pos;     /* (nb) */
    float *res;             /* (L*H, nb, D) last-position head results (with context) */
    float *zc;              /* (L*H, nb, HD) clean z at the last position */
    float *zf;              /* (L*H, nb, HD) z with the attention forced onto the source */
} dyn_state;

static void dyn_on_result(const rt_hook_event *ev, void *user) {
    dyn_state *s = user;
    size_t lh = (size_t)ev->layer * s->mp->H + ev->head;
    memcpy(s->res + (lh * s->nb + ev->seq) * s->mp->D, ev->data + (size_t)(ev->rows - 1) * ev->cols,
           (size_t)ev->cols * sizeof(float));
}

static void dyn_on_z_clean(const rt_hook_event *ev, void *user) {
    dyn_state *s = user;
    size_t lh = (size_t)ev->layer * s->mp->H + ev->head;
    memcpy(s->zc + (lh * s->nb + ev->seq) * s->mp->HD, ev->data + (size_t)(ev->rows - 1) * ev->cols,
           (size_t)ev->cols * sizeof(float));
}

/* Last query row -> one-hot on the source position: the head reads only the source token. */
static void dyn_on_pattern(const rt_hook_event *ev, void *user) {
    dyn_state *s = user;
    float *row = ev->data + (size_t)(ev->rows - 1) * ev->cols;
    memset(row, 0, (size_t)ev->cols * sizeof(float));
    row[s->src_pos[ev->seq]] = 1.0f;
}

/* Record the forced z, then put the clean z back so later layers see the clean stream. */
static void dyn_on_z_forced(const rt_hook_event *ev, void *user) {
    dyn_state *s = user;
    size_t at = ((size_t)ev->layer * s->mp->H + ev->head) * s->nb + ev->seq;
    float *last = ev->data + (size_t)(ev->rows - 1) * ev->cols;
    memcpy(s->zf + at * s->mp->HD, last, (size_t)ev->cols * sizeof(float));
    memcpy(last, s->zc + at * s->mp->HD, (size_t)ev->cols * sizeof(float));
}

hs_status an_maps_dynamic(const an_maps *mp, const an_maps_relation *r, bool exhaustive, bool no_context,
                          double *scores, double *suppression) {
    int L = mp->L, H = mp->H, D = mp->D, HD = mp->HD, LH = L * H, n = r->n;
    memset(scores, 0, (size_t)LH * sizeof(double));
    memset(suppression, 0, (size_t)LH * sizeof(double));
    if (n == 0) return HS_OK;
    HS_ASSERT(r->prompt && r->prompt_len && r->src_pos && r->k >= 1);
    int bmax = n < DYN_BATCH ? n : DYN_BATCH;
    rt_forward *f = rt_forward_init(mp->m);
    rt_seq *seqs = hs_xmalloc((size_t)bmax * sizeof(rt_seq));
    dyn_state st = { mp, 0, NULL, NULL, NULL, NULL };
    size_t rows_max = (size_t)LH * bmax;
    st.res = hs_xmalloc(rows_max * D * sizeof(float));
    if (no_context) {
        st.zc = hs_xmalloc(rows_max * HD * sizeof(float));
        st.zf = hs_xmalloc(rows_max * HD * sizeof(float));
    }
    int *tg = hs_xmalloc(rows_max * sizeof(int)), *hr = hs_xmalloc(rows_max * sizeof(int));
    int *up = hs_xmalloc(rows_max * sizeof(int)), *down = hs_xmalloc(rows_max * sizeof(int));
    hs_status rc = HS_OK;
    for (int b0 = 0; b0 < n && rc == HS_OK; b0 += bmax) {
        int nb = n - b0 < bmax ? n - b0 : bmax;
        st.nb = nb;
        st.src_pos = r->src_pos + b0;
        for (int i = 0; i < nb; i++) {
            seqs[i] = (rt_seq){ r->prompt[b0 + i], r->prompt_len[b0 + i], NULL };
            HS_ASSERT(r->src_pos[b0 + i] >= 0 && r->src_pos[b0 + i] < r->prompt_len[b0 + i]);
        }
        if (!no_context) {
            rt_hook_req req = { RT_HOOK_RESULT, NULL, 0, NULL, 0, -1, 0, dyn_on_result, &st, false };
            rt_hook_spec spec = { &req, 1 };
            if ((rc = rt_forward_run(f, seqs, nb, &spec, NULL)) != HS_OK) break;
        } else {
            rt_hook_req clean = { RT_HOOK_Z, NULL, 0, NULL, 0, -1, 0, dyn_on_z_clean, &st, false };
            rt_hook_spec spec1 = { &clean, 1 };
            if ((rc = rt_forward_run(f, seqs, nb, &spec1, NULL)) != HS_OK) break;
            rt_hook_req forced[2] = {
                { RT_HOOK_PATTERN, NULL, 0, NULL, 0, -1, 0, dyn_on_pattern, &st, false },
                { RT_HOOK_Z, NULL, 0, NULL, 0, -1, 0, dyn_on_z_forced, &st, false },
            };
            rt_hook_spec spec2 = { forced, 2 };
            if ((rc = rt_forward_run(f, seqs, nb, &spec2, NULL)) != HS_OK) break;
            for (int lh = 0; lh < LH; lh++)
                head_out(mp, lh / H, lh % H, st.zf + (size_t)lh * nb * HD, HD, nb, st.res + (size_t)lh * nb * D);
        }
        for (int lh = 0; lh < LH; lh++)
            for (int i = 0; i < nb; i++) { tg[(size_t)lh * nb + i] = r->tgt[b0 + i]; hr[(size_t)lh * nb + i] = lh; }
        rank_and_count(mp, st.res, LH * nb, tg, r->k, exhaustive, up, down, hr, scores, suppression);
    }
    if (rc == HS_OK)
        for (int i = 0; i < LH; i++) { scores[i] /= n; suppression[i] /= n; }
    rt_forward_free(f);
    free(seqs); free(st.res); free(st.zc); free(st.zf); free(tg); free(hr); free(up); free(down);
    return rc;
}

double an_pearson(const double *a, const double *b, int n) {
    if (n < 2) return NAN;
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
    ma /= n; mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        double da = a[i] - ma, db = b[i] - mb;
        sab += da * db; saa += da * da; sbb += db * db;
    }
    if (saa <= 0 || sbb <= 0) return NAN;
    return sab / sqrt(saa * sbb);
}

/* ------------------------------------------------------------------ report */

/* A token as text for the report: its decoded string; its raw piece when decoding alone gives
 * U+FFFD (a byte of a multi-byte character: the piece, e.g. "Ã", tells tokens apart); else "[id]". */
static cJSON *token_json(const rt_tokenizer *tok, int id) {
    char buf[32];
    if (id < 0) return cJSON_CreateNull();
    if (tok) {
        char *text; size_t len, bad;
        if (rt_tokenizer_decode(tok, &id, 1, &text, &len) == HS_OK) {
            if (hs_utf8_valid(text, len, &bad) && strlen(text) == len && !strstr(text, "\xEF\xBF\xBD")) {
                cJSON *s = cJSON_CreateString(text);
                free(text);
                return s;
            }
            free(text);
        }
        const char *piece = rt_tokenizer_piece(tok, id);
        size_t bad2;
        if (piece && hs_utf8_valid(piece, strlen(piece), &bad2)) return cJSON_CreateString(piece);
    }
    snprintf(buf, sizeof buf, "[%d]", id);
    return cJSON_CreateString(buf);
}

static cJSON *grid_json(const double *v, int L, int H) {
    cJSON *g = cJSON_CreateArray();
    for (int l = 0; l < L; l++) {
        cJSON *row = cJSON_CreateArray();
        for (int h = 0; h < H; h++) cJSON_AddItemToArray(row, cJSON_CreateNumber(v[l * H + h]));
        cJSON_AddItemToArray(g, row);
    }
    return g;
}

/* Flat head indices with score > 0, best first. Ties: the later flat index first — MAPS ranks with
 * a stable ascending argsort reversed, and matching it keeps our head lists comparable to theirs. */
static int rank_heads(const double *s, int n, int *order) {
    int k = 0;
    for (int i = 0; i < n; i++) if (s[i] > 0) order[k++] = i;
    for (int i = 1; i < k; i++) {   /* insertion sort: n is the number of heads */
        int v = order[i], j = i - 1;
        while (j >= 0 && (s[order[j]] < s[v] || (s[order[j]] == s[v] && order[j] < v))) { order[j + 1] = order[j]; j--; }
        order[j + 1] = v;
    }
    return k;
}

static cJSON *head_list(const double *s, int L, int H, int max, int *order) {
    int k = rank_heads(s, L * H, order);
    cJSON *a = cJSON_CreateArray();
    char name[32];
    for (int i = 0; i < k && i < max; i++) {
        snprintf(name, sizeof name, "%d.%d", order[i] / H, order[i] % H);
        cJSON_AddItemToArray(a, cJSON_CreateString(name));
    }
    return a;
}

static void add_r(cJSON *o, const char *key, double r) {
    if (isnan(r)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, r);
}

/* summary entry: the best head and its score (null when no head scores above 0) */
static void add_best(cJSON *o, const char *key, const char *score_key, const double *s, int L, int H, int *order) {
    int k = rank_heads(s, L * H, order);
    if (k == 0) { cJSON_AddNullToObject(o, key); cJSON_AddNumberToObject(o, score_key, 0); return; }
    char name[32];
    snprintf(name, sizeof name, "%d.%d", order[0] / H, order[0] % H);
    cJSON_AddStringToObject(o, key, name);
    cJSON_AddNumberToObject(o, score_key, s[order[0]]);
}

hs_status an_maps_run(an_ctx *ctx, const an_maps_params *p, const an_maps_relation *rels, int n_rels,
                      const char *out_path) {
    const rt_model *m = ctx->m;
    int L = m->cfg.n_layers, H = m->cfg.n_heads, LH = L * H;
    an_maps *mp = an_maps_init(m, p->first_mlp);
    an_maps_gpu *gs = NULL;
    if (p->cuda) {
        hs_status gst = an_maps_gpu_init(mp, p->device, p->emulate, &gs);
        if (gst != HS_OK) { an_maps_free(mp); return gst; }
    }

    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "relations", p->relations_arg ? p->relations_arg : "");
    if (p->k_override > 0) cJSON_AddNumberToObject(params, "k", p->k_override);
    else cJSON_AddStringToObject(params, "k", "auto (1 for copying relations, 10 otherwise)");
    cJSON_AddBoolToObject(params, "first_mlp", p->first_mlp);
    cJSON_AddBoolToObject(params, "suppression", true);
    cJSON_AddBoolToObject(params, "validate", p->validate);
    cJSON_AddBoolToObject(params, "exhaustive", p->exhaustive);
    cJSON_AddNumberToObject(params, "salient", p->n_salient);
    cJSON_AddNumberToObject(params, "mapped", p->n_mapped);
    cJSON_AddNumberToObject(params, "top_heads", p->n_top_heads);
    cJSON_AddNumberToObject(params, "min_pairs", p->min_pairs);
    if (p->cuda) {
        char dev[48];
        snprintf(dev, sizeof dev, "cuda:%d%s", p->device, p->emulate ? " (emulated)" : "");
        cJSON_AddStringToObject(params, "device", dev);
    }
    cJSON *root = an_report_begin(ctx, "maps", params);
    cJSON_AddStringToObject(root, "method",
        "MAPS static scores: M = E'' W_V W_O W_U with raw weights (no LayerNorm folding, no ln_final, no b_V); "
        "E'' = W_E for layer 0 and MLP_0(LN2_0(W_E)) for layers >= 1 unless first_mlp is false; GQA heads use "
        "their KV head's W_V. score = share of pairs whose target is in the top-k of the source's row over the "
        "full vocabulary (ties: lower token id first); suppression = the same on -M. top_heads: heads with "
        "score > 0, best first, ties to the later head as MAPS. Dynamic (validate): the head's output at the "
        "last prompt position projected with W_U, scored the same way; no_context forces the head's attention "
        "at that position onto the source token and restores the clean z downstream.");

    double *sc = hs_xmalloc((size_t)LH * sizeof(double)), *su = hs_xmalloc((size_t)LH * sizeof(double));
    double *dy = hs_xmalloc((size_t)LH * sizeof(double)), *dys = hs_xmalloc((size_t)LH * sizeof(double));
    int *order = hs_xmalloc((size_t)LH * sizeof(int));
    cJSON *rj = cJSON_AddObjectToObject(root, "relations");
    cJSON *summary = cJSON_CreateObject();
    cJSON *srel = cJSON_AddObjectToObject(summary, "relations");
    cJSON *few = cJSON_AddArrayToObject(summary, "too_few_pairs");
    hs_status rc = HS_OK;
    for (int ri = 0; ri < n_rels && rc == HS_OK; ri++) {
        an_maps_relation r = rels[ri];
        if (p->k_override > 0) r.k = p->k_override;
        double t0 = an_now();
        cJSON *e = cJSON_AddObjectToObject(rj, r.name);
        cJSON_AddNumberToObject(e, "k", r.k);
        cJSON_AddNumberToObject(e, "n_pairs", r.n);
        cJSON_AddNumberToObject(e, "n_listed", r.n_listed);
        cJSON_AddNumberToObject(e, "n_multi_token", r.n_multi_token);
        cJSON_AddNumberToObject(e, "n_duplicate", r.n_duplicate);
        if (r.source) cJSON_AddStringToObject(e, "source", r.source);
        if (r.n == 0) {   /* nothing to score: empty grids rather than zeros that would look like a result */
            cJSON_AddItemToObject(e, "scores", cJSON_CreateArray());
            cJSON_AddItemToObject(e, "suppression", cJSON_CreateArray());
            cJSON_AddItemToObject(e, "top_heads", cJSON_CreateArray());
            cJSON_AddItemToObject(e, "top_suppression_heads", cJSON_CreateArray());
            cJSON_AddItemToArray(few, cJSON_CreateString(r.name));
            hs_log_info("maps", "%s: no pair survives single-token filtering on this vocabulary (%d listed)", r.name, r.n_listed);
            continue;
        }
        if (gs) {
            int n_host = 0;
            if ((rc = an_maps_scores_gpu(gs, &r, sc, su, &n_host)) != HS_OK) break;
            hs_log_info("maps", "%s: %d of %d rows were within the GPU margin of the top-%d boundary and were ranked on the host",
                        r.name, n_host, r.n * LH, r.k);
        } else {
            an_maps_scores(mp, &r, p->exhaustive, sc, su);
        }
        cJSON_AddItemToObject(e, "scores", grid_json(sc, L, H));
        cJSON_AddItemToObject(e, "suppression", grid_json(su, L, H));
        cJSON_AddItemToObject(e, "top_heads", head_list(sc, L, H, p->n_top_heads, order));
        cJSON_AddItemToObject(e, "top_suppression_heads", head_list(su, L, H, p->n_top_heads, order));
        cJSON *s = NULL;
        if (r.n >= p->min_pairs) {
            s = cJSON_AddObjectToObject(srel, r.name);
            cJSON_AddNumberToObject(s, "n_pairs", r.n);
            cJSON_AddNumberToObject(s, "k", r.k);
            add_best(s, "top_head", "score", sc, L, H, order);
            add_best(s, "top_suppression_head", "suppression", su, L, H, order);
        } else {
            cJSON_AddItemToArray(few, cJSON_CreateString(r.name));
        }
        if (p->validate && r.prompt) {
            if (r.template_text) cJSON_AddStringToObject(e, "template", r.template_text);
            for (int nc = 0; nc < 2 && rc == HS_OK; nc++) {
                if ((rc = an_maps_dynamic(mp, &r, p->exhaustive, nc == 1, dy, dys)) != HS_OK) break;
                double pr = an_pearson(sc, dy, LH), ps = an_pearson(su, dys, LH);
                cJSON_AddItemToObject(e, nc ? "dynamic_no_context" : "dynamic", grid_json(dy, L, H));
                cJSON_AddItemToObject(e, nc ? "dynamic_no_context_suppression" : "dynamic_suppression", grid_json(dys, L, H));
                add_r(e, nc ? "pearson_r_no_context" : "pearson_r", pr);
                add_r(e, nc ? "pearson_r_no_context_suppression" : "pearson_r_suppression", ps);
                if (s) add_r(s, nc ? "pearson_r_no_context" : "pearson_r", pr);
            }
        }
        hs_log_info("maps", "%s: %d pairs, k=%d, %.2f s", r.name, r.n, r.k, an_now() - t0);
    }

    cJSON *heads = cJSON_AddArrayToObject(root, "heads");
    if (rc == HS_OK) {
        int ns = p->n_salient > m->cfg.vocab_size ? m->cfg.vocab_size : p->n_salient;
        int nm = p->n_mapped > m->cfg.vocab_size ? m->cfg.vocab_size : p->n_mapped;
        int *tok = NULL, *map = NULL;
        float *sal = NULL;
        if (ns > 0) {
            double t0 = an_now();
            tok = hs_xmalloc((size_t)LH * ns * sizeof(int));
            sal = hs_xmalloc((size_t)LH * ns * sizeof(float));
            map = hs_xmalloc((size_t)LH * ns * (nm > 0 ? nm : 1) * sizeof(int));
            an_maps_salient(mp, ns, nm > 0 ? nm : 1, tok, sal, map);
            hs_log_info("maps", "salient operations over %d tokens: %.2f s", m->cfg.vocab_size, an_now() - t0);
        }
        for (int lh = 0; lh < LH; lh++) {
            cJSON *hj = cJSON_CreateObject();
            char name[32];
            snprintf(name, sizeof name, "%d.%d", lh / H, lh % H);
            cJSON_AddNumberToObject(hj, "layer", lh / H);
            cJSON_AddNumberToObject(hj, "head", lh % H);
            cJSON_AddStringToObject(hj, "name", name);
            cJSON *sa = cJSON_AddArrayToObject(hj, "salient");
            for (int i = 0; i < ns; i++) {
                int t = tok[(size_t)lh * ns + i];
                if (t < 0) break;
                cJSON *o = cJSON_CreateObject();
                cJSON_AddItemToObject(o, "token", token_json(ctx->tok, t));
                cJSON_AddNumberToObject(o, "id", t);
                cJSON_AddNumberToObject(o, "saliency", sal[(size_t)lh * ns + i]);
                cJSON *mt = cJSON_AddArrayToObject(o, "mapped"), *mi = cJSON_AddArrayToObject(o, "mapped_ids");
                for (int j = 0; j < nm; j++) {
                    int u = map[((size_t)lh * ns + i) * nm + j];
                    cJSON_AddItemToArray(mt, token_json(ctx->tok, u));
                    cJSON_AddItemToArray(mi, cJSON_CreateNumber(u));
                }
                cJSON_AddItemToArray(sa, o);
            }
            cJSON_AddItemToArray(heads, hj);
        }
        free(tok); free(sal); free(map);
    }
    cJSON_AddItemToObject(root, "summary", summary);
    free(sc); free(su); free(dy); free(dys); free(order);
    an_maps_gpu_free(gs);
    an_maps_free(mp);
    if (rc != HS_OK) { cJSON_Delete(root); return rc; }
    return an_report_finish(ctx, root, out_path);
}
