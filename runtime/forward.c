/* forward.c — CPU forward pass with hook points (see forward.h).
 *
 * Numerics: fp32 activations and weights, fp32 GEMMs (OpenBLAS); norms accumulate in double; the
 * softmax uses a vectorised exp within 2 ulp (fastmath.h) and 8-lane float sums. Results track the
 * float64 Hugging Face reference to ~1e-6 (tests/test_forward.c).
 * Layout: packed batch, x is (N, D) with N = Σ T_s; q and z are (N, H*HD); k and v (N, KV*HD).
 */
#include "forward.h"
#include "fastmath.h"
#include "ops.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { QBLOCK = 64 };   /* query rows per attention block: bounds the score buffer to QBLOCK×Tk */

struct rt_forward {
    const rt_model *m;
    hs_arena act;               /* activations of one run; reset at the start of each run */
    float *rope_inv_freq;       /* (HD/2) */
};

typedef struct {                /* per-run view of the batch */
    const rt_seq *seqs;
    int n_seqs;
    int *off;                   /* (n_seqs) first packed row of each sequence */
    int *pos0;                  /* (n_seqs) absolute position of its first new token */
    int N, T_max, Tk_max;
    const rt_hook_spec *spec;
} batch_view;

static float gelu_tanh(float x) {
    const double k = 0.7978845608028654; /* sqrt(2/pi) */
    double xd = x;
    return (float)(0.5 * xd * (1.0 + tanh(k * (xd + 0.044715 * xd * xd * xd))));
}
static float gelu_exact(float x) { return (float)(0.5 * x * (1.0 + erf(x / 1.4142135623730951))); }
static float silu(float x) { return x / (1.0f + expf(-x)); }   /* scalar: F per token, not T^2 */

/* cos/sin of every (position, frequency) the run needs: (Tk_max, HD/2) each, computed once per run
 * rather than once per layer. The angle is formed in fp32 exactly as HF's rotary embedding does
 * (inv_freq·pos in float) so long positions round the same way; cos/sin are evaluated in double. */
static void rope_table(const rt_forward *f, int n_pos, float *cs, float *sn) {
    int half = f->m->cfg.d_head / 2;
    for (int p = 0; p < n_pos; p++)
        for (int i = 0; i < half; i++) {
            float ang = (float)p * f->rope_inv_freq[i];
            cs[(size_t)p * half + i] = (float)cos((double)ang);
            sn[(size_t)p * half + i] = (float)sin((double)ang);
        }
}

/* Rotate (T, nh*HD) rows in place for absolute positions pos0..pos0+T-1.
 * HF layout rotates (i, i+HD/2); llama2.c/Meta rotates adjacent pairs (2i, 2i+1). */
static void rope_apply(const rt_config *c, const float *cs_tab, const float *sn_tab, float *x, int T, int nh, int pos0) {
    int HD = c->d_head, half = HD / 2;
    for (int t = 0; t < T; t++) {
        const float *cs = cs_tab + (size_t)(pos0 + t) * half, *sn = sn_tab + (size_t)(pos0 + t) * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + (size_t)t * nh * HD + (size_t)h * HD;
            for (int i = 0; i < half; i++) {
                int a = c->rope_interleaved ? 2 * i : i, b = c->rope_interleaved ? 2 * i + 1 : i + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * cs[i] - x1 * sn[i];
                v[b] = x1 * cs[i] + x0 * sn[i];
            }
        }
    }
}

/* ------------------------------------------------------------------ hook dispatch */

/* Every matching request on a (rows, cols) tensor of sequence `seq` (hooks.c does the matching). */
static void fire(const batch_view *bv, rt_hook_point p, int l, int h, int seq, int pos0, int rows, int cols, float *data) {
    rt_hook_fire(bv->spec, p, l, h, seq, pos0, rows, cols, data);
}

/* Whole-layer hook over the packed (N, cols) buffer: one event per sequence. */
static void fire_rows(const batch_view *bv, rt_hook_point p, int l, float *buf, int cols) {
    if (!rt_hook_spec_wants(bv->spec, p, l, -1)) return;
    for (int s = 0; s < bv->n_seqs; s++)
        fire(bv, p, l, -1, s, bv->pos0[s], bv->seqs[s].n, cols, buf + (size_t)bv->off[s] * cols);
}

/* Per-head hook on a strided (N, nh*HD) buffer: gather head h of each sequence into a contiguous
 * (T, HD) scratch, fire, scatter back (so writes act as interventions). */
static void fire_heads(const batch_view *bv, rt_hook_point p, int l, float *buf, int nh, int HD, float *scratch) {
    if (!rt_hook_spec_wants(bv->spec, p, l, -1)) return;
    for (int s = 0; s < bv->n_seqs; s++) {
        int T = bv->seqs[s].n;
        for (int h = 0; h < nh; h++) {
            if (!rt_hook_spec_wants(bv->spec, p, l, h)) continue;
            float *base = buf + (size_t)bv->off[s] * nh * HD + (size_t)h * HD;
            for (int t = 0; t < T; t++) memcpy(scratch + (size_t)t * HD, base + (size_t)t * nh * HD, HD * sizeof(float));
            fire(bv, p, l, h, s, bv->pos0[s], T, HD, scratch);
            for (int t = 0; t < T; t++) memcpy(base + (size_t)t * nh * HD, scratch + (size_t)t * HD, HD * sizeof(float));
        }
    }
}

/* ------------------------------------------------------------------ attention */

/* Max and sum of a row in 8 independent lanes: without -ffast-math the compiler may not reorder a
 * float reduction, so one accumulator would keep these loops scalar. The lane order is fixed, so
 * results are deterministic. */
static float row_max(const float *x, int n) {
    float m[8] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY };
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) m[k] = x[j + k] > m[k] ? x[j + k] : m[k];
    for (; j < n; j++) m[0] = x[j] > m[0] ? x[j] : m[0];
    for (int k = 1; k < 8; k++) m[0] = m[k] > m[0] ? m[k] : m[0];
    return m[0];
}

static float row_sum(const float *x, int n) {
    float s[8] = { 0 };
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) s[k] += x[j + k];
    for (; j < n; j++) s[0] += x[j];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* Causal (optionally sliding-window) attention of query head h of sequence s.
 *   Q (T, ldq) this head's rotated queries; K, V (Tk, ldk) keys/values of positions 0..Tk-1
 *   Z (T, ldz) output rows; S scratch of at least QBLOCK×Tk floats, or T×Tk when `full`.
 * full: build the whole (T, Tk) score matrix at once so a scores/pattern hook sees (and may edit)
 * it; otherwise query blocks keep the scratch small and skip keys no query of the block can see. */
static void attend_head(const rt_forward *f, const batch_view *bv, int l, int h, int s, const float *Q, int ldq,
                        const float *K, const float *V, int ldk, float *Z, int ldz, float *S, bool full) {
    const rt_config *c = &f->m->cfg;
    int T = bv->seqs[s].n, pos0 = bv->pos0[s], HD = c->d_head, W = c->sliding_window;
    float scale = (float)(1.0 / sqrt((double)HD));
    int qb = full ? T : QBLOCK;
    for (int i0 = 0; i0 < T; i0 += qb) {
        int i1 = i0 + qb < T ? i0 + qb : T, rows = i1 - i0;
        int nk = pos0 + i1;                               /* keys visible to the block's last query */
        int lo = (!full && W > 0 && pos0 + i0 - W + 1 > 0) ? pos0 + i0 - W + 1 : 0;
        int w = nk - lo;                                  /* row stride of S */
        rt_blas_threads_for((size_t)rows, (size_t)w, (size_t)HD);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, w, HD, scale, Q + (size_t)i0 * ldq, ldq,
                    K + (size_t)lo * ldk, ldk, 0.0f, S, w);
        for (int r = 0; r < rows; r++) {                  /* mask: keys after the query, or outside the window */
            int p = pos0 + i0 + r;
            float *row = S + (size_t)r * w;
            int first = W > 0 && p - W + 1 > lo ? p - W + 1 : lo;
            for (int j = lo; j < first; j++) row[j - lo] = -INFINITY;
            for (int j = p + 1; j < nk; j++) row[j - lo] = -INFINITY;
        }
        if (full) fire(bv, RT_HOOK_ATTN_SCORES, l, h, s, pos0, T, w, S);
        for (int r = 0; r < rows; r++) {
            /* Only keys [first, p] can be non-zero; a scores hook may have edited the row, so the
             * max is taken over that whole range. hs_expf_neg (fastmath.h) keeps this O(T^2) loop
             * vectorised; it is within 2 ulp of expf, and maps -inf (a masked score) to 0. */
            int p = pos0 + i0 + r, a = (W > 0 && p - W + 1 > lo ? p - W + 1 : lo) - lo, e = p + 1 - lo;
            float *row = S + (size_t)r * w;
            float mx = row_max(row + a, e - a);
            for (int j = a; j < e; j++) row[j] = hs_expf_neg(row[j] - mx);
            float sum = row_sum(row + a, e - a);
            float inv = sum > 0 ? 1.0f / sum : 0.0f;
            for (int j = 0; j < a; j++) row[j] = 0.0f;
            for (int j = a; j < e; j++) row[j] *= inv;
            for (int j = e; j < w; j++) row[j] = 0.0f;
        }
        if (full) fire(bv, RT_HOOK_PATTERN, l, h, s, pos0, T, w, S);
        rt_blas_threads_for((size_t)rows, (size_t)HD, (size_t)w);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HD, w, 1.0f, S, w, V + (size_t)lo * ldk, ldk,
                    0.0f, Z + (size_t)i0 * ldz, ldz);
    }
}

/* ------------------------------------------------------------------ context */

rt_forward *rt_forward_init(const rt_model *m) {
    rt_forward *f = hs_xcalloc(1, sizeof *f);
    f->m = m;
    hs_arena_init(&f->act, 1u << 20);
    int half = m->cfg.d_head / 2;
    f->rope_inv_freq = hs_xmalloc((size_t)(half ? half : 1) * sizeof(float));
    for (int i = 0; i < half; i++)   /* fp32, as HF computes inv_freq (and as llama2.c's run.c does) */
        f->rope_inv_freq[i] = 1.0f / powf(m->cfg.rope_theta, (float)(2 * i) / (float)m->cfg.d_head);
    return f;
}

void rt_forward_free(rt_forward *f) {
    if (!f) return;
    hs_arena_free(&f->act);
    free(f->rope_inv_freq);
    free(f);
}

size_t rt_forward_peak_bytes(const rt_forward *f) { return f->act.peak_total; }

void rt_kv_cache_init(rt_kv_cache *c, const rt_config *cfg, int cap) {
    size_t n = (size_t)cfg->n_layers * (size_t)cap * (size_t)cfg->n_kv_heads * (size_t)cfg->d_head;
    c->k = hs_xcalloc(n, sizeof(float));
    c->v = hs_xcalloc(n, sizeof(float));
    c->cap = cap; c->len = 0;
}

void rt_kv_cache_free(rt_kv_cache *c) {
    free(c->k); free(c->v);
    c->k = c->v = NULL; c->cap = c->len = 0;
}

/* ------------------------------------------------------------------ one layer */

typedef struct {               /* the run's buffers, sized once (no allocation inside the layer loop) */
    float *x;      /* (N, D) residual stream */
    float *xn;     /* (N, D) normalised input of the current sub-block */
    float *qkv;    /* (N, 3D) gpt2 fused projection, else NULL */
    float *q;      /* (N, H*HD) */
    float *k, *v;  /* (N, KV*HD) */
    float *z;      /* (N, H*HD) */
    float *zm;     /* (N, H*HD) z with hooked heads zeroed (only when hook_result is requested) */
    float *ao;     /* (N, D) attention output, then MLP output */
    float *hid;    /* (N, F) MLP hidden */
    float *gate;   /* (N, F) llama gate pre-activation */
    float *S;      /* attention scores scratch */
    float *head;   /* (T_max, max(HD, D)) per-head gather / per-head result scratch */
    float *rope_cos, *rope_sin;   /* (Tk_max, HD/2) llama family */
} run_bufs;

static void attention_block(rt_forward *f, const batch_view *bv, int l, run_bufs *b) {
    const rt_model *m = f->m;
    const rt_config *c = &m->cfg;
    const rt_layer *L = &m->layers[l];
    int N = bv->N, D = c->d_model, H = c->n_heads, KV = c->n_kv_heads, HD = c->d_head;
    int QD = H * HD, KD = KV * HD;

    if (L->qkv.w) {                                   /* gpt2: one Conv1D, then split q|k|v */
        rt_linear_apply(&L->qkv, b->xn, N, b->qkv);
        for (int i = 0; i < N; i++) {
            const float *r = b->qkv + (size_t)i * 3 * D;
            memcpy(b->q + (size_t)i * QD, r, (size_t)D * sizeof(float));
            memcpy(b->k + (size_t)i * KD, r + D, (size_t)D * sizeof(float));
            memcpy(b->v + (size_t)i * KD, r + 2 * D, (size_t)D * sizeof(float));
        }
    } else {
        rt_linear_apply(&L->q, b->xn, N, b->q);
        rt_linear_apply(&L->k, b->xn, N, b->k);
        rt_linear_apply(&L->v, b->xn, N, b->v);
    }
    fire_heads(bv, RT_HOOK_Q, l, b->q, H, HD, b->head);
    fire_heads(bv, RT_HOOK_K, l, b->k, KV, HD, b->head);
    fire_heads(bv, RT_HOOK_V, l, b->v, KV, HD, b->head);
    if (c->arch == RT_ARCH_LLAMA) {
        for (int s = 0; s < bv->n_seqs; s++) {
            rope_apply(c, b->rope_cos, b->rope_sin, b->q + (size_t)bv->off[s] * QD, bv->seqs[s].n, H, bv->pos0[s]);
            rope_apply(c, b->rope_cos, b->rope_sin, b->k + (size_t)bv->off[s] * KD, bv->seqs[s].n, KV, bv->pos0[s]);
        }
        fire_heads(bv, RT_HOOK_ROT_Q, l, b->q, H, HD, b->head);
        fire_heads(bv, RT_HOOK_ROT_K, l, b->k, KV, HD, b->head);
    }

    for (int s = 0; s < bv->n_seqs; s++) {
        const rt_seq *sq = &bv->seqs[s];
        int T = sq->n;
        const float *K = b->k + (size_t)bv->off[s] * KD, *V = b->v + (size_t)bv->off[s] * KD;
        if (sq->cache) {                              /* append, then attend over the whole cache */
            size_t base = (size_t)l * sq->cache->cap * KD;
            memcpy(sq->cache->k + base + (size_t)bv->pos0[s] * KD, K, (size_t)T * KD * sizeof(float));
            memcpy(sq->cache->v + base + (size_t)bv->pos0[s] * KD, V, (size_t)T * KD * sizeof(float));
            K = sq->cache->k + base; V = sq->cache->v + base;
        }
        for (int h = 0; h < H; h++) {
            int g = h / (H / KV);                     /* GQA: query heads share key/value head g */
            bool full = rt_hook_spec_wants(bv->spec, RT_HOOK_PATTERN, l, h) || rt_hook_spec_wants(bv->spec, RT_HOOK_ATTN_SCORES, l, h);
            attend_head(f, bv, l, h, s, b->q + (size_t)bv->off[s] * QD + (size_t)h * HD, QD, K + (size_t)g * HD,
                        V + (size_t)g * HD, KD, b->z + (size_t)bv->off[s] * QD + (size_t)h * HD, QD, b->S, full);
        }
    }
    fire_heads(bv, RT_HOOK_Z, l, b->z, H, HD, b->head);

    if (!rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, -1)) {
        rt_linear_apply(&L->o, b->z, N, b->ao);
        return;
    }
    /* hook_result: the heads someone hooks are projected one by one (and may be edited); the rest
     * go through one GEMM with the hooked heads' z zeroed. Sum = the usual attention output. */
    memcpy(b->zm, b->z, (size_t)N * QD * sizeof(float));
    for (int h = 0; h < H; h++)
        if (rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, h))
            for (int i = 0; i < N; i++) memset(b->zm + (size_t)i * QD + (size_t)h * HD, 0, (size_t)HD * sizeof(float));
    rt_linear_apply(&L->o, b->zm, N, b->ao);
    for (int s = 0; s < bv->n_seqs; s++) {
        int T = bv->seqs[s].n;
        for (int h = 0; h < H; h++) {
            if (!rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, h)) continue;
            const float *zh = b->z + (size_t)bv->off[s] * QD + (size_t)h * HD;
            rt_blas_threads_for((size_t)T, (size_t)D, (size_t)HD);
            if (L->o.in_major)    /* W_O stored (H*HD, D): rows h*HD.. are this head's */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, D, HD, 1.0f, zh, QD,
                            L->o.w + (size_t)h * HD * D, D, 0.0f, b->head, D);
            else                  /* W_O stored (D, H*HD): columns h*HD.. are this head's */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, D, HD, 1.0f, zh, QD,
                            L->o.w + (size_t)h * HD, QD, 0.0f, b->head, D);
            fire(bv, RT_HOOK_RESULT, l, h, s, bv->pos0[s], T, D, b->head);
            float *ao = b->ao + (size_t)bv->off[s] * D;
            for (size_t i = 0; i < (size_t)T * D; i++) ao[i] += b->head[i];
        }
    }
}

static void mlp_block(rt_forward *f, const batch_view *bv, int l, run_bufs *b) {
    const rt_config *c = &f->m->cfg;
    const rt_layer *L = &f->m->layers[l];
    int N = bv->N, F = c->d_mlp;
    size_t NF = (size_t)N * F;
    if (c->arch == RT_ARCH_GPT2) {
        rt_linear_apply(&L->up, b->xn, N, b->hid);
        fire_rows(bv, RT_HOOK_MLP_PRE, l, b->hid, F);
        for (size_t i = 0; i < NF; i++)
            b->hid[i] = c->act == RT_ACT_GELU_EXACT ? gelu_exact(b->hid[i]) : gelu_tanh(b->hid[i]);
    } else {
        rt_linear_apply(&L->gate, b->xn, N, b->gate);
        fire_rows(bv, RT_HOOK_MLP_PRE, l, b->gate, F);
        rt_linear_apply(&L->up, b->xn, N, b->hid);
        for (size_t i = 0; i < NF; i++) b->hid[i] *= silu(b->gate[i]);
    }
    fire_rows(bv, RT_HOOK_MLP_POST, l, b->hid, F);
    rt_linear_apply(&L->down, b->hid, N, b->ao);
}

/* ------------------------------------------------------------------ the run */

hs_status rt_check_sequence(const rt_config *c, int s, const int *ids, int n, int pos0, int cap) {
    if (n < 1) { hs_log_error("forward", "sequence %d is empty — give at least one token", s); return HS_EBADINPUT; }
    if ((int64_t)pos0 + n > c->n_ctx) {
        hs_log_error("forward", "sequence %d needs %d positions but the model's context is n_ctx=%d — shorten the prompt",
                     s, pos0 + n, c->n_ctx);
        return HS_EBADINPUT;
    }
    if (cap >= 0 && pos0 + n > cap) {
        hs_log_error("forward", "sequence %d overflows its KV cache (%d positions) — allocate a larger cache", s, cap);
        return HS_EBADINPUT;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size) {
            hs_log_error("forward", "token id %d at position %d of sequence %d is outside the vocabulary 0..%d", ids[i], i, s,
                         c->vocab_size - 1);
            return HS_EBADINPUT;
        }
    return HS_OK;
}

static hs_status check_batch(const rt_model *m, const rt_seq *seqs, int n_seqs) {
    for (int s = 0; s < n_seqs; s++) {
        const rt_seq *q = &seqs[s];
        hs_status st = rt_check_sequence(&m->cfg, s, q->ids, q->n, q->cache ? q->cache->len : 0, q->cache ? q->cache->cap : -1);
        if (st != HS_OK) return st;
    }
    return HS_OK;
}

/* Logits: rows requested by a logits hook are computed and fired; the last row of each sequence
 * (for sampling) is taken from them when present, so a logits intervention is honoured. */
static void logits_stage(rt_forward *f, const batch_view *bv, const float *xn, float *last_logits) {
    const rt_config *c = &f->m->cfg;
    int V = c->vocab_size, D = c->d_model;
    bool hooked = rt_hook_spec_wants(bv->spec, RT_HOOK_LOGITS, -1, -1);
    for (int s = 0; s < bv->n_seqs; s++) {
        int T = bv->seqs[s].n, b = hooked ? rt_hook_logits_first_row(bv->spec, T) : T - 1, e = T;
        if (!hooked && !last_logits) continue;
        float *buf = hs_arena_alloc(&f->act, (size_t)(e - b) * V * sizeof(float));
        rt_linear_apply(&f->m->lm_head, xn + ((size_t)bv->off[s] + b) * D, e - b, buf);
        if (hooked) rt_hook_fire_logits(bv->spec, s, bv->pos0[s], T, b, V, buf);
        if (last_logits) memcpy(last_logits + (size_t)s * V, buf + (size_t)(e - 1 - b) * V, (size_t)V * sizeof(float));
    }
}

hs_status rt_forward_run(rt_forward *f, const rt_seq *seqs, int n_seqs, const rt_hook_spec *spec, float *last_logits) {
    const rt_model *m = f->m;
    const rt_config *c = &m->cfg;
    hs_status st = check_batch(m, seqs, n_seqs);
    if (st != HS_OK) return st;
    hs_arena_reset(&f->act);

    batch_view bv = { seqs, n_seqs, NULL, NULL, 0, 0, 0, spec };
    bv.off = hs_arena_alloc(&f->act, (size_t)n_seqs * sizeof(int));
    bv.pos0 = hs_arena_alloc(&f->act, (size_t)n_seqs * sizeof(int));
    for (int s = 0; s < n_seqs; s++) {
        bv.off[s] = bv.N;
        bv.pos0[s] = seqs[s].cache ? seqs[s].cache->len : 0;
        bv.N += seqs[s].n;
        if (seqs[s].n > bv.T_max) bv.T_max = seqs[s].n;
        if (bv.pos0[s] + seqs[s].n > bv.Tk_max) bv.Tk_max = bv.pos0[s] + seqs[s].n;
    }
    int N = bv.N, D = c->d_model, QD = c->n_heads * c->d_head, KD = c->n_kv_heads * c->d_head, F = c->d_mlp;
    bool any_full = rt_hook_spec_wants(spec, RT_HOOK_PATTERN, -1, -1) || rt_hook_spec_wants(spec, RT_HOOK_ATTN_SCORES, -1, -1);
    bool any_result = rt_hook_spec_wants(spec, RT_HOOK_RESULT, -1, -1);
    size_t fN = (size_t)N;
    run_bufs b = {0};
    b.x = hs_arena_alloc(&f->act, fN * D * sizeof(float));
    b.xn = hs_arena_alloc(&f->act, fN * D * sizeof(float));
    if (c->arch == RT_ARCH_GPT2) b.qkv = hs_arena_alloc(&f->act, fN * 3 * D * sizeof(float));
    b.q = hs_arena_alloc(&f->act, fN * QD * sizeof(float));
    b.k = hs_arena_alloc(&f->act, fN * KD * sizeof(float));
    b.v = hs_arena_alloc(&f->act, fN * KD * sizeof(float));
    b.z = hs_arena_alloc(&f->act, fN * QD * sizeof(float));
    if (any_result) b.zm = hs_arena_alloc(&f->act, fN * QD * sizeof(float));
    b.ao = hs_arena_alloc(&f->act, fN * D * sizeof(float));
    b.hid = hs_arena_alloc(&f->act, fN * F * sizeof(float));
    if (c->arch == RT_ARCH_LLAMA) b.gate = hs_arena_alloc(&f->act, fN * F * sizeof(float));
    size_t srows = any_full ? (size_t)bv.T_max : (size_t)(bv.T_max < QBLOCK ? bv.T_max : QBLOCK);
    b.S = hs_arena_alloc(&f->act, srows * (size_t)bv.Tk_max * sizeof(float));
    b.head = hs_arena_alloc(&f->act, (size_t)bv.T_max * (size_t)(D > c->d_head ? D : c->d_head) * sizeof(float));
    if (c->arch == RT_ARCH_LLAMA) {
        size_t nt = (size_t)bv.Tk_max * (c->d_head / 2);
        b.rope_cos = hs_arena_alloc(&f->act, nt * sizeof(float));
        b.rope_sin = hs_arena_alloc(&f->act, nt * sizeof(float));
        rope_table(f, bv.Tk_max, b.rope_cos, b.rope_sin);
    }

    /* embeddings: hook_embed and hook_pos_embed see their parts before they are summed */
    for (int s = 0; s < n_seqs; s++)
        for (int i = 0; i < seqs[s].n; i++)
            memcpy(b.x + (size_t)(bv.off[s] + i) * D, m->tok_embed + (size_t)seqs[s].ids[i] * D, (size_t)D * sizeof(float));
    fire_rows(&bv, RT_HOOK_EMBED, -1, b.x, D);
    if (m->pos_embed) {
        for (int s = 0; s < n_seqs; s++)
            for (int i = 0; i < seqs[s].n; i++)
                memcpy(b.ao + (size_t)(bv.off[s] + i) * D, m->pos_embed + (size_t)(bv.pos0[s] + i) * D, (size_t)D * sizeof(float));
        fire_rows(&bv, RT_HOOK_POS_EMBED, -1, b.ao, D);
        for (size_t i = 0; i < fN * D; i++) b.x[i] += b.ao[i];
    }

    for (int l = 0; l < c->n_layers; l++) {
        const rt_layer *L = &m->layers[l];
        fire_rows(&bv, RT_HOOK_RESID_PRE, l, b.x, D);
        rt_norm_apply(c, &L->ln1, b.x, N, b.xn);
        fire_rows(&bv, RT_HOOK_LN1_NORMALIZED, l, b.xn, D);
        attention_block(f, &bv, l, &b);
        fire_rows(&bv, RT_HOOK_ATTN_OUT, l, b.ao, D);
        for (size_t i = 0; i < fN * D; i++) b.x[i] += b.ao[i];
        fire_rows(&bv, RT_HOOK_RESID_MID, l, b.x, D);
        rt_norm_apply(c, &L->ln2, b.x, N, b.xn);
        fire_rows(&bv, RT_HOOK_LN2_NORMALIZED, l, b.xn, D);
        mlp_block(f, &bv, l, &b);
        fire_rows(&bv, RT_HOOK_MLP_OUT, l, b.ao, D);
        for (size_t i = 0; i < fN * D; i++) b.x[i] += b.ao[i];
        fire_rows(&bv, RT_HOOK_RESID_POST, l, b.x, D);
    }
    rt_norm_apply(c, &m->ln_final, b.x, N, b.xn);
    fire_rows(&bv, RT_HOOK_LN_FINAL, -1, b.xn, D);
    logits_stage(f, &bv, b.xn, last_logits);
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].cache) seqs[s].cache->len += seqs[s].n;
    return HS_OK;
}
