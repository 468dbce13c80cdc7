/* store.c — opening and closing the store, the cached statements, the error path, and the small
 * synchronous writes (models, runs, reports). Batches: batch.c; the writer thread: writer.c;
 * typed reads: read.c; DDL and migrations: schema.c.
 *
 * Durability settings (docs/schema.md): WAL with synchronous=NORMAL by default. A commit is then
 * atomic and survives a crash of the process (kill -9) at any instant; an OS crash or power loss
 * can lose the last commits since the previous checkpoint but never corrupts the file or leaves a
 * half-written batch. store_set_synchronous(db, true) makes every commit durable against power
 * loss too (one fsync per commit; bench_store prints the cost).
 */
#include "store_internal.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const k_store_dtype_name[3] = { "f32", "f16", "bf16" };
size_t store_dtype_size(store_dtype dt) { return dt == STORE_F32 ? 4 : 2; }

#define RUN_COLS "SELECT r.id, r.model_id, r.created, r.spec_json, r.version, r.status, m.path, m.format, " \
                 "m.config_json, m.sha256, (SELECT count(*) FROM prompts p WHERE p.run_id = r.id) " \
                 "FROM runs r JOIN models m ON m.id = r.model_id"
#define STAT_COLS "SELECT ifnull(prompt_idx, -1), layer, head, metric, value FROM head_stats "
#define REPORT_COLS "SELECT id, run_id, pass, params_json, created, report_json FROM reports "

/* Reads name the expression-index terms (ifnull(...)) literally so the planner uses those indexes. */
static const char *const k_store_sql[SQ_COUNT] = {
    [SQ_MODEL_FIND] = "SELECT id FROM models WHERE path = ?1 AND sha256 = ?2",
    [SQ_MODEL_INSERT] = "INSERT INTO models(path, format, config_json, sha256) VALUES(?1, ?2, ?3, ?4)",
    [SQ_RUN_INSERT] = "INSERT INTO runs(model_id, spec_json, version, status) VALUES(?1, ?2, ?3, 'running')",
    [SQ_RUN_STATUS] = "UPDATE runs SET status = ?2 WHERE id = ?1",
    [SQ_RUNS_LIST] = RUN_COLS " ORDER BY r.id",
    [SQ_RUN_GET] = RUN_COLS " WHERE r.id = ?1",
    [SQ_PROMPT_INSERT] = "INSERT INTO prompts(run_id, idx, text, n_tokens) VALUES(?1, ?2, ?3, ?4)",
    [SQ_TOKEN_INSERT] = "INSERT INTO tokens(run_id, prompt_idx, pos, token_id, str) VALUES(?1, ?2, ?3, ?4, ?5)",
    [SQ_ACT_INSERT] = "INSERT INTO activations(run_id, prompt_idx, hook, layer, head, pos_begin, pos_end, dtype, "
                      "shape, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [SQ_STAT_INSERT] = "INSERT INTO head_stats(run_id, prompt_idx, layer, head, metric, value) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    /* Aggregates are recomputed as a run grows (and after a resume): the newest value replaces the old. */
    [SQ_STAT_UPSERT_AGG] = "INSERT OR REPLACE INTO head_stats(run_id, prompt_idx, layer, head, metric, value) "
                           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [SQ_PROMPTS_GET] = "SELECT idx, n_tokens, text FROM prompts WHERE run_id = ?1 ORDER BY idx",
    [SQ_PROMPT_INDICES] = "SELECT idx FROM prompts WHERE run_id = ?1 ORDER BY idx",
    [SQ_PROMPT_NTOK] = "SELECT n_tokens FROM prompts WHERE run_id = ?1 AND idx = ?2",
    [SQ_TOKENS_GET] = "SELECT pos, token_id, str FROM tokens WHERE run_id = ?1 AND prompt_idx = ?2 ORDER BY pos",
    [SQ_ACT_GET] = "SELECT layer, head, pos_begin, pos_end, dtype, shape, data FROM activations "
                   "WHERE run_id = ?1 AND prompt_idx = ?2 AND hook = ?3 AND ifnull(layer, -1) = ?4 "
                   "AND ifnull(head, -1) = ?5",
    [SQ_STATS_ONE] = STAT_COLS "WHERE run_id = ?1 AND ifnull(prompt_idx, -1) = ?2 AND (?3 IS NULL OR metric = ?3) "
                     "ORDER BY layer, head, metric",
    [SQ_STATS_ALL] = STAT_COLS "WHERE run_id = ?1 ORDER BY ifnull(prompt_idx, -1), layer, head, metric",
    /* no (run_id, metric) index: it cost a third of the stat insert time (bench_store); this scans the run */
    [SQ_STATS_ALL_METRIC] = STAT_COLS "WHERE run_id = ?1 AND metric = ?2 ORDER BY ifnull(prompt_idx, -1), layer, head",
    [SQ_REPORT_INSERT] = "INSERT INTO reports(run_id, pass, params_json, report_json) VALUES(?1, ?2, ?3, ?4)",
    [SQ_REPORT_LATEST] = REPORT_COLS "WHERE run_id = ?1 ORDER BY id DESC LIMIT 1",
    [SQ_REPORT_LATEST_PASS] = REPORT_COLS "WHERE run_id = ?1 AND pass = ?2 ORDER BY id DESC LIMIT 1",
};

/* ------------------------------------------------------------------ errors */

static const char *generic_hint(const store_db *db, int rc) {
    switch (rc & 0xFF) {
    case SQLITE_FULL:
        return "free disk space (or write the database elsewhere) and resume; the failed batch was rolled back";
    case SQLITE_READONLY:
        return db && db->readonly ? "the database was opened read-only: open it writable to change it"
                                  : "the file or its directory is read-only: fix the permissions or choose another --db";
    case SQLITE_IOERR:
        return "check the disk (dmesg, free space) and resume; the failed batch was rolled back";
    case SQLITE_BUSY: case SQLITE_LOCKED:
        return "another process holds the database: wait for it to finish or stop it";
    case SQLITE_CANTOPEN:
        return "check that the directory exists and that you may write to it";
    case SQLITE_PERM: case SQLITE_AUTH:
        return "check the permissions of the file and its directory";
    case SQLITE_NOTADB:
        return "this file is not a headscope database: check the --db path";
    case SQLITE_CORRUPT:
        return "the database is damaged: restore it from a copy or capture again into a new file";
    case SQLITE_CONSTRAINT: case SQLITE_MISMATCH: case SQLITE_TOOBIG: case SQLITE_RANGE:
        return "the values passed break the schema (docs/schema.md): fix the caller";
    default:
        return "see docs/schema.md; if it persists, report it with the database file";
    }
}

hs_status store_sql_fail(store_db *db, int rc, const char *hint, const char *what_fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, ap);
    va_end(ap);
    const char *msg = db && db->h && sqlite3_errcode(db->h) == rc ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
    hs_log_error("store", "%s: %s (%s) — %s", what, msg, db ? db->path : "?", hint ? hint : generic_hint(db, rc));
    switch (rc & 0xFF) {
    case SQLITE_CONSTRAINT: case SQLITE_MISMATCH: case SQLITE_TOOBIG: case SQLITE_RANGE:
    case SQLITE_NOTADB: case SQLITE_CORRUPT: case SQLITE_FORMAT:
        return HS_EBADINPUT;
    default:
        return HS_EIO;
    }
}

hs_status store_exec(store_db *db, const char *sql, const char *what) {
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? HS_OK : store_sql_fail(db, sqlite3_extended_errcode(db->h), NULL, "%s", what);
}

sqlite3_stmt *store_sq(store_db *db, store_sq_id which) {
    HS_ASSERT(which >= 0 && which < SQ_COUNT && k_store_sql[which]);
    if (!db->stmt[which]) {
        int rc = sqlite3_prepare_v3(db->h, k_store_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[which], NULL);
        if (rc != SQLITE_OK) {
            store_sql_fail(db, rc, NULL, "cannot prepare a statement");
            sqlite3_finalize(db->stmt[which]);
            db->stmt[which] = NULL;
        }
    }
    return db->stmt[which];
}

char *store_col_strdup(sqlite3_stmt *s, int col) {
    const unsigned char *t = sqlite3_column_text(s, col);
    if (!t) return NULL;
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    char *d = hs_xmalloc(n + 1);
    memcpy(d, t, n);
    d[n] = 0;
    return d;
}

/* ------------------------------------------------------------------ open / close */

/* One line for a failed sqlite3_open_v2, saying which of the usual causes it is (SQLite's own
 * errno is often the last fallback's ENOENT, whatever the real cause). */
static void open_failed(const char *path, bool readonly, int rc, int sys_errno) {
    char dir[4096];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) slash[1] = 0;
    else *slash = 0;
    const char *why = sys_errno ? strerror(sys_errno) : sqlite3_errstr(rc);
    if (readonly)
        hs_log_error("store", "cannot open database: %s (%s) — check the path (a read-only open needs an existing "
                     "database)", why, path);
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        hs_log_error("store", "cannot create database: directory %s does not exist (%s) — create it or choose "
                     "another --db", dir, path);
    else if (access(path, F_OK) != 0 && access(dir, W_OK | X_OK) != 0)
        hs_log_error("store", "cannot create database: directory %s is not writable: %s (%s) — fix its "
                     "permissions or choose another --db", dir, strerror(errno), path);
    else
        hs_log_error("store", "cannot open database: %s (%s) — check the permissions of the file and its "
                     "directory", why, path);
}

hs_status store_open(const char *path, bool readonly, store_db **out) {
    hs_status st = HS_EIO;
    int rc;
    *out = NULL;
    store_db *db = hs_xcalloc(1, sizeof *db);
    db->path = hs_xstrdup(path);
    db->readonly = readonly;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    rc = sqlite3_open_v2(path, &db->h, flags, NULL);
    if (rc != SQLITE_OK) {
        open_failed(path, readonly, rc, db->h ? sqlite3_system_errno(db->h) : 0);
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    /* A reader may meet a checkpoint or WAL recovery in progress: wait instead of failing. */
    sqlite3_busy_timeout(db->h, 5000);
    if (!readonly && sqlite3_db_readonly(db->h, "main") == 1) {
        /* SQLite silently falls back to read-only when the file cannot be opened for writing. */
        hs_log_error("store", "database file is read-only (%s) — fix its permissions (chmod u+w, chattr -i) "
                     "or choose another --db", path);
        goto fail;
    }
    if ((st = store_schema_prepare(db))) goto fail;
    if ((st = store_exec(db, "PRAGMA foreign_keys = ON", "cannot enable foreign keys"))) goto fail;
    if (!readonly) {
        /* NORMAL is safe with WAL (atomic, crash-consistent); see the file header for what it trades. */
        if ((st = store_exec(db, "PRAGMA synchronous = NORMAL", "cannot set the sync mode"))) goto fail;
        /* Why a 32 MiB page cache (512 pages): a batch of large patterns then stays in memory until
         * COMMIT instead of spilling to the WAL mid-transaction. The WAL is checkpointed into the main
         * file every 1000 pages (SQLite's default: 64 MiB at this page size) and at close. */
        if ((st = store_exec(db, "PRAGMA cache_size = -32768", "cannot set the cache size"))) goto fail;
    }
    *out = db;
    return HS_OK;
fail:
    store_close(db);
    return st ? st : HS_EIO;
}

void store_close(store_db *db) {
    if (!db) return;
    for (int i = 0; i < SQ_COUNT; i++) sqlite3_finalize(db->stmt[i]);
    /* The last connection to close checkpoints the WAL into the main file and removes it. */
    int rc = sqlite3_close(db->h);
    HS_ASSERT(rc == SQLITE_OK);   /* every statement is finalized above: BUSY here is a bug */
    free(db->path);
    free(db);
}

void store_set_max_pages(store_db *db, int64_t pages) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
    /* A pragma that returns a row: step it once; it cannot fail on a valid handle. */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, &s, NULL) == SQLITE_OK) sqlite3_step(s);
    sqlite3_finalize(s);
}

hs_status store_set_synchronous(store_db *db, bool full) {
    return store_exec(db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                      "cannot set the sync mode");
}

hs_status store_integrity_check(store_db *db) {
    static const char *const checks[2] = { "PRAGMA integrity_check", "PRAGMA foreign_key_check" };
    for (int c = 0; c < 2; c++) {
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(db->h, checks[c], -1, &s, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            hs_status st = store_sql_fail(db, rc, NULL, "%s failed", checks[c]);
            sqlite3_finalize(s);
            return st;
        }
        bool bad = c == 0 ? !(sqlite3_column_text(s, 0) && strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0)
                          : rc == SQLITE_ROW;
        if (bad) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            hs_log_error("store", "database is damaged: %s reports '%s' (%s) — restore it from a copy or capture "
                         "again into a new file", checks[c], t ? t : "?", db->path);
            sqlite3_finalize(s);
            return HS_EBADINPUT;
        }
        sqlite3_finalize(s);
    }
    return HS_OK;
}

/* ------------------------------------------------------------------ models, runs, reports */

hs_status store_model_put(store_db *db, const char *path, const char *format, const char *config_json,
                          const char *sha256_hex, int64_t *model_id) {
    const char *sha = sha256_hex ? sha256_hex : "";
    hs_status st = HS_OK;
    int rc;
    *model_id = 0;
    sqlite3_stmt *s = store_sq(db, SQ_MODEL_FIND);
    if (!s) return HS_EIO;
    store_bind_text(s, 1, path);
    store_bind_text(s, 2, sha);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) { *model_id = sqlite3_column_int64(s, 0); goto done; }
    if (rc != SQLITE_DONE) { st = store_sql_fail(db, rc, NULL, "cannot look up model %s", path); goto done; }
    store_sq_done(s);
    if (!(s = store_sq(db, SQ_MODEL_INSERT))) return HS_EIO;
    store_bind_text(s, 1, path);
    store_bind_text(s, 2, format);
    store_bind_text(s, 3, config_json ? config_json : "{}");
    store_bind_text(s, 4, sha);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        st = store_sql_fail(db, rc, "pass a path, a format, config JSON and a 64-digit lowercase hex sha256 (or NULL)",
                            "cannot record model %s", path ? path : "(null)");
        goto done;
    }
    *model_id = sqlite3_last_insert_rowid(db->h);
done:
    store_sq_done(s);
    return st;
}

hs_status store_run_begin(store_db *db, int64_t model_id, const char *spec_json, int64_t *run_id) {
    hs_status st = HS_OK;
    *run_id = 0;
    sqlite3_stmt *s = store_sq(db, SQ_RUN_INSERT);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, model_id);
    store_bind_text(s, 2, spec_json ? spec_json : "{}");
    store_bind_text(s, 3, HS_VERSION);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        st = store_sql_fail(db, rc, "pass the id from store_model_put and the capture spec as valid JSON",
                            "cannot begin a run of model %lld", (long long)model_id);
    else
        *run_id = sqlite3_last_insert_rowid(db->h);
    store_sq_done(s);
    return st;
}

hs_status store_run_set_status(store_db *db, int64_t run_id, const char *status) {
    if (!status || (strcmp(status, "running") && strcmp(status, "complete") && strcmp(status, "failed"))) {
        hs_log_error("store", "invalid run status '%s' (%s) — use running, complete or failed",
                     status ? status : "(null)", db->path);
        return HS_EBADINPUT;
    }
    hs_status st = HS_OK;
    sqlite3_stmt *s = store_sq(db, SQ_RUN_STATUS);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    store_bind_text(s, 2, status);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        st = store_sql_fail(db, rc, NULL, "cannot mark run %lld %s", (long long)run_id, status);
    } else if (sqlite3_changes(db->h) == 0) {
        hs_log_error("store", "run %lld does not exist (%s) — list the runs with headscope runs", (long long)run_id,
                     db->path);
        st = HS_ENOTFOUND;
    }
    store_sq_done(s);
    return st;
}

hs_status store_report_put(store_db *db, int64_t run_id, const char *pass, const char *params_json,
                           const char *report_json, int64_t *report_id) {
    hs_status st = HS_OK;
    *report_id = 0;
    sqlite3_stmt *s = store_sq(db, SQ_REPORT_INSERT);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    store_bind_text(s, 2, pass);
    store_bind_text(s, 3, params_json ? params_json : "{}");
    store_bind_text(s, 4, report_json);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        st = store_sql_fail(db, rc, "pass an existing run id, a pass name and valid JSON params and report",
                            "cannot store the %s report of run %lld", pass ? pass : "(null)", (long long)run_id);
    else
        *report_id = sqlite3_last_insert_rowid(db->h);
    store_sq_done(s);
    return st;
}
