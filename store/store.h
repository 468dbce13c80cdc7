/* store.h — the SQLite store of headscope runs: models, runs, prompts, tokens, activations,
 * per-head statistics and analysis reports. Schema and migrations: docs/schema.md.
 *
 * Writers: a capture submits batches (one transaction each) to a writer thread through a bounded
 * queue, so the forward pass only waits on disk when the queue is full. Readers (analysis passes,
 * the viewer) use the typed reads below and never write SQL of their own. WAL mode lets a reader
 * open the database while a capture writes.
 *
 * Errors: every function returns hs_status and logs one line "store: what (where) — how to fix";
 * on error outputs are left NULL/0 and nothing partial is committed.
 */
#ifndef HS_STORE_H
#define HS_STORE_H
#include "runtime/common.h"

#define STORE_SCHEMA_VERSION 1

typedef struct store_db store_db;
typedef enum { STORE_F32 = 0, STORE_F16 = 1, STORE_BF16 = 2 } store_dtype;

/* Open (creating and migrating to STORE_SCHEMA_VERSION when writable) the database at path.
 * readonly: open without write access (an absent file is then an error). A database whose
 * user_version is newer than this build is refused with a "upgrade headscope" line.
 * Free with store_close. */
hs_status store_open(const char *path, bool readonly, store_db **out);
/* Finalize every statement and close; the last connection checkpoints the WAL into the main file.
 * NULL is a no-op. Not while a writer runs on db (finish it first). */
void store_close(store_db *db);
/* Limit the file size (pages); used by tests to simulate a full disk. A limit below the current
 * size means "the current size": store_set_max_pages(db, 1) freezes the file where it is. */
void store_set_max_pages(store_db *db, int64_t pages);
/* [added] Durability of each commit. false (the default): PRAGMA synchronous=NORMAL — with WAL every
 * commit is atomic and survives a process crash (kill -9); a power loss or OS crash may drop the last
 * commits since the previous checkpoint, never corrupting the file. true: synchronous=FULL — every
 * commit is fsynced (durable against power loss; slower, see bench_store). */
hs_status store_set_synchronous(store_db *db, bool full);
/* [added] PRAGMA integrity_check and foreign_key_check. HS_OK when both are clean; otherwise one
 * error line naming the first problem and HS_EBADINPUT. */
hs_status store_integrity_check(store_db *db);

/* ---- models and runs (synchronous, each its own transaction) ---- */
/* Insert the model row, or return the id of an identical one (same path and sha256). */
hs_status store_model_put(store_db *db, const char *path, const char *format, const char *config_json,
                          const char *sha256_hex, int64_t *model_id);
/* A new run with status "running"; spec_json = the capture spec; version = headscope version. */
hs_status store_run_begin(store_db *db, int64_t model_id, const char *spec_json, int64_t *run_id);
/* status: "running", "complete" or "failed". */
hs_status store_run_set_status(store_db *db, int64_t run_id, const char *status);

typedef struct {
    int64_t id, model_id;
    char *created;        /* ISO-8601 UTC, owned */
    char *spec_json;      /* owned */
    char *version;        /* owned */
    char *status;         /* owned */
    char *model_path;     /* owned */
    char *model_format;   /* owned */
    char *model_config_json; /* owned */
    char *model_sha256;   /* owned: hex sha256 of the model's weights ("" when not hashed) */
    int n_prompts;        /* prompts committed */
} store_run_info;
/* All runs, oldest first. Free with store_runs_free. */
hs_status store_runs_list(store_db *db, store_run_info **runs, int *n);
/* One run; HS_ENOTFOUND (not logged) when absent. Free with store_run_info_clear. */
hs_status store_run_get(store_db *db, int64_t run_id, store_run_info *out);
void store_run_info_clear(store_run_info *r);          /* frees the strings, zeroes *r; NULL ok */
void store_runs_free(store_run_info *runs, int n);     /* clears each and frees the array; NULL ok */

/* ---- asynchronous batched writes ---- */
typedef struct store_batch store_batch;
/* An empty batch for run_id (aborts on out-of-memory). Free with store_batch_free, or hand it to
 * store_writer_submit, which takes it. The add functions abort on arguments that break their
 * contract (programmer errors): NULL strings, ndim outside 1..4, bytes != prod(shape) x dtype size. */
store_batch *store_batch_new(int64_t run_id);
/* Add a prompt with its tokens (ids and display strings, n entries). Copies everything. */
void store_batch_add_prompt(store_batch *b, int prompt_index, const char *text, const int *ids,
                            const char *const *token_strs, int n);
/* Add one activation tensor: hook name (TransformerLens), layer (-1 none), head (-1 whole layer),
 * rows [pos_begin, pos_end) of the prompt, dtype of the blob, shape (ndim <= 4), little-endian blob. Copies. */
void store_batch_add_activation(store_batch *b, int prompt_index, const char *hook, int layer, int head,
                                int pos_begin, int pos_end, store_dtype dtype, const int *shape, int ndim,
                                const void *blob, size_t bytes);
/* Add one statistic; prompt_index = -1 for a run aggregate. metric: 1..31 bytes. Writing an
 * aggregate replaces an earlier value of the same (metric, layer, head); a per-prompt statistic is
 * written once (a duplicate fails the batch). NaN is stored as NULL and read back as NaN. */
void store_batch_add_stat(store_batch *b, int prompt_index, int layer, int head, const char *metric, double value);
/* Memory the batch holds (payload copies + bookkeeping): what counts against queue_bytes. */
size_t store_batch_bytes(const store_batch *b);
void store_batch_free(store_batch *b);                 /* NULL ok */

typedef struct store_writer store_writer;
/* Start the writer thread on db (which it uses exclusively until store_writer_finish).
 * queue_bytes bounds the memory of batches waiting to be written. */
hs_status store_writer_start(store_db *db, size_t queue_bytes, store_writer **out);
/* Hand a batch to the writer (takes ownership, even on error). Blocks while the queue is full.
 * Returns the first error the writer has hit so far (later batches are then discarded). */
hs_status store_writer_submit(store_writer *w, store_batch *b);
/* [added] Wait until every batch submitted so far is committed (or discarded after an error);
 * returns the first write error. The writer keeps running. */
hs_status store_writer_flush(store_writer *w);
/* Write everything queued, stop the thread, free the writer. Returns the first write error. */
hs_status store_writer_finish(store_writer *w);
/* Bytes committed so far (for progress: "MB written"). Thread-safe. */
uint64_t store_writer_bytes_written(store_writer *w);

/* Write a batch synchronously in one transaction (what the writer thread does). On any error the
 * whole batch is rolled back and one line logged: HS_EIO for the environment (disk full, read-only,
 * I/O, locked), HS_EBADINPUT for rows the schema refuses (duplicate prompt, absent run or prompt).
 * The batch stays owned by the caller. An empty batch writes nothing. */
hs_status store_batch_write(store_db *db, const store_batch *b);

/* ---- typed reads ---- */
typedef struct {
    int index, n_tokens;
    char *text;           /* owned */
} store_prompt;
/* Committed prompts of a run, by index ascending (none: *out NULL, *n 0, HS_OK).
 * Free with store_prompts_free. */
hs_status store_prompts_get(store_db *db, int64_t run_id, store_prompt **out, int *n);
void store_prompts_free(store_prompt *p, int n);       /* NULL ok */
/* Prompt indices already committed for a run, ascending (for --resume). Caller frees. */
hs_status store_prompt_indices(store_db *db, int64_t run_id, int **idx, int *n);
/* Token ids and strings of one prompt. Caller frees ids with free() and strs with store_strs_free.
 * HS_ENOTFOUND (not logged) when the prompt is not committed. */
hs_status store_tokens_get(store_db *db, int64_t run_id, int prompt_index, int **ids, char ***strs, int *n);
void store_strs_free(char **strs, int n);              /* NULL ok */

typedef struct {
    int layer, head, pos_begin, pos_end, ndim;
    int shape[4];
    store_dtype dtype;    /* as stored */
    float *data;          /* converted to f32, owned; prod(shape) elements */
} store_tensor;
/* One activation (hook, layer, head) of one prompt, converted to f32. HS_ENOTFOUND (not logged)
 * when absent. Free with store_tensor_clear. */
hs_status store_activation_get(store_db *db, int64_t run_id, int prompt_index, const char *hook, int layer,
                               int head, store_tensor *out);
void store_tensor_clear(store_tensor *t);              /* frees data, zeroes *t; NULL ok */

typedef struct {
    int prompt_index;     /* -1 = run aggregate */
    int layer, head;
    char metric[32];
    double value;
} store_stat;
/* Stats of a run: prompt_index -1 = aggregates only, -2 = all rows; metric NULL = every metric.
 * Ordered by prompt (aggregates first), layer, head, metric. *rows: caller frees with free(). */
hs_status store_stats_get(store_db *db, int64_t run_id, int prompt_index, const char *metric,
                          store_stat **rows, int *n);

/* Reports: params and report as JSON text (params NULL = "{}"); invalid JSON is refused. */
hs_status store_report_put(store_db *db, int64_t run_id, const char *pass, const char *params_json,
                           const char *report_json, int64_t *report_id);
typedef struct { int64_t id, run_id; char *pass, *params_json, *created, *report_json; } store_report;
/* Latest report of `pass` for a run (pass NULL: latest of any). HS_ENOTFOUND (not logged) when none.
 * Free with store_report_clear. */
hs_status store_report_get(store_db *db, int64_t run_id, const char *pass, store_report *out);
void store_report_clear(store_report *r);              /* frees the strings, zeroes *r; NULL ok */

/* Blob dtypes: f16/bf16 encoding is runtime/half.h (rt_f32_to_f16 / rt_f32_to_bf16, round-to-nearest-even);
 * decoding is rt_f16_to_f32 / rt_bf16_to_f32. */
#endif
