/* rt_cuda_rank.cu — the full-vocabulary ranking kernels of `analyze maps --device cuda`: the
 * target's exact logit per row, and per-block counts of tokens ranked before the target.
 * CPU references: rt_cuda_ref_target_dots / rt_cuda_ref_rank_count (rt_cuda_ref.c), which are
 * analysis/topk.c's rule; contracts: rt_cuda_ops.h.
 *
 * One block per row. Counts are integers, so the block reduction is exact and order-free: the
 * kernel's counts equal the reference's for the same logits, bit for bit. The dot products are in
 * double (as topk.c's dot_d); their order differs from the reference by rounding of a double sum
 * only (~1e-16 relative), far inside the margin the caller uses to decide which rows are certain.
 */
#include "rt_cuda_internal.h"

static const int kRankThreads = 256;

__device__ __forceinline__ double block_sum_d(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    double s = 0;
    for (int i = 0; i < nw; i++) s += sh[i];   /* every thread, same order: one value */
    return s;
}

__global__ void target_dots_kernel(const float *Y, int D, const float *W, const int *tgt, double *lt, double *ynorm) {
    __shared__ double sh[32];
    int r = blockIdx.x;
    const float *y = Y + (size_t)r * D, *w = W + (size_t)tgt[r] * D;
    double s = 0, q = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) { s += (double)y[d] * (double)w[d]; q += (double)y[d] * (double)y[d]; }
    s = block_sum_d(s, sh);
    q = block_sum_d(q, sh);
    if (threadIdx.x == 0) { lt[r] = s; ynorm[r] = sqrt(q); }
}

void rt_cuda_k_target_dots(rt_cuda_ctx *c, const float *Y, int R, int D, const float *W, const int *tgt, double *lt,
                           double *ynorm) {
    if (R <= 0) return;
    target_dots_kernel<<<R, kRankThreads, 0, c->stream>>>(Y, D, W, tgt, lt, ynorm);
    rt_cuda_after_launch(c, "target_dots");
}

__global__ void rank_count_kernel(const float *C, int Wb, int v0, const int *tgt, const double *lt, const double *ynorm,
                                  double rel, int *cnt) {
    __shared__ int sh[4][32];
    int r = blockIdx.x;
    const float *c = C + (size_t)r * Wb;
    double l = lt[r], m = rel * ynorm[r];
    float lf = (float)l;   /* as topk.c: compare in float against the nearest float of the exact logit */
    int t = tgt[r], gt = 0, ls = 0, sa = 0, sb = 0;
    for (int j = threadIdx.x; j < Wb; j += blockDim.x) {
        if (v0 + j == t) continue;
        float x = c[j];
        if (x > lf) gt++;
        else if (x < lf) ls++;
        else if ((double)lf > l) gt++;
        else if ((double)lf < l) ls++;
        else if (x == lf && v0 + j < t) { gt++; ls++; }
        sa += (double)x > l + m;
        sb += (double)x < l - m;
    }
    for (int o = 16; o > 0; o >>= 1) {
        gt += __shfl_xor_sync(0xffffffffu, gt, o);
        ls += __shfl_xor_sync(0xffffffffu, ls, o);
        sa += __shfl_xor_sync(0xffffffffu, sa, o);
        sb += __shfl_xor_sync(0xffffffffu, sb, o);
    }
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    if (lane == 0) { sh[0][w] = gt; sh[1][w] = ls; sh[2][w] = sa; sh[3][w] = sb; }
    __syncthreads();
    if (threadIdx.x < 4) {
        int s = 0;
        for (int i = 0; i < nw; i++) s += sh[threadIdx.x][i];
        cnt[4 * (size_t)r + threadIdx.x] += s;
    }
}

void rt_cuda_k_rank_count(rt_cuda_ctx *c, const float *C, int R, int Wb, int v0, const int *tgt, const double *lt,
                          const double *ynorm, double rel, int *cnt) {
    if (R <= 0 || Wb <= 0) return;
    rank_count_kernel<<<R, kRankThreads, 0, c->stream>>>(C, Wb, v0, tgt, lt, ynorm, rel, cnt);
    rt_cuda_after_launch(c, "rank_count");
}
