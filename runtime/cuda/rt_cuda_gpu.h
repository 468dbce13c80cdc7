/* rt_cuda_gpu.h — the GPU runtime's private state, shared by its two C files:
 *   rt_cuda_forward.c  weights, the batch, the layer loop (owns everything below);
 *   rt_cuda_hooks.c    hook dispatch: host staging, synchronous round trips, and the pipeline that
 *                      copies read-only hooked tensors on a copy stream and fires their hooks
 *                      while the GPU computes on.
 * Plain C; never included from the .cu files or outside runtime/cuda.
 */
#ifndef HS_RT_CUDA_GPU_H
#define HS_RT_CUDA_GPU_H
#include "rt_cuda_ops.h"
#include "runtime/arena.h"
#include "runtime/hooks.h"

typedef struct {
    const void *w;      /* (n_out, n_in) or, in_major, (n_in, n_out); fp32 or bf16 (g->wt) */
    const float *b;     /* (n_out) or NULL */
    int n_in, n_out;
    bool in_major;
} dlinear;

typedef struct { const float *w, *b; } dnorm;   /* (D), (D) or NULL */

typedef struct {
    dnorm ln1, ln2;
    dlinear qkv, q, k, v, o, gate, up, down;
} dlayer;

/* A read-only hook whose tensor is on its way to the host (rt_cuda_hooks.c): which copy slot,
 * and what to fire when it lands. */
typedef enum { HOOK_ROWS, HOOK_HEADS, HOOK_ONE } hook_kind;
typedef struct {
    float *buf; size_t cap;     /* host (cap floats), page-locked when pinned */
    bool pinned;
    bool busy;                  /* a copy is queued and its hooks have not fired yet */
    hook_kind kind;
    rt_hook_point p;
    int l, h, s, rows, cols, nh, hd;
} hook_slot;
enum { RT_GPU_HOOK_SLOTS = RT_CUDA_COPY_SLOTS };   /* double buffering: one tensor copying while the last one's hooks run */

struct rt_gpu {
    const rt_model *m;
    const rt_cuda_ops *ops;
    rt_cuda_ctx *ctx;
    rt_gpu_dtype dtype;
    rt_cuda_dtype wt;           /* dtype of the weight matrices and GEMM inputs */
    bool split;                 /* bf16: activations enter GEMMs as a hi + lo bf16 pair (see gemm_in) */
    bool attn_bf16;             /* bf16 mode, supported head size, not opts.attn_fp32: tensor-core attention */
    bool unfused;               /* opts.unfused: every step as its own kernel, as when hooks watch it */
    bool hooks_sync;            /* opts.hooks_sync: every hook as a synchronous round trip */
    int mlp_chunk;              /* rows per pass of the chunked MLP (opts.mlp_chunk_rows, default MLP_CHUNK) */
    size_t wsz;                 /* bytes per weight element */
    void *wblock; size_t wbytes;
    const void *tok_embed;      /* (V, D) wt */
    const float *pos_embed;     /* (n_ctx, D) gpt2, else NULL */
    dlayer *layers;             /* host array (L) of device pointers */
    dnorm ln_final;
    dlinear lm_head;
    float *inv_freq;            /* host (HD/2) */
    float *rope_cos, *rope_sin; /* device (rope_n, HD/2) */
    int rope_n;
    void *act; size_t act_cap, act_peak;
    float *stage; size_t stage_cap;   /* host staging (floats) for hook round trips and logits: page-locked
                                       * (ops->host_alloc) when possible, else malloc (stage_pinned false) */
    bool stage_pinned;
    hook_slot slots[RT_GPU_HOOK_SLOTS];   /* the read-only hook pipeline */
    int slot_next;              /* the oldest slot: the next to reuse, fired first */
    hs_arena host;              /* per-run host arrays */
    rt_gpu_attn_fn attn_fn; void *attn_user;
};

typedef struct {                /* per-run view of the batch (host) */
    const rt_gpu_seq *seqs;
    int n_seqs;
    int *off, *pos0;            /* (n_seqs) */
    int *koff16;                /* (n_seqs) first row of each sequence's keys in the bf16 k16/v16 copies */
    int N, T_max, Tk_max, Tk_sum;   /* Tk_sum = Σ (pos0 + T): rows of the bf16 key copies */
    const rt_hook_spec *spec;
    float *scratch;             /* host (T_max, max(HD, D)): per-head gather scratch */
} batch_view;

/* ---- rt_cuda_hooks.c ---- */
/* Host staging of at least n floats (grown, kept; page-locked when the table can). */
float *rt_cuda_stage(rt_gpu *g, size_t n);
/* Copy device -> host and wait: HS_OK, or HS_EIO after one line naming `where`. */
hs_status rt_cuda_download(rt_gpu *g, void *dst, const void *src, size_t bytes, const char *where);
/* The hooks of point p at layer l on a device tensor, as forward.c fires them:
 *   rows:  an (N, cols) buffer, one event per sequence;
 *   heads: an (N, nh*hd) buffer, one event per wanted head and sequence on a (T, hd) gather;
 *   one:   a (rows, cols) tensor of head h of sequence s.
 * A tensor some request may edit makes a synchronous round trip (copied back after its hooks). A
 * read-only one is copied on the context's copy stream into a pipeline slot and its hooks fire
 * later, in order: when the slot is needed again, before any synchronous hook, and at
 * rt_cuda_hooks_flush — so the host runs them while the GPU computes the next layers. The GPU
 * waits for the copy before it writes anything again, so the tensor is the one the hook asked for. */
hs_status rt_cuda_fire_rows(rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, float *dbuf, int cols);
hs_status rt_cuda_fire_heads(rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, float *dbuf, int nh, int hd);
hs_status rt_cuda_fire_one(rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, int h, int s, float *dbuf, int rows,
                           int cols);
/* Fire every pending hook (oldest first). Called before logits and at the end of a forward. */
hs_status rt_cuda_hooks_flush(rt_gpu *g, const batch_view *bv);
/* Forget pending hooks (a new forward after a failed one); free the slots (context teardown). */
void rt_cuda_hooks_reset(rt_gpu *g);
void rt_cuda_hooks_free(rt_gpu *g);
#endif
