/* fastmath.h — a vectorisable expf for the softmax, the O(T²) loop of every forward pass, and a
 * vectorisable logf for the attention entropy of capture's online statistics.
 *
 * Why: glibc's expf is a scalar call (libmvec's vector versions are only used under -ffast-math,
 * which the exactness targets rule out), and it was the single largest cost of attention for
 * models with small heads (stories260K: head_dim 8). This version is branch-free so the compiler
 * vectorises the loop: range reduction x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 Taylor polynomial
 * for e^r (truncation error < 6e-9 relative), and 2^n built in the exponent bits.
 * Accuracy: within 2 ulp of expf for x in [-87, 0] (tests/test_fastmath.c checks every float in a
 * dense sweep); inputs below -87 return 0 (e^-87 ≈ 1.6e-38 is below any attention weight that matters
 * and the softmax divides by a sum ≥ 1).
 */
#ifndef HS_FASTMATH_H
#define HS_FASTMATH_H
#include <stdint.h>
#include <string.h>

/* e^x for x ≤ 0 (softmax inputs after subtracting the row max); 0 for x < -87. */
static inline float hs_expf_neg(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
    const float round = 12582912.0f;              /* 1.5·2^23: adding it rounds to the nearest integer */
    float xc = x < -87.0f ? -87.0f : x;
    float n = (xc * log2e + round) - round;
    float r = (xc - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)n + 127) << 23;      /* 2^n; n ≥ -126 here, so always normal */
    float s;
    memcpy(&s, &bits, sizeof s);
    return x < -87.0f ? 0.0f : p * s;
}

/* ln x for x > 0 (finite, subnormals included), within 2 ulp of logf (tests/test_fastmath.c sweeps
 * every binade). Why: the entropy −Σ p·ln p is capture's O(T²)-per-head statistic and glibc's logf
 * is a scalar call. x = 2^e·m with m in [√½, √2); ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.172,
 * odd series to s^11 (truncation < 1e-10 relative); e·ln2 is added in two parts (hi has 12
 * significant bits, so e·hi is exact). Branch-free, so loops over it vectorise. */
static inline float hs_logf_pos(float x) {
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
    int sub = x < 1.17549435e-38f;                /* subnormal: scale by 2^23 first */
    float xs = sub ? x * 8388608.0f : x;
    int32_t bits;
    memcpy(&bits, &xs, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 127 - (sub ? 23 : 0);
    int32_t mb = (bits & 0x7fffff) | 0x3f800000;  /* m in [1, 2) */
    float m;
    memcpy(&m, &mb, sizeof m);
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;                       /* m in [√½, √2) */
    e += big;
    float f = m - 1.0f;                           /* exact (Sterbenz) */
    float sv = f / (2.0f + f), s2 = sv * sv;
    float t = s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9 + s2 * (1.0f / 11)))));
    float lm = 2.0f * sv + 2.0f * sv * t;         /* = f − f·s: ln(1+f) without cancellation for small f */
    float ef = (float)e;
    return ef * ln2_hi + (lm + ef * ln2_lo);
}
#endif
