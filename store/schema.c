/* schema.c — the store's DDL and forward migrations (docs/schema.md is the prose version).
 *
 * Versioning: PRAGMA user_version holds the schema version (0 = nothing of ours yet) and
 * PRAGMA application_id = STORE_APP_ID marks the file as a headscope database. k_migrations[] is
 * an ordered list of steps; opening a writable database applies every step newer than its
 * user_version inside ONE transaction (BEGIN IMMEDIATE, so two processes opening the same new file
 * cannot both migrate), bumping user_version in the same transaction: a crash leaves the old
 * version or the new one, never a half-migrated file. Steps are append-only: a released step is
 * never edited, a change is a new step.
 * Requires SQLite >= 3.38 (json_valid() in CHECK constraints is built in from there on).
 */
#include "store_internal.h"
#include <stdio.h>
#include <string.h>

#define STORE_APP_ID 0x48645363     /* "HdSc" */
/* Why 64 KiB pages (the largest SQLite allows): blobs dominate the bytes, and SQLite writes the WAL
 * one page per syscall and chains large blobs through overflow pages; bench_store measured 64 KiB
 * fastest for both 64x64 and 512x512 f16 patterns (16 KiB was worst for 64x64: an 8 KiB pattern
 * row is just over half a 16 KiB page, so each took a page of its own: 2x the file). Cost: each
 * commit rewrites the ~8 partly filled leaf pages it touches (~0.5 MB of WAL), so batch prompts. */
#define STORE_PAGE_SIZE 65536

/* v1: the first schema. layer/head NULL in `activations` = no layer / the whole layer; prompt_idx
 * NULL in `head_stats` = run aggregate; expression indexes make those NULLs unique keys too. */
static const char k_schema_v1[] =
    "CREATE TABLE models (\n"
    "  id          INTEGER PRIMARY KEY,\n"
    "  path        TEXT NOT NULL,\n"
    "  format      TEXT NOT NULL,\n"
    "  config_json TEXT NOT NULL CHECK (json_valid(config_json)),\n"
    "  sha256      TEXT NOT NULL CHECK (sha256 = '' OR (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*')),\n"
    "  UNIQUE (path, sha256)\n"
    ");\n"
    "CREATE TABLE runs (\n"
    "  id        INTEGER PRIMARY KEY,\n"
    "  model_id  INTEGER NOT NULL REFERENCES models(id),\n"
    "  created   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "  spec_json TEXT NOT NULL CHECK (json_valid(spec_json)),\n"
    "  version   TEXT NOT NULL,\n"
    "  status    TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed'))\n"
    ");\n"
    "CREATE INDEX runs_model ON runs(model_id);\n"
    "CREATE TABLE prompts (\n"
    "  run_id   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  idx      INTEGER NOT NULL CHECK (idx >= 0),\n"
    "  text     TEXT NOT NULL,\n"
    "  n_tokens INTEGER NOT NULL CHECK (n_tokens >= 0),\n"
    "  PRIMARY KEY (run_id, idx)\n"
    ");\n"
    "CREATE TABLE tokens (\n"
    "  run_id     INTEGER NOT NULL,\n"
    "  prompt_idx INTEGER NOT NULL,\n"
    "  pos        INTEGER NOT NULL CHECK (pos >= 0),\n"
    "  token_id   INTEGER NOT NULL,\n"
    "  str        TEXT NOT NULL,\n"
    "  PRIMARY KEY (run_id, prompt_idx, pos),\n"
    "  FOREIGN KEY (run_id, prompt_idx) REFERENCES prompts(run_id, idx) ON DELETE CASCADE\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE activations (\n"
    "  id         INTEGER PRIMARY KEY,\n"
    "  run_id     INTEGER NOT NULL,\n"
    "  prompt_idx INTEGER NOT NULL,\n"
    "  hook       TEXT NOT NULL,\n"
    "  layer      INTEGER CHECK (layer >= 0),\n"
    "  head       INTEGER CHECK (head >= 0),\n"
    "  pos_begin  INTEGER NOT NULL CHECK (pos_begin >= 0),\n"
    "  pos_end    INTEGER NOT NULL CHECK (pos_end >= pos_begin),\n"
    "  dtype      TEXT NOT NULL CHECK (dtype IN ('f32', 'f16', 'bf16')),\n"
    "  shape      TEXT NOT NULL CHECK (json_valid(shape)),\n"
    "  data       BLOB NOT NULL,\n"
    "  FOREIGN KEY (run_id, prompt_idx) REFERENCES prompts(run_id, idx) ON DELETE CASCADE\n"
    ");\n"
    "CREATE UNIQUE INDEX activations_key ON activations(run_id, prompt_idx, hook, ifnull(layer, -1), ifnull(head, -1));\n"
    "CREATE TABLE head_stats (\n"
    "  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  prompt_idx INTEGER,\n"
    "  layer      INTEGER NOT NULL,\n"
    "  head       INTEGER NOT NULL,\n"
    "  metric     TEXT NOT NULL CHECK (length(metric) BETWEEN 1 AND 31),\n"
    "  value      REAL,\n"
    "  FOREIGN KEY (run_id, prompt_idx) REFERENCES prompts(run_id, idx) ON DELETE CASCADE\n"
    ");\n"
    "CREATE UNIQUE INDEX head_stats_key ON head_stats(run_id, ifnull(prompt_idx, -1), metric, layer, head);\n"
    "CREATE TABLE reports (\n"
    "  id          INTEGER PRIMARY KEY,\n"
    "  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  pass        TEXT NOT NULL,\n"
    "  params_json TEXT NOT NULL CHECK (json_valid(params_json)),\n"
    "  created     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "  report_json TEXT NOT NULL CHECK (json_valid(report_json))\n"
    ");\n"
    "CREATE INDEX reports_run_pass ON reports(run_id, pass, id);\n";

typedef struct { int version; const char *sql; } store_migration;
/* Ordered, append-only; the last entry's version must be STORE_SCHEMA_VERSION. */
static const store_migration k_migrations[] = {
    { 1, k_schema_v1 },
};
#define N_MIGRATIONS ((int)(sizeof k_migrations / sizeof k_migrations[0]))

#define N_TABLES 7   /* models, runs, prompts, tokens, activations, head_stats, reports */

/* One integer from a single-row query; on failure logs one line (what) and returns the status. */
static hs_status query_int(store_db *db, const char *sql, const char *what, int64_t *out) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        hs_status st = store_sql_fail(db, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, NULL, "%s", what);
        sqlite3_finalize(s);
        return st;
    }
    *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return HS_OK;
}

static hs_status migrate(store_db *db) {
    char sql[96];
    int64_t ver = 0;
    hs_status st = store_exec(db, "BEGIN IMMEDIATE", "cannot start the schema migration");
    if (st) return st;
    /* Re-read inside the write lock: another process may have migrated since we looked. */
    if ((st = query_int(db, "PRAGMA user_version", "cannot read the schema version", &ver))) goto fail;
    for (int i = 0; i < N_MIGRATIONS; i++) {
        if (k_migrations[i].version <= ver) continue;
        if ((st = store_exec(db, k_migrations[i].sql, "cannot create the schema"))) goto fail;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", k_migrations[i].version);
        if ((st = store_exec(db, sql, "cannot record the schema version"))) goto fail;
        if (k_migrations[i].version == 1) {
            snprintf(sql, sizeof sql, "PRAGMA application_id = %d", STORE_APP_ID);
            if ((st = store_exec(db, sql, "cannot mark the database as headscope's"))) goto fail;
        }
    }
    return store_exec(db, "COMMIT", "cannot commit the schema migration");
fail:
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

hs_status store_schema_prepare(store_db *db) {
    HS_ASSERT(k_migrations[N_MIGRATIONS - 1].version == STORE_SCHEMA_VERSION);
    int64_t ver = 0, app = 0, n_tables = 0, n_ours = 0;
    hs_status st;
    /* The first read of the file: a non-SQLite file fails here with SQLITE_NOTADB. */
    if ((st = query_int(db, "PRAGMA user_version", "cannot read the database header", &ver))) return st;
    if ((st = query_int(db, "PRAGMA application_id", "cannot read the database header", &app))) return st;
    if ((st = query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                        "cannot list the tables", &n_tables))) return st;
    if (ver > STORE_SCHEMA_VERSION) {
        hs_log_error("store", "%s has schema version %lld, newer than this headscope (%d) — upgrade headscope",
                     db->path, (long long)ver, STORE_SCHEMA_VERSION);
        return HS_EUNSUPPORTED;
    }
    if ((app != 0 && app != STORE_APP_ID) || (ver == 0 && n_tables > 0) || (ver > 0 && app != STORE_APP_ID)) {
        hs_log_error("store", "not a headscope database: %lld tables of another application, schema version %lld (%s) "
                     "— check the --db path, or choose a new file", (long long)n_tables, (long long)ver, db->path);
        return HS_EBADINPUT;
    }
    if (ver == 0 && db->readonly) {
        hs_log_error("store", "database is empty, no headscope run in it (%s) — check the path, or run a capture first",
                     db->path);
        return HS_EBADINPUT;
    }
    if (ver < STORE_SCHEMA_VERSION && db->readonly) {
        hs_log_error("store", "database has schema version %lld, older than this headscope (%d), and was opened "
                     "read-only (%s) — open it once writable (e.g. headscope capture --resume) to migrate it",
                     (long long)ver, STORE_SCHEMA_VERSION, db->path);
        return HS_EUNSUPPORTED;
    }
    if (ver == 0) {
        /* page_size only takes effect before the first table exists, and before WAL is on. */
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d", STORE_PAGE_SIZE);
        if ((st = store_exec(db, sql, "cannot set the page size"))) return st;
    }
    if (!db->readonly) {
        /* WAL: readers never block the writer nor see a half-written batch; persistent in the file. */
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            st = store_sql_fail(db, rc, NULL, "cannot switch the database to WAL mode");
            sqlite3_finalize(s);
            return st;
        }
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        bool wal = mode && strcmp(mode, "wal") == 0;
        sqlite3_finalize(s);
        if (!wal) {
            hs_log_error("store", "cannot switch the database to WAL mode, journal mode stays '%s' (%s) — put the "
                         "database on a local file system (WAL needs shared memory; NFS and some FUSE mounts lack it)",
                         mode ? mode : "?", db->path);
            return HS_EIO;
        }
        if (ver < STORE_SCHEMA_VERSION && (st = migrate(db))) return st;
    }
    if ((st = query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                            "('models', 'runs', 'prompts', 'tokens', 'activations', 'head_stats', 'reports')",
                        "cannot list the tables", &n_ours))) return st;
    if (n_ours != N_TABLES) {
        hs_log_error("store", "database is marked as headscope's but lacks %lld of its %d tables (%s) — the file is "
                     "damaged: restore it or capture again into a new file",
                     (long long)(N_TABLES - n_ours), N_TABLES, db->path);
        return HS_EBADINPUT;
    }
    return HS_OK;
}
