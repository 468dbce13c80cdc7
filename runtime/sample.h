/* sample.h — next-token sampling as llama2.c's run.c does it (greedy, temperature, top-p),
 * with its xorshift64* generator, so seeded runs are reproducible across machines. */
#ifndef HS_SAMPLE_H
#define HS_SAMPLE_H
#include <stdint.h>

typedef struct {
    int vocab;
    float temperature;   /* 0 => greedy argmax */
    float top_p;         /* (0,1) nucleus; >= 1 or <= 0 => plain sampling */
    uint64_t state;      /* rng state; never 0 */
    struct { float prob; int index; } *scratch;   /* (vocab) owned */
} rt_sampler;

void rt_sampler_init(rt_sampler *s, int vocab, float temperature, float top_p, uint64_t seed);
void rt_sampler_free(rt_sampler *s);
/* Pick the next id from logits (vocab); logits are modified (scaled/softmaxed) in place. */
int rt_sample(rt_sampler *s, float *logits);
/* Index of the largest value (first on ties, as argmax in run.c and torch). */
int rt_argmax(const float *v, int n);
#endif
