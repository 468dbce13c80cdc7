/* fuzz_config.c — libFuzzer target for config.json parsing (rt_hf_config_parse) and the sharded
 * checkpoint index (rt_st_index_parse), both JSON read from untrusted files.
 *
 * An accepted config must satisfy the invariants the loader and forward pass rely on (positive
 * dims, heads divisible by kv heads, widths that fit an int); an accepted index must name only
 * plain shard files. Seeds: tests/fuzz/corpus/config/ (fixture configs, variants, an index).
 *   make build-fuzz/fuzz_config && build-fuzz/fuzz_config -close_fd_mask=2 tests/fuzz/corpus/config
 */
#include "model.h"
#include "safetensors.h"
#include <limits.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rt_config c;
    if (rt_hf_config_parse((const char *)data, size, "fuzz/config.json", &c) == HS_OK) {
        HS_ASSERT(c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.d_model > 0 && c.d_head > 0 &&
                  c.d_mlp > 0 && c.vocab_size > 0 && c.n_ctx > 0);
        HS_ASSERT(c.n_heads % c.n_kv_heads == 0);
        HS_ASSERT((int64_t)c.n_heads * c.d_head <= INT_MAX);
        HS_ASSERT(c.bos_id >= -1 && c.bos_id < c.vocab_size && c.eos_id >= -1 && c.eos_id < c.vocab_size);
        HS_ASSERT(c.sliding_window >= 0 && c.norm_eps > 0);
        HS_ASSERT(memchr(c.model_type, 0, sizeof c.model_type) != NULL);
    }
    rt_st_index ix;
    if (rt_st_index_parse((const char *)data, size, "fuzz/model.safetensors.index.json", &ix) == HS_OK) {
        for (int i = 0; i < ix.n_shards; i++)
            HS_ASSERT(ix.shards[i][0] && !strchr(ix.shards[i], '/') && !strstr(ix.shards[i], ".."));
        for (int i = 0; i < ix.n_names; i++) HS_ASSERT(rt_st_index_find(&ix, ix.names[i]) == ix.shard_of[i]);
        rt_st_index_free(&ix);
    }
    return 0;
}
