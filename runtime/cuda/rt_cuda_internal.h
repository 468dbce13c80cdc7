/* rt_cuda_internal.h — what the CUDA files of the runtime share (C++ only, never included from C):
 * the context behind rt_cuda_ctx, launch bookkeeping, and the kernel launchers that
 * rt_cuda_device.cu puts in the device ops table.
 *
 * Errors: a launch never aborts. rt_cuda_after_launch records the first failure (kernel name and
 * CUDA error text) in the context; ops->check() reports it as one line and returns HS_EIO. With
 * HS_CUDA_SYNC=1 in the environment every launch is followed by a stream synchronisation, so an
 * asynchronous fault (illegal address, ...) is pinned to the kernel that caused it.
 */
#ifndef HS_RT_CUDA_INTERNAL_H
#define HS_RT_CUDA_INTERNAL_H
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include "rt_cuda_ops.h"

struct rt_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    bool pedantic;          /* fp32 GEMMs in CUBLAS_PEDANTIC_MATH */
    bool sync_each;         /* HS_CUDA_SYNC=1 */
    int smem_optin;         /* max dynamic shared memory per block (bytes) after opt-in */
    int n_sm;
    /* the hook pipeline's copies (download_async), made on first use */
    bool copy_ready;
    cudaStream_t cstream;   /* device -> host copies beside the compute stream */
    cudaEvent_t ev_ready;   /* "everything queued so far" on the compute stream */
    cudaEvent_t ev_done[RT_CUDA_COPY_SLOTS];   /* each slot's copy finished */
    void *dstage[RT_CUDA_COPY_SLOTS];          /* device snapshot of each slot's tensor (bytes dcap[i]) */
    size_t dcap[RT_CUDA_COPY_SLOTS];
    char err[320];          /* first failure since the last check, "" if none */
};

/* cuBLAS entry points, resolved by rt_cuda_blas_load() (rt_cuda_blas.cu) on the first context:
 * the process never maps libcublas/libcublasLt unless a CUDA device is used. */
typedef struct {
    bool loaded;
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    const char *(*status_string)(cublasStatus_t);
} rt_cuda_blas_api;
extern rt_cuda_blas_api rt_cuda_blas;
/* Load cuBLAS once (thread-safe). HS_EIO with one error line when it cannot be loaded. */
hs_status rt_cuda_blas_load(void);

/* Record a failure (first one wins). */
void rt_cuda_note(rt_cuda_ctx *c, const char *what, const char *err);
/* After every kernel launch: pick up launch errors; with sync_each, wait and pick up faults. */
void rt_cuda_after_launch(rt_cuda_ctx *c, const char *what);
/* Blocks for a grid-stride loop over n elements with `threads` per block. */
int rt_cuda_blocks(const rt_cuda_ctx *c, size_t n, int threads);

/* Launchers (rt_cuda_kernels.cu, rt_cuda_fused.cu, rt_cuda_attn*.cu, rt_cuda_rank.cu): contracts in rt_cuda_ops.h. */
void rt_cuda_k_copy2d(rt_cuda_ctx *c, float *dst, int ldd, const float *src, int lds, int rows, int cols);
void rt_cuda_k_gather_rows(rt_cuda_ctx *c, float *dst, const void *table, rt_cuda_dtype dt, const int *idx, int n, int D);
void rt_cuda_k_add(rt_cuda_ctx *c, float *x, const float *y, size_t n);
void rt_cuda_k_add_bias(rt_cuda_ctx *c, float *y, const float *b, int rows, int cols);
void rt_cuda_k_norm(rt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int rows, int D, bool rms,
                    float eps);
void rt_cuda_k_rope(rt_cuda_ctx *c, float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                    const float *sin_t, bool interleaved);
void rt_cuda_k_gelu(rt_cuda_ctx *c, float *x, size_t n, bool exact);
void rt_cuda_k_swiglu(rt_cuda_ctx *c, float *hid, const float *gate, size_t n);
void rt_cuda_k_to_bf16(rt_cuda_ctx *c, uint16_t *dst, const float *src, size_t n);
void rt_cuda_k_to_bf16_split(rt_cuda_ctx *c, uint16_t *hi, uint16_t *lo, const float *src, size_t n);
void rt_cuda_k_bias_gelu_bf16(rt_cuda_ctx *c, const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi,
                              uint16_t *lo);
void rt_cuda_k_swiglu_bf16(rt_cuda_ctx *c, const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo);
void rt_cuda_k_add_norm_bf16(rt_cuda_ctx *c, float *x, const float *y, const float *b, float *xn, const float *w,
                             const float *nb, int rows, int D, bool rms, float eps, uint16_t *hi, uint16_t *lo);
void rt_cuda_k_qkv_split(rt_cuda_ctx *c, const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k,
                         float *v, uint16_t *k16, uint16_t *v16);
void rt_cuda_k_attention(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                         const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale);
void rt_cuda_k_attention_bf16(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                              const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window,
                              float scale);
void rt_cuda_k_mask_scores(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window);
void rt_cuda_k_softmax_rows(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window);
void rt_cuda_k_target_dots(rt_cuda_ctx *c, const float *Y, int R, int D, const float *W, const int *tgt, double *lt,
                           double *ynorm);
void rt_cuda_k_rank_count(rt_cuda_ctx *c, const float *C, int R, int Wb, int v0, const int *tgt, const double *lt,
                          const double *ynorm, double rel, int *cnt);

/* Warp reductions over all 32 lanes (every lane gets the result). */
template <typename V> __device__ __forceinline__ V rt_cuda_warp_sum(V v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float rt_cuda_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- the row normalisation shared by norm (rt_cuda_kernels.cu) and add_norm_bf16 (rt_cuda_fused.cu):
 * one code path, so the fused pass gives the unfused kernel's bits ---- */

/* Threads per row block: the reduction order, hence the bits of the statistics, depend on it. */
static inline int rt_cuda_norm_threads(int D) { return D >= 1024 ? 512 : D >= 256 ? 256 : D >= 64 ? 64 : 32; }

/* Sum of v over the block (blockDim.x a multiple of 32, <= 1024); every thread gets it.
 * red: 32 doubles of shared memory. Syncs before writing red, so calls can follow each other. */
__device__ __forceinline__ double rt_cuda_block_sum_d(double v, double *red) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = rt_cuda_warp_sum(v);
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    double t = lane < nw ? red[lane] : 0.0;
    t = rt_cuda_warp_sum(t);
    return t;
}

/* LayerNorm (nb may be NULL) or RMSNorm of one row, by the whole block, statistics in double as
 * forward.c: LN y = (float)((x-mean)·inv)·w + nb; RMS y = w·(float)(x·inv). xv(j) returns element j
 * (a float); each thread asks for j = threadIdx.x + k·blockDim.x in increasing k, once per pass.
 * out(j, y) receives the result. All threads of the block must call it (it synchronises). */
template <class XV, class OUT>
__device__ __forceinline__ void rt_cuda_norm_row(XV xv, OUT out, const float *w, const float *nb, int D, bool rms, float eps,
                                                 double *red) {
    if (!rms) {
        double s = 0;
        for (int j = threadIdx.x; j < D; j += blockDim.x) s += xv(j);
        double mean = rt_cuda_block_sum_d(s, red) / D;
        double v = 0;
        for (int j = threadIdx.x; j < D; j += blockDim.x) { double d = xv(j) - mean; v += d * d; }
        double var = rt_cuda_block_sum_d(v, red) / D;
        double inv = 1.0 / sqrt(var + (double)eps);
        for (int j = threadIdx.x; j < D; j += blockDim.x)
            out(j, __fadd_rn(__fmul_rn((float)((xv(j) - mean) * inv), w[j]), nb ? nb[j] : 0.0f));
    } else {
        double s = 0;
        for (int j = threadIdx.x; j < D; j += blockDim.x) { float x = xv(j); s += (double)x * x; }
        double ss = rt_cuda_block_sum_d(s, red);
        double inv = 1.0 / sqrt(ss / D + (double)eps);
        for (int j = threadIdx.x; j < D; j += blockDim.x) out(j, __fmul_rn(w[j], (float)(xv(j) * inv)));
    }
}
#endif
