/* rt_cuda_mma.h — the bf16 tensor-core building blocks shared by the bf16 attention kernel
 * (rt_cuda_attn_tc.cu) and the bf16 statistics kernel (probe/cuda/probe_cuda_stats_kernel.cu).
 * C++/CUDA only.
 *
 * mma.sync.m16n8k16 (bf16 in, fp32 accumulate), per warp, lane = 4·group + quad:
 *   A (16×16, row-major) 4 regs of bf16x2: a0 = A[group][2q..2q+1],     a1 = A[group+8][2q..2q+1],
 *                                          a2 = A[group][2q+8..2q+9],   a3 = A[group+8][2q+8..2q+9]
 *   B (16×8, k×n)        2 regs of bf16x2: b0 = B[2q..2q+1][group],     b1 = B[2q+8..2q+9][group]
 *   C (16×8 fp32)        4 floats:         c0,c1 = C[group][2q..2q+1],  c2,c3 = C[group+8][2q..2q+1]
 * (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"). A row of C is spread
 * over the 4 lanes of a group, so row reductions are two xor-shuffles (masks 1 and 2).
 *
 * Scores tile S = Q·Kᵀ: A = Q rows (row-major), B[k=d][n=key] = K[key][d], so with K stored
 * row-major in shared memory b0 is the 32-bit word K[key=group][d=2q..2q+1].
 * Output tile O += P·V: A = P, whose fragments are exactly the C fragments of two adjacent score
 * tiles converted to bf16 (no shared memory round trip); B[k=key][n=d] = V[key][d], read with
 * ldmatrix.trans from V stored row-major (rt_mma_ldmatrix_v).
 */
#ifndef HS_RT_CUDA_MMA_H
#define HS_RT_CUDA_MMA_H
#include <cuda_bf16.h>
#include <stdint.h>

/* Two floats -> one bf16x2 word (round to nearest even); lo in the low half (the lower column). */
__device__ __forceinline__ uint32_t rt_mma_pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* d (16×8 fp32) += a (16×16 bf16) · b (16×8 bf16). */
__device__ __forceinline__ void rt_mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* A fragments of a warp's 16 query rows (row0.. of q, fp32 in global memory, ldq floats per row,
 * columns col0..col0+HD) for every k-step of HD: qa[HD/16][4]. Rows at or beyond nrows read 0. */
template <int HD>
__device__ __forceinline__ void rt_mma_load_q(uint32_t qa[HD / 16][4], const float *q, size_t ldq, int row0, int nrows,
                                              int col0, int group, int quad) {
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++)
#pragma unroll
        for (int part = 0; part < 4; part++) {
            int r = group + ((part & 1) ? 8 : 0), c = kk * 16 + 2 * quad + ((part & 2) ? 8 : 0);
            float x0 = 0.0f, x1 = 0.0f;
            if (r < nrows) {
                const float *p = q + (size_t)(row0 + r) * ldq + col0 + c;
                x0 = p[0]; x1 = p[1];
            }
            qa[kk][part] = rt_mma_pack_bf16(x0, x1);
        }
}

/* 2^x on the special-function unit (ex2.approx.ftz: ~2 ulp; 2^−inf = +0, so a masked score needs
 * no test). The bf16 kernels' probabilities are rounded to bf16 (8 bits) before use, so this is
 * far inside their error budget, and it is one instruction where exp2f is several. */
__device__ __forceinline__ float rt_mma_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* B fragments of S = Q·Kᵀ for the 8 keys n·8.. of a K tile stored row-major Ks[key][d] (row stride
 * ld_s) and the k-steps kk, kk+1 (columns kk·16 .. kk·16+31): ldmatrix (not transposed) hands lane
 * 4g+q the word {K[g][2q], K[g][2q+1]} of each 8×8 matrix, which is the B layout (B[d][key] =
 * K[key][d]). Matrix i covers columns kk·16 + 8i; lane l addresses row l%8 of matrix l/8.
 * b[0..1] feed step kk, b[2..3] step kk+1. One instruction instead of four 32-bit loads. */
__device__ __forceinline__ void rt_mma_ldmatrix_k4(uint32_t b[4], const __nv_bfloat16 *Ks, int ld_s, int n, int kk, int lane) {
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(Ks + (n * 8 + (lane & 7)) * ld_s + kk * 16 + (lane >> 3) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                 : "r"(addr));
}
/* The same for one k-step (HD = 16, or the last step of an odd count): matrices 0 and 1; lanes
 * 16–31 give addresses that ldmatrix.x2 ignores (kept in bounds anyway). */
__device__ __forceinline__ void rt_mma_ldmatrix_k2(uint32_t b[2], const __nv_bfloat16 *Ks, int ld_s, int n, int kk, int lane) {
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(Ks + (n * 8 + (lane & 7)) * ld_s + kk * 16 + ((lane >> 3) & 1) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(b[0]), "=r"(b[1]) : "r"(addr));
}

/* Scores of a warp's 16 rows against 64 keys of a tile: s[n][4] for key groups n = 0..7 (keys
 * 8n..8n+7), K tile in shared memory as bf16 rows of ldk_s elements. */
template <int HD>
__device__ __forceinline__ void rt_mma_scores(float s[8][4], const uint32_t qa[HD / 16][4], const __nv_bfloat16 *Ks,
                                              int ldk_s, int lane) {
#pragma unroll
    for (int n = 0; n < 8; n++) {
        s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk + 1 < HD / 16; kk += 2) {
            uint32_t b[4];
            rt_mma_ldmatrix_k4(b, Ks, ldk_s, n, kk, lane);
            rt_mma_bf16_16816(s[n], qa[kk], b);
            rt_mma_bf16_16816(s[n], qa[kk + 1], b + 2);
        }
        if ((HD / 16) & 1) {
            uint32_t b[2];
            rt_mma_ldmatrix_k2(b, Ks, ldk_s, n, HD / 16 - 1, lane);
            rt_mma_bf16_16816(s[n], qa[HD / 16 - 1], b);
        }
    }
}

/* The same for kMT m-tiles of 16 rows (a warp's 16·kMT rows, qa[t] for tile t): every K fragment
 * is read from shared memory once and used by all kMT tiles. */
template <int HD, int kMT>
__device__ __forceinline__ void rt_mma_scores_mt(float s[kMT][8][4], const uint32_t qa[kMT][HD / 16][4],
                                                 const __nv_bfloat16 *Ks, int ldk_s, int lane) {
#pragma unroll
    for (int n = 0; n < 8; n++) {
#pragma unroll
        for (int t = 0; t < kMT; t++) s[t][n][0] = s[t][n][1] = s[t][n][2] = s[t][n][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk + 1 < HD / 16; kk += 2) {
            uint32_t b[4];
            rt_mma_ldmatrix_k4(b, Ks, ldk_s, n, kk, lane);
#pragma unroll
            for (int t = 0; t < kMT; t++) {
                rt_mma_bf16_16816(s[t][n], qa[t][kk], b);
                rt_mma_bf16_16816(s[t][n], qa[t][kk + 1], b + 2);
            }
        }
        if ((HD / 16) & 1) {
            uint32_t b[2];
            rt_mma_ldmatrix_k2(b, Ks, ldk_s, n, HD / 16 - 1, lane);
#pragma unroll
            for (int t = 0; t < kMT; t++) rt_mma_bf16_16816(s[t][n], qa[t][HD / 16 - 1], b);
        }
    }
}

/* Load keys k0..k0+63 of a bf16 (?, ld) matrix (columns col0..col0+HD) into shared memory rows of
 * ld_s elements, 16 bytes per load (ld, col0 and the base must keep rows 16-byte aligned: the
 * orchestration packs the bf16 copies densely with KV·HD a multiple of 8). Keys at or beyond
 * k_end are zero. All threads of the block take part. */
template <int HD>
__device__ __forceinline__ void rt_mma_load_tile16(__nv_bfloat16 *dst, int ld_s, const uint16_t *src, size_t ld, int col0,
                                                   int k0, int k_end) {
    constexpr int kChunks = HD / 8;                   /* 16-byte chunks per row */
    for (int i = threadIdx.x; i < 64 * kChunks; i += blockDim.x) {
        int key = i / kChunks, c = (i % kChunks) * 8, j = k0 + key;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (j < k_end) v = *reinterpret_cast<const uint4 *>(src + (size_t)j * ld + col0 + c);
        *reinterpret_cast<uint4 *>(&dst[key * ld_s + c]) = v;
    }
}

/* The same tile load, asynchronous (cp.async, 16 bytes per copy, bypassing L1; keys at or beyond
 * k_end are zero-filled by a source size of 0). The caller commits the group and waits for it
 * (rt_mma_async_commit / rt_mma_async_wait) before a __syncthreads that publishes the tile. Lets
 * the next tile's load run while this one's products are computed (double buffering). */
template <int HD>
__device__ __forceinline__ void rt_mma_load_tile16_async(__nv_bfloat16 *dst, int ld_s, const uint16_t *src, size_t ld,
                                                         int col0, int k0, int k_end) {
    constexpr int kChunks = HD / 8;
    for (int i = threadIdx.x; i < 64 * kChunks; i += blockDim.x) {
        int key = i / kChunks, c = (i % kChunks) * 8, j = k0 + key;
        bool ok = j < k_end;
        const uint16_t *g = src + (size_t)(ok ? j : 0) * ld + col0 + c;   /* in bounds even when not read */
        uint32_t s = (uint32_t)__cvta_generic_to_shared(&dst[key * ld_s + c]);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(g), "r"(ok ? 16 : 0));
    }
}
__device__ __forceinline__ void rt_mma_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
/* Wait until at most N committed groups are still in flight. */
template <int N>
__device__ __forceinline__ void rt_mma_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* B fragments of P·V for the 16 keys of step kk and the two 8-column tiles n, n+1 of V (stored
 * row-major Vs[key][d] in shared memory, row stride ld_s): ldmatrix.x4.trans hands lane 4g+q the
 * words {V[2q][g], V[2q+1][g]} of each 8×8 matrix it addresses, which is the m16n8k16 B layout.
 * Matrices: 0 = keys 0–7 / cols n, 1 = keys 8–15 / cols n, 2 = keys 0–7 / cols n+1, 3 = keys 8–15 /
 * cols n+1; lane l addresses row l%8 of matrix l/8. b[0..1] feed tile n, b[2..3] tile n+1. */
__device__ __forceinline__ void rt_mma_ldmatrix_v(uint32_t b[4], const __nv_bfloat16 *Vs, int ld_s, int kk, int n, int lane) {
    int mi = lane >> 3, key = kk * 16 + (mi & 1) * 8 + (lane & 7), col = (n + (mi >> 1)) * 8;
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(Vs + key * ld_s + col);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                 : "r"(addr));
}
#endif
