/* plant_tokenizer.c — the planted model's tokenizer.json, generated rather than shipped.
 *
 * A genuine GPT-2 byte-level BPE, cut down: the 256 byte tokens in GPT-2's id order (so ids
 * 0..255 are GPT-2's ids), GPT-2's first DS_PLANT_MERGES merges with their GPT-2 ids, and
 * <|endoftext|> (id DS_PLANT_BOS) as an added special token. Every byte sequence is encodable.
 * The post-processor is Sequence[ByteLevel, TemplateProcessing "<|endoftext|> $A"]: encoding with
 * special tokens prepends BOS, because attention-sink analyses want a BOS at position 0 (the same
 * layout Llama-3's tokenizer.json uses). GPT-2's own tokenizer does not prepend anything.
 */
#include "plant.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's first merges, in rank order; merge k creates token 256 + k. */
static const char *const k_merges[DS_PLANT_MERGES][2] = {
    {"Ġ", "t"}, {"Ġ", "a"}, {"h", "e"}, {"i", "n"}, {"r", "e"}, {"o", "n"}, {"Ġt", "he"}, {"e", "r"},
    {"Ġ", "s"}, {"a", "t"}, {"Ġ", "w"}, {"Ġ", "o"}, {"e", "n"}, {"Ġ", "c"}, {"i", "t"}, {"i", "s"},
};

static bool printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

/* GPT-2 bytes_to_unicode(): the printable bytes map to themselves and come first in id order
 * ('!'..'~', '¡'..'¬', '®'..'ÿ'); the other 68 bytes map to U+0100.. in byte order.
 * id_cp[id] = the code point that stands for token id's byte. */
static void byte_order(int id_cp[256]) {
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++) if (printable(b)) id_cp[n++] = b;
    for (int b = 0; b < 256; b++) if (!printable(b)) id_cp[n++] = 256 + extra++;
    HS_ASSERT(n == 256 && extra == 68);
}

static void utf8(int cp, char out[4]) {   /* cp < 0x800 here */
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

static cJSON *byte_level(bool trim_offsets) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", false);
    cJSON_AddBoolToObject(o, "trim_offsets", trim_offsets);
    cJSON_AddBoolToObject(o, "use_regex", true);
    return o;
}

static cJSON *tmpl_piece(const char *kind, const char *id, int type_id) {
    cJSON *o = cJSON_CreateObject(), *in = cJSON_AddObjectToObject(o, kind);
    cJSON_AddStringToObject(in, "id", id);
    cJSON_AddNumberToObject(in, "type_id", type_id);
    return o;
}

char *ds_plant_tokenizer_json(void) {
    static const char *eot = "<|endoftext|>";
    int id_cp[256];
    byte_order(id_cp);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");

    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens"), *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", DS_PLANT_BOS);
    cJSON_AddStringToObject(a, "content", eot);
    cJSON_AddBoolToObject(a, "single_word", false);
    cJSON_AddBoolToObject(a, "lstrip", false);
    cJSON_AddBoolToObject(a, "rstrip", false);
    cJSON_AddBoolToObject(a, "normalized", true);
    cJSON_AddBoolToObject(a, "special", true);
    cJSON_AddItemToArray(added, a);

    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", byte_level(true));

    cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
    cJSON_AddStringToObject(post, "type", "Sequence");
    cJSON *procs = cJSON_AddArrayToObject(post, "processors");
    cJSON_AddItemToArray(procs, byte_level(false));
    cJSON *tp = cJSON_CreateObject();
    cJSON_AddStringToObject(tp, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(tp, "single"), *pair = cJSON_AddArrayToObject(tp, "pair");
    cJSON_AddItemToArray(single, tmpl_piece("SpecialToken", eot, 0));
    cJSON_AddItemToArray(single, tmpl_piece("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, tmpl_piece("SpecialToken", eot, 0));
    cJSON_AddItemToArray(pair, tmpl_piece("Sequence", "A", 0));
    cJSON_AddItemToArray(pair, tmpl_piece("SpecialToken", eot, 1));
    cJSON_AddItemToArray(pair, tmpl_piece("Sequence", "B", 1));
    cJSON *sp = cJSON_AddObjectToObject(tp, "special_tokens"), *spe = cJSON_AddObjectToObject(sp, eot);
    cJSON_AddStringToObject(spe, "id", eot);
    cJSON *ids = cJSON_AddArrayToObject(spe, "ids"), *toks = cJSON_AddArrayToObject(spe, "tokens");
    cJSON_AddItemToArray(ids, cJSON_CreateNumber(DS_PLANT_BOS));
    cJSON_AddItemToArray(toks, cJSON_CreateString(eot));
    cJSON_AddItemToArray(procs, tp);

    cJSON_AddItemToObject(root, "decoder", byte_level(true));

    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddBoolToObject(model, "fuse_unk", false);
    cJSON_AddBoolToObject(model, "byte_fallback", false);
    cJSON_AddBoolToObject(model, "ignore_merges", false);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char piece[64];
    for (int id = 0; id < 256; id++) {
        utf8(id_cp[id], piece);
        cJSON_AddNumberToObject(vocab, piece, id);
    }
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int k = 0; k < DS_PLANT_MERGES; k++) {
        snprintf(piece, sizeof piece, "%s%s", k_merges[k][0], k_merges[k][1]);
        cJSON_AddNumberToObject(vocab, piece, 256 + k);
        snprintf(piece, sizeof piece, "%s %s", k_merges[k][0], k_merges[k][1]);
        cJSON_AddItemToArray(merges, cJSON_CreateString(piece));
    }
    cJSON_AddNumberToObject(vocab, eot, DS_PLANT_BOS);

    char *text = cJSON_Print(root);
    HS_ASSERT(text);
    cJSON_Delete(root);
    /* cJSON allocates with malloc unless hooks are installed (the project installs none), so the
     * caller's free() matches; copy anyway to keep the contract independent of cJSON's hooks */
    char *out = hs_xstrdup(text);
    cJSON_free(text);
    return out;
}
