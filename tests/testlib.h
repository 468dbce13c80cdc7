/* testlib.h — the tiny test harness every tests/test_*.c uses (header-only).
 *
 * Each check prints one line ("  ok    what" / "  FAIL  what: detail"); tl_done() prints
 * "N passed, N failed, N skipped" as the last line and returns the exit status (1 on any failure).
 * Tests run from the repository root; ../shared is found at HS_SHARED or ../shared and, when
 * missing, tests that need it call tl_skip() so the skip is visible and counted.
 */
#ifndef HS_TESTLIB_H
#define HS_TESTLIB_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ftw.h>
#include <sys/wait.h>
#include <unistd.h>

static int tl_passed, tl_failed, tl_skipped;

static inline void tl_ok(const char *fmt, ...) {
    va_list ap; tl_passed++;
    printf("  ok    "); va_start(ap, fmt); vprintf(fmt, ap); va_end(ap); printf("\n");
}
static inline void tl_fail(const char *fmt, ...) {
    va_list ap; tl_failed++;
    printf("  FAIL  "); va_start(ap, fmt); vprintf(fmt, ap); va_end(ap); printf("\n");
}
static inline void tl_skip(const char *fmt, ...) {
    va_list ap; tl_skipped++;
    printf("  skip  "); va_start(ap, fmt); vprintf(fmt, ap); va_end(ap); printf("\n");
}
/* Record one check: passes when cond is true; the message says what was compared. */
#define TL_CHECK(cond, ...) do { if (cond) tl_ok(__VA_ARGS__); else tl_fail(__VA_ARGS__); } while (0)

static inline int tl_done(void) {
    fflush(stderr);
    printf("%d passed, %d failed, %d skipped\n", tl_passed, tl_failed, tl_skipped);
    return tl_failed ? 1 : 0;
}

/* Path of the shared data folder, or NULL when it is absent. */
static inline const char *tl_shared(void) {
    static char buf[4096];
    const char *env = getenv("HS_SHARED");
    struct stat st;
    snprintf(buf, sizeof buf, "%.4000s", env && *env ? env : "../shared");
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
    return NULL;
}
/* "<shared>/<rel>" in a static buffer (one of 4 rotating), or NULL when ../shared is absent. */
static inline const char *tl_shared_path(const char *rel) {
    static char bufs[4][4096]; static int k;
    const char *s = tl_shared();
    if (!s) return NULL;
    char *b = bufs[k++ & 3];
    snprintf(b, 4096, "%.2000s/%.2000s", s, rel);
    return b;
}

/* Max |a-b| and max |a-b|/(|b|+tiny) over n floats. */
static inline double tl_max_abs(const float *a, const double *b, size_t n) {
    double m = 0; for (size_t i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (d > m || d != d) m = d != d ? INFINITY : d; } return m;
}
/* Relative error in the norm sense: max|a-b| / max|b| (robust for values near zero). */
static inline double tl_rel_err(const float *a, const double *b, size_t n) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (d > m || d != d) m = d != d ? INFINITY : d; if (fabs(b[i]) > s) s = fabs(b[i]); }
    return s > 0 ? m / s : m;
}
/* Run `HS ARGS` through the shell with stdout discarded; *stderr_lines = lines it wrote to stderr.
 * Returns the exit status (-1 if it did not exit normally). */
static inline int tl_run_cli(const char *hs, const char *args, int *stderr_lines) {
    char cmd[4096], buf[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", hs, args);
    *stderr_lines = -1;
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    *stderr_lines = 0;
    while (fgets(buf, sizeof buf, p)) (*stderr_lines)++;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The CLI under test: $HS (make test sets it), else bin/headscope; NULL after a visible skip line
 * when it is not built. */
static inline const char *tl_cli(void) {
    const char *hs = getenv("HS");
    if (!hs || !*hs) hs = "bin/headscope";
    if (access(hs, X_OK) != 0) { tl_skip("CLI: %s not built", hs); return NULL; }
    return hs;
}
/* Each of the n argument strings must make `HS args` exit 2 with exactly one stderr line. */
static inline void tl_check_cli_refuses(const char *hs, const char *const *args, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int lines, st = tl_run_cli(hs, args[i], &lines);
        TL_CHECK(st == 2 && lines == 1, "headscope %s -> exit %d (want 2), %d stderr line(s) (want 1)", args[i], st, lines);
    }
}

static inline int tl_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}
/* Remove a directory tree (a test's scratch folder). */
static inline void tl_rm_tree(const char *dir) { nftw(dir, tl_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }
#endif
