/* lowrank.c — factored SVD of a product A·B, collapsed factors, stable and effective rank
 * (see lowrank.h). LAPACK runs column-major through the *_work entry points: the row-major
 * LAPACKE wrappers transpose into fresh buffers and the plain ones allocate workspace, and this
 * code is called once per head (and per null sample). */
#include "lowrank.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct an_lowrank {
    int max_mn, max_r;
    double *qa;          /* (max_mn, max_r) col-major: A, then its Householder QR */
    double *qb;          /* (max_mn, max_r) col-major: Bᵀ, then its QR */
    double *tau_a, *tau_b;   /* (max_r) */
    double *ra, *rb;     /* (max_r, max_r) the R factors, zero below the diagonal */
    double *mm;          /* (max_r, max_r) R_a·R_bᵀ (dgesdd overwrites it) */
    double *us, *vt;     /* (max_r, max_r) its singular vectors */
    double *work;        /* (lwork) shared by dgeqrf, dormqr, dgesdd */
    lapack_int lwork;
    lapack_int *iwork;   /* (8 max_r) dgesdd */
};

static lapack_int query_max(lapack_int a, double q) { lapack_int b = (lapack_int)q; return a > b ? a : b; }

an_lowrank *an_lowrank_init(int max_mn, int max_r) {
    HS_ASSERT(max_mn > 0 && max_r > 0);
    an_lowrank *w = hs_xcalloc(1, sizeof *w);
    w->max_mn = max_mn; w->max_r = max_r;
    size_t big = (size_t)max_mn * max_r, small = (size_t)max_r * max_r;
    w->qa = hs_xmalloc(big * sizeof(double));
    w->qb = hs_xmalloc(big * sizeof(double));
    w->tau_a = hs_xmalloc((size_t)max_r * sizeof(double));
    w->tau_b = hs_xmalloc((size_t)max_r * sizeof(double));
    w->ra = hs_xmalloc(small * sizeof(double));
    w->rb = hs_xmalloc(small * sizeof(double));
    w->mm = hs_xmalloc(small * sizeof(double));
    w->us = hs_xmalloc(small * sizeof(double));
    w->vt = hs_xmalloc(small * sizeof(double));
    w->iwork = hs_xmalloc((size_t)8 * max_r * sizeof(lapack_int));
    /* workspace queries at the largest shapes: LAPACK's optimal lwork grows with every dimension */
    double q = 0;
    lapack_int lw = 1, k = max_mn < max_r ? max_mn : max_r;
    if (LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, max_mn, max_r, w->qa, max_mn, w->tau_a, &q, -1) == 0) lw = query_max(lw, q);
    if (LAPACKE_dormqr_work(LAPACK_COL_MAJOR, 'L', 'N', max_mn, max_r, k, w->qa, max_mn, w->tau_a, w->qb, max_mn, &q, -1) == 0)
        lw = query_max(lw, q);
    if (LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', max_r, max_r, w->mm, max_r, w->tau_a, w->us, max_r, w->vt, max_r,
                            &q, -1, w->iwork) == 0)
        lw = query_max(lw, q);
    w->lwork = lw;
    w->work = hs_xmalloc((size_t)lw * sizeof(double));
    return w;
}

void an_lowrank_free(an_lowrank *w) {
    if (!w) return;
    free(w->qa); free(w->qb); free(w->tau_a); free(w->tau_b); free(w->ra); free(w->rb);
    free(w->mm); free(w->us); free(w->vt); free(w->work); free(w->iwork);
    free(w);
}

/* dst (rows, cols) col-major, leading dimension rows, = the view; false on a non-finite value. */
static bool load_colmajor(double *dst, an_view a) {
    bool finite = true;
    for (int j = 0; j < a.cols; j++) {
        double *d = dst + (size_t)j * a.rows;
        const float *s = a.p + (ptrdiff_t)j * a.cs;
        for (int i = 0; i < a.rows; i++) {
            float x = s[(ptrdiff_t)i * a.rs];
            finite &= isfinite(x) != 0;
            d[i] = x;
        }
    }
    return finite;
}

/* R (kr, r) col-major, leading dimension kr, from the upper triangle of a factored (rows, r) QR. */
static void take_r(double *R, const double *qr, int rows, int r, int kr) {
    for (int j = 0; j < r; j++)
        for (int i = 0; i < kr; i++) R[i + (size_t)j * kr] = i <= j ? qr[i + (size_t)j * rows] : 0.0;
}

int an_lowrank_svd(an_lowrank *w, an_view A, an_view B, double *s, int nv, double *u, double *v) {
    int m = A.rows, r = A.cols, n = B.cols;
    HS_ASSERT(B.rows == r && m <= w->max_mn && n <= w->max_mn && r <= w->max_r && m > 0 && n > 0 && r > 0);
    int ka = m < r ? m : r, kb = n < r ? n : r, k = ka < kb ? ka : kb;
    HS_ASSERT(nv >= 0 && nv <= k);
    if (!load_colmajor(w->qa, A) || !load_colmajor(w->qb, an_view_tr(B))) return -1;
    lapack_int info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, m, r, w->qa, m, w->tau_a, w->work, w->lwork);
    HS_ASSERT(info == 0);   /* dgeqrf only fails on bad arguments */
    info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, n, r, w->qb, n, w->tau_b, w->work, w->lwork);
    HS_ASSERT(info == 0);
    take_r(w->ra, w->qa, m, r, ka);
    take_r(w->rb, w->qb, n, r, kb);
    /* mm (ka, kb) = R_a·R_bᵀ: the product restricted to the two row spaces */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, ka, kb, r, 1.0, w->ra, ka, w->rb, kb, 0.0, w->mm, ka);
    info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', ka, kb, w->mm, ka, s, w->us, ka, w->vt, k, w->work, w->lwork,
                               w->iwork);
    HS_ASSERT(info >= 0);
    if (info > 0) return -2;
    if (nv > 0 && u) {   /* u = Q_a·[U_s(:, :nv); 0] */
        memset(u, 0, (size_t)m * nv * sizeof(double));
        for (int j = 0; j < nv; j++) memcpy(u + (size_t)j * m, w->us + (size_t)j * ka, (size_t)ka * sizeof(double));
        info = LAPACKE_dormqr_work(LAPACK_COL_MAJOR, 'L', 'N', m, nv, ka, w->qa, m, w->tau_a, u, m, w->work, w->lwork);
        HS_ASSERT(info == 0);
    }
    if (nv > 0 && v) {   /* v = Q_b·[V_s(:, :nv); 0], V_s = vtᵀ */
        memset(v, 0, (size_t)n * nv * sizeof(double));
        for (int j = 0; j < nv; j++)
            for (int i = 0; i < kb; i++) v[i + (size_t)j * n] = w->vt[j + (size_t)i * k];
        info = LAPACKE_dormqr_work(LAPACK_COL_MAJOR, 'L', 'N', n, nv, kb, w->qb, n, w->tau_b, v, n, w->work, w->lwork);
        HS_ASSERT(info == 0);
    }
    return k;
}

int an_lowrank_collapse_r(an_lowrank *w, an_view A, an_view B, float *c, int ldc) {
    int m = A.rows, r = A.cols, n = B.cols;
    HS_ASSERT(B.rows == r && m <= w->max_mn && n <= w->max_mn && r <= w->max_r && m > 0 && n > 0 && r > 0);
    int kb = n < r ? n : r;
    HS_ASSERT(ldc >= kb);
    if (!load_colmajor(w->qa, A) || !load_colmajor(w->qb, an_view_tr(B))) return -1;
    lapack_int info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, n, r, w->qb, n, w->tau_b, w->work, w->lwork);
    HS_ASSERT(info == 0);
    take_r(w->rb, w->qb, n, r, kb);
    /* C = A·R_bᵀ (m, kb), accumulated in double; qb is free again and holds it col-major */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, m, kb, r, 1.0, w->qa, m, w->rb, kb, 0.0, w->qb, m);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < kb; j++) c[(size_t)i * ldc + j] = (float)w->qb[i + (size_t)j * m];
    return kb;
}

int an_blas_serial_begin(void) {
    int prev = openblas_get_num_threads();
    if (prev > 1) openblas_set_num_threads(1);
    return prev;
}

void an_blas_serial_end(int prev_threads) {
    if (prev_threads > 1) openblas_set_num_threads(prev_threads);
}

double an_stable_rank(const double *s, int k) {
    double mx = 0, ss = 0;
    for (int i = 0; i < k; i++) { ss += s[i] * s[i]; if (s[i] > mx) mx = s[i]; }
    return mx > 0 ? ss / (mx * mx) : 0.0;
}

double an_effective_rank(const double *s, int k) {
    double sum = 0, h = 0;
    for (int i = 0; i < k; i++) sum += s[i];
    if (!(sum > 0)) return 0.0;
    for (int i = 0; i < k; i++) {
        double p = s[i] / sum;
        if (p > 0) h -= p * log(p);
    }
    return exp(h);
}
