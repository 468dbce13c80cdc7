/* relations.h — relation datasets for MAPS: loading relation files and resolving their pairs to
 * single tokens of a model's vocabulary.
 *
 * A relation file (datasets/relations/README.md) is JSON, either
 *   - a list of [source, target] string pairs (MAPS's own format), or
 *   - an object {"pairs": [...], "k": N, "template": "... {} ...", "leading_space": true,
 *     "description": "..."} with every member but "pairs" optional, or
 *   - a generated relation {"generate": "vocab_words", "max_pairs": 500, ...}: copying pairs (w, w)
 *     made from the model's own single-token words, so copying works on any vocabulary.
 * The relation's name is the file's stem ("country_capital.json" -> "country_capital").
 *
 * Resolution follows MAPS: a space is prepended to both sides (leading_space, default true), the
 * text is tokenized without special tokens, and a pair is kept only when both sides are exactly
 * one token. Tokenizers that add their own dummy-prefix space (SentencePiece, llama2.c) are handled:
 * see ds_encode_spaced.
 */
#ifndef HS_DS_RELATIONS_H
#define HS_DS_RELATIONS_H
#include "runtime/tokenizer.h"

#define DS_REL_MAX_PAIRS 100000   /* pairs per file (a parser limit, far above any real relation) */
#define DS_REL_MAX_TEXT 256       /* bytes per source/target string */

typedef struct {
    char *name;            /* file stem, owned */
    char *path;            /* file it came from, owned */
    int k;                 /* "k" from the file; 0 = not given (ds_relation_default_k) */
    char *template_text;   /* "template" from the file, owned; NULL = ds_relation_default_template */
    bool leading_space;    /* prepend a space to both sides before tokenizing (default true) */
    bool generated;        /* "generate": "vocab_words" — pairs come from the vocabulary */
    int max_pairs;         /* generated relations: at most this many pairs (default 500) */
    int n;                 /* listed pairs (0 for generated relations) */
    char **src, **tgt;     /* (n) NUL-terminated UTF-8 strings, owned */
} ds_relation;

/* Load a relation file, or every *.json file of a directory (in name order), appending to the
 * caller's array (*rels, *n; start from NULL, 0). Every entry is checked: on the first bad file or
 * entry, one line is logged — "analyze: <what> (<file>, entry <i>) — <how to fix>" — HS_EBADINPUT
 * (HS_EIO for an unreadable path) is returned and *rels / *n keep what earlier calls loaded.
 * A relation name that is already in the array is an error. Free with ds_relations_free. */
hs_status ds_relations_load(const char *path, ds_relation **rels, int *n);
void ds_relations_free(ds_relation *rels, int n);

/* MAPS's k: 1 when the name contains "copying", else 10. */
int ds_relation_default_k(const char *name);
/* The --validate prompt template for a relation name ("{}" stands for the source token): a
 * template written for each shipped relation (README.md lists them), else "This is a document
 * about {}" (one of MAPS's generic templates). Borrowed static string. */
const char *ds_relation_default_template(const char *name);

/* Ids for `text` as it reads after other text: byte-level tokenizers encode it as is; tokenizers
 * that prepend a dummy-prefix space themselves (SentencePiece Metaspace, llama2.c) encode it
 * without its leading space when that yields a first piece that carries the space.
 * *ids heap (free()), *n its length. Errors as rt_tokenizer_encode (invalid UTF-8). */
hs_status ds_encode_spaced(const rt_tokenizer *tok, const char *text, int **ids, int *n);
/* The single token that `word` (with a space before it when leading_space) is, or -1 when it
 * takes more (or fewer) than one token. */
int ds_single_token(const rt_tokenizer *tok, const char *word, bool leading_space);

/* A relation resolved against one tokenizer. */
typedef struct {
    int n;                  /* pairs kept */
    int *src, *tgt;         /* (n) token ids */
    int n_listed;           /* pairs in the file (or candidates for a generated relation) */
    int n_multi_token;      /* dropped: a side is not a single token */
    int n_duplicate;        /* dropped: the same (src, tgt) ids as an earlier pair */
    char *template_text;    /* the template used for prompts, owned */
    int k;                  /* the file's k or the MAPS default */
    /* prompts (only when asked): prefix + [src] + suffix, BOS as the tokenizer adds it */
    int **prompt;           /* (n) heap arrays */
    int *prompt_len;        /* (n) */
    int *src_pos;           /* (n) index of the source token in its prompt */
} ds_pairs;

/* Resolve r against tok into *out (zeroed first). Generated relations take the first max_pairs
 * words of the vocabulary in id order (BPE ids follow merge order, roughly frequency) — ASCII
 * letters only, at least two, that round-trip through ds_single_token. With want_prompts, builds
 * one --validate prompt per kept pair from the template. Returns HS_EBADINPUT (one line naming the
 * file) when the template cannot be encoded; *out is then empty. Free with ds_pairs_free. */
hs_status ds_relation_resolve(const ds_relation *r, const rt_tokenizer *tok, bool want_prompts, ds_pairs *out);
void ds_pairs_free(ds_pairs *p);
#endif
