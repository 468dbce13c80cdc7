/* mp_fit.h — the random-matrix math of the spectra pass: Marchenko–Pastur (and quarter-circle and
 * free-product) densities, WeightWatcher's MP fit with its Tracy–Widom spike count, the power-law
 * fit with the KS-optimal xmin, and the norm metrics (stable rank, matrix entropy, hard rank).
 *
 * Why a separate file: this is pure math on an eigenvalue array, with no model, no JSON and no
 * LAPACK, so tests can check it against planted truth in isolation (tests/test_spectra.c).
 * It follows WeightWatcher v0.7.5.5 (RMT_Util.py, weightwatcher.py::mp_fit, WW_powerlaw.py) as
 * ../shared/reference/methods.md §7.2 states it; each deviation is marked "deviation:" below and
 * listed in docs/analysis-spectra.md.
 *
 * Units. An ESD here is the eigenvalues of X = WᵀW/N of an N×M matrix (N ≥ M), Q = N/M ≥ 1. For
 * i.i.d. entries of variance σ², X's eigenvalues fill [λ−, λ+] with λ± = σ²(1 ± 1/√Q)².
 * The fit works in WeightWatcher's rescaled frame λ̃ = wscale2·λ with wscale2 = n/Σλ (mean λ̃ = 1);
 * results are reported in both frames as the fields below say.
 *
 * Laws (an_law):
 *   AN_LAW_MP   Marchenko–Pastur on eigenvalues, for a single matrix with Q > 1;
 *   AN_LAW_QC   quarter circle on singular values s = √λ, for a single square matrix (Q = 1),
 *               as WeightWatcher does; densities are reported back in the eigenvalue domain;
 *   AN_LAW_FP   free multiplicative convolution of two MP laws of ratio c = r/D: the i.i.d. null of a
 *               product A·Bᵀ of two D×r factors (W_QK = W_Q W_Kᵀ, W_OV = W_V W_O). WeightWatcher never
 *               analyses products; MP does not describe them (docs/analysis-spectra.md). Scale:
 *               λ̃ = σ⁴·ξ where ξ has the unit-mean free-product law, so σ ≈ 1 for i.i.d. factors.
 */
#ifndef HS_AN_MP_FIT_H
#define HS_AN_MP_FIT_H
#include <stdbool.h>

typedef enum { AN_LAW_MP = 0, AN_LAW_QC = 1, AN_LAW_FP = 2 } an_law;

/* Name of a law for reports: "marchenko_pastur", "quarter_circle", "free_product_mp". */
const char *an_law_name(an_law law);

/* Density of the law at eigenvalue x (eigenvalue domain for every law; AN_LAW_QC is converted from
 * singular values: ρ_λ(x) = ρ_s(√x)/(2√x), which equals MP at Q = 1). q is Q = N/M for MP/QC and
 * 1/c = D/r for FP; sigma is the law's scale (σ for MP/QC, the σ of λ̃ = σ⁴ξ for FP). 0 outside the
 * support; +inf never (the c = 1 FP and Q = 1 laws diverge at 0: x = 0 returns 0). */
double an_law_pdf(an_law law, double q, double sigma, double x);

/* The unit free-product density (σ = 1) at w for ratio c, from the interpolated table the fit uses
 * (exposed so tests can bound its error against the exact an_law_pdf). */
double an_fp_pdf_fast(double c, double w);

/* Support [lo, hi] of the law in eigenvalue units. */
void an_law_edges(an_law law, double q, double sigma, double *lo, double *hi);

/* The quarter-circle density on singular values: sqrt(4σ² − s²)/(πσ²) on [0, 2σ].
 * deviation: WeightWatcher's quarter_circle_fun is (1/(πσ²))·sqrt(4 − s²), whose support ignores σ;
 * the two agree at σ = 1, where a rescaled square i.i.d. matrix lands. */
double an_qc_pdf_sv(double s, double sigma);

typedef struct {
    bool fitted;          /* false when n < 2 or Σλ = 0 (then every other field is 0) */
    bool all_rejected;    /* every σ on the grid broke WeightWatcher's admissibility rules (λ+ below the
                           * KDE peak or past its support, λ− above the peak); deviation: σ is then the
                           * unconstrained least-squares fit (WeightWatcher would keep 0.05·s0) */
    double wscale2;       /* n / Σλ: the rescaled frame is λ̃ = wscale2·λ (WeightWatcher's Wscale²) */
    double sigma;         /* fitted σ in the rescaled frame (WeightWatcher's sigma_mp) */
    double lambda_plus;   /* bulk edges in the caller's units (λ̃± / wscale2) */
    double lambda_minus;
    double tw_margin;     /* √TW in the rescaled frame: spikes are λ̃ > λ̃+ + tw_margin */
    int num_spikes;
    double mp_softrank;   /* λ̃+ / λ̃max */
    double resid;         /* the minimised Σ(ρ − KDE)² over the KDE grid */
} an_mp_fit_result;

/* WeightWatcher's mp_fit on n eigenvalues (ascending, ≥ 0; need not be distinct):
 *   1. rescale to mean 1; 2. KDE (linear kernel, bandwidth 0.1) on 1000 points of [0, max + 0.5],
 *   points with density < 0.01 dropped; for QC the KDE is of √λ̃; 3. σ by brute force over
 *   [0.05 s0, 2 s0) step 0.01 s0 (s0 = the σ that puts λ̃max on the bulk edge), minimising the squared
 *   residual against the KDE, with WeightWatcher's rejection rules (not for QC, as WeightWatcher; when
 *   every σ is rejected, again without them: all_rejected), then polished by 1-D Nelder–Mead with
 *   scipy.optimize.fmin's defaults (brute's finish=fmin);
 *   4. λ̃± from σ, TW = (1/√Q)·λ̃+^(2/3)·m^(−2/3), num_spikes = #{λ̃ > λ̃+ + √TW}, softrank λ̃+/λ̃max.
 * m is the number of eigenvalues of ONE matrix (M, or r for FP): with pooled randomised replicas n is
 * a multiple of m, as in WeightWatcher's random ESD. No allocation. Out is fully written. */
void an_mp_fit(const double *evals, int n, an_law law, double q, int m, an_mp_fit_result *out);

/* Evaluate the KDE used by the fit at x (exposed for tests): (1/(n h)) Σ max(0, 1 − |x − x_i|/h),
 * x_i ascending. */
double an_kde_linear(const double *xs, int n, double h, double x);

typedef struct {
    bool fitted;          /* false when fewer than 2 positive values remain */
    double alpha;         /* the tail exponent: p(x) ∝ x^(−alpha) for x ≥ xmin */
    double xmin;          /* the KS-optimal lower cutoff (one of the values) */
    double D;             /* KS distance at xmin */
    double sigma;         /* (alpha − 1)/√n_tail */
    int n_tail;           /* values ≥ xmin */
} an_powerlaw_result;

/* WeightWatcher's WWFit (powerlaw package 'ww', xmax = max): for every candidate xmin = x_i (all but
 * the largest value) the continuous MLE alpha_i = 1 + n/(Σ_{j≥i} ln x_j − n ln x_i) and the KS distance
 * D_i = max_k |1 − (x_{i+k}/x_i)^(1−alpha_i) − k/n|; the fit is argmin_i D_i (first on ties).
 * x ascending; values ≤ 0 are skipped (deviation: WeightWatcher would take log 0; rank-deficient ESDs
 * have exact zeros). O(n²) time, no allocation. */
void an_powerlaw_fit(const double *x, int n, an_powerlaw_result *out);

typedef struct {
    double stable_rank;   /* Σλ/λmax */
    double entropy;       /* −Σ p ln p / ln(rank), p = λ/Σλ (0 ln 0 = 0); rank 1 → ln(1.000001) */
    int hard_rank;        /* #{√λ > √λmax · N · DBL_EPSILON} (WeightWatcher's matrix_rank) */
    double lambda_max;
    double lambda_sum;
} an_norm_metrics;

/* WeightWatcher's apply_norm_metrics subset on n eigenvalues (any order, ≥ 0) of a matrix whose larger
 * dimension is N. All zero when Σλ = 0 (entropy NaN then: there is no distribution). */
void an_norm_metrics_of(const double *evals, int n, int N, an_norm_metrics *out);
#endif
