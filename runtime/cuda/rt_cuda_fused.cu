/* rt_cuda_fused.cu — the MLP activation fused with the bf16 conversion of the down projection's
 * input, for the bf16 modes. CPU references: rt_cuda_ref_bias_gelu_bf16 / rt_cuda_ref_swiglu_bf16
 * (rt_cuda_ref.c, the unfused references composed); contracts: rt_cuda_ops.h.
 *
 * Why: the profile (docs/gpu.md) showed the element-wise passes over the (N, d_mlp) hidden tensor —
 * bias add, GELU, bf16 split — costing more than the GEMMs on either side of them for GPT-2
 * shapes. When no mlp hook needs the fp32 activations, one pass reads the GEMM output once and
 * writes only the bf16 pair (8 bytes per element instead of 24). The arithmetic is the unfused
 * kernels' own (rt_cuda_kernels.cu): the same float add, GELU evaluated in double, SiLU in float,
 * the same roundings — so fused and unfused give the same bits.
 */
#include "rt_cuda_internal.h"
#include <cuda_bf16.h>

namespace {
constexpr int kThreads = 256;

__device__ __forceinline__ void store_pair(uint16_t *hi, uint16_t *lo, size_t i, float x) {
    __nv_bfloat16 h = __float2bfloat16_rn(x);
    hi[i] = __bfloat16_as_ushort(h);
    if (lo) lo[i] = __bfloat16_as_ushort(__float2bfloat16_rn(__fsub_rn(x, __bfloat162float(h))));
}
}

__global__ void bias_gelu_bf16_kernel(const float *y, const float *b, int cols, size_t n, bool exact, uint16_t *hi,
                                      uint16_t *lo) {
    const double k = 0.7978845608028654;   /* sqrt(2/pi), as gelu_kernel */
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        double v = b ? __fadd_rn(y[i], b[i % (size_t)cols]) : y[i];
        float a = exact ? (float)(0.5 * v * (1.0 + erf(v / 1.4142135623730951)))
                        : (float)(0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v))));
        store_pair(hi, lo, i, a);
    }
}
void rt_cuda_k_bias_gelu_bf16(rt_cuda_ctx *c, const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi,
                              uint16_t *lo) {
    size_t n = (size_t)rows * cols;
    if (!n) return;
    bias_gelu_bf16_kernel<<<rt_cuda_blocks(c, n, kThreads), kThreads, 0, c->stream>>>(y, b, cols, n, exact, hi, lo);
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
