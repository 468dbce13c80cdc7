/* rt_cuda_attn_f32.h — the score of the fp32 attention kernel (rt_cuda_attn.cu), shared with the
 * fp32 statistics kernel (probe/cuda/probe_cuda_stats_kernel.cu), which must form every score
 * exactly as the attention did so that exp(s − lse) is that attention's pattern. C++/CUDA only.
 */
#ifndef HS_RT_CUDA_ATTN_F32_H
#define HS_RT_CUDA_ATTN_F32_H

/* s[rr] = q_r · k_lane for the warp's kRPW rows r = w·kRPW + rr: fmaf over d in order, Q rows in
 * shared memory as Qs[r][HD], the lane's key as row `lane` of Ks (row stride ldks). */
template <int kRPW>
__device__ __forceinline__ void rt_attn_f32_scores(float s[kRPW], const float *Qs, const float *Ks, int ldks, int HD, int w,
                                                   int lane) {
#pragma unroll
    for (int rr = 0; rr < kRPW; rr++) s[rr] = 0.0f;
    for (int d = 0; d < HD; d++) {
        float kd = Ks[lane * ldks + d];
#pragma unroll
        for (int rr = 0; rr < kRPW; rr++) s[rr] = fmaf(Qs[(w * kRPW + rr) * HD + d], kd, s[rr]);
    }
}
#endif
