/* passes.h — the analysis passes run by `headscope analyze PASS`. Each reads a run through an_ctx,
 * writes a JSON report (docs/reports.md) into the run's store and optionally a file. */
#ifndef HS_AN_PASSES_H
#define HS_AN_PASSES_H
#include "context.h"

typedef struct {
    double eps;              /* Gu et al. sink threshold on α_k (0.3) */
    int window;              /* tokens per prompt for the sink score (64) */
    double tau_act;          /* ACT non-initial sink threshold on the column mean (0.1) */
    double massive_abs;      /* Sun et al.: |x| > 100 ... */
    double massive_ratio;    /* ... and > 1000 × the median |x| of the layer */
    double phi_tau;          /* VAR: RMS-normalised |h| > 20 */
    int phi_min_layer;       /* VAR applies from layer 2 */
    double cos_tau;          /* secondary sinks: |cos(h_j, h_BOS)| > 0.9 */
    int primary_lifetime;    /* lifetime ≥ this => BOS-like (paper: L − 15); -1 = scaled default */
    int secondary_min;       /* lifetime > this => secondary (paper: 4); -1 = scaled default */
    int max_prompts;         /* prompts of the run to use (0 = all) */
} an_sinks_params;
void an_sinks_defaults(an_sinks_params *p);
hs_status an_sinks_run(an_ctx *ctx, const an_sinks_params *p, const char *out_path);

typedef struct {
    int n_seqs;              /* random sequences (16) */
    int seq_len;             /* tokens per half of a repeated sequence (32) */
    uint64_t seed;           /* (0) */
    int top;                 /* heads per ranked list (5) */
} an_detectors_params;
void an_detectors_defaults(an_detectors_params *p);
/* The seeded sequences the detectors run on: (n_seqs) heap arrays of *T ids ([BOS] r r, BOS when the
 * model has one). Caller frees each and the array with free(). Exposed so tests can recompute. */
int **an_detectors_sequences(const an_detectors_params *p, const rt_config *c, int *T);
hs_status an_detectors_run(an_ctx *ctx, const an_detectors_params *p, const char *out_path);
#endif
