/* rt_cuda_attn.cu — causal (+ sliding-window) attention in fp32 with an online softmax, and the
 * two row kernels of the hooked-pattern path (mask, softmax). CPU references: rt_cuda_ref.c.
 *
 * attention: one block = 32 query rows of one head of one sequence (4 warps × 8 rows). It walks
 * the visible keys in tiles of 32: K and V tiles in shared memory, scores S = scale·q·k for its
 * 32×32 tile, then per row the running max m, running sum l and output accumulator o are
 * rescaled by exp(m_old − m_new) (flash-attention's online softmax). Nothing of size T×Tk is
 * ever stored; what leaves the block is z = o / l and lse = m + ln l per row (the statistics
 * kernels recompute p_ij = exp(s_ij − lse_i) from it).
 *   thread mapping: warp w owns rows 8w..8w+7 for the whole tile loop, so a row's m, l and o live
 *   in that warp's registers and only __syncwarp is needed between its softmax and its P·V;
 *   scores: lane = key column (K tile rows padded to HD+1 floats: conflict-free for every HD);
 *   P·V: lane = head-dim column(s) d = lane + 32i, i < DPL (HD <= 32·DPL, a template parameter
 *   so the accumulators stay in registers).
 *   Shared memory: (32·HD + 32·(HD+1) + 32·HD + 32·32)·4 bytes: 52 KB at HD 128, 103 KB at 256,
 *   above the 48 KB default, hence the opt-in attribute.
 * Sliding window: a block starts at the first key its first query can see; masked entries get
 * s = −inf and p = 0; a fully masked tile row keeps m = −inf and contributes nothing.
 * This is a correctness-first CUDA-core kernel (fp32 FFMA); see docs/gpu.md for the tensor-core
 * plan of the bf16 mode.
 */
#include "rt_cuda_internal.h"
#include "rt_cuda_attn_f32.h"
#include <math.h>
#include <stdio.h>

namespace {
constexpr int kBQ = 32, kBK = 32, kWarps = 4, kRPW = kBQ / kWarps;
}

template <int DPL>
__global__ void __launch_bounds__(128) attn_kernel(float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                                                    const rt_cuda_seq *seqs, int H, int KV, int HD, int window,
                                                    float scale) {
    const rt_cuda_seq sq = seqs[blockIdx.z];
    const int q0 = blockIdx.x * kBQ;
    if (q0 >= sq.T) return;                           /* whole block leaves together */
    const int h = blockIdx.y, g = h / (H / KV);
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int nq = min(kBQ, sq.T - q0);
    const int ldks = HD + 1;
    extern __shared__ float sm[];
    float *Qs = sm;                                   /* [kBQ][HD] */
    float *Ks = Qs + kBQ * HD;                        /* [kBK][HD+1] */
    float *Vs = Ks + kBK * ldks;                      /* [kBK][HD] */
    float *Ps = Vs + kBK * HD;                        /* [kBQ][kBK] */

    for (int i = threadIdx.x; i < kBQ * HD; i += blockDim.x) {
        int r = i / HD, d = i % HD;
        Qs[i] = r < nq ? q[(size_t)(sq.off + q0 + r) * ldq + (size_t)h * HD + d] : 0.0f;
    }
    const int p_first = sq.pos0 + q0, p_last = sq.pos0 + q0 + nq - 1;
    const int k_begin = window > 0 && p_first - window + 1 > 0 ? p_first - window + 1 : 0;
    const int k_end = p_last + 1;

    float m[kRPW], l[kRPW], o[kRPW][DPL];
#pragma unroll
    for (int rr = 0; rr < kRPW; rr++) {
        m[rr] = -INFINITY; l[rr] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; i++) o[rr][i] = 0.0f;
    }

    for (int k0 = k_begin; k0 < k_end; k0 += kBK) {
        __syncthreads();                              /* Q loaded / previous tile consumed */
        for (int i = threadIdx.x; i < kBK * HD; i += blockDim.x) {
            int cc = i / HD, d = i % HD, j = k0 + cc;
            float kv = 0.0f, vv = 0.0f;
            if (j < k_end) {
                size_t at = (size_t)j * sq.ldk + (size_t)g * HD + d;
                kv = sq.k[at]; vv = sq.v[at];
            }
            Ks[cc * ldks + d] = kv;
            Vs[cc * HD + d] = vv;
        }
        __syncthreads();

        float s[kRPW];
        rt_attn_f32_scores<kRPW>(s, Qs, Ks, ldks, HD, w, lane);
        const int j = k0 + lane;
#pragma unroll
        for (int rr = 0; rr < kRPW; rr++) {
            int r = w * kRPW + rr, p = sq.pos0 + q0 + r;
            bool ok = r < nq && j < k_end && j <= p && (window <= 0 || p - j < window);
            float sv = ok ? s[rr] * scale : -INFINITY;
            float mn = fmaxf(m[rr], rt_cuda_warp_max(sv));
            float pr = 0.0f, alpha = 1.0f;
            if (mn != -INFINITY) {                    /* else: nothing visible yet, keep zeros */
                pr = ok ? expf(sv - mn) : 0.0f;
                alpha = expf(m[rr] - mn);             /* m = -inf -> 0 (o and l are 0 anyway) */
            }
            l[rr] = l[rr] * alpha + rt_cuda_warp_sum(pr);
            m[rr] = mn;
            Ps[r * kBK + lane] = pr;
#pragma unroll
            for (int i = 0; i < DPL; i++) o[rr][i] *= alpha;
        }
        __syncwarp();
        for (int cc = 0; cc < kBK; cc++) {
            float vv[DPL];
#pragma unroll
            for (int i = 0; i < DPL; i++) {
                int d = lane + 32 * i;
                vv[i] = d < HD ? Vs[cc * HD + d] : 0.0f;
            }
#pragma unroll
            for (int rr = 0; rr < kRPW; rr++) {
                float pv = Ps[(w * kRPW + rr) * kBK + cc];
#pragma unroll
                for (int i = 0; i < DPL; i++) o[rr][i] = fmaf(pv, vv[i], o[rr][i]);
            }
        }
        __syncwarp();
    }

#pragma unroll
    for (int rr = 0; rr < kRPW; rr++) {
        int r = w * kRPW + rr;
        if (r >= nq) continue;
        size_t row = (size_t)sq.off + q0 + r;
        float inv = l[rr] > 0.0f ? 1.0f / l[rr] : 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            int d = lane + 32 * i;
            if (d < HD) z[row * ldz + (size_t)h * HD + d] = o[rr][i] * inv;
        }
        if (lane == 0) lse[row * ldlse + h] = l[rr] > 0.0f ? m[rr] + logf(l[rr]) : -INFINITY;
    }
}

template <int DPL>
static void launch_attn(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                        const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale) {
    static int optin_done = 48 * 1024;                /* per instantiation: the opt-in already granted */
    size_t smem = (size_t)(kBQ * HD + kBK * (HD + 1) + kBK * HD + kBQ * kBK) * sizeof(float);
    if ((int)smem > optin_done) {
        if ((int)smem > c->smem_optin) {
            char msg[128];
            snprintf(msg, sizeof msg, "needs %zu bytes of shared memory, the device allows %d", smem, c->smem_optin);
            rt_cuda_note(c, "attention", msg);
            return;
        }
        cudaError_t e = cudaFuncSetAttribute(attn_kernel<DPL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) { rt_cuda_note(c, "attention (cudaFuncSetAttribute)", cudaGetErrorString(e)); return; }
        optin_done = (int)smem;
    }
    dim3 grid((unsigned)((T_max + kBQ - 1) / kBQ), (unsigned)H, (unsigned)n_seqs);
    attn_kernel<DPL><<<grid, kWarps * 32, smem, c->stream>>>(z, ldz, lse, ldlse, q, ldq, seqs, H, KV, HD, window, scale);
    rt_cuda_after_launch(c, "attention");
}

void rt_cuda_k_attention(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                         const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale) {
    if (n_seqs <= 0 || T_max <= 0) return;
    if (n_seqs > 65535 || H > 65535) { rt_cuda_note(c, "attention", "more than 65535 sequences or heads in one launch"); return; }
    if (HD <= 32) launch_attn<1>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, HD, window, scale);
    else if (HD <= 64) launch_attn<2>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, HD, window, scale);
    else if (HD <= 128) launch_attn<4>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, HD, window, scale);
    else if (HD <= RT_CUDA_MAX_HD) launch_attn<8>(c, z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, T_max, H, KV, HD, window, scale);
    else rt_cuda_note(c, "attention", "head_dim above 256");
}

/* ------------------------------------------------------------------ hooked-pattern path */

__device__ __forceinline__ int first_key(int p, int window) { return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0; }

__global__ void mask_kernel(float *S, int T, int Tk, int pos0, int window) {
    size_t n = (size_t)T * Tk;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int r = (int)(i / (size_t)Tk), j = (int)(i % (size_t)Tk), p = pos0 + r;
        if (j < first_key(p, window) || j > p) S[i] = -INFINITY;
    }
}
void rt_cuda_k_mask_scores(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window) {
    size_t n = (size_t)T * Tk;
    if (!n) return;
    mask_kernel<<<rt_cuda_blocks(c, n, 256), 256, 0, c->stream>>>(S, T, Tk, pos0, window);
    rt_cuda_after_launch(c, "mask_scores");
}

/* One block (256 threads) per row: max, exp and sum, scale; forward.c's rules for -inf and 0. */
__global__ void softmax_rows_kernel(float *S, int Tk, int pos0, int window) {
    __shared__ float red[32];
    int r = blockIdx.x, p = pos0 + r, a = first_key(p, window), e = p + 1 < Tk ? p + 1 : Tk;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float *row = S + (size_t)r * Tk;
    float mx = -INFINITY;
    for (int j = a + threadIdx.x; j < e; j += blockDim.x) mx = fmaxf(mx, row[j]);
    mx = rt_cuda_warp_max(mx);
    if (lane == 0) red[w] = mx;
    __syncthreads();
    mx = rt_cuda_warp_max(lane < nw ? red[lane] : -INFINITY);
    __syncthreads();
    float sum = 0.0f;
    for (int j = a + threadIdx.x; j < e; j += blockDim.x) {
        float x = row[j] == -INFINITY ? 0.0f : expf(row[j] - mx);
        row[j] = x;
        sum += x;
    }
    sum = rt_cuda_warp_sum(sum);
    if (lane == 0) red[w] = sum;
    __syncthreads();
    sum = rt_cuda_warp_sum(lane < nw ? red[lane] : 0.0f);
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) row[j] = (j >= a && j < e) ? row[j] * inv : 0.0f;
}
void rt_cuda_k_softmax_rows(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window) {
    if (T <= 0 || Tk <= 0) return;
    softmax_rows_kernel<<<T, 256, 0, c->stream>>>(S, Tk, pos0, window);
    rt_cuda_after_launch(c, "softmax_rows");
}
