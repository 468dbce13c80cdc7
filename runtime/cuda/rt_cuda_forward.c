/* rt_cuda_forward.c — the GPU forward pass (runtime/gpu.h): weights upload, the batch, the layer
 * loop and hook dispatch, written once over the ops table of rt_cuda_ops.h.
 *
 * It mirrors forward.c step for step — same packed (N = ΣT, D) layout, same hook events in the
 * same order, same input checks and error lines — so that the CUDA table reproduces the CPU
 * runtime and the CPU-reference table (opts.emulate) can prove the orchestration on machines
 * without a GPU. Plain C, compiled in every build; only the CUDA table needs nvcc.
 *
 * Memory: the weights live in one device allocation (fp32, or matrices converted once to bf16;
 * norms, biases and learned positions stay fp32). Activations live in one device block sized per
 * run and kept (grown, never shrunk) across runs, so a decode loop allocates nothing. Hooks copy
 * the tensor to a host staging buffer, fire, and copy it back.
 * bf16 mode: weight matrices are bf16; every GEMM input is split just before its GEMM into a bf16
 * hi + lo pair (see gemm_in) — or, opts.bf16_single_pass, rounded to bf16 once; GEMM outputs, the
 * residual stream and everything else are fp32.
 * bf16 fusion (unless opts.unfused): wherever no hook wants the tensors in between, element-wise
 * steps run as single passes (rt_cuda_fused.cu): the residual add + the block's output bias + the
 * next norm + the bf16 conversion of the next GEMM's input (resid_step), gpt2's QKV bias + split +
 * bf16 K/V copies, and the MLP activation + conversion. The fp32 mode always runs the unfused
 * kernels, so its exactness against the CPU runtime is untouched.
 */
#include "rt_cuda_gpu.h"
#include "runtime/arena.h"
#include "runtime/forward.h"
#include "runtime/half.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows per pass of the chunked MLP: the (rows, d_mlp) fp32 GEMM outputs are the largest
 * activations (Llama-1B shapes, 8 × 1024 tokens: 256 MiB each for gate and up), and nothing
 * outside the MLP needs them whole when no hook watches them; 2048 rows keep the GEMMs large
 * (M = 2048) and cut the activation block by a third or more (docs/gpu.md). */
enum { MLP_CHUNK = 2048 };

struct rt_gpu_kv {
    rt_gpu *g;
    float *k, *v;               /* device (L, cap, KV*HD) each */
    int cap, len;
};

typedef struct {                /* the run's device buffers, carved from g->act */
    float *x, *xn, *qkv, *q, *k, *v, *z, *zm, *ao, *hid, *gate, *lse, *S, *head, *zeros, *lg, *lgin;
    uint16_t *xg, *xg_lo;       /* bf16 GEMM-input scratch: hi and (split mode) lo parts */
    uint16_t *hg, *hg_lo;       /* chunked MLP: (mlp_rows, F) bf16 hidden, hi and lo */
    int mlp_rows;
    uint16_t *k16, *v16;        /* (Tk_sum, KV*HD) bf16 copies of the current layer's keys/values (attn_bf16) */
    int *ids, *pos, *rows;      /* (N), (N), (R) */
    rt_cuda_seq *seqs;          /* (L, n_seqs) attention descriptors, one row per layer */
    float *scratch;             /* host (T_max, max(HD, D)) per-head gather scratch */
} run_bufs;

/* ------------------------------------------------------------------ small helpers */

static size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }
static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

/* Element `i` of a weight matrix of dtype g->wt. */
static const void *welem(const rt_gpu *g, const void *base, size_t i) { return (const char *)base + i * g->wsz; }

/* ------------------------------------------------------------------ device, dtype, options */

void rt_gpu_opts_default(rt_gpu_opts *o) {
    memset(o, 0, sizeof *o);
    o->dtype = RT_GPU_BF16;
}

const char *rt_gpu_dtype_name(rt_gpu_dtype dt) { return dt == RT_GPU_F32 ? "f32" : "bf16"; }

hs_status rt_gpu_parse_dtype(const char *s, rt_gpu_dtype *dt) {
    if (strcmp(s, "f32") == 0 || strcmp(s, "fp32") == 0) { *dt = RT_GPU_F32; return HS_OK; }
    if (strcmp(s, "bf16") == 0) { *dt = RT_GPU_BF16; return HS_OK; }
    hs_log_error("headscope", "--dtype '%s' must be f32 or bf16", s);
    return HS_EBADINPUT;
}

hs_status rt_gpu_parse_device(const char *s, bool *cuda, int *device) {
    if (strcmp(s, "cpu") == 0) { *cuda = false; *device = 0; return HS_OK; }
    if (strcmp(s, "cuda") == 0) { *cuda = true; *device = 0; return HS_OK; }
    if (strncmp(s, "cuda:", 5) == 0) {
        char *end;
        long v = strtol(s + 5, &end, 10);
        if (end != s + 5 && *end == '\0' && v >= 0 && v < 1024) { *cuda = true; *device = (int)v; return HS_OK; }
    }
    hs_log_error("headscope", "--device '%s' must be cpu, cuda or cuda:N", s);
    return HS_EBADINPUT;
}

hs_status rt_gpu_device_check(int device, rt_gpu_device_info *info) {
    rt_gpu_device_info tmp;
    return rt_cuda_device_probe(device, info ? info : &tmp);
}

/* ------------------------------------------------------------------ weights */

typedef struct {                /* two passes over the weights: measure (base NULL), then place and upload */
    rt_gpu *g;
    char *base;
    size_t off;
    void *conv;                 /* host conversion buffer */
    size_t conv_cap;            /* bytes */
    bool round_bf16;            /* f32 storage of bf16-rounded matrices (opts.f32_bf16_weights) */
} wplace;

static const void *wput_raw(wplace *p, const void *src, size_t bytes) {
    size_t at = p->off;
    p->off += align256(bytes);
    if (!p->base) return NULL;
    p->g->ops->upload(p->g->ctx, p->base + at, src, bytes);
    return p->base + at;
}
static const float *wput_f32(wplace *p, const float *src, size_t n) {
    return src ? wput_raw(p, src, n * sizeof(float)) : NULL;
}
/* A weight matrix in g->wt: fp32 as is, bf16 rounded to nearest even once, here. */
static const void *wput_mat(wplace *p, const float *src, size_t n) {
    if (p->g->wt == RT_CUDA_F32 && !p->round_bf16) return wput_f32(p, src, n);
    size_t es = p->g->wt == RT_CUDA_F32 ? sizeof(float) : sizeof(uint16_t);
    if (!p->base) { p->off += align256(n * es); return NULL; }
    if (n * es > p->conv_cap) { free(p->conv); p->conv = hs_xmalloc(n * es); p->conv_cap = n * es; }
    if (p->g->wt == RT_CUDA_BF16)
        for (size_t i = 0; i < n; i++) ((uint16_t *)p->conv)[i] = rt_f32_to_bf16(src[i]);
    else   /* f32_bf16_weights: the bf16 value, widened back */
        for (size_t i = 0; i < n; i++) ((float *)p->conv)[i] = rt_cuda_bf16_to_f32(rt_f32_to_bf16(src[i]));
    return wput_raw(p, p->conv, n * es);
}
static dlinear wput_linear(wplace *p, const rt_linear *L) {
    dlinear d = { NULL, NULL, L->n_in, L->n_out, L->in_major };
    if (!L->w) return d;
    d.w = wput_mat(p, L->w, (size_t)L->n_in * L->n_out);
    d.b = wput_f32(p, L->b, (size_t)L->n_out);
    return d;
}
static dnorm wput_norm(wplace *p, const rt_norm *nm, int D) {
    dnorm d;
    d.w = wput_f32(p, nm->w, (size_t)D);
    d.b = wput_f32(p, nm->b, (size_t)D);
    return d;
}

static void place_weights(wplace *p) {
    rt_gpu *g = p->g;
    const rt_model *m = g->m;
    const rt_config *c = &m->cfg;
    size_t D = (size_t)c->d_model;
    g->tok_embed = wput_mat(p, m->tok_embed, (size_t)c->vocab_size * D);
    g->pos_embed = m->pos_embed ? wput_f32(p, m->pos_embed, (size_t)c->n_ctx * D) : NULL;
    for (int l = 0; l < c->n_layers; l++) {
        const rt_layer *L = &m->layers[l];
        dlayer *d = &g->layers[l];
        d->ln1 = wput_norm(p, &L->ln1, c->d_model);
        d->ln2 = wput_norm(p, &L->ln2, c->d_model);
        d->qkv = wput_linear(p, &L->qkv);
        d->q = wput_linear(p, &L->q);
        d->k = wput_linear(p, &L->k);
        d->v = wput_linear(p, &L->v);
        d->o = wput_linear(p, &L->o);
        d->gate = wput_linear(p, &L->gate);
        d->up = wput_linear(p, &L->up);
        d->down = wput_linear(p, &L->down);
    }
    g->ln_final = wput_norm(p, &m->ln_final, c->d_model);
    if (m->lm_head.w == m->tok_embed && !m->lm_head.in_major) {   /* tied: share the table */
        g->lm_head = (dlinear){ g->tok_embed, wput_f32(p, m->lm_head.b, (size_t)m->lm_head.n_out), m->lm_head.n_in,
                                m->lm_head.n_out, false };
    } else {
        g->lm_head = wput_linear(p, &m->lm_head);
    }
}

static hs_status check_model(const rt_model *m) {
    const rt_config *c = &m->cfg;
    if (c->d_head <= 0 || c->d_head > RT_CUDA_MAX_HD) {
        hs_log_error("cuda", "head_dim %d is outside the GPU attention kernel's 1..%d (%s) — use --device cpu",
                     c->d_head, RT_CUDA_MAX_HD, m->path ? m->path : "model");
        return HS_EUNSUPPORTED;
    }
    if (c->arch == RT_ARCH_LLAMA && c->d_head % 2) {
        hs_log_error("cuda", "head_dim %d is odd, RoPE needs pairs (%s) — use --device cpu", c->d_head, m->path ? m->path : "model");
        return HS_EUNSUPPORTED;
    }
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads) {
        hs_log_error("cuda", "n_heads %d is not a multiple of n_kv_heads %d (%s)", c->n_heads, c->n_kv_heads, m->path ? m->path : "model");
        return HS_EUNSUPPORTED;
    }
    if (c->arch == RT_ARCH_GPT2 && c->n_heads * c->d_head != c->d_model) {
        hs_log_error("cuda", "gpt2 model with n_heads*head_dim != d_model (%s) — use --device cpu", m->path ? m->path : "model");
        return HS_EUNSUPPORTED;
    }
    return HS_OK;
}

/* The fix to suggest when the weights do not fit: halving them is possible only from fp32. */
static const char *oom_fix(const rt_gpu *g) {
    return g->dtype == RT_GPU_F32 ? "use --dtype bf16, free the GPU, or use --device cpu" : "free the GPU or use --device cpu";
}

hs_status rt_gpu_init(const rt_model *m, const rt_gpu_opts *o, rt_gpu **out) {
    *out = NULL;
    rt_gpu_opts def;
    if (!o) { rt_gpu_opts_default(&def); o = &def; }
    const rt_cuda_ops *ops = o->emulate ? rt_cuda_ops_host() : o->profile ? rt_cuda_ops_profiled() : rt_cuda_ops_device();
    if (!o->emulate) {
        rt_gpu_device_info info;
        hs_status st = rt_cuda_device_probe(o->device, &info);
        if (st != HS_OK) return st;
        HS_ASSERT(ops != NULL);
    }
    hs_status st = o->no_weights ? HS_OK : check_model(m);
    if (st != HS_OK) return st;

    rt_gpu *g = hs_xcalloc(1, sizeof *g);
    g->m = m;
    g->ops = ops;
    g->dtype = o->dtype;
    g->wt = o->dtype == RT_GPU_F32 ? RT_CUDA_F32 : RT_CUDA_BF16;
    g->wsz = g->wt == RT_CUDA_F32 ? sizeof(float) : sizeof(uint16_t);
    g->split = g->wt == RT_CUDA_BF16 && !o->bf16_single_pass;
    g->attn_bf16 = o->dtype == RT_GPU_BF16 && !o->attn_fp32 && rt_cuda_attention_bf16_supported(m->cfg.d_head);
    g->unfused = o->unfused;
    g->hooks_sync = o->hooks_sync;
    g->mlp_chunk = o->mlp_chunk_rows > 0 ? o->mlp_chunk_rows : MLP_CHUNK;
    hs_arena_init(&g->host, 1u << 16);
    st = ops->ctx_init(o->device, o->dtype == RT_GPU_F32, &g->ctx);
    if (st != HS_OK) { g->ctx = NULL; rt_gpu_free(g); return st; }

    const rt_config *c = &m->cfg;
    g->layers = hs_xcalloc((size_t)c->n_layers, sizeof *g->layers);
    wplace p = { g, NULL, 0, NULL, 0, o->dtype == RT_GPU_F32 && o->f32_bf16_weights };
    if (o->no_weights) { *out = g; return HS_OK; }     /* a bare context: g->wblock stays NULL */
    place_weights(&p);                                   /* measure */
    size_t need = p.off, fr = 0, tot = 0;
    ops->mem_info(g->ctx, &fr, &tot);
    if (tot && need > fr) {
        hs_log_error("cuda", "the model needs %.1f MiB of GPU memory for its %s weights but only %.1f of %.1f MiB are free (%s) — "
                     "%s", mib(need), rt_gpu_dtype_name(g->dtype), mib(fr),
                     mib(tot), m->path ? m->path : "model", oom_fix(g));
        rt_gpu_free(g);
        return HS_EIO;
    }
    g->wblock = ops->alloc(g->ctx, need ? need : 1);
    if (!g->wblock) {
        hs_log_error("cuda", "out of GPU memory allocating %.1f MiB for the %s weights (%.1f of %.1f MiB free) — "
                     "%s", mib(need), rt_gpu_dtype_name(g->dtype), mib(fr), mib(tot), oom_fix(g));
        rt_gpu_free(g);
        return HS_EIO;
    }
    g->wbytes = need;
    p.base = g->wblock; p.off = 0;
    place_weights(&p);                                   /* place and upload */
    free(p.conv);
    HS_ASSERT(p.off == need);

    int half = c->d_head / 2;
    g->inv_freq = hs_xmalloc((size_t)(half ? half : 1) * sizeof(float));
    for (int i = 0; i < half; i++)   /* fp32, exactly as forward.c (and HF) compute inv_freq */
        g->inv_freq[i] = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->d_head);
    st = ops->check(g->ctx, "uploading the weights");
    if (st != HS_OK) { rt_gpu_free(g); return st; }
    *out = g;
    return HS_OK;
}

void rt_gpu_free(rt_gpu *g) {
    if (!g) return;
    if (g->ctx) {
        if (g->wblock) g->ops->free(g->ctx, g->wblock);
        if (g->act) g->ops->free(g->ctx, g->act);
        if (g->rope_cos) g->ops->free(g->ctx, g->rope_cos);
        if (g->rope_sin) g->ops->free(g->ctx, g->rope_sin);
        if (g->stage_pinned) g->ops->host_free(g->ctx, g->stage);   /* before the context goes */
        rt_cuda_hooks_free(g);
        g->ops->ctx_free(g->ctx);
    }
    if (!g->stage_pinned) free(g->stage);
    free(g->layers);
    free(g->inv_freq);
    hs_arena_free(&g->host);
    free(g);
}

size_t rt_gpu_device_bytes(const rt_gpu *g) {
    size_t rope = (size_t)g->rope_n * (g->m->cfg.d_head / 2) * 2 * sizeof(float);
    return g->wbytes + g->act_cap + rope;
}
size_t rt_gpu_peak_act_bytes(const rt_gpu *g) { return g->act_peak; }
const char *rt_gpu_backend_name(const rt_gpu *g) { return g->ops->name; }
void rt_gpu_mem_info(rt_gpu *g, size_t *free_b, size_t *total_b) { g->ops->mem_info(g->ctx, free_b, total_b); }

bool rt_gpu_emulated(const rt_gpu *g) { return !g->ops->on_device; }

void rt_gpu_set_attn_hook(rt_gpu *g, rt_gpu_attn_fn fn, void *user) { g->attn_fn = fn; g->attn_user = user; }
void rt_gpu_set_hooks_sync(rt_gpu *g, bool on) { g->hooks_sync = on; }

void *rt_gpu_mem_alloc(rt_gpu *g, size_t bytes, const char *what) {
    void *p = g->ops->alloc(g->ctx, bytes ? bytes : 1);
    if (!p) {
        size_t fr = 0, tot = 0;
        g->ops->mem_info(g->ctx, &fr, &tot);
        hs_log_error("cuda", "out of GPU memory allocating %.1f MiB for %s (%.1f of %.1f MiB free) — use a smaller batch",
                     mib(bytes), what, mib(fr), mib(tot));
    }
    return p;
}
void rt_gpu_mem_free(rt_gpu *g, void *p) { if (p) g->ops->free(g->ctx, p); }
void rt_gpu_mem_upload(rt_gpu *g, void *dst, const void *src, size_t bytes) { g->ops->upload(g->ctx, dst, src, bytes); }
hs_status rt_gpu_mem_download(rt_gpu *g, void *dst, const void *src, size_t bytes) {
    return rt_cuda_download(g, dst, src, bytes, "copying results to the host");
}
void rt_gpu_mem_zero(rt_gpu *g, void *dst, size_t bytes) { g->ops->zero(g->ctx, dst, bytes); }
void rt_gpu_note_error(rt_gpu *g, const char *what, const char *err) { g->ops->note_error(g->ctx, what, err); }

void rt_gpu_calc_gemm(rt_gpu *g, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    g->ops->gemm(g->ctx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, RT_CUDA_F32, beta, C, ldc);
}
void rt_gpu_calc_target_dots(rt_gpu *g, const float *Y, int R, int D, const float *W, const int *tgt, double *lt,
                             double *ynorm) {
    g->ops->target_dots(g->ctx, Y, R, D, W, tgt, lt, ynorm);
}
void rt_gpu_calc_rank_count(rt_gpu *g, const float *C, int R, int Wb, int v0, const int *tgt, const double *lt,
                            const double *ynorm, double rel, int *cnt) {
    g->ops->rank_count(g->ctx, C, R, Wb, v0, tgt, lt, ynorm, rel, cnt);
}
hs_status rt_gpu_calc_check(rt_gpu *g, const char *where) { return g->ops->check(g->ctx, where); }

/* ------------------------------------------------------------------ KV cache */

hs_status rt_gpu_kv_init(rt_gpu *g, int cap, rt_gpu_kv **out) {
    const rt_config *c = &g->m->cfg;
    *out = NULL;
    HS_ASSERT(cap > 0);
    size_t n = (size_t)c->n_layers * (size_t)cap * (size_t)c->n_kv_heads * (size_t)c->d_head;
    rt_gpu_kv *kv = hs_xcalloc(1, sizeof *kv);
    kv->g = g; kv->cap = cap;
    kv->k = rt_gpu_mem_alloc(g, n * sizeof(float), "the KV cache");
    kv->v = kv->k ? rt_gpu_mem_alloc(g, n * sizeof(float), "the KV cache") : NULL;
    if (!kv->v) { rt_gpu_kv_free(kv); return HS_EIO; }
    g->ops->zero(g->ctx, kv->k, n * sizeof(float));
    g->ops->zero(g->ctx, kv->v, n * sizeof(float));
    *out = kv;
    return HS_OK;
}

void rt_gpu_kv_free(rt_gpu_kv *c) {
    if (!c) return;
    rt_gpu_mem_free(c->g, c->k);
    rt_gpu_mem_free(c->g, c->v);
    free(c);
}

int rt_gpu_kv_len(const rt_gpu_kv *c) { return c->len; }

/* ------------------------------------------------------------------ the run */

/* forward.c's checks (rt_check_sequence), plus: a cache must belong to this context. */
static hs_status check_batch(const rt_gpu *g, const rt_gpu_seq *seqs, int n_seqs) {
    for (int s = 0; s < n_seqs; s++) {
        const rt_gpu_seq *q = &seqs[s];
        if (q->cache && q->cache->g != g) {
            hs_log_error("forward", "sequence %d's KV cache belongs to another GPU context — allocate it with this one", s);
            return HS_EBADINPUT;
        }
        hs_status st = rt_check_sequence(&g->m->cfg, s, q->ids, q->n, q->cache ? q->cache->len : 0, q->cache ? q->cache->cap : -1);
        if (st != HS_OK) return st;
    }
    return HS_OK;
}

/* cos/sin tables for positions 0..n-1, grown on demand (forward.c's formula: fp32 angle, double cos/sin). */
static hs_status rope_ensure(rt_gpu *g, int n) {
    if (n <= g->rope_n) return HS_OK;
    int half = g->m->cfg.d_head / 2;
    int want = n < 256 ? 256 : (n + 255) / 256 * 256;
    size_t cnt = (size_t)want * half;
    float *cs = hs_xmalloc(cnt * sizeof(float)), *sn = hs_xmalloc(cnt * sizeof(float));
    for (int p = 0; p < want; p++)
        for (int i = 0; i < half; i++) {
            float ang = (float)p * g->inv_freq[i];
            cs[(size_t)p * half + i] = (float)cos((double)ang);
            sn[(size_t)p * half + i] = (float)sin((double)ang);
        }
    rt_gpu_mem_free(g, g->rope_cos); rt_gpu_mem_free(g, g->rope_sin);
    g->rope_cos = rt_gpu_mem_alloc(g, cnt * sizeof(float), "the RoPE tables");
    g->rope_sin = g->rope_cos ? rt_gpu_mem_alloc(g, cnt * sizeof(float), "the RoPE tables") : NULL;
    hs_status st = HS_OK;
    if (!g->rope_sin) {
        rt_gpu_mem_free(g, g->rope_cos);
        g->rope_cos = NULL; g->rope_n = 0; st = HS_EIO;
    } else {
        g->ops->upload(g->ctx, g->rope_cos, cs, cnt * sizeof(float));
        g->ops->upload(g->ctx, g->rope_sin, sn, cnt * sizeof(float));
        g->rope_n = want;
    }
    free(cs); free(sn);
    return st;
}

typedef struct {                /* what a run needs, for sizing the activation block */
    int N, T_max, Tk_max, R, n_seqs, Tk_sum;
    bool any_full, any_result;
    int mlp_rows;               /* rows of the MLP's (rows, d_mlp) buffers: N, or MLP_CHUNK when chunked */
    bool mlp_chunked;           /* the fused MLP runs in row chunks (see mlp_block) */
} run_shape;


/* Carve the buffers out of `base` (NULL: only measure). Returns the bytes needed. */
static size_t carve(const rt_gpu *g, const run_shape *rs, char *base, run_bufs *b) {
    const rt_config *c = &g->m->cfg;
    size_t N = (size_t)rs->N, D = (size_t)c->d_model, QD = (size_t)c->n_heads * c->d_head;
    size_t KD = (size_t)c->n_kv_heads * c->d_head, F = (size_t)c->d_mlp, H = (size_t)c->n_heads;
    size_t off = 0;
#define TAKE(ptr, count, type) do { size_t n_ = (size_t)(count); \
        if (base) { b->ptr = n_ ? (type *)(void *)(base + off) : NULL; } \
        off += align256(n_ * sizeof(type)); } while (0)
    TAKE(x, N * D, float);
    TAKE(xn, N * D, float);
    TAKE(qkv, c->arch == RT_ARCH_GPT2 ? N * 3 * D : 0, float);
    TAKE(q, N * QD, float);
    TAKE(k, N * KD, float);
    TAKE(v, N * KD, float);
    TAKE(z, N * QD, float);
    TAKE(zm, rs->any_result ? N * QD : 0, float);
    TAKE(ao, N * D, float);
    size_t MR = (size_t)rs->mlp_rows;
    TAKE(hid, MR * F, float);
    TAKE(gate, c->arch == RT_ARCH_LLAMA ? MR * F : 0, float);
    TAKE(hg, rs->mlp_chunked ? MR * F : 0, uint16_t);
    TAKE(hg_lo, rs->mlp_chunked && g->split ? MR * F : 0, uint16_t);
    TAKE(lse, N * H, float);
    TAKE(S, rs->any_full ? (size_t)rs->T_max * rs->Tk_max : 0, float);
    TAKE(head, rs->any_result ? (size_t)rs->T_max * D : 0, float);
    TAKE(zeros, rs->any_result ? (size_t)c->d_head : 0, float);
    TAKE(lg, (size_t)rs->R * c->vocab_size, float);
    TAKE(lgin, (size_t)rs->R * D, float);
    size_t gin = D > QD ? D : QD;
    if (F > gin && !rs->mlp_chunked) gin = F;   /* unchunked: the MLP's hidden goes through xg too */
    TAKE(xg, g->wt == RT_CUDA_BF16 ? N * gin : 0, uint16_t);
    TAKE(xg_lo, g->split ? N * gin : 0, uint16_t);
    TAKE(k16, g->attn_bf16 ? (size_t)rs->Tk_sum * KD : 0, uint16_t);
    TAKE(v16, g->attn_bf16 ? (size_t)rs->Tk_sum * KD : 0, uint16_t);
    TAKE(ids, N, int);
    TAKE(pos, N, int);
    TAKE(rows, rs->R, int);
    TAKE(seqs, (size_t)c->n_layers * rs->n_seqs, rt_cuda_seq);
#undef TAKE
    return off;
}

/* A GEMM input: fp32 (lo NULL), bf16 (lo NULL), or bf16 hi + lo with x ≈ hi + lo.
 * Why the pair: rounding every activation to bf16 (8 significant bits) before its GEMM costs the
 * trained test models 5e-2..8e-2 in log-softmax on top of the weights' own rounding — over the
 * issue's bound on its own. With x = hi + lo (lo = bf16(x − hi), 16 significant bits together)
 * and W·x = W·hi + W·lo, two bf16 tensor-core GEMMs with fp32 accumulation leave ~1e-4: the bf16
 * mode's error is then the weight quantisation alone. Costs a second GEMM per linear layer;
 * opts.bf16_single_pass turns it off. */
typedef struct { const void *hi, *lo; } gin;

static gin gemm_in(rt_gpu *g, const run_bufs *b, const float *x, size_t n) {
    gin r = { x, NULL };
    if (g->wt == RT_CUDA_F32) return r;
    if (g->split) {
        g->ops->to_bf16_split(g->ctx, b->xg, b->xg_lo, x, n);
        r.hi = b->xg; r.lo = b->xg_lo;
    } else {
        g->ops->to_bf16(g->ctx, b->xg, x, n);
        r.hi = b->xg;
    }
    return r;
}
/* The same input advanced by `elems` elements (a column block of a wider matrix). */
static gin gin_at(const rt_gpu *g, gin x, size_t elems) {
    size_t es = g->wt == RT_CUDA_F32 ? sizeof(float) : sizeof(uint16_t);
    gin r = { (const char *)x.hi + elems * es, x.lo ? (const char *)x.lo + elems * es : NULL };
    return r;
}

/* C (M, N) = x (M, K; ldx) · op(W) with W of dtype g->wt (ldw, transposed when trans_w), summing
 * the hi and lo GEMMs of a split input. */
static void gemm_w(rt_gpu *g, gin x, int ldx, bool trans_w, int M, int N, int K, const void *W, int ldw, float *C, int ldc) {
    g->ops->gemm(g->ctx, false, trans_w, M, N, K, 1.0f, x.hi, ldx, W, ldw, g->wt, 0.0f, C, ldc);
    if (x.lo) g->ops->gemm(g->ctx, false, trans_w, M, N, K, 1.0f, x.lo, ldx, W, ldw, g->wt, 1.0f, C, ldc);
}

/* y (rows, n_out) = x (rows, n_in; ldx) · Wᵀ + b, whichever layout W has. */
static void linear_nobias(rt_gpu *g, const dlinear *L, gin x, int ldx, int rows, float *y) {
    if (L->in_major) gemm_w(g, x, ldx, false, rows, L->n_out, L->n_in, L->w, L->n_out, y, L->n_out);
    else gemm_w(g, x, ldx, true, rows, L->n_out, L->n_in, L->w, L->n_in, y, L->n_out);
}
static void linear(rt_gpu *g, const dlinear *L, gin x, int ldx, int rows, float *y) {
    linear_nobias(g, L, x, ldx, rows, y);
    if (L->b) g->ops->add_bias(g->ctx, y, L->b, rows, L->n_out);
}

/* Keys/values of sequence s in layer l: the cache (after this run's append) or the packed buffers. */
static const float *seq_k(const rt_gpu *g, const batch_view *bv, const run_bufs *b, int l, int s, bool v) {
    const rt_config *c = &g->m->cfg;
    size_t KD = (size_t)c->n_kv_heads * c->d_head;
    const rt_gpu_kv *kv = bv->seqs[s].cache;
    if (kv) return (v ? kv->v : kv->k) + (size_t)l * kv->cap * KD;
    return (v ? b->v : b->k) + (size_t)bv->off[s] * KD;
}

#define TRY(expr) do { hs_status st_ = (expr); if (st_ != HS_OK) return st_; } while (0)

/* Attention of layer l on the GEMM input xin (ln1's output, see resid_step) into b->ao; with
 * skip_bias the output projection's bias is left out (resid_step's fused pass adds it). */
static hs_status attention_block(rt_gpu *g, const batch_view *bv, int l, run_bufs *b, gin xin, bool skip_bias) {
    const rt_cuda_ops *ops = g->ops;
    rt_cuda_ctx *cx = g->ctx;
    const rt_config *c = &g->m->cfg;
    const dlayer *L = &g->layers[l];
    int N = bv->N, D = c->d_model, H = c->n_heads, KV = c->n_kv_heads, HD = c->d_head;
    int QD = H * HD, KD = KV * HD;
    bool any_cache = false;
    for (int s = 0; s < bv->n_seqs; s++) any_cache |= bv->seqs[s].cache != NULL;

    bool kv16_made = false;                           /* b->k16 / b->v16 already hold bf16(k), bf16(v) */
    if (L->qkv.w && g->wt == RT_CUDA_BF16 && !g->unfused) {
        /* gpt2, fused: bias + split in one pass, and the tensor-core attention's bf16 K/V copies with
         * it when nothing may change k or v before attention (a hook on q/k/v may edit them; with a
         * cache the copies come from the cache) */
        bool kv16 = g->attn_bf16 && !any_cache && !rt_hook_spec_wants(bv->spec, RT_HOOK_Q, l, -1) &&
                    !rt_hook_spec_wants(bv->spec, RT_HOOK_K, l, -1) && !rt_hook_spec_wants(bv->spec, RT_HOOK_V, l, -1);
        linear_nobias(g, &L->qkv, xin, D, N, b->qkv);
        ops->qkv_split(cx, b->qkv, L->qkv.b, N, QD, KD, b->q, b->k, b->v, kv16 ? b->k16 : NULL, kv16 ? b->v16 : NULL);
        kv16_made = kv16;
    } else if (L->qkv.w) {                            /* gpt2: one Conv1D, then split q|k|v */
        linear(g, &L->qkv, xin, D, N, b->qkv);
        ops->copy2d(cx, b->q, QD, b->qkv, 3 * D, N, D);
        ops->copy2d(cx, b->k, KD, b->qkv + D, 3 * D, N, D);
        ops->copy2d(cx, b->v, KD, b->qkv + 2 * D, 3 * D, N, D);
    } else {
        linear(g, &L->q, xin, D, N, b->q);
        linear(g, &L->k, xin, D, N, b->k);
        linear(g, &L->v, xin, D, N, b->v);
    }
    TRY(rt_cuda_fire_heads(g, bv, RT_HOOK_Q, l, b->q, H, HD));
    TRY(rt_cuda_fire_heads(g, bv, RT_HOOK_K, l, b->k, KV, HD));
    TRY(rt_cuda_fire_heads(g, bv, RT_HOOK_V, l, b->v, KV, HD));
    if (c->arch == RT_ARCH_LLAMA) {
        ops->rope(cx, b->q, QD, N, H, HD, b->pos, g->rope_cos, g->rope_sin, c->rope_interleaved);
        ops->rope(cx, b->k, KD, N, KV, HD, b->pos, g->rope_cos, g->rope_sin, c->rope_interleaved);
        TRY(rt_cuda_fire_heads(g, bv, RT_HOOK_ROT_Q, l, b->q, H, HD));
        TRY(rt_cuda_fire_heads(g, bv, RT_HOOK_ROT_K, l, b->k, KV, HD));
    }
    for (int s = 0; s < bv->n_seqs; s++) {            /* append to the caches */
        rt_gpu_kv *kv = bv->seqs[s].cache;
        if (!kv) continue;
        size_t at = (size_t)l * kv->cap * KD + (size_t)bv->pos0[s] * KD;
        ops->copy2d(cx, kv->k + at, KD, b->k + (size_t)bv->off[s] * KD, KD, bv->seqs[s].n, KD);
        ops->copy2d(cx, kv->v + at, KD, b->v + (size_t)bv->off[s] * KD, KD, bv->seqs[s].n, KD);
    }

    if (g->attn_bf16 && !kv16_made) {   /* the tensor-core kernel reads bf16 copies of k and v (half the bytes, 16-byte loads) */
        if (!any_cache) {   /* koff16 = off: one conversion each */
            ops->to_bf16(cx, b->k16, b->k, (size_t)N * KD);
            ops->to_bf16(cx, b->v16, b->v, (size_t)N * KD);
        } else {
            for (int s = 0; s < bv->n_seqs; s++) {
                size_t rows = (size_t)bv->pos0[s] + bv->seqs[s].n, at = (size_t)bv->koff16[s] * KD;
                ops->to_bf16(cx, b->k16 + at, seq_k(g, bv, b, l, s, false), rows * KD);
                ops->to_bf16(cx, b->v16 + at, seq_k(g, bv, b, l, s, true), rows * KD);
            }
        }
    }
    float scale = (float)(1.0 / sqrt((double)HD));
    (g->attn_bf16 ? ops->attention_bf16 : ops->attention)(cx, b->z, QD, b->lse, H, b->q, QD, b->seqs + (size_t)l * bv->n_seqs,
                                                          bv->n_seqs, bv->T_max, H, KV, HD, c->sliding_window, scale);
    if (g->attn_fn)
        for (int s = 0; s < bv->n_seqs; s++) {
            rt_gpu_attn_event ev;
            memset(&ev, 0, sizeof ev);
            ev.layer = l; ev.seq = s; ev.n_seqs = bv->n_seqs; ev.T = bv->seqs[s].n; ev.pos0 = bv->pos0[s];
            ev.n_heads = H; ev.n_kv_heads = KV; ev.d_head = HD; ev.window = c->sliding_window; ev.scale = scale;
            ev.q = b->q + (size_t)bv->off[s] * QD; ev.ldq = QD;
            ev.k = seq_k(g, bv, b, l, s, false); ev.ldk = KD;
            ev.lse = b->lse + (size_t)bv->off[s] * H; ev.ldlse = H;
            ev.stream = ops->stream(cx); ev.emulated = !ops->on_device; ev.bf16 = g->attn_bf16;
            ev.k16 = g->attn_bf16 ? b->k16 + (size_t)bv->koff16[s] * KD : NULL;
            g->attn_fn(&ev, g->attn_user);
        }

    /* Heads whose scores or pattern are hooked: the full (T, Tk) matrix, one head at a time, as
     * forward.c builds it; z of the head is recomputed from the (possibly edited) pattern. */
    for (int s = 0; s < bv->n_seqs; s++) {
        int T = bv->seqs[s].n, pos0 = bv->pos0[s], Tk = pos0 + T;
        for (int h = 0; h < H; h++) {
            bool sc = rt_hook_spec_wants(bv->spec, RT_HOOK_ATTN_SCORES, l, h), pt = rt_hook_spec_wants(bv->spec, RT_HOOK_PATTERN, l, h);
            if (!sc && !pt) continue;
            int gi = h / (H / KV);
            const float *Qh = b->q + (size_t)bv->off[s] * QD + (size_t)h * HD;
            const float *Kg = seq_k(g, bv, b, l, s, false) + (size_t)gi * HD, *Vg = seq_k(g, bv, b, l, s, true) + (size_t)gi * HD;
            ops->gemm(cx, false, true, T, Tk, HD, scale, Qh, QD, Kg, KD, RT_CUDA_F32, 0.0f, b->S, Tk);
            ops->mask_scores(cx, b->S, T, Tk, pos0, c->sliding_window);
            if (sc) TRY(rt_cuda_fire_one(g, bv, RT_HOOK_ATTN_SCORES, l, h, s, b->S, T, Tk));
            ops->softmax_rows(cx, b->S, T, Tk, pos0, c->sliding_window);
            if (pt) TRY(rt_cuda_fire_one(g, bv, RT_HOOK_PATTERN, l, h, s, b->S, T, Tk));
            ops->gemm(cx, false, false, T, HD, Tk, 1.0f, b->S, Tk, Vg, KD, RT_CUDA_F32, 0.0f,
                      b->z + (size_t)bv->off[s] * QD + (size_t)h * HD, QD);
        }
    }
    TRY(rt_cuda_fire_heads(g, bv, RT_HOOK_Z, l, b->z, H, HD));

    if (!rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, -1)) {
        (skip_bias ? linear_nobias : linear)(g, &L->o, gemm_in(g, b, b->z, (size_t)N * QD), QD, N, b->ao);
        return HS_OK;
    }
    /* hook_result, as forward.c: hooked heads are projected one by one (and may be edited); the
     * rest go through one GEMM with the hooked heads' z zeroed. The bias stays here (plan_step). */
    HS_ASSERT(!skip_bias);
    ops->copy2d(cx, b->zm, QD, b->z, QD, N, QD);
    for (int h = 0; h < H; h++)
        if (rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, h)) ops->copy2d(cx, b->zm + (size_t)h * HD, QD, b->zeros, 0, N, HD);
    linear(g, &L->o, gemm_in(g, b, b->zm, (size_t)N * QD), QD, N, b->ao);
    gin zin = gemm_in(g, b, b->z, (size_t)N * QD);
    for (int s = 0; s < bv->n_seqs; s++) {
        int T = bv->seqs[s].n;
        for (int h = 0; h < H; h++) {
            if (!rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, h)) continue;
            gin zh = gin_at(g, zin, (size_t)bv->off[s] * QD + (size_t)h * HD);
            if (L->o.in_major)    /* W_O stored (H*HD, D): rows h*HD.. are this head's */
                gemm_w(g, zh, QD, false, T, D, HD, welem(g, L->o.w, (size_t)h * HD * D), D, b->head, D);
            else                  /* W_O stored (D, H*HD): columns h*HD.. are this head's */
                gemm_w(g, zh, QD, true, T, D, HD, welem(g, L->o.w, (size_t)h * HD), QD, b->head, D);
            TRY(rt_cuda_fire_one(g, bv, RT_HOOK_RESULT, l, h, s, b->head, T, D));
            ops->add(cx, b->ao + (size_t)bv->off[s] * D, b->head, (size_t)T * D);
        }
    }
    return HS_OK;
}

/* The fused MLP of `rows` rows (no hook needs the fp32 activations): the up (and gate) GEMM on x
 * into b->hid (b->gate), the activation + bf16 conversion in one pass into h (rt_cuda_fused.cu;
 * GELU in float there, in double on the unfused path), the down GEMM into y (rows, D). */
static void mlp_fused_rows(rt_gpu *g, const dlayer *L, const run_bufs *b, gin x, int rows, gin h, float *y, bool skip_bias) {
    const rt_cuda_ops *ops = g->ops;
    const rt_config *c = &g->m->cfg;
    int D = c->d_model, F = c->d_mlp;
    uint16_t *hi = (uint16_t *)h.hi, *lo = (uint16_t *)h.lo;
    if (c->arch == RT_ARCH_GPT2) {
        linear_nobias(g, &L->up, x, D, rows, b->hid);
        ops->bias_gelu_bf16(g->ctx, b->hid, L->up.b, rows, F, c->act == RT_ACT_GELU_EXACT, hi, lo);
    } else {
        linear(g, &L->gate, x, D, rows, b->gate);
        linear(g, &L->up, x, D, rows, b->hid);
        ops->swiglu_bf16(g->ctx, b->hid, b->gate, (size_t)rows * F, hi, lo);
    }
    (skip_bias ? linear_nobias : linear)(g, &L->down, h, F, rows, y);
}

/* The MLP of layer l on the GEMM input xin (ln2's output) into b->ao; with skip_bias the down
 * projection's bias is left out (resid_step's fused pass adds it). */
static hs_status mlp_block(rt_gpu *g, const batch_view *bv, int l, run_bufs *b, gin xin, bool skip_bias) {
    const rt_cuda_ops *ops = g->ops;
    const rt_config *c = &g->m->cfg;
    const dlayer *L = &g->layers[l];
    int N = bv->N, D = c->d_model, F = c->d_mlp;
    size_t NF = (size_t)N * F;
    void (*down)(rt_gpu *, const dlinear *, gin, int, int, float *) = skip_bias ? linear_nobias : linear;
    if (b->hg) {
        /* chunked (no MLP hook anywhere in the run): per block of rows; the fp32 hidden never
         * exists for more than b->mlp_rows rows */
        gin h = { b->hg, g->split ? b->hg_lo : NULL };
        for (int r0 = 0; r0 < N; r0 += b->mlp_rows) {
            int rows = N - r0 < b->mlp_rows ? N - r0 : b->mlp_rows;
            mlp_fused_rows(g, L, b, gin_at(g, xin, (size_t)r0 * D), rows, h, b->ao + (size_t)r0 * D, skip_bias);
        }
        return HS_OK;
    }
    if (g->wt == RT_CUDA_BF16 && !g->unfused && !rt_hook_spec_wants(bv->spec, RT_HOOK_MLP_PRE, l, -1) &&
        !rt_hook_spec_wants(bv->spec, RT_HOOK_MLP_POST, l, -1)) {
        /* this layer's MLP unhooked (another's is not): one pass, the hidden's bf16 through xg */
        mlp_fused_rows(g, L, b, xin, N, (gin){ b->xg, g->split ? b->xg_lo : NULL }, b->ao, skip_bias);
        return HS_OK;
    }
    if (c->arch == RT_ARCH_GPT2) {
        linear(g, &L->up, xin, D, N, b->hid);
        TRY(rt_cuda_fire_rows(g, bv, RT_HOOK_MLP_PRE, l, b->hid, F));
        ops->gelu(g->ctx, b->hid, NF, c->act == RT_ACT_GELU_EXACT);
    } else {
        linear(g, &L->gate, xin, D, N, b->gate);
        TRY(rt_cuda_fire_rows(g, bv, RT_HOOK_MLP_PRE, l, b->gate, F));
        linear(g, &L->up, xin, D, N, b->hid);
        ops->swiglu(g->ctx, b->hid, b->gate, NF);
    }
    TRY(rt_cuda_fire_rows(g, bv, RT_HOOK_MLP_POST, l, b->hid, F));
    down(g, &L->down, gemm_in(g, b, b->hid, NF), F, N, b->ao);
    return HS_OK;
}

/* Logits, as forward.c: rows requested by a logits hook (and each sequence's last row) go through
 * lm_head in one GEMM; hooks fire on the host copy, and last_logits is taken after them. */
static hs_status logits_stage(rt_gpu *g, const batch_view *bv, run_bufs *b, const int *lb, int R, float *last_logits) {
    if (R == 0) return HS_OK;
    const rt_config *c = &g->m->cfg;
    int V = c->vocab_size, D = c->d_model;
    g->ops->gather_rows(g->ctx, b->lgin, b->xn, RT_CUDA_F32, b->rows, R, D);
    linear(g, &g->lm_head, gemm_in(g, b, b->lgin, (size_t)R * D), D, R, b->lg);
    float *h = rt_cuda_stage(g, (size_t)R * V);
    TRY(rt_cuda_download(g, h, b->lg, (size_t)R * V * sizeof(float), "logits"));
    bool hooked = rt_hook_spec_wants(bv->spec, RT_HOOK_LOGITS, -1, -1);
    int at = 0;
    for (int s = 0; s < bv->n_seqs; s++) {
        if (lb[s] < 0) continue;
        int T = bv->seqs[s].n, bb = lb[s], e = T;
        float *buf = h + (size_t)at * V;
        at += e - bb;
        if (hooked) rt_hook_fire_logits(bv->spec, s, bv->pos0[s], T, bb, V, buf);
        if (last_logits) memcpy(last_logits + (size_t)s * V, buf + (size_t)(e - 1 - bb) * V, (size_t)V * sizeof(float));
    }
    return HS_OK;
}

/* A hook point at a layer (l = -1: model-level points); p = RT_HOOK_N: none. */
typedef struct { rt_hook_point p; int l; } hook_at;

static bool wants(const batch_view *bv, hook_at h) { return rt_hook_spec_wants(bv->spec, h.p, h.l, -1); }

/* How one residual step (resid_step) runs: which of its parts go into the one add_norm_bf16 pass.
 * Each part can join only when no hook watches a tensor it would skip. */
typedef struct {
    bool fused;   /* norm + bf16 conversion of its output (nothing wants the fp32 normalised rows) */
    bool add;     /* ... and the residual add (nothing wants the updated stream before the norm) */
    bool bias;    /* ... and the block's output bias (nothing wants the block's output): the block skips it */
} step_plan;

/* bias_movable: the block can leave its output bias out (not so under hook_result, where the bias
 * is added before the hooked heads' results, as forward.c does). */
static step_plan plan_step(const rt_gpu *g, const batch_view *bv, bool has_y, hook_at yh, const hook_at *xh, int nx,
                           hook_at nh, bool bias_movable) {
    step_plan p = { false, false, false };
    if (g->wt != RT_CUDA_BF16 || g->unfused || wants(bv, nh)) return p;
    p.fused = true;
    bool xw = false;
    for (int i = 0; i < nx; i++) xw |= wants(bv, xh[i]);
    p.add = has_y && !xw;
    p.bias = p.add && bias_movable && !wants(bv, yh);
    return p;
}

/* One residual step, in forward.c's order: y (N, D), the output of the block just run (NULL before
 * the first layer), has its bias; hook yh fires on it; x += y; hooks xh[0..nx) fire on x; xn =
 * norm nm of x; hook nh fires on xn; *next (when next != NULL) = xn as the next block's GEMM input.
 * Unfused (plan p all false): those kernels one by one. Fused: the parts in p run as one
 * add_norm_bf16 pass — the bias (`bias`, which the block then skipped; NULL when p.bias is false
 * or there is none), the add, the norm and the bf16 pair of xn straight into b->xg / b->xg_lo.
 * That pair lives until the next gemm_in or fused activation writes xg: each block consumes its
 * input in its first GEMMs (gpt2 qkv; llama q, k, v; gpt2 up; llama gate, up) before writing xg,
 * and nothing between the step and the block writes it. xn itself is written only when keep_xn
 * (the logits gather reads it after ln_final) or the step is not fused. */
static hs_status resid_step(rt_gpu *g, const batch_view *bv, run_bufs *b, step_plan p, float *y, const float *bias,
                            hook_at yh, const hook_at *xh, int nx, const dnorm *nm, hook_at nh, bool keep_xn, gin *next) {
    const rt_cuda_ops *ops = g->ops;
    const rt_config *c = &g->m->cfg;
    int N = bv->N, D = c->d_model;
    bool rms = c->norm == RT_NORM_RMS;
    HS_ASSERT(!bias || p.bias);
    if (y && !p.bias) TRY(rt_cuda_fire_rows(g, bv, yh.p, yh.l, y, D));
    if (y && !p.add) { ops->add(g->ctx, b->x, y, (size_t)N * D); y = NULL; }
    for (int i = 0; i < nx; i++) TRY(rt_cuda_fire_rows(g, bv, xh[i].p, xh[i].l, b->x, D));
    if (p.fused) {
        gin r = { next ? b->xg : NULL, next && g->split ? b->xg_lo : NULL };
        ops->add_norm_bf16(g->ctx, b->x, y, bias, keep_xn ? b->xn : NULL, nm->w, nm->b, N, D, rms, c->norm_eps,
                           (uint16_t *)r.hi, (uint16_t *)r.lo);
        if (next) *next = r;
        return HS_OK;
    }
    ops->norm(g->ctx, b->xn, b->x, nm->w, nm->b, N, D, rms, c->norm_eps);
    TRY(rt_cuda_fire_rows(g, bv, nh.p, nh.l, b->xn, D));
    if (next) *next = gemm_in(g, b, b->xn, (size_t)N * D);
    return HS_OK;
}

/* The step into layer l (l == n_layers: into ln_final) after y, the previous layer's MLP output
 * (NULL for l = 0), whose down bias is still to add when p.bias. */
static hs_status enter_layer(rt_gpu *g, const batch_view *bv, run_bufs *b, int l, step_plan p, gin *next) {
    int L = g->m->cfg.n_layers;
    hook_at yh = { RT_HOOK_MLP_OUT, l - 1 }, xh[2], nh;
    int nx = 0;
    if (l > 0) xh[nx++] = (hook_at){ RT_HOOK_RESID_POST, l - 1 };
    if (l < L) xh[nx++] = (hook_at){ RT_HOOK_RESID_PRE, l };
    nh = l < L ? (hook_at){ RT_HOOK_LN1_NORMALIZED, l } : (hook_at){ RT_HOOK_LN_FINAL, -1 };
    return resid_step(g, bv, b, p, l > 0 ? b->ao : NULL, p.bias ? g->layers[l - 1].down.b : NULL, yh, xh, nx,
                      l < L ? &g->layers[l].ln1 : &g->ln_final, nh, l == L, l < L ? next : NULL);
}
static step_plan plan_enter(const rt_gpu *g, const batch_view *bv, int l) {
    int L = g->m->cfg.n_layers;
    hook_at xh[2] = { { RT_HOOK_RESID_POST, l - 1 }, { RT_HOOK_RESID_PRE, l } };
    hook_at nh = l < L ? (hook_at){ RT_HOOK_LN1_NORMALIZED, l } : (hook_at){ RT_HOOK_LN_FINAL, -1 };
    return plan_step(g, bv, l > 0, (hook_at){ RT_HOOK_MLP_OUT, l - 1 }, l > 0 ? xh : xh + 1, (l > 0) + (l < L), nh, true);
}

static hs_status run_layers(rt_gpu *g, const batch_view *bv, run_bufs *b, const int *lb, int R, float *last_logits) {
    const rt_cuda_ops *ops = g->ops;
    rt_cuda_ctx *cx = g->ctx;
    const rt_config *c = &g->m->cfg;
    int N = bv->N, D = c->d_model;
    size_t ND = (size_t)N * D;

    /* embeddings: hook_embed and hook_pos_embed see their parts before they are summed */
    ops->gather_rows(cx, b->x, g->tok_embed, g->wt, b->ids, N, D);
    TRY(rt_cuda_fire_rows(g, bv, RT_HOOK_EMBED, -1, b->x, D));
    if (g->pos_embed) {
        ops->gather_rows(cx, b->ao, g->pos_embed, RT_CUDA_F32, b->pos, N, D);
        TRY(rt_cuda_fire_rows(g, bv, RT_HOOK_POS_EMBED, -1, b->ao, D));
        ops->add(cx, b->x, b->ao, ND);
    }
    gin xin;
    TRY(enter_layer(g, bv, b, 0, plan_enter(g, bv, 0), &xin));
    for (int l = 0; l < c->n_layers; l++) {
        const dlayer *L = &g->layers[l];
        hook_at ah = { RT_HOOK_ATTN_OUT, l }, mh = { RT_HOOK_RESID_MID, l }, n2 = { RT_HOOK_LN2_NORMALIZED, l };
        step_plan pa = plan_step(g, bv, true, ah, &mh, 1, n2, !rt_hook_spec_wants(bv->spec, RT_HOOK_RESULT, l, -1));
        TRY(attention_block(g, bv, l, b, xin, pa.bias));
        TRY(resid_step(g, bv, b, pa, b->ao, pa.bias ? L->o.b : NULL, ah, &mh, 1, &L->ln2, n2, false, &xin));
        step_plan pm = plan_enter(g, bv, l + 1);
        TRY(mlp_block(g, bv, l, b, xin, pm.bias));
        TRY(enter_layer(g, bv, b, l + 1, pm, &xin));
    }
    TRY(rt_cuda_hooks_flush(g, bv));                  /* every pending read-only hook, before the logits' */
    TRY(logits_stage(g, bv, b, lb, R, last_logits));
    return ops->check(cx, "the forward pass");
}

hs_status rt_gpu_forward_run(rt_gpu *g, const rt_gpu_seq *seqs, int n_seqs, const rt_hook_spec *spec, float *last_logits) {
    const rt_config *c = &g->m->cfg;
    if (!g->wblock) {
        hs_log_error("cuda", "this GPU context was opened without the model's weights (no_weights) — open it with rt_gpu_init's defaults");
        return HS_EBADINPUT;
    }
    hs_status st = check_batch(g, seqs, n_seqs);
    if (st != HS_OK) return st;
    hs_arena_reset(&g->host);
    rt_cuda_hooks_reset(g);   /* nothing pending from a forward that failed part-way */

    batch_view bv = { .seqs = seqs, .n_seqs = n_seqs, .spec = spec };
    bv.off = hs_arena_alloc(&g->host, (size_t)n_seqs * sizeof(int));
    bv.pos0 = hs_arena_alloc(&g->host, (size_t)n_seqs * sizeof(int));
    bv.koff16 = hs_arena_alloc(&g->host, (size_t)n_seqs * sizeof(int));
    for (int s = 0; s < n_seqs; s++) {
        bv.off[s] = bv.N;
        bv.pos0[s] = seqs[s].cache ? seqs[s].cache->len : 0;
        bv.koff16[s] = bv.Tk_sum;
        bv.Tk_sum += bv.pos0[s] + seqs[s].n;
        bv.N += seqs[s].n;
        if (seqs[s].n > bv.T_max) bv.T_max = seqs[s].n;
        if (bv.pos0[s] + seqs[s].n > bv.Tk_max) bv.Tk_max = bv.pos0[s] + seqs[s].n;
    }
    /* logits rows: each sequence's last row, and earlier rows a logits hook asks for */
    bool hooked = rt_hook_spec_wants(spec, RT_HOOK_LOGITS, -1, -1);
    int *lb = hs_arena_alloc(&g->host, (size_t)n_seqs * sizeof(int)), R = 0;
    for (int s = 0; s < n_seqs; s++) {
        int T = seqs[s].n, bb = hooked ? rt_hook_logits_first_row(spec, T) : T - 1;
        lb[s] = (hooked || last_logits) ? bb : -1;
        if (lb[s] >= 0) R += T - bb;
    }

    run_shape rs = { bv.N, bv.T_max, bv.Tk_max, R, n_seqs, bv.Tk_sum,
                     rt_hook_spec_wants(spec, RT_HOOK_PATTERN, -1, -1) || rt_hook_spec_wants(spec, RT_HOOK_ATTN_SCORES, -1, -1),
                     rt_hook_spec_wants(spec, RT_HOOK_RESULT, -1, -1), bv.N, false };
    rs.mlp_chunked = g->wt == RT_CUDA_BF16 && !g->unfused && !rt_hook_spec_wants(spec, RT_HOOK_MLP_PRE, -1, -1) &&
                     !rt_hook_spec_wants(spec, RT_HOOK_MLP_POST, -1, -1);
    if (rs.mlp_chunked && rs.mlp_rows > g->mlp_chunk) rs.mlp_rows = g->mlp_chunk;
    run_bufs b;
    memset(&b, 0, sizeof b);
    size_t need = carve(g, &rs, NULL, &b);
    if (need > g->act_cap) {
        rt_gpu_mem_free(g, g->act);
        g->act_cap = 0;
        g->act = rt_gpu_mem_alloc(g, need, "the forward activations");
        if (!g->act) return HS_EIO;
        g->act_cap = need;
    }
    if (need > g->act_peak) g->act_peak = need;
    carve(g, &rs, g->act, &b);
    b.mlp_rows = rs.mlp_rows;
    int D = c->d_model, HD = c->d_head;
    b.scratch = hs_arena_alloc(&g->host, (size_t)bv.T_max * (size_t)(D > HD ? D : HD) * sizeof(float));
    bv.scratch = b.scratch;
    if (c->arch == RT_ARCH_LLAMA && rope_ensure(g, bv.Tk_max) != HS_OK) return HS_EIO;

    /* per-run uploads: packed ids and positions, logits rows, attention descriptors per layer */
    int *hid = hs_arena_alloc(&g->host, (size_t)bv.N * sizeof(int)), *hpos = hs_arena_alloc(&g->host, (size_t)bv.N * sizeof(int));
    int *hrows = hs_arena_alloc(&g->host, (size_t)(R ? R : 1) * sizeof(int));
    for (int s = 0, r = 0; s < n_seqs; s++) {
        for (int i = 0; i < seqs[s].n; i++) { hid[bv.off[s] + i] = seqs[s].ids[i]; hpos[bv.off[s] + i] = bv.pos0[s] + i; }
        if (lb[s] >= 0) for (int i = lb[s]; i < seqs[s].n; i++) hrows[r++] = bv.off[s] + i;
    }
    rt_cuda_seq *hs = hs_arena_alloc(&g->host, (size_t)c->n_layers * n_seqs * sizeof(rt_cuda_seq));
    for (int l = 0; l < c->n_layers; l++)
        for (int s = 0; s < n_seqs; s++) {
            rt_cuda_seq *d = &hs[(size_t)l * n_seqs + s];
            d->off = bv.off[s]; d->T = seqs[s].n; d->pos0 = bv.pos0[s];
            d->ldk = c->n_kv_heads * c->d_head;
            d->k = seq_k(g, &bv, &b, l, s, false);
            d->v = seq_k(g, &bv, &b, l, s, true);
            d->k16 = b.k16 ? b.k16 + (size_t)bv.koff16[s] * d->ldk : NULL;
            d->v16 = b.v16 ? b.v16 + (size_t)bv.koff16[s] * d->ldk : NULL;
        }
    g->ops->upload(g->ctx, b.ids, hid, (size_t)bv.N * sizeof(int));
    g->ops->upload(g->ctx, b.pos, hpos, (size_t)bv.N * sizeof(int));
    if (R) g->ops->upload(g->ctx, b.rows, hrows, (size_t)R * sizeof(int));
    g->ops->upload(g->ctx, b.seqs, hs, (size_t)c->n_layers * n_seqs * sizeof(rt_cuda_seq));
    if (b.zeros) g->ops->zero(g->ctx, b.zeros, (size_t)HD * sizeof(float));

    st = run_layers(g, &bv, &b, lb, R, last_logits);
    if (st != HS_OK) return st;
    for (int s = 0; s < n_seqs; s++)
        if (seqs[s].cache) seqs[s].cache->len += seqs[s].n;
    return HS_OK;
}
