/* safetensors_write.h — write a .safetensors file (F32 tensors) and other generated files atomically.
 *
 * Why: generators in datasets/ (the planted-circuit model, later fixtures) emit checkpoints that
 * Hugging Face transformers and our own loader (runtime/safetensors.c) must both accept. The file
 * is written to a temporary name in the same folder and renamed, so a failed or interrupted run
 * never leaves half a file under the final name.
 * Format written: 8-byte little-endian header length N, N bytes of JSON padded with spaces to a
 * multiple of 8 (so every F32 tensor lands 4-byte aligned and is used in place by the loader),
 * "__metadata__": {"format": "pt"} first, tensors in the order given, data packed back to back.
 */
#ifndef HS_DS_SAFETENSORS_WRITE_H
#define HS_DS_SAFETENSORS_WRITE_H
#include "runtime/common.h"

typedef struct {
    const char *name;       /* e.g. "transformer.h.0.attn.c_attn.weight"; borrowed */
    int ndim;               /* 1 or 2 */
    int64_t shape[2];       /* row-major shape; shape[1] ignored when ndim == 1 */
    const float *data;      /* (shape[0] * shape[1]) floats, borrowed */
} ds_st_tensor;

/* Write tensors[0..n) as F32 to PATH (via PATH.tmp.XXXXXX + rename). `module` prefixes the one
 * error line. Returns HS_OK, or HS_EIO (cannot create/write/rename: the temporary file is removed
 * and PATH is left as it was). Programmer errors (bad ndim, negative shape) abort. */
hs_status ds_safetensors_write(const char *path, const ds_st_tensor *tensors, int n, const char *module);

/* Write len bytes to PATH atomically (temporary file in the same folder + rename). Errors as above. */
hs_status ds_file_write_atomic(const char *path, const void *data, size_t len, const char *module);
#endif
