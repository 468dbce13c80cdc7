/* fuzz_tokenizer_json.c — libFuzzer target: arbitrary bytes as a tokenizer.json.
 *
 * Why: tokenizer.json files come from the internet; the loader must reject anything malformed with a
 * status (never crash, leak or read out of bounds), and whatever it accepts must encode and decode
 * without memory errors. Each input is loaded, then a fixed set of texts (ASCII, added-token look-
 * alikes, ▁, multi-byte UTF-8, whitespace runs) is encoded with and without special tokens and the
 * ids are decoded back; a run of raw ids is decoded too.
 * Run: make build-fuzz/fuzz_tokenizer_json && ./build-fuzz/fuzz_tokenizer_json -close_fd_mask=2 \
 *      -max_total_time=60 tests/fuzz/corpus/tokenizer_json
 */
#include "tokenizer.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const texts[] = {
    "", "Hello world", "  a  \n\n b\t", "<s>hi</s> <|endoftext|> <unk>", "na\xC3\xAFve caf\xC3\xA9 \xE2\x98\x83 \xE6\x97\xA5\xE6\x9C\xAC",
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD x", "'s 're 12345 ABC", "\xE2\x96\x81x\xE2\x96\x81\xE2\x96\x81y", "<0x41><0xZZ>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rt_tokenizer *t = NULL;
    if (rt_tokenizer_from_json_text((const char *)data, size, "fuzz", &t) != HS_OK) return 0;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int sp = 0; sp < 2; sp++) {
            int *ids = NULL, n = 0;
            if (rt_tokenizer_encode(t, texts[i], strlen(texts[i]), sp, &ids, &n) != HS_OK) continue;
            char *out = NULL;
            size_t len;
            if (rt_tokenizer_decode(t, ids, n, &out, &len) == HS_OK) free(out);
            for (int k = 0; k < n; k++) (void)rt_tokenizer_piece(t, ids[k]);
            free(ids);
        }
    }
    int v = rt_tokenizer_vocab_size(t), raw[64], n = 0;
    for (int id = 0; id < v && n < 64; id++) raw[n++] = id;
    char *out = NULL;
    size_t len;
    if (rt_tokenizer_decode(t, raw, n, &out, &len) == HS_OK) free(out);
    (void)rt_tokenizer_bos_id(t);
    (void)rt_tokenizer_eos_id(t);
    rt_tokenizer_free(t);
    return 0;
}
