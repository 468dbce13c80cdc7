/* rt_cuda_fused.cu — the bf16 modes' fused element-wise passes: the MLP activation with the bf16
 * conversion of the down projection's input (bias_gelu_bf16, swiglu_bf16), the residual step
 * "x += y + bias, norm, bf16 conversion of the normalised rows" (add_norm_bf16), and gpt2's QKV
 * split with its bias and the bf16 K/V copies of the tensor-core attention (qkv_split).
 * CPU references: rt_cuda_ref_* (rt_cuda_ref.c); contracts: rt_cuda_ops.h.
 *
 * Why: the profile (docs/gpu.md) showed the element-wise kernels between the GEMMs — bias adds,
 * copies, residual adds, norms, bf16 conversions, each reading and writing fp32 tensors — costing
 * about as much as the GEMMs for GPT-2 shapes. When no hook needs an intermediate tensor, one pass
 * reads each input once and writes only what a later step reads.
 * Numerics: add_norm_bf16, qkv_split and swiglu_bf16 are the unfused kernels' own arithmetic (the
 * same float adds, the norm's statistics through rt_cuda_norm_row, the same roundings): the same
 * bits. bias_gelu_bf16 evaluates GELU in float (the unfused gelu kernel uses double, which made
 * this pass compute-bound); its result is rounded to bf16 (16 bits as hi + lo), so float is ample.
 * Layout: the element-wise kernels run a 2-D grid (blocks over column chunks × rows) with no 64-bit
 * division per element, and move 16-byte vectors where the shapes and pointers allow.
 */
#include "rt_cuda_internal.h"
#include <cuda_bf16.h>
#include <stdint.h>

namespace {
constexpr int kThreads = 256;

__device__ __forceinline__ uint16_t bf16_bits(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

/* hi = bf16(x), lo = bf16(x - hi): to_bf16_split's arithmetic (x - hi is exact in fp32). */
__device__ __forceinline__ void split_pair(float x, uint16_t &h, uint16_t &l) {
    __nv_bfloat16 hb = __float2bfloat16_rn(x);
    h = __bfloat16_as_ushort(hb);
    l = bf16_bits(__fsub_rn(x, __bfloat162float(hb)));
}

__device__ __forceinline__ void store_pair(uint16_t *hi, uint16_t *lo, size_t i, float x) {
    uint16_t h, l;
    split_pair(x, h, l);
    hi[i] = h;
    if (lo) lo[i] = l;
}

/* Four bf16 values (element 0 at the lowest address) as one 8-byte store. */
__device__ __forceinline__ uint2 pack4(uint16_t a, uint16_t b, uint16_t c, uint16_t d) {
    return make_uint2((uint32_t)a | ((uint32_t)b << 16), (uint32_t)c | ((uint32_t)d << 16));
}

__device__ __forceinline__ float4 add4(float4 a, float4 b) {
    return make_float4(__fadd_rn(a.x, b.x), __fadd_rn(a.y, b.y), __fadd_rn(a.z, b.z), __fadd_rn(a.w, b.w));
}

bool aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* A 2-D grid for `rows` rows of `units` work items each (threads per block `threads`): x over
 * column chunks, y over rows, both grid-stride; at most rt_cuda_blocks' cap of blocks in all.
 * Why 2-D: a decode step has few rows of many columns, a prefill many rows; both fill the GPU. */
dim3 grid2d(const rt_cuda_ctx *c, int rows, int units, int threads) {
    size_t cap = (size_t)(c->n_sm > 0 ? c->n_sm : 132) * 16;
    size_t gx = ((size_t)units + threads - 1) / threads;
    if (gx > cap) gx = cap;
    if (gx < 1) gx = 1;
    size_t gy = cap / gx;
    if (gy > (size_t)rows) gy = (size_t)rows;
    if (gy > 65535) gy = 65535;
    if (gy < 1) gy = 1;
    return dim3((unsigned)gx, (unsigned)gy);
}
}

#define ROWS_COLS(r, u, rows, units)                                                              \
    for (int r = blockIdx.y; r < (rows); r += gridDim.y)                                          \
        for (int u = blockIdx.x * blockDim.x + threadIdx.x; u < (units); u += gridDim.x * blockDim.x)

/* ------------------------------------------------------------------ MLP activations */

/* GELU in float (rt_cuda_gelu_f32's operations, rt_cuda_ref.c; contract in rt_cuda_ops.h). The
 * tanh form is written v·sigmoid(2u) and the erf form 0.5·v·erfc(−v/√2): the same functions as
 * 0.5·v·(1 + tanh u) and 0.5·v·(1 + erf(v/√2)) without their cancellation for negative v, which in
 * float would lose all digits of the small negative tail. expf and erfcf (not __expf) keep it
 * within a few ulp; __f*_rn stop nvcc from contracting into FMAs the reference does not do. */
__device__ __forceinline__ float gelu_f(float v, bool exact) {
    if (exact) return __fmul_rn(__fmul_rn(0.5f, v), erfcf(__fmul_rn(v, -0.70710678f)));
    float u = __fmul_rn(0.7978845608f, __fadd_rn(v, __fmul_rn(0.044715f, __fmul_rn(__fmul_rn(v, v), v))));
    return __fdiv_rn(v, __fadd_rn(1.0f, expf(__fmul_rn(-2.0f, u))));
}

/* kVec: cols % 4 == 0, y and b 16-byte aligned, hi and lo 8-byte aligned; a unit is 4 columns. */
template <bool kVec>
__global__ void bias_gelu_bf16_kernel(const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi,
                                      uint16_t *lo) {
    int units = kVec ? cols / 4 : cols;
    ROWS_COLS(r, u, rows, units) {
        size_t row = (size_t)r * cols;
        if (kVec) {
            float4 v = reinterpret_cast<const float4 *>(y + row)[u];
            if (b) v = add4(v, reinterpret_cast<const float4 *>(b)[u]);
            uint16_t h0, h1, h2, h3, l0, l1, l2, l3;
            split_pair(gelu_f(v.x, exact), h0, l0);
            split_pair(gelu_f(v.y, exact), h1, l1);
            split_pair(gelu_f(v.z, exact), h2, l2);
            split_pair(gelu_f(v.w, exact), h3, l3);
            reinterpret_cast<uint2 *>(hi + row)[u] = pack4(h0, h1, h2, h3);
            if (lo) reinterpret_cast<uint2 *>(lo + row)[u] = pack4(l0, l1, l2, l3);
        } else {
            float v = b ? __fadd_rn(y[row + u], b[u]) : y[row + u];
            store_pair(hi, lo, row + u, gelu_f(v, exact));
        }
    }
}
void rt_cuda_k_bias_gelu_bf16(rt_cuda_ctx *c, const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi,
                              uint16_t *lo) {
    if (rows <= 0 || cols <= 0) return;
    bool vec = cols % 4 == 0 && aligned(y, 16) && (!b || aligned(b, 16)) && aligned(hi, 8) && (!lo || aligned(lo, 8));
    if (vec)
        bias_gelu_bf16_kernel<true><<<grid2d(c, rows, cols / 4, kThreads), kThreads, 0, c->stream>>>(y, b, rows, cols, exact, hi, lo);
    else
        bias_gelu_bf16_kernel<false><<<grid2d(c, rows, cols, kThreads), kThreads, 0, c->stream>>>(y, b, rows, cols, exact, hi, lo);
    rt_cuda_after_launch(c, "bias_gelu_bf16");
}

__global__ void swiglu_bf16_kernel(const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        store_pair(hi, lo, i, __fmul_rn(hid[i], __fdiv_rn(g, __fadd_rn(1.0f, expf(-g)))));
    }
}
void rt_cuda_k_swiglu_bf16(rt_cuda_ctx *c, const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo) {
    if (!n) return;
    swiglu_bf16_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(hid, gate, n, hi, lo);
    rt_cuda_after_launch(c, "swiglu_bf16");
}

/* ------------------------------------------------------------------ residual add + norm + bf16 */

/* One block per row, rt_cuda_norm_threads(D) threads (the norm kernel's: same reduction order).
 * kRow: the updated row is kept in dynamic shared memory (D floats), where the norm's three passes
 * read it (no round trip to L2 for what this block just wrote); otherwise (y == NULL: x is only read, as by norm;
 * or a row too long for 48 KiB, D > 12224) they read x from global memory — each thread reads back
 * only the elements it wrote itself, so no synchronisation is needed either way. */
template <bool kRow>
__global__ void add_norm_bf16_kernel(float *x, const float *y, const float *b, float *xn, const float *w, const float *nb,
                                     int D, bool rms, float eps, uint16_t *hi, uint16_t *lo) {
    __shared__ double red[32];
    extern __shared__ float row[];
    size_t base = (size_t)blockIdx.x * D;
    float *xr = x + base;
    if (y) {
        const float *yr = y + base;
        for (int j = threadIdx.x; j < D; j += blockDim.x) {
            float v = __fadd_rn(xr[j], b ? __fadd_rn(yr[j], b[j]) : yr[j]);   /* add_bias, then add */
            xr[j] = v;
            if (kRow) row[j] = v;
        }
    }
    float *xnr = xn ? xn + base : NULL;
    uint16_t *hr = hi ? hi + base : NULL, *lr = lo ? lo + base : NULL;
    rt_cuda_norm_row([&](int j) { return kRow ? row[j] : xr[j]; },
                     [&](int j, float v) {
                         if (xnr) xnr[j] = v;
                         if (hr) {
                             uint16_t h, l;
                             split_pair(v, h, l);
                             hr[j] = h;
                             if (lr) lr[j] = l;
                         }
                     },
                     w, nb, D, rms, eps, red);
}
void rt_cuda_k_add_norm_bf16(rt_cuda_ctx *c, float *x, const float *y, const float *b, float *xn, const float *w,
                             const float *nb, int rows, int D, bool rms, float eps, uint16_t *hi, uint16_t *lo) {
    if (rows <= 0 || D <= 0) return;
    int t = rt_cuda_norm_threads(D);
    size_t smem = (size_t)D * sizeof(float);
    /* 48 KiB per block (static red[] included) is what a launch gets without an opt-in */
    if (y && smem + 32 * sizeof(double) <= 48 * 1024)
        add_norm_bf16_kernel<true><<<rows, t, smem, c->stream>>>(x, y, b, xn, w, nb, D, rms, eps, hi, lo);
    else
        add_norm_bf16_kernel<false><<<rows, t, 0, c->stream>>>(x, y, b, xn, w, nb, D, rms, eps, hi, lo);
    rt_cuda_after_launch(c, "add_norm_bf16");
}

/* ------------------------------------------------------------------ QKV split */

/* kVec: QD and KD multiples of 4, every fp32 pointer 16-byte aligned, k16/v16 8-byte aligned; a
 * unit is 4 columns, which then never straddle the q | k | v boundaries. */
template <bool kVec>
__global__ void qkv_split_kernel(const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k, float *v,
                                 uint16_t *k16, uint16_t *v16) {
    int W = QD + 2 * KD, units = kVec ? W / 4 : W;
    ROWS_COLS(r, u, N, units) {
        int col = kVec ? 4 * u : u;
        float *dst;
        uint16_t *d16 = NULL;
        size_t at;
        if (col < QD) { dst = q; at = (size_t)r * QD + col; }
        else if (col < QD + KD) { dst = k; d16 = k16; at = (size_t)r * KD + (col - QD); }
        else { dst = v; d16 = v16; at = (size_t)r * KD + (col - QD - KD); }
        const float *src = qkv + (size_t)r * W + col;
        if (kVec) {
            float4 a = *reinterpret_cast<const float4 *>(src);
            if (bias) a = add4(a, *reinterpret_cast<const float4 *>(bias + col));
            *reinterpret_cast<float4 *>(dst + at) = a;
            if (d16) *reinterpret_cast<uint2 *>(d16 + at) = pack4(bf16_bits(a.x), bf16_bits(a.y), bf16_bits(a.z), bf16_bits(a.w));
        } else {
            float a = bias ? __fadd_rn(*src, bias[col]) : *src;
            dst[at] = a;
            if (d16) d16[at] = bf16_bits(a);
        }
    }
}
void rt_cuda_k_qkv_split(rt_cuda_ctx *c, const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k,
                         float *v, uint16_t *k16, uint16_t *v16) {
    int W = QD + 2 * KD;
    if (N <= 0 || W <= 0) return;
    if (!k16 || !v16) k16 = v16 = NULL;
    bool vec = QD % 4 == 0 && KD % 4 == 0 && aligned(qkv, 16) && (!bias || aligned(bias, 16)) && aligned(q, 16) &&
               aligned(k, 16) && aligned(v, 16) && (!k16 || (aligned(k16, 8) && aligned(v16, 8)));
    if (vec)
        qkv_split_kernel<true><<<grid2d(c, N, W / 4, kThreads), kThreads, 0, c->stream>>>(qkv, bias, N, QD, KD, q, k, v, k16, v16);
    else
        qkv_split_kernel<false><<<grid2d(c, N, W, kThreads), kThreads, 0, c->stream>>>(qkv, bias, N, QD, KD, q, k, v, k16, v16);
    rt_cuda_after_launch(c, "qkv_split");
}
