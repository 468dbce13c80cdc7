/* fuzz_safetensors.c — libFuzzer target for the safetensors header parser (rt_st_parse).
 *
 * Every tensor the parser accepts must lie inside the input: touching its first and last byte makes
 * ASan report any range the validation let through. The parse must also leave nothing behind on
 * failure (LSan). Seeds: tests/fuzz/corpus/safetensors/ (tests/fuzz/make_corpus.py).
 *   make build-fuzz/fuzz_safetensors && build-fuzz/fuzz_safetensors -close_fd_mask=2 tests/fuzz/corpus/safetensors
 */
#include "safetensors.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rt_st_file f;
    if (rt_st_parse(data, size, "fuzz", &f) != HS_OK) {
        HS_ASSERT(f.tensors == NULL && f.n_tensors == 0);
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < f.n_tensors; i++) {
        const rt_st_tensor *t = &f.tensors[i];
        HS_ASSERT(rt_st_find(&f, t->name) == t);
        HS_ASSERT(t->begin <= t->end && t->end <= f.data_len);
        HS_ASSERT(t->end - t->begin == t->n_elem * rt_st_dtype_size(t->dtype));
        if (t->end > t->begin) sink ^= t->data[0] ^ t->data[t->end - t->begin - 1];
    }
    (void)sink;
    rt_st_close(&f);
    return 0;
}
