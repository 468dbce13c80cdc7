/* test_fastmath.c — hs_expf_neg against libm's exp in double, over a dense sweep of [-87, 0]. */
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
    return tl_done();
}
