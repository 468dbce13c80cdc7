/* rt_cuda_device.cu — the CUDA ops table: device probe, context (stream + cuBLAS handle), memory,
 * the GEMM through cuBLAS, and the table that rt_cuda_forward.c drives (contracts in rt_cuda_ops.h).
 *
 * GEMM numerics:
 *   fp32 operands: cublasGemmEx with CUBLAS_COMPUTE_32F; in the fp32 mode the handle is in
 *     CUBLAS_PEDANTIC_MATH, so no TF32 and no reduced-precision shortcuts anywhere (exactness mode).
 *     In the bf16 mode the handle is in CUBLAS_DEFAULT_MATH, which with COMPUTE_32F also never uses
 *     TF32 (that needs CUBLAS_TF32_TENSOR_OP_MATH or COMPUTE_32F_FAST_TF32); the fp32 GEMMs of the
 *     hooked-pattern attention path stay fp32.
 *   bf16 operands: A and B CUDA_R_16BF, C CUDA_R_32F, CUBLAS_COMPUTE_32F: tensor cores, fp32 accumulation.
 * Row-major calls map onto column-major cuBLAS by computing Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap
 * places, the transpose flags stay with their operand, and M/N swap.
 */
#include "rt_cuda_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ bookkeeping */

void rt_cuda_note(rt_cuda_ctx *c, const char *what, const char *err) {
    if (c->err[0]) return;
    snprintf(c->err, sizeof c->err, "%s: %s", what, err);
}

void rt_cuda_after_launch(rt_cuda_ctx *c, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) { rt_cuda_note(c, what, cudaGetErrorString(e)); return; }
    if (c->sync_each) {
        e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) rt_cuda_note(c, what, cudaGetErrorString(e));
    }
}

int rt_cuda_blocks(const rt_cuda_ctx *c, size_t n, int threads) {
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)(c->n_sm > 0 ? c->n_sm : 132) * 16;   /* grid-stride loops do the rest */
    if (b > cap) b = cap;
    return b < 1 ? 1 : (int)b;
}

/* ------------------------------------------------------------------ probe */

extern "C" hs_status rt_cuda_device_probe(int device, rt_gpu_device_info *info) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        char why[200];
        if (e != cudaSuccess) snprintf(why, sizeof why, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
        else snprintf(why, sizeof why, "0 devices");
        cudaGetLastError();
        hs_log_error("cuda", "no CUDA device found (cudaGetDeviceCount: %s) — run on a GPU machine or use --device cpu", why);
        return HS_EUNSUPPORTED;
    }
    if (device < 0 || device >= n) {
        hs_log_error("cuda", "device %d does not exist (%d CUDA device%s found) — use --device cuda:0%s", device, n,
                     n == 1 ? "" : "s", n > 1 ? " .. cuda:N-1" : "");
        return HS_EUNSUPPORTED;
    }
    cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) {
        hs_log_error("cuda", "cannot read the properties of device %d (%s) — check the driver with nvidia-smi", device,
                     cudaGetErrorString(e));
        return HS_EUNSUPPORTED;
    }
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%.127s", p.name);
    info->device = device;
    info->cc_major = p.major; info->cc_minor = p.minor;
    info->n_sm = p.multiProcessorCount;
    if (p.major < 9) {
        hs_log_error("cuda", "%s (device %d) has compute capability %d.%d but this build carries code for 9.0+ only "
                     "(Hopper: -gencode arch=compute_90) — rebuild with your GPU's -gencode or use --device cpu",
                     p.name, device, p.major, p.minor);
        return HS_EUNSUPPORTED;
    }
    if (cudaSetDevice(device) == cudaSuccess) cudaMemGetInfo(&info->mem_free, &info->mem_total);
    cudaGetLastError();
    return HS_OK;
}

/* ------------------------------------------------------------------ context */

static hs_status d_ctx_init(int device, bool pedantic_f32, rt_cuda_ctx **out) {
    *out = NULL;
    rt_cuda_ctx *c = (rt_cuda_ctx *)calloc(1, sizeof *c);
    HS_ASSERT(c != NULL);
    c->device = device;
    c->pedantic = pedantic_f32;
    const char *sy = getenv("HS_CUDA_SYNC");
    c->sync_each = sy && *sy && strcmp(sy, "0") != 0;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&c->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&c->n_sm, cudaDevAttrMultiProcessorCount, device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        if (e == cudaErrorMemoryAllocation) {
            size_t fr = 0, tot = 0;
            cudaGetLastError();
            if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError();
            hs_log_error("cuda", "out of GPU memory setting up device %d (%.1f of %.1f MiB free) — free the GPU or use --device cpu",
                         device, fr / 1048576.0, tot / 1048576.0);
        } else {
            hs_log_error("cuda", "cannot set up device %d (%s) — check the GPU with nvidia-smi", device, cudaGetErrorString(e));
        }
        free(c);
        return HS_EIO;
    }
    if (rt_cuda_blas_load() != HS_OK) {
        cudaStreamDestroy(c->stream);
        free(c);
        return HS_EIO;
    }
    cublasStatus_t s = rt_cuda_blas.create(&c->blas);
    if (s == CUBLAS_STATUS_SUCCESS) s = rt_cuda_blas.set_stream(c->blas, c->stream);
    if (s == CUBLAS_STATUS_SUCCESS) s = rt_cuda_blas.set_math_mode(c->blas, pedantic_f32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH);
    if (s == CUBLAS_STATUS_ALLOC_FAILED) {
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) cudaGetLastError();
        hs_log_error("cuda", "out of GPU memory starting cuBLAS on device %d (%.1f of %.1f MiB free) — free the GPU or use --device cpu",
                     device, fr / 1048576.0, tot / 1048576.0);
    } else if (s != CUBLAS_STATUS_SUCCESS) {
        hs_log_error("cuda", "cuBLAS could not start on device %d (%s) — check that libcublas matches the CUDA runtime",
                     device, rt_cuda_blas.status_string(s));
    }
    if (s != CUBLAS_STATUS_SUCCESS) {
        if (c->blas) rt_cuda_blas.destroy(c->blas);
        cudaStreamDestroy(c->stream);
        free(c);
        return HS_EIO;
    }
    *out = c;
    return HS_OK;
}

static void d_ctx_free(rt_cuda_ctx *c) {
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    if (c->copy_ready) {
        cudaStreamSynchronize(c->cstream);
        cudaStreamDestroy(c->cstream);
        for (int i = 0; i < RT_CUDA_COPY_SLOTS; i++) if (c->dstage[i]) cudaFree(c->dstage[i]);
        cudaEventDestroy(c->ev_ready);
        for (int i = 0; i < RT_CUDA_COPY_SLOTS; i++) cudaEventDestroy(c->ev_done[i]);
    }
    rt_cuda_blas.destroy(c->blas);
    cudaStreamDestroy(c->stream);
    cudaGetLastError();
    free(c);
}

static hs_status d_check(rt_cuda_ctx *c, const char *where) {
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) rt_cuda_note(c, "stream", cudaGetErrorString(e));
    e = cudaGetLastError();
    if (e != cudaSuccess) rt_cuda_note(c, "CUDA", cudaGetErrorString(e));
    if (!c->err[0]) return HS_OK;
    hs_log_error("cuda", "%s (during %s) — %s", c->err, where,
                 c->sync_each ? "see the kernel named; use --device cpu meanwhile"
                              : "rerun with HS_CUDA_SYNC=1 to name the failing kernel, or use --device cpu");
    c->err[0] = '\0';
    return HS_EIO;
}

static void d_note_error(rt_cuda_ctx *c, const char *what, const char *err) { rt_cuda_note(c, what, err); }
static void *d_stream(rt_cuda_ctx *c) { return (void *)c->stream; }

/* ------------------------------------------------------------------ memory */

static void *d_alloc(rt_cuda_ctx *c, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) { cudaGetLastError(); return NULL; }   /* out of memory is not sticky */
    return p;
}
static void *d_host_alloc(rt_cuda_ctx *c, size_t bytes) {
    void *p = NULL;
    if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess) { cudaGetLastError(); return NULL; }
    return p;
}
static void d_host_free(rt_cuda_ctx *c, void *p) {
    if (p && cudaFreeHost(p) != cudaSuccess) rt_cuda_note(c, "cudaFreeHost", cudaGetErrorString(cudaGetLastError()));
}
static void d_free(rt_cuda_ctx *c, void *p) {
    if (p && cudaFree(p) != cudaSuccess) rt_cuda_note(c, "cudaFree", cudaGetErrorString(cudaGetLastError()));
}
static void d_upload(rt_cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    /* From pageable memory the call returns once src has been staged, so src is reusable. */
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream);
    if (e != cudaSuccess) rt_cuda_note(c, "cudaMemcpy host->device", cudaGetErrorString(e));
}
static void d_download(rt_cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) rt_cuda_note(c, "cudaMemcpy device->host", cudaGetErrorString(e));
}
/* The copy stream and its events, on the first pipelined copy (a context that never hooks a
 * read-only tensor never makes them). */
static bool copy_setup(rt_cuda_ctx *c) {
    if (c->copy_ready) return true;
    cudaError_t e = cudaStreamCreateWithFlags(&c->cstream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->ev_ready, cudaEventDisableTiming);
    for (int i = 0; i < RT_CUDA_COPY_SLOTS && e == cudaSuccess; i++) e = cudaEventCreateWithFlags(&c->ev_done[i], cudaEventDisableTiming);
    if (e != cudaSuccess) { rt_cuda_note(c, "creating the copy stream", cudaGetErrorString(e)); return false; }
    c->copy_ready = true;
    return true;
}
/* The tensor is first snapshotted on the device (a device-to-device copy, ~30x faster than PCIe)
 * into the slot's device staging buffer; the PCIe copy then runs from there on the copy stream
 * while the compute stream goes on — compute overlaps the copies. The compute stream waits only
 * for the previous PCIe copy out of the same slot (two slots: rarely a wait at all). Without room
 * for the snapshot, the compute stream waits for the PCIe copy itself. */
static void d_download_async(rt_cuda_ctx *c, int slot, void *dst, const void *src, size_t bytes) {
    if (!bytes || slot < 0 || slot >= RT_CUDA_COPY_SLOTS || !copy_setup(c)) return;
    cudaError_t e = cudaSuccess;
    if (bytes > c->dcap[slot]) {                      /* grow the snapshot buffer (once per size) */
        e = cudaEventSynchronize(c->ev_done[slot]);   /* its last copy is done before it goes */
        if (c->dstage[slot]) cudaFree(c->dstage[slot]);
        c->dstage[slot] = NULL; c->dcap[slot] = 0;
        if (e == cudaSuccess && cudaMalloc(&c->dstage[slot], bytes) == cudaSuccess) c->dcap[slot] = bytes;
        else { c->dstage[slot] = NULL; cudaGetLastError(); e = cudaSuccess; }   /* no room: copy directly */
    }
    const void *from = src;
    if (c->dstage[slot]) {
        e = cudaStreamWaitEvent(c->stream, c->ev_done[slot], 0);                  /* the slot's last PCIe copy */
        if (e == cudaSuccess) e = cudaMemcpyAsync(c->dstage[slot], src, bytes, cudaMemcpyDeviceToDevice, c->stream);
        from = c->dstage[slot];
    }
    if (e == cudaSuccess) e = cudaEventRecord(c->ev_ready, c->stream);         /* after the tensor (snapshot) was written */
    if (e == cudaSuccess) e = cudaStreamWaitEvent(c->cstream, c->ev_ready, 0);
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, from, bytes, cudaMemcpyDeviceToHost, c->cstream);
    if (e == cudaSuccess) e = cudaEventRecord(c->ev_done[slot], c->cstream);
    if (e == cudaSuccess && !c->dstage[slot]) e = cudaStreamWaitEvent(c->stream, c->ev_done[slot], 0);   /* nothing overwrites it first */
    if (e != cudaSuccess) rt_cuda_note(c, "cudaMemcpyAsync device->host (hook pipeline)", cudaGetErrorString(e));
}
static hs_status d_download_wait(rt_cuda_ctx *c, int slot, const char *where) {
    if (c->copy_ready && slot >= 0 && slot < RT_CUDA_COPY_SLOTS) {
        cudaError_t e = cudaEventSynchronize(c->ev_done[slot]);
        if (e != cudaSuccess) rt_cuda_note(c, "cudaMemcpyAsync device->host (hook pipeline)", cudaGetErrorString(e));
    }
    return c->err[0] ? d_check(c, where) : HS_OK;   /* the full check only when something failed */
}
static void d_zero(rt_cuda_ctx *c, void *dst, size_t bytes) {
    if (!bytes) return;
    cudaError_t e = cudaMemsetAsync(dst, 0, bytes, c->stream);
    if (e != cudaSuccess) rt_cuda_note(c, "cudaMemset", cudaGetErrorString(e));
}
static void d_mem_info(rt_cuda_ctx *c, size_t *free_b, size_t *total_b) {
    if (cudaMemGetInfo(free_b, total_b) != cudaSuccess) { cudaGetLastError(); *free_b = *total_b = 0; }
}

/* ------------------------------------------------------------------ GEMM */

static void d_gemm(rt_cuda_ctx *c, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const void *A, int lda,
                   const void *B, int ldb, rt_cuda_dtype ab, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cudaDataType_t t = ab == RT_CUDA_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasStatus_t s = rt_cuda_blas.gemm_ex(c->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    N, M, K, &alpha, B, t, ldb, A, t, lda, &beta, C, CUDA_R_32F, ldc,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "cublasGemmEx(%s, M=%d N=%d K=%d lda=%d ldb=%d ldc=%d, %c%c)",
                 ab == RT_CUDA_BF16 ? "bf16" : "f32", M, N, K, lda, ldb, ldc, trans_a ? 'T' : 'N', trans_b ? 'T' : 'N');
        rt_cuda_note(c, what, rt_cuda_blas.status_string(s));
        return;
    }
    rt_cuda_after_launch(c, "cublasGemmEx");
}

/* ------------------------------------------------------------------ the table */

static const rt_cuda_ops k_device_ops = {
    "cuda", true,
    d_ctx_init, d_ctx_free, d_check, d_note_error, d_stream,
    d_alloc, d_free, d_upload, d_download, d_download_async, d_download_wait, d_zero, d_mem_info, d_host_alloc, d_host_free,
    rt_cuda_k_copy2d, rt_cuda_k_gather_rows, rt_cuda_k_add, rt_cuda_k_add_bias, rt_cuda_k_norm, rt_cuda_k_rope,
    rt_cuda_k_gelu, rt_cuda_k_swiglu, rt_cuda_k_to_bf16, rt_cuda_k_to_bf16_split, rt_cuda_k_bias_gelu_bf16,
    rt_cuda_k_swiglu_bf16, rt_cuda_k_add_norm_bf16, rt_cuda_k_qkv_split, d_gemm,
    rt_cuda_k_attention, rt_cuda_k_attention_bf16, rt_cuda_k_mask_scores, rt_cuda_k_softmax_rows,
    rt_cuda_k_target_dots, rt_cuda_k_rank_count,
};

extern "C" const rt_cuda_ops *rt_cuda_ops_device(void) { return &k_device_ops; }
