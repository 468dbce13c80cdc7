/* topk.h — full-vocabulary rankings of many logit rows at once, without storing the rows.
 *
 * The logits of row r are ℓ_r = Y[r] · Wᵀ with Y (R, D) and W (V, D) (the unembedding stored as
 * rows, an_unembed_rows). Rows are formed block by block with sgemm — at most a few thousand rows
 * times a few thousand vocabulary entries at a time — so an (R, V) matrix never exists, whatever V.
 *
 * Ranking order: logit descending, ties by token id ascending. torch.topk leaves ties unspecified;
 * a total order makes results reproducible and lets tests compare against a sort exactly.
 * The "bottom" ranking (the top-k of −ℓ, MAPS's suppression) is logit ascending, ties by id ascending.
 * Non-finite logits (only possible with non-finite weights) count as ties of the target.
 */
#ifndef HS_AN_TOPK_H
#define HS_AN_TOPK_H
#include <stdbool.h>

/* Where each row's target token falls in its full-vocabulary ranking.
 *   Y (R, D) rows, W (V, D) vocabulary matrix, tgt (R) target ids in [0, V); all borrowed.
 *   up[r]   = number of tokens ranked before tgt[r] by ℓ_r (so tgt[r] is in the top-k iff up[r] < k)
 *   down[r] = the same for −ℓ_r (tgt[r] is in the top-k of −ℓ_r iff down[r] < k)
 * exhaustive = false: a row stops being scanned once both counts reach `cap` (its target is then in
 *   neither top-cap); values >= cap mean "at least cap". The answer to "in the top-k for k <= cap"
 *   is identical to the exhaustive scan — only work on rows whose target ranks low is skipped.
 * exhaustive = true: every logit of every row is formed and compared; counts are exact.
 * The target's own logit is computed in double precision (a dot product), the others by sgemm;
 * comparisons are between those values. up/down are caller buffers of R ints. Scratch is allocated
 * and freed here (not per row). R = 0 is a no-op. */
void an_topk_target_ranks(const float *Y, int R, int D, const float *W, int V, const int *tgt, int cap,
                          bool exhaustive, int *up, int *down);

/* The k highest-logit tokens of each row over the full vocabulary, best first (ties: lower id first).
 *   ids (R, k) receives token ids; vals (R, k) their logits, or pass NULL. k <= V. Caller buffers. */
void an_topk_rows(const float *Y, int R, int D, const float *W, int V, int k, int *ids, float *vals);
#endif
