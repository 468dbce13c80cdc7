/* common.h — status codes, logging and abort macros shared by every headscope module.
 *
 * Two-tier error policy (../shared/CONVENTIONS.md):
 *   - programmer errors (broken invariants) and out-of-memory abort with file:line (HS_ASSERT, hs_xmalloc);
 *   - everything the environment can cause returns an hs_status and logs ONE line through hs_log_error:
 *       "module: what happened (where) — how to fix"
 * The CLI maps HS_EBADINPUT / HS_EIO / HS_EUNSUPPORTED to exit status 2.
 */
#ifndef HS_COMMON_H
#define HS_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum {
    HS_OK = 0,
    HS_EBADINPUT = 1,   /* malformed file, bad argument, invalid UTF-8, ... */
    HS_EIO = 2,         /* cannot open/read/write a file */
    HS_EUNSUPPORTED = 3,/* well-formed but not supported (model_type, dtype, ...) */
    HS_ENOTFOUND = 4    /* a named thing (tensor, hook, token) does not exist */
} hs_status;

#define HS_VERSION "0.1.0"

/* Log one diagnostic line to stderr: "<module>: <message>\n". printf-style.
 * Only the first error of a failing call chain should be logged; callers further up
 * propagate the status without logging again. */
void hs_log_error(const char *module, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Informational line (progress, notes) on stderr, same prefix; silenced by hs_log_quiet(true). */
void hs_log_info(const char *module, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hs_log_quiet(bool quiet);
/* Count of hs_log_error calls so far (tests use it to check "exactly one error line"). */
int hs_log_error_count(void);

/* Abort with file:line — for broken invariants only, never for bad input. */
#define HS_ASSERT(cond) do { if (!(cond)) hs_abort(__FILE__, __LINE__, #cond); } while (0)
void hs_abort(const char *file, int line, const char *what) __attribute__((noreturn));

/* malloc/calloc/realloc that abort with file:line on out-of-memory. Free with free(). */
#define hs_xmalloc(n) hs_xmalloc_at((n), __FILE__, __LINE__)
#define hs_xcalloc(n, s) hs_xcalloc_at((n), (s), __FILE__, __LINE__)
#define hs_xrealloc(p, n) hs_xrealloc_at((p), (n), __FILE__, __LINE__)
void *hs_xmalloc_at(size_t n, const char *file, int line);
void *hs_xcalloc_at(size_t n, size_t s, const char *file, int line);
void *hs_xrealloc_at(void *p, size_t n, const char *file, int line);
char *hs_xstrdup(const char *s);

/* Overflow-checked size arithmetic for parsers: return false on overflow, *out unchanged. */
static inline bool hs_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b; return true;
}
static inline bool hs_add_ok(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return false;
    *out = a + b; return true;
}

/* Read a whole file into a NUL-terminated heap buffer (caller frees with free()).
 * On error logs "<module>: cannot read PATH: strerror" and returns HS_EIO; *out untouched. */
hs_status hs_read_file(const char *module, const char *path, char **out, size_t *len);

/* Validate UTF-8. Returns true when valid; otherwise false and *bad_offset = first bad byte offset. */
bool hs_utf8_valid(const char *s, size_t n, size_t *bad_offset);
/* Length in bytes of the UTF-8 sequence starting with lead byte c (1 for invalid leads). */
static inline int hs_utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
}
#endif
