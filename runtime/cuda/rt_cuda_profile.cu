/* rt_cuda_profile.cu — a timing wrapper around the CUDA ops table (rt_gpu_opts.profile).
 *
 * Why: the GPU machine has no profiler (nsys/ncu are not installed), and "where does the forward's
 * time go" decides what to optimise next. Each kernel entry of the device table is wrapped: a CUDA
 * event before and after it on the context's stream, a wait, and the elapsed time added to that
 * op's total (plus GEMM FLOPs and bytes moved for the elementwise kernels). The wait serialises
 * the host with the GPU, so a profiled forward is slower than a real one; the per-op times are
 * the kernels' own. Memory, context and ranking entries pass through untimed, except the copies
 * (upload/download: PCIe).
 */
#include "rt_cuda_internal.h"
#include <stdio.h>
#include <string.h>

namespace {
enum { P_COPY2D, P_GATHER, P_ADD, P_BIAS, P_NORM, P_ROPE, P_GELU, P_SWIGLU, P_TOBF16, P_SPLIT, P_BIAS_GELU16, P_SWIGLU16,
       P_ADD_NORM16, P_QKV_SPLIT, P_GEMM, P_ATTN, P_ATTN16, P_MASK, P_SOFTMAX, P_UPLOAD, P_DOWNLOAD, P_N };
const char *const k_names[P_N] = { "copy2d", "gather_rows", "add", "add_bias", "norm", "rope", "gelu", "swiglu", "to_bf16",
                                   "to_bf16_split", "bias_gelu_bf16", "swiglu_bf16", "add_norm_bf16", "qkv_split", "gemm",
                                   "attention (fp32)", "attention_bf16", "mask_scores", "softmax_rows",
                                   "upload (PCIe)", "download (PCIe)" };
struct acc { double ms, flops, bytes; long calls; };
acc g_acc[P_N];
cudaEvent_t g_e0, g_e1;
bool g_events;
const rt_cuda_ops *base() { return rt_cuda_ops_device(); }

void begin(rt_cuda_ctx *c) {
    if (!g_events) { cudaEventCreate(&g_e0); cudaEventCreate(&g_e1); g_events = true; }
    cudaEventRecord(g_e0, c->stream);
}
void end(rt_cuda_ctx *c, int k, double flops, double bytes) {
    cudaEventRecord(g_e1, c->stream);
    float ms = 0;
    if (cudaEventSynchronize(g_e1) == cudaSuccess && cudaEventElapsedTime(&ms, g_e0, g_e1) == cudaSuccess) g_acc[k].ms += ms;
    else cudaGetLastError();
    g_acc[k].calls++; g_acc[k].flops += flops; g_acc[k].bytes += bytes;
}

void p_upload(rt_cuda_ctx *c, void *d, const void *s, size_t n) { begin(c); base()->upload(c, d, s, n); end(c, P_UPLOAD, 0, (double)n); }
void p_download(rt_cuda_ctx *c, void *d, const void *s, size_t n) { begin(c); base()->download(c, d, s, n); end(c, P_DOWNLOAD, 0, (double)n); }
void p_copy2d(rt_cuda_ctx *c, float *d, int ldd, const float *s, int lds, int r, int cols) {
    begin(c); base()->copy2d(c, d, ldd, s, lds, r, cols); end(c, P_COPY2D, 0, 8.0 * r * cols);
}
void p_gather(rt_cuda_ctx *c, float *d, const void *t, rt_cuda_dtype dt, const int *idx, int n, int D) {
    begin(c); base()->gather_rows(c, d, t, dt, idx, n, D); end(c, P_GATHER, 0, (4.0 + (dt == RT_CUDA_BF16 ? 2 : 4)) * n * D);
}
void p_add(rt_cuda_ctx *c, float *x, const float *y, size_t n) { begin(c); base()->add(c, x, y, n); end(c, P_ADD, 0, 12.0 * n); }
void p_bias(rt_cuda_ctx *c, float *y, const float *b, int r, int cols) { begin(c); base()->add_bias(c, y, b, r, cols); end(c, P_BIAS, 0, 8.0 * r * cols); }
void p_norm(rt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int r, int D, bool rms, float eps) {
    begin(c); base()->norm(c, y, x, w, b, r, D, rms, eps); end(c, P_NORM, 0, 8.0 * r * D);
}
void p_rope(rt_cuda_ctx *c, float *x, int ld, int r, int nh, int HD, const int *pos, const float *cs, const float *sn, bool il) {
    begin(c); base()->rope(c, x, ld, r, nh, HD, pos, cs, sn, il); end(c, P_ROPE, 0, 8.0 * r * nh * HD);
}
void p_gelu(rt_cuda_ctx *c, float *x, size_t n, bool exact) { begin(c); base()->gelu(c, x, n, exact); end(c, P_GELU, 0, 8.0 * n); }
void p_swiglu(rt_cuda_ctx *c, float *h, const float *g, size_t n) { begin(c); base()->swiglu(c, h, g, n); end(c, P_SWIGLU, 0, 12.0 * n); }
void p_tobf16(rt_cuda_ctx *c, uint16_t *d, const float *s, size_t n) { begin(c); base()->to_bf16(c, d, s, n); end(c, P_TOBF16, 0, 6.0 * n); }
void p_split(rt_cuda_ctx *c, uint16_t *hi, uint16_t *lo, const float *s, size_t n) {
    begin(c); base()->to_bf16_split(c, hi, lo, s, n); end(c, P_SPLIT, 0, 8.0 * n);
}
void p_bias_gelu16(rt_cuda_ctx *c, const float *y, const float *b, int r, int cols, bool ex, uint16_t *hi, uint16_t *lo) {
    begin(c); base()->bias_gelu_bf16(c, y, b, r, cols, ex, hi, lo); end(c, P_BIAS_GELU16, 0, (4.0 + (lo ? 4 : 2)) * r * cols);
}
void p_swiglu16(rt_cuda_ctx *c, const float *h, const float *g, size_t n, uint16_t *hi, uint16_t *lo) {
    begin(c); base()->swiglu_bf16(c, h, g, n, hi, lo); end(c, P_SWIGLU16, 0, (8.0 + (lo ? 4 : 2)) * n);
}
void p_add_norm16(rt_cuda_ctx *c, float *x, const float *y, const float *b, float *xn, const float *w, const float *nb, int r,
                  int D, bool rms, float eps, uint16_t *hi, uint16_t *lo) {
    /* read x (and y, written back to x), write xn and the bf16 pair; w, b, nb are row-sized */
    double per = (y ? 12.0 : 4.0) + (xn ? 4 : 0) + (hi ? 2 : 0) + (lo ? 2 : 0);
    begin(c); base()->add_norm_bf16(c, x, y, b, xn, w, nb, r, D, rms, eps, hi, lo); end(c, P_ADD_NORM16, 0, per * r * D);
}
void p_qkv_split(rt_cuda_ctx *c, const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k, float *v,
                 uint16_t *k16, uint16_t *v16) {
    double W = (double)QD + 2.0 * KD;
    begin(c); base()->qkv_split(c, qkv, bias, N, QD, KD, q, k, v, k16, v16);
    end(c, P_QKV_SPLIT, 0, 8.0 * N * W + (k16 ? 4.0 * N * KD : 0));
}
void p_gemm(rt_cuda_ctx *c, bool ta, bool tb, int M, int N, int K, float al, const void *A, int lda, const void *B, int ldb,
            rt_cuda_dtype ab, float be, float *C, int ldc) {
    begin(c); base()->gemm(c, ta, tb, M, N, K, al, A, lda, B, ldb, ab, be, C, ldc); end(c, P_GEMM, 2.0 * M * N * K, 0);
}
void p_attn(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldl, const float *q, int ldq, const rt_cuda_seq *s, int ns, int Tm,
            int H, int KV, int HD, int w, float sc) {
    begin(c); base()->attention(c, z, ldz, lse, ldl, q, ldq, s, ns, Tm, H, KV, HD, w, sc); end(c, P_ATTN, 0, 0);
}
void p_attn16(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldl, const float *q, int ldq, const rt_cuda_seq *s, int ns, int Tm,
              int H, int KV, int HD, int w, float sc) {
    begin(c); base()->attention_bf16(c, z, ldz, lse, ldl, q, ldq, s, ns, Tm, H, KV, HD, w, sc); end(c, P_ATTN16, 0, 0);
}
void p_mask(rt_cuda_ctx *c, float *S, int T, int Tk, int p0, int w) { begin(c); base()->mask_scores(c, S, T, Tk, p0, w); end(c, P_MASK, 0, 8.0 * T * Tk); }
void p_softmax(rt_cuda_ctx *c, float *S, int T, int Tk, int p0, int w) {
    begin(c); base()->softmax_rows(c, S, T, Tk, p0, w); end(c, P_SOFTMAX, 0, 8.0 * T * Tk);
}

rt_cuda_ops g_table;
bool g_table_ready;
}

extern "C" const rt_cuda_ops *rt_cuda_ops_profiled(void) {
    if (!g_table_ready) {
        g_table = *base();
        g_table.name = "cuda (profiled)";
        g_table.upload = p_upload; g_table.download = p_download;
        g_table.copy2d = p_copy2d; g_table.gather_rows = p_gather; g_table.add = p_add; g_table.add_bias = p_bias;
        g_table.norm = p_norm; g_table.rope = p_rope; g_table.gelu = p_gelu; g_table.swiglu = p_swiglu;
        g_table.to_bf16 = p_tobf16; g_table.to_bf16_split = p_split; g_table.gemm = p_gemm;
        g_table.bias_gelu_bf16 = p_bias_gelu16; g_table.swiglu_bf16 = p_swiglu16;
        g_table.add_norm_bf16 = p_add_norm16; g_table.qkv_split = p_qkv_split;
        g_table.attention = p_attn; g_table.attention_bf16 = p_attn16; g_table.mask_scores = p_mask; g_table.softmax_rows = p_softmax;
        g_table_ready = true;
    }
    return &g_table;
}

extern "C" void rt_cuda_profile_reset(void) { memset(g_acc, 0, sizeof g_acc); }

extern "C" void rt_cuda_profile_report(FILE *f, const char *title) {
    double total = 0;
    for (int k = 0; k < P_N; k++) total += g_acc[k].ms;
    fprintf(f, "   profile %s: %.1f ms in kernels and copies\n", title, total);
    for (int k = 0; k < P_N; k++) {
        const acc &a = g_acc[k];
        if (!a.calls) continue;
        fprintf(f, "     %-18s %6ld calls %9.2f ms %5.1f%%", k_names[k], a.calls, a.ms, total > 0 ? 100 * a.ms / total : 0);
        if (a.flops > 0 && a.ms > 0) fprintf(f, "  %7.1f TFLOP/s", a.flops / (a.ms * 1e-3) / 1e12);
        if (a.bytes > 0 && a.ms > 0) fprintf(f, "  %7.1f GB/s", a.bytes / (a.ms * 1e-3) / 1e9);
        fputc('\n', f);
    }
}
