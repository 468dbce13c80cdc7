/* rt_cuda_attn_tc.cu — causal (+ sliding-window) attention on bf16 tensor cores, for the bf16 mode.
 * CPU reference: rt_cuda_ref_attention_bf16 (rt_cuda_ref.c); contract: rt_cuda_ops.h.
 *
 * Why a second kernel: the fp32 kernel (rt_cuda_attn.cu) runs on CUDA cores, and at T = 4096 it
 * alone took longer than HF's whole SDPA forward. This one is flash-attention-2 shaped:
 *   one block = 128 query rows of one head of one sequence, 4 warps × 32 rows (two 16-row m-tiles
 *   per warp sharing every K/V fragment read; HD 128: 8 warps × 16 rows, for registers); key tiles
 *   of 64.
 *   Q fragments stay in registers for the whole loop (rt_mma_load_q); each tile's K and V come
 *   from the bf16 copies the orchestration made (k16/v16: half the bytes of fp32, 16-byte loads)
 *   into shared memory, double-buffered with cp.async (the next tile loads while this one
 *   computes); S = Q·Kᵀ (K fragments by ldmatrix) and O += P·V are mma.m16n8k16 with fp32 accumulation (fragment
 *   layouts: rt_cuda_mma.h), P going from the score accumulators to the A operand in registers and
 *   V's fragments coming from ldmatrix.trans. A warp skips the products of a tile that lies wholly
 *   after its last query (causal) or before its first query's window; it still helps load.
 *   Online softmax in fp32, in base 2: s₂ = s·scale·log₂e, running max m per row (reduced over the
 *   4 lanes of a group), p = 2^(s₂ − m), O and the lane's partial row sum l rescaled by 2^(m_old − m)
 *   — the partial sums are only added across the group at the end.
 *   Output z = O / l (fp32) and lse = m·ln2 + ln l (natural log, as the fp32 kernel).
 * Numerics (the bf16 mode's): q, k, v and p are rounded to bf16 (8 significant bits) before the
 * products; every sum is fp32. Masked keys: s = −inf, p = 0; a row with nothing visible yet keeps
 * m = −inf and contributes nothing (sliding windows).
 * HD ∈ {16, 32, 64, 128}: rt_cuda_attention_bf16_supported(); the orchestration uses the fp32
 * kernel for any other head size.
 * Softmax cost: tiles wholly visible to all of a warp's rows (most of them) skip the masks and fold
 * the scale into the exponent's fma (softmax_step<HD, false>); only tiles on the diagonal or a
 * window edge test each element. 2^x is ex2.approx (rt_mma_exp2).
 * Shared memory (dynamic): 2 stages × (K + V) × 64·(HD+8)·2 bytes = 36 KB at HD 64, 69.6 KB at
 * HD 128 (opted in above the 48 KB default).
 */
#include "rt_cuda_internal.h"
#include "rt_cuda_mma.h"
#include <math.h>

namespace {
constexpr int kBK = 64;
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
}

/* One key tile's online-softmax step for a warp's 16 rows: s (the tile's raw scores) becomes p,
 * m, l and o are rescaled. kMasked: the tile crosses the causal diagonal, a window edge, the end
 * of the keys or the block's last rows — every element is tested; otherwise (most tiles, the
 * caller decides warp-uniformly) the scale folds into one fma per element and nothing is tested. */
template <int HD, bool kMasked>
__device__ __forceinline__ void softmax_step(float s[8][4], float o[HD / 8][4], float m[2], float l[2], int w_first, int wn,
                                             int group, int k0, int k_end, int window, int quad, float sc2) {
    float tmax[2] = { -INFINITY, -INFINITY };
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int r = e >> 1;
            if (kMasked) {
                int j = k0 + n * 8 + 2 * quad + (e & 1), p = w_first + group + 8 * r;   /* the row's position */
                bool ok = group + 8 * r < wn && j < k_end && j <= p && (window <= 0 || p - j < window);
                s[n][e] = ok ? s[n][e] * sc2 : -INFINITY;
            }
            tmax[r] = fmaxf(tmax[r], s[n][e]);
        }
    float alpha[2], msub[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
        tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
        float mn = fmaxf(m[r], kMasked ? tmax[r] : tmax[r] * sc2);   /* sc2 > 0: the max commutes with the scale */
        alpha[r] = m[r] == -INFINITY ? 0.0f : rt_mma_exp2(m[r] - mn);   /* nothing accumulated yet: o, l are 0 */
        m[r] = mn;
        l[r] *= alpha[r];
        msub[r] = mn == -INFINITY ? 0.0f : mn;        /* a row with nothing visible yet: every p is 2^−inf = 0 */
    }
    /* once a row's max has settled (most tiles past the first few) α = 2^0 = 1 exactly: skip the
     * HD/2 multiplies when that holds for the whole warp */
    if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f))
#pragma unroll
        for (int n = 0; n < HD / 8; n++) {
            o[n][0] *= alpha[0]; o[n][1] *= alpha[0];
            o[n][2] *= alpha[1]; o[n][3] *= alpha[1];
        }
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int r = e >> 1;
            float p = kMasked ? rt_mma_exp2(s[n][e] - msub[r]) : rt_mma_exp2(fmaf(s[n][e], sc2, -msub[r]));
            s[n][e] = p;
            l[r] += p;
        }
}

/* kMT: 16-row m-tiles per warp. With 2 (4 warps × 32 rows per 128-row block) every K and V
 * fragment read from shared memory feeds two mma instead of one — at one m-tile per warp the
 * fragment reads, not the tensor cores, set the pace (128 B/clock of shared memory per SM against
 * ~256 B/clock of B fragments that full-rate mma would consume). */
template <int HD, int kMT>
__global__ void __launch_bounds__(128 / kMT * 2, HD <= 64 ? 2 : 1) attn_tc_kernel(float *z, int ldz, float *lse, int ldlse,
                                                                                 const float *q, int ldq, const rt_cuda_seq *seqs,
                                                                                 int H, int KV, int window, float scale) {
    constexpr int kBQ = 128, kRW = 16 * kMT;          /* rows per block, rows per warp */
    const rt_cuda_seq sq = seqs[blockIdx.z];
    /* heaviest blocks first: under the causal mask a block's work grows with q0, so the last
     * query blocks are launched first and the short ones fill in behind them (no long tail) */
    const int q0 = (gridDim.x - 1 - blockIdx.x) * kBQ;
    if (q0 >= sq.T) return;                           /* whole block leaves together */
    const int h = blockIdx.y, g = h / (H / KV);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, group = lane >> 2, quad = lane & 3;
    const int nq = min(kBQ, sq.T - q0);
    constexpr int kLd = HD + 8;                       /* smem row stride: 16-byte rows, conflict-free fragments */
    constexpr int kTile = kBK * kLd;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *Ks = reinterpret_cast<__nv_bfloat16 *>(smem_raw);   /* [2][kBK][kLd]: two stages */
    __nv_bfloat16 *Vs = Ks + 2 * kTile;                                 /* [2][kBK][kLd] */

    /* this warp's rows: wr0 = kRW·w within the block; m-tile t has rows wr0 + 16t .. (+15), of which
     * the lane holds group and group+8; wn[t] of them exist */
    const int wr0 = w * kRW, wn_all = max(0, min(kRW, nq - wr0));
    int wn[kMT];
    uint32_t qa[kMT][HD / 16][4];
#pragma unroll
    for (int t = 0; t < kMT; t++) {
        wn[t] = max(0, min(16, wn_all - 16 * t));
        rt_mma_load_q<HD>(qa[t], q + (size_t)sq.off * ldq, (size_t)ldq, q0 + wr0 + 16 * t, wn[t], h * HD, group, quad);
    }
    const int w_last = sq.pos0 + q0 + wr0 + wn_all - 1;  /* the warp's last query position (wn_all = 0: none) */
    const int w_first = sq.pos0 + q0 + wr0;

    const int p_first = sq.pos0 + q0, p_last = sq.pos0 + q0 + nq - 1;
    const int k_begin = window > 0 && p_first - window + 1 > 0 ? p_first - window + 1 : 0;
    const int k_end = p_last + 1;
    const size_t ld16 = (size_t)KV * HD;
    const float sc2 = scale * kLog2e;

    float o[kMT][HD / 8][4];
    float m[kMT][2], l[kMT][2];
#pragma unroll
    for (int t = 0; t < kMT; t++) {
#pragma unroll
        for (int n = 0; n < HD / 8; n++) o[t][n][0] = o[t][n][1] = o[t][n][2] = o[t][n][3] = 0.0f;
        m[t][0] = m[t][1] = -INFINITY;
        l[t][0] = l[t][1] = 0.0f;
    }

    /* double buffering: tile t is in stage t & 1; the load of tile t+1 is in flight while tile t's
     * products run. The barrier at the end of an iteration keeps a stage from being overwritten
     * while a warp still reads it. */
    rt_mma_load_tile16_async<HD>(Ks, kLd, sq.k16, ld16, g * HD, k_begin, k_end);
    rt_mma_load_tile16_async<HD>(Vs, kLd, sq.v16, ld16, g * HD, k_begin, k_end);
    rt_mma_async_commit();
    int stage = 0;
    for (int k0 = k_begin; k0 < k_end; k0 += kBK, stage ^= 1) {
        if (k0 + kBK < k_end) {
            rt_mma_load_tile16_async<HD>(Ks + (stage ^ 1) * kTile, kLd, sq.k16, ld16, g * HD, k0 + kBK, k_end);
            rt_mma_load_tile16_async<HD>(Vs + (stage ^ 1) * kTile, kLd, sq.v16, ld16, g * HD, k0 + kBK, k_end);
        }
        rt_mma_async_commit();                        /* possibly empty: keeps the group count uniform */
        rt_mma_async_wait<1>();                       /* tile k0 has landed (this thread's part) */
        __syncthreads();                              /* ... and everyone's */
        const __nv_bfloat16 *Kt = Ks + stage * kTile, *Vt = Vs + stage * kTile;
        /* warp-uniform skips: no rows, a tile wholly after the warp's last query (causal), or wholly
         * before its first query's window */
        if (!(wn_all == 0 || k0 > w_last || (window > 0 && k0 + kBK - 1 <= w_first - window))) {
            float s[kMT][8][4];
            rt_mma_scores_mt<HD, kMT>(s, qa, Kt, kLd, lane);
#pragma unroll
            for (int t = 0; t < kMT; t++) {
                /* unmasked: all 16 rows valid, every key of the tile at or before the m-tile's first
                 * query and inside its last query's window */
                const int t_first = w_first + 16 * t, t_last = t_first + 15;
                bool full = wn[t] == 16 && k0 + kBK - 1 <= t_first && (window <= 0 || t_last - k0 < window);
                if (full) softmax_step<HD, false>(s[t], o[t], m[t], l[t], t_first, wn[t], group, k0, k_end, window, quad, sc2);
                else softmax_step<HD, true>(s[t], o[t], m[t], l[t], t_first, wn[t], group, k0, k_end, window, quad, sc2);
            }
            /* P·V for each 16-key step: the score accumulators are the A fragments; each V
             * fragment serves every m-tile */
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                uint32_t pa[kMT][4];
#pragma unroll
                for (int t = 0; t < kMT; t++) {
                    pa[t][0] = rt_mma_pack_bf16(s[t][2 * kk][0], s[t][2 * kk][1]);
                    pa[t][1] = rt_mma_pack_bf16(s[t][2 * kk][2], s[t][2 * kk][3]);
                    pa[t][2] = rt_mma_pack_bf16(s[t][2 * kk + 1][0], s[t][2 * kk + 1][1]);
                    pa[t][3] = rt_mma_pack_bf16(s[t][2 * kk + 1][2], s[t][2 * kk + 1][3]);
                }
#pragma unroll
                for (int n = 0; n < HD / 8; n += 2) {
                    uint32_t b[4];
                    rt_mma_ldmatrix_v(b, Vt, kLd, kk, n, lane);
#pragma unroll
                    for (int t = 0; t < kMT; t++) {
                        rt_mma_bf16_16816(o[t][n], pa[t], b);
                        rt_mma_bf16_16816(o[t][n + 1], pa[t], b + 2);
                    }
                }
            }
        }
        __syncthreads();                              /* stage consumed before the next prefetch overwrites it */
    }
    rt_mma_async_wait<0>();

    /* the group's partial sums -> row sums; write z and lse */
#pragma unroll
    for (int t = 0; t < kMT; t++)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float lr = l[t][r];
            lr += __shfl_xor_sync(0xffffffffu, lr, 1);
            lr += __shfl_xor_sync(0xffffffffu, lr, 2);
            if (group + 8 * r >= wn[t]) continue;
            size_t row = (size_t)sq.off + q0 + wr0 + 16 * t + group + 8 * r;
            float inv = lr > 0.0f ? 1.0f / lr : 0.0f;
            float *zr = z + row * ldz + (size_t)h * HD;
#pragma unroll
            for (int n = 0; n < HD / 8; n++)
                *reinterpret_cast<float2 *>(zr + n * 8 + 2 * quad) = make_float2(o[t][n][2 * r] * inv, o[t][n][2 * r + 1] * inv);
            if (quad == 0) lse[row * ldlse + h] = lr > 0.0f ? m[t][r] * kLn2 + logf(lr) : -INFINITY;
        }
}

template <int HD, int kMT>
static void launch_attn_tc(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                           const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int window, float scale) {
    constexpr int kSmem = 4 * kBK * (HD + 8) * (int)sizeof(__nv_bfloat16);   /* K and V, two stages each */
    static bool optin;   /* past the 48 KB default at HD 128 (69.6 KB): once per instantiation */
    if (kSmem > 48 * 1024 && !optin) {
        cudaError_t e = cudaFuncSetAttribute(attn_tc_kernel<HD, kMT>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
        if (e != cudaSuccess) { rt_cuda_note(c, "attention_bf16", cudaGetErrorString(e)); return; }
        optin = true;
    }
    dim3 grid((unsigned)((T_max + 127) / 128), (unsigned)H, (unsigned)n_seqs);
    attn_tc_kernel<HD, kMT><<<grid, 128 / kMT * 2, kSmem, c->stream>>>(z, ldz, lse, ldlse, q, ldq, seqs, H, KV, window, scale);
    rt_cuda_after_launch(c, "attention_bf16");
}
void rt_cuda_k_attention_bf16(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                              const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window,
                              float scale) {
    if (n_seqs <= 0 || T_max <= 0) return;
    if (n_seqs > 65535 || H > 65535) { rt_cuda_note(c, "attention_bf16", "more than 65535 sequences or heads in one launch"); return; }
    switch (HD) {
    case 16: launch_attn_tc<16, 2>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, window, scale); break;
    case 32: launch_attn_tc<32, 2>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, window, scale); break;
    case 64: launch_attn_tc<64, 2>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, window, scale); break;
    case 128: launch_attn_tc<128, 1>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, window, scale); break;
    default: rt_cuda_note(c, "attention_bf16", "head_dim must be 16, 32, 64 or 128 (the orchestration uses the fp32 kernel otherwise)");
    }
}
