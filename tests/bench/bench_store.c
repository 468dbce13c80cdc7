/* bench_store.c — store write throughput as a ratio against raw sequential fwrite of the same
 * bytes, measured in the same run (these machines are noisy), and the database size per 1000 tokens.
 *
 * Cases (f16 attention patterns, the capture's bulk; each prompt also writes its row and T tokens):
 *   - 64x64:   200 prompts x 12 heads (T=64 tokens, 8 prompts per batch); once more with 8 stats
 *     per head (what a capture with online statistics adds);
 *   - 512x512:  40 prompts x  4 heads (T=512, 2 prompts per batch).
 * Store time: store_open (new file) .. batches built (one copy of each blob) and submitted to the
 * writer thread .. store_writer_finish .. store_close (which checkpoints the WAL into the main file:
 * with synchronous=NORMAL that checkpoint is the fsync of everything). Baseline: fopen, fwrite of
 * the same blob bytes, fflush, fsync, fclose. Best of 3 each, alternating, on the same disk
 * ($TMPDIR or /tmp). Throughput counts the pattern bytes only; tokens, stats and SQLite's pages
 * are overhead the store pays. Target: ratio >= 0.5 with WAL.
 * Second baseline, to separate SQLite's cost from the store's: the same blobs inserted into a bare
 * one-table WAL database (same page size, pragmas and transactions; no copy, no thread, no index,
 * no tokens or stats). WAL writes every byte twice (log, then checkpoint into the main file) and
 * fsyncs twice, where fwrite copies once into the page cache and fsyncs once.
 * The DB size per 1000 tokens is printed for the 64x64 spec (12 heads x T=64 f16 + stats), i.e.
 * one layer's patterns; it scales linearly with the number of layers captured.
 * argv[1] (the headscope binary) is ignored.
 */
#include "store/store.h"
#include "runtime/half.h"
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

typedef struct {
    const char *name;
    int W, n_prompts, n_heads, per_batch;
} bench_case;

static char g_dir[256];

static void rm_db(const char *p) {
    char b[512];
    unlink(p);
    snprintf(b, sizeof b, "%.500s-wal", p); unlink(b);
    snprintf(b, sizeof b, "%.500s-shm", p); unlink(b);
}

/* Causal softmax-like rows, f16: what a pattern blob looks like. */
static uint16_t **make_blobs(const bench_case *c) {
    uint16_t **b = malloc((size_t)c->n_heads * sizeof *b);
    size_t W = (size_t)c->W;
    for (int h = 0; h < c->n_heads; h++) {
        b[h] = malloc(W * W * 2);
        for (size_t q = 0; q < W; q++) {
            double z = 0;
            for (size_t k = 0; k <= q; k++) z += exp(-(double)((q - k + h) % 7));
            for (size_t k = 0; k < W; k++)
                b[h][q * W + k] = rt_f32_to_f16(k <= q ? (float)(exp(-(double)((q - k + h) % 7)) / z) : 0.f);
        }
    }
    return b;
}

static double run_fwrite(const bench_case *c, uint16_t **blobs) {
    char path[512];
    snprintf(path, sizeof path, "%s/raw.bin", g_dir);
    size_t bytes = (size_t)c->W * c->W * 2;
    double t0 = now();
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    for (int p = 0; p < c->n_prompts; p++)
        for (int h = 0; h < c->n_heads; h++)
            if (fwrite(blobs[h], 1, bytes, f) != bytes) { perror("fwrite"); exit(2); }
    if (fflush(f) || fsync(fileno(f))) { perror("fsync"); exit(2); }
    fclose(f);
    double t = now() - t0;
    unlink(path);
    return t;
}

/* The floor: SQLite WAL itself, as the store configures it (docs/schema.md). */
static double run_bare_sqlite(const bench_case *c, uint16_t **blobs) {
    char path[512];
    snprintf(path, sizeof path, "%s/bare.db", g_dir);
    rm_db(path);
    size_t bytes = (size_t)c->W * c->W * 2;
    sqlite3 *h;
    sqlite3_stmt *s;
    double t0 = now();
    if (sqlite3_open(path, &h) != SQLITE_OK ||
        sqlite3_exec(h, "PRAGMA page_size = 65536; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                        "PRAGMA cache_size = -32768; CREATE TABLE a(id INTEGER PRIMARY KEY, data BLOB);",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "INSERT INTO a(data) VALUES(?1)", -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_store: bare sqlite: %s\n", sqlite3_errmsg(h));
        exit(2);
    }
    for (int p0 = 0; p0 < c->n_prompts; p0 += c->per_batch) {
        sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
        for (int p = p0; p < p0 + c->per_batch && p < c->n_prompts; p++)
            for (int hd = 0; hd < c->n_heads; hd++) {
                sqlite3_bind_blob(s, 1, blobs[hd], (int)bytes, SQLITE_STATIC);
                if (sqlite3_step(s) != SQLITE_DONE) exit(2);
                sqlite3_reset(s);
            }
        if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) exit(2);
    }
    sqlite3_finalize(s);
    sqlite3_close(h);
    double t = now() - t0;
    rm_db(path);
    return t;
}

static double run_store(const bench_case *c, uint16_t **blobs, bool full_sync, int n_stats, off_t *db_size) {
    static const char *const metrics[8] = { "entropy", "max_weight", "bos_mass", "self", "prev_token", "distance",
                                            "duplicate", "induction" };
    char path[512], text[64];
    snprintf(path, sizeof path, "%s/bench.db", g_dir);
    rm_db(path);
    int T = c->W, shape[2] = { c->W, c->W };
    int *ids = malloc((size_t)T * sizeof *ids);
    char **strs = malloc((size_t)T * sizeof *strs);
    for (int t = 0; t < T; t++) { ids[t] = 1000 + t; strs[t] = malloc(16); snprintf(strs[t], 16, "tok%d", t); }
    size_t bytes = (size_t)c->W * c->W * 2;
    store_db *db;
    store_writer *w;
    int64_t model, run;
    double t0 = now();
    if (store_open(path, false, &db) || (full_sync && store_set_synchronous(db, true)) ||
        store_model_put(db, "/models/bench", "hf", "{}", NULL, &model) || store_run_begin(db, model, "{}", &run) ||
        store_writer_start(db, (size_t)256 << 20, &w)) exit(2);
    for (int p0 = 0; p0 < c->n_prompts; p0 += c->per_batch) {
        store_batch *b = store_batch_new(run);
        for (int p = p0; p < p0 + c->per_batch && p < c->n_prompts; p++) {
            snprintf(text, sizeof text, "bench prompt %d", p);
            store_batch_add_prompt(b, p, text, ids, (const char *const *)strs, T);
            for (int h = 0; h < c->n_heads; h++) {
                store_batch_add_activation(b, p, "blocks.0.attn.hook_pattern", 0, h, 0, T, STORE_F16, shape, 2, blobs[h], bytes);
                for (int m = 0; m < n_stats; m++) store_batch_add_stat(b, p, 0, h, metrics[m], 0.25 * m + h);
            }
        }
        if (store_writer_submit(w, b)) exit(2);
    }
    if (store_writer_finish(w) || store_run_set_status(db, run, "complete")) exit(2);
    store_close(db);
    double t = now() - t0;
    struct stat sb;
    *db_size = stat(path, &sb) == 0 ? sb.st_size : 0;
    rm_db(path);
    for (int t2 = 0; t2 < T; t2++) free(strs[t2]);
    free(strs); free(ids);
    return t;
}

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/hs_bench_store_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 2; }
    const bench_case cases[2] = {
        { "64x64", 64, 200, 12, 8 },
        { "512x512", 512, 40, 4, 2 },
    };
    for (int ci = 0; ci < 2; ci++) {
        const bench_case *c = &cases[ci];
        uint16_t **blobs = make_blobs(c);
        double mb = (double)c->n_prompts * c->n_heads * c->W * c->W * 2 / 1e6;
        double best_raw = 1e30, best_norm = 1e30, best_full = 1e30, best_bare = 1e30, best_stats = 1e30;
        off_t size = 0;
        for (int rep = 0; rep < 3; rep++) {
            double t = run_fwrite(c, blobs);
            if (t < best_raw) best_raw = t;
            t = run_store(c, blobs, false, 0, &size);
            if (t < best_norm) best_norm = t;
            t = run_store(c, blobs, true, 0, &size);
            if (t < best_full) best_full = t;
            if (ci == 0) {
                t = run_store(c, blobs, false, 8, &size);
                if (t < best_stats) best_stats = t;
            }
            t = run_bare_sqlite(c, blobs);
            if (t < best_bare) best_bare = t;
        }
        double raw = mb / best_raw, norm = mb / best_norm, full = mb / best_full, bare = mb / best_bare;
        printf("store f16 %s: sqlite WAL %.0f MB/s vs fwrite %.0f MB/s = ratio %.2f (target >= 0.5%s)"
               "   [sync=NORMAL; %d prompts x %d heads, %.1f MB, batches of %d, best of 3]\n",
               c->name, norm, raw, norm / raw, norm / raw >= 0.5 ? "" : ": MISSED", c->n_prompts, c->n_heads, mb,
               c->per_batch);
        printf("store f16 %s: sqlite WAL %.0f MB/s vs fwrite %.0f MB/s = ratio %.2f   [sync=FULL: fsync per commit]\n",
               c->name, full, raw, full / raw);
        printf("store f16 %s: bare SQLite WAL (one blob table) %.0f MB/s vs fwrite = ratio %.2f: the store runs at "
               "%.2f of SQLite's own WAL floor\n", c->name, bare, bare / raw, norm / bare);
        if (ci == 0) {
            printf("store f16 %s: sqlite WAL %.0f MB/s vs fwrite = ratio %.2f   [sync=NORMAL, plus 8 stats per head: "
                   "%d stat rows, %.0f rows/s beyond the patterns]\n", c->name, mb / best_stats, mb / best_stats / raw,
                   c->n_prompts * c->n_heads * 8, c->n_prompts * c->n_heads * 8 / (best_stats - best_norm));
            double tokens = (double)c->n_prompts * c->W;
            double payload = (double)c->n_heads * c->W * c->W * 2 / c->W * 1000;
            printf("store db size: %.2f MB per 1000 tokens for 12 heads x T=64 f16 patterns + 8 stats/head "
                   "(one layer; x n_layers for more) vs %.2f MB of pattern bytes = %.2fx\n",
                   size / tokens * 1000 / 1e6, payload / 1e6, size / tokens * 1000 / payload);
        }
        for (int h = 0; h < c->n_heads; h++) free(blobs[h]);
        free(blobs);
    }
    rmdir(g_dir);
    return 0;
}
