/* relations.c — relation files for MAPS: paranoid loading, single-token resolution, prompts
 * (see relations.h; the shipped files and their provenance: datasets/relations/README.md). */
#include "relations.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TEMPLATE 1024
#define MAX_FILE_BYTES (64u << 20)   /* a relation file above this is not a relation file */

/* ------------------------------------------------------------------ names, k, templates */

int ds_relation_default_k(const char *name) { return strstr(name, "copying") ? 1 : 10; }

/* Templates of the shipped relations: the next token of a fluent reader is the target. */
static const struct { const char *name, *tmpl; } k_templates[] = {
    { "copying", "When I think about {} I think about" },   /* MAPS's fourth generic template */
    { "name_copying", "When {} arrived, everyone greeted" },
    { "next_number", "Counting up: {}, then" },
    { "next_letter", "In the alphabet, after {} comes" },
    { "lower_to_upper", "In capital letters, {} is written as" },
    { "upper_to_lower", "In lower case letters, {} is written as" },
    { "country_capital", "The capital of {} is" },
    { "adj_comparative", "It is {}, but that one is even" },
    { "verb_past_tense", "Today I {}; yesterday I" },
    { "antonym", "The opposite of {} is" },
};

const char *ds_relation_default_template(const char *name) {
    for (size_t i = 0; i < sizeof k_templates / sizeof *k_templates; i++)
        if (strcmp(name, k_templates[i].name) == 0) return k_templates[i].tmpl;
    return "This is a document about {}";
}

/* ------------------------------------------------------------------ loading */

static void rel_clear(ds_relation *r) {
    free(r->name); free(r->path); free(r->template_text);
    for (int i = 0; i < r->n; i++) { free(r->src[i]); free(r->tgt[i]); }
    free(r->src); free(r->tgt);
    memset(r, 0, sizeof *r);
}

void ds_relations_free(ds_relation *rels, int n) {
    for (int i = 0; i < n; i++) rel_clear(&rels[i]);
    free(rels);
}

/* A pair side: non-empty, at most DS_REL_MAX_TEXT bytes, valid UTF-8, no control characters
 * (a newline or NUL in a "word" is a broken file, not a token). */
static bool text_ok(const cJSON *s) {
    if (!cJSON_IsString(s) || !s->valuestring) return false;
    size_t len = strlen(s->valuestring), bad;
    if (len == 0 || len > DS_REL_MAX_TEXT || !hs_utf8_valid(s->valuestring, len, &bad)) return false;
    for (size_t i = 0; i < len; i++) if ((unsigned char)s->valuestring[i] < 0x20) return false;
    return true;
}

/* One "{}" and nothing else in braces-pairs: the template must place the source exactly once. */
static bool template_ok(const char *t) {
    size_t len = strlen(t), bad;
    if (len == 0 || len > MAX_TEMPLATE || !hs_utf8_valid(t, len, &bad)) return false;
    const char *a = strstr(t, "{}");
    return a && !strstr(a + 2, "{}");
}

static bool int_in(const cJSON *v, double lo, double hi, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble || v->valuedouble < lo || v->valuedouble > hi)
        return false;
    *out = (int)v->valuedouble;
    return true;
}

/* The file's stem: "dir/country_capital.json" -> "country_capital". */
static char *stem_of(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && strcmp(b + n - 5, ".json") == 0) n -= 5;
    char *s = hs_xmalloc(n + 1);
    memcpy(s, b, n); s[n] = 0;
    return s;
}

#define BAD(...) do { hs_log_error("analyze", __VA_ARGS__); rc = HS_EBADINPUT; goto fail; } while (0)

static hs_status load_file(const char *path, ds_relation **rels, int *n) {
    hs_status rc = HS_OK;
    char *txt = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    ds_relation r = { 0 };
    struct stat st;
    if (stat(path, &st) == 0 && (size_t)st.st_size > MAX_FILE_BYTES)
        BAD("relation file is %lld bytes, above the %u MiB limit (%s) — split it", (long long)st.st_size, MAX_FILE_BYTES >> 20, path);
    if ((rc = hs_read_file("analyze", path, &txt, &len)) != HS_OK) return rc;
    size_t bad;
    if (!hs_utf8_valid(txt, len, &bad)) BAD("invalid UTF-8 at byte %zu (%s) — save the relation file as UTF-8", bad, path);
    root = cJSON_ParseWithLength(txt, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long at = e && e >= txt && e <= txt + len ? (long)(e - txt) : -1;
        BAD("not valid JSON near byte %ld (%s) — fix the relation file (a list of [source, target] pairs)", at, path);
    }
    r.name = stem_of(path);
    r.path = hs_xstrdup(path);
    r.leading_space = true;
    r.max_pairs = 500;
    if (!*r.name) BAD("a relation file needs a name before .json (%s) — rename it", path);
    for (int i = 0; i < *n; i++)
        if (strcmp((*rels)[i].name, r.name) == 0)
            BAD("relation '%s' is loaded twice (%s and %s) — pass each relation once", r.name, (*rels)[i].path, path);

    const cJSON *pairs = NULL;
    if (cJSON_IsArray(root)) {
        pairs = root;
    } else if (cJSON_IsObject(root)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, root) {
            const char *key = it->string;
            if (strcmp(key, "pairs") == 0) pairs = it;
            else if (strcmp(key, "description") == 0 || strcmp(key, "source") == 0) {
                if (!cJSON_IsString(it)) BAD("\"%s\" must be a string (%s) — fix the relation file", key, path);
            } else if (strcmp(key, "k") == 0) {
                if (!int_in(it, 1, 100000, &r.k)) BAD("\"k\" must be an integer in 1..100000 (%s) — fix the relation file", path);
            } else if (strcmp(key, "template") == 0) {
                if (!cJSON_IsString(it) || !template_ok(it->valuestring))
                    BAD("\"template\" must be a string with exactly one {} where the source goes, at most %d bytes (%s) — fix the relation file",
                        MAX_TEMPLATE, path);
                r.template_text = hs_xstrdup(it->valuestring);
            } else if (strcmp(key, "leading_space") == 0) {
                if (!cJSON_IsBool(it)) BAD("\"leading_space\" must be true or false (%s) — fix the relation file", path);
                r.leading_space = cJSON_IsTrue(it);
            } else if (strcmp(key, "generate") == 0) {
                if (!cJSON_IsString(it) || strcmp(it->valuestring, "vocab_words") != 0)
                    BAD("\"generate\" must be \"vocab_words\" (%s) — the only generator: copying pairs from the model's vocabulary", path);
                r.generated = true;
            } else if (strcmp(key, "max_pairs") == 0) {
                if (!int_in(it, 1, DS_REL_MAX_PAIRS, &r.max_pairs))
                    BAD("\"max_pairs\" must be an integer in 1..%d (%s) — fix the relation file", DS_REL_MAX_PAIRS, path);
            } else {
                BAD("unknown member \"%s\" (%s) — allowed: pairs, generate, max_pairs, k, template, leading_space, description, source",
                    key, path);
            }
        }
        if (r.generated == (pairs != NULL))
            BAD("a relation object needs exactly one of \"pairs\" and \"generate\" (%s) — fix the relation file", path);
    } else {
        BAD("a relation file is a list of [source, target] pairs or an object with \"pairs\" (%s) — fix the relation file", path);
    }
    if (pairs) {
        if (!cJSON_IsArray(pairs)) BAD("\"pairs\" must be a list of [source, target] pairs (%s) — fix the relation file", path);
        int np = cJSON_GetArraySize(pairs);
        if (np == 0) BAD("the relation lists no pairs (%s) — add [source, target] pairs or drop the file", path);
        if (np > DS_REL_MAX_PAIRS) BAD("%d pairs, above the limit of %d (%s) — split the relation", np, DS_REL_MAX_PAIRS, path);
        r.src = hs_xcalloc((size_t)np, sizeof(char *));
        r.tgt = hs_xcalloc((size_t)np, sizeof(char *));
        const cJSON *e;
        int i = 0;
        cJSON_ArrayForEach(e, pairs) {
            const cJSON *a = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !text_ok(a) || !text_ok(b))
                BAD("entry [%d] is not a [source, target] pair of two non-empty strings without control characters, "
                    "at most %d bytes each (%s, entry %d) — fix the relation file", i, DS_REL_MAX_TEXT, path, i);
            r.src[i] = hs_xstrdup(a->valuestring);
            r.tgt[i] = hs_xstrdup(b->valuestring);
            r.n = ++i;
        }
    }
    *rels = hs_xrealloc(*rels, (size_t)(*n + 1) * sizeof **rels);
    (*rels)[(*n)++] = r;
    cJSON_Delete(root);
    free(txt);
    return HS_OK;
fail:
    rel_clear(&r);
    cJSON_Delete(root);
    free(txt);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

hs_status ds_relations_load(const char *path, ds_relation **rels, int *n) {
    struct stat st;
    if (stat(path, &st) != 0) {
        hs_log_error("analyze", "cannot open %s: %s — pass a relation file or a folder of *.json relation files", path, strerror(errno));
        return HS_EIO;
    }
    if (!S_ISDIR(st.st_mode)) return load_file(path, rels, n);
    DIR *d = opendir(path);
    if (!d) {
        hs_log_error("analyze", "cannot list %s: %s — check the --relations folder", path, strerror(errno));
        return HS_EIO;
    }
    char **names = NULL;
    int nn = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l <= 5 || strcmp(de->d_name + l - 5, ".json") != 0) continue;
        if (nn == cap) { cap = cap ? cap * 2 : 16; names = hs_xrealloc(names, (size_t)cap * sizeof *names); }
        size_t pl = strlen(path) + l + 2;
        names[nn] = hs_xmalloc(pl);
        snprintf(names[nn++], pl, "%s/%s", path, de->d_name);
    }
    closedir(d);
    hs_status rc = HS_OK;
    if (nn == 0) {
        hs_log_error("analyze", "no *.json relation file in %s — point --relations at a relation file or a folder of them", path);
        rc = HS_EBADINPUT;
    }
    if (nn > 1) qsort(names, (size_t)nn, sizeof *names, cmp_str);   /* name order: reports list relations stably */
    int n0 = *n;
    for (int i = 0; i < nn && rc == HS_OK; i++) rc = load_file(names[i], rels, n);
    if (rc != HS_OK) {   /* all or nothing for a folder: drop what this call appended */
        for (int i = n0; i < *n; i++) rel_clear(&(*rels)[i]);
        *n = n0;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    return rc;
}

/* ------------------------------------------------------------------ tokens */

/* A piece that starts with a space as the tokenizer stores it: ' ' (llama2.c), U+2581 '▁'
 * (SentencePiece), U+0120 'Ġ' (byte-level BPE). */
static bool piece_spaced(const char *p) {
    if (!p) return false;
    const unsigned char *u = (const unsigned char *)p;
    return u[0] == ' ' || (u[0] == 0xE2 && u[1] == 0x96 && u[2] == 0x81) || (u[0] == 0xC4 && u[1] == 0xA0);
}

hs_status ds_encode_spaced(const rt_tokenizer *tok, const char *text, int **ids, int *n) {
    hs_status rc = rt_tokenizer_encode(tok, text, strlen(text), false, ids, n);
    if (rc != HS_OK || text[0] != ' ' || text[1] == ' ' || text[1] == 0) return rc;
    /* A tokenizer that prepends its own dummy space turns " word" into [space, "▁word"] or
     * ["▁▁word"]; encoding "word" instead gives the token a space-separated word really is. */
    int *b, nb;
    if (rt_tokenizer_encode(tok, text + 1, strlen(text + 1), false, &b, &nb) != HS_OK) return HS_OK;
    if (nb > 0 && piece_spaced(rt_tokenizer_piece(tok, b[0]))) {
        free(*ids);
        *ids = b; *n = nb;
        return HS_OK;
    }
    free(b);
    return HS_OK;
}

int ds_single_token(const rt_tokenizer *tok, const char *word, bool leading_space) {
    size_t len = strlen(word);
    char *text = hs_xmalloc(len + 2);
    snprintf(text, len + 2, "%s%s", leading_space ? " " : "", word);
    int *ids = NULL, n = 0, id = -1;
    hs_status rc = leading_space ? ds_encode_spaced(tok, text, &ids, &n) : rt_tokenizer_encode(tok, text, strlen(text), false, &ids, &n);
    if (rc == HS_OK && n == 1) id = ids[0];
    free(ids); free(text);
    return id;
}

/* ------------------------------------------------------------------ resolution */

void ds_pairs_free(ds_pairs *p) {
    if (p->prompt) for (int i = 0; i < p->n; i++) free(p->prompt[i]);
    free(p->prompt); free(p->prompt_len); free(p->src_pos);
    free(p->src); free(p->tgt); free(p->template_text);
    memset(p, 0, sizeof *p);
}

static bool word_ascii(const char *w) {
    size_t n = strlen(w);
    if (n < 2) return false;
    for (size_t i = 0; i < n; i++)
        if (!((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= 'A' && w[i] <= 'Z'))) return false;
    return true;
}

/* Copying pairs from the vocabulary: word tokens in id order. */
static void generate_words(const ds_relation *r, const rt_tokenizer *tok, ds_pairs *out) {
    int V = rt_tokenizer_vocab_size(tok), cap = r->max_pairs;
    out->src = hs_xmalloc((size_t)cap * sizeof(int));
    out->tgt = hs_xmalloc((size_t)cap * sizeof(int));
    for (int id = 0; id < V; id++) {
        char *text; size_t len;
        if (rt_tokenizer_decode(tok, &id, 1, &text, &len) != HS_OK) continue;
        const char *w = text[0] == ' ' ? text + 1 : text;
        if (strlen(text) == len && word_ascii(w) && ds_single_token(tok, w, true) == id) {
            out->n_listed++;
            if (out->n < cap) { out->src[out->n] = out->tgt[out->n] = id; out->n++; }
        }
        free(text);
    }
}

typedef struct { uint64_t key; int idx; } pair_key;
static int cmp_key(const void *a, const void *b) {
    const pair_key *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : x->idx - y->idx;
}

/* Drop repeated (src, tgt) id pairs, keeping the first occurrence and the original order. */
static void dedupe(ds_pairs *p) {
    if (p->n < 2) return;
    pair_key *k = hs_xmalloc((size_t)p->n * sizeof *k);
    for (int i = 0; i < p->n; i++) k[i] = (pair_key){ ((uint64_t)(uint32_t)p->src[i] << 32) | (uint32_t)p->tgt[i], i };
    qsort(k, (size_t)p->n, sizeof *k, cmp_key);
    char *drop = hs_xcalloc((size_t)p->n, 1);
    for (int i = 1; i < p->n; i++) if (k[i].key == k[i - 1].key) drop[k[i].idx] = 1;
    int m = 0;
    for (int i = 0; i < p->n; i++)
        if (!drop[i]) { p->src[m] = p->src[i]; p->tgt[m] = p->tgt[i]; m++; }
    p->n_duplicate = p->n - m;
    p->n = m;
    free(k); free(drop);
}

/* Prompt for source token src: the template's text encoded whole when the tokenizer keeps the
 * source token intact at the right place (the natural tokenization), else prefix + [src] + suffix
 * encoded separately. */
static hs_status build_prompt(const rt_tokenizer *tok, const char *tmpl, bool leading_space, int src,
                              int **ids, int *n, int *pos) {
    const char *at = strstr(tmpl, "{}");
    size_t pre_len = (size_t)(at - tmpl);
    /* the source token carries its own leading space: drop one from the prefix */
    if (leading_space && pre_len > 0 && tmpl[pre_len - 1] == ' ') pre_len--;
    char *pre = hs_xmalloc(pre_len + 1);
    memcpy(pre, tmpl, pre_len); pre[pre_len] = 0;
    const char *suf = at + 2;
    char *word = NULL; size_t wlen;
    int *p = NULL, np = 0, *s = NULL, ns = 0, *full = NULL, nf = 0;
    hs_status rc = rt_tokenizer_decode(tok, &src, 1, &word, &wlen);
    if (rc == HS_OK) rc = rt_tokenizer_encode(tok, pre, pre_len, true, &p, &np);
    if (rc == HS_OK) {
        /* whole text: prefix + the source's text (with a space when the decoder dropped it) + suffix */
        bool need_space = leading_space && (wlen == 0 || word[0] != ' ');
        size_t tl = pre_len + wlen + strlen(suf) + 2;
        char *text = hs_xmalloc(tl);
        snprintf(text, tl, "%s%s%s%s", pre, need_space ? " " : "", word, suf);
        if (rt_tokenizer_encode(tok, text, strlen(text), true, &full, &nf) == HS_OK && nf > np &&
            memcmp(full, p, (size_t)np * sizeof(int)) == 0 && full[np] == src) {
            *ids = full; *n = nf; *pos = np;
            full = NULL;
        } else if (!*suf || (rc = ds_encode_spaced(tok, suf, &s, &ns)) == HS_OK) {
            *n = np + 1 + ns;
            *ids = hs_xmalloc((size_t)*n * sizeof(int));
            memcpy(*ids, p, (size_t)np * sizeof(int));
            (*ids)[np] = src;
            if (ns) memcpy(*ids + np + 1, s, (size_t)ns * sizeof(int));
            *pos = np;
        }
        free(text);
    }
    free(pre); free(word); free(p); free(s); free(full);
    return rc;
}

hs_status ds_relation_resolve(const ds_relation *r, const rt_tokenizer *tok, bool want_prompts, ds_pairs *out) {
    memset(out, 0, sizeof *out);
    out->k = r->k > 0 ? r->k : ds_relation_default_k(r->name);
    out->template_text = hs_xstrdup(r->template_text ? r->template_text : ds_relation_default_template(r->name));
    if (r->generated) {
        generate_words(r, tok, out);
    } else {
        out->n_listed = r->n;
        out->src = hs_xmalloc((size_t)(r->n ? r->n : 1) * sizeof(int));
        out->tgt = hs_xmalloc((size_t)(r->n ? r->n : 1) * sizeof(int));
        for (int i = 0; i < r->n; i++) {
            int a = ds_single_token(tok, r->src[i], r->leading_space), b = ds_single_token(tok, r->tgt[i], r->leading_space);
            if (a < 0 || b < 0) { out->n_multi_token++; continue; }
            out->src[out->n] = a; out->tgt[out->n] = b; out->n++;
        }
        dedupe(out);
    }
    if (!want_prompts || out->n == 0) return HS_OK;
    out->prompt = hs_xcalloc((size_t)out->n, sizeof(int *));
    out->prompt_len = hs_xcalloc((size_t)out->n, sizeof(int));
    out->src_pos = hs_xcalloc((size_t)out->n, sizeof(int));
    for (int i = 0; i < out->n; i++) {
        if (build_prompt(tok, out->template_text, r->leading_space, out->src[i], &out->prompt[i], &out->prompt_len[i],
                         &out->src_pos[i]) != HS_OK) {
            hs_log_error("analyze", "cannot build the --validate prompt of pair %d from template \"%s\" (%s) — fix the template",
                         i, out->template_text, r->path);
            ds_pairs_free(out);
            return HS_EBADINPUT;
        }
    }
    return HS_OK;
}
