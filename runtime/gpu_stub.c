/* gpu_stub.c — the device half of the GPU runtime for builds without nvcc.
 *
 * The GPU orchestration (runtime/cuda/rt_cuda_forward.c) and the CPU references are plain C and
 * always built; the CUDA kernels exist only when the Makefile found nvcc (HS_HAVE_CUDA). Here,
 * without them, the device table is absent and every request for a device gets the one-line
 * error of gpu.h, so `--device cuda` fails cleanly (exit 2) and GPU tests skip.
 */
#include "cuda/rt_cuda_ops.h"

#ifndef HS_HAVE_CUDA
const rt_cuda_ops *rt_cuda_ops_device(void) { return NULL; }
const rt_cuda_ops *rt_cuda_ops_profiled(void) { return NULL; }
void rt_cuda_profile_reset(void) {}
void rt_cuda_profile_report(FILE *f, const char *title) { (void)f; (void)title; }

hs_status rt_cuda_device_probe(int device, rt_gpu_device_info *info) {
    (void)device; (void)info;
    hs_log_error("cuda", "no CUDA device found (this build has no CUDA support: nvcc or the CUDA libraries were missing when it was compiled) — "
                 "rebuild on a machine with the CUDA toolkit, run on a GPU machine, or use --device cpu");
    return HS_EUNSUPPORTED;
}
#else
typedef int rt_gpu_stub_unused;   /* ISO C wants a non-empty translation unit */
#endif
