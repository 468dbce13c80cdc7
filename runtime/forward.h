/* forward.h — the CPU forward pass (fp32, OpenBLAS sgemm) with hook points.
 *
 * A batch is a list of sequences of different lengths. Their tokens are packed into one
 * (N = ΣT, D) matrix so every projection is one GEMM; attention runs per sequence and head.
 * Attention is computed in query blocks, so no T×T buffer exists unless a scores/pattern hook
 * asks for that head. Memory: weights + one layer's activations (+ optional KV caches).
 *
 * Generation keeps a per-sequence KV cache: a sequence with a cache continues at position
 * cache->len and appends its keys/values, so prefill and token-by-token decoding share one code path.
 */
#ifndef HS_FORWARD_H
#define HS_FORWARD_H
#include "arena.h"
#include "hooks.h"
#include "model.h"

typedef struct {
    float *k, *v;   /* (L, cap, KV*HD) each; owned, free with rt_kv_cache_free */
    int cap;        /* positions it can hold */
    int len;        /* positions filled */
} rt_kv_cache;

/* Allocate a cache for `cap` positions (cap <= n_ctx). Aborts on out-of-memory. */
void rt_kv_cache_init(rt_kv_cache *c, const rt_config *cfg, int cap);
void rt_kv_cache_free(rt_kv_cache *c);

typedef struct {
    const int *ids;       /* (n) token ids, borrowed */
    int n;                /* new tokens, >= 1 */
    rt_kv_cache *cache;   /* optional: positions start at cache->len; K/V appended */
} rt_seq;

typedef struct rt_forward rt_forward;

/* Create a forward context for `m` (borrowed; must outlive the context). Free with rt_forward_free. */
rt_forward *rt_forward_init(const rt_model *m);
void rt_forward_free(rt_forward *f);

/* Run the model on a batch.
 *   seqs:   (n_seqs) sequences; ids are checked against the vocabulary and positions against n_ctx.
 *   spec:   hooks to fire (NULL = none).
 *   last_logits: optional (n_seqs, V) output: the logits of each sequence's last position.
 * Returns HS_EBADINPUT (one logged line) for an out-of-range id or a sequence past n_ctx; caches
 * are then unchanged. Activations live in the context's arena until the next call. */
hs_status rt_forward_run(rt_forward *f, const rt_seq *seqs, int n_seqs, const rt_hook_spec *spec,
                         float *last_logits);

/* One sequence s of a batch against the model (shared by every backend's forward): n >= 1 ids, each
 * in the vocabulary, positions pos0..pos0+n-1 within n_ctx and, when cap >= 0 (a KV cache of cap
 * positions), within the cache. HS_EBADINPUT with one logged line naming sequence s otherwise. */
hs_status rt_check_sequence(const rt_config *c, int s, const int *ids, int n, int pos0, int cap);

/* Peak bytes of activation memory the context has used (for the memory benchmark). */
size_t rt_forward_peak_bytes(const rt_forward *f);
#endif
