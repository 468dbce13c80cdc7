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
#include "runtime/cuda/rt_cuda_mma.h"

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

/* The end of both kernels: the threads holding row totals (holder) add them into the block's
 * shared blk (double atomics), then one thread per metric adds the block's into out (this head's
 * PROBE_M_N sums). Every thread of the block must call it. */
__device__ __forceinline__ void add_block_totals(const double *dtot, bool holder, double *blk, double *out) {
    __syncthreads();
    if (holder)
        for (int m = 0; m < PROBE_M_N; m++) atomicAdd(&blk[m], dtot[m]);
    __syncthreads();
    if (threadIdx.x < PROBE_M_N) atomicAdd(&out[threadIdx.x], blk[threadIdx.x]);
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
    add_block_totals(dtot, lane == 0, blk, sums + (size_t)h * PROBE_M_N);
}

/* The bf16 mode's statistics (ev->bf16): the scores are recomputed exactly as the tensor-core
 * attention kernel (runtime/cuda/rt_cuda_attn_tc.cu) formed them — q and k rounded to bf16, the
 * same mma tiles from the same first key — so p = 2^(s₂ − lse₂) is that kernel's pattern. Layout
 * as there: 128 query rows per block, 8 warps × 16 rows, key tiles of 64 (K from the bf16 copy); each
 * lane folds its 16 columns of its two rows, the 4 lanes of a group are combined per row, rows are
 * summed in double as above. Entropy needs no logarithm: −p·ln p = p·(lse − s) (exact in real
 * arithmetic; the fp32 kernel keeps logf because its rows may be sharper than fp32 cancellation in
 * lse − s allows for the 1e-4 exactness bound). */
template <int HD>
__global__ void __launch_bounds__(256) stats_tc_kernel(const float *q, int ldq, const uint16_t *k16, const float *lse,
                                                        int ldlse, const int *ids, int T, int pos0, int H, int KV, int window,
                                                        float scale, int has_repeat, double *sums) {
    constexpr int kLdk = HD + 8;
    constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
    const int q0 = blockIdx.x * 128;
    if (q0 >= T) return;
    const int h = blockIdx.y, g = h / (H / KV);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, group = lane >> 2, quad = lane & 3;
    const int nq = min(128, T - q0), wr0 = w * 16, wn = max(0, min(16, nq - wr0));
    const int w_last = pos0 + q0 + wr0 + wn - 1, w_first = pos0 + q0 + wr0;
    __shared__ __align__(16) __nv_bfloat16 Ks[64 * kLdk];
    __shared__ int idS[65];                           /* ids of keys k0−1 .. k0+63 */
    __shared__ double blk[PROBE_M_N];
    if (threadIdx.x < PROBE_M_N) blk[threadIdx.x] = 0.0;

    uint32_t qa[HD / 16][4];
    rt_mma_load_q<HD>(qa, q, (size_t)ldq, q0 + wr0, wn, h * HD, group, quad);
    int pi[2], tok[2];
    bool rv[2];
    float l2[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int rr = wr0 + group + 8 * r;
        pi[r] = pos0 + q0 + rr;
        rv[r] = rr < nq && pi[r] > 0;                 /* the BOS query is not counted */
        l2[r] = rr < nq ? lse[(size_t)(q0 + rr) * ldlse + h] * kLog2e : 0.0f;
        tok[r] = rr < nq && has_repeat ? ids[pi[r]] : -1;
    }
    float ent[2] = { 0, 0 }, mx[2] = { 0, 0 }, dist[2] = { 0, 0 }, bos[2] = { 0, 0 }, slf[2] = { 0, 0 }, prv[2] = { 0, 0 },
          dup[2] = { 0, 0 }, ind[2] = { 0, 0 };
    const int p_first = pos0 + q0, p_last = pos0 + q0 + nq - 1;
    const int k_begin = window > 0 && p_first - window + 1 > 0 ? p_first - window + 1 : 0;
    const int k_end = p_last + 1;
    const float sc2 = scale * kLog2e;
    for (int k0 = k_begin; k0 < k_end; k0 += 64) {
        __syncthreads();
        rt_mma_load_tile16<HD>(Ks, kLdk, k16, (size_t)KV * HD, g * HD, k0, k_end);
        if (has_repeat)
            for (int i = threadIdx.x; i < 65; i += blockDim.x) {
                int j = k0 - 1 + i;
                idS[i] = j >= 0 && j < k_end ? ids[j] : -2;
            }
        __syncthreads();
        if (wn == 0 || k0 > w_last || (window > 0 && k0 + 63 <= w_first - window)) continue;   /* as the attention kernel */
        float s[8][4];
        rt_mma_scores<HD>(s, qa, Ks, kLdk, group, quad);
#pragma unroll
        for (int n = 0; n < 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int r = e >> 1, c = n * 8 + 2 * quad + (e & 1), j = k0 + c, i = pi[r];
                bool ok = rv[r] && j < k_end && j <= i && (window <= 0 || i - j < window);
                if (!ok) continue;
                float s2 = s[n][e] * sc2, p = exp2f(s2 - l2[r]);
                ent[r] += p * (l2[r] - s2);
                mx[r] = fmaxf(mx[r], p);
                dist[r] += p * (float)(i - j);
                if (j == 0) bos[r] = p;
                if (j == i) slf[r] = p;
                if (j == i - 1) prv[r] = p;
                if (has_repeat) {
                    if (j < i && idS[c + 1] == tok[r]) dup[r] += p;
                    if (idS[c] == tok[r]) ind[r] += p;   /* ids[j−1]; j = 0 reads −2 */
                }
            }
    }
    double dtot[PROBE_M_N];
#pragma unroll
    for (int m = 0; m < PROBE_M_N; m++) dtot[m] = 0.0;
#pragma unroll
    for (int r = 0; r < 2; r++) {
#pragma unroll
        for (int o = 1; o <= 2; o <<= 1) {
            ent[r] += __shfl_xor_sync(0xffffffffu, ent[r], o);
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], o));
            dist[r] += __shfl_xor_sync(0xffffffffu, dist[r], o);
            bos[r] += __shfl_xor_sync(0xffffffffu, bos[r], o);
            slf[r] += __shfl_xor_sync(0xffffffffu, slf[r], o);
            prv[r] += __shfl_xor_sync(0xffffffffu, prv[r], o);
            dup[r] += __shfl_xor_sync(0xffffffffu, dup[r], o);
            ind[r] += __shfl_xor_sync(0xffffffffu, ind[r], o);
        }
        if (quad == 0 && rv[r]) {
            dtot[PROBE_M_ENTROPY] += ent[r] * kLn2; dtot[PROBE_M_MAX_WEIGHT] += mx[r]; dtot[PROBE_M_BOS_MASS] += bos[r];
            dtot[PROBE_M_SELF] += slf[r]; dtot[PROBE_M_PREV_TOKEN] += prv[r]; dtot[PROBE_M_DISTANCE] += dist[r];
            dtot[PROBE_M_DUPLICATE] += dup[r]; dtot[PROBE_M_INDUCTION] += ind[r];
        }
    }
    add_block_totals(dtot, quad == 0, blk, sums + (size_t)h * PROBE_M_N);
}

template <int HD>
static void launch_stats_tc(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums) {
    dim3 grid((unsigned)((ev->T + 127) / 128), (unsigned)ev->n_heads);
    stats_tc_kernel<HD><<<grid, 256, 0, (cudaStream_t)ev->stream>>>(ev->q, ev->ldq, ev->k16, ev->lse, ev->ldlse, ids,
                                                                    ev->T, ev->pos0, ev->n_heads, ev->n_kv_heads, ev->window,
                                                                    ev->scale, has_repeat ? 1 : 0, sums);
}

extern "C" const char *probe_cuda_stats_launch(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums) {
    static int optin_done = 48 * 1024;
    static char msg[256];
    if (ev->T <= 0) return NULL;
    int HD = ev->d_head;
    if (ev->bf16) {
        if (!ev->k16) { snprintf(msg, sizeof msg, "bf16 statistics need the event's bf16 key copy (k16)"); return msg; }
        switch (HD) {
        case 16: launch_stats_tc<16>(ev, ids, has_repeat, sums); break;
        case 32: launch_stats_tc<32>(ev, ids, has_repeat, sums); break;
        case 64: launch_stats_tc<64>(ev, ids, has_repeat, sums); break;
        case 128: launch_stats_tc<128>(ev, ids, has_repeat, sums); break;
        default: snprintf(msg, sizeof msg, "bf16 statistics for head_dim %d (16, 32, 64 or 128 only)", HD); return msg;
        }
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) { snprintf(msg, sizeof msg, "launch (bf16): %s", cudaGetErrorString(e)); return msg; }
        return NULL;
    }
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
