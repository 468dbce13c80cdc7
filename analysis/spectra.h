/* spectra.h — `headscope analyze spectra`: WeightWatcher's empirical-spectral-density analysis per
 * layer (W_Q, W_K, W_V, W_O, W_QK, W_in, W_gate, W_out) and per head (W_Q^h, W_K^h, W_QK^h, W_OV^h),
 * with a shuffled null for correlation traps (docs/analysis-spectra.md).
 *
 * Two levels:
 *   - an_spectra_run: the pass over a model, writing the report (schema: docs/report.schema.json);
 *   - an_spectrum_single / an_spectrum_product: the spectrum of one matrix, for tests, benchmarks and
 *     other passes. They share an an_spectra_ws, the scratch that grows to the largest matrix seen, so
 *     the per-head loops allocate nothing once it has grown.
 * Weights are raw (no LayerNorm folding, biases ignored), read in TransformerLens convention through
 * analysis/weights.h. Eigenvalues are computed in double from the fp32 weights.
 */
#ifndef HS_AN_SPECTRA_H
#define HS_AN_SPECTRA_H
#include "context.h"
#include "mp_fit.h"
#include <stdint.h>

typedef struct {
    int bins;            /* histogram bins per matrix (100) */
    bool heads;          /* per-head matrices too (true) */
    uint64_t seed;       /* seed of the shuffled null (0); each matrix derives its own stream */
} an_spectra_params;
void an_spectra_defaults(an_spectra_params *p);

/* Run the pass on ctx->m (a weight-only context, an_ctx_open_model) and write the report to out_path
 * (stdout when NULL). Progress per layer through hs_log_info. Returns HS_OK, HS_EBADINPUT for params
 * out of range (one line), HS_EIO when the report cannot be written; ctx stays open either way. */
hs_status an_spectra_run(an_ctx *ctx, const an_spectra_params *p, const char *out_path);

/* Scratch: matrices in double, Grams, LAPACK work, shuffled copies. Starts empty and grows to the largest
 * matrix seen (then allocates nothing more). Heap, owned by the caller: free with an_spectra_ws_free
 * (NULL is fine). Not shareable between threads. */
typedef struct an_spectra_ws an_spectra_ws;
an_spectra_ws *an_spectra_ws_init(void);
void an_spectra_ws_free(an_spectra_ws *ws);

/* One matrix's spectrum. Every pointer in it is borrowed from the ws and valid until the next
 * an_spectrum_* call on the same ws. */
typedef struct {
    const char *status;        /* "ok", or why the MP fit was skipped: "zero matrix", "non-finite weights",
                                * "fewer than 2 eigenvalues" */
    an_law law;
    int N, M;                  /* N ≥ M after transposing (products: N = M = D) */
    int rank_bound;            /* M for single matrices, min(r, D) for products */
    double q;                  /* N/M (single), D/r (product; the factors' aspect ratio) */
    int n_evals;               /* M (single) or rank_bound (product: only the nonzero part exists) */
    const double *evals;       /* (n_evals) ascending eigenvalues of X = WᵀW/N (products: nonzero ones) */
    an_mp_fit_result mp;
    an_powerlaw_result pl;
    an_norm_metrics norms;
    int replicas;              /* shuffled copies pooled for the null (WeightWatcher: 5 when < 100 evals) */
    an_mp_fit_result rand_mp;  /* the MP fit of the pooled shuffled ESD: rand_mp.num_spikes = traps */
    double rand_lambda_max;    /* largest eigenvalue of the shuffled copies (same units as evals) */
    int num_above_rand_max;    /* eigenvalues above rand_lambda_max: a fit-free spike count */
} an_spectrum;

/* Spectrum of W (rows, cols) row-major fp32 (borrowed, unchanged). seed drives the shuffled null
 * (0 replicas when null == false). Eigenvalues via a double Gram matrix of the smaller side and dsyevd.
 * Never fails: a degenerate or non-finite matrix, or a LAPACK failure, is reported in out->status, with
 * the fields that could not be computed left 0 (out->evals NULL when there is no ESD). */
void an_spectrum_single(an_spectra_ws *ws, const float *w, int rows, int cols, bool null, uint64_t seed,
                        an_spectrum *out);

/* Spectrum of the product P = Ā·Bᵀ (D, D): b is (D, r); a is (D, r·group) and Ā (D, r) sums its column
 * blocks of width blk in groups of `group`: Ā[:, g·blk + j] = Σ_t a[:, (g·group + t)·blk + j] (GQA: the
 * layer's W_Q summed over the query heads of each KV head; group = 1: Ā = a). r must be a multiple of
 * blk. For r < D/2 P is never formed: its nonzero singular values are those of R_Ā·R_Bᵀ (thin QRs).
 * Only the k = min(D, r) possibly nonzero eigenvalues are in the ESD. The null shuffles a and b
 * separately, before the group sum. Inputs borrowed; failure reporting as an_spectrum_single. */
void an_spectrum_product(an_spectra_ws *ws, const float *a, const float *b, int D, int r, int group, int blk,
                         bool null, uint64_t seed, an_spectrum *out);

/* The report entry {name, layer, head, shape, ...} for a spectrum (bins ≥ 1); head < 0 → null. Fields that
 * do not exist for its status are JSON null (counts 0, arrays empty). Returns a new object: the caller
 * owns it (cJSON_Delete, or add it to a tree). */
cJSON *an_spectrum_json(const an_spectrum *s, const char *name, int layer, int head, int bins);
#endif
