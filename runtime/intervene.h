/* intervene.h — ready-made interventions and an activation cache, all built on the hook API.
 *
 * Each intervention is an rt_hook_fn plus a small struct the caller owns; put it in an
 * rt_hook_req for the hook point, layers and heads to act on:
 *   zero-ablation      rt_iv_zero        (user = NULL)
 *   mean-ablation      rt_iv_mean        (user = rt_iv_mean_arg: a vector per column, or per (row, column))
 *   scaling            rt_iv_scale       (user = float *factor)
 *   patching           rt_iv_patch       (user = rt_cache *: replaces the tensor with the cached one of the same name/head/seq)
 *   pattern row edit   rt_iv_pattern_row (user = rt_iv_row_arg: replaces one query row of hook_pattern)
 * Interventions act on rows [pos_begin, pos_end) of the event, so a request's position window
 * limits where they apply.
 *
 * rt_cache records copies of hooked tensors (like TransformerLens run_with_cache, but only what
 * the spec asks for): use rt_cache_record as the callback with user = the cache.
 */
#ifndef HS_INTERVENE_H
#define HS_INTERVENE_H
#include "hooks.h"

void rt_iv_zero(const rt_hook_event *ev, void *user);

typedef struct {
    const float *mean;   /* (cols) when per_row is false, (rows, cols) when true; borrowed */
    bool per_row;
} rt_iv_mean_arg;
void rt_iv_mean(const rt_hook_event *ev, void *user);

void rt_iv_scale(const rt_hook_event *ev, void *user);

typedef struct {
    int row;              /* query position (row of the event) to overwrite */
    const float *values;  /* (cols) new attention weights for that row; borrowed */
    int n;                /* length of values; must equal the event's cols or the edit is skipped */
} rt_iv_row_arg;
void rt_iv_pattern_row(const rt_hook_event *ev, void *user);

typedef struct rt_cache_entry rt_cache_entry;
typedef struct {
    rt_cache_entry *entries;   /* owned */
    int n, cap;
} rt_cache;

void rt_cache_init(rt_cache *c);
void rt_cache_free(rt_cache *c);
/* Hook callback: stores a copy of the event's tensor keyed by (name, head, seq). Re-recording the
 * same key replaces the previous copy. */
void rt_cache_record(const rt_hook_event *ev, void *user);
/* The cached tensor for (name, head, seq) or NULL; rows and cols receive its shape. Borrowed. */
const float *rt_cache_get(const rt_cache *c, const char *name, int head, int seq, int *rows, int *cols);
/* Hook callback: replaces the event's rows [pos_begin, pos_end) with the cached tensor of the same
 * key (user = const rt_cache *). A missing or differently shaped entry leaves the tensor as it is
 * and logs one line (the patch would be meaningless). */
void rt_iv_patch(const rt_hook_event *ev, void *user);
#endif
