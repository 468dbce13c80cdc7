/* test_spectra.c — the spectra pass against planted truth and independent computations.
 *
 * 1. Marchenko–Pastur fit: Gaussian matrices of three aspect ratios (Q = 4, 2, 1, and a wide one) with
 *    known σ: fitted σ within 3 % and 0 spikes; planted rank-k spikes (k = 1..4) above the BBP
 *    threshold: exactly k spikes; their shuffled null: 0 spikes; a single huge entry (a correlation
 *    trap): a spike that survives shuffling.
 * 2. ESDs a second way: LAPACKE_dgesdd singular values² / N against the Gram/dsyevd path, for tall and
 *    wide matrices, and a dense D×D product (with GQA expansion) against the factored W_QK path.
 * 3. Laws: MP, quarter circle and the free product integrate to 1 with mean σ² (1 for FP); the c = 1
 *    product edge is 27/4; the free-product density matches a simulated product's histogram (KS).
 * 4. Power law: α and xmin recovered on Pareto samples, with and without a non-power-law body.
 * 5. Degenerate matrices: zero, one column, NaN, a rank-6 factor — no crash, a status, a valid entry.
 * 6. Reports on the planted model and the three shared models validate against
 *    docs/report.schema.json; the planted filler heads (i.i.d. N(0, 0.02²)) have σ ≈ 0.02 and no
 *    spikes; the copying head's OV (identity through a centring matrix) has hard rank 63.
 * 7. CLI: bad input exits 2 with exactly one stderr line.
 */
#include "testlib.h"
#include "fixture.h"
#include "analysis/json_schema.h"
#include "analysis/spectra.h"
#include "datasets/plant.h"
#include <cblas.h>
#include <fcntl.h>
#include <lapacke.h>
#include <sys/wait.h>
#include <unistd.h>

static cJSON *g_schema;

/* ---- an independent generator (xorshift64* + Box–Muller), not the pass's splitmix64 ---- */
static uint64_t g_rng = 88172645463325252ULL;
static double urand(void) {
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return ((g_rng * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0) + 1e-300;
}
static double nrand(void) { return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()); }
static float *gaussian(int rows, int cols, double sigma) {
    float *w = hs_xmalloc((size_t)rows * cols * sizeof *w);
    for (size_t i = 0; i < (size_t)rows * cols; i++) w[i] = (float)(sigma * nrand());
    return w;
}

/* ---- 1. MP fit ---- */
static void test_gaussian(an_spectra_ws *ws) {
    const struct { int rows, cols; double sigma; } cases[] = {
        { 1000, 250, 0.02 }, { 800, 400, 1.0 }, { 512, 512, 3.0 }, { 300, 900, 0.5 }, { 1000, 250, 7.0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *w = gaussian(cases[c].rows, cases[c].cols, cases[c].sigma);
        an_spectrum s;
        an_spectrum_single(ws, w, cases[c].rows, cases[c].cols, true, 1, &s);
        double sig = s.mp.sigma / sqrt(s.mp.wscale2), rel = fabs(sig / cases[c].sigma - 1);
        TL_CHECK(rel <= 0.03 && s.mp.num_spikes == 0 && s.rand_mp.num_spikes == 0 && !s.mp.all_rejected,
                 "Gaussian %dx%d (Q=%.2f, %s) sigma %.4g: fitted %.4g (%.2f%%, need <= 3%%), %d spikes (need 0), null %d spikes",
                 cases[c].rows, cases[c].cols, s.q, an_law_name(s.law), cases[c].sigma, sig, 100 * rel, s.mp.num_spikes, s.rand_mp.num_spikes);
        free(w);
    }
}

/* W = σ(G + Σ_i √ℓ_i z_i e_iᵀ): population covariance σ²(I + Σ ℓ_i e_i e_iᵀ). BBP: a spike separates
 * from the bulk when ℓ > 1/√Q, at λ = σ²(1 + ℓ)(1 + 1/(Qℓ)). */
static void test_spikes(an_spectra_ws *ws) {
    const int N = 1000, M = 250;
    const double sigma = 0.05, ell[4] = { 2.0, 3.5, 5.0, 8.0 };   /* threshold 1/√Q = 0.5 */
    for (int k = 1; k <= 4; k++) {
        float *w = gaussian(N, M, sigma);
        for (int i = 0; i < k; i++) {
            int col = 17 + 50 * i;
            for (int n = 0; n < N; n++) w[(size_t)n * M + col] += (float)(sigma * sqrt(ell[i]) * nrand());
        }
        an_spectrum s;
        an_spectrum_single(ws, w, N, M, true, 42, &s);
        TL_CHECK(s.mp.num_spikes == k, "planted rank-%d spikes (ell = 2, 3.5, 5, 8; BBP threshold 0.5) in 1000x250 noise: %d found (lambda_max %.4g, threshold %.4g)",
                 k, s.mp.num_spikes, s.norms.lambda_max, s.mp.lambda_plus + s.mp.tw_margin / s.mp.wscale2);
        TL_CHECK(s.rand_mp.num_spikes == 0 && s.replicas == 1,
                 "rank-%d spiked matrix: its shuffled null has %d spikes (need 0: shuffling destroys correlations)", k, s.rand_mp.num_spikes);
        TL_CHECK(s.num_above_rand_max >= k, "rank-%d spiked matrix: %d eigenvalues above the null's max (need >= %d)", k, s.num_above_rand_max, k);
        free(w);
    }
    /* a correlation trap: one entry 4σ√N makes a rank-1 spike λ ≈ 16σ² that shuffling keeps */
    float *w = gaussian(N, M, sigma);
    w[123 * M + 45] = (float)(4 * sigma * sqrt(N));
    an_spectrum s;
    an_spectrum_single(ws, w, N, M, true, 7, &s);
    TL_CHECK(s.mp.num_spikes == 1 && s.rand_mp.num_spikes == 1,
             "one huge entry (a correlation trap): %d spike, %d in the shuffled null (need 1 and 1)", s.mp.num_spikes, s.rand_mp.num_spikes);
    free(w);
}

/* ---- 2. ESDs two ways ---- */
static double *svd_sq(const double *m, int rows, int cols, int N) {   /* ascending σ²/N, all min(rows, cols) */
    int k = rows < cols ? rows : cols;
    double *a = hs_xmalloc((size_t)rows * cols * sizeof *a), *s = hs_xmalloc((size_t)k * sizeof *s);
    memcpy(a, m, (size_t)rows * cols * sizeof *a);
    int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', rows, cols, a, cols, s, NULL, cols, NULL, cols);
    HS_ASSERT(info == 0);
    double *e = hs_xmalloc((size_t)k * sizeof *e);
    for (int i = 0; i < k; i++) e[i] = s[k - 1 - i] * s[k - 1 - i] / N;
    free(a); free(s);
    return e;
}

static void test_esd_two_ways(an_spectra_ws *ws) {
    const int shapes[2][2] = { { 300, 120 }, { 90, 260 } };
    for (int c = 0; c < 2; c++) {
        int rows = shapes[c][0], cols = shapes[c][1], N = rows > cols ? rows : cols;
        float *w = gaussian(rows, cols, 0.3);
        for (int i = 0; i < rows; i++) w[(size_t)i * cols + i % cols] += 2.0f;   /* some structure */
        double *wd = hs_xmalloc((size_t)rows * cols * sizeof *wd);
        for (size_t i = 0; i < (size_t)rows * cols; i++) wd[i] = w[i];
        double *ref = svd_sq(wd, rows, cols, N);
        an_spectrum s;
        an_spectrum_single(ws, w, rows, cols, false, 0, &s);
        int k = rows < cols ? rows : cols;
        double err = 0;
        for (int i = 0; i < k; i++) err = fmax(err, fabs(s.evals[i] - ref[i]));
        TL_CHECK(s.n_evals == k && err <= 1e-10 * ref[k - 1],
                 "ESD of a %dx%d matrix: Gram+dsyevd vs dgesdd sigma^2/N, %d values, max |diff| %.2e (lambda_max %.3g, tol 1e-10 rel)",
                 rows, cols, k, err, ref[k - 1]);
        free(w); free(wd); free(ref);
    }
    /* products: Ā·Bᵀ with GQA groups against the dense D×D product with K expanded to query heads;
     * r < D/2 takes the thin-QR route, r ≥ D/2 the dense one */
    const int cfg[2][4] = { { 160, 8, 3, 2 }, { 60, 10, 4, 3 } };   /* D, blk, KV heads, query heads per KV head */
    for (int c = 0; c < 2; c++) {
        const int D = cfg[c][0], blk = cfg[c][1], kv = cfg[c][2], group = cfg[c][3], r = kv * blk;
        float *a = gaussian(D, r * group, 0.1), *b = gaussian(D, r, 0.2);
        double *p = hs_xcalloc((size_t)D * D, sizeof *p);
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                double acc = 0;
                for (int h = 0; h < kv * group; h++)      /* query head h uses KV head h / group */
                    for (int t = 0; t < blk; t++) acc += (double)a[(size_t)i * r * group + h * blk + t] * b[(size_t)j * r + (h / group) * blk + t];
                p[(size_t)i * D + j] = acc;
            }
        double *ref = svd_sq(p, D, D, D);
        an_spectrum s;
        an_spectrum_product(ws, a, b, D, r, group, blk, false, 0, &s);
        double err = 0, rest = 0;
        for (int i = 0; i < r; i++) err = fmax(err, fabs(s.evals[i] - ref[D - r + i]));
        for (int i = 0; i < D - r; i++) rest = fmax(rest, ref[i]);
        TL_CHECK(s.n_evals == r && s.law == AN_LAW_FP && err <= 1e-10 * ref[D - 1] && rest <= 1e-12 * ref[D - 1],
                 "W_QK (%s route, GQA %d query heads on %d KV heads, r = %d) vs dense %dx%d SVD: %d nonzero values, max |diff| %.2e, the other %d <= %.1e",
                 2 * r >= D ? "dense" : "thin-QR", kv * group, kv, r, D, D, r, err, D - r, rest);
        free(a); free(b); free(p); free(ref);
    }
}

/* ---- 3. laws ---- */
static void law_moments(an_law law, double q, double sigma, double *mass, double *mean) {
    double lo, hi;
    an_law_edges(law, q, sigma, &lo, &hi);
    /* x = lo + (hi − lo)·u³ puts points densely where the Q = 1 / c = 1 laws diverge at lo = 0 */
    const int n = 200000;
    *mass = *mean = 0;
    for (int i = 0; i < n; i++) {
        double u = (i + 0.5) / n, x = lo + (hi - lo) * u * u * u, dx = (hi - lo) * 3 * u * u / n;
        double f = an_law_pdf(law, q, sigma, x) * dx;
        *mass += f; *mean += x * f;
    }
}

static void test_laws(an_spectra_ws *ws) {
    const struct { an_law law; double q, sigma, mean; } cases[] = {
        { AN_LAW_MP, 4, 1.3, 1.69 }, { AN_LAW_MP, 1.5, 0.2, 0.04 }, { AN_LAW_QC, 1, 0.7, 0.49 },
        { AN_LAW_FP, 1, 1, 1 }, { AN_LAW_FP, 4, 1, 1 }, { AN_LAW_FP, 12, 1.1, pow(1.1, 4) }, { AN_LAW_FP, 64, 1, 1 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        double mass, mean;
        law_moments(cases[c].law, cases[c].q, cases[c].sigma, &mass, &mean);
        TL_CHECK(fabs(mass - 1) < 2e-3 && fabs(mean / cases[c].mean - 1) < 2e-3,
                 "%s q=%g sigma=%g: mass %.5f (1), mean %.5f (%.5f)", an_law_name(cases[c].law), cases[c].q, cases[c].sigma, mass, mean, cases[c].mean);
    }
    /* the interpolated table the fit uses against the exact density */
    const double cs[4] = { 1, 0.25, 1.0 / 12, 1.0 / 64 };
    for (int c = 0; c < 4; c++) {
        double lo, hi, err = 0, peak = 0;
        an_law_edges(AN_LAW_FP, 1 / cs[c], 1, &lo, &hi);
        for (int i = 0; i < 20000; i++) {
            double w = lo + (hi - lo) * (i + 0.37) / 20000, e = an_law_pdf(AN_LAW_FP, 1 / cs[c], 1, w);
            if (w > lo + 0.01 * (hi - lo)) peak = fmax(peak, e);
            err = fmax(err, fabs(an_fp_pdf_fast(cs[c], w) - e));
        }
        TL_CHECK(err <= 2e-4 * peak, "free-product density table (c = %.4g) vs Cardano: max |diff| %.2e (peak %.3f; tol 2e-4 of the peak)", cs[c], err, peak);
    }
    double lo, hi;
    an_law_edges(AN_LAW_FP, 1, 1, &lo, &hi);
    TL_CHECK(fabs(hi - 6.75) < 1e-12 && lo == 0, "free product at c = 1 is Fuss-Catalan on [0, 27/4]: [%g, %.12g]", lo, hi);

    /* the free-product law against a simulated product of Gaussian factors (asymptotic freeness) */
    const int D = 1600, r = 400;
    float *a = gaussian(D, r, 1.0), *b = gaussian(D, r, 1.0);
    an_spectrum s;
    an_spectrum_product(ws, a, b, D, r, 1, r, false, 0, &s);
    /* λ = D a² b² ξ over N = D → ξ = λ / D for unit-variance factors; KS against the law's CDF */
    double cdf = 0, ks = 0, x0 = 0, ql = 0, qh = 0;
    an_law_edges(AN_LAW_FP, (double)D / r, 1, &ql, &qh);
    const int steps = 20000;
    int j = 0;
    for (int i = 0; i < steps; i++) {
        double x1 = ql + (qh - ql) * (i + 1) / steps;
        cdf += an_law_pdf(AN_LAW_FP, (double)D / r, 1, 0.5 * (x0 + x1)) * (x1 - (i ? x0 : ql));
        x0 = x1;
        while (j < s.n_evals && s.evals[j] / D <= x1) j++;
        ks = fmax(ks, fabs(cdf - (double)j / s.n_evals));
    }
    TL_CHECK(ks < 0.03, "free product MP(c=1/4) density vs a simulated 1600x400 product's ESD: KS %.4f (< 0.03)", ks);
    an_spectrum_product(ws, a, b, D, r, 1, r, true, 3, &s);
    double sig = pow(pow(s.mp.sigma, 4) / (s.mp.wscale2 * D), 0.25);
    TL_CHECK(s.mp.num_spikes == 0 && fabs(sig - 1) < 0.03 && s.rand_mp.num_spikes == 0,
             "i.i.d. product 1600x400 factors: %d spikes, sigma sqrt(ab) %.4f (1 within 3%%), null %d spikes", s.mp.num_spikes, sig, s.rand_mp.num_spikes);
    /* a planted shared direction in both factors gives one spike in the product */
    for (int i = 0; i < D; i++) { double z = nrand(), z2 = nrand(); a[(size_t)i * r + 5] += (float)(3 * z); b[(size_t)i * r + 5] += (float)(3 * z2); }
    an_spectrum_product(ws, a, b, D, r, 1, r, true, 3, &s);
    TL_CHECK(s.mp.num_spikes == 1 && s.rand_mp.num_spikes == 0, "product with a planted direction (variance x10 in one column of each factor): %d spike (1), null %d (0)",
             s.mp.num_spikes, s.rand_mp.num_spikes);
    free(a); free(b);
}

/* ---- 4. power law ---- */
static int cmp_double(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static void test_powerlaw(void) {
    const int n = 3000;
    double *x = hs_xmalloc(n * sizeof *x);
    const double alphas[2] = { 2.5, 4.0 };
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < n; i++) x[i] = 0.7 * pow(urand(), -1 / (alphas[c] - 1));   /* Pareto, xm = 0.7 */
        qsort(x, n, sizeof *x, cmp_double);
        an_powerlaw_result pl;
        an_powerlaw_fit(x, n, &pl);
        TL_CHECK(pl.fitted && fabs(pl.alpha - alphas[c]) < 0.15, "Pareto sample (n=%d, alpha %.1f): fitted alpha %.3f +- %.3f, xmin %.3f, D %.4f, tail %d",
                 n, alphas[c], pl.alpha, pl.sigma, pl.xmin, pl.D, pl.n_tail);
    }
    /* a uniform body on [0.05, 1) under a Pareto tail from 1: the KS-optimal xmin finds the junction */
    for (int i = 0; i < n; i++) x[i] = i < n / 2 ? 0.05 + 0.95 * urand() : pow(urand(), -1 / 2.0);   /* tail alpha 3 */
    qsort(x, n, sizeof *x, cmp_double);
    an_powerlaw_result pl;
    an_powerlaw_fit(x, n, &pl);
    TL_CHECK(pl.fitted && fabs(pl.alpha - 3) < 0.25 && pl.xmin > 0.9 && pl.xmin < 1.4,
             "uniform body + Pareto tail (alpha 3 from x = 1): alpha %.3f, xmin %.3f (0.9..1.4), tail %d", pl.alpha, pl.xmin, pl.n_tail);
    free(x);
}

/* ---- 5. degenerate matrices ---- */
static bool entry_ok(const cJSON *e, const char *what) {
    /* validate one entry inside a minimal spectra report */
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "schema_version", 1);
    cJSON_AddStringToObject(r, "headscope_version", HS_VERSION);
    cJSON_AddStringToObject(r, "pass", "spectra");
    cJSON *m = cJSON_AddObjectToObject(r, "model");
    cJSON_AddStringToObject(m, "path", "x"); cJSON_AddStringToObject(m, "model_type", "gpt2");
    cJSON_AddStringToObject(m, "sha256", "0000000000000000000000000000000000000000000000000000000000000000");
    cJSON_AddNumberToObject(m, "n_layers", 1); cJSON_AddNumberToObject(m, "n_heads", 1);
    cJSON_AddObjectToObject(r, "params");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(r, "timing"), "seconds", 0);
    cJSON_AddObjectToObject(r, "summary");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "matrices"), cJSON_Duplicate(e, true));
    char err[512] = "";
    bool ok = an_schema_validate(g_schema, g_schema, r, err, sizeof err);
    if (!ok) printf("        %s: %s\n", what, err);
    cJSON_Delete(r);
    return ok;
}

static void test_degenerate(an_spectra_ws *ws) {
    float *z = hs_xcalloc(64 * 16, sizeof *z);
    an_spectrum s;
    an_spectrum_single(ws, z, 64, 16, true, 0, &s);
    cJSON *e = an_spectrum_json(&s, "W_Q", 0, 0, 10);
    TL_CHECK(strcmp(s.status, "zero matrix") == 0 && s.mp.num_spikes == 0 && entry_ok(e, "zero"),
             "zero 64x16 matrix: status '%s', valid report entry", s.status);
    cJSON_Delete(e);
    an_spectrum_product(ws, z, z, 64, 16, 1, 16, true, 0, &s);
    e = an_spectrum_json(&s, "W_QK", 0, 0, 10);
    TL_CHECK(strcmp(s.status, "zero matrix") == 0 && entry_ok(e, "zero product"), "zero factors of W_QK: status '%s', valid entry", s.status);
    cJSON_Delete(e);
    float *col = gaussian(50, 1, 1.0);
    an_spectrum_single(ws, col, 50, 1, true, 0, &s);
    e = an_spectrum_json(&s, "W_K", 0, 1, 10);
    TL_CHECK(strcmp(s.status, "fewer than 2 eigenvalues") == 0 && s.n_evals == 1 && entry_ok(e, "M=1"),
             "50x1 matrix (M = 1): status '%s', 1 eigenvalue, valid entry", s.status);
    cJSON_Delete(e);
    float *nan = gaussian(40, 20, 1.0);
    nan[77] = NAN;
    an_spectrum_single(ws, nan, 40, 20, true, 0, &s);
    e = an_spectrum_json(&s, "W_V", 0, -1, 10);
    TL_CHECK(strcmp(s.status, "non-finite weights") == 0 && s.n_evals == 0 && entry_ok(e, "NaN"),
             "matrix with a NaN: status '%s', valid entry", s.status);
    cJSON_Delete(e);
    float *two = gaussian(30, 2, 1.0);
    an_spectrum_single(ws, two, 30, 2, true, 0, &s);
    e = an_spectrum_json(&s, "W_O", 0, -1, 5);
    TL_CHECK(strcmp(s.status, "ok") == 0 && s.n_evals == 2 && s.replicas == 5 && entry_ok(e, "M=2"),
             "30x2 matrix (M = 2): status '%s', fitted=%d, 5 null replicas, valid entry", s.status, s.mp.fitted);
    cJSON_Delete(e);
    /* a factor with 6 nonzero entries: W_QK has rank 6, and the shuffled copies are singular too, so the
     * null's fp32 Cholesky fails and its QR route runs */
    float *sp = hs_xcalloc(200 * 20, sizeof *sp), *bb = gaussian(200, 20, 1.0);
    for (int i = 0; i < 6; i++) sp[(size_t)(31 * i) * 20 + i] = 1.0f + i;
    an_spectrum_product(ws, sp, bb, 200, 20, 1, 20, true, 5, &s);
    e = an_spectrum_json(&s, "W_QK", 0, 2, 10);
    TL_CHECK(strcmp(s.status, "ok") == 0 && s.norms.hard_rank == 6 && s.replicas == 5 && s.rand_lambda_max > 0 && entry_ok(e, "rank 6"),
             "W_QK with a 6-entry factor: hard rank %d (6), null over %d replicas (QR fallback) max %.3g, valid entry", s.norms.hard_rank,
             s.replicas, s.rand_lambda_max);
    cJSON_Delete(e);
    free(z); free(col); free(nan); free(two); free(sp); free(bb);
}

/* ---- 6. reports ---- */
static cJSON *run_report(const char *model, const char *out, bool heads) {
    an_ctx ctx;
    if (an_ctx_open_model(model, &ctx) != HS_OK) return NULL;
    an_spectra_params p;
    an_spectra_defaults(&p);
    p.heads = heads;
    hs_status rc = an_spectra_run(&ctx, &p, out);
    an_ctx_close(&ctx);
    return rc == HS_OK ? fx_load(out) : NULL;
}

static const cJSON *find(const cJSON *r, const char *name, int layer, int head) {
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(r, "matrices")) {
        const cJSON *h = cJSON_GetObjectItem(m, "head");
        if (strcmp(cJSON_GetObjectItem(m, "name")->valuestring, name) == 0 && cJSON_GetObjectItem(m, "layer")->valueint == layer &&
            (head < 0 ? cJSON_IsNull(h) : cJSON_IsNumber(h) && h->valueint == head)) return m;
    }
    return NULL;
}
static double num(const cJSON *m, const char *k) { const cJSON *v = cJSON_GetObjectItem(m, k); return cJSON_IsNumber(v) ? v->valuedouble : NAN; }

/* Structural checks every report passes: count, ESD length, histogram mass, density inside [λ−, λ+]. */
static void check_report(const cJSON *r, const char *what, int L, int H, int n_mlp, bool heads) {
    char err[512] = "";
    bool ok = an_schema_validate(g_schema, g_schema, r, err, sizeof err);
    TL_CHECK(ok, "%s: report validates against docs/report.schema.json%s%s", what, ok ? "" : " — ", err);
    const cJSON *ms = cJSON_GetObjectItem(r, "matrices"), *m;
    int n = cJSON_GetArraySize(ms), want = L * (5 + n_mlp) + (heads ? L * H * 4 : 0), bad = 0;
    cJSON_ArrayForEach(m, ms) {
        int ne = cJSON_GetObjectItem(m, "n_evals")->valueint, sum = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(cJSON_GetObjectItem(m, "hist"), "counts")) sum += c->valueint;
        if (cJSON_GetArraySize(cJSON_GetObjectItem(m, "esd")) != ne || sum != ne) bad++;
    }
    TL_CHECK(n == want && bad == 0, "%s: %d matrices (want %d), every ESD has n_evals values and its histogram counts them all (%d bad)",
             what, n, want, bad);
}

static void test_reports(const char *tmp) {
    char dir[600], out[600];
    snprintf(dir, sizeof dir, "%s/planted", tmp);
    snprintf(out, sizeof out, "%s/planted.json", tmp);
    if (ds_plant_write(dir, 3) != HS_OK) { tl_fail("plant the model"); return; }
    cJSON *r = run_report(dir, out, true);
    if (!r) { tl_fail("planted: spectra pass runs"); return; }
    check_report(r, "planted", DS_PLANT_LAYERS, DS_PLANT_HEADS, 2, true);
    /* fillers 0.0 0.2 0.3 1.1: W_Q^h, W_K^h i.i.d. N(0, 0.02²), 256x64 → MP with σ = 0.02, no spikes;
     * their W_QK^h is an i.i.d. product → free-product law with √(σ_a σ_b) = 0.02 */
    const int fill[4][2] = { { 0, 0 }, { 0, 2 }, { 0, 3 }, { 1, 1 } };
    int bad = 0;
    double worst = 0;
    for (int f = 0; f < 4; f++)
        for (int w = 0; w < 3; w++) {
            const cJSON *m = find(r, w == 0 ? "W_Q" : w == 1 ? "W_K" : "W_QK", fill[f][0], fill[f][1]);
            double e = m ? fabs(num(m, "sigma_mp") / 0.02 - 1) : 1;
            worst = fmax(worst, e);
            if (!m || num(m, "num_spikes") != 0 || e > 0.06) bad++;
        }
    TL_CHECK(bad == 0, "planted fillers: W_Q^h, W_K^h, W_QK^h of 0.0 0.2 0.3 1.1 have 0 spikes and sigma_mp 0.02 (worst %.1f%%, need <= 6%% on 64 eigenvalues)",
             100 * worst);
    const cJSON *win = find(r, "W_in", 0, -1), *ov = find(r, "W_OV", 1, 3);
    TL_CHECK(win && num(win, "num_spikes") == 0 && fabs(num(win, "sigma_mp") / 0.02 - 1) < 0.03,
             "planted MLP W_in (256x1024, N(0, 0.02^2)): %g spikes, sigma_mp %.5f", win ? num(win, "num_spikes") : -1, win ? num(win, "sigma_mp") : NAN);
    TL_CHECK(ov && num(ov, "hard_rank") == 63 && num(ov, "stable_rank") > 60,
             "planted copying head 1.3: W_OV (identity through the 64-dim centring matrix) has hard rank %g (63), stable rank %.2f",
             ov ? num(ov, "hard_rank") : -1, ov ? num(ov, "stable_rank") : NAN);
    cJSON_Delete(r);

    const struct { const char *rel; int mlp; } models[] = {
        { "models/tiny-gpt2-shakespeare", 2 }, { "models/tiny-llama-shakespeare", 3 }, { "models/stories260K/stories260K.bin", 3 },
    };
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        const char *path = tl_shared_path(models[i].rel);
        if (!path || access(path, R_OK) != 0) { tl_skip("%s: ../shared missing", models[i].rel); continue; }
        snprintf(out, sizeof out, "%s/shared%zu.json", tmp, i);
        r = run_report(path, out, true);
        if (!r) { tl_fail("%s: spectra pass runs", models[i].rel); continue; }
        const cJSON *mo = cJSON_GetObjectItem(r, "model");
        int L = cJSON_GetObjectItem(mo, "n_layers")->valueint, H = cJSON_GetObjectItem(mo, "n_heads")->valueint;
        check_report(r, models[i].rel, L, H, models[i].mlp, true);
        if (i == 1) {   /* GQA: W_K^h of two query heads sharing a KV head are the same matrix, same null */
            char *a = cJSON_PrintUnformatted(find(r, "W_K", 2, 4)), *b = cJSON_PrintUnformatted(find(r, "W_K", 2, 5));
            const char *ha = strstr(a, "\"shape\""), *hb = strstr(b, "\"shape\"");
            TL_CHECK(ha && hb && strcmp(ha, hb) == 0, "tiny-llama (GQA 8/4): W_K^h of heads 2.4 and 2.5 (one KV head) report identically");
            free(a); free(b);
            /* --no-heads gives the same per-layer entries (each matrix has its own null stream) */
            char out2[700];
            snprintf(out2, sizeof out2, "%s.noheads.json", out);
            cJSON *r2 = run_report(path, out2, false);
            char *x = r2 ? cJSON_PrintUnformatted(find(r, "W_QK", 3, -1)) : NULL, *y = r2 ? cJSON_PrintUnformatted(find(r2, "W_QK", 3, -1)) : NULL;
            TL_CHECK(x && y && strcmp(x, y) == 0 && r2 && cJSON_GetArraySize(cJSON_GetObjectItem(r2, "matrices")) == L * 8,
                     "tiny-llama --no-heads: %d per-layer matrices, layer 3 W_QK identical to the full run",
                     r2 ? cJSON_GetArraySize(cJSON_GetObjectItem(r2, "matrices")) : -1);
            free(x); free(y); cJSON_Delete(r2);
        }
        cJSON_Delete(r);
    }
}

/* ---- 7. CLI ---- */
static void expect_bad(const char *hs, const char *what, char *const argv[], const char *tmp) {
    char errp[600], outp[600];
    snprintf(errp, sizeof errp, "%s/err.txt", tmp); snprintf(outp, sizeof outp, "%s/out.txt", tmp);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(127);
        execv(hs, argv); _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char *err = NULL, *outs = NULL; size_t ne = 0, no = 0;
    hs_read_file("test", errp, &err, &ne); hs_read_file("test", outp, &outs, &no);
    int lines = 0;
    for (size_t i = 0; err && i < ne; i++) lines += err[i] == '\n';
    TL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2 && lines == 1 && no == 0, "CLI %s -> exit %d, %d stderr line(s): %.200s", what,
             WIFEXITED(st) ? WEXITSTATUS(st) : -1, lines, err ? err : "");
    free(err); free(outs);
}

static void test_cli(const char *tmp) {
    const char *hs = tl_cli();
    if (!hs) return;
    const char *m = tl_shared_path("models/stories260K/stories260K.bin");
    char *a1[] = { "headscope", "analyze", "spectra", NULL };
    char *a2[] = { "headscope", "analyze", "spectra", "--model", "/nonexistent/model", NULL };
    char *a3[] = { "headscope", "analyze", "spectra", "--model", (char *)(m ? m : "x"), "--bins", "0", NULL };
    char *a4[] = { "headscope", "analyze", "spectra", "--model", (char *)(m ? m : "x"), "--bins", "ten", NULL };
    char *a5[] = { "headscope", "analyze", "spectra", "--model", (char *)(m ? m : "x"), "--frobnicate", NULL };
    char *a6[] = { "headscope", "analyze", "spectra", "--model", NULL };
    char *a7[] = { "headscope", "analyze", "spectra", "--model", (char *)(m ? m : "x"), "--seed", "-3", NULL };
    expect_bad(hs, "without --model", a1, tmp);
    expect_bad(hs, "--model of a missing path", a2, tmp);
    expect_bad(hs, "--bins 0", a3, tmp);
    expect_bad(hs, "--bins ten", a4, tmp);
    expect_bad(hs, "an unknown option", a5, tmp);
    expect_bad(hs, "--model without a value", a6, tmp);
    expect_bad(hs, "--seed -3", a7, tmp);
}

int main(void) {
    hs_log_quiet(true);
    openblas_set_num_threads(2);
    g_schema = fx_load("docs/report.schema.json");
    if (!g_schema) { tl_fail("load docs/report.schema.json"); return tl_done(); }
    char tmp[] = "/tmp/test_spectra.XXXXXX";
    if (!mkdtemp(tmp)) { tl_fail("mkdtemp"); return tl_done(); }
    an_spectra_ws *ws = an_spectra_ws_init();
    test_gaussian(ws);
    test_spikes(ws);
    test_esd_two_ways(ws);
    test_laws(ws);
    test_powerlaw();
    test_degenerate(ws);
    an_spectra_ws_free(ws);
    test_reports(tmp);
    test_cli(tmp);
    cJSON_Delete(g_schema);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("  note  could not remove %s\n", tmp);
    return tl_done();
}
