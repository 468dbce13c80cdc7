/* half.c — bulk float -> f16 conversion (see half.h), for capture's f16 blobs.
 *
 * Why: capture converts every stored activation to f16 on the host, and at the GPU's rate (a
 * layer's patterns at T = 4096 are 4·10⁹ values) the scalar rt_f32_to_f16 took seconds per
 * forward. x86 CPUs since 2012 convert 8 floats per instruction (F16C, vcvtps2ph) with the same
 * rounding (to nearest even; overflow to inf; subnormals kept); the CPU is asked once at run time.
 * NaN: F16C keeps the top payload bits like rt_f32_to_f16 but does not force the quiet bit, so a
 * signalling-NaN payload could differ; both stay NaN with their sign (tests/test_store.c).
 */
#include "half.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

__attribute__((target("avx,f16c"))) static void f16c_convert(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = rt_f32_to_f16(src[i]);
}

/* CPUID leaf 1: ECX bit 27 OSXSAVE, 28 AVX, 29 F16C; and the OS must save YMM state (XCR0 bits
 * 1-2). Asked directly because clang's __builtin_cpu_supports has no "f16c". */
static bool have_f16c(void) {
    static int cached = -1;   /* benign race: every thread computes the same answer */
    if (cached < 0) {
        unsigned a, b, c, d, lo, hi;
        bool ok = __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 7u) == 7u;
        if (ok) {
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            ok = (lo & 6u) == 6u;
        }
        cached = ok;
    }
    return cached;
}
#endif

bool rt_f16_bulk_is_f16c(void) {
#if defined(__x86_64__) || defined(__i386__)
    return have_f16c();
#else
    return false;
#endif
}

void rt_f32_to_f16_array(uint16_t *dst, const float *src, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    if (have_f16c() && !rt_f16_force_portable) { f16c_convert(dst, src, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = rt_f32_to_f16(src[i]);
}

bool rt_f16_force_portable;
