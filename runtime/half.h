/* half.h — float -> IEEE binary16 (f16) and bfloat16 (bf16) encoding, header-only.
 *
 * Why: the store keeps attention patterns and other activations as f16/bf16 blobs to halve the
 * database; the encoders here are the one place where floats are narrowed. Both round to nearest,
 * ties to even (what numpy, PyTorch and CUDA's __float2half_rn do), so a value that is exactly
 * representable survives f32 -> f16/bf16 -> f32 unchanged and every f16/bf16 bit pattern survives
 * decode -> encode. Decoding is rt_f16_to_f32 / rt_bf16_to_f32 in safetensors.h (included here, so
 * this header gives both directions).
 * Edge cases: overflow rounds to +-inf (f16: |x| >= 65520); +-inf stay inf; NaN stays NaN (sign
 * kept, quiet bit set, top payload bits kept); results below the smallest subnormal round to +-0;
 * f16 subnormals are produced exactly (bf16 shares f32's exponent range, so it needs no special case).
 * Pure integer arithmetic: independent of the FPU rounding mode and of -ffast-math.
 */
#ifndef HS_HALF_H
#define HS_HALF_H
#include <stdint.h>
#include "safetensors.h"

static inline uint32_t rt_f32_bits(float f) {
    union { float f; uint32_t u; } v = { f };
    return v.u;
}

/* float -> binary16 bit pattern, round to nearest even. */
static inline uint16_t rt_f32_to_f16(float f) {
    uint32_t x = rt_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u)                                   /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
    /* 65520 = halfway between 65504 (max f16, odd mantissa) and 2^16: ties-to-even goes up, to inf. */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
    if (ax >= 0x38800000u) {                                /* normal f16 range: |x| >= 2^-14 */
        uint32_t h = ((ax >> 23) - 112u) << 10 | ((ax >> 13) & 0x3FFu);
        uint32_t rest = ax & 0x1FFFu;                       /* the 13 bits dropped */
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;   /* a carry into the exponent is right */
        return (uint16_t)(sign | h);
    }
    /* 2^-25 is halfway between 0 and the smallest subnormal 2^-24: ties-to-even gives 0. */
    if (ax <= 0x33000000u) return sign;
    /* subnormal f16: value / 2^-24 = mant * 2^(e-126), i.e. mant >> (126 - e), shift in 14..24 */
    uint32_t e = ax >> 23, mant = (ax & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;
    uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (h & 1u))) h++;     /* h = 0x400 is the smallest normal: right */
    return (uint16_t)(sign | h);
}

/* dst (n) = rt_f32_to_f16(src (n)), 8 at a time with F16C where the CPU has it (half.c): the same
 * bits for every non-NaN input. rt_f16_force_portable (tests) forces the scalar path. */
void rt_f32_to_f16_array(uint16_t *dst, const float *src, size_t n);
extern bool rt_f16_force_portable;
bool rt_f16_bulk_is_f16c(void);   /* whether rt_f32_to_f16_array uses F16C on this CPU */

/* float -> bfloat16 bit pattern, round to nearest even (bf16 is the top half of a binary32). */
static inline uint16_t rt_f32_to_bf16(float f) {
    uint32_t x = rt_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)                    /* NaN: truncation could drop every payload bit */
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7FFFu + ((x >> 16) & 1u);                        /* overflow past FLT_MAX lands on inf: right */
    return (uint16_t)(x >> 16);
}
#endif
