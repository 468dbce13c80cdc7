/* spectra.c — the spectra pass (see spectra.h, docs/analysis-spectra.md): per-matrix ESDs through
 * LAPACK in double, WeightWatcher's MP fit, power law and norms (mp_fit.c), a shuffled null, and the
 * report.
 *
 * Constraints: eigenvalues only, never vectors; products W_QK/W_OV through their D×r factors, never as
 * a D×D matrix unless r ≥ D/2 (where forming it is cheaper); the null in fp32; one scratch (an_spectra_ws) that grows to the largest matrix and is reused, so the
 * per-head loops allocate only the JSON they emit; OpenBLAS threads inside each call, none outside.
 */
#include "spectra.h"
#include "weights.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DENSITY_POINTS 200          /* samples of the fitted density curve in the report */
#define GRAM_BLOCK_DOUBLES (1 << 20) /* 8 MB of double rows per dsyrk call: bounds the fp32→fp64 copy */
#define SMALL_ESD 100               /* WeightWatcher: fewer eigenvalues than this → 5 shuffled replicas */
#define SMALL_REPLICAS 5

struct an_spectra_ws {
    double *blk, *gram, *ev, *evals, *rand, *qa, *qb, *ra, *rb, *p, *tau, *work;   /* fp64: the ESD itself */
    float *sa, *sb;                 /* shuffled copies of the factors (or of the single matrix) */
    float *fgram, *fqa, *fqb, *fra, *frb, *fp, *ftau, *fwork, *fev;          /* fp32: the null's ESDs */
    lapack_int *iwork;
    size_t blk_n, gram_n, ev_n, evals_n, rand_n, qa_n, qb_n, ra_n, rb_n, p_n, tau_n, work_n, sa_n, sb_n, iwork_n;
    size_t fgram_n, fqa_n, fqb_n, fra_n, frb_n, fp_n, ftau_n, fwork_n, fev_n;
    const char *lapack_error;       /* set when a LAPACK call fails: the spectrum's status says so */
};

/* Grow *buf to hold n elements of size sz (contents not kept): the ws only ever grows, so steady-state
 * per-head work allocates nothing. */
static void *grow(void *buf, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return buf;
    free(buf);
    *cap = n;
    return hs_xmalloc(n * sz);
}
#define GROW(ws, f, n) ((ws)->f = grow((ws)->f, &(ws)->f##_n, (size_t)(n), sizeof *(ws)->f))

an_spectra_ws *an_spectra_ws_init(void) { return hs_xcalloc(1, sizeof(an_spectra_ws)); }

void an_spectra_ws_free(an_spectra_ws *ws) {
    if (!ws) return;
    free(ws->blk); free(ws->gram); free(ws->ev); free(ws->evals); free(ws->rand); free(ws->qa); free(ws->qb);
    free(ws->ra); free(ws->rb); free(ws->p); free(ws->tau); free(ws->work); free(ws->sa); free(ws->sb);
    free(ws->fgram); free(ws->fqa); free(ws->fqb); free(ws->fra); free(ws->frb); free(ws->fp); free(ws->ftau);
    free(ws->fwork); free(ws->fev); free(ws->iwork); free(ws);
}

void an_spectra_defaults(an_spectra_params *p) { p->bins = 100; p->heads = true; p->seed = 0; }

/* ---- randomness: a splitmix64 stream per matrix, so results do not depend on which other matrices
 * (--no-heads) were analysed before ---------------------------------------------------------------- */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t matrix_seed(uint64_t seed, int layer, int head, int name) {
    uint64_t s = seed;
    splitmix64(&s);
    s ^= (uint64_t)(layer + 1) * 0x100000001b3ULL ^ (uint64_t)(head + 2) << 20 ^ (uint64_t)name << 48;
    return splitmix64(&s);
}

__extension__ typedef unsigned __int128 u128;
static void shuffle(float *v, size_t n, uint64_t *st) {
    for (size_t i = n; i > 1; i--) {
        /* Fisher–Yates; j = ⌊u·i/2⁶⁴⌋ (Lemire) instead of u % i: a 64-bit division per element was a
         * visible share of the null on the MLP matrices. Bias ≤ i/2⁶⁴, irrelevant. */
        size_t j = (size_t)(((u128)splitmix64(st) * i) >> 64);
        float t = v[i - 1]; v[i - 1] = v[j]; v[j] = t;
    }
}

static bool all_finite(const float *w, size_t n) {
    for (size_t i = 0; i < n; i++) if (!isfinite(w[i])) return false;
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Eigenvalues of the k×k symmetric matrix ws->gram (upper triangle, column-major), the largest k − skip
 * of them into out (ascending), clamped at 0 (a Gram matrix is PSD; dsyevd can return −1e-16-sized
 * negatives) and divided by N. */
static bool gram_eigenvalues(an_spectra_ws *ws, int k, int skip, int N, double *out) {
    /* The optimal workspace, not dsyevd's minimum 2k+1: with less than k·nb, dsytrd falls back to the
     * unblocked BLAS-2 tridiagonalisation, 3x slower at k = 768. */
    double qwork;
    lapack_int qiwork, lwork, liwork;
    if (LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', k, ws->gram, k, NULL, &qwork, -1, &qiwork, -1) != 0) {
        ws->lapack_error = "dsyevd workspace query failed";
        return false;
    }
    lwork = (lapack_int)qwork > 2 * k + 1 ? (lapack_int)qwork : 2 * k + 1;
    liwork = qiwork > 1 ? qiwork : 1;
    GROW(ws, work, lwork); GROW(ws, iwork, liwork);
    GROW(ws, ev, k);
    lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'U', k, ws->gram, k, ws->ev, ws->work, lwork, ws->iwork, liwork);
    if (info != 0) { ws->lapack_error = "dsyevd did not converge"; return false; }
    for (int i = skip; i < k; i++) out[i - skip] = ws->ev[i] > 0 ? ws->ev[i] / N : 0;
    return true;
}

/* ESD of W (rows, cols) row-major: the eigenvalues of the M×M Gram of the smaller side over N, M =
 * min(rows, cols). Accumulated in double over blocks of the long side (Y (M, bk) column-major,
 * G += Y·Yᵀ), so no full double copy of a large W is ever made. */
static bool esd_single(an_spectra_ws *ws, const float *w, int rows, int cols, double *out) {
    bool tall = rows >= cols;
    int M = tall ? cols : rows, N = tall ? rows : cols;
    int bk = GRAM_BLOCK_DOUBLES / M;
    if (bk < 1) bk = 1;
    if (bk > N) bk = N;
    GROW(ws, blk, (size_t)M * bk); GROW(ws, gram, (size_t)M * M);
    for (int t0 = 0; t0 < N; t0 += bk) {
        int nb = N - t0 < bk ? N - t0 : bk;
        double *y = ws->blk;
        if (tall)       /* Y[m, t] = W[t0 + t, m]: rows of W are columns of Y */
            for (int t = 0; t < nb; t++) { const float *src = w + (size_t)(t0 + t) * cols; for (int m = 0; m < M; m++) y[m + (size_t)t * M] = src[m]; }
        else            /* Y[m, t] = W[m, t0 + t] */
            for (int m = 0; m < M; m++) { const float *src = w + (size_t)m * cols + t0; for (int t = 0; t < nb; t++) y[m + (size_t)t * M] = src[t]; }
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, M, nb, 1.0, y, M, t0 == 0 ? 0.0 : 1.0, ws->gram, M);
    }
    return gram_eigenvalues(ws, M, 0, N, out);
}

/* Column j of Ā (D, r): the sum over the `group` query-head blocks of width blk that share KV block j/blk
 * (GQA; group = 1: a's own column). a is (D, r·group) row-major. */
static inline double factor_at(const float *a, int r, int group, int blk, int i, int j) {
    int g = j / blk, jj = j % blk, wide = r * group;
    double s = 0;
    for (int t = 0; t < group; t++) s += a[(size_t)i * wide + (size_t)(g * group + t) * blk + jj];
    return s;
}

/* Ā (D, r) column-major into q, then thin QR in place: R is q's upper trapezoid. */
static bool factor_qr(an_spectra_ws *ws, const float *a, int D, int r, int group, int blk, double *q) {
    for (int j = 0; j < r; j++)
        for (int i = 0; i < D; i++) q[i + (size_t)j * D] = factor_at(a, r, group, blk, i, j);
    int k = D < r ? D : r;
    GROW(ws, tau, k);
    double qwork;
    if (LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, D, r, q, D, ws->tau, &qwork, -1) != 0) { ws->lapack_error = "dgeqrf workspace query failed"; return false; }
    lapack_int lwork = (lapack_int)qwork > 1 ? (lapack_int)qwork : 1;
    GROW(ws, work, lwork);
    if (LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, D, r, q, D, ws->tau, ws->work, lwork) != 0) { ws->lapack_error = "dgeqrf failed"; return false; }
    return true;
}

/* R (k, r) column-major from the upper trapezoid of a QR'd (D, r) column-major buffer. */
static void upper_r(const double *q, int D, int r, int k, double *R) {
    for (int j = 0; j < r; j++)
        for (int i = 0; i < k; i++) R[i + (size_t)j * k] = i <= j ? q[i + (size_t)j * D] : 0;
}

/* Products with r < D/2 go through thin QRs; wider ones (the layer's W_QK at r = D) are formed densely,
 * which is cheaper there: 2D²r flops against ~4Dr² for the two QRs and the core. */
static bool dense_product(int D, int r) { return 2 * r >= D; }

/* Nonzero ESD of Ā·Bᵀ (D×D) over N = D: with Ā = Q_a R_a and B = Q_b R_b, Ā·Bᵀ = Q_a (R_a R_bᵀ) Q_bᵀ
 * has the singular values of the k×k core P = R_a R_bᵀ; its eigenvalues come from PᵀP like a single
 * matrix's. Cost O(D r²) instead of the O(D³) of a dense D×D SVD. */
static bool esd_product(an_spectra_ws *ws, const float *a, const float *b, int D, int r, int group, int blk, double *out) {
    int k = D < r ? D : r;
    GROW(ws, qa, (size_t)D * r); GROW(ws, qb, (size_t)D * r);
    if (dense_product(D, r)) {
        for (int j = 0; j < r; j++)
            for (int i = 0; i < D; i++) { ws->qa[i + (size_t)j * D] = factor_at(a, r, group, blk, i, j); ws->qb[i + (size_t)j * D] = b[(size_t)i * r + j]; }
        GROW(ws, p, (size_t)D * D); GROW(ws, gram, (size_t)D * D);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, D, D, r, 1.0, ws->qa, D, ws->qb, D, 0.0, ws->p, D);
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, D, D, 1.0, ws->p, D, 0.0, ws->gram, D);
        return gram_eigenvalues(ws, D, D - k, D, out);   /* rank ≤ k: keep the top k */
    }
    GROW(ws, ra, (size_t)k * r); GROW(ws, rb, (size_t)k * r); GROW(ws, p, (size_t)k * k); GROW(ws, gram, (size_t)k * k);
    if (!factor_qr(ws, a, D, r, group, blk, ws->qa) || !factor_qr(ws, b, D, r, 1, r, ws->qb)) return false;
    upper_r(ws->qa, D, r, k, ws->ra);
    upper_r(ws->qb, D, r, k, ws->rb);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, k, k, r, 1.0, ws->ra, k, ws->rb, k, 0.0, ws->p, k);
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, k, k, 1.0, ws->p, k, 0.0, ws->gram, k);
    return gram_eigenvalues(ws, k, 0, D, out);
}

/* ---- the null's ESDs in fp32 ------------------------------------------------------------------
 * The shuffled spectra feed only an MP fit (KDE bandwidth 0.1 in mean-1 units) and their maximum, so
 * fp32's ~1e-6 relative error is immaterial; ssyrk straight on the shuffled fp32 copy and ssyevd halve
 * the null's cost, which is half the pass. */
static bool gram_eigenvalues_f32(an_spectra_ws *ws, int k, int skip, int N, double *out) {
    float qwork;
    lapack_int qiwork;
    GROW(ws, fev, k);
    /* the Gram was written row-major upper = column-major lower */
    if (LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, 'N', 'L', k, ws->fgram, k, ws->fev, &qwork, -1, &qiwork, -1) != 0) {
        ws->lapack_error = "ssyevd workspace query failed";
        return false;
    }
    lapack_int lwork = (lapack_int)qwork > 2 * k + 1 ? (lapack_int)qwork : 2 * k + 1, liwork = qiwork > 1 ? qiwork : 1;
    GROW(ws, fwork, lwork); GROW(ws, iwork, liwork);
    if (LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, 'N', 'L', k, ws->fgram, k, ws->fev, ws->fwork, lwork, ws->iwork, liwork) != 0) {
        ws->lapack_error = "ssyevd did not converge";
        return false;
    }
    for (int i = skip; i < k; i++) out[i - skip] = ws->fev[i] > 0 ? (double)ws->fev[i] / N : 0;
    return true;
}

static bool esd_single_f32(an_spectra_ws *ws, const float *w, int rows, int cols, double *out) {
    bool tall = rows >= cols;
    int M = tall ? cols : rows, N = tall ? rows : cols;
    GROW(ws, fgram, (size_t)M * M);
    cblas_ssyrk(CblasRowMajor, CblasUpper, tall ? CblasTrans : CblasNoTrans, M, N, 1.0f, w, cols, 0.0f, ws->fgram, M);
    return gram_eigenvalues_f32(ws, M, 0, N, out);
}

static bool factor_qr_f32(an_spectra_ws *ws, const float *a, int D, int r, int group, int blk, float *q) {
    for (int j = 0; j < r; j++)
        for (int i = 0; i < D; i++) q[i + (size_t)j * D] = (float)factor_at(a, r, group, blk, i, j);
    int k = D < r ? D : r;
    GROW(ws, ftau, k);
    float qwork;
    if (LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, D, r, q, D, ws->ftau, &qwork, -1) != 0) { ws->lapack_error = "sgeqrf workspace query failed"; return false; }
    lapack_int lwork = (lapack_int)qwork > 1 ? (lapack_int)qwork : 1;
    GROW(ws, fwork, lwork);
    if (LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, D, r, q, D, ws->ftau, ws->fwork, lwork) != 0) { ws->lapack_error = "sgeqrf failed"; return false; }
    return true;
}

static bool esd_product_f32(an_spectra_ws *ws, const float *a, const float *b, int D, int r, int group, int blk, double *out) {
    int k = D < r ? D : r;
    GROW(ws, fqa, (size_t)D * r); GROW(ws, fqb, (size_t)D * r);
    if (dense_product(D, r)) {
        for (int j = 0; j < r; j++)
            for (int i = 0; i < D; i++) { ws->fqa[i + (size_t)j * D] = (float)factor_at(a, r, group, blk, i, j); ws->fqb[i + (size_t)j * D] = b[(size_t)i * r + j]; }
        GROW(ws, fp, (size_t)D * D); GROW(ws, fgram, (size_t)D * D);
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, D, D, r, 1.0f, ws->fqa, D, ws->fqb, D, 0.0f, ws->fp, D);
        cblas_ssyrk(CblasColMajor, CblasLower, CblasTrans, D, D, 1.0f, ws->fp, D, 0.0f, ws->fgram, D);
        return gram_eigenvalues_f32(ws, D, D - k, D, out);
    }
    GROW(ws, fra, (size_t)k * r); GROW(ws, frb, (size_t)k * r); GROW(ws, fp, (size_t)k * k); GROW(ws, fgram, (size_t)k * k);
    /* r < D/2 (the heads): the nonzero eigenvalues of (ĀBᵀ)ᵀ(ĀBᵀ) are those of G_B·G_Ā = Lᵀ·G_B·L with
     * G_Ā = L·Lᵀ: two r×r Grams, a Cholesky and two r³ products instead of two D×r QRs, about 3x cheaper
     * at D = 768, r = 64. Squaring the condition number is harmless for shuffled (i.i.d.) factors; one too
     * ill-conditioned for an fp32 Cholesky takes the QR route below. */
    for (int j = 0; j < r; j++)
        for (int i = 0; i < D; i++) { ws->fqa[i + (size_t)j * D] = (float)factor_at(a, r, group, blk, i, j); ws->fqb[i + (size_t)j * D] = b[(size_t)i * r + j]; }
    cblas_ssyrk(CblasColMajor, CblasLower, CblasTrans, r, D, 1.0f, ws->fqa, D, 0.0f, ws->fra, r);
    cblas_ssyrk(CblasColMajor, CblasLower, CblasTrans, r, D, 1.0f, ws->fqb, D, 0.0f, ws->frb, r);
    if (LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'L', r, ws->fra, r) == 0) {
        for (int j = 1; j < r; j++) memset(ws->fra + (size_t)j * r, 0, (size_t)j * sizeof *ws->fra);   /* L's upper part */
        cblas_ssymm(CblasColMajor, CblasLeft, CblasLower, r, r, 1.0f, ws->frb, r, ws->fra, r, 0.0f, ws->fp, r);        /* G_B·L */
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, r, r, r, 1.0f, ws->fra, r, ws->fp, r, 0.0f, ws->fgram, r); /* Lᵀ·G_B·L */
        return gram_eigenvalues_f32(ws, r, 0, D, out);
    }
    if (!factor_qr_f32(ws, a, D, r, group, blk, ws->fqa) || !factor_qr_f32(ws, b, D, r, 1, r, ws->fqb)) return false;
    for (int j = 0; j < r; j++)
        for (int i = 0; i < k; i++) {
            ws->fra[i + (size_t)j * k] = i <= j ? ws->fqa[i + (size_t)j * D] : 0;
            ws->frb[i + (size_t)j * k] = i <= j ? ws->fqb[i + (size_t)j * D] : 0;
        }
    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, k, k, r, 1.0f, ws->fra, k, ws->frb, k, 0.0f, ws->fp, k);
    /* PᵀP into the column-major lower triangle, the one gram_eigenvalues_f32 reads */
    cblas_ssyrk(CblasColMajor, CblasLower, CblasTrans, k, k, 1.0f, ws->fp, k, 0.0f, ws->fgram, k);
    return gram_eigenvalues_f32(ws, k, 0, D, out);
}

/* Fits shared by both kinds, once out->evals holds n_evals ascending eigenvalues. */
static void fit_esd(an_spectrum *out) {
    an_norm_metrics_of(out->evals, out->n_evals, out->N, &out->norms);
    if (!(out->norms.lambda_sum > 0)) { out->status = "zero matrix"; return; }
    if (out->n_evals < 2) { out->status = "fewer than 2 eigenvalues"; return; }
    an_mp_fit(out->evals, out->n_evals, out->law, out->q, out->n_evals, &out->mp);
    an_powerlaw_fit(out->evals, out->n_evals, &out->pl);
}

/* The pooled shuffled ESD (replicas × n_evals values in ws->rand) → its MP fit and max. */
static void fit_null(an_spectrum *out, an_spectra_ws *ws, int n) {
    double *r = ws->rand;
    if (out->replicas > 1) qsort(r, (size_t)n, sizeof *r, cmp_double);
    out->rand_lambda_max = r[n - 1];
    an_mp_fit(r, n, out->law, out->q, out->n_evals, &out->rand_mp);
    for (int i = 0; i < out->n_evals; i++) if (out->evals[i] > out->rand_lambda_max) out->num_above_rand_max++;
}

static void spectrum_begin(an_spectrum *out, an_spectra_ws *ws) {
    memset(out, 0, sizeof *out);
    out->status = "ok";
    ws->lapack_error = NULL;
}

void an_spectrum_single(an_spectra_ws *ws, const float *w, int rows, int cols, bool null, uint64_t seed, an_spectrum *out) {
    HS_ASSERT(rows >= 1 && cols >= 1);
    spectrum_begin(out, ws);
    out->N = rows > cols ? rows : cols;
    out->M = rows > cols ? cols : rows;
    out->q = (double)out->N / out->M;
    out->law = out->N == out->M ? AN_LAW_QC : AN_LAW_MP;
    out->rank_bound = out->M;
    size_t n = (size_t)rows * cols;
    if (!all_finite(w, n)) { out->status = "non-finite weights"; return; }
    GROW(ws, evals, out->M);
    if (!esd_single(ws, w, rows, cols, ws->evals)) { out->status = ws->lapack_error; return; }
    out->evals = ws->evals;
    out->n_evals = out->M;
    fit_esd(out);
    if (!null || strcmp(out->status, "ok") != 0) return;
    out->replicas = out->M < SMALL_ESD ? SMALL_REPLICAS : 1;
    GROW(ws, sa, n); GROW(ws, rand, (size_t)out->replicas * out->M);
    uint64_t st = seed;
    for (int rep = 0; rep < out->replicas; rep++) {
        memcpy(ws->sa, w, n * sizeof *w);
        shuffle(ws->sa, n, &st);
        if (!esd_single_f32(ws, ws->sa, rows, cols, ws->rand + (size_t)rep * out->M)) { out->status = ws->lapack_error; return; }
    }
    fit_null(out, ws, out->replicas * out->M);
}

void an_spectrum_product(an_spectra_ws *ws, const float *a, const float *b, int D, int r, int group, int blk,
                         bool null, uint64_t seed, an_spectrum *out) {
    HS_ASSERT(D >= 1 && r >= 1 && group >= 1 && blk >= 1 && r % blk == 0);
    spectrum_begin(out, ws);
    int k = D < r ? D : r;
    out->N = out->M = D;
    out->rank_bound = k;
    out->q = (double)D / k;   /* r > D: the c = 1 law (an approximation; no supported model has r > D) */
    out->law = AN_LAW_FP;
    size_t na = (size_t)D * r * group, nb = (size_t)D * r;
    if (!all_finite(a, na) || !all_finite(b, nb)) { out->status = "non-finite weights"; return; }
    GROW(ws, evals, k);
    if (!esd_product(ws, a, b, D, r, group, blk, ws->evals)) { out->status = ws->lapack_error; return; }
    out->evals = ws->evals;
    out->n_evals = k;
    fit_esd(out);
    if (!null || strcmp(out->status, "ok") != 0) return;
    out->replicas = k < SMALL_ESD ? SMALL_REPLICAS : 1;
    GROW(ws, sa, na); GROW(ws, sb, nb); GROW(ws, rand, (size_t)out->replicas * k);
    uint64_t st = seed;
    for (int rep = 0; rep < out->replicas; rep++) {
        memcpy(ws->sa, a, na * sizeof *a);
        memcpy(ws->sb, b, nb * sizeof *b);
        shuffle(ws->sa, na, &st);
        shuffle(ws->sb, nb, &st);
        if (!esd_product_f32(ws, ws->sa, ws->sb, D, r, group, blk, ws->rand + (size_t)rep * k)) { out->status = ws->lapack_error; return; }
    }
    fit_null(out, ws, out->replicas * k);
}

/* ---- report entries --------------------------------------------------------------------------- */

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }
static void add_num(cJSON *o, const char *k, double v) { cJSON_AddItemToObject(o, k, num_or_null(v)); }

/* The element-scale σ: λ ∝ σ² for MP/QC (σ is the entries' standard deviation); for FP λ = D·(σ_a σ_b)²·ξ,
 * reported as the geometric mean √(σ_a σ_b) of the two factors' entry scales. */
static double sigma_elements(const an_spectrum *s, const an_mp_fit_result *f) {
    if (!f->fitted) return NAN;
    if (s->law == AN_LAW_FP) return pow(pow(f->sigma, 4) / (f->wscale2 * s->N), 0.25);
    return f->sigma / sqrt(f->wscale2);
}

cJSON *an_spectrum_json(const an_spectrum *s, const char *name, int layer, int head, int bins) {
    HS_ASSERT(bins >= 1);
    cJSON *o = cJSON_CreateObject();
    bool ok = strcmp(s->status, "ok") == 0, fit = ok && s->mp.fitted;
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "layer", layer);
    if (head >= 0) cJSON_AddNumberToObject(o, "head", head); else cJSON_AddNullToObject(o, "head");
    int shape[2] = { s->N, s->M };
    cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shape, 2));
    cJSON_AddStringToObject(o, "status", s->status);
    cJSON_AddStringToObject(o, "law", an_law_name(s->law));
    add_num(o, "q", s->q);
    cJSON_AddNumberToObject(o, "rank_bound", s->rank_bound);
    cJSON_AddNumberToObject(o, "n_evals", s->n_evals);
    cJSON_AddNumberToObject(o, "num_spikes", fit ? s->mp.num_spikes : 0);
    add_num(o, "sigma_mp", fit ? sigma_elements(s, &s->mp) : NAN);
    add_num(o, "sigma_mp_rescaled", fit ? s->mp.sigma : NAN);
    add_num(o, "lambda_plus", fit ? s->mp.lambda_plus : NAN);
    add_num(o, "lambda_minus", fit ? s->mp.lambda_minus : NAN);
    add_num(o, "spike_threshold", fit ? (s->mp.lambda_plus * s->mp.wscale2 + s->mp.tw_margin) / s->mp.wscale2 : NAN);
    add_num(o, "lambda_max", s->n_evals ? s->norms.lambda_max : NAN);
    add_num(o, "mp_softrank", fit ? s->mp.mp_softrank : NAN);
    cJSON_AddBoolToObject(o, "mp_fit_rejected", fit && s->mp.all_rejected);
    add_num(o, "stable_rank", ok ? s->norms.stable_rank : NAN);
    add_num(o, "entropy", ok ? s->norms.entropy : NAN);
    cJSON_AddNumberToObject(o, "hard_rank", s->norms.hard_rank);
    bool pl = ok && s->pl.fitted;
    add_num(o, "alpha", pl ? s->pl.alpha : NAN);
    add_num(o, "alpha_xmin", pl ? s->pl.xmin : NAN);
    add_num(o, "alpha_ks_d", pl ? s->pl.D : NAN);
    add_num(o, "alpha_sigma", pl ? s->pl.sigma : NAN);
    cJSON_AddNumberToObject(o, "alpha_n_tail", pl ? s->pl.n_tail : 0);
    /* WeightWatcher's reading of α: < 2 over-trained, > 6 under-trained, > 8 not a power law at all */
    const char *aw = !pl ? NULL : s->pl.alpha > 8 ? "spurious" : s->pl.alpha > 6 ? "under-trained" : s->pl.alpha < 2 ? "over-trained" : NULL;
    if (aw) cJSON_AddStringToObject(o, "alpha_warning", aw); else cJSON_AddNullToObject(o, "alpha_warning");
    bool rnd = ok && s->replicas > 0 && s->rand_mp.fitted;
    cJSON_AddNumberToObject(o, "rand_num_spikes", rnd ? s->rand_mp.num_spikes : 0);
    cJSON_AddNumberToObject(o, "rand_replicas", s->replicas);
    add_num(o, "rand_sigma_mp", rnd ? sigma_elements(s, &s->rand_mp) : NAN);
    add_num(o, "rand_lambda_plus", rnd ? s->rand_mp.lambda_plus : NAN);
    add_num(o, "rand_lambda_max", ok && s->replicas > 0 ? s->rand_lambda_max : NAN);
    cJSON_AddNumberToObject(o, "num_above_rand_max", ok && s->replicas > 0 ? s->num_above_rand_max : 0);

    /* the ESD itself, largest first, then its histogram and the fitted density (same units) */
    cJSON *esd = cJSON_AddArrayToObject(o, "esd");
    for (int i = s->n_evals - 1; i >= 0; i--) cJSON_AddItemToArray(esd, num_or_null(s->evals[i]));
    cJSON *hist = cJSON_AddObjectToObject(o, "hist"), *edges = cJSON_AddArrayToObject(hist, "edges"),
          *counts = cJSON_AddArrayToObject(hist, "counts");
    if (s->n_evals > 0) {
        double lo = s->evals[0], hi = s->evals[s->n_evals - 1];
        if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }   /* numpy.histogram's rule for a constant sample */
        int *c = hs_xcalloc((size_t)bins, sizeof *c);
        for (int i = 0; i < s->n_evals; i++) {
            int b = (int)((s->evals[i] - lo) / (hi - lo) * bins);
            c[b < 0 ? 0 : b >= bins ? bins - 1 : b]++;   /* last bin closed, as numpy */
        }
        for (int i = 0; i <= bins; i++) cJSON_AddItemToArray(edges, cJSON_CreateNumber(lo + (hi - lo) * i / bins));
        for (int i = 0; i < bins; i++) cJSON_AddItemToArray(counts, cJSON_CreateNumber(c[i]));
        free(c);
    }
    cJSON *dens = cJSON_AddObjectToObject(o, "mp_density"), *dx = cJSON_AddArrayToObject(dens, "x"),
          *dy = cJSON_AddArrayToObject(dens, "y");
    if (fit) {
        /* midpoints of [λ−, λ+]: the Q = 1 and c = 1 laws diverge at 0, so the endpoint is never sampled */
        double w2 = s->mp.wscale2, lo = s->mp.lambda_minus, hi = s->mp.lambda_plus;
        for (int i = 0; i < DENSITY_POINTS; i++) {
            double x = lo + (hi - lo) * (i + 0.5) / DENSITY_POINTS;
            cJSON_AddItemToArray(dx, cJSON_CreateNumber(x));
            cJSON_AddItemToArray(dy, num_or_null(w2 * an_law_pdf(s->law, s->q, s->mp.sigma, x * w2)));
        }
    }
    return o;
}

/* ---- the pass ---------------------------------------------------------------------------------- */

enum { NM_Q, NM_K, NM_V, NM_O, NM_QK, NM_OV, NM_IN, NM_GATE, NM_OUT, NM_COUNT };
static const char *const k_names[NM_COUNT] = { "W_Q", "W_K", "W_V", "W_O", "W_QK", "W_OV", "W_in", "W_gate", "W_out" };

typedef struct {
    int n, n_spiked, n_traps, n_alpha;
    double sum_alpha, sum_softrank, sum_stable_rank;
    int n_softrank;
} name_stats;

typedef struct {
    an_spectra_ws *ws;
    const an_spectra_params *p;
    cJSON *matrices;
    name_stats stats[2][NM_COUNT];   /* [per layer, per head][name] */
    int n_matrices, n_not_fitted;
} pass_state;

static void record(pass_state *st, const an_spectrum *s, int name, int layer, int head) {
    cJSON_AddItemToArray(st->matrices, an_spectrum_json(s, k_names[name], layer, head, st->p->bins));
    name_stats *ns = &st->stats[head >= 0][name];
    bool ok = strcmp(s->status, "ok") == 0;
    st->n_matrices++;
    ns->n++;
    if (!ok || !s->mp.fitted) { st->n_not_fitted++; return; }
    if (s->mp.num_spikes > 0) ns->n_spiked++;
    if (s->rand_mp.fitted && s->rand_mp.num_spikes > 0) ns->n_traps++;
    if (s->pl.fitted && s->pl.alpha <= 8) { ns->n_alpha++; ns->sum_alpha += s->pl.alpha; }   /* WeightWatcher discards α > 8 */
    ns->n_softrank++; ns->sum_softrank += s->mp.mp_softrank; ns->sum_stable_rank += s->norms.stable_rank;
}

/* A linear map's weight as stored: (n_in, n_out) for GPT-2's Conv1D, (n_out, n_in) for nn.Linear. No
 * transpose copy is needed: W and Wᵀ have the same ESD, and shuffling ignores the layout. */
static const float *linear_rows(const rt_linear *lin, int *rows, int *cols) {
    *rows = lin->in_major ? lin->n_in : lin->n_out;
    *cols = lin->in_major ? lin->n_out : lin->n_in;
    return lin->w;
}

static void summary(pass_state *st, cJSON *root) {
    cJSON *s = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(s, "n_matrices", st->n_matrices);
    cJSON_AddNumberToObject(s, "n_not_fitted", st->n_not_fitted);
    int spiked = 0, traps = 0;
    cJSON *by = cJSON_AddObjectToObject(s, "by_name");
    for (int nm = 0; nm < NM_COUNT; nm++) {
        cJSON *e = NULL;
        for (int lvl = 0; lvl < 2; lvl++) {
            const name_stats *ns = &st->stats[lvl][nm];
            spiked += ns->n_spiked; traps += ns->n_traps;
            if (!ns->n) continue;
            if (!e) e = cJSON_AddObjectToObject(by, k_names[nm]);
            cJSON *l = cJSON_AddObjectToObject(e, lvl ? "per_head" : "per_layer");
            cJSON_AddNumberToObject(l, "n", ns->n);
            cJSON_AddNumberToObject(l, "n_with_spikes", ns->n_spiked);
            cJSON_AddNumberToObject(l, "n_correlation_traps", ns->n_traps);
            add_num(l, "mean_alpha", ns->n_alpha ? ns->sum_alpha / ns->n_alpha : NAN);
            cJSON_AddNumberToObject(l, "n_alpha", ns->n_alpha);
            add_num(l, "mean_mp_softrank", ns->n_softrank ? ns->sum_softrank / ns->n_softrank : NAN);
            add_num(l, "mean_stable_rank", ns->n_softrank ? ns->sum_stable_rank / ns->n_softrank : NAN);
        }
    }
    cJSON_AddNumberToObject(s, "n_with_spikes", spiked);
    cJSON_AddNumberToObject(s, "n_correlation_traps", traps);
    /* the ten matrices whose top eigenvalue stands furthest above their bulk edge */
    int n = cJSON_GetArraySize(st->matrices), *order = hs_xmalloc((size_t)(n ? n : 1) * sizeof *order), k = 0;
    double *score = hs_xmalloc((size_t)(n ? n : 1) * sizeof *score);
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(st->matrices, i);
        const cJSON *lp = cJSON_GetObjectItem(m, "lambda_plus"), *lm = cJSON_GetObjectItem(m, "lambda_max");
        int spikes = cJSON_GetObjectItem(m, "num_spikes")->valueint;
        score[i] = cJSON_IsNumber(lp) && cJSON_IsNumber(lm) && lp->valuedouble > 0 && spikes > 0 ? lm->valuedouble / lp->valuedouble : NAN;
        if (!isnan(score[i])) order[k++] = i;
    }
    for (int i = 1; i < k; i++) {   /* insertion sort, descending; ties keep report order */
        int v = order[i], j = i - 1;
        while (j >= 0 && score[order[j]] < score[v]) { order[j + 1] = order[j]; j--; }
        order[j + 1] = v;
    }
    cJSON *top = cJSON_AddArrayToObject(s, "top_spiked");
    for (int i = 0; i < k && i < 10; i++) {
        const cJSON *m = cJSON_GetArrayItem(st->matrices, order[i]);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", cJSON_GetObjectItem(m, "name")->valuestring);
        cJSON_AddNumberToObject(e, "layer", cJSON_GetObjectItem(m, "layer")->valueint);
        const cJSON *h = cJSON_GetObjectItem(m, "head");
        if (cJSON_IsNumber(h)) cJSON_AddNumberToObject(e, "head", h->valueint); else cJSON_AddNullToObject(e, "head");
        cJSON_AddNumberToObject(e, "num_spikes", cJSON_GetObjectItem(m, "num_spikes")->valueint);
        cJSON_AddNumberToObject(e, "lambda_max_over_lambda_plus", score[order[i]]);
        cJSON_AddItemToArray(top, e);
    }
    free(order); free(score);
}

hs_status an_spectra_run(an_ctx *ctx, const an_spectra_params *p, const char *out_path) {
    if (p->bins < 1 || p->bins > 100000) {
        hs_log_error("analyze", "spectra: --bins %d is out of range (1..100000) — pick a histogram size like 100", p->bins);
        return HS_EBADINPUT;
    }
    const rt_model *m = ctx->m;
    const rt_config *c = &m->cfg;
    int L = c->n_layers, H = c->n_heads, KV = c->n_kv_heads, D = c->d_model, HD = c->d_head, G = H / KV;
    HS_ASSERT(KV >= 1 && H % KV == 0);

    cJSON *params = cJSON_CreateObject();
    cJSON_AddNumberToObject(params, "bins", p->bins);
    cJSON_AddBoolToObject(params, "heads", p->heads);
    cJSON_AddNumberToObject(params, "seed", (double)p->seed);
    cJSON_AddNumberToObject(params, "kde_bandwidth", 0.1);
    cJSON_AddStringToObject(params, "weights", "raw (no LayerNorm folding), biases ignored");
    cJSON_AddStringToObject(params, "esd", "eigenvalues of X = W^T W / N, N >= M");
    cJSON *root = an_report_begin(ctx, "spectra", params);

    pass_state st = { .ws = an_spectra_ws_init(), .p = p };
    st.matrices = cJSON_AddArrayToObject(root, "matrices");
    an_mat *hq = hs_xcalloc((size_t)H * 4, sizeof *hq), *hk = hq + H, *hv = hq + 2 * H, *ho = hq + 3 * H;
    float *wq = hs_xmalloc((size_t)D * H * HD * sizeof *wq);    /* (D, H·HD)   layer W_Q, heads side by side */
    float *wk = hs_xmalloc((size_t)D * KV * HD * sizeof *wk);   /* (D, KV·HD)  layer W_K */
    float *wv = hs_xmalloc((size_t)D * KV * HD * sizeof *wv);   /* (D, KV·HD)  layer W_V */
    float *wo = hs_xmalloc((size_t)H * HD * D * sizeof *wo);    /* (H·HD, D)   layer W_O */
    float *ot = hs_xmalloc((size_t)D * HD * sizeof *ot);        /* (D, HD)     W_O^hᵀ */
    an_spectrum s;
    for (int l = 0; l < L; l++) {
        double t0 = an_now();
        for (int h = 0; h < H; h++) {
            an_head_matrix(m, l, h, AN_W_Q, &hq[h]); an_head_matrix(m, l, h, AN_W_K, &hk[h]);
            an_head_matrix(m, l, h, AN_W_V, &hv[h]); an_head_matrix(m, l, h, AN_W_O, &ho[h]);
            for (int i = 0; i < D; i++) memcpy(wq + (size_t)i * H * HD + (size_t)h * HD, hq[h].w + (size_t)i * HD, (size_t)HD * sizeof *wq);
            memcpy(wo + (size_t)h * HD * D, ho[h].w, (size_t)HD * D * sizeof *wo);
            if (h % G == 0)   /* the KV head's K and V, once */
                for (int i = 0; i < D; i++) {
                    memcpy(wk + (size_t)i * KV * HD + (size_t)(h / G) * HD, hk[h].w + (size_t)i * HD, (size_t)HD * sizeof *wk);
                    memcpy(wv + (size_t)i * KV * HD + (size_t)(h / G) * HD, hv[h].w + (size_t)i * HD, (size_t)HD * sizeof *wv);
                }
        }
        an_spectrum_single(st.ws, wq, D, H * HD, true, matrix_seed(p->seed, l, -1, NM_Q), &s);   record(&st, &s, NM_Q, l, -1);
        an_spectrum_single(st.ws, wk, D, KV * HD, true, matrix_seed(p->seed, l, -1, NM_K), &s);  record(&st, &s, NM_K, l, -1);
        an_spectrum_single(st.ws, wv, D, KV * HD, true, matrix_seed(p->seed, l, -1, NM_V), &s);  record(&st, &s, NM_V, l, -1);
        an_spectrum_single(st.ws, wo, H * HD, D, true, matrix_seed(p->seed, l, -1, NM_O), &s);   record(&st, &s, NM_O, l, -1);
        /* the layer's W_Q·W_Kᵀ with K expanded to the query heads = (W_Q summed over each KV group)·W_Kᵀ */
        an_spectrum_product(st.ws, wq, wk, D, KV * HD, G, HD, true, matrix_seed(p->seed, l, -1, NM_QK), &s);
        record(&st, &s, NM_QK, l, -1);
        const rt_layer *ly = &m->layers[l];
        const struct { const rt_linear *lin; int name; } mlp[3] = { { &ly->up, NM_IN }, { &ly->gate, NM_GATE }, { &ly->down, NM_OUT } };
        for (int i = 0; i < 3; i++) {
            if (!mlp[i].lin->w) continue;   /* gpt2 has no gate */
            int rows, cols;
            const float *w = linear_rows(mlp[i].lin, &rows, &cols);
            an_spectrum_single(st.ws, w, rows, cols, true, matrix_seed(p->seed, l, -1, mlp[i].name), &s);
            record(&st, &s, mlp[i].name, l, -1);
        }
        if (p->heads)
            for (int h = 0; h < H; h++) {
                /* K-side matrices are keyed by the KV head: GQA siblings get identical nulls */
                an_spectrum_single(st.ws, hq[h].w, D, HD, true, matrix_seed(p->seed, l, h, NM_Q), &s);      record(&st, &s, NM_Q, l, h);
                an_spectrum_single(st.ws, hk[h].w, D, HD, true, matrix_seed(p->seed, l, h / G, NM_K), &s); record(&st, &s, NM_K, l, h);
                an_spectrum_product(st.ws, hq[h].w, hk[h].w, D, HD, 1, HD, true, matrix_seed(p->seed, l, h, NM_QK), &s);
                record(&st, &s, NM_QK, l, h);
                for (int i = 0; i < HD; i++)
                    for (int j = 0; j < D; j++) ot[(size_t)j * HD + i] = ho[h].w[(size_t)i * D + j];
                an_spectrum_product(st.ws, hv[h].w, ot, D, HD, 1, HD, true, matrix_seed(p->seed, l, h, NM_OV), &s);
                record(&st, &s, NM_OV, l, h);
            }
        for (int h = 0; h < 4 * H; h++) an_mat_free(&hq[h]);
        hs_log_info("spectra", "layer %d/%d done (%.2f s)", l + 1, L, an_now() - t0);
    }
    free(hq); free(wq); free(wk); free(wv); free(wo); free(ot);
    an_spectra_ws_free(st.ws);
    summary(&st, root);
    return an_report_finish(ctx, root, out_path);
}
