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
#include <string.h>
#include "probe_cuda_stats.h"
#include "runtime/cuda/rt_cuda_attn_f32.h"
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
        rt_attn_f32_scores<kRPW>(s, Qs, Ks, ldks, HD, w, lane);
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
 * as there: 128 query rows per block, 8 warps × 16 rows, key tiles of 64 (K from the bf16 copy,
 * double-buffered with cp.async); each lane folds its 16 columns of its two rows, the 4 lanes of a
 * group are combined per row, rows are summed in double as above. Entropy needs no logarithm:
 * −p·ln p = p·(lse − s) (exact in real arithmetic; the fp32 kernel keeps logf because its rows may
 * be sharper than fp32 cancellation in lse − s allows for the 1e-4 exactness bound).
 * One launch covers every sequence of a layer (grid.z; descriptors passed by value), so a batch
 * of short sequences still fills the GPU. Interior tiles — every key strictly before the warp's
 * previous-token diagonal, none at position 0, inside every row's window — skip the masks and the
 * BOS/self/previous tests (fold_tile<false, ...>). */
struct stats_seq {
    const float *q;           /* (T, ldq) */
    const uint16_t *k16;      /* (pos0+T, KV*HD) */
    const float *lse;         /* (T, ldlse) */
    const int *ids;           /* (pos0+T) */
    double *sums;             /* (H, PROBE_M_N) */
    int T, pos0, has_repeat;
};
constexpr int kMaxBatch = 16;
struct stats_batch { stats_seq s[kMaxBatch]; };

struct row_acc { float ent[2], mx[2], dist[2], bos[2], slf[2], prv[2], dup[2], ind[2]; };

template <bool kEdge, bool kRepeat>
__device__ __forceinline__ void fold_tile(row_acc &a, const float s[8][4], const float l2[2], const int pi[2],
                                          const bool rv[2], const int tok[2], const int *idS, int k0, int k_end,
                                          int window, int quad, float sc2) {
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int r = e >> 1, c = n * 8 + 2 * quad + (e & 1), j = k0 + c, i = pi[r];
            if (kEdge) {
                bool ok = rv[r] && j < k_end && j <= i && (window <= 0 || i - j < window);
                if (!ok) continue;
            }
            float s2 = s[n][e] * sc2, p = rt_mma_exp2(s2 - l2[r]);
            a.ent[r] = fmaf(p, l2[r] - s2, a.ent[r]);
            a.mx[r] = fmaxf(a.mx[r], p);
            a.dist[r] = fmaf(p, (float)(i - j), a.dist[r]);
            if (kEdge) {
                if (j == 0) a.bos[r] = p;
                if (j == i) a.slf[r] = p;
                if (j == i - 1) a.prv[r] = p;
            }
            if (kRepeat) {
                if ((!kEdge || j < i) && idS[c + 1] == tok[r]) a.dup[r] += p;
                if (idS[c] == tok[r]) a.ind[r] += p;   /* ids[j−1]; j = 0 reads −2 */
            }
        }
}

template <int HD>
__global__ void __launch_bounds__(256, HD <= 64 ? 2 : 1) stats_tc_kernel(stats_batch bt, int ldq, int ldlse, int H, int KV, int window,
                                                        float scale) {
    const stats_seq &sq = bt.s[blockIdx.z];
    const float *q = sq.q, *lse = sq.lse;
    const uint16_t *k16 = sq.k16;
    const int *ids = sq.ids;
    const int T = sq.T, pos0 = sq.pos0, has_repeat = sq.has_repeat;
    constexpr int kLdk = HD + 8, kTile = 64 * kLdk;
    constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
    const int q0 = (gridDim.x - 1 - blockIdx.x) * 128;   /* heaviest (latest) query blocks first, as the attention kernel */
    if (q0 >= T) return;
    const int h = blockIdx.y, g = h / (H / KV);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, group = lane >> 2, quad = lane & 3;
    const int nq = min(128, T - q0), wr0 = w * 16, wn = max(0, min(16, nq - wr0));
    const int w_last = pos0 + q0 + wr0 + wn - 1, w_first = pos0 + q0 + wr0;
    __shared__ __align__(16) __nv_bfloat16 Ks[2 * kTile];   /* two stages */
    __shared__ int idS[2][65];                        /* ids of keys k0−1 .. k0+63, per stage */
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
    row_acc a;
#pragma unroll
    for (int r = 0; r < 2; r++) a.ent[r] = a.mx[r] = a.dist[r] = a.bos[r] = a.slf[r] = a.prv[r] = a.dup[r] = a.ind[r] = 0.0f;
    const int p_first = pos0 + q0, p_last = pos0 + q0 + nq - 1;
    const int k_begin = window > 0 && p_first - window + 1 > 0 ? p_first - window + 1 : 0;
    const int k_end = p_last + 1;
    const float sc2 = scale * kLog2e;
    const size_t ld16 = (size_t)KV * HD;
    rt_mma_load_tile16_async<HD>(Ks, kLdk, k16, ld16, g * HD, k_begin, k_end);
    rt_mma_async_commit();
    int stage = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += 64, stage ^= 1) {
        if (k0 + 64 < k_end) rt_mma_load_tile16_async<HD>(Ks + (stage ^ 1) * kTile, kLdk, k16, ld16, g * HD, k0 + 64, k_end);
        rt_mma_async_commit();
        if (has_repeat)
            for (int i = threadIdx.x; i < 65; i += blockDim.x) {
                int j = k0 - 1 + i;
                idS[stage][i] = j >= 0 && j < k_end ? ids[j] : -2;
            }
        rt_mma_async_wait<1>();
        __syncthreads();
        if (!(wn == 0 || k0 > w_last || (window > 0 && k0 + 63 <= w_first - window))) {   /* as the attention kernel */
            float s[8][4];
            rt_mma_scores<HD>(s, qa, Ks + stage * kTile, kLdk, lane);
            /* interior: all 16 rows counted, keys 1.. strictly before every row's previous token,
             * inside every row's window */
            bool interior = wn == 16 && w_first > 0 && k0 > 0 && k0 + 63 < w_first - 1 && (window <= 0 || w_last - k0 < window);
            const int *ik = idS[stage];
            if (interior) {
                if (has_repeat) fold_tile<false, true>(a, s, l2, pi, rv, tok, ik, k0, k_end, window, quad, sc2);
                else fold_tile<false, false>(a, s, l2, pi, rv, tok, ik, k0, k_end, window, quad, sc2);
            } else {
                if (has_repeat) fold_tile<true, true>(a, s, l2, pi, rv, tok, ik, k0, k_end, window, quad, sc2);
                else fold_tile<true, false>(a, s, l2, pi, rv, tok, ik, k0, k_end, window, quad, sc2);
            }
        }
        __syncthreads();                              /* stage consumed before it is refilled */
    }
    rt_mma_async_wait<0>();
    double dtot[PROBE_M_N];
#pragma unroll
    for (int m = 0; m < PROBE_M_N; m++) dtot[m] = 0.0;
#pragma unroll
    for (int r = 0; r < 2; r++) {
#pragma unroll
        for (int o = 1; o <= 2; o <<= 1) {
            a.ent[r] += __shfl_xor_sync(0xffffffffu, a.ent[r], o);
            a.mx[r] = fmaxf(a.mx[r], __shfl_xor_sync(0xffffffffu, a.mx[r], o));
            a.dist[r] += __shfl_xor_sync(0xffffffffu, a.dist[r], o);
            a.bos[r] += __shfl_xor_sync(0xffffffffu, a.bos[r], o);
            a.slf[r] += __shfl_xor_sync(0xffffffffu, a.slf[r], o);
            a.prv[r] += __shfl_xor_sync(0xffffffffu, a.prv[r], o);
            a.dup[r] += __shfl_xor_sync(0xffffffffu, a.dup[r], o);
            a.ind[r] += __shfl_xor_sync(0xffffffffu, a.ind[r], o);
        }
        if (quad == 0 && rv[r]) {
            dtot[PROBE_M_ENTROPY] += a.ent[r] * kLn2; dtot[PROBE_M_MAX_WEIGHT] += a.mx[r]; dtot[PROBE_M_BOS_MASS] += a.bos[r];
            dtot[PROBE_M_SELF] += a.slf[r]; dtot[PROBE_M_PREV_TOKEN] += a.prv[r]; dtot[PROBE_M_DISTANCE] += a.dist[r];
            dtot[PROBE_M_DUPLICATE] += a.dup[r]; dtot[PROBE_M_INDUCTION] += a.ind[r];
        }
    }
    add_block_totals(dtot, quad == 0, blk, sq.sums + (size_t)h * PROBE_M_N);
}

template <int HD>
static void launch_stats_tc(const stats_batch &bt, int n, int T_max, const rt_gpu_attn_event *ev) {
    dim3 grid((unsigned)((T_max + 127) / 128), (unsigned)ev->n_heads, (unsigned)n);
    stats_tc_kernel<HD><<<grid, 256, 0, (cudaStream_t)ev->stream>>>(bt, ev->ldq, ev->ldlse, ev->n_heads, ev->n_kv_heads,
                                                                    ev->window, ev->scale);
}

/* Events of one layer (same shapes, stream and mode; ids[i], has_repeat[i], sums[i] per event):
 * bf16 events in launches of up to kMaxBatch sequences, fp32 events one launch each. */
extern "C" const char *probe_cuda_stats_launch_batch(const rt_gpu_attn_event *evs, int n, const int *const *ids,
                                                     const bool *has_repeat, double *const *sums) {
    static char msg[256];
    if (n <= 0) return NULL;
    if (!evs[0].bf16) {
        for (int i = 0; i < n; i++) {
            const char *err = probe_cuda_stats_launch(&evs[i], ids[i], has_repeat[i], sums[i]);
            if (err) return err;
        }
        return NULL;
    }
    const rt_gpu_attn_event *ev = &evs[0];
    for (int b0 = 0; b0 < n; b0 += kMaxBatch) {
        int nb = n - b0 < kMaxBatch ? n - b0 : kMaxBatch, T_max = 0;
        stats_batch bt;
        memset(&bt, 0, sizeof bt);
        for (int i = 0; i < nb; i++) {
            const rt_gpu_attn_event *e = &evs[b0 + i];
            if (!e->k16) { snprintf(msg, sizeof msg, "bf16 statistics need the event's bf16 key copy (k16)"); return msg; }
            bt.s[i] = stats_seq{ e->q, e->k16, e->lse, ids[b0 + i], sums[b0 + i], e->T, e->pos0, has_repeat[b0 + i] ? 1 : 0 };
            if (e->T > T_max) T_max = e->T;
        }
        if (T_max <= 0) continue;
        switch (ev->d_head) {
        case 16: launch_stats_tc<16>(bt, nb, T_max, ev); break;
        case 32: launch_stats_tc<32>(bt, nb, T_max, ev); break;
        case 64: launch_stats_tc<64>(bt, nb, T_max, ev); break;
        case 128: launch_stats_tc<128>(bt, nb, T_max, ev); break;
        default: snprintf(msg, sizeof msg, "bf16 statistics for head_dim %d (16, 32, 64 or 128 only)", ev->d_head); return msg;
        }
        cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) { snprintf(msg, sizeof msg, "launch (bf16): %s", cudaGetErrorString(e)); return msg; }
    }
    return NULL;
}

extern "C" const char *probe_cuda_stats_launch(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums) {
    static int optin_done = 48 * 1024;
    static char msg[256];
    if (ev->T <= 0) return NULL;
    int HD = ev->d_head;
    if (ev->bf16) return probe_cuda_stats_launch_batch(ev, 1, &ids, &has_repeat, &sums);
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
