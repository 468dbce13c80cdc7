/* test_store.c — the SQLite store (store/) and the f16/bf16 encoders (runtime/half.h).
 *
 * What is compared:
 *   - half.h: every f16 and bf16 bit pattern round-trips decode -> encode; every tie between two
 *     adjacent finite values rounds to the even one; random floats match an independent
 *     nearest-value search over the decoded patterns; overflow, NaN, inf, signed zero, subnormals.
 *   - schema: user_version, application_id, WAL, tables; reopening is idempotent; foreign files,
 *     newer versions and damaged rows (short blobs, bad shapes, unknown dtypes, missing tokens) each
 *     give one error line and no crash.
 *   - typed writes and reads round-trip exactly (f16/bf16 against the same encoder; NaN stats).
 *   - durability: a child writing through the writer thread is SIGKILLed once a reader sees N
 *     prompts; the reopened database passes integrity_check, every committed prompt is complete,
 *     the run is still "running", and a resume continues without a duplicate (which is refused).
 *   - read-only database / directory / missing directory, and a full disk (max_page_count): one
 *     error line, the failed batch absent, earlier prompts intact.
 *   - a reader reads while the writer thread commits.
 * Runs in a mkdtemp() folder under /tmp, removed at the end. Root ignores file permissions: there
 * the read-only cases use the ext4 immutable flag instead, and skip visibly where that is refused.
 */
#include "testlib.h"
#include "store/store.h"
#include "runtime/half.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static char g_tmp[256];

static const char *tmp_path(const char *rel) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 512, "%s/%s", g_tmp, rel);
    return b;
}

static void spit(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

/* Capture stderr around calls, to check the text and the number of error lines. */
static int g_saved_fd = -1;
static char g_cap[8192];
static void cap_begin(void) {
    fflush(stderr);
    g_saved_fd = dup(2);
    int fd = open(tmp_path("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}
static const char *cap_end(int *lines) {
    fflush(stderr);
    dup2(g_saved_fd, 2);
    close(g_saved_fd);
    FILE *f = fopen(tmp_path("stderr.txt"), "rb");
    size_t n = f ? fread(g_cap, 1, sizeof g_cap - 1, f) : 0;
    if (f) fclose(f);
    g_cap[n] = 0;
    *lines = 0;
    for (char *p = g_cap; *p; p++) if (*p == '\n') (*lines)++;
    if (n && g_cap[n - 1] == '\n') g_cap[n - 1] = 0;
    return g_cap;
}

/* Raw SQL, for setting up damaged or foreign files and checking pragmas (the API has none of this). */
static bool raw_exec(const char *path, const char *sql) {
    sqlite3 *h;
    bool ok = sqlite3_open(path, &h) == SQLITE_OK && sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) fprintf(stderr, "raw_exec(%s): %s\n", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
    return ok;
}
static int64_t raw_int(const char *path, const char *sql) {
    sqlite3 *h; sqlite3_stmt *s = NULL;
    int64_t v = INT64_MIN;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}
static bool raw_text_is(const char *path, const char *sql, const char *want) {
    sqlite3 *h; sqlite3_stmt *s = NULL;
    bool ok = false;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        ok = sqlite3_column_text(s, 0) && strcmp((const char *)sqlite3_column_text(s, 0), want) == 0;
    sqlite3_finalize(s);
    sqlite3_close(h);
    return ok;
}


/* Set or clear the ext4 immutable flag (what makes a file read-only even for root). */
static bool set_immutable(const char *path, bool on) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return false;
    int flags = 0;
    bool ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
    if (ok) {
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    close(fd);
    return ok;
}

/* ------------------------------------------------------------------ fixture prompts */

#define NH 3          /* heads with a pattern per prompt: dtypes f32, f16, bf16 by head */
#define DRES 8        /* width of the whole-layer tensor */
static const char *const HOOK_PAT = "blocks.1.attn.hook_pattern";
static const char *const HOOK_RES = "blocks.1.hook_resid_post";

static float val(int idx, int h, size_t i) {
    return (float)((double)((idx * 131 + h * 17 + (int)(i % 100000) * 7) % 1009) / 1009.0 - 0.5) * 3.0f;
}
static store_dtype head_dtype(int h) { return (store_dtype)(h % 3); }
/* What the store must give back for value v stored as dt: the same encoder's result, decoded. */
static float expect(float v, store_dtype dt) {
    return dt == STORE_F16 ? rt_f16_to_f32(rt_f32_to_f16(v)) : dt == STORE_BF16 ? rt_bf16_to_f32(rt_f32_to_bf16(v)) : v;
}

/* Prompt idx with T tokens: NH (T, T) patterns + one (T, DRES) whole-layer f32 tensor + 2 stats per head. */
static void add_prompt(store_batch *b, int idx, int T) {
    char text[64], **strs = malloc((size_t)T * sizeof *strs);
    int *ids = malloc((size_t)T * sizeof *ids);
    snprintf(text, sizeof text, "prompt %d — é", idx);
    for (int t = 0; t < T; t++) {
        ids[t] = idx * 1000 + t;
        strs[t] = malloc(32);
        snprintf(strs[t], 32, t == 1 ? "Ġé%d" : "t%d_%d", idx, t);
    }
    store_batch_add_prompt(b, idx, text, ids, (const char *const *)strs, T);
    for (int t = 0; t < T; t++) free(strs[t]);
    free(strs); free(ids);
    size_t n = (size_t)T * T;
    float *f = malloc((size_t)T * (T > DRES ? T : DRES) * sizeof *f);
    uint16_t *u = malloc(n * sizeof *u);
    for (int h = 0; h < NH; h++) {
        store_dtype dt = head_dtype(h);
        int shape[2] = { T, T };
        for (size_t i = 0; i < n; i++) {
            f[i] = val(idx, h, i);
            u[i] = dt == STORE_F16 ? rt_f32_to_f16(f[i]) : rt_f32_to_bf16(f[i]);
        }
        store_batch_add_activation(b, idx, HOOK_PAT, 1, h, 0, T, dt, shape, 2, dt == STORE_F32 ? (void *)f : (void *)u,
                                   n * (dt == STORE_F32 ? 4 : 2));
        store_batch_add_stat(b, idx, 1, h, "entropy", idx + h / 8.0);
        store_batch_add_stat(b, idx, 1, h, "bos_mass", h == 0 ? NAN : -h);
    }
    int shape[2] = { T, DRES };
    for (size_t i = 0; i < (size_t)T * DRES; i++) f[i] = val(idx, 99, i);
    store_batch_add_activation(b, idx, HOOK_RES, 1, -1, 0, T, STORE_F32, shape, 2, f, (size_t)T * DRES * 4);
    free(f); free(u);
}

static store_batch *make_batch(int64_t run, int first, int n_prompts, int T) {
    store_batch *b = store_batch_new(run);
    for (int i = 0; i < n_prompts; i++) add_prompt(b, first + i, T);
    return b;
}

/* Everything add_prompt wrote for idx is there and exact. Returns "" or what differs. */
static const char *check_prompt(store_db *db, int64_t run, int idx, int T) {
    static char why[160];
    int *ids = NULL, n = 0;
    char **strs = NULL;
    why[0] = 0;
    if (store_tokens_get(db, run, idx, &ids, &strs, &n) != HS_OK) { snprintf(why, sizeof why, "tokens of %d unreadable", idx); return why; }
    for (int t = 0; t < n && !why[0]; t++) {
        char want[32];
        snprintf(want, sizeof want, t == 1 ? "Ġé%d" : "t%d_%d", idx, t);
        if (ids[t] != idx * 1000 + t || strcmp(strs[t], want)) snprintf(why, sizeof why, "token %d of %d differs", t, idx);
    }
    if (n != T && !why[0]) snprintf(why, sizeof why, "prompt %d has %d tokens, want %d", idx, n, T);
    free(ids); store_strs_free(strs, n);
    for (int h = 0; h <= NH && !why[0]; h++) {
        store_tensor t;
        bool res = h == NH;
        hs_status st = store_activation_get(db, run, idx, res ? HOOK_RES : HOOK_PAT, 1, res ? -1 : h, &t);
        if (st) { snprintf(why, sizeof why, "activation %d of prompt %d: status %d", h, idx, st); break; }
        store_dtype dt = res ? STORE_F32 : head_dtype(h);
        int W = res ? DRES : T;
        if (t.ndim != 2 || t.shape[0] != T || t.shape[1] != W || t.dtype != dt || t.head != (res ? -1 : h) ||
            t.layer != 1 || t.pos_begin != 0 || t.pos_end != T)
            snprintf(why, sizeof why, "activation %d of prompt %d: header differs", h, idx);
        for (size_t i = 0; i < (size_t)T * W && !why[0]; i++)
            if (t.data[i] != expect(val(idx, res ? 99 : h, i), dt))
                snprintf(why, sizeof why, "activation %d of prompt %d: element %zu differs", h, idx, i);
        store_tensor_clear(&t);
    }
    store_stat *rows = NULL;
    int nr = 0;
    if (!why[0] && store_stats_get(db, run, idx, NULL, &rows, &nr) == HS_OK) {
        if (nr != 2 * NH) snprintf(why, sizeof why, "prompt %d has %d stats, want %d", idx, nr, 2 * NH);
        for (int i = 0; i < nr && !why[0]; i++) {
            const store_stat *r = &rows[i];
            double want = strcmp(r->metric, "entropy") == 0 ? idx + r->head / 8.0 : r->head == 0 ? NAN : -r->head;
            bool same = isnan(want) ? isnan(r->value) : r->value == want;
            if (r->prompt_index != idx || r->layer != 1 || !same) snprintf(why, sizeof why, "stat %d of prompt %d differs", i, idx);
        }
    } else if (!why[0]) {
        snprintf(why, sizeof why, "stats of prompt %d unreadable", idx);
    }
    free(rows);
    return why;
}

/* A fresh database with one model and one run. */
static store_db *new_db(const char *rel, int64_t *run) {
    store_db *db = NULL;
    unlink(tmp_path(rel));
    if (store_open(tmp_path(rel), false, &db) != HS_OK) { fprintf(stderr, "cannot create %s\n", rel); exit(2); }
    int64_t model;
    if (store_model_put(db, "/models/m", "hf", "{\"n_layers\":2}", NULL, &model) ||
        store_run_begin(db, model, "{\"hooks\":[\"hook_pattern\"]}", run)) exit(2);
    return db;
}

/* ------------------------------------------------------------------ half.h */

static double dec16(uint16_t u) { return rt_f16_to_f32(u); }
static double decb16(uint16_t u) { return rt_bf16_to_f32(u); }
/* Independent RNE reference: nearest of the monotone positive patterns [0, top) (top = the inf
 * pattern, valued `top_val` as the next binade step), ties to the even pattern. */
static uint16_t ref_round(double x, double (*dec)(uint16_t), uint16_t top, double top_val) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    x = fabs(x);
    unsigned lo = 0, hi = top;          /* find the largest u in [0, top) with dec(u) <= x */
    if (x >= top_val) return sign | top;
    while (hi - lo > 1) { unsigned mid = (lo + hi) / 2; if (dec((uint16_t)mid) <= x) lo = mid; else hi = mid; }
    double a = dec((uint16_t)lo), b = lo + 1 == top ? top_val : dec((uint16_t)(lo + 1));
    unsigned r = x - a < b - x ? lo : x - a > b - x ? lo + 1 : (lo & 1 ? lo + 1 : lo);
    return (uint16_t)(sign | r);
}

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return (uint32_t)(g_rng >> 16); }
static float bits_f(uint32_t u) { union { uint32_t u; float f; } v = { u }; return v.f; }

/* The bulk converter (F16C where the CPU has it) gives rt_f32_to_f16's bits: every 4096th float
 * pattern of the whole 32-bit space plus every tie and neighbour of test_half, both paths. */
static void test_half_array(void) {
    size_t n = (1u << 20) + 3;   /* not a multiple of 8: the tail loop too */
    float *src = malloc(n * sizeof(float));
    uint16_t *a = malloc(n * 2), *b = malloc(n * 2);
    long bad = 0, nan_bad = 0, total = 0;
    for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)n * 4096) {
        size_t m = 0;
        for (; m < n && base + (uint64_t)m * 4096 < (1ull << 32); m++) src[m] = bits_f((uint32_t)(base + (uint64_t)m * 4096 + (m % 4096)));
        rt_f16_force_portable = false; rt_f32_to_f16_array(a, src, m);
        rt_f16_force_portable = true; rt_f32_to_f16_array(b, src, m);
        for (size_t i = 0; i < m; i++) {
            uint16_t want = rt_f32_to_f16(src[i]);
            if (isnan(src[i])) nan_bad += !(isnan(rt_f16_to_f32(a[i])) && (a[i] & 0x8000) == (want & 0x8000)) || b[i] != want;
            else bad += a[i] != want || b[i] != want;
        }
        total += (long)m;
    }
    /* exact ties (the 13 dropped bits = 0x1000) and their neighbours, both signs, over every
     * exponent from the subnormal f16 range to overflow */
    size_t m = 0;
    rt_f16_force_portable = false;
    for (uint32_t e = 100; e <= 143; e++)
        for (uint32_t mt = 0; mt < 1024; mt++)
            for (int d = -1; d <= 1; d++)
                for (uint32_t s = 0; s < 2; s++)
                    if (m < n) src[m++] = bits_f((s << 31) | (e << 23) | (mt << 13) | (uint32_t)(0x1000 + d));
    rt_f32_to_f16_array(a, src, m);
    for (size_t i = 0; i < m; i++) bad += a[i] != rt_f32_to_f16(src[i]);
    total += (long)m;
    rt_f16_force_portable = false;
    TL_CHECK(bad == 0 && nan_bad == 0, "rt_f32_to_f16_array (bulk path: %s; and portable) = rt_f32_to_f16 on %ld float patterns across the "
             "32-bit space (%ld differ, %ld NaNs lose NaN-ness or sign)", rt_f16_bulk_is_f16c() ? "F16C" : "portable", total, bad, nan_bad);
    free(src); free(a); free(b);
}

static void test_half(void) {
    int bad16 = 0, bad_bf = 0, nan16 = 0, ties16 = 0, tiesbf = 0, near16 = 0;
    for (unsigned u = 0; u < 65536; u++) {
        float f = rt_f16_to_f32((uint16_t)u);
        uint16_t back = rt_f32_to_f16(f);
        if (isnan(f)) { nan16 += !(isnan(rt_f16_to_f32(back)) && (back & 0x8000) == (u & 0x8000)); continue; }
        bad16 += back != u;
        float g = rt_bf16_to_f32((uint16_t)u);
        uint16_t bb = rt_f32_to_bf16(g);
        if (isnan(g)) nan16 += !isnan(rt_bf16_to_f32(bb)); else bad_bf += bb != u;
    }
    TL_CHECK(bad16 == 0, "f16 -> f32 -> f16 is exact for all 63488 non-NaN patterns (%d differ)", bad16);
    TL_CHECK(bad_bf == 0, "bf16 -> f32 -> bf16 is exact for all non-NaN patterns (%d differ)", bad_bf);
    TL_CHECK(nan16 == 0, "every f16/bf16 NaN pattern stays NaN with its sign (%d do not)", nan16);
    /* Every tie between adjacent finite values (both signs): midpoint -> the even pattern; a hair
     * either side -> the nearer one. The midpoint of two f16 (or bf16) values is exact in float. */
    for (unsigned u = 0; u < 0x7BFF; u++) {
        for (int s = 0; s < 2; s++) {
            uint16_t sg = s ? 0x8000 : 0;
            double a = dec16((uint16_t)u), b = dec16((uint16_t)(u + 1));
            float mid = (float)((a + b) / 2) * (s ? -1.f : 1.f);
            uint16_t even = (uint16_t)(sg | (u & 1 ? u + 1 : u));
            ties16 += rt_f32_to_f16(mid) != even;
            near16 += rt_f32_to_f16(nextafterf(mid, 0)) != (sg | u) || rt_f32_to_f16(nextafterf(mid, s ? -INFINITY : INFINITY)) != (sg | (u + 1));
        }
    }
    for (unsigned u = 0; u < 0x7F7F; u++) {
        double a = decb16((uint16_t)u), b = decb16((uint16_t)(u + 1));
        float mid = (float)((a + b) / 2);
        tiesbf += rt_f32_to_bf16(mid) != (u & 1 ? u + 1 : u) || rt_f32_to_bf16(-mid) != (0x8000 | (u & 1 ? u + 1 : u));
        tiesbf += rt_f32_to_bf16(nextafterf(mid, 0)) != u || rt_f32_to_bf16(nextafterf(mid, INFINITY)) != u + 1;
    }
    TL_CHECK(ties16 == 0 && near16 == 0, "f16: all 2x31743 ties round to even, neighbours to the nearer (%d, %d wrong)", ties16, near16);
    TL_CHECK(tiesbf == 0, "bf16: all 32639 ties (both signs) round to even, neighbours to the nearer (%d wrong)", tiesbf);
    int rnd16 = 0, rndbf = 0;
    for (int i = 0; i < 300000; i++) {
        /* half the draws in and around the f16 range (2^-26 .. 2^17), half anywhere */
        uint32_t x = i & 1 ? rnd32() : (rnd32() & 0x80000000u) | (0x32800000u + rnd32() % (0x48000000u - 0x32800000u));
        float f = bits_f(x);
        if (isnan(f)) continue;
        rnd16 += rt_f32_to_f16(f) != ref_round(f, dec16, 0x7C00, 65536.0);
        rndbf += rt_f32_to_bf16(f) != ref_round(f, decb16, 0x7F80, ldexp(1.0, 128));
    }
    TL_CHECK(rnd16 == 0 && rndbf == 0, "300000 random floats match a nearest-pattern search (f16 %d, bf16 %d wrong)", rnd16, rndbf);
    struct { float x; uint16_t want; const char *what; } e16[] = {
        { 65504.f, 0x7BFF, "65504 (max)" }, { 65519.99f, 0x7BFF, "65519.99" }, { 65520.f, 0x7C00, "65520 -> inf" },
        { 1e30f, 0x7C00, "1e30 -> inf" }, { -1e30f, 0xFC00, "-1e30 -> -inf" }, { INFINITY, 0x7C00, "inf" },
        { -INFINITY, 0xFC00, "-inf" }, { -0.f, 0x8000, "-0" }, { 0.f, 0, "+0" }, { 1.f, 0x3C00, "1" },
        { 5.9604645e-8f, 0x0001, "2^-24 (min subnormal)" }, { 2.9802322e-8f, 0x0000, "2^-25 (tie -> 0)" },
        { 2.9802326e-8f, 0x0001, "just above 2^-25" }, { 8.940697e-8f, 0x0002, "1.5 x 2^-24 (tie -> 2)" },
        { 1.4901161e-7f, 0x0002, "2.5 x 2^-24 (tie -> 2)" }, { 6.097555e-5f, 0x03FF, "max subnormal" },
        { 6.1035156e-5f, 0x0400, "2^-14 (min normal)" }, { 1e-45f, 0x0000, "f32 subnormal -> 0" },
        { -1e-45f, 0x8000, "-f32 subnormal -> -0" }, { 1.00048828125f, 0x3C00, "1 + 2^-11 (tie -> 1)" },
        { 1.00146484375f, 0x3C02, "1 + 3x2^-11 (tie -> up)" },
    };
    int bad_e = 0;
    for (size_t i = 0; i < sizeof e16 / sizeof e16[0]; i++)
        if (rt_f32_to_f16(e16[i].x) != e16[i].want) { bad_e++; printf("        f16(%s) = 0x%04x, want 0x%04x\n", e16[i].what, rt_f32_to_f16(e16[i].x), e16[i].want); }
    TL_CHECK(bad_e == 0, "f16 edge values: max, overflow, inf, signed zeros, subnormal ties (%zu cases)", sizeof e16 / sizeof e16[0]);
    uint16_t n1 = rt_f32_to_f16(bits_f(0x7F800001u)), n2 = rt_f32_to_bf16(bits_f(0x7F800001u)), n3 = rt_f32_to_bf16(bits_f(0xFFC00000u));
    TL_CHECK((n1 & 0x7C00) == 0x7C00 && (n1 & 0x3FF) && (n2 & 0x7F80) == 0x7F80 && (n2 & 0x7F) && n3 == 0xFFC0,
             "NaN with a low payload stays NaN (f16 0x%04x, bf16 0x%04x, -qNaN bf16 0x%04x)", n1, n2, n3);
    TL_CHECK(rt_f32_to_bf16(3.4028235e38f) == 0x7F80 && rt_f32_to_bf16(-3.4028235e38f) == 0xFF80 &&
             rt_f32_to_bf16(1e-45f) == 0x0000 && rt_f32_to_bf16(1.00390625f) == 0x3F80 && rt_f32_to_bf16(1.01171875f) == 0x3F82,
             "bf16 edge values: FLT_MAX -> inf, f32 subnormal -> 0, ties to even");
}

/* ------------------------------------------------------------------ schema and round trip */

static void test_schema_and_roundtrip(void) {
    int64_t run;
    store_db *db = new_db("a.db", &run);
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("a.db"));
    TL_CHECK(raw_int(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION, "new database has user_version %d", STORE_SCHEMA_VERSION);
    TL_CHECK(raw_int(p, "PRAGMA application_id") == 0x48645363, "application_id marks it as headscope's");
    TL_CHECK(raw_text_is(p, "PRAGMA journal_mode", "wal"), "journal_mode is WAL");
    TL_CHECK(raw_int(p, "SELECT count(*) FROM sqlite_master WHERE type='table'") == 7 &&
             raw_int(p, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'") == 4,
             "7 tables and 4 named indexes");
    TL_CHECK(raw_int(p, "PRAGMA page_size") == 65536, "page size 64 KiB");

    int64_t m1, m2, m3;
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    int e0 = hs_log_error_count();
    hs_status s1 = store_model_put(db, "/models/x", "hf", "{}", sha, &m1);
    hs_status s2 = store_model_put(db, "/models/x", "hf", "{}", sha, &m2);
    hs_status s3 = store_model_put(db, "/models/x", "hf", "{}", NULL, &m3);
    TL_CHECK(!s1 && !s2 && !s3 && m1 == m2 && m3 != m1, "model_put returns the same id for the same path+sha256 (%lld %lld %lld)",
             (long long)m1, (long long)m2, (long long)m3);
    int64_t mbad;
    cap_begin();
    hs_status sb = store_model_put(db, "/models/y", "hf", "{}", "XYZ", &mbad);
    hs_status sj = store_model_put(db, "/models/y", "hf", "{not json", NULL, &mbad);
    int lines; const char *msg = cap_end(&lines);
    TL_CHECK(sb == HS_EBADINPUT && sj == HS_EBADINPUT && lines == 2 && mbad == 0 && strstr(msg, "store: cannot record model /models/y"),
             "a bad sha256 and bad config JSON are refused, one line each: %.120s", msg);

    /* two batches: prompts 0,1 then 2 plus aggregates; then the aggregates again (replaced) */
    store_batch *b = make_batch(run, 0, 2, 5);
    store_batch_add_stat(b, -1, 1, 0, "entropy", 0.5);
    size_t bytes = store_batch_bytes(b);
    TL_CHECK(store_batch_write(db, b) == HS_OK, "batch of 2 prompts written (%zu bytes held)", bytes);
    store_batch_free(b);
    b = make_batch(run, 2, 1, 7);
    store_batch_add_stat(b, -1, 1, 0, "entropy", 0.75);
    store_batch_add_stat(b, -1, 1, 1, "entropy", 1.25);
    TL_CHECK(store_batch_write(db, b) == HS_OK, "second batch, with a replaced aggregate");
    store_batch_free(b);
    b = store_batch_new(run);
    TL_CHECK(store_batch_write(db, b) == HS_OK && store_batch_bytes(b) > 0, "an empty batch writes nothing and succeeds");
    store_batch_free(b);

    const char *w0 = check_prompt(db, run, 0, 5), *w1 = check_prompt(db, run, 1, 5), *w2 = check_prompt(db, run, 2, 7);
    TL_CHECK(!*w0 && !*w1 && !*w2, "tokens, f32/f16/bf16 patterns, whole-layer tensor, stats (NaN too) read back exactly %s%s%s", w0, w1, w2);

    store_prompt *pr; int np;
    TL_CHECK(store_prompts_get(db, run, &pr, &np) == HS_OK && np == 3 && pr[0].index == 0 && pr[2].n_tokens == 7 &&
             strcmp(pr[1].text, "prompt 1 — é") == 0, "prompts_get: 3 prompts, UTF-8 text, token counts");
    store_prompts_free(pr, np);
    int *ix, ni;
    TL_CHECK(store_prompt_indices(db, run, &ix, &ni) == HS_OK && ni == 3 && ix[0] == 0 && ix[1] == 1 && ix[2] == 2,
             "prompt_indices: 0 1 2");
    free(ix);

    store_stat *st; int ns;
    TL_CHECK(store_stats_get(db, run, -1, NULL, &st, &ns) == HS_OK && ns == 2 && st[0].prompt_index == -1 &&
             st[0].head == 0 && st[0].value == 0.75 && st[1].value == 1.25, "aggregates: 2 rows, the newer value replaced the older");
    free(st);
    TL_CHECK(store_stats_get(db, run, -2, NULL, &st, &ns) == HS_OK && ns == 2 + 3 * 2 * NH && st[0].prompt_index == -1 &&
             st[ns - 1].prompt_index == 2, "all stats: %d rows, aggregates first, by prompt", ns);
    free(st);
    TL_CHECK(store_stats_get(db, run, -2, "entropy", &st, &ns) == HS_OK && ns == 2 + 3 * NH, "all 'entropy' rows: %d", ns);
    free(st);
    TL_CHECK(store_stats_get(db, run, 1, "bos_mass", &st, &ns) == HS_OK && ns == NH && isnan(st[0].value) && st[1].value == -1,
             "prompt 1 'bos_mass': %d rows, NaN round-trips", ns);
    free(st);

    int e1 = hs_log_error_count();
    store_tensor t; int *ids; char **strs; int nt; store_run_info ri; store_report rep;
    hs_status nf1 = store_activation_get(db, run, 0, HOOK_PAT, 1, 7, &t);
    hs_status nf2 = store_activation_get(db, run, 9, HOOK_PAT, 1, 0, &t);
    hs_status nf3 = store_tokens_get(db, run, 9, &ids, &strs, &nt);
    hs_status nf4 = store_run_get(db, 999, &ri);
    hs_status nf5 = store_report_get(db, run, NULL, &rep);
    TL_CHECK(nf1 == HS_ENOTFOUND && nf2 == HS_ENOTFOUND && nf3 == HS_ENOTFOUND && nf4 == HS_ENOTFOUND && nf5 == HS_ENOTFOUND &&
             hs_log_error_count() == e1 && t.data == NULL && ids == NULL, "absent activation/prompt/run/report: HS_ENOTFOUND, not logged");

    TL_CHECK(store_run_set_status(db, run, "complete") == HS_OK, "run marked complete");
    store_run_info *runs; int nr;
    TL_CHECK(store_runs_list(db, &runs, &nr) == HS_OK && nr == 1 && runs[0].id == run && runs[0].n_prompts == 3 &&
             strcmp(runs[0].status, "complete") == 0 && strcmp(runs[0].version, HS_VERSION) == 0 &&
             strcmp(runs[0].model_path, "/models/m") == 0 && strcmp(runs[0].model_format, "hf") == 0 &&
             strcmp(runs[0].model_config_json, "{\"n_layers\":2}") == 0 && strcmp(runs[0].model_sha256, "") == 0 &&
             strstr(runs[0].spec_json, "hook_pattern") && strlen(runs[0].created) == 24 && runs[0].created[23] == 'Z',
             "runs_list: model info, version, status, 3 prompts, created %s", nr ? runs[0].created : "?");
    store_runs_free(runs, nr);
    cap_begin();
    hs_status bs = store_run_set_status(db, run, "done");
    hs_status bn = store_run_set_status(db, 999, "failed");
    int64_t rbad;
    hs_status br = store_run_begin(db, 12345, "{}", &rbad);
    msg = cap_end(&lines);
    TL_CHECK(bs == HS_EBADINPUT && bn == HS_ENOTFOUND && br == HS_EBADINPUT && lines == 3,
             "bad status, absent run, run of an absent model: one line each");

    int64_t r1, r2, r3;
    TL_CHECK(!store_report_put(db, run, "sinks", "{\"eps\":0.3}", "{\"v\":1}", &r1) &&
             !store_report_put(db, run, "sinks", NULL, "{\"v\":2}", &r2) &&
             !store_report_put(db, run, "detectors", "{}", "{\"v\":3}", &r3) && r1 < r2 && r2 < r3, "three reports stored");
    TL_CHECK(store_report_get(db, run, "sinks", &rep) == HS_OK && rep.id == r2 && strcmp(rep.report_json, "{\"v\":2}") == 0 &&
             strcmp(rep.params_json, "{}") == 0 && strcmp(rep.pass, "sinks") == 0 && rep.created && rep.run_id == run,
             "latest 'sinks' report is the second one");
    store_report_clear(&rep);
    TL_CHECK(store_report_get(db, run, NULL, &rep) == HS_OK && rep.id == r3, "latest report of any pass");
    store_report_clear(&rep);
    cap_begin();
    hs_status bj = store_report_put(db, run, "sinks", "{}", "[1,", &r1);
    msg = cap_end(&lines);
    TL_CHECK(bj == HS_EBADINPUT && lines == 1, "a report that is not JSON is refused: %.100s", msg);
    store_close(db);

    /* reopen: idempotent, readable read-only, data intact */
    e0 = hs_log_error_count();
    TL_CHECK(store_open(p, false, &db) == HS_OK, "reopening writable applies no migration and succeeds");
    store_close(db);
    TL_CHECK(store_open(p, true, &db) == HS_OK && hs_log_error_count() == e0, "opening read-only succeeds");
    w2 = check_prompt(db, run, 2, 7);
    TL_CHECK(!*w2, "read-only reader sees prompt 2 complete %s", w2);
    TL_CHECK(store_integrity_check(db) == HS_OK, "integrity_check and foreign_key_check are clean");
    store_close(db);
}

/* ------------------------------------------------------------------ duplicates, atomic batches */

static void test_duplicates(void) {
    int64_t run;
    store_db *db = new_db("dup.db", &run);
    store_batch *b = make_batch(run, 0, 2, 4);
    TL_CHECK(store_batch_write(db, b) == HS_OK, "prompts 0, 1 written");
    store_batch_free(b);
    b = make_batch(run, 2, 1, 4);
    add_prompt(b, 1, 4);   /* duplicate of a committed prompt, after a new one in the same batch */
    int lines;
    cap_begin();
    hs_status st = store_batch_write(db, b);
    const char *msg = cap_end(&lines);
    store_batch_free(b);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && strstr(msg, "prompt 1 of run") && strstr(msg, "already stored") &&
             strstr(msg, tmp_path("dup.db")), "a duplicate prompt is an error, one line: %.160s", msg);
    int *ix, n;
    store_prompt_indices(db, run, &ix, &n);
    TL_CHECK(n == 2, "the whole batch rolled back: prompt 2 (before the duplicate) is absent (%d prompts)", n);
    free(ix);
    b = store_batch_new(run);
    add_prompt(b, 5, 3);
    int shape[1] = { 1 };
    float one = 1;
    store_batch_add_activation(b, 5, HOOK_PAT, 1, 0, 0, 1, STORE_F32, shape, 1, &one, 4);   /* same key as add_prompt's */
    cap_begin();
    st = store_batch_write(db, b);
    msg = cap_end(&lines);
    store_batch_free(b);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && strstr(msg, "activation"), "the same (hook, layer, head) twice is refused: %.120s", msg);
    b = store_batch_new(run);
    store_batch_add_stat(b, 7, 0, 0, "entropy", 1);   /* prompt 7 was never written */
    cap_begin();
    st = store_batch_write(db, b);
    msg = cap_end(&lines);
    store_batch_free(b);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && strstr(msg, "FOREIGN KEY"), "a stat for an absent prompt is refused (foreign key): %.120s", msg);
    b = make_batch(run + 100, 0, 1, 2);
    cap_begin();
    st = store_batch_write(db, b);
    msg = cap_end(&lines);
    store_batch_free(b);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && strstr(msg, "store_run_begin"), "a batch for an absent run is refused");
    store_prompt_indices(db, run, &ix, &n);
    TL_CHECK(n == 2 && store_integrity_check(db) == HS_OK, "still exactly prompts 0, 1; integrity ok");
    free(ix);
    store_close(db);
}

/* ------------------------------------------------------------------ damaged and foreign files */

static void expect_open_fail(const char *rel, bool ro, hs_status want, const char *needle, const char *what) {
    store_db *db = NULL;
    int lines;
    cap_begin();
    hs_status st = store_open(tmp_path(rel), ro, &db);
    const char *msg = cap_end(&lines);
    TL_CHECK(st == want && db == NULL && lines == 1 && strstr(msg, needle) && strstr(msg, " — "),
             "%s: status %d, one line: %.200s", what, st, msg);
    store_close(db);
}

static void expect_read_fail(store_db *db, int64_t run, const char *what) {
    store_tensor t;
    int lines;
    cap_begin();
    hs_status st = store_activation_get(db, run, 0, HOOK_PAT, 1, 0, &t);
    const char *msg = cap_end(&lines);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && t.data == NULL && strstr(msg, "damaged"), "%s: one line: %.160s", what, msg);
}

static void test_bad_files(void) {
    spit(tmp_path("junk.db"), "this is not a database, just text long enough to look like a header...........................", 90);
    expect_open_fail("junk.db", false, HS_EBADINPUT, "not a database", "a text file");
    expect_open_fail("junk.db", true, HS_EBADINPUT, "not a database", "a text file, read-only");
    unlink(tmp_path("foreign.db"));
    raw_exec(tmp_path("foreign.db"), "CREATE TABLE customers(id, name); INSERT INTO customers VALUES(1, 'x');");
    expect_open_fail("foreign.db", false, HS_EBADINPUT, "not a headscope database", "another application's SQLite file");
    TL_CHECK(raw_int(tmp_path("foreign.db"), "SELECT count(*) FROM sqlite_master") == 1, "... which is left untouched");
    unlink(tmp_path("newer.db"));
    int64_t run;
    store_close(new_db("newer.db", &run));
    raw_exec(tmp_path("newer.db"), "PRAGMA user_version = 99");
    char want[600];
    snprintf(want, sizeof want, "store: %s has schema version 99, newer than this headscope (1) — upgrade headscope",
             tmp_path("newer.db"));
    expect_open_fail("newer.db", false, HS_EUNSUPPORTED, want, "user_version 99");
    expect_open_fail("newer.db", true, HS_EUNSUPPORTED, want, "user_version 99, read-only");
    spit(tmp_path("empty.db"), "", 0);
    expect_open_fail("empty.db", true, HS_EBADINPUT, "empty", "an empty file, read-only");
    expect_open_fail("absent.db", true, HS_EIO, "absent.db", "an absent file, read-only");
    store_db *db;
    TL_CHECK(store_open(tmp_path("empty.db"), false, &db) == HS_OK, "an empty file opened writable becomes a new store");
    store_close(db);
    unlink(tmp_path("gone.db"));
    raw_exec(tmp_path("gone.db"), "PRAGMA application_id = 1214534499; PRAGMA user_version = 1; CREATE TABLE models(x);");  /* 0x48645363 */
    expect_open_fail("gone.db", false, HS_EBADINPUT, "lacks", "a headscope-marked file missing tables");

    /* damaged rows: raw SQL with CHECK constraints off, then the typed reads */
    db = new_db("bad.db", &run);
    store_batch *b = make_batch(run, 0, 1, 4);
    store_batch_write(db, b);
    store_batch_free(b);
    store_close(db);
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("bad.db"));
    store_open(p, true, &db);
    struct { const char *sql, *what; } cases[] = {
        { "UPDATE activations SET data = substr(data, 1, 10) WHERE head = 0", "a blob shorter than its shape" },
        { "UPDATE activations SET data = zeroblob(100) WHERE head = 0", "a blob longer than its shape" },
        { "UPDATE activations SET data = 'text!' WHERE head = 0", "a text value instead of a blob" },
        { "UPDATE activations SET shape = '[4,4' WHERE head = 0", "a truncated shape" },
        { "UPDATE activations SET shape = '[4,-4]' WHERE head = 0", "a negative dimension" },
        { "UPDATE activations SET shape = '[1,1,1,1,16]' WHERE head = 0", "five dimensions" },
        { "UPDATE activations SET shape = '[2147483647,2147483647,2147483647,2147483647]' WHERE head = 0", "a shape whose product overflows" },
        { "UPDATE activations SET shape = '[99999999999]' WHERE head = 0", "a dimension beyond int" },
        { "UPDATE activations SET shape = '[]' WHERE head = 0", "zero dimensions" },
        { "UPDATE activations SET dtype = 'f64' WHERE head = 0", "an unknown dtype" },
        { "UPDATE activations SET pos_end = -5 WHERE head = 0", "pos_end before pos_begin" },
        { "UPDATE activations SET pos_begin = 'x' WHERE head = 0", "a text position" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* each case damages a fresh copy of the good file */
        store_close(db);
        unlink(p);
        db = new_db("bad.db", &run);
        b = make_batch(run, 0, 1, 4);
        store_batch_write(db, b);
        store_batch_free(b);
        store_close(db);
        char full[640];
        snprintf(full, sizeof full, "PRAGMA ignore_check_constraints = 1; %s;", cases[i].sql);
        raw_exec(p, full);
        store_open(p, true, &db);
        expect_read_fail(db, run, cases[i].what);
    }
    store_close(db);
    raw_exec(p, "DELETE FROM tokens WHERE pos = 2");
    store_open(p, true, &db);
    int *ids; char **strs; int nt, lines;
    cap_begin();
    hs_status st = store_tokens_get(db, run, 0, &ids, &strs, &nt);
    const char *msg = cap_end(&lines);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && ids == NULL && nt == 0, "a missing token row: one line: %.140s", msg);
    store_close(db);
    raw_exec(p, "PRAGMA ignore_check_constraints = 1; UPDATE head_stats SET metric = 'a_metric_name_longer_than_31_chars' WHERE head = 1 AND metric = 'entropy'");
    store_open(p, true, &db);
    store_stat *rows; int nr;
    cap_begin();
    st = store_stats_get(db, run, 0, NULL, &rows, &nr);
    msg = cap_end(&lines);
    TL_CHECK(st == HS_EBADINPUT && lines == 1 && rows == NULL, "an over-long metric name: one line: %.140s", msg);
    free(rows);
    store_close(db);
}

/* ------------------------------------------------------------------ writer thread */

static void test_writer(void) {
    int64_t run;
    store_db *db = new_db("w.db", &run);
    store_writer *w;
    /* A bound smaller than two batches: submit has to wait for the writer again and again. */
    size_t one = 0;
    { store_batch *b = make_batch(run, 0, 2, 16); one = store_batch_bytes(b); store_batch_free(b); }
    TL_CHECK(store_writer_start(db, one + one / 2, &w) == HS_OK, "writer started with a %zu-byte queue", one + one / 2);
    hs_status st = HS_OK;
    for (int i = 0; i < 60 && !st; i++) st = store_writer_submit(w, make_batch(run, 2 * i, 2, 16));
    TL_CHECK(st == HS_OK, "120 prompts submitted in 60 batches");
    TL_CHECK(store_writer_flush(w) == HS_OK, "flush waits for every commit");
    uint64_t written = store_writer_bytes_written(w);
    int *ix, n;
    store_db *rd;
    store_open(tmp_path("w.db"), true, &rd);
    store_prompt_indices(rd, run, &ix, &n);
    TL_CHECK(n == 120, "after flush a reader sees all 120 prompts while the writer still runs (%d)", n);
    free(ix);
    store_close(rd);
    TL_CHECK(store_writer_finish(w) == HS_OK, "writer finished cleanly");
    TL_CHECK(written > 120u * (NH * 16 * 16 * 2) && written < 60u * one, "bytes_written %llu counts the payload", (unsigned long long)written);
    int bad = 0;
    for (int i = 0; i < 120; i++) bad += *check_prompt(db, run, i, 16) != 0;
    TL_CHECK(bad == 0, "all 120 prompts complete and exact (%d bad)", bad);
    store_close(db);
}

/* Producer thread: a writer that commits batches while the main thread reads. Half-way it
 * flushes and waits for the main thread to read, so at least one read surely overlaps a live writer. */
typedef struct {
    store_db *db;
    int64_t run;
    int n_batches;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase;        /* 1: half committed; 2: reader done with the half */
    hs_status st;
} producer;

static void *produce(void *arg) {
    producer *p = arg;
    store_writer *w;
    p->st = store_writer_start(p->db, 1 << 20, &w);
    if (p->st) return NULL;
    for (int i = 0; i < p->n_batches && !p->st; i++) {
        p->st = store_writer_submit(w, make_batch(p->run, i, 1, 48));
        if (i == p->n_batches / 2) {
            if (!p->st) p->st = store_writer_flush(w);
            pthread_mutex_lock(&p->mu);
            p->phase = 1;
            pthread_cond_broadcast(&p->cv);
            while (p->phase != 2) pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
    }
    hs_status f = store_writer_finish(w);
    if (!p->st) p->st = f;
    return NULL;
}

static void test_concurrent_reader(void) {
    producer p = { .n_batches = 160 };
    store_db *rd = NULL;
    p.db = new_db("c.db", &p.run);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    pthread_create(&th, NULL, produce, &p);
    pthread_mutex_lock(&p.mu);
    while (p.phase != 1) pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    hs_status ost = store_open(tmp_path("c.db"), true, &rd);
    store_run_info *runs = NULL; int nr = 0;
    hs_status lst = ost ? ost : store_runs_list(rd, &runs, &nr);
    int half = nr == 1 ? runs[0].n_prompts : -1;
    store_runs_free(runs, nr);
    const char *w = ost ? "no reader" : check_prompt(rd, p.run, half - 1, 48);
    TL_CHECK(!ost && !lst && half == p.n_batches / 2 + 1 && !*w,
             "reader opened while the writer thread runs: %d prompts committed, the last complete %s", half, w);
    pthread_mutex_lock(&p.mu);
    p.phase = 2;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    /* free-running reads during the second half: counts never go back, every visible prompt is whole */
    int reads = 0, last = half, bad = 0, mid_seen = 0;
    char why[200] = "";
    double t0 = now_s();
    while (now_s() - t0 < 20) {
        int *ix = NULL, n = 0;
        if (store_prompt_indices(rd, p.run, &ix, &n) != HS_OK) { bad++; break; }
        if (n < last) { bad++; snprintf(why, sizeof why, "count went back %d -> %d", last, n); }
        if (n > half && n < p.n_batches) mid_seen++;
        last = n;
        if (n > 0) {
            const char *c = check_prompt(rd, p.run, ix[n - 1], 48);
            if (*c) { bad++; snprintf(why, sizeof why, "%s", c); }
            store_stat *st; int ns;
            if (store_stats_get(rd, p.run, -2, "entropy", &st, &ns) != HS_OK || ns < n * NH) bad++;
            free(st);
        }
        free(ix);
        reads++;
        if (n == p.n_batches) break;
    }
    pthread_join(th, NULL);
    TL_CHECK(p.st == HS_OK && bad == 0 && last == p.n_batches,
             "%d read rounds during the second half (%d saw it in progress): monotone, every newest prompt complete %s",
             reads, mid_seen, why);
    store_close(rd);
    store_close(p.db);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
}

/* ------------------------------------------------------------------ kill -9 and resume */

#define KILL_T 64

static void kill_child(const char *path, int wfd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a crashed test */
    hs_log_quiet(true);
    int64_t model, run;
    store_db *db;
    if (store_open(path, false, &db) || store_model_put(db, "/m", "hf", "{}", NULL, &model) ||
        store_run_begin(db, model, "{}", &run)) _exit(3);
    if (write(wfd, &run, sizeof run) != (ssize_t)sizeof run) _exit(3);
    close(wfd);
    store_writer *w;
    if (store_writer_start(db, 4 << 20, &w)) _exit(3);
    for (int i = 0; i < 100000; i += 2)
        if (store_writer_submit(w, make_batch(run, i, 2, KILL_T))) _exit(4);
    _exit(5);   /* the parent kills us long before this */
}

static void test_kill9_round(int threshold, bool resume) {
    char rel[32];
    snprintf(rel, sizeof rel, "k%d.db", threshold);
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path(rel));
    unlink(path);
    int fds[2];
    if (pipe(fds)) { perror("pipe"); exit(2); }
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) { close(fds[0]); kill_child(path, fds[1]); }
    close(fds[1]);
    int64_t run = 0;
    bool ready = read(fds[0], &run, sizeof run) == (ssize_t)sizeof run;
    close(fds[0]);
    /* Poll through a read-only connection (a second process reading while the child writes). */
    store_db *rd = NULL;
    int seen = 0;
    double t0 = now_s();
    if (ready && store_open(path, true, &rd) == HS_OK) {
        while (now_s() - t0 < 15) {
            int *ix = NULL;
            if (store_prompt_indices(rd, run, &ix, &seen) != HS_OK) break;
            free(ix);
            if (seen >= threshold) break;
            usleep(2000);
        }
    }
    kill(pid, SIGKILL);
    int wst = 0;
    waitpid(pid, &wst, 0);
    store_close(rd);
    TL_CHECK(ready && seen >= threshold && WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL,
             "child SIGKILLed while writing, after a reader saw %d >= %d prompts (%.2f s)", seen, threshold, now_s() - t0);

    store_db *db;
    hs_status ost = store_open(path, false, &db);
    TL_CHECK(ost == HS_OK && store_integrity_check(db) == HS_OK, "reopened after kill -9: integrity_check ok");
    if (ost) return;
    store_run_info ri;
    TL_CHECK(store_run_get(db, run, &ri) == HS_OK && strcmp(ri.status, "running") == 0 && ri.n_prompts >= seen,
             "run still 'running', %d prompts committed (>= %d seen)", ri.n_prompts, seen);
    store_run_info_clear(&ri);
    int *ix = NULL, n = 0, gaps = 0, bad = 0;
    store_prompt_indices(db, run, &ix, &n);
    for (int i = 0; i < n; i++) {
        gaps += ix[i] != i;
        if (*check_prompt(db, run, ix[i], KILL_T)) bad++;
    }
    free(ix);
    int64_t stray = raw_int(path, "SELECT (SELECT count(*) FROM tokens) + (SELECT count(*) FROM activations) + (SELECT count(*) FROM head_stats)");
    TL_CHECK(gaps == 0 && bad == 0 && n % 2 == 0 && stray == (int64_t)n * (KILL_T + NH + 1 + 2 * NH),
             "every committed prompt is complete: %d prompts = whole batches, no gap, no stray row (%d gaps, %d bad)", n, gaps, bad);
    if (resume) {
        /* resume: the indices say where to continue; re-submitting a committed prompt is refused */
        store_writer *w;
        int lines;
        store_writer_start(db, 1 << 20, &w);
        cap_begin();
        hs_status s1 = store_writer_submit(w, make_batch(run, n - 1, 1, KILL_T));
        hs_status s2 = store_writer_flush(w);
        hs_status s3 = store_writer_submit(w, make_batch(run, n, 2, KILL_T));
        hs_status s4 = store_writer_finish(w);
        const char *msg = cap_end(&lines);
        TL_CHECK(s1 == HS_OK && s2 == HS_EBADINPUT && s3 == HS_EBADINPUT && s4 == HS_EBADINPUT && lines == 1 &&
                 strstr(msg, "already stored"), "resume re-submitting prompt %d: refused once, later batches discarded: %.140s", n - 1, msg);
        store_writer_start(db, 1 << 20, &w);
        hs_status s5 = store_writer_submit(w, make_batch(run, n, 3, KILL_T));
        hs_status s6 = store_writer_finish(w);
        store_run_set_status(db, run, "complete");
        int m = 0;
        store_prompt_indices(db, run, &ix, &m);
        gaps = 0;
        for (int i = 0; i < m; i++) gaps += ix[i] != i;
        free(ix);
        TL_CHECK(s5 == HS_OK && s6 == HS_OK && m == n + 3 && gaps == 0 && !*check_prompt(db, run, n + 2, KILL_T),
                 "resumed from prompt %d: %d prompts 0..%d, none duplicated or lost", n, m, m - 1);
    }
    store_close(db);
}

/* ------------------------------------------------------------------ read-only and full disk */

static void test_readonly(void) {
    int64_t run;
    store_db *db = new_db("ro.db", &run);
    store_batch *b = make_batch(run, 0, 1, 4);
    store_batch_write(db, b);
    store_batch_free(b);
    store_close(db);
    char p[512];
    snprintf(p, sizeof p, "%s", tmp_path("ro.db"));
    int lines;
    const char *msg;

    /* (a) opened read-only, then a write attempt: SQLite refuses it inside the transaction */
    store_open(p, true, &db);
    b = make_batch(run, 1, 1, 4);
    cap_begin();
    hs_status st = store_batch_write(db, b);
    msg = cap_end(&lines);
    store_batch_free(b);
    TL_CHECK(st == HS_EIO && lines == 1 && strstr(msg, "readonly") && strstr(msg, p) && strstr(msg, "open it writable"),
             "write through a read-only connection: one line: %.200s", msg);
    store_writer *w = NULL;
    cap_begin();
    st = store_writer_start(db, 1 << 20, &w);
    msg = cap_end(&lines);
    TL_CHECK(st == HS_EBADINPUT && w == NULL && lines == 1, "a writer on a read-only connection is refused: %.140s", msg);
    store_close(db);
    TL_CHECK(raw_int(p, "SELECT count(*) FROM prompts") == 1 && raw_int(p, "PRAGMA user_version") == 1, "nothing was written");

    /* (b) a database path in a directory that does not exist */
    expect_open_fail("no/such/dir/run.db", false, HS_EIO, "does not exist", "a path in a missing directory");

    /* (c) a read-only database file: chmod 0444, or for root (which ignores modes) the immutable flag */
    bool root = geteuid() == 0, made = false;
    if (!root) made = chmod(p, 0444) == 0;
    else made = set_immutable(p, true);
    if (!made) {
        tl_skip("read-only database file: cannot make %s read-only as %s (immutable flag refused: %s)", p,
                root ? "root" : "this user", strerror(errno));
    } else {
        expect_open_fail("ro.db", false, HS_EIO, "read-only", root ? "an immutable database file (root)" : "a chmod 0444 database file");
        TL_CHECK(store_open(p, true, &db) == HS_OK && !*check_prompt(db, run, 0, 4), "... which still opens read-only, intact");
        store_close(db);
        if (!root) chmod(p, 0644); else set_immutable(p, false);
    }

    /* (d) a new database in a read-only directory */
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("rodir"));
    mkdir(dir, 0755);
    made = root ? set_immutable(dir, true) : chmod(dir, 0555) == 0;
    if (!made) {
        tl_skip("read-only directory: cannot make %s read-only as %s", dir, root ? "root" : "this user");
    } else {
        expect_open_fail("rodir/run.db", false, HS_EIO, "is not writable", root ? "a new database in an immutable directory (root)" : "a new database in a chmod 0555 directory");
        if (root) set_immutable(dir, false); else chmod(dir, 0755);
    }
}

static void test_full_disk(void) {
    int64_t run;
    store_db *db = new_db("full.db", &run);
    store_batch *b = make_batch(run, 0, 3, 32);
    store_batch_write(db, b);
    store_batch_free(b);
    store_set_max_pages(db, 1);   /* freeze the file at its current size: the next new page is "disk full" */
    store_writer *w;
    int lines;
    store_writer_start(db, 1 << 20, &w);
    cap_begin();
    hs_status s1 = store_writer_submit(w, make_batch(run, 3, 2, 160));   /* > 100 KiB: needs new pages */
    hs_status s2 = store_writer_flush(w);
    hs_status s3 = store_writer_submit(w, make_batch(run, 5, 1, 2));
    hs_status s4 = store_writer_finish(w);
    const char *msg = cap_end(&lines);
    TL_CHECK(s1 == HS_OK && s2 == HS_EIO && s3 == HS_EIO && s4 == HS_EIO && lines == 1 && strstr(msg, "full") &&
             strstr(msg, tmp_path("full.db")) && strstr(msg, "free disk space"),
             "full disk in the writer thread: one line, returned by flush, submit and finish: %.220s", msg);
    int *ix, n;
    store_prompt_indices(db, run, &ix, &n);
    TL_CHECK(n == 3 && ix[2] == 2, "the failed batch is absent, the 3 earlier prompts remain (%d)", n);
    free(ix);
    TL_CHECK(raw_int(tmp_path("full.db"), "SELECT count(*) FROM tokens WHERE prompt_idx >= 3") == 0 &&
             raw_int(tmp_path("full.db"), "SELECT count(*) FROM activations WHERE prompt_idx >= 3") == 0, "no stray token or activation row");
    store_set_max_pages(db, 1 << 30);
    b = make_batch(run, 3, 1, 32);
    TL_CHECK(store_batch_write(db, b) == HS_OK, "after space is freed, writing resumes at prompt 3");
    store_batch_free(b);
    store_close(db);
    store_open(tmp_path("full.db"), true, &db);
    int bad = 0;
    for (int i = 0; i < 4; i++) bad += *check_prompt(db, run, i, 32) != 0;
    TL_CHECK(store_integrity_check(db) == HS_OK && bad == 0, "reopened: integrity ok, prompts 0..3 complete");
    store_close(db);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hs_store_XXXXXX");
    if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 2; }
    double t0 = now_s();
    printf("half.h conversions\n");
    test_half();
    test_half_array();
    printf("schema, typed writes and reads\n");
    test_schema_and_roundtrip();
    test_duplicates();
    printf("foreign, newer and damaged files\n");
    test_bad_files();
    printf("writer thread and concurrent reader\n");
    test_writer();
    test_concurrent_reader();
    printf("kill -9 while writing, then resume\n");
    test_kill9_round(6, false);
    test_kill9_round(20, false);
    test_kill9_round(41, true);
    printf("read-only and full disk\n");
    test_readonly();
    test_full_disk();
    printf("(%.1f s, in %s)\n", now_s() - t0, g_tmp);
    tl_rm_tree(g_tmp);
    return tl_done();
}
