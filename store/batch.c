/* batch.c — building a batch (whole prompts: prompt row, tokens, activations, stats) and writing
 * it in ONE transaction.
 *
 * Memory: every payload byte is copied once, into a chunked arena owned by the batch (blobs of a
 * quarter chunk or more get a chunk of their own, so no copy is ever moved by a realloc); the
 * record arrays grow by doubling. The write itself allocates nothing: blobs are bound
 * SQLITE_STATIC straight from the arena.
 * Atomicity: BEGIN IMMEDIATE ... COMMIT around the whole batch; any failure rolls it all back, so a
 * prompt is either committed with all its rows or absent (docs/schema.md, "Durability").
 */
#include "store_internal.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_chunk {
    store_chunk *next;
    size_t size, used;
};
#define CHUNK_HDR ((sizeof(store_chunk) + 15) & ~(size_t)15)
#define CHUNK_BYTES ((size_t)256 << 10)

static void *batch_alloc(store_batch *b, size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    HS_ASSERT(need >= n);
    store_chunk *c = b->cur;
    if (c && c->size - c->used >= need) {
        void *p = (char *)c + CHUNK_HDR + c->used;
        c->used += need;
        return p;
    }
    bool own = need >= CHUNK_BYTES / 4;   /* big blobs get a chunk of their own; `cur` keeps its free space */
    size_t size = own ? need : CHUNK_BYTES;
    HS_ASSERT(size <= SIZE_MAX - CHUNK_HDR);
    c = hs_xmalloc(CHUNK_HDR + size);
    c->size = size;
    c->used = need;
    c->next = b->chunks;
    b->chunks = c;
    if (!own) b->cur = c;
    b->arena_bytes += CHUNK_HDR + size;
    return (char *)c + CHUNK_HDR;
}

static void *batch_copy(store_batch *b, const void *src, size_t n) {
    void *d = batch_alloc(b, n);
    if (n) memcpy(d, src, n);
    b->payload_bytes += n;
    return d;
}
static const char *batch_str(store_batch *b, const char *s) { return batch_copy(b, s, strlen(s) + 1); }

/* Grow a record array by doubling (amortized: no per-record allocation). */
#define GROW(b, arr, n, cap) do { \
    if ((b)->n == (b)->cap) { \
        int nc_ = (b)->cap ? (b)->cap * 2 : 16; HS_ASSERT(nc_ > (b)->cap); \
        (b)->arr = hs_xrealloc((b)->arr, (size_t)nc_ * sizeof *(b)->arr); (b)->cap = nc_; \
    } } while (0)

store_batch *store_batch_new(int64_t run_id) {
    store_batch *b = hs_xcalloc(1, sizeof *b);
    b->run_id = run_id;
    return b;
}

void store_batch_free(store_batch *b) {
    if (!b) return;
    for (store_chunk *c = b->chunks, *n; c; c = n) { n = c->next; free(c); }
    free(b->prompts);
    free(b->acts);
    free(b->stats);
    free(b);
}

size_t store_batch_bytes(const store_batch *b) {
    return sizeof *b + b->arena_bytes + (size_t)b->cap_prompts * sizeof *b->prompts +
           (size_t)b->cap_acts * sizeof *b->acts + (size_t)b->cap_stats * sizeof *b->stats;
}

void store_batch_add_prompt(store_batch *b, int prompt_index, const char *text, const int *ids,
                            const char *const *token_strs, int n) {
    HS_ASSERT(prompt_index >= 0 && text && n >= 0 && (n == 0 || (ids && token_strs)));
    GROW(b, prompts, n_prompts, cap_prompts);
    store_batch_prompt *p = &b->prompts[b->n_prompts++];
    p->index = prompt_index;
    p->n = n;
    p->text = batch_str(b, text);
    p->ids = batch_copy(b, ids, (size_t)n * sizeof *ids);
    const char **strs = batch_alloc(b, (size_t)n * sizeof *strs);
    for (int i = 0; i < n; i++) { HS_ASSERT(token_strs[i]); strs[i] = batch_str(b, token_strs[i]); }
    p->strs = strs;
}

void store_batch_add_activation(store_batch *b, int prompt_index, const char *hook, int layer, int head,
                                int pos_begin, int pos_end, store_dtype dtype, const int *shape, int ndim,
                                const void *blob, size_t bytes) {
    HS_ASSERT(prompt_index >= 0 && hook && layer >= -1 && head >= -1 && pos_begin >= 0 && pos_end >= pos_begin);
    HS_ASSERT(dtype >= STORE_F32 && dtype <= STORE_BF16 && ndim >= 1 && ndim <= 4 && shape);
    size_t n = store_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) HS_ASSERT(shape[i] >= 0 && hs_mul_ok(n, (size_t)shape[i], &n));
    HS_ASSERT(n == bytes && (bytes == 0 || blob));   /* the blob is exactly prod(shape) x dtype size */
    HS_ASSERT(bytes <= INT_MAX);                      /* sqlite3_bind_blob takes an int length */
    GROW(b, acts, n_acts, cap_acts);
    store_batch_act *a = &b->acts[b->n_acts++];
    *a = (store_batch_act){ .prompt = prompt_index, .layer = layer, .head = head, .pos_begin = pos_begin,
                            .pos_end = pos_end, .ndim = ndim, .dtype = dtype, .bytes = bytes };
    memcpy(a->shape, shape, (size_t)ndim * sizeof *shape);
    a->hook = batch_str(b, hook);
    a->blob = batch_copy(b, blob, bytes);
}

void store_batch_add_stat(store_batch *b, int prompt_index, int layer, int head, const char *metric, double value) {
    HS_ASSERT(prompt_index >= -1 && metric && metric[0] && strlen(metric) < sizeof(((store_stat *)0)->metric));
    GROW(b, stats, n_stats, cap_stats);
    b->stats[b->n_stats++] = (store_batch_stat){ .prompt = prompt_index, .layer = layer, .head = head,
                                                 .metric = batch_str(b, metric), .value = value };
}

/* ------------------------------------------------------------------ the write */

static void bind_int_or_null(sqlite3_stmt *s, int i, int v) {
    if (v < 0) sqlite3_bind_null(s, i); else sqlite3_bind_int(s, i, v);
}

/* How to fix a constraint failure, by the statement that hit it. */
static const char *constraint_hint(int rc, store_sq_id which) {
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return which == SQ_PROMPT_INSERT ? "begin the run with store_run_begin before writing to it"
                                         : "add the prompt to this batch or to an earlier one first";
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return which == SQ_PROMPT_INSERT ? "this prompt is already stored: resume from store_prompt_indices "
                                           "instead of writing it again"
                                         : "each (hook, layer, head) and (metric, layer, head) is stored once per prompt";
    return NULL;
}

hs_status store_batch_write(store_db *db, const store_batch *b) {
    static const store_sq_id needed[] = { SQ_PROMPT_INSERT, SQ_TOKEN_INSERT, SQ_ACT_INSERT, SQ_STAT_INSERT,
                                       SQ_STAT_UPSERT_AGG };
    hs_status st = HS_OK;
    sqlite3_stmt *s = NULL;
    store_sq_id which = SQ_PROMPT_INSERT;
    int rc = SQLITE_OK, item = 0;
    if (b->n_prompts + b->n_acts + b->n_stats == 0) return HS_OK;
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!store_sq(db, needed[i])) return HS_EIO;
    rc = sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = store_sql_fail(db, sqlite3_extended_errcode(db->h), NULL, "cannot start writing a batch of run %lld",
                            (long long)b->run_id);
        goto fail;
    }
    for (int i = 0; i < b->n_prompts; i++) {
        const store_batch_prompt *p = &b->prompts[i];
        item = p->index;
        s = db->stmt[which = SQ_PROMPT_INSERT];
        sqlite3_bind_int64(s, 1, b->run_id);
        sqlite3_bind_int(s, 2, p->index);
        store_bind_text(s, 3, p->text);
        sqlite3_bind_int(s, 4, p->n);
        if ((rc = sqlite3_step(s)) != SQLITE_DONE) goto sql_fail;
        store_sq_done(s);
        s = db->stmt[which = SQ_TOKEN_INSERT];
        sqlite3_bind_int64(s, 1, b->run_id);
        sqlite3_bind_int(s, 2, p->index);
        for (int t = 0; t < p->n; t++) {
            sqlite3_bind_int(s, 3, t);
            sqlite3_bind_int(s, 4, p->ids[t]);
            store_bind_text(s, 5, p->strs[t]);
            if ((rc = sqlite3_step(s)) != SQLITE_DONE) goto sql_fail;
            sqlite3_reset(s);   /* bindings 1-2 stay */
        }
        store_sq_done(s);
    }
    s = db->stmt[which = SQ_ACT_INSERT];
    for (int i = 0; i < b->n_acts; i++) {
        const store_batch_act *a = &b->acts[i];
        char shape[64];
        int len = snprintf(shape, sizeof shape, "[%d", a->shape[0]);
        for (int d = 1; d < a->ndim; d++) len += snprintf(shape + len, sizeof shape - (size_t)len, ",%d", a->shape[d]);
        snprintf(shape + len, sizeof shape - (size_t)len, "]");
        item = a->prompt;
        sqlite3_bind_int64(s, 1, b->run_id);
        sqlite3_bind_int(s, 2, a->prompt);
        store_bind_text(s, 3, a->hook);
        bind_int_or_null(s, 4, a->layer);
        bind_int_or_null(s, 5, a->head);
        sqlite3_bind_int(s, 6, a->pos_begin);
        sqlite3_bind_int(s, 7, a->pos_end);
        sqlite3_bind_text(s, 8, k_store_dtype_name[a->dtype], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 9, shape, -1, SQLITE_TRANSIENT);
        /* zeroblob keeps an empty tensor a (non-NULL) blob; otherwise bind the arena bytes in place */
        if (a->bytes == 0) sqlite3_bind_zeroblob(s, 10, 0);
        else sqlite3_bind_blob(s, 10, a->blob, (int)a->bytes, SQLITE_STATIC);
        if ((rc = sqlite3_step(s)) != SQLITE_DONE) goto sql_fail;
        sqlite3_reset(s);
    }
    store_sq_done(s);
    for (int i = 0; i < b->n_stats; i++) {
        const store_batch_stat *x = &b->stats[i];
        item = x->prompt;
        s = db->stmt[which = x->prompt < 0 ? SQ_STAT_UPSERT_AGG : SQ_STAT_INSERT];
        sqlite3_bind_int64(s, 1, b->run_id);
        bind_int_or_null(s, 2, x->prompt);
        sqlite3_bind_int(s, 3, x->layer);
        sqlite3_bind_int(s, 4, x->head);
        store_bind_text(s, 5, x->metric);
        sqlite3_bind_double(s, 6, x->value);   /* NaN is stored as NULL and read back as NaN */
        if ((rc = sqlite3_step(s)) != SQLITE_DONE) goto sql_fail;
        store_sq_done(s);
    }
    s = NULL;
    rc = sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = store_sql_fail(db, sqlite3_extended_errcode(db->h), NULL, "cannot commit a batch of run %lld",
                            (long long)b->run_id);
        goto fail;
    }
    return HS_OK;
sql_fail:
    st = store_sql_fail(db, rc, constraint_hint(rc, which), "cannot write %s of prompt %d of run %lld",
                        which == SQ_PROMPT_INSERT ? "the prompt row" : which == SQ_TOKEN_INSERT ? "a token"
                        : which == SQ_ACT_INSERT ? "an activation" : "a statistic", item, (long long)b->run_id);
fail:
    store_sq_done(s);
    /* SQLite may already have rolled back on its own (FULL, IOERR); roll back only an open transaction. */
    if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
