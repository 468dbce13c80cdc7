/* gpu.h — the GPU runtime: the same models, batches and hook points as forward.h, on a CUDA device.
 *
 * Two numeric modes (issue 4):
 *   RT_GPU_F32   fp32 weights and GEMMs (cuBLAS pedantic fp32, no TF32): the exactness mode; it
 *                tracks the CPU runtime to ~1e-6.
 *   RT_GPU_BF16  weight matrices converted once to bf16, GEMMs on bf16 tensor cores with fp32
 *                accumulation; activations enter each GEMM as a bf16 hi+lo pair (two GEMMs), so the
 *                error is the weights' rounding; the residual stream, norms, RoPE, softmax and
 *                attention stay fp32. The fast mode (half the weight memory and bandwidth).
 * Attention is flash-style (online softmax over key tiles): no T×T buffer exists except for the
 * heads whose hook_pattern / hook_attn_scores was requested, and then one (T, Tk) at a time.
 *
 * Hooks: every rt_hook_point of hooks.h works and fires through the same rt_hook_fn callbacks on
 * the host; the tensor is copied device -> host, the callbacks run (in spec order), and it is
 * copied back, so writes are interventions exactly as on the CPU. A hook nobody asked for costs
 * nothing. For reductions that must stay on the device (online statistics), rt_gpu_set_attn_hook
 * hands a consumer device pointers to each layer's rotated q/k and the softmax log-sum-exp.
 *
 * Backends: the CUDA kernels (runtime/cuda/, .cu files), or — opts.emulate — the same orchestration on
 * the kernels' CPU references over host memory, so the GPU code path is tested without a GPU.
 * Without a device (or in a build without nvcc) rt_gpu_device_check / rt_gpu_init log ONE line,
 *   "cuda: no CUDA device found (cudaGetDeviceCount: ...) — run on a GPU machine or use --device cpu"
 * and return HS_EUNSUPPORTED.
 */
#ifndef HS_GPU_H
#define HS_GPU_H
#include "hooks.h"
#include "model.h"

typedef enum { RT_GPU_F32 = 0, RT_GPU_BF16 = 1 } rt_gpu_dtype;

typedef struct {
    char name[128];           /* e.g. "NVIDIA H200" */
    int device;               /* index */
    int cc_major, cc_minor;   /* compute capability */
    int n_sm;                 /* multiprocessors */
    size_t mem_total, mem_free;   /* bytes */
} rt_gpu_device_info;

/* Is CUDA device `device` usable by this build (present, compute capability >= 9.0)? On success
 * fills *info (may be NULL). Otherwise logs one "cuda: ..." line and returns HS_EUNSUPPORTED. */
hs_status rt_gpu_device_check(int device, rt_gpu_device_info *info);

/* "cpu" -> *cuda = false; "cuda" or "cuda:N" -> *cuda = true, *device = N (0 by default).
 * HS_EBADINPUT with one line naming --device otherwise. */
hs_status rt_gpu_parse_device(const char *s, bool *cuda, int *device);
/* "f32" / "bf16" -> *dt. HS_EBADINPUT with one line naming --dtype otherwise. */
hs_status rt_gpu_parse_dtype(const char *s, rt_gpu_dtype *dt);
const char *rt_gpu_dtype_name(rt_gpu_dtype dt);

typedef struct {
    rt_gpu_dtype dtype;   /* default RT_GPU_BF16 (the default on GPU) */
    int device;           /* CUDA device index, default 0 */
    bool emulate;         /* CPU reference kernels on host memory (tests); needs no GPU */
    bool bf16_single_pass;/* RT_GPU_BF16 only: round each GEMM input to bf16 once (one GEMM per linear
                           * layer, ~2x faster GEMMs, log-softmax error ~5e-2 on small trained models)
                           * instead of the default hi+lo pair (two GEMMs; error ~1e-4 beyond the
                           * weights' own rounding) */
    bool attn_fp32;       /* RT_GPU_BF16 only: attention (and on-device statistics) in fp32 on CUDA cores
                           * instead of bf16 tensor cores (which round q, k, v and p to bf16; used for
                           * head sizes 16, 32, 64, 128) */
    bool f32_bf16_weights;/* diagnostics, RT_GPU_F32 only: fp32 arithmetic on weight matrices rounded
                           * to bf16, which separates the bf16 mode's weight quantisation (a property
                           * of an fp32 checkpoint) from its arithmetic error */
    bool unfused;         /* bf16 modes: run every fused step as separate kernels, as when hooks watch
                           * the tensors in between (residual add + output bias + norm + bf16
                           * conversion; gpt2's QKV bias + split + bf16 K/V copies; the MLP activation
                           * + conversion). The same bits, except the fused MLP's GELU, evaluated in
                           * float instead of double (within one bf16 rounding; tests compare them) */
    bool hooks_sync;      /* every hook as a synchronous round trip: no pipelined copies of read-only
                           * hooked tensors (rt_cuda_hooks.c); tests compare the two */
    int mlp_chunk_rows;   /* bf16 modes without MLP hooks: rows per pass of the chunked MLP (0: 2048;
                           * tests use a few rows to run many passes on short prompts) */
    bool profile;         /* time every kernel and copy with CUDA events (rt_cuda_profile.cu; serialises
                           * the host with the GPU): rt_cuda_profile_report prints the totals */
    bool no_weights;      /* a context only (device, stream, cuBLAS, memory, the rt_gpu_calc_* kernels):
                           * nothing of the model is uploaded and rt_gpu_forward_run refuses; for
                           * analyses that upload their own matrices (analysis/maps.c) */
} rt_gpu_opts;
void rt_gpu_opts_default(rt_gpu_opts *o);

typedef struct rt_gpu rt_gpu;

/* Upload m's weights (fp32, or converted once to bf16) and prepare a stream and cuBLAS handle.
 * m is borrowed and must outlive the context (its config is read at every run, so --n-ctx
 * applies). On success *out is the context (free with rt_gpu_free). On error logs one line and
 * returns HS_EUNSUPPORTED (no device, compute capability < 9.0, head_dim > 256, odd head_dim with
 * RoPE), HS_EIO (out of GPU memory: "the model needs X MiB ... only Y MiB free"; a CUDA failure);
 * *out = NULL and nothing stays allocated. */
hs_status rt_gpu_init(const rt_model *m, const rt_gpu_opts *o, rt_gpu **out);
void rt_gpu_free(rt_gpu *g);
/* Device bytes held now: weights + activations + rope tables (KV caches not included). */
size_t rt_gpu_device_bytes(const rt_gpu *g);
/* Peak device bytes of the activation block across runs (for the memory benchmark). */
size_t rt_gpu_peak_act_bytes(const rt_gpu *g);
const char *rt_gpu_backend_name(const rt_gpu *g);   /* "cuda" or "cpu-reference" */

/* A device KV cache for `cap` positions (all layers, fp32 K and V). HS_EIO (one line) when the
 * device is out of memory; *out = NULL then. Free with rt_gpu_kv_free before the context. */
typedef struct rt_gpu_kv rt_gpu_kv;
hs_status rt_gpu_kv_init(rt_gpu *g, int cap, rt_gpu_kv **out);
void rt_gpu_kv_free(rt_gpu_kv *c);
int rt_gpu_kv_len(const rt_gpu_kv *c);

typedef struct {
    const int *ids;       /* (n) token ids (host), borrowed */
    int n;                /* new tokens, >= 1 */
    rt_gpu_kv *cache;     /* optional: positions start at its length; K/V appended */
} rt_gpu_seq;

/* Run the model on a batch, exactly as rt_forward_run (same checks and error lines, same hook
 * events in the same order, same last-position logits). last_logits: optional host (n_seqs, V).
 * Returns HS_EBADINPUT for a bad id / too-long sequence (caches unchanged), HS_EIO (one line)
 * for out-of-memory or a failed kernel; after HS_EIO the caches' contents are undefined. */
hs_status rt_gpu_forward_run(rt_gpu *g, const rt_gpu_seq *seqs, int n_seqs, const rt_hook_spec *spec,
                             float *last_logits);

/* ---- device-side consumers (on-GPU reductions, see probe/cuda/probe_cuda_stats.h) ---- */

typedef struct {
    int layer, seq;           /* one event per (layer, sequence), after that layer's attention */
    int n_seqs;               /* sequences in the batch: events of a layer come for seq = 0..n_seqs-1 in order */
    int T, pos0;              /* query rows; absolute position of row 0 (keys are 0..pos0+T-1) */
    int n_heads, n_kv_heads, d_head;
    int window;               /* sliding window (0 = none): key j visible from i iff j <= i, i-j < window */
    float scale;              /* score scale, 1/sqrt(d_head) */
    const float *q; int ldq;  /* (T, ldq) rotated queries of this sequence; head h at column h*d_head */
    const float *k; int ldk;  /* (pos0+T, ldk) rotated keys; kv head g at column g*d_head */
    const float *lse; int ldlse; /* (T, ldlse) per row and head h (column h): ln Σ_j exp(scale·q·k_j) */
    void *stream;             /* cudaStream_t the forward runs on (NULL when emulated) */
    bool emulated;            /* pointers are host memory (CPU reference backend) */
    bool bf16;                /* the attention ran on bf16 tensor cores (q, k rounded to bf16 in the
                               * scores behind lse); consumers recompute scores the same way */
    const uint16_t *k16;      /* bf16: (pos0+T, n_kv_heads*d_head) bf16 copy of k, for the kernels */
} rt_gpu_attn_event;
/* Pointers stay valid until the forward moves on from this layer (after the event of its last
 * sequence, seq = n_seqs-1): a consumer may keep a layer's events and queue one launch for all of
 * them at the last. Queue work on ev->stream; do not synchronise. */
typedef void (*rt_gpu_attn_fn)(const rt_gpu_attn_event *ev, void *user);
/* Install (fn != NULL) or remove the attention consumer. The stats it sees are the model's own
 * attention: pattern/score interventions of hooked heads do not change q, k or lse. */
void rt_gpu_set_attn_hook(rt_gpu *g, rt_gpu_attn_fn fn, void *user);
/* Switch the read-only hook pipeline off (on = true: every hook synchronous, as opts.hooks_sync)
 * or back on, between forwards (benchmarks compare the two). */
void rt_gpu_set_hooks_sync(rt_gpu *g, bool on);

/* Memory in the context's space (device memory, or host memory when emulated). alloc: NULL and one
 * logged line when out of memory. download waits for queued work and returns HS_EIO (one line)
 * if a kernel failed. */
bool rt_gpu_emulated(const rt_gpu *g);
/* Free and total bytes of the context's device (0, 0 when emulated). */
void rt_gpu_mem_info(rt_gpu *g, size_t *free_b, size_t *total_b);
void *rt_gpu_mem_alloc(rt_gpu *g, size_t bytes, const char *what);
void rt_gpu_mem_free(rt_gpu *g, void *p);
void rt_gpu_mem_upload(rt_gpu *g, void *dst, const void *src, size_t bytes);
hs_status rt_gpu_mem_download(rt_gpu *g, void *dst, const void *src, size_t bytes);
void rt_gpu_mem_zero(rt_gpu *g, void *dst, size_t bytes);
/* Record a failure of work a consumer queued (its launcher's error text); the next sync reports it. */
void rt_gpu_note_error(rt_gpu *g, const char *what, const char *err);

/* ---- dense kernels for analyses, on the context's memory (queued; failures reported by the next
 * rt_gpu_mem_download or rt_gpu_calc_check). Contracts: runtime/cuda/rt_cuda_ops.h. ---- */
/* Row-major fp32 GEMM, cblas semantics: C (M, N) = alpha·op(A)·op(B) + beta·C. In an RT_GPU_F32
 * context cuBLAS runs in pedantic fp32 (no TF32). */
void rt_gpu_calc_gemm(rt_gpu *g, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);
/* Ranking (analysis/topk.h's order): the ops table's target_dots and rank_count. */
void rt_gpu_calc_target_dots(rt_gpu *g, const float *Y, int R, int D, const float *W, const int *tgt, double *lt,
                             double *ynorm);
void rt_gpu_calc_rank_count(rt_gpu *g, const float *C, int R, int Wb, int v0, const int *tgt, const double *lt,
                            const double *ynorm, double rel, int *cnt);
/* Wait for queued work: HS_OK, or HS_EIO after one line naming the failed kernel and `where`. */
hs_status rt_gpu_calc_check(rt_gpu *g, const char *where);
#endif
