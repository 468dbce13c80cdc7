/* rt_cuda_ref.c — the CPU reference of every GPU kernel (contracts in rt_cuda_ops.h), and the
 * "cpu-reference" ops table that runs the GPU orchestration on host memory.
 *
 * Why: CUDA code cannot be trusted without something plain to compare it with, and the machines
 * that build headscope have no GPU. These functions are written for obviousness, not speed:
 * straight loops, double accumulation where the GPU kernel uses an online or tree reduction, and
 * the same rounding rules as forward.c where the GPU must match the CPU runtime bit for bit in
 * spirit (norms in double, GELU in double — in float in the fused bf16 MLP pass —, SiLU in float,
 * RoPE tables from forward.c's formula).
 * tests/test_cuda.c compares each CUDA kernel with its reference here, and runs whole forwards on
 * this table against rt_forward_run.
 * The GEMM reference calls OpenBLAS sgemm (bf16 operands are widened first: a bf16 product is exact
 * in fp32, so this is bf16 x bf16 with fp32 accumulation). The reference table allocates with
 * malloc; it is a test backend, never used for production runs.
 */
#include "rt_cuda_ops.h"
#include "runtime/half.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

float rt_cuda_bf16_to_f32(uint16_t b) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)b << 16;
    return v.f;
}

void rt_cuda_ref_copy2d(float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        memmove(dst + (size_t)i * ldd, src + (size_t)i * lds, (size_t)cols * sizeof(float));
}

void rt_cuda_ref_gather_rows(float *dst, const void *table, rt_cuda_dtype dt, const int *idx, int n, int D) {
    for (int i = 0; i < n; i++) {
        size_t row = (size_t)idx[i] * D;
        float *d = dst + (size_t)i * D;
        if (dt == RT_CUDA_F32) memcpy(d, (const float *)table + row, (size_t)D * sizeof(float));
        else for (int j = 0; j < D; j++) d[j] = rt_cuda_bf16_to_f32(((const uint16_t *)table)[row + j]);
    }
}

void rt_cuda_ref_add(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void rt_cuda_ref_add_bias(float *y, const float *b, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) y[(size_t)i * cols + j] += b[j];
}

void rt_cuda_ref_norm(float *y, const float *x, const float *w, const float *b, int rows, int D, bool rms, float eps) {
    for (int i = 0; i < rows; i++) {
        const float *xr = x + (size_t)i * D;
        float *yr = y + (size_t)i * D;
        if (!rms) {
            double mean = 0, var = 0;
            for (int j = 0; j < D; j++) mean += xr[j];
            mean /= D;
            for (int j = 0; j < D; j++) { double d = xr[j] - mean; var += d * d; }
            var /= D;
            double inv = 1.0 / sqrt(var + eps);
            for (int j = 0; j < D; j++) yr[j] = (float)((xr[j] - mean) * inv) * w[j] + (b ? b[j] : 0.0f);
        } else {
            double ss = 0;
            for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
            double inv = 1.0 / sqrt(ss / D + eps);
            for (int j = 0; j < D; j++) yr[j] = w[j] * (float)(xr[j] * inv);
        }
    }
}

void rt_cuda_ref_rope(float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                      const float *sin_t, bool interleaved) {
    int half = HD / 2;
    for (int t = 0; t < rows; t++) {
        const float *cs = cos_t + (size_t)pos[t] * half, *sn = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * HD;
            for (int i = 0; i < half; i++) {
                int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * cs[i] - x1 * sn[i];
                v[b] = x1 * cs[i] + x0 * sn[i];
            }
        }
    }
}

void rt_cuda_ref_gelu(float *x, size_t n, bool exact) {
    const double k = 0.7978845608028654;   /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = exact ? (float)(0.5 * x[i] * (1.0 + erf(x[i] / 1.4142135623730951)))
                     : (float)(0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v))));
    }
}

void rt_cuda_ref_swiglu(float *hid, const float *gate, size_t n) {
    for (size_t i = 0; i < n; i++) hid[i] *= gate[i] / (1.0f + expf(-gate[i]));
}

/* The fused kernels' references. swiglu_bf16, add_norm_bf16 and qkv_split: the unfused references
 * composed (their contracts are "bit for bit the unfused sequence"); bias_gelu_bf16: the float
 * GELU of its contract. */
static void to_pair(uint16_t *hi, uint16_t *lo, const float *a, size_t n) {
    if (lo) rt_cuda_ref_to_bf16_split(hi, lo, a, n);
    else rt_cuda_ref_to_bf16(hi, a, n);
}
float rt_cuda_gelu_f32(float v, bool exact) {
    if (exact) return 0.5f * v * erfcf(v * -0.70710678f);
    float u = 0.7978845608f * (v + 0.044715f * (v * v * v));
    return v / (1.0f + expf(-2.0f * u));
}
void rt_cuda_ref_bias_gelu_bf16(const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi, uint16_t *lo) {
    float *a = hs_xmalloc((cols > 0 ? (size_t)cols : 1) * sizeof(float));
    for (int i = 0; i < rows; i++) {
        const float *yr = y + (size_t)i * cols;
        for (int j = 0; j < cols; j++) a[j] = rt_cuda_gelu_f32(b ? yr[j] + b[j] : yr[j], exact);
        to_pair(hi + (size_t)i * cols, lo ? lo + (size_t)i * cols : NULL, a, (size_t)cols);
    }
    free(a);
}
void rt_cuda_ref_swiglu_bf16(const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo) {
    float *a = hs_xmalloc((n ? n : 1) * sizeof(float));
    memcpy(a, hid, n * sizeof(float));
    rt_cuda_ref_swiglu(a, gate, n);
    to_pair(hi, lo, a, n);
    free(a);
}
void rt_cuda_ref_add_norm_bf16(float *x, const float *y, const float *b, float *xn, const float *w, const float *nb, int rows,
                               int D, bool rms, float eps, uint16_t *hi, uint16_t *lo) {
    float *t = hs_xmalloc((D > 0 ? (size_t)D : 1) * sizeof(float));
    for (int i = 0; i < rows; i++) {
        float *xr = x + (size_t)i * D;
        if (y) {
            const float *yr = y + (size_t)i * D;
            for (int j = 0; j < D; j++) xr[j] += b ? yr[j] + b[j] : yr[j];   /* add_bias, then add */
        }
        float *n = xn ? xn + (size_t)i * D : t;
        rt_cuda_ref_norm(n, xr, w, nb, 1, D, rms, eps);
        if (hi) to_pair(hi + (size_t)i * D, lo ? lo + (size_t)i * D : NULL, n, (size_t)D);
    }
    free(t);
}
void rt_cuda_ref_qkv_split(const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k, float *v,
                           uint16_t *k16, uint16_t *v16) {
    size_t W = (size_t)QD + 2 * (size_t)KD;
    for (int r = 0; r < N; r++) {
        const float *src = qkv + (size_t)r * W;
        float *dst[3] = { q + (size_t)r * QD, k + (size_t)r * KD, v + (size_t)r * KD };
        size_t at[3] = { 0, (size_t)QD, (size_t)QD + KD }, len[3] = { (size_t)QD, (size_t)KD, (size_t)KD };
        for (int p = 0; p < 3; p++)
            for (size_t j = 0; j < len[p]; j++) dst[p][j] = bias ? src[at[p] + j] + bias[at[p] + j] : src[at[p] + j];
    }
    if (k16 && v16) {
        rt_cuda_ref_to_bf16(k16, k, (size_t)N * KD);
        rt_cuda_ref_to_bf16(v16, v, (size_t)N * KD);
    }
}

void rt_cuda_ref_to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = rt_f32_to_bf16(src[i]);
}

void rt_cuda_ref_to_bf16_split(uint16_t *hi, uint16_t *lo, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        hi[i] = rt_f32_to_bf16(src[i]);
        lo[i] = rt_f32_to_bf16(src[i] - rt_cuda_bf16_to_f32(hi[i]));
    }
}

/* Widen a stored bf16 matrix (rows, cols; ld) to fp32 with the same layout. Caller frees. */
static float *widen(const void *p, int rows, int cols, int ld) {
    size_t n = rows > 0 ? (size_t)(rows - 1) * ld + cols : 1;
    float *w = hs_xmalloc(n * sizeof(float));
    const uint16_t *s = p;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) w[(size_t)i * ld + j] = rt_cuda_bf16_to_f32(s[(size_t)i * ld + j]);
    return w;
}

void rt_cuda_ref_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const void *A, int lda,
                      const void *B, int ldb, rt_cuda_dtype ab, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const float *a = A, *b = B;
    float *wa = NULL, *wb = NULL;
    if (ab == RT_CUDA_BF16) {
        a = wa = widen(A, trans_a ? K : M, trans_a ? M : K, lda);
        b = wb = widen(B, trans_b ? N : K, trans_b ? K : N, ldb);
    }
    if (K <= 0) {   /* OpenBLAS handles K = 0 too, but say what it means */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    } else {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                    alpha, a, lda, b, ldb, beta, C, ldc);
    }
    free(wa); free(wb);
}

/* First key visible from absolute position p (keys after p are never visible). */
static int first_key(int p, int window) { return window > 0 && p - window + 1 > 0 ? p - window + 1 : 0; }

/* bf16 rounding of an operand, as the tensor-core kernel rounds q, k, v and p (identity when !on). */
static inline double rnd(float x, bool on) { return on ? rt_cuda_bf16_to_f32(rt_f32_to_bf16(x)) : x; }

/* Element e of kv head g of key j: from the bf16 copy when the descriptor has one (the bf16
 * kernel's input), else from the fp32 tensor, rounded when bf16. */
static inline double kv_at(const rt_cuda_seq *sq, bool v, int j, int g, int e, int KVHD, int HD, bool bf16) {
    const uint16_t *c16 = v ? sq->v16 : sq->k16;
    if (bf16 && c16) return rt_cuda_bf16_to_f32(c16[(size_t)j * KVHD + (size_t)g * HD + e]);
    return rnd((v ? sq->v : sq->k)[(size_t)j * sq->ldk + (size_t)g * HD + e], bf16);
}

/* Both attention references, in double: bf16 = the bf16 kernel's numerics (q, k, v rounded to bf16;
 * each weight exp(s − max) rounded to bf16 in P·V while the row sum uses it unrounded, as the
 * kernel sums its fp32 p before packing). The kernel rounds p relative to the running max of its
 * tile loop rather than the row's final max, so it differs from this reference by about one bf16
 * rounding of each weight (relative 2^-9), not systematically. */
static void ref_attention(float *z, int ldz, float *lse, int ldlse, const float *q, int ldq, const rt_cuda_seq *seqs,
                          int n_seqs, int H, int KV, int HD, int window, float scale, bool bf16) {
    int Tk_max = 0;
    for (int s = 0; s < n_seqs; s++) if (seqs[s].pos0 + seqs[s].T > Tk_max) Tk_max = seqs[s].pos0 + seqs[s].T;
    double *sc = hs_xmalloc((size_t)(Tk_max > 0 ? Tk_max : 1) * sizeof(double));
    double *acc = hs_xmalloc((size_t)(HD > 0 ? HD : 1) * sizeof(double));
    double *qd = hs_xmalloc((size_t)(HD > 0 ? HD : 1) * sizeof(double));
    for (int s = 0; s < n_seqs; s++) {
        const rt_cuda_seq *sq = &seqs[s];
        for (int h = 0; h < H; h++) {
            int g = h / (H / KV);
            for (int r = 0; r < sq->T; r++) {
                int p = sq->pos0 + r, a = first_key(p, window);
                const float *qr = q + (size_t)(sq->off + r) * ldq + (size_t)h * HD;
                for (int e = 0; e < HD; e++) qd[e] = rnd(qr[e], bf16);
                double mx = -INFINITY;
                for (int j = a; j <= p; j++) {
                    double d = 0;
                    for (int e = 0; e < HD; e++) d += qd[e] * kv_at(sq, false, j, g, e, KV * HD, HD, bf16);
                    sc[j] = d * scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                double sum = 0;
                for (int e = 0; e < HD; e++) acc[e] = 0;
                for (int j = a; j <= p; j++) {
                    double w = exp(sc[j] - mx), wr = rnd((float)w, bf16);
                    sum += w;
                    for (int e = 0; e < HD; e++) acc[e] += wr * kv_at(sq, true, j, g, e, KV * HD, HD, bf16);
                }
                float *zr = z + (size_t)(sq->off + r) * ldz + (size_t)h * HD;
                for (int e = 0; e < HD; e++) zr[e] = (float)(acc[e] / sum);
                lse[(size_t)(sq->off + r) * ldlse + h] = (float)(mx + log(sum));
            }
        }
    }
    free(sc); free(acc); free(qd);
}

void rt_cuda_ref_attention(float *z, int ldz, float *lse, int ldlse, const float *q, int ldq, const rt_cuda_seq *seqs,
                           int n_seqs, int H, int KV, int HD, int window, float scale) {
    ref_attention(z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, H, KV, HD, window, scale, false);
}

void rt_cuda_ref_attention_bf16(float *z, int ldz, float *lse, int ldlse, const float *q, int ldq, const rt_cuda_seq *seqs,
                                int n_seqs, int H, int KV, int HD, int window, float scale) {
    ref_attention(z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, H, KV, HD, window, scale, true);
}

bool rt_cuda_attention_bf16_supported(int HD) { return HD == 16 || HD == 32 || HD == 64 || HD == 128; }

void rt_cuda_ref_mask_scores(float *S, int T, int Tk, int pos0, int window) {
    for (int r = 0; r < T; r++) {
        int p = pos0 + r, a = first_key(p, window);
        float *row = S + (size_t)r * Tk;
        for (int j = 0; j < Tk; j++)
            if (j < a || j > p) row[j] = -INFINITY;
    }
}

void rt_cuda_ref_softmax_rows(float *S, int T, int Tk, int pos0, int window) {
    for (int r = 0; r < T; r++) {
        int p = pos0 + r, a = first_key(p, window), e = p + 1 < Tk ? p + 1 : Tk;
        float *row = S + (size_t)r * Tk;
        float mx = -INFINITY, sum = 0.0f;
        for (int j = a; j < e; j++) mx = row[j] > mx ? row[j] : mx;
        for (int j = a; j < e; j++) { float x = row[j] == -INFINITY ? 0.0f : expf(row[j] - mx); row[j] = x; sum += x; }
        float inv = sum > 0 ? 1.0f / sum : 0.0f;
        for (int j = 0; j < a; j++) row[j] = 0.0f;
        for (int j = a; j < e; j++) row[j] *= inv;
        for (int j = e; j < Tk; j++) row[j] = 0.0f;
    }
}

/* ------------------------------------------------------------------ the reference ops table */

struct rt_cuda_ctx { int unused; };

static hs_status h_ctx_init(int device, bool pedantic_f32, rt_cuda_ctx **out) {
    *out = hs_xcalloc(1, sizeof **out);
    return HS_OK;
}
static void h_ctx_free(rt_cuda_ctx *c) { free(c); }
static hs_status h_check(rt_cuda_ctx *c, const char *where) { return HS_OK; }
static void h_note_error(rt_cuda_ctx *c, const char *what, const char *err) {
    hs_log_error("cuda", "%s failed: %s (cpu-reference backend)", what, err);
}
static void *h_stream(rt_cuda_ctx *c) { return NULL; }
static void *h_alloc(rt_cuda_ctx *c, size_t bytes) { return malloc(bytes ? bytes : 1); }
static void h_free(rt_cuda_ctx *c, void *p) { free(p); }
static void h_copy(rt_cuda_ctx *c, void *dst, const void *src, size_t bytes) { if (bytes) memcpy(dst, src, bytes); }
static void h_zero(rt_cuda_ctx *c, void *dst, size_t bytes) { if (bytes) memset(dst, 0, bytes); }
static void h_download_async(rt_cuda_ctx *c, int slot, void *dst, const void *src, size_t bytes) { if (bytes) memcpy(dst, src, bytes); }
static hs_status h_download_wait(rt_cuda_ctx *c, int slot, const char *where) { return HS_OK; }
static void h_mem_info(rt_cuda_ctx *c, size_t *free_b, size_t *total_b) { *free_b = 0; *total_b = 0; }

static void h_copy2d(rt_cuda_ctx *c, float *dst, int ldd, const float *src, int lds, int rows, int cols) {
    rt_cuda_ref_copy2d(dst, ldd, src, lds, rows, cols);
}
static void h_gather_rows(rt_cuda_ctx *c, float *dst, const void *table, rt_cuda_dtype dt, const int *idx, int n, int D) {
    rt_cuda_ref_gather_rows(dst, table, dt, idx, n, D);
}
static void h_add(rt_cuda_ctx *c, float *x, const float *y, size_t n) { rt_cuda_ref_add(x, y, n); }
static void h_add_bias(rt_cuda_ctx *c, float *y, const float *b, int rows, int cols) { rt_cuda_ref_add_bias(y, b, rows, cols); }
static void h_norm(rt_cuda_ctx *c, float *y, const float *x, const float *w, const float *b, int rows, int D, bool rms,
                   float eps) {
    rt_cuda_ref_norm(y, x, w, b, rows, D, rms, eps);
}
static void h_rope(rt_cuda_ctx *c, float *x, int ld, int rows, int nh, int HD, const int *pos, const float *cos_t,
                   const float *sin_t, bool interleaved) {
    rt_cuda_ref_rope(x, ld, rows, nh, HD, pos, cos_t, sin_t, interleaved);
}
static void h_gelu(rt_cuda_ctx *c, float *x, size_t n, bool exact) { rt_cuda_ref_gelu(x, n, exact); }
static void h_swiglu(rt_cuda_ctx *c, float *hid, const float *gate, size_t n) { rt_cuda_ref_swiglu(hid, gate, n); }
static void h_to_bf16(rt_cuda_ctx *c, uint16_t *dst, const float *src, size_t n) { rt_cuda_ref_to_bf16(dst, src, n); }
static void h_to_bf16_split(rt_cuda_ctx *c, uint16_t *hi, uint16_t *lo, const float *src, size_t n) {
    rt_cuda_ref_to_bf16_split(hi, lo, src, n);
}
static void h_bias_gelu_bf16(rt_cuda_ctx *c, const float *y, const float *b, int rows, int cols, bool exact, uint16_t *hi,
                             uint16_t *lo) {
    rt_cuda_ref_bias_gelu_bf16(y, b, rows, cols, exact, hi, lo);
}
static void h_swiglu_bf16(rt_cuda_ctx *c, const float *hid, const float *gate, size_t n, uint16_t *hi, uint16_t *lo) {
    rt_cuda_ref_swiglu_bf16(hid, gate, n, hi, lo);
}
static void h_add_norm_bf16(rt_cuda_ctx *c, float *x, const float *y, const float *b, float *xn, const float *w,
                            const float *nb, int rows, int D, bool rms, float eps, uint16_t *hi, uint16_t *lo) {
    rt_cuda_ref_add_norm_bf16(x, y, b, xn, w, nb, rows, D, rms, eps, hi, lo);
}
static void h_qkv_split(rt_cuda_ctx *c, const float *qkv, const float *bias, int N, int QD, int KD, float *q, float *k,
                        float *v, uint16_t *k16, uint16_t *v16) {
    rt_cuda_ref_qkv_split(qkv, bias, N, QD, KD, q, k, v, k16, v16);
}
static void h_gemm(rt_cuda_ctx *c, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const void *A, int lda,
                   const void *B, int ldb, rt_cuda_dtype ab, float beta, float *C, int ldc) {
    rt_cuda_ref_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, ab, beta, C, ldc);
}
static void h_attention(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                        const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale) {
    rt_cuda_ref_attention(z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, H, KV, HD, window, scale);
}
static void h_attention_bf16(rt_cuda_ctx *c, float *z, int ldz, float *lse, int ldlse, const float *q, int ldq,
                             const rt_cuda_seq *seqs, int n_seqs, int T_max, int H, int KV, int HD, int window, float scale) {
    rt_cuda_ref_attention_bf16(z, ldz, lse, ldlse, q, ldq, seqs, n_seqs, H, KV, HD, window, scale);
}
static void h_mask_scores(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window) {
    rt_cuda_ref_mask_scores(S, T, Tk, pos0, window);
}
static void h_softmax_rows(rt_cuda_ctx *c, float *S, int T, int Tk, int pos0, int window) {
    rt_cuda_ref_softmax_rows(S, T, Tk, pos0, window);
}

/* Ranking references. target_dots: the double dot product of topk.c (dot_d). rank_count: topk.c's
 * count_block written per token (same counts: the float comparison against lf, the exact-tie rule
 * by id, the target skipped), plus the two margin counts. */
void rt_cuda_ref_target_dots(const float *Y, int R, int D, const float *W, const int *tgt, double *lt, double *ynorm) {
    for (int r = 0; r < R; r++) {
        const float *y = Y + (size_t)r * D, *w = W + (size_t)tgt[r] * D;
        double s = 0, q = 0;
        for (int d = 0; d < D; d++) { s += (double)y[d] * w[d]; q += (double)y[d] * y[d]; }
        lt[r] = s;
        ynorm[r] = sqrt(q);
    }
}

void rt_cuda_ref_rank_count(const float *C, int R, int Wb, int v0, const int *tgt, const double *lt, const double *ynorm,
                            double rel, int *cnt) {
    for (int r = 0; r < R; r++) {
        const float *c = C + (size_t)r * Wb;
        double l = lt[r], m = rel * ynorm[r];
        float lf = (float)l;
        int t = tgt[r], gt = 0, ls = 0, sa = 0, sb = 0;
        for (int j = 0; j < Wb; j++) {
            if (v0 + j == t) continue;
            float x = c[j];
            if (x > lf) gt++;
            else if (x < lf) ls++;
            else if ((double)lf > l) gt++;          /* equal to lf (or NaN): decided by lf against lt */
            else if ((double)lf < l) ls++;
            else if (x == lf && v0 + j < t) { gt++; ls++; }   /* an exact tie: the lower id ranks first */
            sa += (double)x > l + m;
            sb += (double)x < l - m;
        }
        cnt[4 * r] += gt; cnt[4 * r + 1] += ls; cnt[4 * r + 2] += sa; cnt[4 * r + 3] += sb;
    }
}
static void h_target_dots(rt_cuda_ctx *c, const float *Y, int R, int D, const float *W, const int *tgt, double *lt,
                          double *ynorm) {
    rt_cuda_ref_target_dots(Y, R, D, W, tgt, lt, ynorm);
}
static void h_rank_count(rt_cuda_ctx *c, const float *C, int R, int Wb, int v0, const int *tgt, const double *lt,
                         const double *ynorm, double rel, int *cnt) {
    rt_cuda_ref_rank_count(C, R, Wb, v0, tgt, lt, ynorm, rel, cnt);
}

static const rt_cuda_ops k_host_ops = {
    "cpu-reference", false,
    h_ctx_init, h_ctx_free, h_check, h_note_error, h_stream,
    h_alloc, h_free, h_copy, h_copy, h_download_async, h_download_wait, h_zero, h_mem_info, h_alloc, h_free,
    h_copy2d, h_gather_rows, h_add, h_add_bias, h_norm, h_rope, h_gelu, h_swiglu, h_to_bf16, h_to_bf16_split,
    h_bias_gelu_bf16, h_swiglu_bf16, h_add_norm_bf16, h_qkv_split, h_gemm,
    h_attention, h_attention_bf16, h_mask_scores, h_softmax_rows,
    h_target_dots, h_rank_count,
};

const rt_cuda_ops *rt_cuda_ops_host(void) { return &k_host_ops; }
