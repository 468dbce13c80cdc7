/* read.c — the typed reads: runs, prompts, tokens, activations (converted to f32), stats, reports.
 *
 * Parsers trust nothing: the database may be damaged or written by something else, so every
 * integer is range-checked before it becomes an int, every shape is parsed strictly (1-4 dims,
 * each 0..INT_MAX, product overflow-checked) and every blob must be exactly prod(shape) x dtype size
 * bytes; anything else is one error line and HS_EBADINPUT, never a crash or a short read.
 * Each call is one statement (or two on immutable rows), reset before returning, so a reader never
 * holds a WAL snapshot between calls and sees every batch either whole or not at all.
 */
#include "store_internal.h"
#include "runtime/half.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "blobs are little-endian and copied as is");

/* Integer column within [lo, hi]; false (nothing logged) when NULL, not an integer, or out of range. */
static bool col_int(sqlite3_stmt *s, int col, int64_t lo, int64_t hi, int *out) {
    if (sqlite3_column_type(s, col) != SQLITE_INTEGER) return false;
    int64_t v = sqlite3_column_int64(s, col);
    if (v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static hs_status damaged(store_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static hs_status damaged(store_db *db, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    hs_log_error("store", "%s (%s) — the database is damaged or was written by another program: restore it "
                 "or capture again", what, db->path);
    return HS_EBADINPUT;
}

/* ------------------------------------------------------------------ runs */

static void run_fill(sqlite3_stmt *s, store_run_info *r) {
    r->id = sqlite3_column_int64(s, 0);
    r->model_id = sqlite3_column_int64(s, 1);
    r->created = store_col_strdup(s, 2);
    r->spec_json = store_col_strdup(s, 3);
    r->version = store_col_strdup(s, 4);
    r->status = store_col_strdup(s, 5);
    r->model_path = store_col_strdup(s, 6);
    r->model_format = store_col_strdup(s, 7);
    r->model_config_json = store_col_strdup(s, 8);
    r->model_sha256 = store_col_strdup(s, 9);
    int64_t n = sqlite3_column_int64(s, 10);
    r->n_prompts = n > INT_MAX ? INT_MAX : (int)n;
}

void store_run_info_clear(store_run_info *r) {
    if (!r) return;
    free(r->created); free(r->spec_json); free(r->version); free(r->status);
    free(r->model_path); free(r->model_format); free(r->model_config_json); free(r->model_sha256);
    memset(r, 0, sizeof *r);
}

void store_runs_free(store_run_info *runs, int n) {
    for (int i = 0; i < n; i++) store_run_info_clear(&runs[i]);
    free(runs);
}

hs_status store_runs_list(store_db *db, store_run_info **runs, int *n) {
    *runs = NULL; *n = 0;
    sqlite3_stmt *s = store_sq(db, SQ_RUNS_LIST);
    if (!s) return HS_EIO;
    store_run_info *v = NULL;
    int cnt = 0, cap = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) { cap = cap ? cap * 2 : 8; v = hs_xrealloc(v, (size_t)cap * sizeof *v); }
        memset(&v[cnt], 0, sizeof *v);
        run_fill(s, &v[cnt++]);
    }
    if (rc != SQLITE_DONE) {
        hs_status st = store_sql_fail(db, rc, NULL, "cannot list the runs");
        store_sq_done(s);
        store_runs_free(v, cnt);
        return st;
    }
    store_sq_done(s);
    *runs = v; *n = cnt;
    return HS_OK;
}

hs_status store_run_get(store_db *db, int64_t run_id, store_run_info *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store_sq(db, SQ_RUN_GET);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    int rc = sqlite3_step(s);
    hs_status st = HS_OK;
    if (rc == SQLITE_ROW) run_fill(s, out);
    else if (rc == SQLITE_DONE) st = HS_ENOTFOUND;
    else st = store_sql_fail(db, rc, NULL, "cannot read run %lld", (long long)run_id);
    store_sq_done(s);
    return st;
}

/* ------------------------------------------------------------------ prompts and tokens */

void store_prompts_free(store_prompt *p, int n) {
    for (int i = 0; i < n; i++) free(p[i].text);
    free(p);
}

hs_status store_prompts_get(store_db *db, int64_t run_id, store_prompt **out, int *n) {
    *out = NULL; *n = 0;
    sqlite3_stmt *s = store_sq(db, SQ_PROMPTS_GET);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    store_prompt *v = NULL;
    int cnt = 0, cap = 0, rc;
    hs_status st = HS_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) { cap = cap ? cap * 2 : 64; v = hs_xrealloc(v, (size_t)cap * sizeof *v); }
        store_prompt *p = &v[cnt];
        if (!col_int(s, 0, 0, INT_MAX, &p->index) || !col_int(s, 1, 0, INT_MAX, &p->n_tokens)) {
            st = damaged(db, "run %lld has a prompt with an invalid index or token count (after prompt %d)", (long long)run_id,
                         cnt ? v[cnt - 1].index : -1);
            goto fail;
        }
        p->text = store_col_strdup(s, 2);
        if (!p->text) p->text = hs_xstrdup("");
        cnt++;
    }
    if (rc != SQLITE_DONE) { st = store_sql_fail(db, rc, NULL, "cannot read the prompts of run %lld", (long long)run_id); goto fail; }
    store_sq_done(s);
    *out = v; *n = cnt;
    return HS_OK;
fail:
    store_sq_done(s);
    store_prompts_free(v, cnt);
    return st;
}

hs_status store_prompt_indices(store_db *db, int64_t run_id, int **idx, int *n) {
    *idx = NULL; *n = 0;
    sqlite3_stmt *s = store_sq(db, SQ_PROMPT_INDICES);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    int *v = NULL, cnt = 0, cap = 0, rc;
    hs_status st = HS_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) { cap = cap ? cap * 2 : 256; v = hs_xrealloc(v, (size_t)cap * sizeof *v); }
        if (!col_int(s, 0, 0, INT_MAX, &v[cnt])) {
            st = damaged(db, "run %lld has a prompt with an invalid index (after prompt %d)", (long long)run_id, cnt ? v[cnt - 1] : -1);
            goto fail;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) { st = store_sql_fail(db, rc, NULL, "cannot read the prompts of run %lld", (long long)run_id); goto fail; }
    store_sq_done(s);
    *idx = v; *n = cnt;
    return HS_OK;
fail:
    store_sq_done(s);
    free(v);
    return st;
}

void store_strs_free(char **strs, int n) {
    if (!strs) return;
    for (int i = 0; i < n; i++) free(strs[i]);
    free(strs);
}

hs_status store_tokens_get(store_db *db, int64_t run_id, int prompt_index, int **ids, char ***strs, int *n) {
    *ids = NULL; *strs = NULL; *n = 0;
    int n_tok = 0, cnt = 0, rc;
    int *vi = NULL;
    char **vs = NULL;
    hs_status st = HS_OK;
    /* n_tokens first (a prompt and its tokens are committed together and never change afterwards). */
    sqlite3_stmt *s = store_sq(db, SQ_PROMPT_NTOK);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, prompt_index);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) { store_sq_done(s); return HS_ENOTFOUND; }
    if (rc != SQLITE_ROW) { st = store_sql_fail(db, rc, NULL, "cannot read prompt %d of run %lld", prompt_index, (long long)run_id); goto fail; }
    if (!col_int(s, 0, 0, INT_MAX / (int)sizeof(char *), &n_tok)) {
        st = damaged(db, "run %lld prompt %d has an invalid token count", (long long)run_id, prompt_index);
        goto fail;
    }
    store_sq_done(s);
    if (!(s = store_sq(db, SQ_TOKENS_GET))) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, prompt_index);
    vi = hs_xmalloc((size_t)n_tok * sizeof *vi);
    vs = hs_xcalloc((size_t)n_tok + 1, sizeof *vs);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int pos, id;
        if (cnt >= n_tok || !col_int(s, 0, cnt, cnt, &pos) || !col_int(s, 1, INT_MIN, INT_MAX, &id)) {
            st = damaged(db, "run %lld prompt %d: its token rows do not match its token count (positions must be 0..n_tokens-1)",
                         (long long)run_id, prompt_index);
            goto fail;
        }
        vi[cnt] = id;
        vs[cnt] = store_col_strdup(s, 2);
        if (!vs[cnt]) vs[cnt] = hs_xstrdup("");
        cnt++;
    }
    if (rc != SQLITE_DONE) { st = store_sql_fail(db, rc, NULL, "cannot read the tokens of prompt %d of run %lld", prompt_index, (long long)run_id); goto fail; }
    if (cnt != n_tok) {
        st = damaged(db, "run %lld prompt %d: fewer token rows than its token count", (long long)run_id, prompt_index);
        goto fail;
    }
    store_sq_done(s);
    *ids = vi; *strs = vs; *n = cnt;
    return HS_OK;
fail:
    store_sq_done(s);
    free(vi);
    store_strs_free(vs, cnt);
    return st;
}

/* ------------------------------------------------------------------ activations */

/* Strict "[d0,d1,...]" with 1..4 non-negative ints (whitespace allowed); false on anything else. */
static bool parse_shape(const char *t, int shape[4], int *ndim) {
    int nd = 0;
    if (!t) return false;
    while (*t == ' ') t++;
    if (*t++ != '[') return false;
    for (;;) {
        while (*t == ' ') t++;
        if (*t < '0' || *t > '9' || nd == 4) return false;
        int64_t v = 0;
        while (*t >= '0' && *t <= '9') { v = v * 10 + (*t++ - '0'); if (v > INT_MAX) return false; }
        shape[nd++] = (int)v;
        while (*t == ' ') t++;
        if (*t == ',') { t++; continue; }
        if (*t++ != ']') return false;
        break;
    }
    while (*t == ' ') t++;
    if (*t) return false;
    *ndim = nd;
    return true;
}

void store_tensor_clear(store_tensor *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

hs_status store_activation_get(store_db *db, int64_t run_id, int prompt_index, const char *hook, int layer,
                               int head, store_tensor *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store_sq(db, SQ_ACT_GET);
    if (!s) return HS_EIO;
    hs_status st = HS_OK;
    store_tensor t = {0};
    char where[192];
    snprintf(where, sizeof where, "%.100s %d.%d of prompt %d of run %lld", hook ? hook : "(null)", layer, head,
             prompt_index, (long long)run_id);
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, prompt_index);
    store_bind_text(s, 3, hook);
    sqlite3_bind_int(s, 4, layer < 0 ? -1 : layer);
    sqlite3_bind_int(s, 5, head < 0 ? -1 : head);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) { store_sq_done(s); return HS_ENOTFOUND; }
    if (rc != SQLITE_ROW) { st = store_sql_fail(db, rc, NULL, "cannot read activation %s", where); goto fail; }
    t.layer = t.head = -1;
    if ((sqlite3_column_type(s, 0) != SQLITE_NULL && !col_int(s, 0, 0, INT_MAX, &t.layer)) ||
        (sqlite3_column_type(s, 1) != SQLITE_NULL && !col_int(s, 1, 0, INT_MAX, &t.head)) ||
        !col_int(s, 2, 0, INT_MAX, &t.pos_begin) || !col_int(s, 3, t.pos_begin, INT_MAX, &t.pos_end)) {
        hs_log_error("store", "activation %s has invalid layer, head or positions (%s) — the database is damaged: "
                     "restore it or capture again", where, db->path);
        st = HS_EBADINPUT;
        goto fail;
    }
    const char *dt = (const char *)sqlite3_column_text(s, 4);
    int d = -1;
    for (int i = 0; i < 3; i++) if (dt && strcmp(dt, k_store_dtype_name[i]) == 0) d = i;
    if (d < 0) {
        hs_log_error("store", "activation %s has unknown dtype '%.16s' (%s) — expected f32, f16 or bf16; the database "
                     "is damaged or newer than this headscope", where, dt ? dt : "NULL", db->path);
        st = HS_EBADINPUT;
        goto fail;
    }
    t.dtype = (store_dtype)d;
    const char *shape_txt = (const char *)sqlite3_column_text(s, 5);
    size_t n_elem = 1, want;
    if (!parse_shape(shape_txt, t.shape, &t.ndim)) {
        hs_log_error("store", "activation %s has invalid shape '%.40s' (%s) — expected a JSON array of 1-4 "
                     "non-negative ints; the database is damaged", where, shape_txt ? shape_txt : "NULL", db->path);
        st = HS_EBADINPUT;
        goto fail;
    }
    for (int i = 0; i < t.ndim; i++) {
        if (!hs_mul_ok(n_elem, (size_t)t.shape[i], &n_elem)) n_elem = SIZE_MAX;
    }
    const void *blob = sqlite3_column_blob(s, 6);   /* before column_bytes, as SQLite documents */
    size_t got = (size_t)sqlite3_column_bytes(s, 6);
    if (sqlite3_column_type(s, 6) != SQLITE_BLOB || !hs_mul_ok(n_elem, store_dtype_size(t.dtype), &want) ||
        want != got || n_elem > SIZE_MAX / sizeof(float)) {
        hs_log_error("store", "activation %s: blob has %zu bytes, shape %s of %s needs %s (%s) — the database is "
                     "damaged: restore it or capture again", where, got, shape_txt, k_store_dtype_name[t.dtype],
                     n_elem == SIZE_MAX ? "more than fits in memory" : "a different size", db->path);
        st = HS_EBADINPUT;
        goto fail;
    }
    t.data = hs_xmalloc(n_elem * sizeof(float));
    if (t.dtype == STORE_F32) {
        if (got) memcpy(t.data, blob, got);
    } else {
        const uint8_t *p = blob;   /* little-endian u16 per element; no alignment assumed */
        for (size_t i = 0; i < n_elem; i++) {
            uint16_t u = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            t.data[i] = t.dtype == STORE_F16 ? rt_f16_to_f32(u) : rt_bf16_to_f32(u);
        }
    }
    store_sq_done(s);
    *out = t;
    return HS_OK;
fail:
    store_sq_done(s);
    store_tensor_clear(&t);
    return st;
}

/* ------------------------------------------------------------------ stats */

hs_status store_stats_get(store_db *db, int64_t run_id, int prompt_index, const char *metric,
                          store_stat **rows, int *n) {
    *rows = NULL; *n = 0;
    HS_ASSERT(prompt_index >= -2);
    store_sq_id which = prompt_index >= -1 ? SQ_STATS_ONE : metric ? SQ_STATS_ALL_METRIC : SQ_STATS_ALL;
    sqlite3_stmt *s = store_sq(db, which);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    if (which == SQ_STATS_ONE) { sqlite3_bind_int(s, 2, prompt_index); store_bind_text(s, 3, metric); }
    if (which == SQ_STATS_ALL_METRIC) store_bind_text(s, 2, metric);
    store_stat *v = NULL;
    int cnt = 0, cap = 0, rc;
    hs_status st = HS_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) { cap = cap ? cap * 2 : 256; v = hs_xrealloc(v, (size_t)cap * sizeof *v); }
        store_stat *r = &v[cnt];
        const char *m = (const char *)sqlite3_column_text(s, 3);
        int vt = sqlite3_column_type(s, 4);
        if (!col_int(s, 0, -1, INT_MAX, &r->prompt_index) || !col_int(s, 1, INT_MIN, INT_MAX, &r->layer) ||
            !col_int(s, 2, INT_MIN, INT_MAX, &r->head) || !m || strlen(m) >= sizeof r->metric ||
            (vt != SQLITE_FLOAT && vt != SQLITE_INTEGER && vt != SQLITE_NULL)) {
            st = damaged(db, "run %lld has an invalid head_stats row (after %d valid rows)", (long long)run_id, cnt);
            goto fail;
        }
        memcpy(r->metric, m, strlen(m) + 1);
        r->value = vt == SQLITE_NULL ? NAN : sqlite3_column_double(s, 4);   /* SQLite stores NaN as NULL */
        cnt++;
    }
    if (rc != SQLITE_DONE) { st = store_sql_fail(db, rc, NULL, "cannot read the stats of run %lld", (long long)run_id); goto fail; }
    store_sq_done(s);
    *rows = v; *n = cnt;
    return HS_OK;
fail:
    store_sq_done(s);
    free(v);
    return st;
}

/* ------------------------------------------------------------------ reports */

void store_report_clear(store_report *r) {
    if (!r) return;
    free(r->pass); free(r->params_json); free(r->created); free(r->report_json);
    memset(r, 0, sizeof *r);
}

hs_status store_report_get(store_db *db, int64_t run_id, const char *pass, store_report *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s = store_sq(db, pass ? SQ_REPORT_LATEST_PASS : SQ_REPORT_LATEST);
    if (!s) return HS_EIO;
    sqlite3_bind_int64(s, 1, run_id);
    if (pass) store_bind_text(s, 2, pass);
    int rc = sqlite3_step(s);
    hs_status st = HS_OK;
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(s, 0);
        out->run_id = sqlite3_column_int64(s, 1);
        out->pass = store_col_strdup(s, 2);
        out->params_json = store_col_strdup(s, 3);
        out->created = store_col_strdup(s, 4);
        out->report_json = store_col_strdup(s, 5);
    } else if (rc == SQLITE_DONE) {
        st = HS_ENOTFOUND;
    } else {
        st = store_sql_fail(db, rc, NULL, "cannot read the %s report of run %lld", pass ? pass : "latest", (long long)run_id);
    }
    store_sq_done(s);
    return st;
}
