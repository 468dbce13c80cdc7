/* capture.h — run prompts through a model and write a durable SQLite run:
 * prompts, tokens, requested activations and online per-head statistics.
 *
 * Pipeline: forward pass (hooks reduce/copy what was asked) -> a store batch per group of prompts
 * -> the store's writer thread (bounded queue; one transaction per batch). Compute waits on disk
 * only when the queue is full. A killed capture leaves every committed prompt complete and the run
 * "running"; probe_capture_run with resume = true continues it from the spec stored in the run.
 */
#ifndef HS_PROBE_CAPTURE_H
#define HS_PROBE_CAPTURE_H
#include "runtime/common.h"
#include "runtime/gpu.h"
#include "store/store.h"

typedef struct {
    const char *model;        /* MODEL path (ignored on resume: taken from the run) */
    const char *tokenizer;    /* optional override */
    const char *db;           /* RUN.db */
    const char *prompts;      /* .txt / .jsonl, or NULL with corpus */
    const char *corpus;       /* long text to slice, or NULL */
    int window, stride;       /* corpus windows in tokens */
    const char *hooks;        /* comma-separated hook names to store ("" = statistics only) */
    const char *layers, *heads;   /* selections, "all" by default */
    const char *positions;    /* "all", "last" or "A-B" */
    store_dtype dtype;        /* blob dtype */
    int batch;                /* prompts per forward pass and per transaction */
    int max_tokens;           /* truncate prompts to this many tokens (0 = no limit) */
    bool stats;               /* compute online statistics (default true) */
    bool resume;              /* continue the latest unfinished run in db */
    int64_t max_pages;        /* test hook: SQLite max_page_count (0 = unlimited) */
    bool quiet;               /* no progress lines */
    /* --device cuda: the forward on the GPU (runtime/gpu.h) with the statistics reduced on the
     * device (probe/cuda) instead of the CPU pattern hook; requested activations still reach the
     * store through the same hook callbacks. Recorded in the run's spec, so --resume uses it. */
    bool cuda;
    int device;               /* CUDA device index */
    rt_gpu_dtype gpu_dtype;   /* --gpu-dtype f32|bf16 (default bf16) */
    bool gpu_emulate;         /* tests: the GPU code path on the CPU-reference kernels (kept on resume) */
    int fail_after_batches;   /* test hook: fail as a GPU failure would after this many batches (0 = never; kept on resume) */
} probe_capture_opts;

/* Defaults for every field (stats on, dtype f16, batch 8, positions all, hooks "", cpu; gpu_dtype bf16). */
void probe_capture_defaults(probe_capture_opts *o);
/* Run (or resume) a capture. On error logs one line; the run is marked "failed" when the failure
 * is not the database's own (a database that cannot be written cannot record it either) — this
 * includes GPU failures (no device, out of GPU memory, a failed kernel): the run becomes "failed",
 * prompts committed before stay, and --resume continues it.
 * *run_id (may be NULL) receives the run written. */
hs_status probe_capture_run(const probe_capture_opts *o, int64_t *run_id);
#endif
