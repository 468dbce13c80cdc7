/* fastmath.h — a vectorisable expf for the softmax, the O(T²) loop of every forward pass.
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
#endif
