/* mp_fit.c — Marchenko–Pastur / quarter-circle / free-product densities and WeightWatcher's MP fit
 * (see mp_fit.h). Pure math on double arrays: no allocation, no LAPACK. */
#include "mp_fit.h"
#include <float.h>
#include <math.h>
#include <string.h>

#define KDE_POINTS 1000      /* WeightWatcher: np.linspace(0, max + 0.5, 1000) */
#define KDE_BANDWIDTH 0.1    /* WeightWatcher: bw = 0.1 in the rescaled frame */
#define KDE_THRESH 0.01      /* WeightWatcher drops grid points whose KDE is below this */
#define REJECT_RESID 1000.0  /* WeightWatcher's residual per grid point for an inadmissible σ */

const char *an_law_name(an_law law) {
    return law == AN_LAW_QC ? "quarter_circle" : law == AN_LAW_FP ? "free_product_mp" : "marchenko_pastur";
}

/* ---- the free product of two MP(c) laws -------------------------------------------------------
 * X_A = AᵀA/(D a²) and X_B for independent D×r Gaussian factors are asymptotically free, each MP with
 * ratio c = r/D and S-transform 1/(1 + c z). The product's S-transform is 1/(1 + c z)², so with
 * z = w·G(w) − 1 the Cauchy transform solves (1 + z)(1 + c z)² = w z, a cubic in z:
 *     c² z³ + (c² + 2c) z² + (1 + 2c − w) z + 1 = 0,
 * and ρ(w) = −Im G(w + i0)/π = |Im z|/(π w) on the support, where the cubic has a complex pair.
 * Edges: w = (1+z)(1+cz)²/z is stationary at 2c z² + c z − 1 = 0. Mean 1 (product of unit means);
 * c = 1 gives the Fuss–Catalan law on [0, 27/4]. */
static double fp_edge(double c, int upper) {
    double z = (-c + (upper ? 1 : -1) * sqrt(c * c + 8 * c)) / (4 * c);
    return (1 + z) * (1 + c * z) * (1 + c * z) / z;
}

static double fp_pdf_unit(double c, double w) {
    if (!(w > 0)) return 0;
    double lo = fp_edge(c, 0), hi = fp_edge(c, 1);
    if (w <= lo || w >= hi) return 0;
    /* Cardano on the depressed cubic t³ + p t + q = 0, z = t − a2/(3 a3). Inside the support the
     * discriminant (q/2)² + (p/3)³ is positive: one real root and a pair u·ω + v·ω² whose imaginary
     * part is ±(√3/2)(u − v). Real arithmetic only: cbrt keeps the sign. */
    double a3 = c * c, a2 = c * c + 2 * c, a1 = 1 + 2 * c - w, a0 = 1;
    double b = a2 / a3, cc = a1 / a3, d = a0 / a3;
    double p = cc - b * b / 3, q = 2 * b * b * b / 27 - b * cc / 3 + d;
    double disc = q * q / 4 + p * p * p / 27;
    if (disc <= 0) return 0;   /* roundoff at the very edge */
    double sd = sqrt(disc);
    double u = cbrt(-q / 2 + sd), v = cbrt(-q / 2 - sd);
    double im = 0.5 * sqrt(3.0) * fabs(u - v);
    return im / (M_PI * w);
}

/* The fit evaluates the free-product density tens of thousands of times per matrix; Cardano's two cbrt
 * per point made it the fit's main cost. So the fit reads a table of the smooth factor
 * g(w) = ρ(w)/√((w − lo)(hi − w)) (finite at soft edges) at FP_TABLE cell midpoints, interpolated
 * linearly, built once per ratio c and cached. Near lo = 0 at c = 1, where ρ ~ w^(−2/3) and g is
 * singular, the first FP_DIRECT cells use Cardano. Error below 2e-4 of the peak (tests/test_spectra.c);
 * reported densities (an_law_pdf) are always exact. */
#define FP_TABLE 2048
#define FP_DIRECT 64
typedef struct { double c, lo, hi; double g[FP_TABLE]; } fp_table;

static double fp_pdf_fast(double c, double w) {
    static _Thread_local fp_table t;   /* one ratio per model's heads, one per layer: a single entry suffices */
    if (t.c != c) {
        t.c = c; t.lo = c >= 1 ? 0 : fp_edge(c, 0); t.hi = fp_edge(c, 1);
        for (int k = 0; k < FP_TABLE; k++) {
            double x = t.lo + (t.hi - t.lo) * (k + 0.5) / FP_TABLE;
            t.g[k] = fp_pdf_unit(c, x) / sqrt((x - t.lo) * (t.hi - x));
        }
    }
    if (!(w > t.lo && w < t.hi)) return 0;
    double u = (w - t.lo) / (t.hi - t.lo) * FP_TABLE - 0.5;
    if (t.lo == 0 && u < FP_DIRECT) return fp_pdf_unit(c, w);
    int k = (int)floor(u);
    if (k < 0) k = 0;                       /* the half cells at the edges: extrapolate the end segments */
    if (k > FP_TABLE - 2) k = FP_TABLE - 2;
    double gk = t.g[k] + (u - k) * (t.g[k + 1] - t.g[k]);
    return gk * sqrt((w - t.lo) * (t.hi - w));
}

double an_fp_pdf_fast(double c, double w) { return fp_pdf_fast(c, w); }

double an_qc_pdf_sv(double s, double sigma) {
    double s2 = sigma * sigma, r = 4 * s2 - s * s;
    return (s >= 0 && r > 0) ? sqrt(r) / (M_PI * s2) : 0;
}

static double mp_pdf(double x, double q, double sigma) {
    double s2 = sigma * sigma, y = 1 / q, a = s2 * (1 - sqrt(y)) * (1 - sqrt(y)), b = s2 * (1 + sqrt(y)) * (1 + sqrt(y));
    double r = (b - x) * (x - a);
    return (x > 0 && r > 0) ? sqrt(r) / (2 * M_PI * s2 * x * y) : 0;
}

void an_law_edges(an_law law, double q, double sigma, double *lo, double *hi) {
    double s2 = sigma * sigma;
    if (law == AN_LAW_FP) {
        double c = 1 / q, s4 = s2 * s2;
        *lo = s4 * (c >= 1 ? 0 : fp_edge(c, 0));
        *hi = s4 * fp_edge(c, 1);
    } else if (law == AN_LAW_QC) {
        *lo = 0; *hi = 4 * s2;
    } else {
        double r = 1 / sqrt(q);
        *lo = s2 * (1 - r) * (1 - r); *hi = s2 * (1 + r) * (1 + r);
    }
}

double an_law_pdf(an_law law, double q, double sigma, double x) {
    if (!(x > 0)) return 0;
    if (law == AN_LAW_FP) {
        double s4 = sigma * sigma * sigma * sigma;
        return fp_pdf_unit(1 / q, x / s4) / s4;
    }
    if (law == AN_LAW_QC) return an_qc_pdf_sv(sqrt(x), sigma) / (2 * sqrt(x));
    return mp_pdf(x, q, sigma);
}

/* ---- the fit -------------------------------------------------------------------------------- */

/* The values the KDE sees: t_i = √(scale·λ_i) for QC, scale·λ_i otherwise (monotone, so ascending). */
static inline double fit_value(const double *ev, int i, double scale, bool sv) {
    double v = scale * ev[i];
    return sv ? sqrt(v > 0 ? v : 0) : v;
}

static double kde_at(const double *ev, int n, double scale, bool sv, double h, double x) {
    /* first value ≥ x − h by bisection, then the kernel's support only */
    int lo = 0, hi = n;
    while (lo < hi) { int mid = (lo + hi) / 2; if (fit_value(ev, mid, scale, sv) < x - h) lo = mid + 1; else hi = mid; }
    double s = 0;
    for (int i = lo; i < n; i++) {
        double d = fabs(x - fit_value(ev, i, scale, sv));
        if (d >= h) { if (fit_value(ev, i, scale, sv) > x) break; continue; }
        s += 1 - d / h;
    }
    return s / (n * h);
}

double an_kde_linear(const double *xs, int n, double h, double x) { return kde_at(xs, n, 1.0, false, h, x); }

typedef struct {
    an_law law;
    double q;
    bool rules;                   /* apply WeightWatcher's admissibility rules (false: the fallback fit) */
    int n;                        /* good grid points */
    double x[KDE_POINTS], y[KDE_POINTS], y2sum[KDE_POINTS + 1];   /* y2sum: prefix sums of y² */
    double x_peak, x_max;
} fit_grid;

/* Σ over the good grid points of (ρ(x; σ) − KDE(x))², WeightWatcher's resid_mp with allresid=False. */
static double resid(const fit_grid *g, double sigma) {
    double a, b;
    if (g->law == AN_LAW_QC) { a = 0; b = 2 * fabs(sigma); }          /* singular-value domain */
    else {
        an_law_edges(g->law, g->q, sigma, &a, &b);
        if (g->rules && (b < g->x_peak || b > g->x_max || a > g->x_peak)) return REJECT_RESID * REJECT_RESID * g->n;
    }
    /* Outside [a, b] the density is 0 (WeightWatcher's nan_to_num), so those points add y²: take them
     * from the prefix sums and evaluate the density only inside — most σ make [a, b] narrow. */
    int i0 = 0, i1 = g->n;
    { int lo = 0, hi = g->n; while (lo < hi) { int m = (lo + hi) / 2; if (g->x[m] < a) lo = m + 1; else hi = m; } i0 = lo; }
    { int lo = i0, hi = g->n; while (lo < hi) { int m = (lo + hi) / 2; if (g->x[m] <= b) lo = m + 1; else hi = m; } i1 = lo; }
    double r = g->y2sum[i0] + (g->y2sum[g->n] - g->y2sum[i1]);
    double s4 = sigma * sigma * sigma * sigma, c = 1 / g->q;
    for (int i = i0; i < i1; i++) {
        double rho = g->law == AN_LAW_QC ? an_qc_pdf_sv(g->x[i], sigma)
                   : g->law == AN_LAW_FP ? fp_pdf_fast(c, g->x[i] / s4) / s4 : an_law_pdf(g->law, g->q, sigma, g->x[i]);
        double d = rho - g->y[i];
        r += d * d;
    }
    return r;
}

/* scipy.optimize.fmin (Nelder–Mead) in one dimension with its defaults: initial simplex x0, 1.05·x0,
 * xatol = fatol = 1e-4, at most 200 iterations and 200 evaluations; coefficients 1, 2, 0.5, 0.5.
 * In 1-D the centroid of the non-worst vertices is the best vertex. */
static double nelder_mead_1d(const fit_grid *g, double x0, double *fbest) {
    double x[2] = { x0, x0 != 0 ? 1.05 * x0 : 0.00025 }, f[2] = { resid(g, x[0]), resid(g, x[1]) };
    int evals = 2;
    for (int it = 0; it < 200 && evals < 200; it++) {
        if (f[1] < f[0]) { double t = x[0]; x[0] = x[1]; x[1] = t; t = f[0]; f[0] = f[1]; f[1] = t; }
        if (fabs(x[1] - x[0]) <= 1e-4 && fabs(f[1] - f[0]) <= 1e-4) break;
        double xr = 2 * x[0] - x[1], fr = resid(g, xr); evals++;
        if (fr < f[0]) {
            double xe = 3 * x[0] - 2 * x[1], fe = resid(g, xe); evals++;
            if (fe < fr) { x[1] = xe; f[1] = fe; } else { x[1] = xr; f[1] = fr; }
        } else if (fr < f[1]) {                       /* outside contraction */
            double xc = 1.5 * x[0] - 0.5 * x[1], fc = resid(g, xc); evals++;
            if (fc <= fr) { x[1] = xc; f[1] = fc; }
            else { x[1] = x[0] + 0.5 * (x[1] - x[0]); f[1] = resid(g, x[1]); evals++; }
        } else {                                      /* inside contraction */
            double xcc = 0.5 * x[0] + 0.5 * x[1], fcc = resid(g, xcc); evals++;
            if (fcc < f[1]) { x[1] = xcc; f[1] = fcc; }
            else { x[1] = x[0] + 0.5 * (x[1] - x[0]); f[1] = resid(g, x[1]); evals++; }
        }
    }
    if (f[1] < f[0]) { *fbest = f[1]; return x[1]; }
    *fbest = f[0];
    return x[0];
}

void an_mp_fit(const double *ev, int n, an_law law, double q, int m, an_mp_fit_result *out) {
    memset(out, 0, sizeof *out);
    if (n < 2 || m < 1) return;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += ev[i];
    if (!(sum > 0) || !isfinite(sum)) return;
    double scale = n / sum, lmax = scale * ev[n - 1];
    bool sv = law == AN_LAW_QC;
    if (sv) q = 1;
    static _Thread_local fit_grid g;   /* 40 KB: too big for some thread stacks, and no malloc per matrix */
    g.law = law; g.q = q; g.n = 0; g.rules = true;
    double xtop = fit_value(ev, n - 1, scale, sv) + 0.5, ymax = -1;
    for (int k = 0; k < KDE_POINTS; k++) {
        double x = xtop * k / (KDE_POINTS - 1), y = kde_at(ev, n, scale, sv, KDE_BANDWIDTH, x);
        if (!(y > KDE_THRESH)) continue;
        g.x[g.n] = x; g.y[g.n] = y; g.n++;
        if (y > ymax) { ymax = y; g.x_peak = x; }
    }
    if (g.n == 0) return;   /* cannot happen for n ≥ 2 with bandwidth 0.1, kept for safety */
    g.x_max = g.x[g.n - 1];
    g.y2sum[0] = 0;
    for (int i = 0; i < g.n; i++) g.y2sum[i + 1] = g.y2sum[i] + g.y[i] * g.y[i];

    /* s0: the σ that puts λ̃max on the bulk edge (WeightWatcher's calc_sigma, on λ̃ also for QC) */
    double unit_lo, unit_hi;
    an_law_edges(law, q, 1.0, &unit_lo, &unit_hi);
    double s0 = law == AN_LAW_FP ? pow(lmax / unit_hi, 0.25) : sqrt(lmax / unit_hi);
    double best = 0, fbest = INFINITY;
    for (int pass = 0; pass < 2; pass++) {
        best = 0; fbest = INFINITY;
        for (int k = 0; k < 195; k++) {   /* np.mgrid[0.05 s0 : 2 s0 : 0.01 s0] has 195 points */
            double s = s0 * (0.05 + 0.01 * k), f = resid(&g, s);
            if (f < fbest) { fbest = f; best = s; }
        }
        if (sv || fbest < REJECT_RESID * REJECT_RESID * g.n) break;
        out->all_rejected = true;
        /* deviation: every σ broke the rules — typically the KDE peaks at 0 because a few huge eigenvalues
         * set the mean, so λ− > 0 = peak for every σ. WeightWatcher would return the grid's first σ and
         * count nearly every eigenvalue as a spike; we fit the plain least squares instead and flag it. */
        g.rules = false;
    }
    best = fabs(nelder_mead_1d(&g, best, &fbest));

    double lo, hi;
    an_law_edges(law, q, best, &lo, &hi);
    out->fitted = true;
    out->wscale2 = scale;
    out->sigma = best;
    out->resid = fbest;
    out->lambda_plus = hi / scale;
    out->lambda_minus = lo / scale;
    double tw = (1 / sqrt(q)) * pow(hi, 2.0 / 3.0) * pow((double)m, -2.0 / 3.0);
    out->tw_margin = sqrt(tw);
    for (int i = n - 1; i >= 0 && scale * ev[i] > hi + out->tw_margin; i--) out->num_spikes++;
    out->mp_softrank = hi / lmax;
}

/* ---- power law ------------------------------------------------------------------------------- */

void an_powerlaw_fit(const double *x, int n, an_powerlaw_result *out) {
    memset(out, 0, sizeof *out);
    int i0 = 0;
    while (i0 < n && !(x[i0] > 0)) i0++;
    int N = n - i0;
    if (N < 2) return;
    const double *d = x + i0;
    /* Σ_{j≥i} ln x_j for every i, accumulated from the top; the KS sweep needs ln x_j too, recomputed
     * (log is cheap next to the exp it feeds, and no scratch buffer is needed). */
    double suffix = 0;
    for (int j = 0; j < N; j++) suffix += log(d[j]);
    double bestD = INFINITY;
    for (int i = 0; i < N - 1; i++) {
        double li = log(d[i]), nt = N - i;
        if (i > 0) suffix -= log(d[i - 1]);
        double den = suffix - nt * li;
        double alpha = den > 0 ? 1 + nt / den : INFINITY;
        double D = 1;
        if (alpha > 1 && isfinite(alpha)) {
            D = 0;
            for (int k = 0; k < (int)nt; k++) {
                /* 1 − (x/xmin)^(1−α) is the fitted CDF; k/n is the empirical CDF just below x */
                double e = fabs(1 - exp((1 - alpha) * (log(d[i + k]) - li)) - k / nt);
                if (e > D) D = e;
            }
        }
        if (D < bestD) {
            bestD = D;
            out->fitted = true; out->alpha = alpha; out->xmin = d[i]; out->D = D;
            out->n_tail = (int)nt; out->sigma = (alpha - 1) / sqrt(nt);
        }
    }
}

/* ---- norm metrics ----------------------------------------------------------------------------- */

void an_norm_metrics_of(const double *ev, int n, int N, an_norm_metrics *out) {
    memset(out, 0, sizeof *out);
    double sum = 0, mx = 0;
    for (int i = 0; i < n; i++) { sum += ev[i]; if (ev[i] > mx) mx = ev[i]; }
    out->lambda_sum = sum; out->lambda_max = mx;
    if (!(sum > 0)) { out->entropy = NAN; return; }
    double tol = sqrt(mx) * N * DBL_EPSILON, h = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i] > 0 && sqrt(ev[i]) > tol) out->hard_rank++;
        double p = ev[i] / sum;
        if (p > 0) h -= p * log(p);
    }
    out->stable_rank = sum / mx;
    double rank = out->hard_rank == 1 ? 1.000001 : out->hard_rank;
    out->entropy = h / log(rank);
}
