/* maps.h — MAPS (Elhelo & Geva, ACL 2025): what an attention head does, read from its parameters.
 *
 * For head h of layer l, the map from a source token s to the vocabulary is the row
 *     M^h[s, :] = E″[s] · W_V^h · W_O^h · W_U                    (1, V)
 * E″ is the raw token embedding W_E for layer 0 and, for layers ≥ 1, the first MLP's output on it,
 * E′[s] = MLP_0(LN2_0(W_E[s])) (only the MLP output, as MAPS's code does; first_mlp = false uses
 * W_E everywhere). Raw weights: no LayerNorm folding, no ln_final, no b_V (the static map is
 * linear). GQA heads use their KV head's W_V (weights.h).
 *
 *   relation score(h)    = fraction of (s, t) pairs with t in the top-k of M^h[s, :]
 *   suppression score(h) = fraction with t in the top-k of −M^h[s, :]
 *   saliency(s)          = ‖E″[s] W_V^h W_O^h‖ / ‖E″[s]‖ over the whole vocabulary
 *
 * M is never formed: rows are built for the pairs' sources only, batched over heads with sgemm, and
 * ranked against the full vocabulary block by block (topk.h). Full method, conventions and the
 * validation protocol: docs/analysis-maps.md; formulas: ../shared/reference/methods.md §1.
 */
#ifndef HS_AN_MAPS_H
#define HS_AN_MAPS_H
#include "context.h"

/* One relation, resolved to token ids (datasets/relations.h does that from relation files). */
typedef struct {
    const char *name;           /* relation name (the file's stem) */
    int k;                      /* hit if the target is among the top k (k >= 1) */
    int n;                      /* pairs kept (both sides single tokens, duplicates removed) */
    const int *src, *tgt;       /* (n) source / target token ids */
    /* --validate: one prompt per pair (NULL when not validating) */
    const int *const *prompt;   /* (n) token ids of each prompt */
    const int *prompt_len;      /* (n) */
    const int *src_pos;         /* (n) position of the source token in its prompt */
    /* provenance, copied into the report (may be NULL / 0) */
    const char *source;         /* file the pairs came from */
    const char *template_text;  /* prompt template of --validate ("{}" = the source) */
    int n_listed, n_multi_token, n_duplicate;   /* pairs in the file; dropped as multi-token; dropped as duplicates */
} an_maps_relation;

typedef struct {
    bool first_mlp;        /* E″ = MLP_0(LN2_0(W_E)) for layers >= 1 (MAPS default: true) */
    bool exhaustive;       /* form every logit of every row (false: stop a row once it cannot hit;
                            * identical scores, see topk.h) */
    bool validate;         /* dynamic scores from the runtime and Pearson r (needs prompts) */
    int n_salient;         /* salient source tokens per head (15; 0 skips salient operations) */
    int n_mapped;          /* top mapped tokens per salient token (5) */
    int n_top_heads;       /* heads listed in top_heads (10) */
    int min_pairs;         /* relations with fewer kept pairs are scored but left out of the summary (30, as MAPS) */
    const char *relations_arg;   /* --relations as given, recorded in params */
    int k_override;        /* --k (0 = MAPS's rule per relation) */
    bool cuda;             /* --device cuda: static scores on the GPU (an_maps_scores_gpu) */
    int device;            /* CUDA device index */
    bool emulate;          /* tests: the GPU code path on the CPU-reference kernels (needs no GPU) */
} an_maps_params;
void an_maps_defaults(an_maps_params *p);

/* Per-model state: every head's W_V (per KV head) and W_O copied once, in TL convention. */
typedef struct an_maps an_maps;

/* Borrow m (it must outlive the state). Aborts only on out-of-memory. Free with an_maps_free. */
an_maps *an_maps_init(const rt_model *m, bool first_mlp);
void an_maps_free(an_maps *mp);

/* E″ rows for `layer` of tokens ids (n), into out (n, D) (caller's buffer). ids must be < V. */
void an_maps_embed(const an_maps *mp, int layer, const int *ids, int n, float *out);

/* Static relation and suppression scores of every head: scores, suppression (L*H) caller buffers,
 * index l*H + h; each is hits / r->n. r->n == 0 gives all zeros. */
void an_maps_scores(const an_maps *mp, const an_maps_relation *r, bool exhaustive, double *scores,
                    double *suppression);

/* ---- the GPU path (--device cuda) ----
 * The same scores as an_maps_scores, with the row products E″·W_V·W_O (cuBLAS fp32, no TF32), the
 * logits against the whole vocabulary and the rank counts (runtime/cuda/rt_cuda_rank.cu, topk.c's
 * rule) on the device; E″ itself is computed on the host (an_maps_embed). Exactness: a row's
 * decision (target in the top-k of M, of −M) is taken from the device only when it holds under a
 * perturbation of every logit by m = 1e-3·‖y‖·max_j‖W_U[j]‖ (far above the ~1e-6 relative difference
 * between two fp32 GEMMs); the few rows near the top-k boundary are re-ranked on the host exactly
 * as an_maps_scores ranks them. Hit counts therefore equal the CPU path's. */
typedef struct an_maps_gpu an_maps_gpu;
/* Open device `device` (emulate: the CPU-reference backend) and upload every head's W_V, W_O and
 * W_U once. mp is borrowed. HS_EUNSUPPORTED (one line) without a device, HS_EIO (one line) when
 * out of GPU memory; *out = NULL then. Free with an_maps_gpu_free. */
hs_status an_maps_gpu_init(const an_maps *mp, int device, bool emulate, an_maps_gpu **out);
void an_maps_gpu_free(an_maps_gpu *gs);
/* an_maps_scores on the GPU (scores, suppression: (L*H) caller buffers). *n_host (may be NULL)
 * receives the number of rows decided on the host. HS_EIO (one line) on a GPU failure (out of
 * memory, a failed kernel); the buffers are then undefined. */
hs_status an_maps_scores_gpu(an_maps_gpu *gs, const an_maps_relation *r, double *scores, double *suppression,
                             int *n_host);

/* Salient operations: for every head (index l*H + h) the n_sal tokens of highest saliency, best
 * first (ties: lower id), with their saliency and the n_map top tokens of each one's M row.
 *   tokens (L*H, n_sal), saliency (L*H, n_sal), mapped (L*H, n_sal, n_map): caller buffers.
 * Tokens whose E″ row is zero have no saliency and are never chosen; if fewer than n_sal tokens
 * qualify, the rest of the head's entries are -1 / NaN. n_sal <= V, n_map <= V. */
void an_maps_salient(const an_maps *mp, int n_sal, int n_map, int *tokens, float *saliency, int *mapped);

/* Dynamic scores (MAPS §1.4): run r's prompts through the runtime and rank the targets in each
 * head's output at the last position, projected with W_U (no ln_final).
 *   no_context = false: the head's output as is (hook_result).
 *   no_context = true:  the head's attention at the last position forced onto the source token,
 *     with the clean z restored afterwards so every head sees clean inputs (MAPS "w/o context").
 * scores, suppression: (L*H) caller buffers. r->prompt must be set. HS_EBADINPUT (one line) when a
 * prompt does not fit the model (id out of range, longer than n_ctx); buffers are then undefined. */
hs_status an_maps_dynamic(const an_maps *mp, const an_maps_relation *r, bool exhaustive, bool no_context,
                          double *scores, double *suppression);

/* Pearson correlation of a and b (n values); NaN when either is constant or n < 2. */
double an_pearson(const double *a, const double *b, int n);

/* The whole pass: scores, salient operations, optional validation; writes the maps report
 * (docs/report.schema.json) through an_report_finish to out_path (stdout when NULL).
 * ctx->tok names tokens in the report (ids are shown when it is NULL). Relations are borrowed.
 * Returns the status of an_report_finish, or of an_maps_dynamic when validation fails. */
hs_status an_maps_run(an_ctx *ctx, const an_maps_params *p, const an_maps_relation *rels, int n_rels,
                      const char *out_path);
#endif
