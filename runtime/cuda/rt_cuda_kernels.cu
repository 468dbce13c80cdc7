/* rt_cuda_kernels.cu — the element-wise and row kernels of the GPU forward: strided copy, row
 * gather (embeddings), residual/bias add, LayerNorm/RMSNorm, RoPE, GELU, SwiGLU, bf16 rounding.
 * CPU references: rt_cuda_ref.c (same names, rt_cuda_ref_*); contracts: rt_cuda_ops.h.
 *
 * Numerics follow forward.c so the fp32 mode tracks the CPU runtime: norm statistics in double,
 * GELU in double, SiLU in float. Where forward.c rounds a product before adding, the kernels use
 * __fmul_rn/__fadd_rn: nvcc would otherwise contract a*b+c into one FMA (one rounding instead of
 * two), a harmless but needless 1-ulp difference from the reference.
 * All loops are grid-stride with 64-bit indices (N·F exceeds 2^31 at B=8, T=4096, F=8192).
 * These kernels are memory-bound; each reads and writes every element once.
 */
#include "rt_cuda_internal.h"
#include <cuda_bf16.h>

#define GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                               i += (size_t)gridDim.x * blockDim.x)

static const int kThreads = 256;

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

/* ------------------------------------------------------------------ copies and adds */

__global__ void copy2d_kernel(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    GRID_STRIDE(i, n) {
        size_t r = i / (size_t)cols, j = i % (size_t)cols;
        dst[r * ldd + j] = src[r * lds + j];
    }
}
void rt_cuda_k_copy2d(rt_cuda_ctx *c, float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    if (!n) return;
    copy2d_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(dst, ldd, src, lds, rows, cols);
    rt_cuda_after_launch(c, "copy2d");
}

__global__ void gather_f32_kernel(float *dst, const float *table, const int *idx, int n, int D) {
    size_t total = (size_t)n * D;
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)D, j = i % (size_t)D;
        dst[i] = table[(size_t)idx[r] * D + j];
    }
}
__global__ void gather_bf16_kernel(float *dst, const uint16_t *table, const int *idx, int n, int D) {
    size_t total = (size_t)n * D;
    GRID_STRIDE(i, total) {
        size_t r = i / (size_t)D, j = i % (size_t)D;
        dst[i] = bf16_bits_to_f32(table[(size_t)idx[r] * D + j]);
    }
}
void rt_cuda_k_gather_rows(rt_cuda_ctx *c, float *dst, const void *table, rt_cuda_dtype dt, const int *idx, int n, int D) {
    size_t total = (size_t)n * D;
    if (!total) return;
    int nb = rt_cuda_blocks(c, total, kThreads);
    if (dt == RT_CUDA_F32) gather_f32_kernel<<<nb, kThreads, 0, c->stream>>>(dst, (const float *)table, idx, n, D);
    else gather_bf16_kernel<<<nb, kThreads, 0, c->stream>>>(dst, (const uint16_t *)table, idx, n, D);
    rt_cuda_after_launch(c, "gather_rows");
}

__global__ void add_kernel(float *x, const float *y, size_t n) {
    GRID_STRIDE(i, n) x[i] += y[i];
}
void rt_cuda_k_add(rt_cuda_ctx *c, float *x, const float *y, size_t n) {
    if (!n) return;
    add_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(x, y, n);
    rt_cuda_after_launch(c, "add");
}

__global__ void add_bias_kernel(float *y, const float *b, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    GRID_STRIDE(i, n) y[i] += b[i % (size_t)cols];
}
void rt_cuda_k_add_bias(rt_cuda_ctx *c, float *y, const float *b, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    if (!n) return;
    add_bias_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(y, b, rows, cols);
    rt_cuda_after_launch(c, "add_bias");
}

/* ------------------------------------------------------------------ norms */

/* One block per row; statistics in double as forward.c (rt_cuda_norm_row, shared with the fused
 * add_norm_bf16 of rt_cuda_fused.cu). */
__global__ void norm_kernel(float *y, const float *x, const float *w, const float *b, int D, bool rms, float eps) {
    __shared__ double red[32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float *yr = y + (size_t)blockIdx.x * D;
    rt_cuda_norm_row([&](int j) { return xr[j]; }, [&](int j, float v) { yr[j] = v; }, w, b, D, rms, eps, red);
}
void rt_cuda_k_norm(rt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int rows, int D, bool rms,
                    float eps) {
    if (rows <= 0) return;
    norm_kernel<<<rows, rt_cuda_norm_threads(D), 0, c->stream>>>(y, x, w, b, D, rms, eps);
    rt_cuda_after_launch(c, "norm");
}

/* ------------------------------------------------------------------ RoPE */

/* One thread per (row, head, pair). */
__global__ void rope_kernel(float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                            const float *sin_t, bool interleaved) {
    int half = HD / 2;
    size_t n = (size_t)rows * nh * half;
    GRID_STRIDE(idx, n) {
        int i = (int)(idx % (size_t)half);
        size_t rest = idx / (size_t)half;
        int h = (int)(rest % (size_t)nh);
        size_t t = rest / (size_t)nh;
        size_t tab = (size_t)pos[t] * half + i;
        float cs = cos_t[tab], sn = sin_t[tab];
        float *v = x + t * ld + (size_t)h * HD;
        int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
        float x0 = v[a], x1 = v[b];
        v[a] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
        v[b] = __fadd_rn(__fmul_rn(x1, cs), __fmul_rn(x0, sn));
    }
}
void rt_cuda_k_rope(rt_cuda_ctx *c, float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                    const float *sin_t, bool interleaved) {
    size_t n = (size_t)rows * nh * (HD / 2);
    if (!n) return;
    rope_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(x, ld, rows, nh, HD, pos, cos_t, sin_t,
                                                                             interleaved);
    rt_cuda_after_launch(c, "rope");
}

/* ------------------------------------------------------------------ MLP activations */

__global__ void gelu_kernel(float *x, size_t n, bool exact) {
    const double k = 0.7978845608028654;   /* sqrt(2/pi) */
    GRID_STRIDE(i, n) {
        double v = x[i];
        x[i] = exact ? (float)(0.5 * v * (1.0 + erf(v / 1.4142135623730951)))
                     : (float)(0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v))));
    }
}
void rt_cuda_k_gelu(rt_cuda_ctx *c, float *x, size_t n, bool exact) {
    if (!n) return;
    gelu_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(x, n, exact);
    rt_cuda_after_launch(c, "gelu");
}

__global__ void swiglu_kernel(float *hid, const float *gate, size_t n) {
    GRID_STRIDE(i, n) {
        float g = gate[i];
        hid[i] = __fmul_rn(hid[i], __fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
    }
}
void rt_cuda_k_swiglu(rt_cuda_ctx *c, float *hid, const float *gate, size_t n) {
    if (!n) return;
    swiglu_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(hid, gate, n);
    rt_cuda_after_launch(c, "swiglu");
}

__global__ void to_bf16_kernel(uint16_t *dst, const float *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = __bfloat16_as_ushort(__float2bfloat16_rn(src[i]));
}
void rt_cuda_k_to_bf16(rt_cuda_ctx *c, uint16_t *dst, const float *src, size_t n) {
    if (!n) return;
    to_bf16_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(dst, src, n);
    rt_cuda_after_launch(c, "to_bf16");
}

__global__ void to_bf16_split_kernel(uint16_t *hi, uint16_t *lo, const float *src, size_t n) {
    GRID_STRIDE(i, n) {
        float x = src[i];
        __nv_bfloat16 h = __float2bfloat16_rn(x);
        hi[i] = __bfloat16_as_ushort(h);
        lo[i] = __bfloat16_as_ushort(__float2bfloat16_rn(__fsub_rn(x, __bfloat162float(h))));
    }
}
void rt_cuda_k_to_bf16_split(rt_cuda_ctx *c, uint16_t *hi, uint16_t *lo, const float *src, size_t n) {
    if (!n) return;
    to_bf16_split_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(hi, lo, src, n);
    rt_cuda_after_launch(c, "to_bf16_split");
}
