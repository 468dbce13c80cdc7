/* safetensors_write.c — F32 safetensors writer and atomic file writes (see safetensors_write.h).
 *
 * Constraints: little-endian host (the format stores little-endian data and we write floats as
 * they lie in memory, as runtime/safetensors.c reads them); names are plain ASCII chosen by the
 * caller (no JSON escaping is needed, and one that would need it is a programmer error).
 */
#include "safetensors_write.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this writer copies floats as they lie in memory"
#endif

typedef struct { char *p; size_t n, cap; } strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        HS_ASSERT(k >= 0);
        if (b->p && (size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = hs_xrealloc(b->p, b->cap);
    }
}

/* Write all of buf to fd (partial writes and EINTR retried). */
static bool write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* The temporary-file dance shared by both writers: open PATH.tmp.XXXXXX, let `emit` write the
 * content, fsync, rename over PATH. On any failure the temporary file is removed. */
typedef bool (*emit_fn)(int fd, const void *ctx);

static hs_status write_atomic(const char *path, emit_fn emit, const void *ctx, const char *module) {
    size_t n = strlen(path) + 16;
    char *tmp = hs_xmalloc(n);
    snprintf(tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        hs_log_error(module, "cannot create a file next to %s: %s — check that the folder exists and is writable",
                     path, strerror(errno));
        free(tmp);
        return HS_EIO;
    }
    /* mkstemp creates 0600; a model folder is meant to be shared like any checkpoint */
    bool ok = fchmod(fd, 0644) == 0 && emit(fd, ctx) && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) { ok = false; err = errno; }
    if (ok && rename(tmp, path) != 0) { ok = false; err = errno; }
    if (!ok) {
        unlink(tmp);
        hs_log_error(module, "cannot write %s: %s — check free disk space and permissions", path, strerror(err));
        free(tmp);
        return HS_EIO;
    }
    free(tmp);
    return HS_OK;
}

typedef struct { const void *data; size_t len; } bytes_ctx;

static bool emit_bytes(int fd, const void *ctx) {
    const bytes_ctx *c = ctx;
    return write_all(fd, c->data, c->len);
}

hs_status ds_file_write_atomic(const char *path, const void *data, size_t len, const char *module) {
    bytes_ctx c = { data, len };
    return write_atomic(path, emit_bytes, &c, module);
}

typedef struct { const strbuf *hdr; const ds_st_tensor *t; int n; } st_ctx;

static size_t n_elem(const ds_st_tensor *t) {
    HS_ASSERT(t->ndim == 1 || t->ndim == 2);
    HS_ASSERT(t->shape[0] >= 0 && (t->ndim == 1 || t->shape[1] >= 0));
    return (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1);
}

static bool emit_st(int fd, const void *ctx) {
    const st_ctx *c = ctx;
    uint8_t len8[8];
    uint64_t hl = c->hdr->n;
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hl >> (8 * i));
    if (!write_all(fd, len8, 8) || !write_all(fd, c->hdr->p, c->hdr->n)) return false;
    for (int i = 0; i < c->n; i++)
        if (!write_all(fd, c->t[i].data, n_elem(&c->t[i]) * sizeof(float))) return false;
    return true;
}

hs_status ds_safetensors_write(const char *path, const ds_st_tensor *tensors, int n, const char *module) {
    strbuf h = { 0 };
    size_t off = 0;
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        const ds_st_tensor *t = &tensors[i];
        for (const char *s = t->name; *s; s++) HS_ASSERT(*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\');
        size_t bytes = n_elem(t) * sizeof(float);
        if (t->ndim == 1)
            sb_printf(&h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                      t->name, (long long)t->shape[0], off, off + bytes);
        else
            sb_printf(&h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                      t->name, (long long)t->shape[0], (long long)t->shape[1], off, off + bytes);
        off += bytes;
    }
    sb_printf(&h, "}");
    /* pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned */
    while ((8 + h.n) % 8) sb_printf(&h, " ");
    st_ctx c = { &h, tensors, n };
    hs_status st = write_atomic(path, emit_st, &c, module);
    free(h.p);
    return st;
}
