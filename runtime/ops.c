/* ops.c — the dense building blocks the CPU forward pass and the weight analyses share (see ops.h). */
#include "ops.h"
#include <cblas.h>
#include <math.h>

/* ------------------------------------------------------------------ BLAS threading */

/* OpenBLAS threads pay only for large products. After every multi-threaded call its workers spin
 * (sched_yield) for a while, stealing the cores from the single-threaded work between GEMMs
 * (softmax, norms, statistics, the store's writer thread). Measured on the 2-core CI-class machine
 * with tiny-llama (d=128) batches: 5.2 s with 2 threads vs 1.8 s with 1 under load. So each GEMM
 * below ~64M multiply-adds runs single-threaded; larger ones use every thread the process may use
 * (OPENBLAS_NUM_THREADS, or what the caller set before the first product). Process-wide state, as
 * OpenBLAS's own thread count is. */
enum { BLAS_PARALLEL_MACS = 1 << 26 };
static int g_blas_max = 1, g_blas_cur = -1;

void rt_blas_threads_for(size_t m, size_t n, size_t k) {
    if (g_blas_cur < 0) g_blas_max = openblas_get_num_threads();   /* once: later we change it ourselves */
    int want = m * n * k >= (size_t)BLAS_PARALLEL_MACS ? g_blas_max : 1;
    if (want != g_blas_cur) { openblas_set_num_threads(want); g_blas_cur = want; }
}

/* ------------------------------------------------------------------ small kernels */

/* y (N, n_out) = x (N, n_in) · Wᵀ + b, whichever layout the file stored W in. */
void rt_linear_apply(const rt_linear *L, const float *x, int N, float *y) {
    rt_blas_threads_for((size_t)N, (size_t)L->n_out, (size_t)L->n_in);
    if (L->in_major)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, L->n_out, L->n_in, 1.0f, x, L->n_in,
                    L->w, L->n_out, 0.0f, y, L->n_out);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, L->n_out, L->n_in, 1.0f, x, L->n_in,
                    L->w, L->n_in, 0.0f, y, L->n_out);
    if (L->b)
        for (int i = 0; i < N; i++) {
            float *row = y + (size_t)i * L->n_out;
            for (int j = 0; j < L->n_out; j++) row[j] += L->b[j];
        }
}

/* y (N, D) = norm(x) — LayerNorm (gpt2) or RMSNorm (llama family), eps from the config. */
void rt_norm_apply(const rt_config *c, const rt_norm *nm, const float *x, int N, float *y) {
    int D = c->d_model;
    for (int i = 0; i < N; i++) {
        const float *xr = x + (size_t)i * D;
        float *yr = y + (size_t)i * D;
        if (c->norm == RT_NORM_LAYER) {
            double mean = 0, var = 0;
            for (int j = 0; j < D; j++) mean += xr[j];
            mean /= D;
            for (int j = 0; j < D; j++) { double d = xr[j] - mean; var += d * d; }
            var /= D;
            double inv = 1.0 / sqrt(var + c->norm_eps);
            for (int j = 0; j < D; j++)
                yr[j] = (float)((xr[j] - mean) * inv) * nm->w[j] + (nm->b ? nm->b[j] : 0.0f);
        } else {
            double ss = 0;
            for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
            double inv = 1.0 / sqrt(ss / D + c->norm_eps);
            for (int j = 0; j < D; j++) yr[j] = nm->w[j] * (float)(xr[j] * inv);
        }
    }
}

