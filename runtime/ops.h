/* ops.h — dense building blocks shared by the CPU forward pass (forward.c) and the weight
 * analyses (analysis/), so both compute exactly the same arithmetic.
 *   rt_linear_apply  y (N, n_out) = x (N, n_in) · Wᵀ + b, whatever layout the checkpoint stored W in
 *   rt_norm_apply    LayerNorm (gpt2) or RMSNorm (llama family) of N rows, double accumulation
 *   rt_blas_threads_for  pick OpenBLAS's thread count for one (m, n, k) product (process-wide state)
 */
#ifndef HS_OPS_H
#define HS_OPS_H
#include "model.h"

void rt_linear_apply(const rt_linear *L, const float *x, int N, float *y);
void rt_norm_apply(const rt_config *c, const rt_norm *nm, const float *x, int N, float *y);
void rt_blas_threads_for(size_t m, size_t n, size_t k);
#endif
