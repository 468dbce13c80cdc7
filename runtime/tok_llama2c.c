/* tok_llama2c.c — llama2.c tokenizer.bin: load, encode as run.c's encode(), decode as run.c's decode().
 *
 * Why: llama2.c checkpoints (stories260K, ...) ship their own SentencePiece export, and run.c's
 * greedy output is the reference a runtime must reproduce, so encoding follows run.c step by step:
 * BOS, a dummy " " when the text is non-empty, one lookup per UTF-8 code point with byte+3 fallback,
 * then "merge the adjacent pair whose concatenation has the highest score, leftmost on ties" until
 * no pair is in the vocabulary.
 * Constraints: run.c's merge loop is O(n^2) over the whole text; this one is an equivalent
 * priority queue (O(n log n)). The file is untrusted: every length is checked against what is left.
 * Pieces are C strings as in run.c (an embedded NUL ends the piece); duplicate pieces resolve to the
 * lowest id (run.c's bsearch would pick one arbitrarily).
 */
#include "tok_internal.h"
#include <ctype.h>
#include <stdlib.h>

struct tok_l2c {
    int n, max_len;
    char **piece;       /* (n) NUL-terminated */
    uint32_t *plen;     /* (n) strlen(piece) */
    float *score;       /* (n) */
    tok_strmap map;     /* piece -> lowest id */
    hs_arena ar;
};

void tok_l2c_free(tok_l2c *t) {
    if (!t) return;
    free(t->piece); free(t->plen); free(t->score);
    tok_strmap_free(&t->map);
    hs_arena_free(&t->ar);
    free(t);
}

static int32_t rd_i32(const char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static float rd_f32(const char *p) { float v; memcpy(&v, p, 4); return v; }

hs_status tok_l2c_load(const char *path, int vocab_size, tok_l2c **out) {
    *out = NULL;
    if (vocab_size <= 0 || vocab_size > (1 << 24))
        return tok_err(HS_EBADINPUT, path, "pass the vocab_size from the checkpoint header",
                       "vocab_size %d is out of range (1..16777216)", vocab_size);
    char *buf;
    size_t len;
    hs_status st = hs_read_file("tokenizer", path, &buf, &len);
    if (st) return st;
    tok_l2c *t = hs_xcalloc(1, sizeof *t);
    hs_arena_init(&t->ar, 1u << 16);
    t->n = vocab_size;
    t->piece = hs_xcalloc((size_t)vocab_size, sizeof *t->piece);
    t->plen = hs_xcalloc((size_t)vocab_size, sizeof *t->plen);
    t->score = hs_xcalloc((size_t)vocab_size, sizeof *t->score);
    tok_strmap_init(&t->map, (size_t)vocab_size);
    size_t pos = 4;
    if (len < 4) {
        st = tok_err(HS_EBADINPUT, path, "the file is damaged; re-export it with llama2.c's tokenizer.py",
                     "tokenizer.bin is truncated: %zu bytes, no max_token_length header", len);
        goto fail;
    }
    t->max_len = rd_i32(buf);
    if (t->max_len < 0) {
        st = tok_err(HS_EBADINPUT, path, "the file is damaged; re-export it with llama2.c's tokenizer.py",
                     "tokenizer.bin max_token_length is negative (%d)", t->max_len);
        goto fail;
    }
    for (int i = 0; i < vocab_size; i++) {
        if (len - pos < 8) {
            st = tok_err(HS_EBADINPUT, path, "check vocab_size, or re-export the file with llama2.c's tokenizer.py",
                         "tokenizer.bin is truncated: piece %d of %d starts at byte %zu of %zu", i, vocab_size, pos, len);
            goto fail;
        }
        t->score[i] = rd_f32(buf + pos);
        int32_t l = rd_i32(buf + pos + 4);
        pos += 8;
        if (l < 0) {
            st = tok_err(HS_EBADINPUT, path, "the file is damaged; re-export it with llama2.c's tokenizer.py",
                         "tokenizer.bin piece %d has negative length %d (byte %zu)", i, (int)l, pos - 4);
            goto fail;
        }
        if ((size_t)l > len - pos) {
            st = tok_err(HS_EBADINPUT, path, "check vocab_size, or re-export the file with llama2.c's tokenizer.py",
                         "tokenizer.bin piece %d has length %d but only %zu bytes remain (byte %zu)", i, (int)l, len - pos,
                         pos - 4);
            goto fail;
        }
        char *p = hs_arena_alloc(&t->ar, (size_t)l + 1);
        memcpy(p, buf + pos, (size_t)l);
        p[l] = '\0';
        pos += (size_t)l;
        t->piece[i] = p;
        t->plen[i] = (uint32_t)strlen(p);
        tok_strmap_put(&t->map, p, t->plen[i], i);   /* first (lowest) id wins on duplicates */
    }
    free(buf);
    *out = t;
    return HS_OK;
fail:
    free(buf);
    tok_l2c_free(t);
    return st;
}

int tok_l2c_vocab_size(const tok_l2c *t) { return t->n; }
const char *tok_l2c_piece(const tok_l2c *t, int id) { return id >= 0 && id < t->n ? t->piece[id] : NULL; }

/* ------------------------------------------------------------------ encode */
typedef struct { float score; uint32_t left, right, vl, vr; int32_t id; } l2c_cand;
typedef struct {
    int32_t *id, *prev, *next;
    uint32_t *ver;
    l2c_cand *heap; size_t nheap, capheap;
    tok_buf cat;
} l2c_work;

/* Max-heap on score, then min on left position: run.c keeps the first (leftmost) best score. */
static inline bool cand_before(const l2c_cand *a, const l2c_cand *b) {
    return a->score != b->score ? a->score > b->score : a->left < b->left;
}
static void cand_push(l2c_work *w, l2c_cand c) {
    if (w->nheap == w->capheap) {
        w->capheap = w->capheap ? w->capheap * 2 : 256;
        w->heap = hs_xrealloc(w->heap, w->capheap * sizeof *w->heap);
    }
    size_t i = w->nheap++;
    w->heap[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&w->heap[i], &w->heap[p])) break;
        l2c_cand tmp = w->heap[i]; w->heap[i] = w->heap[p]; w->heap[p] = tmp;
        i = p;
    }
}
static l2c_cand cand_pop(l2c_work *w) {
    l2c_cand top = w->heap[0];
    w->heap[0] = w->heap[--w->nheap];
    for (size_t i = 0, n = w->nheap;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cand_before(&w->heap[l], &w->heap[m])) m = l;
        if (r < n && cand_before(&w->heap[r], &w->heap[m])) m = r;
        if (m == i) break;
        l2c_cand tmp = w->heap[i]; w->heap[i] = w->heap[m]; w->heap[m] = tmp;
        i = m;
    }
    return top;
}

/* Queue the pair (i, next[i]) if its concatenation is a piece run.c could pick (score > -1e10). */
static void consider(const tok_l2c *t, l2c_work *w, int32_t i) {
    if (i < 0 || w->next[i] < 0) return;
    int32_t j = w->next[i];
    w->cat.n = 0;
    tok_buf_put(&w->cat, t->piece[w->id[i]], t->plen[w->id[i]]);
    tok_buf_put(&w->cat, t->piece[w->id[j]], t->plen[w->id[j]]);
    int id = tok_strmap_get(&t->map, w->cat.p ? w->cat.p : "", w->cat.n);
    if (id < 0) return;
    float s = t->score[id];
    if (!(s > -1e10f)) return;   /* run.c starts from best_score = -1e10 and needs strictly greater; NaN never wins */
    cand_push(w, (l2c_cand){ s, (uint32_t)i, (uint32_t)j, w->ver[i], w->ver[j], id });
}

hs_status tok_l2c_encode(const tok_l2c *t, const char *text, size_t len, bool bos, tok_ivec *out, const char *where) {
    size_t n = strnlen(text, len);   /* run.c sees a C string */
    tok_ivec seq = {0};
    if (bos) tok_ivec_push(&seq, 1);
    if (n > 0) {
        int sp = tok_strmap_get(&t->map, " ", 1);
        if (sp < 0) {
            free(seq.p);
            return tok_err(HS_EBADINPUT, where, "use a tokenizer.bin exported by llama2.c (it has a \" \" piece)",
                           "tokenizer.bin has no \" \" piece for the dummy prefix");
        }
        tok_ivec_push(&seq, sp);
    }
    for (size_t i = 0; i < n;) {
        size_t cl = (size_t)hs_utf8_len((unsigned char)text[i]);
        if (cl > n - i) cl = n - i;
        int id = tok_strmap_get(&t->map, text + i, cl);
        if (id >= 0) {
            tok_ivec_push(&seq, id);
        } else {
            for (size_t k = 0; k < cl; k++) {
                int b = (unsigned char)text[i + k] + 3;   /* run.c: the first 3 ids are <unk>, <s>, </s> */
                if (b >= t->n) {
                    free(seq.p);
                    return tok_err(HS_EBADINPUT, where, "use a tokenizer.bin with the 256 byte pieces at ids 3..258",
                                   "byte fallback id %d is outside the vocabulary of %d", b, t->n);
                }
                tok_ivec_push(&seq, b);
            }
        }
        i += cl;
    }
    size_t m = seq.n;
    l2c_work w = {0};
    w.id = seq.p;
    w.prev = hs_xmalloc((m + 1) * sizeof(int32_t));
    w.next = hs_xmalloc((m + 1) * sizeof(int32_t));
    w.ver = hs_xcalloc(m + 1, sizeof(uint32_t));
    for (size_t i = 0; i < m; i++) {
        w.prev[i] = (int32_t)i - 1;
        w.next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < m; i++) consider(t, &w, (int32_t)i);
    while (w.nheap) {
        l2c_cand c = cand_pop(&w);
        int32_t i = (int32_t)c.left, j = (int32_t)c.right;
        if (w.next[i] != j || w.ver[i] != c.vl || w.ver[j] != c.vr || w.id[i] < 0 || w.id[j] < 0) continue;
        w.id[i] = c.id;
        w.ver[i]++;
        w.id[j] = -1;   /* removed */
        w.next[i] = w.next[j];
        if (w.next[j] >= 0) w.prev[w.next[j]] = i;
        consider(t, &w, w.prev[i]);
        consider(t, &w, i);
    }
    for (size_t i = 0; i < m; i++)
        if (w.id[i] >= 0) tok_ivec_push(out, w.id[i]);
    free(seq.p); free(w.prev); free(w.next); free(w.ver); free(w.heap); free(w.cat.p);
    return HS_OK;
}

/* ------------------------------------------------------------------ decode */
/* sscanf(piece, "<0x%02hhX>", &b) == 1: skips white space, optional sign, 1-2 hex digits. */
static bool byte_piece(const char *p, unsigned char *out) {
    if (strncmp(p, "<0x", 3)) return false;
    const char *q = p + 3;
    while (isspace((unsigned char)*q)) q++;
    int width = 2, digits = 0;
    bool neg = false;
    unsigned v = 0;
    if (*q == '+' || *q == '-') { neg = *q == '-'; q++; width--; }
    for (; width > 0 && isxdigit((unsigned char)*q); q++, width--, digits++)
        v = v * 16 + (unsigned)(isdigit((unsigned char)*q) ? *q - '0' : (tolower((unsigned char)*q) - 'a' + 10));
    if (!digits) return false;
    *out = (unsigned char)(neg ? 0u - v : v);
    return true;
}

hs_status tok_l2c_decode(const tok_l2c *t, const int *ids, int n, tok_buf *out) {
    for (int k = 0; k < n; k++) {
        int id = ids[k];
        if (id == 1) continue;   /* run.c never prints BOS (generation stops on it) */
        const char *p = t->piece[id];
        if (k > 0 && ids[k - 1] == 1 && p[0] == ' ') p++;
        unsigned char b;
        if (byte_piece(p, &b)) tok_buf_putc(out, (char)b);
        else tok_buf_put(out, p, strlen(p));
    }
    return HS_OK;
}
