/* tok_decode.c — tokenizer.json decoders: ids -> text as HF `tokenizers` Decoder::decode does.
 *
 * Why: decoded text is what users read and compare, so it follows HF's decoders (decoders/ in tokenizers) literally,
 * including their surprises: Metaspace drops every ▁ of the first token (after Fuse that is the whole
 * text), ByteFallback turns an invalid byte run into one U+FFFD per byte, ByteLevel decodes the whole
 * byte string at once with Rust's from_utf8_lossy (one U+FFFD per maximal invalid subpart).
 * Constraints: token strings come from a validated UTF-8 tokenizer.json; each decoder maps a token
 * list to a token list (decode_chain), and the final text is their concatenation.
 */
#include "tok_internal.h"
#include <stdlib.h>

static const char REPL[] = "\xEF\xBF\xBD";   /* U+FFFD */

void tok_utf8_lossy_append(tok_buf *out, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned b = s[i];
        if (b < 0x80) { tok_buf_putc(out, (char)b); i++; continue; }
        int need;
        unsigned lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b == 0xE0) { need = 2; lo = 0xA0; }
        else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) need = 2;
        else if (b == 0xED) { need = 2; hi = 0x9F; }
        else if (b == 0xF0) { need = 3; lo = 0x90; }
        else if (b >= 0xF1 && b <= 0xF3) need = 3;
        else if (b == 0xF4) { need = 3; hi = 0x8F; }
        else { tok_buf_put(out, REPL, 3); i++; continue; }
        size_t j = i + 1;
        bool ok = j < n && s[j] >= lo && s[j] <= hi;
        if (ok) {
            j++;
            for (int k = 1; k < need && ok; k++) {
                if (j < n && (s[j] & 0xC0) == 0x80) j++;
                else ok = false;
            }
        }
        if (ok) tok_buf_put(out, str + i, j - i);
        else tok_buf_put(out, REPL, 3);   /* the maximal invalid prefix s[i..j) */
        i = j;
    }
}

/* ------------------------------------------------------------------ parsing */
static tok_dec *dec_new(tok_dec **v, int *n, int *cap) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = hs_xrealloc(*v, (size_t)*cap * sizeof **v);
    }
    tok_dec *x = &(*v)[(*n)++];
    memset(x, 0, sizeof *x);
    return x;
}

static hs_status dec_parse_one(const cJSON *j, const char *where, tok_dec **v, int *n, int *cap) {
    if (!cJSON_IsObject(j))
        return tok_err(HS_EBADINPUT, where, "each decoder is an object with a \"type\"", "decoder is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(t))
        return tok_err(HS_EBADINPUT, where, "each decoder needs a \"type\" string", "decoder without a type");
    const char *ty = t->valuestring;
    hs_status st;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(arr))
            return tok_err(HS_EBADINPUT, where, "a Sequence decoder needs \"decoders\": [...]", "decoder Sequence has no decoders array");
        for (const cJSON *it = arr->child; it; it = it->next)
            if ((st = dec_parse_one(it, where, v, n, cap))) return st;
        return HS_OK;
    }
    if (!strcmp(ty, "ByteLevel")) { dec_new(v, n, cap)->kind = TD_BYTELEVEL; return HS_OK; }
    if (!strcmp(ty, "ByteFallback")) { dec_new(v, n, cap)->kind = TD_BYTEFALLBACK; return HS_OK; }
    if (!strcmp(ty, "Fuse")) { dec_new(v, n, cap)->kind = TD_FUSE; return HS_OK; }
    if (!strcmp(ty, "Metaspace")) {
        tok_dec *x = dec_new(v, n, cap);
        bool split;
        x->kind = TD_METASPACE;
        return tok_metaspace_parse(j, where, &x->rep, &x->prepend, &split);
    }
    if (!strcmp(ty, "Strip")) {
        tok_dec *x = dec_new(v, n, cap);
        x->kind = TD_STRIP;
        if ((st = tok_json_char(j, "content", ' ', &x->strip_c, where))) return st;
        if ((st = tok_json_size(j, "start", 0, &x->start, where))) return st;
        return tok_json_size(j, "stop", 0, &x->stop, where);
    }
    if (!strcmp(ty, "Replace")) {
        tok_dec *x = dec_new(v, n, cap);
        x->kind = TD_REPLACE;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        const cJSON *s = p ? cJSON_GetObjectItemCaseSensitive(p, "String") : NULL;
        const cJSON *r = p ? cJSON_GetObjectItemCaseSensitive(p, "Regex") : NULL;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (!cJSON_IsObject(p) || (!cJSON_IsString(s) && !cJSON_IsString(r)) || !cJSON_IsString(c))
            return tok_err(HS_EBADINPUT, where, "Replace needs \"pattern\": {\"String\"|\"Regex\": ...} and \"content\"",
                           "decoder Replace is malformed");
        x->is_regex = !cJSON_IsString(s);
        x->pat = hs_xstrdup(x->is_regex ? r->valuestring : s->valuestring);
        x->pat_len = strlen(x->pat);
        x->content = hs_xstrdup(c->valuestring);
        x->content_len = strlen(x->content);
        if (x->pat_len == 0)
            return tok_err(HS_EUNSUPPORTED, where, "use a non-empty pattern", "decoder Replace has an empty pattern");
        if (x->is_regex) {
            if (strchr(x->content, '$'))
                return tok_err(HS_EUNSUPPORTED, where, "use a content without $ group references",
                               "decoder Replace with regex group expansion is not supported");
            if ((st = tok_regex_compile(&x->re, x->pat, x->pat_len, false, where))) { x->is_regex = false; return st; }
        }
        return HS_OK;
    }
    return tok_err(HS_EUNSUPPORTED, where, "supported decoders: ByteLevel, Metaspace, ByteFallback, Fuse, Replace, Strip, Sequence",
                   "decoder type \"%.40s\" is not supported", ty);
}

hs_status tok_decs_parse(const cJSON *j, const char *where, tok_dec **out, int *n, bool *present) {
    int cap = 0;
    *out = NULL; *n = 0;
    *present = j && !cJSON_IsNull(j);
    if (!*present) return HS_OK;
    return dec_parse_one(j, where, out, n, &cap);
}

void tok_decs_free(tok_dec *v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i].pat); free(v[i].content);
        if (v[i].is_regex) tok_regex_free(&v[i].re);
    }
    free(v);
}

/* ------------------------------------------------------------------ token lists */
typedef struct { tok_buf text; size_t *off; size_t n, cap; } dlist;   /* token i = text[off[i] .. off[i+1]) */

static void dl_reset(dlist *d) { d->text.n = 0; d->n = 0; }
static void dl_end_token(dlist *d) {   /* close the token whose bytes were appended since the last close */
    if (d->n + 2 > d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->off = hs_xrealloc(d->off, d->cap * sizeof *d->off);
    }
    if (d->n == 0) d->off[0] = 0;
    d->off[++d->n] = d->text.n;
}
static void dl_push(dlist *d, const char *s, size_t n) { tok_buf_put(&d->text, s, n); dl_end_token(d); }
static inline const char *dl_tok(const dlist *d, size_t i, size_t *len) {
    *len = d->off[i + 1] - d->off[i];
    return d->text.p ? d->text.p + d->off[i] : "";
}
static inline size_t char_len(const char *s, size_t i, size_t n) {
    size_t l = (size_t)hs_utf8_len((unsigned char)s[i]);
    return l > n - i ? n - i : l;
}

static void dec_bytelevel(const dlist *in, dlist *out, tok_buf *tmp) {
    tmp->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        size_t n, mark = tmp->n;
        const char *t = dl_tok(in, i, &n);
        for (size_t j = 0; j < n;) {
            int l;
            int b = tok_char_byte(tok_utf8_decode((const unsigned char *)t + j, &l));
            if (b < 0) { tmp->n = mark; tok_buf_put(tmp, t, n); break; }   /* any foreign char: raw bytes */
            tok_buf_putc(tmp, (char)b);
            j += (size_t)l;
        }
    }
    tok_utf8_lossy_append(&out->text, tmp->p, tmp->n);
    dl_end_token(out);
}

static void dec_metaspace(const tok_dec *x, const dlist *in, dlist *out) {
    char rep[4];
    int rl = tok_utf8_encode(x->rep, rep);
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *t = dl_tok(in, i, &n);
        for (size_t j = 0; j < n;) {
            size_t l = char_len(t, j, n);
            if (l == (size_t)rl && !memcmp(t + j, rep, l)) {
                if (!(i == 0 && x->prepend != TPS_NEVER)) tok_buf_putc(&out->text, ' ');
            } else {
                tok_buf_put(&out->text, t + j, l);
            }
            j += l;
        }
        dl_end_token(out);
    }
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}
static void flush_bytes(dlist *out, tok_buf *bytes) {
    if (!bytes->n) return;
    size_t bad;
    if (hs_utf8_valid(bytes->p, bytes->n, &bad)) dl_push(out, bytes->p, bytes->n);
    else for (size_t k = 0; k < bytes->n; k++) dl_push(out, REPL, 3);
    bytes->n = 0;
}
static void dec_bytefallback(const dlist *in, dlist *out, tok_buf *bytes) {
    bytes->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        size_t n;
        const char *t = dl_tok(in, i, &n);
        int v = -1;
        /* u8::from_str_radix(&t[3..5], 16): two hex digits, or '+' and one. */
        if (n == 6 && !memcmp(t, "<0x", 3) && t[5] == '>') {
            int h = hexval(t[3]), l = hexval(t[4]);
            if (h >= 0 && l >= 0) v = h * 16 + l;
            else if (t[3] == '+' && l >= 0) v = l;
        }
        if (v >= 0) { tok_buf_putc(bytes, (char)v); continue; }
        flush_bytes(out, bytes);
        dl_push(out, t, n);
    }
    flush_bytes(out, bytes);
}

static hs_status dec_replace(const tok_dec *x, const dlist *in, dlist *out, tok_scratch *sc, const char *where) {
    for (size_t i = 0; i < in->n; i++) {
        size_t n, pos = 0;
        const char *t = dl_tok(in, i, &n);
        if (x->is_regex) {
            hs_status st = tok_regex_spans(&x->re, t, n, sc, where);
            if (st) return st;
            for (size_t k = 0; k < sc->nsp; k++) {
                if (sc->sp[k].m) tok_buf_put(&out->text, x->content, x->content_len);
                else tok_buf_put(&out->text, t + sc->sp[k].s, sc->sp[k].e - sc->sp[k].s);
            }
        } else {
            while (pos + x->pat_len <= n) {
                const char *hit = memmem(t + pos, n - pos, x->pat, x->pat_len);
                if (!hit) break;
                tok_buf_put(&out->text, t + pos, (size_t)(hit - (t + pos)));
                tok_buf_put(&out->text, x->content, x->content_len);
                pos = (size_t)(hit - t) + x->pat_len;
            }
            tok_buf_put(&out->text, t + pos, n - pos);
        }
        dl_end_token(out);
    }
    return HS_OK;
}

static void dec_strip(const tok_dec *x, const dlist *in, dlist *out) {
    char c[4];
    size_t cl = (size_t)tok_utf8_encode(x->strip_c, c);
    for (size_t i = 0; i < in->n; i++) {
        size_t n, a = 0, b, nchars = 0, k = 0;
        const char *t = dl_tok(in, i, &n);
        for (size_t j = 0; j < n; j += char_len(t, j, n)) nchars++;
        for (; k < x->start && k < nchars && a + cl <= n && !memcmp(t + a, c, cl); k++) a += cl;
        size_t start_cut = k, limit = x->stop < nchars - start_cut ? x->stop : nchars - start_cut;
        b = n;
        for (k = 0; k < limit; k++) {
            size_t p = b - 1;
            while (p > 0 && ((unsigned char)t[p] & 0xC0) == 0x80) p--;
            if (b - p != cl || memcmp(t + p, c, cl)) break;
            b = p;
        }
        tok_buf_put(&out->text, t + a, b - a);
        dl_end_token(out);
    }
}

hs_status tok_decode_chain(const tok_dec *v, int nv, bool present, const char *const *tok, const uint32_t *len,
                           size_t n, tok_buf *out, const char *where) {
    out->n = 0;
    if (!present) {   /* no decoder: HF joins the tokens with spaces */
        for (size_t i = 0; i < n; i++) {
            if (i) tok_buf_putc(out, ' ');
            tok_buf_put(out, tok[i], len[i]);
        }
        return HS_OK;
    }
    dlist l[2];
    memset(l, 0, sizeof l);
    tok_buf tmp = {0};
    tok_scratch sc;
    tok_scratch_init(&sc);
    hs_status st = HS_OK;
    int cur = 0;
    for (size_t i = 0; i < n; i++) dl_push(&l[0], tok[i], len[i]);
    for (int d = 0; d < nv && !st; d++) {
        dlist *in = &l[cur], *o = &l[cur ^ 1];
        dl_reset(o);
        switch (v[d].kind) {
        case TD_BYTELEVEL: dec_bytelevel(in, o, &tmp); break;
        case TD_METASPACE: dec_metaspace(&v[d], in, o); break;
        case TD_BYTEFALLBACK: dec_bytefallback(in, o, &tmp); break;
        case TD_FUSE: tok_buf_put(&o->text, in->text.p, in->text.n); dl_end_token(o); break;
        case TD_REPLACE: st = dec_replace(&v[d], in, o, &sc, where); break;
        default: dec_strip(&v[d], in, o); break;
        }
        cur ^= 1;
    }
    if (!st) tok_buf_put(out, l[cur].text.p, l[cur].text.n);
    for (int i = 0; i < 2; i++) { free(l[i].text.p); free(l[i].off); }
    free(tmp.p);
    tok_scratch_free(&sc);
    return st;
}
