/* tok_bpe.c — the BPE model of a tokenizer.json (vocab + merges) and the hash tables it uses.
 *
 * Why: this is the part that must match Hugging Face `tokenizers` (models/bpe/model.rs, word.rs)
 * id for id: same char -> symbol split (continuing_subword_prefix / end_of_word_suffix, byte_fallback,
 * unk fusing), and the same priority-queue merge loop, including its quirk of only checking the
 * merged id (not the rank) when it pops a stale entry.
 * Constraints: vocabularies of 100k+ entries and words of thousands of chars; lookups are open
 * addressing hashes and the merge loop is O(n log n); no allocation per character (scratch buffers
 * grow and are reused for the whole encode call).
 */
#include "tok_internal.h"
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ hashing */
static uint32_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;            /* FNV-1a, then a final mix for the low bits */
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    h ^= h >> 29; h *= 0xbf58476d1ce4e5b9ull; h ^= h >> 32;
    return (uint32_t)h;
}
static size_t table_cap(size_t expect) {
    size_t cap = 16;
    while (cap < expect * 2 + 1) { HS_ASSERT(cap <= SIZE_MAX / 4); cap *= 2; }
    return cap;
}

void tok_strmap_init(tok_strmap *m, size_t expect) {
    m->cap = table_cap(expect);
    m->n = 0;
    m->slots = hs_xcalloc(m->cap, sizeof *m->slots);
}
void tok_strmap_free(tok_strmap *m) { free(m->slots); memset(m, 0, sizeof *m); }

static void strmap_grow(tok_strmap *m) {
    tok_strmap old = *m;
    m->cap = old.cap * 2;
    m->slots = hs_xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old.cap; i++) {
        tok_sslot *s = &old.slots[i];
        if (!s->key) continue;
        size_t j = s->hash & (m->cap - 1);
        while (m->slots[j].key) j = (j + 1) & (m->cap - 1);
        m->slots[j] = *s;
    }
    free(old.slots);
}

int tok_strmap_get(const tok_strmap *m, const char *k, size_t len) {
    if (!m->slots || len > UINT32_MAX) return -1;
    uint32_t h = hash_bytes(k, len);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const tok_sslot *s = &m->slots[j];
        if (!s->key) return -1;
        if (s->hash == h && s->len == len && memcmp(s->key, k, len) == 0) return s->val;
    }
}

int tok_strmap_put(tok_strmap *m, const char *k, size_t len, int val) {
    HS_ASSERT(len <= UINT32_MAX && k);
    if ((m->n + 1) * 2 > m->cap) strmap_grow(m);
    uint32_t h = hash_bytes(k, len);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        tok_sslot *s = &m->slots[j];
        if (!s->key) break;
        if (s->hash == h && s->len == len && memcmp(s->key, k, len) == 0) return s->val;
    }
    m->slots[j] = (tok_sslot){ k, (uint32_t)len, h, val };
    m->n++;
    return -1;
}

/* Pair keys pack two non-negative int32 ids; all-ones marks an empty slot (ids never reach it). */
#define PAIR_EMPTY UINT64_MAX
static inline uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static inline size_t pair_hash(uint64_t k) { k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33; return (size_t)k; }

void tok_pairmap_init(tok_pairmap *m, size_t expect) {
    m->cap = table_cap(expect);
    m->n = 0;
    m->slots = hs_xmalloc(m->cap * sizeof *m->slots);
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = PAIR_EMPTY;
}
void tok_pairmap_free(tok_pairmap *m) { free(m->slots); memset(m, 0, sizeof *m); }

void tok_pairmap_set(tok_pairmap *m, int a, int b, int rank, int id) {
    if ((m->n + 1) * 2 > m->cap) {
        tok_pairmap old = *m;
        tok_pairmap_init(m, old.cap);
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].key != PAIR_EMPTY)
                tok_pairmap_set(m, (int)(old.slots[i].key >> 32), (int)(uint32_t)old.slots[i].key,
                                old.slots[i].rank, old.slots[i].id);
        free(old.slots);
    }
    uint64_t k = pair_key(a, b);
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != PAIR_EMPTY && m->slots[j].key != k) j = (j + 1) & (m->cap - 1);
    if (m->slots[j].key == PAIR_EMPTY) m->n++;
    m->slots[j] = (tok_pslot){ k, rank, id };
}

const tok_pslot *tok_pairmap_get(const tok_pairmap *m, int a, int b) {
    if (!m->slots) return NULL;
    uint64_t k = pair_key(a, b);
    for (size_t j = pair_hash(k) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const tok_pslot *s = &m->slots[j];
        if (s->key == k) return s;
        if (s->key == PAIR_EMPTY) return NULL;
    }
}

/* ------------------------------------------------------------------ parsing */
static char *arena_strndup(hs_arena *ar, const char *s, size_t n) {
    char *d = hs_arena_alloc(ar, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static hs_status opt_str(const cJSON *model, const char *key, hs_arena *ar, char **out, size_t *len,
                         const char *where) {
    const char *s;
    hs_status st = tok_json_str(model, key, &s, where);
    if (st) return st;
    *out = s ? arena_strndup(ar, s, strlen(s)) : NULL;
    *len = s ? strlen(s) : 0;
    return HS_OK;
}

/* One merge as HF reads it: "a b" (exactly one space) or ["a", "b"]. */
static hs_status merge_parts(const cJSON *it, size_t i, const char **a, size_t *na, const char **b, size_t *nb,
                             bool *skip, const char *where) {
    *skip = false;
    if (cJSON_IsString(it)) {
        const char *s = it->valuestring;
        if (strncmp(s, "#version", 8) == 0) { *skip = true; return HS_OK; }
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return tok_err(HS_EBADINPUT, where, "write each merge as \"left right\" with one space",
                           "model.merges[%zu] \"%.40s\" is not two tokens separated by one space", i, s);
        *a = s; *na = (size_t)(sp - s); *b = sp + 1; *nb = strlen(sp + 1);
        return HS_OK;
    }
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
        cJSON_IsString(it->child->next)) {
        *a = it->child->valuestring; *na = strlen(*a);
        *b = it->child->next->valuestring; *nb = strlen(*b);
        return HS_OK;
    }
    return tok_err(HS_EBADINPUT, where, "merges must be strings \"a b\" or pairs [\"a\", \"b\"]",
                   "model.merges[%zu] is neither a string nor a pair of strings", i);
}

static hs_status parse_vocab(tok_bpe *m, const cJSON *vocab, hs_arena *ar, const char *where) {
    if (!cJSON_IsObject(vocab))
        return tok_err(HS_EBADINPUT, where, "a BPE tokenizer.json needs model.vocab {token: id}",
                       "model.vocab is missing or not an object");
    int n = cJSON_GetArraySize(vocab);
    tok_strmap_init(&m->vocab, (size_t)n);
    m->n_tokens = n;
    int max_id = -1;
    for (const cJSON *it = vocab->child; it; it = it->next) {
        if (!it->string) return tok_err(HS_EBADINPUT, where, "fix the vocab", "model.vocab entry without a key");
        if (!tok_json_is_index(it, 2147483646.0))
            return tok_err(HS_EBADINPUT, where, "vocab ids are integers in [0, 2^31-2]",
                           "model.vocab[\"%.40s\"] is not a valid id", it->string);
        if ((int)it->valuedouble > max_id) max_id = (int)it->valuedouble;
    }
    /* Ids index a table: refuse a few huge ids that would make it enormous (real vocabularies are dense). */
    if (max_id >= 0 && (double)max_id >= 2.0 * n + 1048576.0)
        return tok_err(HS_EBADINPUT, where, "renumber the vocabulary densely from 0",
                       "model.vocab ids are too sparse (max id %d for %d tokens)", max_id, n);
    m->n_ids = max_id + 1;
    m->id_str = hs_xcalloc((size_t)m->n_ids + 1, sizeof *m->id_str);
    m->id_len = hs_xcalloc((size_t)m->n_ids + 1, sizeof *m->id_len);
    for (const cJSON *it = vocab->child; it; it = it->next) {
        size_t len = strlen(it->string);
        int id = (int)it->valuedouble;
        char *k = arena_strndup(ar, it->string, len);
        if (tok_strmap_put(&m->vocab, k, len, id) >= 0)
            return tok_err(HS_EBADINPUT, where, "remove the duplicate key",
                           "model.vocab has the token \"%.40s\" twice", it->string);
        if (m->id_str[id])
            return tok_err(HS_EBADINPUT, where, "give every token its own id",
                           "model.vocab id %d is used by both \"%.40s\" and \"%.40s\"", id, m->id_str[id], k);
        m->id_str[id] = k;
        m->id_len[id] = (uint32_t)len;
    }
    return HS_OK;
}

static hs_status parse_merges(tok_bpe *m, const cJSON *merges, hs_arena *ar, const char *where) {
    if (!cJSON_IsArray(merges))
        return tok_err(HS_EBADINPUT, where, "a BPE tokenizer.json needs model.merges (a list)",
                       "model.merges is missing or not an array");
    tok_pairmap_init(&m->merges, (size_t)cJSON_GetArraySize(merges));
    tok_buf tmp = {0};
    hs_status st = HS_OK;
    size_t i = 0, rank = 0;
    for (const cJSON *it = merges->child; it; it = it->next, i++) {
        const char *a = NULL, *b = NULL; size_t na = 0, nb = 0; bool skip;
        if ((st = merge_parts(it, i, &a, &na, &b, &nb, &skip, where))) goto done;
        if (skip) continue;
        int ia = tok_strmap_get(&m->vocab, a, na), ib = tok_strmap_get(&m->vocab, b, nb);
        if (ia < 0 || ib < 0) {
            st = tok_err(HS_EBADINPUT, where, "every merge must join two tokens of model.vocab",
                         "model.merges[%zu] uses \"%.*s\", which is not in the vocab", i,
                         (int)(ia < 0 ? (na > 40 ? 40 : na) : (nb > 40 ? 40 : nb)), ia < 0 ? a : b);
            goto done;
        }
        if (nb < m->prefix_len) {
            st = tok_err(HS_EBADINPUT, where, "check continuing_subword_prefix",
                         "model.merges[%zu] right token is shorter than continuing_subword_prefix", i);
            goto done;
        }
        tmp.n = 0;
        tok_buf_put(&tmp, a, na);
        tok_buf_put(&tmp, b + m->prefix_len, nb - m->prefix_len);
        int id = tok_strmap_get(&m->vocab, tmp.p ? tmp.p : "", tmp.n);
        if (id < 0) {
            st = tok_err(HS_EBADINPUT, where, "every merge result must be in model.vocab",
                         "model.merges[%zu] makes \"%.*s\", which is not in the vocab", i,
                         (int)(tmp.n > 40 ? 40 : tmp.n), tmp.p);
            goto done;
        }
        if (rank > INT32_MAX) { st = tok_err(HS_EBADINPUT, where, "use fewer merges", "too many merges"); goto done; }
        tok_pairmap_set(&m->merges, ia, ib, (int)rank, id);
        rank++;
    }
done:
    free(tmp.p);
    return st;
}

hs_status tok_bpe_parse(tok_bpe *m, const cJSON *model, hs_arena *ar, const char *where) {
    hs_status st;
    memset(m, 0, sizeof *m);
    for (int b = 0; b < 256; b++) m->byte_id[b] = -1;
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout)) {
        if (!cJSON_IsNumber(dropout) || !(dropout->valuedouble >= 0.0 && dropout->valuedouble <= 1.0))
            return tok_err(HS_EBADINPUT, where, "dropout is null or a number in [0, 1]", "model.dropout is invalid");
        if (dropout->valuedouble > 0.0)
            return tok_err(HS_EUNSUPPORTED, where, "set model.dropout to null for inference",
                           "BPE dropout %g is random and not supported", dropout->valuedouble);
    }
    if ((st = opt_str(model, "unk_token", ar, &m->unk, &m->unk_len, where))) return st;
    if ((st = opt_str(model, "continuing_subword_prefix", ar, &m->prefix, &m->prefix_len, where))) return st;
    if ((st = opt_str(model, "end_of_word_suffix", ar, &m->suffix, &m->suffix_len, where))) return st;
    if ((st = tok_json_bool(model, "fuse_unk", false, &m->fuse_unk, where))) return st;
    if ((st = tok_json_bool(model, "byte_fallback", false, &m->byte_fallback, where))) return st;
    if ((st = tok_json_bool(model, "ignore_merges", false, &m->ignore_merges, where))) return st;
    if ((st = parse_vocab(m, cJSON_GetObjectItemCaseSensitive(model, "vocab"), ar, where))) return st;
    if ((st = parse_merges(m, cJSON_GetObjectItemCaseSensitive(model, "merges"), ar, where))) return st;
    for (int b = 0; b < 256; b++) {
        char code[8];
        snprintf(code, sizeof code, "<0x%02X>", b);   /* Rust format!("<{b:#04X}>") */
        m->byte_id[b] = tok_strmap_get(&m->vocab, code, 6);
    }
    return HS_OK;
}

void tok_bpe_free(tok_bpe *m) {
    tok_strmap_free(&m->vocab);
    tok_pairmap_free(&m->merges);
    free(m->id_str);
    free(m->id_len);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ word tokenization */
static void sym_add(tok_scratch *sc, size_t *n, int c, uint32_t len) {
    if (*n == sc->capsym) {
        sc->capsym = sc->capsym ? sc->capsym * 2 : 256;
        sc->sym = hs_xrealloc(sc->sym, sc->capsym * sizeof *sc->sym);
    }
    tok_sym *s = &sc->sym[*n];
    s->c = c; s->len = len; s->next = -1;
    s->prev = (int32_t)*n - 1;
    if (*n > 0) sc->sym[*n - 1].next = (int32_t)*n;
    (*n)++;
}

/* Min-heap on (rank, pos): HF's Merge ordering. */
static inline bool merge_before(const tok_merge *a, const tok_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}
static void heap_push(tok_scratch *sc, uint32_t rank, uint32_t pos, int id) {
    if (sc->nheap == sc->capheap) {
        sc->capheap = sc->capheap ? sc->capheap * 2 : 256;
        sc->heap = hs_xrealloc(sc->heap, sc->capheap * sizeof *sc->heap);
    }
    tok_merge *h = sc->heap;
    size_t i = sc->nheap++;
    h[i] = (tok_merge){ rank, pos, id };
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_before(&h[i], &h[p])) break;
        tok_merge t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}
static tok_merge heap_pop(tok_scratch *sc) {
    tok_merge *h = sc->heap, top = h[0];
    h[0] = h[--sc->nheap];
    size_t i = 0, n = sc->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && merge_before(&h[l], &h[m])) m = l;
        if (r < n && merge_before(&h[r], &h[m])) m = r;
        if (m == i) break;
        tok_merge t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
    return top;
}

/* HF Word::merge_all without dropout. */
static void merge_all(const tok_bpe *m, tok_scratch *sc, size_t n) {
    tok_sym *s = sc->sym;
    sc->nheap = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const tok_pslot *p = tok_pairmap_get(&m->merges, s[i].c, s[i + 1].c);
        if (p) heap_push(sc, (uint32_t)p->rank, (uint32_t)i, p->id);
    }
    while (sc->nheap) {
        tok_merge top = heap_pop(sc);
        s = sc->sym;
        tok_sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next == -1) continue;
        int32_t next_pos = cur->next;
        tok_sym right = s[next_pos];
        /* Stale entries are recognised by the merged id only, exactly as word.rs does. */
        const tok_pslot *p = tok_pairmap_get(&m->merges, cur->c, right.c);
        if (!p || p->id != top.id) continue;
        cur->c = top.id;
        cur->len += right.len;
        cur->next = right.next;
        s[next_pos].len = 0;
        if (right.next > -1 && (size_t)right.next < n) s[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            p = tok_pairmap_get(&m->merges, s[cur->prev].c, cur->c);
            if (p) heap_push(sc, (uint32_t)p->rank, (uint32_t)cur->prev, p->id);
            cur = &sc->sym[top.pos];
        }
        if (cur->next > -1 && (size_t)cur->next < n) {
            p = tok_pairmap_get(&m->merges, cur->c, sc->sym[cur->next].c);
            if (p) heap_push(sc, (uint32_t)p->rank, top.pos, p->id);
        }
    }
}

hs_status tok_bpe_word(const tok_bpe *m, const char *w, size_t n, tok_scratch *sc, tok_ivec *out, const char *where) {
    if (n == 0) return HS_OK;
    if (m->ignore_merges) {
        int id = tok_strmap_get(&m->vocab, w, n);
        if (id >= 0) { tok_ivec_push(out, id); return HS_OK; }
    }
    size_t nsym = 0;
    bool unk_pending = false;
    int unk_id = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = (size_t)hs_utf8_len((unsigned char)w[i]);
        if (cl > n - i) cl = n - i;
        bool first = i == 0, last = i + cl == n;
        const char *s = w + i;
        size_t sl = cl;
        if ((!first && m->prefix_len) || (last && m->suffix_len)) {
            sc->word.n = 0;
            if (!first) tok_buf_put(&sc->word, m->prefix, m->prefix_len);
            tok_buf_put(&sc->word, w + i, cl);
            if (last) tok_buf_put(&sc->word, m->suffix, m->suffix_len);
            s = sc->word.p; sl = sc->word.n;
        }
        int id = tok_strmap_get(&m->vocab, s, sl);
        if (id >= 0) {
            if (unk_pending) { sym_add(sc, &nsym, unk_id, unk_len); unk_pending = false; }
            sym_add(sc, &nsym, id, (uint32_t)cl);
        } else {
            bool done = false;
            if (m->byte_fallback) {
                size_t k = 0;
                while (k < sl && m->byte_id[(unsigned char)s[k]] >= 0) k++;
                if (k == sl) {
                    /* HF adds the byte tokens without flushing a pending unk first; keep that order. */
                    for (k = 0; k < sl; k++) sym_add(sc, &nsym, m->byte_id[(unsigned char)s[k]], 1);
                    done = true;
                }
            }
            if (!done && m->unk) {
                if (unk_pending && m->fuse_unk) {
                    unk_len += (uint32_t)cl;
                } else {
                    if (unk_pending) sym_add(sc, &nsym, unk_id, unk_len);
                    unk_id = tok_strmap_get(&m->vocab, m->unk, m->unk_len);
                    if (unk_id < 0)
                        return tok_err(HS_EBADINPUT, where, "add unk_token to model.vocab or set it to null",
                                       "unk_token \"%.40s\" is needed but not in the vocabulary", m->unk);
                    unk_pending = true;
                    unk_len = (uint32_t)cl;
                }
            }
        }
        i += cl;
    }
    if (unk_pending) sym_add(sc, &nsym, unk_id, unk_len);
    merge_all(m, sc, nsym);
    for (size_t i = 0; i < nsym; i++)
        if (sc->sym[i].len) tok_ivec_push(out, sc->sym[i].c);
    return HS_OK;
}
