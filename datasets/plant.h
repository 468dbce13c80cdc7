/* plant.h — the planted-circuit model: a Hugging Face gpt2 folder whose weights are built by hand
 * so that known heads implement known circuits (docs/planted.md has the construction).
 *
 * Why: a head detector, a sink analysis or a circuit finder can only be tested against a model
 * whose answer is known. This one is written from a seed in well under a second, needs no
 * download, loads in headscope and in transformers, and is the default model of `make demo`.
 *
 * Heads (layer.head, 0-indexed), recorded in planted.json:
 *   0.1 previous-token    attends i -> i-1, writes the attended token into the PREV channel
 *   1.2 induction         query = current token, key = PREV channel (K-composition with 0.1),
 *                         copies the attended token into the unembedding direction
 *   1.0 BOS sink          attends to position 0 from every query
 *   1.3 copying           uniform attention over the prefix, OV = identity on token embeddings
 *   0.0 0.2 0.3 1.1       fillers: small seeded random weights, no planted structure
 * Deterministic: the same seed gives byte-identical files (on one platform: position codes use
 * libm cos/sin); the seed changes the token codes and every random (filler, MLP) weight.
 */
#ifndef HS_DS_PLANT_H
#define HS_DS_PLANT_H
#include "runtime/common.h"

/* Shape of the planted model (also written to config.json). */
#define DS_PLANT_LAYERS 2
#define DS_PLANT_HEADS 4
#define DS_PLANT_D 256          /* d_model */
#define DS_PLANT_HD 64          /* d_head = D / H */
#define DS_PLANT_CTX 256        /* n_positions */
#define DS_PLANT_MERGES 16      /* GPT-2's first 16 merges, same ids (256..271) */
#define DS_PLANT_BOS 272        /* <|endoftext|>: BOS (prepended by the post-processor) and EOS */
#define DS_PLANT_VOCAB 273      /* 256 byte tokens + 16 merges + <|endoftext|> */
#define DS_PLANT_MAX_SEED ((uint64_t)1 << 53)   /* seeds are < 2^53 so planted.json records them exactly */

/* Write the planted model into DIR (created if missing, parents too; existing files of the same
 * names are replaced): config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
 * planted.json. Each file is written to a temporary name and renamed, so none is ever half-written.
 * seed must be < DS_PLANT_MAX_SEED. Returns HS_OK; HS_EBADINPUT for a seed out of range; HS_EIO
 * when DIR cannot be created or written (one line logged; files already renamed stay). */
hs_status ds_plant_write(const char *dir, uint64_t seed);

/* The tokenizer.json text of the planted model: byte-level BPE (GPT-2 pre-tokenizer regex and
 * byte order, the first DS_PLANT_MERGES merges of GPT-2) plus <|endoftext|> as an added special
 * token that a TemplateProcessing post-processor prepends. Heap string, caller frees with free(). */
char *ds_plant_tokenizer_json(void);
#endif
