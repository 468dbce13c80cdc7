/* rt_cuda_ops.h — the operations the GPU forward pass is made of, behind one table with two
 * implementations:
 *   rt_cuda_ops_device()  the CUDA kernels and cuBLAS (rt_cuda_device.cu, rt_cuda_kernels.cu,
 *                         rt_cuda_attn.cu); NULL in a build without nvcc (runtime/gpu_stub.c);
 *   rt_cuda_ops_host()    the CPU reference of every kernel (rt_cuda_ref.c), over host memory.
 * The orchestration (rt_cuda_forward.c) calls only this table, so the whole GPU code path runs
 * and is tested on the CPU references, and tests/test_cuda.c compares the two tables kernel by
 * kernel. Both implementations have the same contract, written here once.
 *
 * Plain C header, also included from C++ (.cu) files. Pointers named "device" are in the table's
 * memory space: device memory for the CUDA table, host memory for the reference table. Kernels are
 * queued on the context's stream and report failures through a sticky error read by check().
 * Tensor shapes follow the project's letters; all matrices are row-major with explicit leading
 * dimensions (elements).
 */
#ifndef HS_RT_CUDA_OPS_H
#define HS_RT_CUDA_OPS_H
#ifdef __cplusplus
extern "C" {   /* the project's C headers carry no guards of their own */
#endif
#include "runtime/common.h"
#include "runtime/gpu.h"
#include <stdio.h>

typedef enum { RT_CUDA_F32 = 0, RT_CUDA_BF16 = 1 } rt_cuda_dtype;   /* element type of a GEMM operand / table */
typedef struct rt_cuda_ctx rt_cuda_ctx;

enum { RT_CUDA_MAX_HD = 256 };   /* largest head dim the attention kernel is instantiated for */
enum { RT_CUDA_COPY_SLOTS = 2 }; /* download_async slots: the hook pipeline's double buffer */

/* One sequence of a batch as attention sees it (an array of these lives in the table's memory). */
typedef struct {
    int off;             /* first packed row of its queries in q / z / lse */
    int T;               /* query rows */
    int pos0;            /* absolute position of query row 0; keys are positions 0..pos0+T-1 */
    int ldk;             /* row stride of k and v */
    const float *k;      /* (pos0+T, ldk) rotated keys; kv head g at column g*HD */
    const float *v;      /* (pos0+T, ldk) values */
    const uint16_t *k16; /* attention_bf16 only: bf16 copies of k and v, (pos0+T, KV*HD) densely packed */
    const uint16_t *v16;
} rt_cuda_seq;

typedef struct {
    const char *name;    /* "cuda" / "cpu-reference" */
    bool on_device;

    /* ---- context: stream, cuBLAS handle, sticky error ---- */
    /* Open device `device`. pedantic_f32: fp32 GEMMs in cuBLAS pedantic mode (no TF32, prescribed
     * precision). Logs one line and returns HS_EUNSUPPORTED / HS_EIO on failure; *out = NULL. */
    hs_status (*ctx_init)(int device, bool pedantic_f32, rt_cuda_ctx **out);
    void (*ctx_free)(rt_cuda_ctx *c);
    /* Wait for queued work; HS_OK, or HS_EIO after logging one line naming the first failed
     * kernel and `where`. The error is cleared. */
    hs_status (*check)(rt_cuda_ctx *c, const char *where);
    void (*note_error)(rt_cuda_ctx *c, const char *what, const char *err);
    void *(*stream)(rt_cuda_ctx *c);                      /* cudaStream_t, or NULL */

    /* ---- memory ---- */
    void *(*alloc)(rt_cuda_ctx *c, size_t bytes);         /* NULL when out of memory; not logged */
    void (*free)(rt_cuda_ctx *c, void *p);
    void (*upload)(rt_cuda_ctx *c, void *dst, const void *src, size_t bytes);   /* host -> table; src reusable on return */
    void (*download)(rt_cuda_ctx *c, void *dst, const void *src, size_t bytes); /* table -> host; waits */
    /* The hook pipeline's copies (runtime/cuda/rt_cuda_hooks.c): queue src -> dst (host memory,
     * page-locked for a real overlap) of src as it is once everything queued so far has run; work
     * queued later may overwrite src at once (the device table snapshots it into a device buffer
     * per slot and copies from there on its copy stream, overlapping later kernels; without room
     * for the snapshot, later work waits for the copy) and the host does not wait. slot in
     * [0, RT_CUDA_COPY_SLOTS) names the copy for download_wait, which waits for it:
     * HS_OK, or HS_EIO after one line naming `where` (a failed copy or an earlier failed kernel).
     * The reference table copies at once and never fails. */
    void (*download_async)(rt_cuda_ctx *c, int slot, void *dst, const void *src, size_t bytes);
    hs_status (*download_wait)(rt_cuda_ctx *c, int slot, const char *where);
    void (*zero)(rt_cuda_ctx *c, void *dst, size_t bytes);
    void (*mem_info)(rt_cuda_ctx *c, size_t *free_b, size_t *total_b);
    /* Host memory for staging copies: page-locked on the device table (PCIe copies run at full
     * speed and need no bounce buffer), plain malloc on the reference; NULL when unavailable. */
    void *(*host_alloc)(rt_cuda_ctx *c, size_t bytes);
    void (*host_free)(rt_cuda_ctx *c, void *p);

    /* ---- kernels ---- */
    /* dst (rows, cols; ldd) = src (rows, cols; lds). */
    void (*copy2d)(rt_cuda_ctx *c, float *dst, int ldd, const float *src, int lds, int rows, int cols);
    /* dst (n, D) row i = table row idx[i]; table is (?, D) fp32 or bf16 (converted to fp32). idx: device (n). */
    void (*gather_rows)(rt_cuda_ctx *c, float *dst, const void *table, rt_cuda_dtype dt, const int *idx, int n, int D);
    /* x (n) += y (n). */
    void (*add)(rt_cuda_ctx *c, float *x, const float *y, size_t n);
    /* y (rows, cols) row-wise += b (cols). */
    void (*add_bias)(rt_cuda_ctx *c, float *y, const float *b, int rows, int cols);
    /* y (rows, D) = LayerNorm (b may be NULL) or RMSNorm of x (rows, D); statistics in double, as
     * forward.c: LN y = (float)((x-mean)·inv)·w + b; RMS y = w·(float)(x·inv). */
    void (*norm)(rt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int rows, int D,
                 bool rms, float eps);
    /* Rotate x (rows, ld) in place: nh heads of HD at columns h*HD, row i at absolute position pos[i]
     * (device (rows)). cos_t/sin_t: (n_pos, HD/2). interleaved: pairs (2i, 2i+1), else (i, i+HD/2). */
    void (*rope)(rt_cuda_ctx *c, float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                 const float *sin_t, bool interleaved);
    /* x (n) = gelu(x): tanh approximation or exact erf, evaluated in double as forward.c. */
    void (*gelu)(rt_cuda_ctx *c, float *x, size_t n, bool exact);
    /* hid (n) = hid · silu(gate), silu(g) = g / (1 + expf(-g)) in float. */
    void (*swiglu)(rt_cuda_ctx *c, float *hid, const float *gate, size_t n);
    /* dst (n) bf16 bit patterns = round-to-nearest-even(src (n)). */
    void (*to_bf16)(rt_cuda_ctx *c, uint16_t *dst, const float *src, size_t n);
    /* hi = bf16(src), lo = bf16(src - hi) (n each; src - hi is exact in fp32): src ≈ hi + lo to 16 bits. */
    void (*to_bf16_split)(rt_cuda_ctx *c, uint16_t *hi, uint16_t *lo, const float *src, size_t n);
    /* The bf16 modes' fused MLP activations, when no mlp hook needs the fp32 tensor: v = y + b
     * (float add as add_bias; b may be NULL) on y (rows, cols) — not written back — then a = gelu(v)
     * evaluated in float (rt_cuda_gelu_f32's formula, not gelu's double), then hi = bf16(a) and,
     * when lo != NULL, lo = bf16(a − hi) (as to_bf16 / to_bf16_split). Against the unfused sequence
     * (add_bias, gelu in double, conversion): hi within one bf16 rounding, hi + lo within 3e-5
     * relative + 1e-6 absolute. */
    void (*bias_gelu_bf16)(rt_cuda_ctx *c, const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi,
                           uint16_t *lo);
    /* The same for swiglu: a = hid · silu(gate) (n), to hi (and lo). hid is not written. Bit for bit
     * swiglu then the conversion. */
    void (*swiglu_bf16)(rt_cuda_ctx *c, const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo);
    /* The bf16 modes' residual step, one pass per row: when y != NULL, x (rows, D) = x + (y + b)
     * (b (D) may be NULL: x + y; the float adds of add_bias then add; y is not written), written
     * back to x; then n = norm(x) with weight w (D) and bias nb (D, LayerNorm only, may be NULL), the
     * arithmetic of norm (the same double statistics and reduction order, so the same bits as
     * norm on the updated x); n goes to xn (rows, D) when xn != NULL, to hi = bf16(n) when
     * hi != NULL and to lo = bf16(n − hi) when lo != NULL too (as to_bf16 / to_bf16_split).
     * Bit for bit add_bias + add + norm + the conversion. x and xn must not overlap y. */
    void (*add_norm_bf16)(rt_cuda_ctx *c, float *x, const float *y, const float *b, float *xn, const float *w,
                          const float *nb, int rows, int D, bool rms, float eps, uint16_t *hi, uint16_t *lo);
    /* The split of a fused QKV projection (gpt2): qkv (N, QD + 2·KD) holds q | k | v per row; with
     * the bias (QD + 2·KD; may be NULL) added as add_bias adds it (qkv is not written), q (N, QD),
     * k (N, KD) and v (N, KD) are written densely, and, when k16 != NULL, k16 = bf16(k) and
     * v16 = bf16(v) (N, KD each, both or neither), as to_bf16. Bit for bit add_bias + three copy2d
     * (+ two to_bf16). */
    void (*qkv_split)(rt_cuda_ctx *c, const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k,
                      float *v, uint16_t *k16, uint16_t *v16);
    /* Row-major GEMM with cblas semantics: C (M, N; ldc) = alpha·op(A)·op(B) + beta·C, op(A) (M, K),
     * op(B) (K, N). A and B have the same dtype (fp32 or bf16); accumulation and C are fp32. */
    void (*gemm)(rt_cuda_ctx *c, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const void *A,
                 int lda, const void *B, int ldb, rt_cuda_dtype ab, float beta, float *C, int ldc);
    /* Causal (+ sliding window) softmax attention, fp32, for every query head of every sequence:
     *   z (ΣT, ldz): head h of packed row off+r at column h*HD = Σ_j p_rj v_j,
     *   lse (ΣT, ldlse): column h = ln Σ_j exp(s_rj), s_rj = scale·q_r·k_j over visible keys j,
     * query head h reads kv head h / (H/KV). seqs: (n_seqs) in the table's memory; T_max bounds
     * their T. Never builds a (T, Tk) matrix (the CUDA kernel uses an online softmax). */
    void (*attention)(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                      const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale);
    /* The same on bf16 tensor cores (the bf16 mode): q and the weights p are rounded to bf16 before
     * their products, keys and values are read from the descriptors' bf16 copies k16/v16 (= bf16 of
     * k and v), every sum is fp32. Only for rt_cuda_attention_bf16_supported(HD). */
    void (*attention_bf16)(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                           const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale);
    /* S (T, Tk): query row r at absolute position p = pos0 + r; set -inf where key j > p or
     * (window > 0 and j <= p - window), as forward.c masks a full score matrix. */
    void (*mask_scores)(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window);
    /* S (T, Tk) in place: softmax of each row over its visible keys [first, p] (forward.c's rule:
     * -inf -> 0, a row summing to 0 stays 0), zeros elsewhere. */
    void (*softmax_rows)(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window);

    /* ---- full-vocabulary rankings (analysis/maps.c --device cuda; the rule of analysis/topk.h) ---- */
    /* lt (R) = Σ_d (double)Y[r,d]·W[tgt[r],d] (the target's exact logit); ynorm (R) = ‖Y[r]‖₂ in double.
     * Y (R, D), W (V, D) row-major, tgt (R) ids in [0, V). */
    void (*target_dots)(rt_cuda_ctx *c, const float *Y, int R, int D, const float *W, const int *tgt, double *lt,
                        double *ynorm);
    /* One vocabulary block of logits C (R, Wb; row stride Wb) for tokens v0..v0+Wb-1; per row r adds into
     * cnt (R, 4) ints: [0] tokens ranked before tgt[r] (logit descending, ties by id; comparisons in
     * float against lf = (float)lt[r] exactly as topk.c's count_block), [1] the same for the ascending
     * order, [2] tokens with (double)c > lt + m, [3] tokens with (double)c < lt − m, m = rel·ynorm[r]
     * (sure-above / sure-below under a perturbation of every logit by less than m). The target itself
     * is never counted; NaN logits count in [0]/[1] as topk.c counts them and in neither [2] nor [3]. */
    void (*rank_count)(rt_cuda_ctx *c, const float *C, int R, int Wb, int v0, const int *tgt, const double *lt,
                       const double *ynorm, double rel, int *cnt);
} rt_cuda_ops;

const rt_cuda_ops *rt_cuda_ops_host(void);     /* always available */
const rt_cuda_ops *rt_cuda_ops_device(void);   /* NULL in a build without CUDA */
/* The device table with every kernel and copy timed by CUDA events (rt_cuda_profile.cu; NULL
 * without CUDA): rt_gpu_opts.profile. Reset and print the per-op totals (stderr-style text). */
const rt_cuda_ops *rt_cuda_ops_profiled(void);
void rt_cuda_profile_reset(void);
void rt_cuda_profile_report(FILE *f, const char *title);

/* Probe device `device` (see rt_gpu_device_check; logs the one line on failure). */
hs_status rt_cuda_device_probe(int device, rt_gpu_device_info *info);

/* CPU references, callable directly (tests): same contracts as the table entries, host memory. */
void rt_cuda_ref_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int cols);
void rt_cuda_ref_gather_rows(float *dst, const void *table, rt_cuda_dtype dt, const int *idx, int n, int D);
void rt_cuda_ref_add(float *x, const float *y, size_t n);
void rt_cuda_ref_add_bias(float *y, const float *b, int rows, int cols);
void rt_cuda_ref_norm(float *y, const float *x, const float *w, const float *b, int rows, int D, bool rms, float eps);
void rt_cuda_ref_rope(float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                      const float *sin_t, bool interleaved);
void rt_cuda_ref_gelu(float *x, size_t n, bool exact);
void rt_cuda_ref_swiglu(float *hid, const float *gate, size_t n);
void rt_cuda_ref_to_bf16(uint16_t *dst, const float *src, size_t n);
void rt_cuda_ref_to_bf16_split(uint16_t *hi, uint16_t *lo, const float *src, size_t n);
void rt_cuda_ref_bias_gelu_bf16(const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi, uint16_t *lo);
void rt_cuda_ref_swiglu_bf16(const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo);
void rt_cuda_ref_add_norm_bf16(float *x, const float *y, const float *b, float *xn, const float *w, const float *nb, int rows,
                               int D, bool rms, float eps, uint16_t *hi, uint16_t *lo);
void rt_cuda_ref_qkv_split(const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k, float *v,
                           uint16_t *k16, uint16_t *v16);
/* GELU of v evaluated in float, the formula of bias_gelu_bf16 (CPU side; the kernel has its own
 * copy with the same operations): tanh approximation as v·sigmoid(2u) = v / (1 + exp(−2u)),
 * u = √(2/π)·(v + 0.044715·v³), which equals 0.5·v·(1 + tanh u) without its cancellation for
 * negative v; exact as 0.5·v·erfc(−v/√2), likewise. Relative to the exact value: within 2.5e-7
 * (2 ulp) for v >= 0, 4e-6 for v < 0 where |gelu(v)| >= 1e-9 (the tail's exponential amplifies
 * the rounding of its argument); below that, absolutely within 1e-9. */
float rt_cuda_gelu_f32(float v, bool exact);
void rt_cuda_ref_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const void *A, int lda,
                      const void *B, int ldb, rt_cuda_dtype ab, float beta, float *C, int ldc);
void rt_cuda_ref_attention(float *z, int ldz, float *lse, int ldlse, const float *q, int ldq, const rt_cuda_seq *seqs,
                           int n_seqs, int H, int KV, int HD, int window, float scale);
void rt_cuda_ref_attention_bf16(float *z, int ldz, float *lse, int ldlse, const float *q, int ldq, const rt_cuda_seq *seqs,
                                int n_seqs, int H, int KV, int HD, int window, float scale);
/* Head sizes the bf16 tensor-core attention kernel is built for (16, 32, 64, 128). */
bool rt_cuda_attention_bf16_supported(int HD);
void rt_cuda_ref_mask_scores(float *S, int T, int Tk, int pos0, int window);
void rt_cuda_ref_softmax_rows(float *S, int T, int Tk, int pos0, int window);
void rt_cuda_ref_target_dots(const float *Y, int R, int D, const float *W, const int *tgt, double *lt, double *ynorm);
void rt_cuda_ref_rank_count(const float *C, int R, int Wb, int v0, const int *tgt, const double *lt, const double *ynorm,
                            double rel, int *cnt);
float rt_cuda_bf16_to_f32(uint16_t b);

#ifdef __cplusplus
}
#endif
#endif
