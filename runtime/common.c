/* common.c — logging, abort and checked allocation for every module (see common.h). */
#include "common.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool g_quiet;
static int g_errors;

void hs_log_quiet(bool quiet) { g_quiet = quiet; }
int hs_log_error_count(void) { return g_errors; }

void hs_log_error(const char *module, const char *fmt, ...) {
    va_list ap;
    g_errors++;
    fprintf(stderr, "%s: ", module);
    va_start(ap, fmt); vfprintf(stderr, fmt, ap); va_end(ap);
    fputc('\n', stderr);
}

void hs_log_info(const char *module, const char *fmt, ...) {
    va_list ap;
    if (g_quiet) return;
    fprintf(stderr, "%s: ", module);
    va_start(ap, fmt); vfprintf(stderr, fmt, ap); va_end(ap);
    fputc('\n', stderr);
}

void hs_abort(const char *file, int line, const char *what) {
    fprintf(stderr, "headscope: internal error at %s:%d: %s\n", file, line, what);
    abort();
}

void *hs_xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) hs_abort(file, line, "out of memory");
    return p;
}
void *hs_xcalloc_at(size_t n, size_t s, const char *file, int line) {
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (!p) hs_abort(file, line, "out of memory");
    return p;
}
void *hs_xrealloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) hs_abort(file, line, "out of memory");
    return q;
}
char *hs_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = hs_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

hs_status hs_read_file(const char *module, const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) { hs_log_error(module, "cannot open %s: %s — check the path", path, strerror(errno)); return HS_EIO; }
    for (;;) {
        if (n + 1 >= cap) { cap = cap ? cap * 2 : 65536; buf = hs_xrealloc(buf, cap); }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        hs_log_error(module, "cannot read %s: %s", path, strerror(errno));
        fclose(f); free(buf); return HS_EIO;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return HS_OK;
}

bool hs_utf8_valid(const char *s, size_t n, size_t *bad_offset) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t k; uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        if (n - i <= k) goto bad;
        for (size_t j = 1; j <= k; j++) {
            if ((u[i + j] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (u[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += k + 1;
    }
    return true;
bad:
    if (bad_offset) *bad_offset = i;
    return false;
}
