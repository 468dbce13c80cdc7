/* safetensors.h — read-only access to .safetensors files and sharded-checkpoint indexes.
 *
 * Format: 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON mapping
 * tensor name -> {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional
 * "__metadata__" object), then the data section; offsets are relative to the data section.
 *
 * Why a parser of our own: the file is mmapped and F32 weights are used in place, so every
 * offset, size and shape must be proven safe before any pointer into the map is handed out.
 * The parser trusts nothing (see rt_st_parse); it runs under libFuzzer (tests/fuzz/).
 * Constraints: little-endian host (as the format is); the header is at most 100 MB (the limit
 * of the reference implementation); at most RT_ST_MAX_DIMS dimensions per tensor.
 */
#ifndef HS_SAFETENSORS_H
#define HS_SAFETENSORS_H
#include "common.h"

#define RT_ST_MAX_DIMS 8
#define RT_ST_MAX_HEADER 100000000u

/* Every dtype the safetensors format defines with a whole-byte element size. The loaders
 * accept only F32/F16/BF16 as weights; the others are parsed so that their sizes are checked. */
typedef enum {
    RT_ST_BOOL, RT_ST_U8, RT_ST_I8, RT_ST_F8_E4M3, RT_ST_F8_E5M2, RT_ST_F8_E8M0,
    RT_ST_I16, RT_ST_U16, RT_ST_F16, RT_ST_BF16,
    RT_ST_I32, RT_ST_U32, RT_ST_F32,
    RT_ST_I64, RT_ST_U64, RT_ST_F64,
    RT_ST_N_DTYPES
} rt_st_dtype;

typedef struct {
    char *name;                       /* owned, NUL-terminated */
    rt_st_dtype dtype;
    int ndim;                         /* 0 (scalar) .. RT_ST_MAX_DIMS */
    int64_t shape[RT_ST_MAX_DIMS];
    size_t n_elem;                    /* product of shape (checked for overflow) */
    size_t begin, end;                /* byte range in the data section; end - begin == n_elem * dtype size */
    const uint8_t *data;              /* borrowed: data section + begin */
} rt_st_tensor;

typedef struct {
    rt_st_tensor *tensors;            /* owned, sorted by name (no duplicates) */
    int n_tensors;
    const uint8_t *data;              /* borrowed: start of the data section */
    size_t data_len;
    char *where;                      /* owned copy of the path/name used in error lines */
    void *map; size_t map_len;        /* set by rt_st_open: the whole file, mmapped read-only */
} rt_st_file;

/* Parse a safetensors image held in memory (buf, len). `where` names it in error lines.
 * Validates: length >= 8; header length within the file and <= 100 MB; header is UTF-8 JSON
 * object without NUL bytes; each entry has a known dtype, an integer shape (>= 0, <= 8 dims),
 * integer data_offsets with begin <= end <= data length, and shape x dtype size == end - begin
 * (overflow-checked); names are unique. Overlapping ranges are allowed.
 * On success *out holds tensors pointing into buf (buf must outlive it; out->map stays NULL);
 * release with rt_st_close. On error logs one line, returns HS_EBADINPUT (HS_EUNSUPPORTED for an
 * unknown dtype) and leaves *out zeroed. */
hs_status rt_st_parse(const uint8_t *buf, size_t len, const char *where, rt_st_file *out);

/* mmap PATH read-only and parse it. Errors: HS_EIO (cannot open/map, not a regular file), else as
 * rt_st_parse. On error logs one line and leaves *out zeroed. Release with rt_st_close. */
hs_status rt_st_open(const char *path, rt_st_file *out);

/* Free the tensor table and unmap the file if rt_st_open mapped it; *f is zeroed. Safe on a zeroed f.
 * rt_st_detach_map hands the mapping to the caller instead (it then owns map/map_len, to munmap). */
void rt_st_close(rt_st_file *f);
void rt_st_detach_map(rt_st_file *f, void **map, size_t *map_len);

/* Tensor by exact name, or NULL. Binary search; borrowed pointer valid until rt_st_close. */
const rt_st_tensor *rt_st_find(const rt_st_file *f, const char *name);

const char *rt_st_dtype_name(rt_st_dtype dt);   /* "F32", "BF16", ... */
size_t rt_st_dtype_size(rt_st_dtype dt);        /* bytes per element */

/* Exact conversions of IEEE binary16 and bfloat16 bit patterns to float (subnormals, inf and
 * NaN payloads included). Inline because the loaders call them once per weight. */
static inline float rt_bf16_to_f32(uint16_t b) {
    /* bfloat16 is the top half of a binary32: widening is a shift, exact for every pattern. */
    union { uint32_t u; float f; } v = {(uint32_t)b << 16};
    return v.f;
}
static inline float rt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    union { uint32_t u; float f; } v;
    if (exp == 0x1F) {
        v.u = sign | 0x7F800000u | (man << 13);              /* inf, NaN (payload kept) */
    } else if (exp != 0) {
        v.u = sign | ((exp + 112u) << 23) | (man << 13);       /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        v.u = sign;                                           /* +-0 */
    } else {
        /* subnormal half = man * 2^-24; every one is a normal float: shift the leading 1 out. */
        uint32_t e = 113;                                     /* 127 - 14 */
        while (!(man & 0x400u)) { man <<= 1; e--; }
        v.u = sign | (e << 23) | ((man & 0x3FFu) << 13);
    }
    return v.f;
}

/* ---- model.safetensors.index.json (sharded checkpoints) ---- */
typedef struct {
    char **shards;        /* owned: unique shard file names, sorted */
    int n_shards;
    char **names;         /* owned: tensor names, sorted */
    int *shard_of;        /* (n_names) index into shards */
    int n_names;
} rt_st_index;

/* Parse an index's JSON text (len bytes, need not be NUL-terminated). Requires a "weight_map"
 * object of string values. Shard names must be plain file names: non-empty, without '/', '\\'
 * or "..", so that no shard can be read from outside the checkpoint folder.
 * On error logs one line, returns HS_EBADINPUT and leaves *out zeroed. Free with rt_st_index_free. */
hs_status rt_st_index_parse(const char *json, size_t len, const char *where, rt_st_index *out);
/* Shard index holding tensor `name`, or -1. */
int rt_st_index_find(const rt_st_index *ix, const char *name);
void rt_st_index_free(rt_st_index *ix);
#endif
