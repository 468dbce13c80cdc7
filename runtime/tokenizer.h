/* tokenizer.h — text <-> token ids, bit-exact with Hugging Face `tokenizers` and llama2.c.
 *
 * Supported:
 *   - tokenizer.json with a BPE model:
 *       * byte-level (GPT-2 / Llama-3 / Qwen2 pre-tokenizer regexes through PCRE2, ByteLevel mapping),
 *       * SentencePiece style (Metaspace pre-tokenizer or Prepend/Replace normalizer, byte_fallback, fuse_unk),
 *       * added_tokens (split out of the text before the model runs), ignore_merges,
 *       * post_processor TemplateProcessing (BOS insertion) and ByteLevel,
 *       * decoders ByteLevel, Metaspace, ByteFallback, Fuse, Replace, Strip, Sequence;
 *   - llama2.c tokenizer.bin (score-ordered merges, encoded exactly as run.c's encode()).
 */
#ifndef HS_TOKENIZER_H
#define HS_TOKENIZER_H
#include "common.h"

typedef struct rt_tokenizer rt_tokenizer;   /* opaque */

/* Load a tokenizer.json file. On error logs one line ("tokenizer: ... (PATH) — how to fix") and
 * returns non-OK with *out = NULL. Free with rt_tokenizer_free. */
hs_status rt_tokenizer_load_json(const char *path, rt_tokenizer **out);
/* Same, from JSON text in memory (len bytes, need not be NUL-terminated); `where` names it in errors. */
hs_status rt_tokenizer_from_json_text(const char *text, size_t len, const char *where, rt_tokenizer **out);
/* Load a llama2.c tokenizer.bin for a vocabulary of vocab_size pieces. */
hs_status rt_tokenizer_load_llama2c(const char *path, int vocab_size, rt_tokenizer **out);
void rt_tokenizer_free(rt_tokenizer *t);

/* Encode UTF-8 text. add_special: apply the post-processor (e.g. prepend BOS) as HF's
 * encode(add_special_tokens=True) does; for llama2.c, prepend BOS (id 1) as run.c does with bos=1.
 * Returns HS_EBADINPUT (one logged line with the byte offset) for invalid UTF-8.
 * *ids is heap-allocated (caller frees with free()), *n_ids its length. */
hs_status rt_tokenizer_encode(const rt_tokenizer *t, const char *text, size_t len, bool add_special,
                              int **ids, int *n_ids);
/* Decode ids to text as HF's decode(ids, skip_special_tokens=false) does (llama2.c: as run.c prints
 * the pieces, with the leading space after BOS stripped). Out-of-range ids return HS_EBADINPUT.
 * *text is heap-allocated and NUL-terminated (caller frees with free()). */
hs_status rt_tokenizer_decode(const rt_tokenizer *t, const int *ids, int n_ids, char **text, size_t *len);
/* The raw piece of one id for display (e.g. "Ġthe", "▁the", "<0x0A>"); NULL when out of range.
 * Borrowed: valid while the tokenizer lives. */
const char *rt_tokenizer_piece(const rt_tokenizer *t, int id);
int rt_tokenizer_vocab_size(const rt_tokenizer *t);
int rt_tokenizer_bos_id(const rt_tokenizer *t);   /* -1 if none */
int rt_tokenizer_eos_id(const rt_tokenizer *t);   /* -1 if none */
#endif
