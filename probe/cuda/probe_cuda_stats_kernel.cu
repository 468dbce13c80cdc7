/* probe_cuda_stats_kernel.cu — per-head attention statistics from q, k and the row log-sum-exp.
 * CPU reference: probe_cuda_stats_ref (probe_cuda_stats.c); definitions: probe/stats.h.
 *
 * Layout mirrors the attention kernel (runtime/cuda/rt_cuda_attn.cu): one block = 32 query rows of
 * one head, 4 warps × 8 rows, key tiles of 32 in shared memory (K rows padded to HD+1), lane = key
 * column. The score is formed exactly as there — fmaf over d in order, then × scale — so
 * p = exp(s − lse) is the pattern the attention used, up to expf's last bit. Each lane keeps
 * per-row partial sums in registers over its key columns; at the end every warp reduces its
 * rows, the block adds its warps in shared memory (double), and one thread per metric does a
 * global atomicAdd (double atomics: sm_60+). Cost ≈ the QKᵀ half of attention; no T×T memory.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include "probe_cuda_stats.h"

namespace {
constexpr int kBQ = 32, kBK = 32, kRPW = 8;

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
}

__global__ void __launch_bounds__(128) stats_kernel(const float *q, int ldq, const float *k, int ldk, const float *lse,
                                                     int ldlse, const int *ids, int T, int pos0, int H, int KV, int HD,
                                                     int window, float scale, int has_repeat, double *sums) {
    const int q0 = blockIdx.x * kBQ;
    if (q0 >= T) return;
    const int h = blockIdx.y, g = h / (H / KV);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int nq = min(kBQ, T - q0), ldks = HD + 1;
    extern __shared__ float sm[];
    float *Qs = sm;                     /* [kBQ][HD] */
    float *Ks = Qs + kBQ * HD;          /* [kBK][HD+1] */
    __shared__ double blk[PROBE_M_N];

    if (threadIdx.x < PROBE_M_N) blk[threadIdx.x] = 0.0;
    for (int i = threadIdx.x; i < kBQ * HD; i += blockDim.x) {
        int r = i / HD, d = i % HD;
        Qs[i] = r < nq ? q[(size_t)(q0 + r) * ldq + (size_t)h * HD + d] : 0.0f;
    }
    float rl[kRPW];                     /* each row's lse; ids of each row's query */
    int tid[kRPW];
#pragma unroll
    for (int rr = 0; rr < kRPW; rr++) {
        int r = w * kRPW + rr;
        rl[rr] = r < nq ? lse[(size_t)(q0 + r) * ldlse + h] : 0.0f;
        tid[rr] = r < nq && has_repeat ? ids[pos0 + q0 + r] : -1;
    }
    float ent[kRPW], mx[kRPW], dist[kRPW], bos[kRPW], slf[kRPW], prv[kRPW], dup[kRPW], ind[kRPW];
#pragma unroll
    for (int rr = 0; rr < kRPW; rr++) ent[rr] = mx[rr] = dist[rr] = bos[rr] = slf[rr] = prv[rr] = dup[rr] = ind[rr] = 0.0f;

    const int p_first = pos0 + q0, p_last = pos0 + q0 + nq - 1;
    const int k_begin = window > 0 && p_first - window + 1 > 0 ? p_first - window + 1 : 0;
    const int k_end = p_last + 1;
    for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
        __syncthreads();
        for (int i = threadIdx.x; i < kBK * HD; i += blockDim.x) {
            int cc = i / HD, d = i % HD, j = k0 + cc;
            Ks[cc * ldks + d] = j < k_end ? k[(size_t)j * ldk + (size_t)g * HD + d] : 0.0f;
        }
        __syncthreads();
        float s[kRPW];
#pragma unroll
        for (int rr = 0; rr < kRPW; rr++) s[rr] = 0.0f;
        for (int d = 0; d < HD; d++) {
            float kd = Ks[lane * ldks + d];
#pragma unroll
            for (int rr = 0; rr < kRPW; rr++) s[rr] = fmaf(Qs[(w * kRPW + rr) * HD + d], kd, s[rr]);
        }
        const int j = k0 + lane;
        const int idj = has_repeat && j < k_end ? ids[j] : -2, idjm1 = has_repeat && j >= 1 && j < k_end ? ids[j - 1] : -2;
#pragma unroll
        for (int rr = 0; rr < kRPW; rr++) {
            int r = w * kRPW + rr, i = pos0 + q0 + r;
            bool ok = r < nq && i > 0 && j < k_end && j <= i && (window <= 0 || i - j < window);
            if (!ok) continue;
            float p = expf(s[rr] * scale - rl[rr]);
            ent[rr] -= p > 0.0f ? p * logf(p) : 0.0f;
            mx[rr] = fmaxf(mx[rr], p);
            dist[rr] += p * (float)(i - j);
            if (j == 0) bos[rr] = p;
            if (j == i) slf[rr] = p;
            if (j == i - 1) prv[rr] = p;
            if (j < i && idj == tid[rr]) dup[rr] += p;
            if (idjm1 == tid[rr]) ind[rr] += p;
        }
    }

    /* rows -> warp totals (lane 0), then block totals, then one atomic per metric */
    double dtot[PROBE_M_N];
#pragma unroll
    for (int m = 0; m < PROBE_M_N; m++) dtot[m] = 0.0;
#pragma unroll
    for (int rr = 0; rr < kRPW; rr++) {
        int r = w * kRPW + rr, i = pos0 + q0 + r;
        float e = warp_sum(ent[rr]), x = warp_max(mx[rr]), ds = warp_sum(dist[rr]);
        float b = warp_sum(bos[rr]), sf = warp_sum(slf[rr]), pv = warp_sum(prv[rr]);
        float du = warp_sum(dup[rr]), in = warp_sum(ind[rr]);
        if (r < nq && i > 0) {
            dtot[PROBE_M_ENTROPY] += e; dtot[PROBE_M_MAX_WEIGHT] += x; dtot[PROBE_M_BOS_MASS] += b;
            dtot[PROBE_M_SELF] += sf; dtot[PROBE_M_PREV_TOKEN] += pv; dtot[PROBE_M_DISTANCE] += ds;
            dtot[PROBE_M_DUPLICATE] += du; dtot[PROBE_M_INDUCTION] += in;
        }
    }
    __syncthreads();
    if (lane == 0)
        for (int m = 0; m < PROBE_M_N; m++) atomicAdd(&blk[m], dtot[m]);
    __syncthreads();
    if (threadIdx.x < PROBE_M_N) atomicAdd(&sums[(size_t)h * PROBE_M_N + threadIdx.x], blk[threadIdx.x]);
}

extern "C" const char *probe_cuda_stats_launch(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums) {
    static int optin_done = 48 * 1024;
    static char msg[256];
    if (ev->T <= 0) return NULL;
    int HD = ev->d_head;
    size_t smem = (size_t)(kBQ * HD + kBK * (HD + 1)) * sizeof(float);
    if ((int)smem > optin_done) {
        cudaError_t e = cudaFuncSetAttribute(stats_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) { snprintf(msg, sizeof msg, "cudaFuncSetAttribute(%zu bytes): %s", smem, cudaGetErrorString(e)); return msg; }
        optin_done = (int)smem;
    }
    dim3 grid((unsigned)((ev->T + kBQ - 1) / kBQ), (unsigned)ev->n_heads);
    stats_kernel<<<grid, 128, smem, (cudaStream_t)ev->stream>>>(ev->q, ev->ldq, ev->k, ev->ldk, ev->lse, ev->ldlse, ids,
                                                                ev->T, ev->pos0, ev->n_heads, ev->n_kv_heads, HD,
                                                                ev->window, ev->scale, has_repeat ? 1 : 0, sums);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) { snprintf(msg, sizeof msg, "launch: %s", cudaGetErrorString(e)); return msg; }
    return NULL;
}
