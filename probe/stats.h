/* stats.h — online per-head attention statistics, reduced from one head's pattern at a time.
 *
 * The capture hooks each head's hook_pattern, folds it into these sums and drops it, so no
 * pattern is ever stored. This file is also the CPU reference for the GPU statistics kernels.
 * Every metric is a mean over query positions with the BOS query (absolute position 0) excluded:
 *   entropy     −Σ_j p_ij ln p_ij (nats)           max_weight  max_j p_ij
 *   bos_mass    p_i0                               self        p_ii
 *   prev_token  p_i,i−1                            distance    Σ_j p_ij |i − j|
 *   duplicate   Σ_j p_ij [tok_j = tok_i, j < i]    induction   Σ_j p_ij [tok_{j−1} = tok_i, j−1 < i]
 * duplicate/induction are TransformerLens's "mul" scores (rows of a pattern sum to 1, so the
 * ratio of sums is the mean over rows); they are defined only for prompts with a repeated token.
 */
#ifndef HS_PROBE_STATS_H
#define HS_PROBE_STATS_H
#include "runtime/common.h"

typedef enum {
    PROBE_M_ENTROPY, PROBE_M_MAX_WEIGHT, PROBE_M_BOS_MASS, PROBE_M_SELF, PROBE_M_PREV_TOKEN,
    PROBE_M_DISTANCE, PROBE_M_DUPLICATE, PROBE_M_INDUCTION, PROBE_M_N
} probe_metric;

const char *probe_metric_name(probe_metric m);

typedef struct {
    double sum[PROBE_M_N];   /* Σ over counted query rows */
    double rows;             /* query rows counted (all metrics but duplicate/induction) */
    double rep_rows;         /* query rows counted for duplicate/induction */
} probe_head_sums;

/* Fold one head's pattern into acc.
 *   P (T, Tk) rows = queries at absolute positions pos0..pos0+T-1, columns = keys 0..Tk-1
 *   ids (Tk) token ids of the key positions (the query of row r has id ids[pos0 + r])
 *   has_repeat: whether the prompt has a repeated token (duplicate/induction are then counted). */
void probe_head_stats(const float *P, int T, int Tk, int pos0, const int *ids, bool has_repeat, probe_head_sums *acc);
/* Mean of metric m in acc, or NAN when nothing was counted. */
double probe_sums_mean(const probe_head_sums *acc, probe_metric m);
/* Add b into a (for run aggregates). */
void probe_sums_add(probe_head_sums *a, const probe_head_sums *b);
/* True if some token id occurs twice in ids (n). Uses a scratch bitmap of vocab bits (caller-owned,
 * (vocab+7)/8 bytes, left zeroed on return). */
bool probe_has_repeat(const int *ids, int n, uint8_t *scratch);
#endif
