/* safetensors.c — paranoid safetensors header parser, mmap, name lookup, shard index
 * (see safetensors.h for the format and the contracts).
 *
 * Every number in the header is checked before it becomes a size or a pointer: the loaders hand
 * pointers into the mmapped data section straight to the forward pass, so a bad offset here would
 * be an out-of-bounds read later. All errors are one line through hs_log_error("model", ...).
 */
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; headscope reads it in place and needs a little-endian host"
#endif

static const struct { const char *name; size_t size; } g_dtypes[RT_ST_N_DTYPES] = {
    [RT_ST_BOOL] = {"BOOL", 1}, [RT_ST_U8] = {"U8", 1}, [RT_ST_I8] = {"I8", 1},
    [RT_ST_F8_E4M3] = {"F8_E4M3", 1}, [RT_ST_F8_E5M2] = {"F8_E5M2", 1}, [RT_ST_F8_E8M0] = {"F8_E8M0", 1},
    [RT_ST_I16] = {"I16", 2}, [RT_ST_U16] = {"U16", 2}, [RT_ST_F16] = {"F16", 2}, [RT_ST_BF16] = {"BF16", 2},
    [RT_ST_I32] = {"I32", 4}, [RT_ST_U32] = {"U32", 4}, [RT_ST_F32] = {"F32", 4},
    [RT_ST_I64] = {"I64", 8}, [RT_ST_U64] = {"U64", 8}, [RT_ST_F64] = {"F64", 8},
};

const char *rt_st_dtype_name(rt_st_dtype dt) {
    HS_ASSERT((unsigned)dt < RT_ST_N_DTYPES);
    return g_dtypes[dt].name;
}
size_t rt_st_dtype_size(rt_st_dtype dt) {
    HS_ASSERT((unsigned)dt < RT_ST_N_DTYPES);
    return g_dtypes[dt].size;
}

/* A JSON number that is an integer in [0, max]. max <= 2^53 so doubles hold it exactly. */
static bool json_uint(const cJSON *v, uint64_t max, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > (double)max) return false;
    *out = (uint64_t)d;
    return true;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const rt_st_tensor *)a)->name, ((const rt_st_tensor *)b)->name);
}

static void free_tensors(rt_st_tensor *t, int n) {
    for (int i = 0; i < n; i++) free(t[i].name);
    free(t);
}

#define MAX_JSON_INT ((uint64_t)1 << 53)

hs_status rt_st_parse(const uint8_t *buf, size_t len, const char *where, rt_st_file *out) {
    hs_status st = HS_EBADINPUT;
    char *hdr = NULL;
    cJSON *root = NULL;
    rt_st_tensor *tens = NULL;
    int n = 0;
    memset(out, 0, sizeof *out);

    if (len < 8) {
        hs_log_error("model", "%s is %zu bytes, too short for a safetensors header (8-byte length + JSON) — the file is truncated or not safetensors", where, len);
        return HS_EBADINPUT;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > RT_ST_MAX_HEADER) {
        hs_log_error("model", "safetensors header length %llu is absurd (over 100 MB) (%s) — the file is corrupt or not safetensors",
                     (unsigned long long)hlen, where);
        return HS_EBADINPUT;
    }
    if (hlen > len - 8) {
        hs_log_error("model", "safetensors header length %llu runs past the end of the file (%zu bytes) (%s) — the file is truncated or not safetensors",
                     (unsigned long long)hlen, len, where);
        return HS_EBADINPUT;
    }
    const uint8_t *data = buf + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    size_t bad;
    if (memchr(buf + 8, 0, (size_t)hlen) || !hs_utf8_valid((const char *)buf + 8, (size_t)hlen, &bad)) {
        hs_log_error("model", "safetensors header is not UTF-8 JSON text (%s) — the file is corrupt or not safetensors", where);
        return HS_EBADINPUT;
    }
    /* cJSON needs a terminated string; the copy also lets require_null_terminated reject trailing junk. */
    hdr = hs_xmalloc((size_t)hlen + 1);
    memcpy(hdr, buf + 8, (size_t)hlen);
    hdr[hlen] = '\0';
    root = cJSON_ParseWithOpts(hdr, NULL, 1);
    if (!cJSON_IsObject(root)) {
        hs_log_error("model", "safetensors header is not a JSON object (%s) — the file is corrupt or not safetensors", where);
        goto fail;
    }
    int count = cJSON_GetArraySize(root);
    tens = hs_xcalloc((size_t)count + 1, sizeof *tens);
    for (const cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                hs_log_error("model", "safetensors __metadata__ is not an object (%s) — the file is corrupt", where);
                goto fail;
            }
            continue;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo)) {
            hs_log_error("model", "safetensors entry '%.200s' lacks a string dtype, a shape array or a data_offsets array (%s) — the file is corrupt",
                         name, where);
            goto fail;
        }
        rt_st_tensor *t = &tens[n];
        int dt = -1;
        for (int k = 0; k < RT_ST_N_DTYPES; k++)
            if (strcmp(jd->valuestring, g_dtypes[k].name) == 0) { dt = k; break; }
        if (dt < 0) {
            hs_log_error("model", "tensor '%.200s' has dtype '%.40s', which headscope does not know (%s) — weights must be F32, F16 or BF16",
                         name, jd->valuestring, where);
            st = HS_EUNSUPPORTED;
            goto fail;
        }
        t->dtype = (rt_st_dtype)dt;
        int nd = cJSON_GetArraySize(js);
        if (nd > RT_ST_MAX_DIMS) {
            hs_log_error("model", "tensor '%.200s' has %d dimensions, more than %d (%s) — the file is corrupt or not a supported checkpoint",
                         name, nd, RT_ST_MAX_DIMS, where);
            goto fail;
        }
        size_t ne = 1;
        int d = 0;
        for (const cJSON *s = js->child; s; s = s->next, d++) {
            uint64_t v;
            if (!json_uint(s, MAX_JSON_INT, &v)) {
                hs_log_error("model", "tensor '%.200s' has a shape entry that is not a non-negative integer (%s) — the file is corrupt",
                             name, where);
                goto fail;
            }
            t->shape[d] = (int64_t)v;
            if (!hs_mul_ok(ne, (size_t)v, &ne)) {
                hs_log_error("model", "tensor '%.200s' shape overflows the address space (%s) — the file is corrupt", name, where);
                goto fail;
            }
        }
        t->ndim = nd;
        t->n_elem = ne;
        uint64_t b0, b1;
        if (cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, MAX_JSON_INT, &b0) || !json_uint(jo->child->next, MAX_JSON_INT, &b1)) {
            hs_log_error("model", "tensor '%.200s' data_offsets is not a pair of non-negative integers (%s) — the file is corrupt", name, where);
            goto fail;
        }
        if (b0 > b1) {
            hs_log_error("model", "tensor '%.200s' data_offsets [%llu, %llu] begin after they end (%s) — the file is corrupt",
                         name, (unsigned long long)b0, (unsigned long long)b1, where);
            goto fail;
        }
        if (b1 > data_len) {
            hs_log_error("model", "tensor '%.200s' data_offsets [%llu, %llu] run past the data section (%zu bytes) (%s) — the file is truncated",
                         name, (unsigned long long)b0, (unsigned long long)b1, data_len, where);
            goto fail;
        }
        size_t bytes;
        if (!hs_mul_ok(ne, g_dtypes[dt].size, &bytes) || bytes != b1 - b0) {
            hs_log_error("model", "tensor '%.200s' shape holds %zu %s elements but data_offsets [%llu, %llu] span %llu bytes (%s) — the file is corrupt",
                         name, ne, g_dtypes[dt].name, (unsigned long long)b0, (unsigned long long)b1,
                         (unsigned long long)(b1 - b0), where);
            goto fail;
        }
        t->begin = (size_t)b0;
        t->end = (size_t)b1;
        t->data = data + t->begin;
        t->name = hs_xstrdup(name);
        n++;
    }
    qsort(tens, (size_t)n, sizeof *tens, cmp_tensor);
    for (int i = 1; i < n; i++)
        if (strcmp(tens[i - 1].name, tens[i].name) == 0) {
            hs_log_error("model", "tensor '%.200s' appears twice in the safetensors header (%s) — the file is corrupt", tens[i].name, where);
            goto fail;
        }
    cJSON_Delete(root);
    free(hdr);
    out->tensors = tens;
    out->n_tensors = n;
    out->data = data;
    out->data_len = data_len;
    out->where = hs_xstrdup(where);
    return HS_OK;
fail:
    free_tensors(tens, n);
    cJSON_Delete(root);
    free(hdr);
    return st;
}

hs_status rt_st_open(const char *path, rt_st_file *out) {
    struct stat sb;
    void *map = NULL;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hs_log_error("model", "cannot open %s: %s — check that the checkpoint is complete and readable", path, strerror(errno));
        return HS_EIO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        hs_log_error("model", "%s is not a regular file — pass a checkpoint folder with .safetensors files", path);
        close(fd);
        return HS_EIO;
    }
    size_t len = (size_t)sb.st_size;
    if (len < 8) {
        /* mmap of an empty file fails; let the parser give the one truncation message. */
        uint8_t small[8];
        ssize_t got = read(fd, small, sizeof small);
        close(fd);
        return rt_st_parse(small, got > 0 ? (size_t)got : 0, path, out);
    }
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        hs_log_error("model", "cannot mmap %s: %s — check free address space and file permissions", path, strerror(errno));
        return HS_EIO;
    }
    hs_status st = rt_st_parse(map, len, path, out);
    if (st != HS_OK) { munmap(map, len); return st; }
    out->map = map;
    out->map_len = len;
    return HS_OK;
}

void rt_st_detach_map(rt_st_file *f, void **map, size_t *map_len) {
    *map = f->map;
    *map_len = f->map_len;
    f->map = NULL;
    f->map_len = 0;
}

void rt_st_close(rt_st_file *f) {
    if (!f) return;
    free_tensors(f->tensors, f->n_tensors);
    free(f->where);
    if (f->map) munmap(f->map, f->map_len);
    memset(f, 0, sizeof *f);
}

const rt_st_tensor *rt_st_find(const rt_st_file *f, const char *name) {
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

/* ---- sharded index ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_str(char *const *v, int n, const char *s) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(s, v[mid]);
        if (c == 0) return mid;
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

typedef struct { char *name; char *shard; } idx_pair;
static int cmp_pair(const void *a, const void *b) {
    return strcmp(((const idx_pair *)a)->name, ((const idx_pair *)b)->name);
}

hs_status rt_st_index_parse(const char *json, size_t len, const char *where, rt_st_index *out) {
    cJSON *root = NULL;
    idx_pair *pairs = NULL;
    char **shards = NULL;
    int n = 0, ns = 0;
    memset(out, 0, sizeof *out);

    root = cJSON_ParseWithLength(json, len);
    const cJSON *wm = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        hs_log_error("model", "%s is not a JSON object with a \"weight_map\" object — the sharded checkpoint index is corrupt", where);
        goto fail;
    }
    int count = cJSON_GetArraySize(wm);
    pairs = hs_xcalloc((size_t)count + 1, sizeof *pairs);
    for (const cJSON *e = wm->child; e; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (!cJSON_IsString(e)) {
            hs_log_error("model", "weight_map entry '%.200s' is not a file name string (%s) — the sharded checkpoint index is corrupt", name, where);
            goto fail;
        }
        const char *s = e->valuestring;
        if (!*s || strchr(s, '/') || strchr(s, '\\') || strstr(s, "..")) {
            hs_log_error("model", "weight_map sends '%.200s' to shard '%.200s', which is not a plain file name in the checkpoint folder (%s) — shard names may not contain '/', '\\' or '..'",
                         name, s, where);
            goto fail;
        }
        pairs[n].name = hs_xstrdup(name);
        pairs[n].shard = e->valuestring;   /* borrowed until the shard table is built */
        n++;
    }
    qsort(pairs, (size_t)n, sizeof *pairs, cmp_pair);
    for (int i = 1; i < n; i++)
        if (strcmp(pairs[i - 1].name, pairs[i].name) == 0) {
            hs_log_error("model", "tensor '%.200s' appears twice in the weight_map (%s) — the sharded checkpoint index is corrupt", pairs[i].name, where);
            goto fail;
        }
    /* unique, sorted shard names */
    shards = hs_xcalloc((size_t)n + 1, sizeof *shards);
    for (int i = 0; i < n; i++) shards[i] = pairs[i].shard;
    qsort(shards, (size_t)n, sizeof *shards, cmp_str);
    for (int i = 0; i < n; i++)
        if (ns == 0 || strcmp(shards[ns - 1], shards[i]) != 0) shards[ns++] = shards[i];
    for (int i = 0; i < ns; i++) shards[i] = hs_xstrdup(shards[i]);

    out->shards = shards;
    out->n_shards = ns;
    out->names = hs_xcalloc((size_t)n + 1, sizeof *out->names);
    out->shard_of = hs_xcalloc((size_t)n + 1, sizeof *out->shard_of);
    for (int i = 0; i < n; i++) {
        out->names[i] = pairs[i].name;
        out->shard_of[i] = find_str(shards, ns, pairs[i].shard);
        HS_ASSERT(out->shard_of[i] >= 0);
    }
    out->n_names = n;
    free(pairs);
    cJSON_Delete(root);
    return HS_OK;
fail:
    for (int i = 0; i < n; i++) free(pairs[i].name);
    free(pairs);
    free(shards);   /* still borrowed pointers on every failure path */
    cJSON_Delete(root);
    return HS_EBADINPUT;
}

int rt_st_index_find(const rt_st_index *ix, const char *name) {
    int i = find_str(ix->names, ix->n_names, name);
    return i < 0 ? -1 : ix->shard_of[i];
}

void rt_st_index_free(rt_st_index *ix) {
    if (!ix) return;
    for (int i = 0; i < ix->n_shards; i++) free(ix->shards[i]);
    for (int i = 0; i < ix->n_names; i++) free(ix->names[i]);
    free(ix->shards);
    free(ix->names);
    free(ix->shard_of);
    memset(ix, 0, sizeof *ix);
}
