/* tokenizer.c — public tokenizer API: load tokenizer.json / tokenizer.bin, encode, decode.
 *
 * Why: every analysis starts from token ids, and they are only comparable with published results
 * when they are exactly the ids Hugging Face `tokenizers` (or llama2.c) would produce. This file
 * holds the HF pipeline order (tokenizer/mod.rs + added_vocabulary.rs): split out non-normalized
 * added tokens, normalize each remaining piece, split out normalized added tokens, pre-tokenize,
 * run BPE per pre-token, then the post-processor. The pieces live in tok_bpe.c (model),
 * tok_pretok.c (normalizers, pre-tokenizers), tok_decode.c (decoders), tok_llama2c.c.
 * Constraints: the loader trusts nothing in the file (types, ids, sizes); a loaded tokenizer is
 * read-only, so encode/decode may run from several threads at once.
 */
#include "tok_internal.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ errors + JSON helpers */
hs_status tok_err(hs_status st, const char *where, const char *fix, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    hs_log_error("tokenizer", "%s (%s) — %s", what, where ? where : "?", fix);
    return st;
}

hs_status tok_json_bool(const cJSON *o, const char *key, bool def, bool *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return HS_OK; }
    if (!cJSON_IsBool(v))
        return tok_err(HS_EBADINPUT, where, "use true or false", "member \"%s\" is not a boolean", key);
    *out = cJSON_IsTrue(v);
    return HS_OK;
}

hs_status tok_json_str(const cJSON *o, const char *key, const char **out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return HS_OK;
    if (!cJSON_IsString(v))
        return tok_err(HS_EBADINPUT, where, "use a string or null", "member \"%s\" is not a string", key);
    *out = v->valuestring;
    return HS_OK;
}

hs_status tok_json_char(const cJSON *o, const char *key, uint32_t def, uint32_t *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return HS_OK; }
    int l = 0;
    if (cJSON_IsString(v) && v->valuestring[0]) *out = tok_utf8_decode((const unsigned char *)v->valuestring, &l);
    if (!l || v->valuestring[l] != '\0')
        return tok_err(HS_EBADINPUT, where, "use a string of exactly one character", "member \"%s\" is not one character", key);
    return HS_OK;
}

bool tok_json_is_index(const cJSON *v, double max) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    return d >= 0.0 && d <= max && d == (double)(int64_t)d;
}

hs_status tok_json_size(const cJSON *o, const char *key, size_t def, size_t *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return HS_OK; }
    if (!tok_json_is_index(v, 4294967295.0))
        return tok_err(HS_EBADINPUT, where, "use a non-negative integer", "member \"%s\" is not a non-negative integer", key);
    *out = (size_t)v->valuedouble;
    return HS_OK;
}

/* ------------------------------------------------------------------ the tokenizer */
typedef struct { const char *s; uint32_t len; int id; bool single_word, lstrip, rstrip; } tok_pat;
typedef struct {                 /* leftmost-longest matcher over added-token contents (HF uses aho-corasick) */
    tok_pat *pats; int n, cap;
    tok_strmap map;              /* content -> index in pats */
    uint32_t *lens; int nlens;   /* distinct pattern lengths, longest first */
    uint8_t first[256];          /* bytes that start some pattern */
    uint8_t pair[8192];          /* bit (b0<<8|b1): some pattern of length >= 2 starts with b0 b1 */
} tok_matcher;

typedef struct { int *ids; int n; int seq; } tok_tmpl_item;   /* seq: 1 = sequence A, 2 = B, 0 = ids */
typedef struct { tok_tmpl_item *items; int n; } tok_tmpl;

struct rt_tokenizer {
    char *where;                 /* file path or caller's name, for error lines */
    tok_l2c *l2c;                /* llama2.c tokenizer.bin, or NULL for tokenizer.json */
    hs_arena ar;                 /* strings owned by the tokenizer */
    tok_bpe bpe;
    tok_norm *norms; int n_norms;
    tok_pretok *pretoks; int n_pretoks;
    tok_regex gpt2;
    tok_dec *decs; int n_decs; bool has_decoder;
    tok_matcher raw, normd;      /* non-normalized / normalized added tokens */
    tok_regex word;              /* \w for single_word added tokens (compiled only when one exists) */
    tok_tmpl *post; int n_post;
    const char **piece; uint32_t *piece_len;   /* (n_ids) added tokens over model vocab; NULL in gaps */
    int n_ids, bos, eos;
};

static void matcher_free(tok_matcher *m) {
    free(m->pats); free(m->lens);
    tok_strmap_free(&m->map);
}

static void matcher_add(tok_matcher *m, const char *s, size_t len, int id, bool sw, bool ls, bool rs) {
    if (!len) return;   /* an empty pattern would match everywhere; HF never builds one from real files */
    if (!m->map.slots) tok_strmap_init(&m->map, 16);
    if (tok_strmap_put(&m->map, s, len, m->n) >= 0) return;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->pats = hs_xrealloc(m->pats, (size_t)m->cap * sizeof *m->pats);
    }
    m->pats[m->n++] = (tok_pat){ s, (uint32_t)len, id, sw, ls, rs };
    m->first[(unsigned char)s[0]] = 1;
    if (len >= 2) {
        unsigned k = ((unsigned char)s[0] << 8) | (unsigned char)s[1];
        m->pair[k >> 3] |= (uint8_t)(1u << (k & 7));
    }
    int i = 0;
    while (i < m->nlens && m->lens[i] > len) i++;
    if (i < m->nlens && m->lens[i] == len) return;
    m->lens = hs_xrealloc(m->lens, (size_t)(m->nlens + 1) * sizeof *m->lens);
    memmove(m->lens + i + 1, m->lens + i, (size_t)(m->nlens - i) * sizeof *m->lens);
    m->lens[i] = (uint32_t)len;
    m->nlens++;
}

/* Longest pattern starting at s[i], or -1. */
static int matcher_at(const tok_matcher *m, const char *s, size_t n, size_t i) {
    if (!m->first[(unsigned char)s[i]]) return -1;
    for (int k = 0; k < m->nlens; k++) {
        size_t L = m->lens[k];
        if (L > n - i) continue;
        if (L >= 2) {
            unsigned b = ((unsigned char)s[i] << 8) | (unsigned char)s[i + 1];
            if (!(m->pair[b >> 3] & (1u << (b & 7)))) continue;
        }
        int idx = tok_strmap_get(&m->map, s + i, L);
        if (idx >= 0) return idx;
    }
    return -1;
}

/* The regex crate's Unicode \w, which HF's single_word test uses (added_vocabulary.rs). */
static const char WORD_CLASS[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";

static bool is_word_char(const tok_regex *word, const char *s, size_t n, size_t at, tok_scratch *sc) {
    unsigned char c = (unsigned char)s[at];
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    size_t l = (size_t)hs_utf8_len(c);
    if (l > n - at) l = n - at;
    return pcre2_match(word->code, (PCRE2_SPTR)(s + at), l, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, sc->md, NULL) > 0;
}

typedef struct { size_t s, e; int id; } tok_seg;   /* id -1: text to tokenize */
typedef struct { tok_seg *v; size_t n, cap; } tok_segs;
static void seg_push(tok_segs *g, size_t s, size_t e, int id) {
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 32;
        g->v = hs_xrealloc(g->v, g->cap * sizeof *g->v);
    }
    g->v[g->n++] = (tok_seg){ s, e, id };
}

/* AddedVocabulary::find_matches: non-overlapping leftmost-longest matches with the single_word,
 * lstrip and rstrip rules; the segments cover s. */
static void matcher_split(const tok_matcher *m, const tok_regex *word, const char *s, size_t n, tok_scratch *sc,
                          tok_segs *out) {
    out->n = 0;
    size_t start_offset = 0;
    for (size_t i = 0; m->n && i < n;) {
        int k = matcher_at(m, s, n, i);
        if (k < 0) { i++; continue; }
        const tok_pat *p = &m->pats[k];
        size_t ms = i, me = i + p->len, start = ms, stop = me;
        i = me;   /* the automaton resumes after the match, even when the match is discarded */
        if (p->single_word) {
            bool before = false, after = false;
            if (ms > 0) {
                size_t q = ms - 1;
                while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                before = is_word_char(word, s, n, q, sc);
            }
            if (me < n) after = is_word_char(word, s, n, me, sc);
            if (before || after) continue;
        }
        if (p->lstrip) {
            size_t q = ms;
            while (q > 0) {
                size_t r = q - 1;
                while (r > 0 && ((unsigned char)s[r] & 0xC0) == 0x80) r--;
                int l;
                if (!tok_is_white_space(tok_utf8_decode((const unsigned char *)s + r, &l))) break;
                q = r;
            }
            start = q > start_offset ? q : start_offset;
        }
        if (p->rstrip)
            while (stop < n) {
                int l;
                if (!tok_is_white_space(tok_utf8_decode((const unsigned char *)s + stop, &l))) break;
                stop += (size_t)l;
            }
        if (start_offset < start) seg_push(out, start_offset, start, -1);
        seg_push(out, start, stop, p->id);
        start_offset = stop;
    }
    if (start_offset < n) seg_push(out, start_offset, n, -1);
}

/* ------------------------------------------------------------------ added_tokens */
typedef struct {
    const char *s; uint32_t len;          /* content */
    const char *ns; uint32_t nlen;        /* content after the normalizer (== content when not normalized) */
    bool special, normalized, single_word, lstrip, rstrip;
} tok_added;

static hs_status parse_added(rt_tokenizer *t, const cJSON *arr, const char *where) {
    if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr))
        return tok_err(HS_EBADINPUT, where, "added_tokens is a list", "added_tokens is not an array");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    tok_added *rec = hs_xcalloc((size_t)n + 1, sizeof *rec);
    int *special = hs_xcalloc((size_t)n + 1, sizeof(int)), *classic = hs_xcalloc((size_t)n + 1, sizeof(int));
    int nrec = 0, nspecial = 0, nclassic = 0, max_added = -1;
    tok_strmap added_map, special_set;
    tok_pairmap by_id, cache;   /* id -> record index (in the rank slot): last token / normalized_cache */
    tok_strmap_init(&added_map, (size_t)n);
    tok_strmap_init(&special_set, (size_t)n);
    tok_pairmap_init(&by_id, (size_t)n);
    tok_pairmap_init(&cache, (size_t)n);
    tok_buf norm = {0};
    tok_scratch sc;
    tok_scratch_init(&sc);
    hs_status st = HS_OK;
    int vocab_len = t->bpe.n_tokens;
    size_t i = 0;
    for (const cJSON *it = n ? arr->child : NULL; it; it = it->next, i++) {
        tok_added a = { 0 };
        const char *content;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsObject(it) || !tok_json_is_index(id, 2147483646.0)) {
            st = tok_err(HS_EBADINPUT, where, "each added token is {\"id\": n, \"content\": \"...\", ...}",
                         "added_tokens[%zu] has no valid id", i);
            goto done;
        }
        if ((st = tok_json_str(it, "content", &content, where))) goto done;
        if (!content) { st = tok_err(HS_EBADINPUT, where, "give every added token a content string", "added_tokens[%zu] has no content", i); goto done; }
        if ((st = tok_json_bool(it, "special", false, &a.special, where)) ||
            (st = tok_json_bool(it, "normalized", !a.special, &a.normalized, where)) ||
            (st = tok_json_bool(it, "single_word", false, &a.single_word, where)) ||
            (st = tok_json_bool(it, "lstrip", false, &a.lstrip, where)) ||
            (st = tok_json_bool(it, "rstrip", false, &a.rstrip, where)))
            goto done;
        a.len = (uint32_t)strlen(content);
        if (!a.len) continue;   /* HF ignores empty added tokens */
        char *c = hs_arena_alloc(&t->ar, a.len + 1);
        memcpy(c, content, a.len + 1);
        a.s = c;
        /* HF assigns ids itself (serialization.rs only warns when the file disagrees): an existing
         * token keeps its id, a new one gets the next id after the model vocabulary. */
        int nid = tok_strmap_get(&added_map, a.s, a.len);
        if (nid >= 0) {
            const tok_pslot *r = tok_pairmap_get(&by_id, nid, 0);
            const tok_added *o = &rec[r->rank];
            if (o->special == a.special && o->normalized == a.normalized && o->single_word == a.single_word &&
                o->lstrip == a.lstrip && o->rstrip == a.rstrip)
                continue;   /* the same AddedToken twice */
        }
        a.ns = a.s; a.nlen = a.len;
        if (a.normalized && t->n_norms) {
            bool origin = true;
            size_t zw = 0;
            if ((st = tok_normalize(t->norms, t->n_norms, a.s, a.len, &sc, &norm, &origin, &zw, where))) goto done;
            char *ns = hs_arena_alloc(&t->ar, norm.n + 1);
            if (norm.n) memcpy(ns, norm.p, norm.n);
            ns[norm.n] = '\0';
            a.ns = ns; a.nlen = (uint32_t)norm.n;
        }
        if (a.special && tok_strmap_put(&special_set, a.s, a.len, 1) < 0) special[nspecial++] = nrec;
        if (nid < 0) nid = tok_strmap_get(&t->bpe.vocab, a.s, a.len);
        if (nid < 0) nid = max_added < 0 ? vocab_len : (max_added >= vocab_len || vocab_len == 0) ? max_added + 1 : vocab_len;
        if (nid > 2147483000) { st = tok_err(HS_EBADINPUT, where, "use fewer added tokens", "added token ids overflow"); goto done; }
        tok_strmap_put(&added_map, a.s, a.len, nid);
        if (nid > max_added) max_added = nid;
        rec[nrec] = a;
        tok_pairmap_set(&by_id, nid, 0, nrec, 0);
        /* HF 0.23 decodes a normalized added token as its normalized form (normalized_cache) */
        if (a.nlen != a.len || memcmp(a.ns, a.s, a.len)) tok_pairmap_set(&cache, nid, 0, nrec, 0);
        if (tok_strmap_get(&special_set, a.s, a.len) < 0) classic[nclassic++] = nrec;
        nrec++;
    }
    /* id table: added tokens override the model's piece for their id */
    t->n_ids = t->bpe.n_ids > max_added + 1 ? t->bpe.n_ids : max_added + 1;
    t->piece = hs_xcalloc((size_t)t->n_ids + 1, sizeof *t->piece);
    t->piece_len = hs_xcalloc((size_t)t->n_ids + 1, sizeof *t->piece_len);
    for (int k = 0; k < t->bpe.n_ids; k++) { t->piece[k] = t->bpe.id_str[k]; t->piece_len[k] = t->bpe.id_len[k]; }
    for (size_t k = 0; k < by_id.cap; k++) {
        const tok_pslot *sl = &by_id.slots[k];
        if (sl->key == UINT64_MAX) continue;
        int id = (int)(sl->key >> 32);
        const tok_pslot *c = tok_pairmap_get(&cache, id, 0);
        const tok_added *a = c ? &rec[c->rank] : &rec[sl->rank];
        t->piece[id] = c ? a->ns : a->s;
        t->piece_len[id] = c ? a->nlen : a->len;
    }
    /* refresh_added_tokens: special tokens first, then the others; match flags come from the id's record */
    for (int pass = 0; pass < 2; pass++) {
        int *list = pass ? classic : special, cnt = pass ? nclassic : nspecial;
        for (int k = 0; k < cnt; k++) {
            const tok_added *a = &rec[list[k]];
            int id = tok_strmap_get(&added_map, a->s, a->len);
            const tok_added *f = &rec[tok_pairmap_get(&by_id, id, 0)->rank];
            if (!a->normalized) {
                matcher_add(&t->raw, a->s, a->len, id, f->single_word, f->lstrip, f->rstrip);
                continue;
            }
            matcher_add(&t->normd, a->ns, a->nlen, id, f->single_word, f->lstrip, f->rstrip);
        }
    }
    for (int k = 0; k < nrec && !t->word.code; k++)
        if (rec[k].single_word && (st = tok_regex_compile(&t->word, WORD_CLASS, sizeof WORD_CLASS - 1, false, where))) goto done;
done:
    free(rec); free(special); free(classic); free(norm.p);
    tok_strmap_free(&added_map); tok_strmap_free(&special_set); tok_pairmap_free(&by_id); tok_pairmap_free(&cache);
    tok_scratch_free(&sc);
    return st;
}

/* ------------------------------------------------------------------ post_processor */
static hs_status tmpl_add_ids(rt_tokenizer *t, tok_tmpl *tp, const cJSON *ids, const char *what, const char *where) {
    int n = cJSON_GetArraySize(ids);
    tok_tmpl_item *it = &tp->items[tp->n];
    it->ids = hs_xcalloc((size_t)n + 1, sizeof(int));
    it->seq = 0;
    tp->n++;
    for (const cJSON *v = ids->child; v; v = v->next) {
        if (!tok_json_is_index(v, (double)t->n_ids - 1))
            return tok_err(HS_EBADINPUT, where, "special token ids must be in the vocabulary",
                           "post_processor special token \"%.40s\" has an id outside [0, %d)", what, t->n_ids);
        it->ids[it->n++] = (int)v->valuedouble;
    }
    return HS_OK;
}

static tok_tmpl *post_new(rt_tokenizer *t, int items) {
    t->post = hs_xrealloc(t->post, (size_t)(t->n_post + 1) * sizeof *t->post);
    tok_tmpl *tp = &t->post[t->n_post++];
    tp->items = hs_xcalloc((size_t)items + 1, sizeof *tp->items);
    tp->n = 0;
    return tp;
}

static hs_status parse_template(rt_tokenizer *t, const cJSON *j, const char *where) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    if (!cJSON_IsArray(single) || (special && !cJSON_IsNull(special) && !cJSON_IsObject(special)))
        return tok_err(HS_EBADINPUT, where, "TemplateProcessing needs \"single\": [...] and \"special_tokens\": {...}",
                       "post_processor TemplateProcessing is malformed");
    tok_tmpl *tp = post_new(t, cJSON_GetArraySize(single));
    for (const cJSON *it = single->child; it; it = it->next) {
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(sq ? sq : sp, "id");
        if (!cJSON_IsObject(it) || !(sq || sp) || !cJSON_IsString(id))
            return tok_err(HS_EBADINPUT, where, "template pieces are {\"Sequence\": {\"id\": \"A\"}} or {\"SpecialToken\": {\"id\": \"...\"}}",
                           "post_processor template piece is malformed");
        if (sq) {
            if (strcmp(id->valuestring, "A") && strcmp(id->valuestring, "B"))
                return tok_err(HS_EBADINPUT, where, "sequence ids are \"A\" or \"B\"", "template Sequence id is not A or B");
            tp->items[tp->n].seq = id->valuestring[0] == 'A' ? 1 : 2;
            tp->items[tp->n].ids = NULL;
            tp->items[tp->n++].n = 0;
            continue;
        }
        const cJSON *tok = special ? cJSON_GetObjectItemCaseSensitive(special, id->valuestring) : NULL;
        const cJSON *ids = tok ? cJSON_GetObjectItemCaseSensitive(tok, "ids") : NULL;
        if (!cJSON_IsArray(ids))
            return tok_err(HS_EBADINPUT, where, "list every template special token in special_tokens with its ids",
                           "template special token \"%.40s\" is missing from special_tokens", id->valuestring);
        hs_status st = tmpl_add_ids(t, tp, ids, id->valuestring, where);
        if (st) return st;
    }
    return HS_OK;
}

/* RobertaProcessing / BertProcessing: "cls" A "sep" for a single sequence. */
static hs_status parse_cls_sep(rt_tokenizer *t, const cJSON *j, const char *where) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(j, "cls"), *sep = cJSON_GetObjectItemCaseSensitive(j, "sep");
    const cJSON *pair[2] = { cls, sep };
    for (int k = 0; k < 2; k++)
        if (!cJSON_IsArray(pair[k]) || cJSON_GetArraySize(pair[k]) != 2 || !cJSON_IsString(pair[k]->child) ||
            !tok_json_is_index(pair[k]->child->next, (double)t->n_ids - 1))
            return tok_err(HS_EBADINPUT, where, "cls and sep are [\"token\", id] with an id in the vocabulary",
                           "post_processor %s is malformed", k ? "sep" : "cls");
    tok_tmpl *tp = post_new(t, 3);
    for (int k = 0; k < 3; k++) {
        tok_tmpl_item *it = &tp->items[tp->n++];
        if (k == 1) { it->seq = 1; continue; }
        it->ids = hs_xmalloc(sizeof(int));
        it->ids[0] = (int)pair[k / 2]->child->next->valuedouble;
        it->n = 1;
    }
    return HS_OK;
}

static hs_status parse_post(rt_tokenizer *t, const cJSON *j, const char *where) {
    if (!j || cJSON_IsNull(j)) return HS_OK;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(ty))
        return tok_err(HS_EBADINPUT, where, "post_processor is null or an object with a \"type\"", "post_processor is malformed");
    const char *s = ty->valuestring;
    if (!strcmp(s, "ByteLevel")) return HS_OK;   /* only trims offsets; ids unchanged */
    if (!strcmp(s, "TemplateProcessing")) return parse_template(t, j, where);
    if (!strcmp(s, "RobertaProcessing") || !strcmp(s, "BertProcessing")) return parse_cls_sep(t, j, where);
    if (!strcmp(s, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(arr))
            return tok_err(HS_EBADINPUT, where, "a Sequence post_processor needs \"processors\": [...]", "post_processor Sequence is malformed");
        for (const cJSON *it = arr->child; it; it = it->next) {
            hs_status st = parse_post(t, it, where);
            if (st) return st;
        }
        return HS_OK;
    }
    return tok_err(HS_EUNSUPPORTED, where, "supported post_processors: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence",
                   "post_processor type \"%.40s\" is not supported", s);
}

/* BOS = the first id a template puts before sequence A; EOS = the first id after it, else a
 * conventional end-of-text added token. */
static void find_bos_eos(rt_tokenizer *t) {
    t->bos = t->eos = -1;
    for (int k = 0; k < t->n_post; k++) {
        bool after = false;
        for (int i = 0; i < t->post[k].n; i++) {
            const tok_tmpl_item *it = &t->post[k].items[i];
            if (it->seq == 1) after = true;
            else if (it->n && !after && t->bos < 0) t->bos = it->ids[0];
            else if (it->n && after && t->eos < 0) t->eos = it->ids[0];
        }
    }
    static const char *eos_names[] = { "</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<eos>" };
    for (size_t k = 0; t->eos < 0 && k < sizeof eos_names / sizeof eos_names[0]; k++)
        for (int i = 0; i < t->raw.n + t->normd.n && t->eos < 0; i++) {
            const tok_pat *p = i < t->raw.n ? &t->raw.pats[i] : &t->normd.pats[i - t->raw.n];
            if (p->len == strlen(eos_names[k]) && !memcmp(p->s, eos_names[k], p->len)) t->eos = p->id;
        }
}

/* ------------------------------------------------------------------ load / free */
void rt_tokenizer_free(rt_tokenizer *t) {
    if (!t) return;
    if (t->l2c) tok_l2c_free(t->l2c);
    tok_bpe_free(&t->bpe);
    tok_norms_free(t->norms, t->n_norms);
    tok_pretoks_free(t->pretoks, t->n_pretoks);
    tok_regex_free(&t->gpt2);
    tok_decs_free(t->decs, t->n_decs);
    matcher_free(&t->raw);
    matcher_free(&t->normd);
    tok_regex_free(&t->word);
    for (int k = 0; k < t->n_post; k++) {
        for (int i = 0; i < t->post[k].n; i++) free(t->post[k].items[i].ids);
        free(t->post[k].items);
    }
    free(t->post);
    free(t->piece);
    free(t->piece_len);
    hs_arena_free(&t->ar);
    free(t->where);
    free(t);
}

static hs_status load_tree(rt_tokenizer *t, const cJSON *root, const char *where) {
    hs_status st;
    if (!cJSON_IsObject(root))
        return tok_err(HS_EBADINPUT, where, "pass a Hugging Face tokenizer.json", "the JSON top level is not an object");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (ver && !(cJSON_IsString(ver) && !strcmp(ver->valuestring, "1.0")))
        return tok_err(HS_EUNSUPPORTED, where, "re-save the tokenizer with a current `tokenizers` (format 1.0)",
                       "tokenizer.json version is not \"1.0\"");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model))
        return tok_err(HS_EBADINPUT, where, "pass a Hugging Face tokenizer.json (it has a \"model\" object)",
                       "no \"model\" object");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(model, "type");
    bool bpe = cJSON_IsString(ty) ? !strcmp(ty->valuestring, "BPE")
                                  : (!ty && cJSON_GetObjectItemCaseSensitive(model, "merges") != NULL);
    if (!bpe)
        return tok_err(HS_EUNSUPPORTED, where,
                       "headscope supports tokenizer.json with model.type \"BPE\" (GPT-2/Llama/Mistral/Qwen style) and llama2.c tokenizer.bin",
                       "model type \"%.40s\" is not supported", cJSON_IsString(ty) ? ty->valuestring : "(missing)");
    if ((st = tok_bpe_parse(&t->bpe, model, &t->ar, where))) return st;
    if ((st = tok_norms_parse(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), where, &t->norms, &t->n_norms))) return st;
    if ((st = tok_pretoks_parse(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), where, &t->gpt2, &t->pretoks,
                                &t->n_pretoks)))
        return st;
    if ((st = tok_decs_parse(cJSON_GetObjectItemCaseSensitive(root, "decoder"), where, &t->decs, &t->n_decs,
                             &t->has_decoder)))
        return st;
    if ((st = parse_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), where))) return st;
    if ((st = parse_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), where))) return st;
    find_bos_eos(t);
    return HS_OK;
}

hs_status rt_tokenizer_from_json_text(const char *text, size_t len, const char *where, rt_tokenizer **out) {
    size_t bad;
    *out = NULL;
    if (!where) where = "tokenizer.json";
    if (!text && len) return tok_err(HS_EBADINPUT, where, "pass the file contents", "no JSON text");
    if (!hs_utf8_valid(text, len, &bad))
        return tok_err(HS_EBADINPUT, where, "tokenizer.json must be UTF-8", "invalid UTF-8 at byte %zu", bad);
    /* cJSON strings are C strings: a NUL (raw, or the escape \u0000) would silently cut a token short. */
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\0')
            return tok_err(HS_EUNSUPPORTED, where, "remove NUL characters from the file", "NUL byte at byte %zu", i);
        if (text[i] == '\\' && i + 5 < len && !memcmp(text + i + 1, "u0000", 5))
            return tok_err(HS_EUNSUPPORTED, where, "tokens containing U+0000 are not supported",
                           "string with \\u0000 at byte %zu", i);
        if (text[i] == '\\') i++;   /* skip the escaped char, so \\u0000 (a literal backslash) is not caught */
    }
    cJSON *root = cJSON_ParseWithLength(text ? text : "", len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        size_t off = e && text && e >= text && e <= text + len ? (size_t)(e - text) : 0;
        return tok_err(HS_EBADINPUT, where, "check that the file is a complete tokenizer.json",
                       "not valid JSON (near byte %zu)", off);
    }
    rt_tokenizer *t = hs_xcalloc(1, sizeof *t);
    t->where = hs_xstrdup(where);
    t->bos = t->eos = -1;
    hs_arena_init(&t->ar, 1u << 16);
    hs_status st = load_tree(t, root, where);
    cJSON_Delete(root);
    if (st) { rt_tokenizer_free(t); return st; }
    *out = t;
    return HS_OK;
}

hs_status rt_tokenizer_load_json(const char *path, rt_tokenizer **out) {
    char *text;
    size_t len;
    *out = NULL;
    hs_status st = hs_read_file("tokenizer", path, &text, &len);
    if (st) return st;
    st = rt_tokenizer_from_json_text(text, len, path, out);
    free(text);
    return st;
}

hs_status rt_tokenizer_load_llama2c(const char *path, int vocab_size, rt_tokenizer **out) {
    *out = NULL;
    tok_l2c *l;
    hs_status st = tok_l2c_load(path, vocab_size, &l);
    if (st) return st;
    rt_tokenizer *t = hs_xcalloc(1, sizeof *t);
    t->where = hs_xstrdup(path);
    t->l2c = l;
    hs_arena_init(&t->ar, 4096);
    t->n_ids = tok_l2c_vocab_size(l);
    t->bos = t->n_ids > 1 ? 1 : -1;
    t->eos = t->n_ids > 2 ? 2 : -1;
    *out = t;
    return HS_OK;
}

/* ------------------------------------------------------------------ encode / decode */
static hs_status encode_text(const rt_tokenizer *t, const char *text, size_t len, tok_scratch *sc, tok_ivec *out) {
    tok_segs raw = {0}, sub = {0};
    tok_buf nbuf = {0};
    hs_status st = HS_OK;
    matcher_split(&t->raw, &t->word, text, len, sc, &raw);
    for (size_t r = 0; r < raw.n && !st; r++) {
        tok_seg g = raw.v[r];
        if (g.id >= 0) { tok_ivec_push(out, g.id); continue; }
        if (g.e <= g.s) continue;
        bool origin = g.s == 0;
        size_t zw = 0;
        const char *s = text + g.s;
        size_t n = g.e - g.s;
        if (t->n_norms) {
            if ((st = tok_normalize(t->norms, t->n_norms, s, n, sc, &nbuf, &origin, &zw, t->where))) break;
            s = nbuf.p; n = nbuf.n;
        }
        if (!n) continue;
        matcher_split(&t->normd, &t->word, s, n, sc, &sub);
        for (size_t k = 0; k < sub.n && !st; k++) {
            tok_seg h = sub.v[k];
            if (h.id >= 0) { tok_ivec_push(out, h.id); continue; }
            int which;
            st = tok_pretokenize(t->pretoks, t->n_pretoks, s + h.s, h.e - h.s, origin && h.s <= zw,
                                 h.s < zw ? zw - h.s : 0, sc, &which, t->where);
            const tok_stage *stg = &sc->st[which];
            for (size_t p = 0; p < stg->n && !st; p++)
                st = tok_bpe_word(&t->bpe, stg->text.p + stg->p[p].off, stg->p[p].len, sc, out, t->where);
        }
    }
    free(raw.v); free(sub.v); free(nbuf.p);
    return st;
}

static void post_process(const rt_tokenizer *t, tok_ivec *ids) {
    for (int k = 0; k < t->n_post; k++) {
        tok_ivec o = {0};
        for (int i = 0; i < t->post[k].n; i++) {
            const tok_tmpl_item *it = &t->post[k].items[i];
            if (it->seq == 1) for (size_t j = 0; j < ids->n; j++) tok_ivec_push(&o, ids->p[j]);
            for (int j = 0; j < it->n; j++) tok_ivec_push(&o, it->ids[j]);
        }
        free(ids->p);
        *ids = o;
    }
}

hs_status rt_tokenizer_encode(const rt_tokenizer *t, const char *text, size_t len, bool add_special,
                              int **ids, int *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!t) return tok_err(HS_EBADINPUT, "encode", "load a tokenizer first", "no tokenizer");
    if (!text && len) return tok_err(HS_EBADINPUT, t->where, "pass the text to encode", "text is NULL");
    size_t bad;
    if (!hs_utf8_valid(text, len, &bad))
        return tok_err(HS_EBADINPUT, t->where, "pass UTF-8 text (re-encode the input file as UTF-8)",
                       "input text is not valid UTF-8 at byte offset %zu", bad);
    tok_ivec out = {0};
    hs_status st;
    if (t->l2c) {
        st = tok_l2c_encode(t->l2c, text ? text : "", len, add_special, &out, t->where);
    } else {
        tok_scratch sc;
        tok_scratch_init(&sc);
        st = encode_text(t, text ? text : "", len, &sc, &out);
        tok_scratch_free(&sc);
        if (!st && add_special) post_process(t, &out);
    }
    if (!st && out.n > (size_t)INT32_MAX)
        st = tok_err(HS_EBADINPUT, t->where, "encode the text in smaller chunks", "too many tokens");
    if (st) { free(out.p); return st; }
    *ids = out.p ? out.p : hs_xmalloc(sizeof(int));
    *n_ids = (int)out.n;
    return HS_OK;
}

hs_status rt_tokenizer_decode(const rt_tokenizer *t, const int *ids, int n_ids, char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    if (!t) return tok_err(HS_EBADINPUT, "decode", "load a tokenizer first", "no tokenizer");
    if (n_ids < 0 || (!ids && n_ids))
        return tok_err(HS_EBADINPUT, t->where, "pass an id array and its length", "invalid id array");
    for (int i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= t->n_ids)
            return tok_err(HS_EBADINPUT, t->where, "decode only ids produced by this tokenizer",
                           "id %d at position %d is outside the vocabulary [0, %d)", ids[i], i, t->n_ids);
    tok_buf out = {0};
    hs_status st;
    if (t->l2c) {
        st = tok_l2c_decode(t->l2c, ids, n_ids, &out);
    } else {
        const char **tok = hs_xmalloc(((size_t)n_ids + 1) * sizeof *tok);
        uint32_t *tl = hs_xmalloc(((size_t)n_ids + 1) * sizeof *tl);
        size_t n = 0;
        for (int i = 0; i < n_ids; i++) {
            if (!t->piece[ids[i]]) continue;   /* a gap in the vocabulary: HF drops unknown ids */
            tok[n] = t->piece[ids[i]];
            tl[n++] = t->piece_len[ids[i]];
        }
        st = tok_decode_chain(t->decs, t->n_decs, t->has_decoder, tok, tl, n, &out, t->where);
        free(tok);
        free(tl);
    }
    if (st) { free(out.p); return st; }
    tok_buf_putc(&out, '\0');
    *text = out.p;
    if (len) *len = out.n - 1;
    return HS_OK;
}

const char *rt_tokenizer_piece(const rt_tokenizer *t, int id) {
    if (!t || id < 0 || id >= t->n_ids) return NULL;
    if (t->l2c) return tok_l2c_piece(t->l2c, id);
    return t->piece[id];
}
int rt_tokenizer_vocab_size(const rt_tokenizer *t) { return t ? t->n_ids : 0; }
int rt_tokenizer_bos_id(const rt_tokenizer *t) { return t ? t->bos : -1; }
int rt_tokenizer_eos_id(const rt_tokenizer *t) { return t ? t->eos : -1; }
