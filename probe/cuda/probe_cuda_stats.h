/* probe_cuda_stats.h — the per-head online statistics of probe/stats.h, reduced on the GPU.
 *
 * The GPU forward never stores a pattern it was not asked for, so the statistics are computed
 * right after each layer's attention from what the attention kernel leaves behind: the rotated
 * q and k and each row's log-sum-exp. A kernel recomputes p_ij = exp(scale·q_i·k_j − lse_i) tile
 * by tile (the same fp32 dot product, in the same order, as the attention kernel), folds every
 * metric of probe_head_stats over the row and adds the row sums into a (seq, layer, head, metric)
 * array of doubles. Only that array crosses PCIe: n_seqs·L·H·8 doubles per forward.
 * Metrics, BOS-query exclusion and the duplicate/induction definitions are probe_head_stats's;
 * tests/test_cuda.c checks the two agree (relative error <= 1e-4 in the fp32 mode).
 *
 * Usage around a forward on context g:
 *   probe_cuda_stats_begin(st, n_seqs, ids, n_ids, has_repeat);   installs the attention hook
 *   rt_gpu_forward_run(g, seqs, n_seqs, spec, logits);
 *   probe_cuda_stats_end(st, sums);                               removes it, copies sums back
 * Works on the emulated (CPU reference) backend too, through probe_cuda_stats_ref.
 */
#ifndef HS_PROBE_CUDA_STATS_H
#define HS_PROBE_CUDA_STATS_H
#ifdef __cplusplus
extern "C" {
#endif
#include "probe/stats.h"
#include "runtime/gpu.h"

typedef struct probe_cuda_stats probe_cuda_stats;

/* Buffers for batches of up to max_seqs sequences whose keys span up to max_tokens positions,
 * for a model of n_layers × n_heads. g is borrowed (must outlive the object). HS_EIO (one line)
 * when the device is out of memory; *out = NULL then. */
hs_status probe_cuda_stats_init(rt_gpu *g, int n_layers, int n_heads, int max_seqs, int max_tokens,
                                probe_cuda_stats **out);
void probe_cuda_stats_free(probe_cuda_stats *s);

/* Start a forward's statistics: ids[s] (n_ids[s]) are sequence s's token ids from position 0
 * (covering every key position of the coming forward); has_repeat[s] as probe_has_repeat. Zeroes
 * the sums and installs the attention hook on g. HS_EBADINPUT (one line) beyond the init sizes. */
hs_status probe_cuda_stats_begin(probe_cuda_stats *s, int n_seqs, const int *const *ids, const int *n_ids,
                                 const bool *has_repeat);
/* Finish: removes the hook, waits, and writes out (n_seqs, L, H) sums (the same numbers
 * probe_head_stats would have accumulated from every head's pattern). HS_EIO (one line) if a
 * kernel failed or a sequence outran its ids. */
hs_status probe_cuda_stats_end(probe_cuda_stats *s, probe_head_sums *out);

/* The attention hook that begin installs (exposed for tests that drive it themselves). */
void probe_cuda_stats_on_attn(const rt_gpu_attn_event *ev, void *user);

/* CPU reference of the kernel for one event (host memory): adds into sums (H, PROBE_M_N). */
void probe_cuda_stats_ref(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums);
/* The kernel (probe_cuda_stats_kernel.cu, CUDA builds only): the same on device memory, queued on
 * ev->stream. Returns NULL, or a static text describing a launch failure. */
const char *probe_cuda_stats_launch(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums);
/* The events of one layer at once (n events of the same shapes, mode and stream; ids[i],
 * has_repeat[i], sums[i] per event): bf16 events share launches (grid over sequences), so a
 * batch of short sequences fills the GPU. NULL or a static error text. */
const char *probe_cuda_stats_launch_batch(const rt_gpu_attn_event *evs, int n, const int *const *ids,
                                          const bool *has_repeat, double *const *sums);

#ifdef __cplusplus
}
#endif
#endif
