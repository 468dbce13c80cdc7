/* rt_cuda_blas.cu — cuBLAS, loaded on first use with dlopen.
 *
 * Why: libcublas pulls in libcublasLt (~500 MB of code whose static constructors run at load), so
 * linking it made every headscope process — `--help`, a CPU trace, a capture on the CPU — start
 * 0.14 s slower and 220 MB larger. The runtime uses six cuBLAS entry points; they are resolved here
 * when the first CUDA context is created, and a machine without cuBLAS gets one error line there.
 *
 * Search order: the folder the Makefile found at build time (HS_CUBLAS_DIR, as an rpath would),
 * then the soname through the dynamic loader (LD_LIBRARY_PATH, ld.so.conf). The soname is the one
 * the headers were built against (HS_CUBLAS_SONAME, e.g. libcublas.so.13), so the ABI matches.
 */
#include "rt_cuda_internal.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#ifndef HS_CUBLAS_SONAME
#define HS_CUBLAS_SONAME "libcublas.so"
#endif
#ifndef HS_CUBLAS_DIR
#define HS_CUBLAS_DIR ""
#endif

rt_cuda_blas_api rt_cuda_blas;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static char g_err[400];

template <typename F> static bool sym(void *lib, const char *name, F *out) {
    *out = reinterpret_cast<F>(dlsym(lib, name));
    if (!*out) snprintf(g_err, sizeof g_err, "%s has no symbol %s", HS_CUBLAS_SONAME, name);
    return *out != nullptr;
}

static void load_once(void) {
    void *lib = NULL;
    char path[512];
    if (HS_CUBLAS_DIR[0]) {
        snprintf(path, sizeof path, "%s/%s", HS_CUBLAS_DIR, HS_CUBLAS_SONAME);
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib) lib = dlopen(HS_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) { snprintf(g_err, sizeof g_err, "%s", dlerror()); return; }
    rt_cuda_blas_api a;
    if (sym(lib, "cublasCreate_v2", &a.create) && sym(lib, "cublasDestroy_v2", &a.destroy) &&
        sym(lib, "cublasSetStream_v2", &a.set_stream) && sym(lib, "cublasSetMathMode", &a.set_math_mode) &&
        sym(lib, "cublasGemmEx", &a.gemm_ex) && sym(lib, "cublasGetStatusString", &a.status_string)) {
        rt_cuda_blas = a;
        rt_cuda_blas.loaded = true;
    } else {
        dlclose(lib);
    }
}

hs_status rt_cuda_blas_load(void) {
    pthread_once(&g_once, load_once);
    if (rt_cuda_blas.loaded) return HS_OK;
    hs_log_error("cuda", "cannot load cuBLAS (%s) — install the CUDA toolkit's cuBLAS %s or put its folder on LD_LIBRARY_PATH",
                 g_err, HS_CUBLAS_SONAME);
    return HS_EIO;
}
