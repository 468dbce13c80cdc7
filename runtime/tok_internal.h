/* tok_internal.h — private types shared by tokenizer.c and tok_*.c (not a public API).
 *
 * Why: the tokenizer is split by job (model, normalizers + pre-tokenizers, decoders, llama2.c)
 * and those files need a common vocabulary of buffers, hash tables and pipeline descriptions.
 * Constraints: every structure here is built once by a loader and then only read by encode/decode,
 * so a loaded rt_tokenizer can be shared by threads; per-call state lives in tok_scratch.
 */
#ifndef HS_TOK_INTERNAL_H
#define HS_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <cjson/cJSON.h>
#include <string.h>
#include "tokenizer.h"
#include "arena.h"

/* ------------------------------------------------------------------ growable buffers */
typedef struct { char *p; size_t n, cap; } tok_buf;     /* bytes, not NUL-terminated */
typedef struct { int *p; size_t n, cap; } tok_ivec;

static inline void tok_buf_reserve(tok_buf *b, size_t extra) {
    size_t need;
    HS_ASSERT(hs_add_ok(b->n, extra, &need));
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) { HS_ASSERT(cap <= SIZE_MAX / 2); cap *= 2; }
    b->p = hs_xrealloc(b->p, cap);
    b->cap = cap;
}
static inline void tok_buf_put(tok_buf *b, const void *s, size_t n) {
    if (!n) return;
    tok_buf_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void tok_buf_putc(tok_buf *b, char c) { tok_buf_reserve(b, 1); b->p[b->n++] = c; }
static inline void tok_ivec_push(tok_ivec *v, int x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        HS_ASSERT(cap <= SIZE_MAX / sizeof(int));
        v->p = hs_xrealloc(v->p, cap * sizeof(int));
        v->cap = cap;
    }
    v->p[v->n++] = x;
}

/* ------------------------------------------------------------------ UTF-8 helpers (input already validated) */
static inline uint32_t tok_utf8_decode(const unsigned char *s, int *len) {
    unsigned c = s[0];
    if (c < 0x80) { *len = 1; return c; }
    if ((c >> 5) == 0x6) { *len = 2; return ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); }
    if ((c >> 4) == 0xE) { *len = 3; return ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); }
    *len = 4;
    return ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
}
static inline int tok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}
/* Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s test). */
static inline bool tok_is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}
/* Rust String::from_utf8_lossy: one U+FFFD per maximal invalid subpart, appended to out. */
void tok_utf8_lossy_append(tok_buf *out, const char *s, size_t n);

/* ------------------------------------------------------------------ errors */
/* Log "tokenizer: <what> (<where>) — <fix>" once and return st. */
hs_status tok_err(hs_status st, const char *where, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ hash tables (tok_bpe.c) */
typedef struct { const char *key; uint32_t len; uint32_t hash; int32_t val; } tok_sslot;
typedef struct { tok_sslot *slots; size_t cap, n; } tok_strmap;   /* keys borrowed, must outlive the map */
void tok_strmap_init(tok_strmap *m, size_t expect);
void tok_strmap_free(tok_strmap *m);
int tok_strmap_get(const tok_strmap *m, const char *k, size_t len);   /* -1 when absent */
/* Insert k -> val. When k is already present the map is unchanged and the old value returned;
 * otherwise returns -1. */
int tok_strmap_put(tok_strmap *m, const char *k, size_t len, int val);

typedef struct { uint64_t key; int32_t rank, id; } tok_pslot;
typedef struct { tok_pslot *slots; size_t cap, n; } tok_pairmap;  /* (left id, right id) -> (rank, merged id) */
void tok_pairmap_init(tok_pairmap *m, size_t expect);
void tok_pairmap_free(tok_pairmap *m);
void tok_pairmap_set(tok_pairmap *m, int a, int b, int rank, int id);   /* overwrites, like HF's HashMap */
const tok_pslot *tok_pairmap_get(const tok_pairmap *m, int a, int b);

/* ------------------------------------------------------------------ per-call scratch */
typedef struct { size_t off, len, zw; bool at_origin; } tok_piece;
/* One pre-tokenization stage: pieces are ranges of text. zw = bytes at the start of the piece that
 * were inserted (prepended) and so map to the piece's original start; at_origin = the piece starts
 * at byte 0 of the caller's text (what HF's Metaspace prepend_scheme "first" tests). */
typedef struct { tok_buf text; tok_piece *p; size_t n, cap; } tok_stage;
typedef struct { size_t s, e; bool m; } tok_span;                  /* [s,e), m = is a match */
typedef struct { int32_t c, prev, next; uint32_t len; } tok_sym;    /* BPE symbol (HF word.rs) */
typedef struct { uint32_t rank, pos; int32_t id; } tok_merge;       /* BPE heap entry */

typedef struct {
    pcre2_match_data *md;
    tok_stage st[2];
    tok_buf norm[2];
    tok_span *sp; size_t nsp, capsp;
    tok_span *sp2; size_t nsp2, capsp2;
    tok_sym *sym; size_t capsym;
    tok_merge *heap; size_t nheap, capheap;
    tok_buf word;
} tok_scratch;
void tok_scratch_init(tok_scratch *sc);
void tok_scratch_free(tok_scratch *sc);
void tok_stage_push(tok_stage *st, size_t off, size_t len, size_t zw, bool at_origin);

/* ------------------------------------------------------------------ regex (tok_pretok.c) */
typedef struct { pcre2_code *code; } tok_regex;
/* Compile an Oniguruma-style pattern (as HF writes them) or a literal string. */
hs_status tok_regex_compile(tok_regex *re, const char *pat, size_t len, bool literal, const char *where);
void tok_regex_free(tok_regex *re);
/* All matches of re in s[0..n) as HF's Pattern::find_matches reports them (onig find_iter rules for
 * empty matches): a list of spans covering s, m = match. Result in sc->sp / sc->nsp. */
hs_status tok_regex_spans(const tok_regex *re, const char *s, size_t n, tok_scratch *sc, const char *where);

/* ------------------------------------------------------------------ normalizers + pre-tokenizers */
enum { TN_PREPEND, TN_REPLACE, TN_NFC, TN_NFD, TN_NFKC, TN_NFKD, TN_LOWERCASE, TN_STRIP, TN_BYTELEVEL };
typedef struct {
    int kind;
    char *str; size_t str_len;          /* Prepend text / Replace content */
    char *pat; size_t pat_len;          /* Replace literal pattern */
    bool is_regex; tok_regex re;        /* Replace regex pattern */
    bool left, right;                   /* Strip */
} tok_norm;

enum { TP_BYTELEVEL, TP_SPLIT, TP_METASPACE };
enum { TB_REMOVED, TB_ISOLATED, TB_MERGED_PREV, TB_MERGED_NEXT, TB_CONTIGUOUS };
enum { TPS_ALWAYS, TPS_FIRST, TPS_NEVER };
typedef struct {
    int kind;
    bool add_prefix_space, use_regex;   /* ByteLevel */
    tok_regex re; int behavior; bool invert;   /* Split (ByteLevel with use_regex borrows the GPT-2 regex) */
    uint32_t rep; char rep_s[4]; int rep_len; int prepend; bool split;   /* Metaspace */
} tok_pretok;

/* Parse `normalizer` / `pre_tokenizer` JSON (NULL or JSON null = none) into flat lists
 * (Sequence is flattened). On error one line is logged. Lists freed with tok_norms_free / tok_pretoks_free. */
hs_status tok_norms_parse(const cJSON *j, const char *where, tok_norm **out, int *n);
void tok_norms_free(tok_norm *v, int n);
hs_status tok_pretoks_parse(const cJSON *j, const char *where, tok_regex *gpt2, tok_pretok **out, int *n);
void tok_pretoks_free(tok_pretok *v, int n);
/* Metaspace fields shared by the pre-tokenizer and the decoder (replacement, prepend_scheme with the
 * legacy add_prefix_space spelling, split). */
hs_status tok_metaspace_parse(const cJSON *j, const char *where, uint32_t *rep, int *prepend, bool *split);
/* Run the normalizers on s[0..n); result in out (cleared first). *at_origin / *zw follow the
 * first byte, as HF's alignments would. HS_EUNSUPPORTED when a partially implemented normalizer
 * (NFC, Lowercase, ...) meets text it cannot handle exactly. */
hs_status tok_normalize(const tok_norm *v, int nv, const char *s, size_t n, tok_scratch *sc, tok_buf *out,
                        bool *at_origin, size_t *zw, const char *where);
/* Run the pre-tokenizers on one piece. Result pieces are in sc->st[*which]. */
hs_status tok_pretokenize(const tok_pretok *v, int nv, const char *s, size_t n, bool at_origin, size_t zw,
                          tok_scratch *sc, int *which, const char *where);
/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes (0x00-0x20,
 * 0x7F-0xA0, 0xAD) to U+0100.. in byte order. tok_char_byte is the inverse (-1: not a table char). */
static inline uint32_t tok_byte_char(unsigned b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 256 + b;
    if (b <= 0xA0) return 256 + 33 + (b - 0x7F);
    return 256 + 67;   /* 0xAD */
}
static inline int tok_char_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 256 || cp > 256 + 67) return -1;
    uint32_t k = cp - 256;
    return k <= 32 ? (int)k : k <= 66 ? (int)(0x7F + k - 33) : 0xAD;
}

/* ------------------------------------------------------------------ BPE model (tok_bpe.c) */
typedef struct {
    tok_strmap vocab;            /* token -> id (model vocabulary only, as HF's BPE.vocab) */
    const char **id_str;         /* (n_ids) id -> token, NULL in gaps */
    uint32_t *id_len;            /* (n_ids) */
    int n_ids;                   /* max model id + 1 */
    int n_tokens;                /* number of vocab entries */
    tok_pairmap merges;
    char *unk; size_t unk_len;   /* unk_token or NULL */
    char *prefix; size_t prefix_len;   /* continuing_subword_prefix */
    char *suffix; size_t suffix_len;   /* end_of_word_suffix */
    bool fuse_unk, byte_fallback, ignore_merges;
    int byte_id[256];            /* id of "<0xXX>" in vocab, -1 if absent */
} tok_bpe;
hs_status tok_bpe_parse(tok_bpe *m, const cJSON *model, hs_arena *ar, const char *where);
void tok_bpe_free(tok_bpe *m);
/* Tokenize one pre-token (HF BPE::tokenize), appending ids to out. Errors only when unk_token is
 * needed but absent from the vocabulary. */
hs_status tok_bpe_word(const tok_bpe *m, const char *w, size_t n, tok_scratch *sc, tok_ivec *out, const char *where);

/* ------------------------------------------------------------------ decoders (tok_decode.c) */
enum { TD_BYTELEVEL, TD_METASPACE, TD_BYTEFALLBACK, TD_FUSE, TD_REPLACE, TD_STRIP };
typedef struct {
    int kind;
    uint32_t rep; int prepend;                 /* Metaspace */
    char *pat; size_t pat_len; bool is_regex; tok_regex re; char *content; size_t content_len;   /* Replace */
    uint32_t strip_c; size_t start, stop;      /* Strip */
} tok_dec;
hs_status tok_decs_parse(const cJSON *j, const char *where, tok_dec **out, int *n, bool *present);
void tok_decs_free(tok_dec *v, int n);
/* Decode token strings (tok[i], len[i]) through the decoder chain into out (HF Decoder::decode). */
hs_status tok_decode_chain(const tok_dec *v, int nv, bool present, const char *const *tok, const uint32_t *len,
                           size_t n, tok_buf *out, const char *where);

/* ------------------------------------------------------------------ llama2.c (tok_llama2c.c) */
typedef struct tok_l2c tok_l2c;
hs_status tok_l2c_load(const char *path, int vocab_size, tok_l2c **out);
void tok_l2c_free(tok_l2c *t);
hs_status tok_l2c_encode(const tok_l2c *t, const char *text, size_t len, bool bos, tok_ivec *out, const char *where);
hs_status tok_l2c_decode(const tok_l2c *t, const int *ids, int n, tok_buf *out);
const char *tok_l2c_piece(const tok_l2c *t, int id);
int tok_l2c_vocab_size(const tok_l2c *t);

/* ------------------------------------------------------------------ JSON member helpers (tokenizer.c) */
/* Optional member: absent or null -> *out = def. Wrong type -> logged error. */
hs_status tok_json_bool(const cJSON *o, const char *key, bool def, bool *out, const char *where);
/* Optional string member (absent/null -> NULL); the result is borrowed from the cJSON tree. */
hs_status tok_json_str(const cJSON *o, const char *key, const char **out, const char *where);
/* A member that must be a string holding exactly one Unicode scalar (serde `char`). */
hs_status tok_json_char(const cJSON *o, const char *key, uint32_t def, uint32_t *out, const char *where);
/* Optional non-negative integer member that fits in size_t. */
hs_status tok_json_size(const cJSON *o, const char *key, size_t def, size_t *out, const char *where);
/* A JSON number that is an integer in [0, max]. */
bool tok_json_is_index(const cJSON *v, double max);
#endif
