/* store_internal.h — private to the store/ sources: the database handle, the cached statements, the batch
 * layout and the one error path every SQLite failure goes through.
 *
 * Statements are prepared once per connection (lazily, SQLITE_PREPARE_PERSISTENT) and reset after
 * every use, so no read transaction outlives a call (an open one would pin the WAL and block
 * checkpoints) and the hot paths (batch writes, activation reads) never re-parse SQL.
 */
#ifndef HS_STORE_INTERNAL_H
#define HS_STORE_INTERNAL_H
#include "store/store.h"
#include <sqlite3.h>

/* Cached statements; their SQL is k_store_sql[] in store.c. */
typedef enum {
    SQ_MODEL_FIND, SQ_MODEL_INSERT, SQ_RUN_INSERT, SQ_RUN_STATUS,
    SQ_RUNS_LIST, SQ_RUN_GET,
    SQ_PROMPT_INSERT, SQ_TOKEN_INSERT, SQ_ACT_INSERT, SQ_STAT_INSERT, SQ_STAT_UPSERT_AGG,
    SQ_PROMPTS_GET, SQ_PROMPT_INDICES, SQ_PROMPT_NTOK, SQ_TOKENS_GET, SQ_ACT_GET,
    SQ_STATS_ONE, SQ_STATS_ALL, SQ_STATS_ALL_METRIC,
    SQ_REPORT_INSERT, SQ_REPORT_LATEST, SQ_REPORT_LATEST_PASS,
    SQ_COUNT
} store_sq_id;

struct store_db {
    sqlite3 *h;
    char *path;                 /* owned: the path as given, for error lines */
    bool readonly;              /* opened with readonly=true */
    sqlite3_stmt *stmt[SQ_COUNT];
};

/* ---- batch: records point into a chunked arena, so each payload byte is copied exactly once
 * (no realloc ever moves a blob) and the writer thread needs no allocation at all. ---- */
typedef struct store_chunk store_chunk;
typedef struct {
    int index, n;
    const char *text;
    const int *ids;             /* (n) */
    const char *const *strs;    /* (n) */
} store_batch_prompt;
typedef struct {
    int prompt, layer, head, pos_begin, pos_end, ndim;
    int shape[4];
    store_dtype dtype;
    const char *hook;
    const void *blob;
    size_t bytes;
} store_batch_act;
typedef struct {
    int prompt, layer, head;
    const char *metric;
    double value;
} store_batch_stat;

struct store_batch {
    int64_t run_id;
    store_chunk *chunks, *cur;  /* every chunk, newest first; cur = the one small items go into */
    size_t arena_bytes;         /* bytes of all chunks (memory held) */
    size_t payload_bytes;       /* bytes copied in (what "MB written" counts) */
    store_batch_prompt *prompts; int n_prompts, cap_prompts;
    store_batch_act *acts; int n_acts, cap_acts;
    store_batch_stat *stats; int n_stats, cap_stats;
    store_batch *next;          /* writer queue link */
};

/* The cached statement `which`, prepared on first use; NULL after logging one line on failure.
 * The caller resets it (store_sq_done) before returning. */
sqlite3_stmt *store_sq(store_db *db, store_sq_id which);
static inline void store_sq_done(sqlite3_stmt *s) { if (s) { sqlite3_reset(s); sqlite3_clear_bindings(s); } }

/* Log ONE line for SQLite result rc: "store: WHAT: sqlite message (PATH) — how to fix" and return
 * the hs_status it maps to (FULL/READONLY/IOERR/BUSY/CANTOPEN -> HS_EIO; CONSTRAINT/NOTADB/CORRUPT
 * -> HS_EBADINPUT). hint, when not NULL, replaces the generic how-to-fix text. */
hs_status store_sql_fail(store_db *db, int rc, const char *hint, const char *what_fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Run SQL without results (pragmas, BEGIN/COMMIT); on failure log one line naming `what`. */
hs_status store_exec(store_db *db, const char *sql, const char *what);

/* Bind text that may be NULL as SQL NULL; SQLITE_STATIC: the caller keeps it alive until reset. */
static inline int store_bind_text(sqlite3_stmt *s, int i, const char *t) {
    return t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}
/* Copy of a text column (NULL column -> NULL). */
char *store_col_strdup(sqlite3_stmt *s, int col);

/* schema.c: check identity and version, create/migrate to STORE_SCHEMA_VERSION (writable only). */
hs_status store_schema_prepare(store_db *db);

extern const char *const k_store_dtype_name[3];   /* "f32", "f16", "bf16" */
size_t store_dtype_size(store_dtype dt);
#endif
