/* sample.c — llama2.c-compatible sampler (see sample.h). */
#include "sample.h"
#include "common.h"
#include <math.h>
#include <stdlib.h>

void rt_sampler_init(rt_sampler *s, int vocab, float temperature, float top_p, uint64_t seed) {
    s->vocab = vocab; s->temperature = temperature; s->top_p = top_p;
    s->state = seed ? seed : 0x2545F4914F6CDD1Dull;   /* xorshift must not start at 0 */
    s->scratch = hs_xmalloc((size_t)vocab * sizeof *s->scratch);
}

void rt_sampler_free(rt_sampler *s) { free(s->scratch); s->scratch = NULL; }

static uint32_t random_u32(uint64_t *state) {
    *state ^= *state >> 12; *state ^= *state << 25; *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float random_f32(uint64_t *state) { return (float)(random_u32(state) >> 8) / 16777216.0f; }

int rt_argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[best]) best = i;
    return best;
}

static void softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sum);
}

static int cmp_desc(const void *a, const void *b) {
    float pa = *(const float *)a, pb = *(const float *)b;
    return pa > pb ? -1 : pa < pb ? 1 : 0;
}

int rt_sample(rt_sampler *s, float *logits) {
    int n = s->vocab;
    if (s->temperature <= 0.0f) return rt_argmax(logits, n);
    for (int i = 0; i < n; i++) logits[i] /= s->temperature;
    softmax(logits, n);
    float coin = random_f32(&s->state);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f) {
        float cdf = 0;
        for (int i = 0; i < n; i++) { cdf += logits[i]; if (coin < cdf) return i; }
        return n - 1;
    }
    /* top-p: keep the smallest prefix of sorted probabilities whose mass exceeds top_p; entries
     * below (1-top_p)/(n-1) cannot be in it, so they are dropped before sorting (as run.c does). */
    float cutoff = (1.0f - s->top_p) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] >= cutoff) { s->scratch[n0].prob = logits[i]; s->scratch[n0].index = i; n0++; }
    qsort(s->scratch, (size_t)n0, sizeof *s->scratch, cmp_desc);
    float cum = 0; int last = n0 - 1;
    for (int i = 0; i < n0; i++) { cum += s->scratch[i].prob; if (cum > s->top_p) { last = i; break; } }
    float r = coin * cum, cdf = 0;
    for (int i = 0; i <= last; i++) { cdf += s->scratch[i].prob; if (r < cdf) return s->scratch[i].index; }
    return s->scratch[last].index;
}
