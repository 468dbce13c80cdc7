/* tok_pretok.c — normalizers, pre-tokenizers and the regex engine behind them.
 *
 * Why: HF `tokenizers` cuts text into pre-tokens before BPE sees it, and ids only match when the cuts
 * match: same regex (Oniguruma there, PCRE2 here with UTF+UCP and ^/$ as line anchors like Onig),
 * same find_iter treatment of empty matches, same SplitDelimiterBehavior folding, same Metaspace
 * replace-then-prepend order and prepend_scheme "first" rule (only the piece that starts at byte 0 of
 * the text between added tokens gets the ▁).
 * Constraints: normalizers that need Unicode tables we do not have (NFC, NFKC, Lowercase, ...) are
 * implemented only where they are provably the identity / ASCII-only, and refuse other text with a
 * clear error instead of producing wrong ids.
 */
#include "tok_internal.h"
#include <stdlib.h>

/* ------------------------------------------------------------------ scratch */
void tok_scratch_init(tok_scratch *sc) {
    memset(sc, 0, sizeof *sc);
    sc->md = pcre2_match_data_create(1, NULL);
    HS_ASSERT(sc->md);
}
void tok_scratch_free(tok_scratch *sc) {
    pcre2_match_data_free(sc->md);
    for (int i = 0; i < 2; i++) { free(sc->st[i].text.p); free(sc->st[i].p); free(sc->norm[i].p); }
    free(sc->sp); free(sc->sp2); free(sc->sym); free(sc->heap); free(sc->word.p);
    memset(sc, 0, sizeof *sc);
}
void tok_stage_push(tok_stage *st, size_t off, size_t len, size_t zw, bool at_origin) {
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->p = hs_xrealloc(st->p, st->cap * sizeof *st->p);
    }
    st->p[st->n++] = (tok_piece){ off, len, zw < len ? zw : len, at_origin };
}
static void span_push(tok_span **v, size_t *n, size_t *cap, size_t s, size_t e, bool m) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = hs_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = (tok_span){ s, e, m };
}

/* ------------------------------------------------------------------ regex */
/* Oniguruma's Unicode classes, spelled out for PCRE2 10.42 whose UCP \s also takes U+180E and whose
 * \w lacks marks; \h is a hex digit and \v the VT char in Onig's Ruby syntax. */
#define ONIG_SPACE "\\t-\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define ONIG_WORD "\\p{L}\\p{M}\\p{N}\\p{Pc}"
#define ONIG_HEX "0-9a-fA-F"

static void translate_onig(const char *p, size_t n, tok_buf *out) {
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            if (e == 'Q') {   /* \Q...\E is literal text: copy it untouched */
                tok_buf_put(out, "\\Q", 2);
                while (i + 1 < n && !(p[i + 1] == '\\' && i + 2 < n && p[i + 2] == 'E')) tok_buf_putc(out, p[++i]);
                continue;
            }
            const char *set = e == 's' || e == 'S' ? ONIG_SPACE : e == 'w' || e == 'W' ? ONIG_WORD
                            : e == 'h' || e == 'H' ? ONIG_HEX : NULL;
            if (set && in_class && (e == 's' || e == 'w' || e == 'h')) { tok_buf_put(out, set, strlen(set)); continue; }
            if (set && !in_class) {
                tok_buf_put(out, e == 's' || e == 'w' || e == 'h' ? "[" : "[^", e == 's' || e == 'w' || e == 'h' ? 1 : 2);
                tok_buf_put(out, set, strlen(set));
                tok_buf_putc(out, ']');
                continue;
            }
            if (e == 'v') { tok_buf_put(out, "\\x0B", 4); continue; }
            tok_buf_putc(out, '\\');
            tok_buf_putc(out, e);
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            tok_buf_putc(out, c);
            if (i + 1 < n && p[i + 1] == '^') tok_buf_putc(out, p[++i]);
            if (i + 1 < n && p[i + 1] == ']') tok_buf_putc(out, p[++i]);   /* a leading ] is literal */
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {   /* [:alpha:] */
            const char *end = memmem(p + i + 2, n - i - 2, ":]", 2);
            if (end) { size_t l = (size_t)(end - (p + i)) + 2; tok_buf_put(out, p + i, l); i += l - 1; continue; }
        }
        if (in_class && c == ']') in_class = false;
        tok_buf_putc(out, c);
    }
}

hs_status tok_regex_compile(tok_regex *re, const char *pat, size_t len, bool literal, const char *where) {
    int err;
    PCRE2_SIZE off;
    /* Oniguruma (HF's engine) treats ^ and $ as line anchors; PCRE2 needs MULTILINE for that. */
    uint32_t opt = PCRE2_UTF | (literal ? PCRE2_LITERAL : (PCRE2_UCP | PCRE2_MULTILINE));
    tok_buf tr = {0};
    if (!literal) { translate_onig(pat, len, &tr); tok_buf_putc(&tr, '\0'); }
    re->code = pcre2_compile((PCRE2_SPTR)(literal ? pat : tr.p), literal ? len : tr.n - 1, opt, &err, &off, NULL);
    free(tr.p);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return tok_err(HS_EUNSUPPORTED, where, "use a regex PCRE2 understands (Perl/Oniguruma common syntax)",
                       "pattern \"%.60s\" does not compile: %s at offset %zu", pat, (const char *)msg, (size_t)off);
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);   /* failure is fine: the interpreter runs instead */
    return HS_OK;
}
void tok_regex_free(tok_regex *re) { pcre2_code_free(re->code); re->code = NULL; }

static int regex_match(const tok_regex *re, const char *s, size_t n, size_t from, tok_scratch *sc) {
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, sc->md, NULL);
    /* JIT's fixed stack can run out on long inputs; the interpreter uses the heap instead. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, sc->md, NULL);
    return rc;
}

hs_status tok_regex_spans(const tok_regex *re, const char *s, size_t n, tok_scratch *sc, const char *where) {
    sc->nsp = 0;
    if (n == 0) { span_push(&sc->sp, &sc->nsp, &sc->capsp, 0, 0, false); return HS_OK; }
    size_t last_end = 0, prev = 0, last_match_end = 0;
    bool have_last = false;
    while (last_end <= n) {
        int rc = regex_match(re, s, n, last_end, sc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return tok_err(HS_EBADINPUT, where, "split the text into smaller pieces",
                           "regex matching failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > me || me > n || ms < prev) ms = me;   /* \K tricks: treat as an empty match */
        /* Onig's find_iter: an empty match right where the previous match ended is skipped. */
        if (ms == me && have_last && last_match_end == me) {
            last_end += last_end < n ? (size_t)hs_utf8_len((unsigned char)s[last_end]) : 1;
            continue;
        }
        last_end = me; last_match_end = me; have_last = true;
        if (prev != ms) span_push(&sc->sp, &sc->nsp, &sc->capsp, prev, ms, false);
        span_push(&sc->sp, &sc->nsp, &sc->capsp, ms, me, true);
        prev = me;
    }
    if (prev != n) span_push(&sc->sp, &sc->nsp, &sc->capsp, prev, n, false);
    return HS_OK;
}

/* HF NormalizedString::split: fold sc->sp (m = match) into sc->sp2 (m = remove). */
static void apply_behavior(tok_scratch *sc, int behavior) {
    tok_span *in = sc->sp;
    size_t n = sc->nsp;
    sc->nsp2 = 0;
    bool prev_match = false;
    switch (behavior) {
    case TB_ISOLATED:
        for (size_t i = 0; i < n; i++) span_push(&sc->sp2, &sc->nsp2, &sc->capsp2, in[i].s, in[i].e, false);
        break;
    case TB_REMOVED:
        for (size_t i = 0; i < n; i++) span_push(&sc->sp2, &sc->nsp2, &sc->capsp2, in[i].s, in[i].e, in[i].m);
        break;
    case TB_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            if (in[i].m && !prev_match && sc->nsp2) sc->sp2[sc->nsp2 - 1].e = in[i].e;
            else span_push(&sc->sp2, &sc->nsp2, &sc->capsp2, in[i].s, in[i].e, false);
            prev_match = in[i].m;
        }
        break;
    case TB_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            if (in[i].m == prev_match && sc->nsp2) sc->sp2[sc->nsp2 - 1].e = in[i].e;
            else span_push(&sc->sp2, &sc->nsp2, &sc->capsp2, in[i].s, in[i].e, false);
            prev_match = in[i].m;
        }
        break;
    default:   /* TB_MERGED_NEXT: the same fold run backwards */
        for (size_t i = n; i-- > 0;) {
            if (in[i].m && !prev_match && sc->nsp2) sc->sp2[sc->nsp2 - 1].s = in[i].s;
            else span_push(&sc->sp2, &sc->nsp2, &sc->capsp2, in[i].s, in[i].e, false);
            prev_match = in[i].m;
        }
        for (size_t i = 0, j = sc->nsp2; i + 1 < j; i++, j--) {
            tok_span t = sc->sp2[i]; sc->sp2[i] = sc->sp2[j - 1]; sc->sp2[j - 1] = t;
        }
        break;
    }
}

/* ------------------------------------------------------------------ normalizers */
static hs_status parse_pattern(const cJSON *j, const char *what, const char *where, char **pat, size_t *pat_len,
                               bool *is_regex, tok_regex *re) {
    *pat = NULL;
    *pat_len = 0;
    *is_regex = false;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const cJSON *s = p ? cJSON_GetObjectItemCaseSensitive(p, "String") : NULL;
    const cJSON *r = p ? cJSON_GetObjectItemCaseSensitive(p, "Regex") : NULL;
    if (!cJSON_IsObject(p) || (!cJSON_IsString(s) && !cJSON_IsString(r)))
        return tok_err(HS_EBADINPUT, where, "write pattern as {\"String\": ...} or {\"Regex\": ...}",
                       "%s has no valid pattern", what);
    *is_regex = !cJSON_IsString(s);
    const char *v = *is_regex ? r->valuestring : s->valuestring;
    *pat_len = strlen(v);
    *pat = hs_xstrdup(v);
    if (*pat_len == 0)
        return tok_err(HS_EUNSUPPORTED, where, "use a non-empty pattern", "%s has an empty pattern", what);
    if (*is_regex) return tok_regex_compile(re, v, *pat_len, false, where);
    return HS_OK;
}

static tok_norm *norm_new(tok_norm **v, int *n, int *cap) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = hs_xrealloc(*v, (size_t)*cap * sizeof **v);
    }
    tok_norm *x = &(*v)[(*n)++];
    memset(x, 0, sizeof *x);
    return x;
}

static hs_status norm_parse_one(const cJSON *j, const char *where, tok_norm **v, int *n, int *cap) {
    if (!cJSON_IsObject(j))
        return tok_err(HS_EBADINPUT, where, "each normalizer is an object with a \"type\"", "normalizer is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(t))
        return tok_err(HS_EBADINPUT, where, "each normalizer needs a \"type\" string", "normalizer without a type");
    const char *ty = t->valuestring;
    hs_status st;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(arr))
            return tok_err(HS_EBADINPUT, where, "a Sequence normalizer needs \"normalizers\": [...]",
                           "normalizer Sequence has no normalizers array");
        for (const cJSON *it = arr->child; it; it = it->next)
            if ((st = norm_parse_one(it, where, v, n, cap))) return st;
        return HS_OK;
    }
    tok_norm *x = norm_new(v, n, cap);
    if (!strcmp(ty, "Prepend")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prepend");
        if (!cJSON_IsString(p))
            return tok_err(HS_EBADINPUT, where, "Prepend needs \"prepend\": \"...\"", "normalizer Prepend has no prepend string");
        x->kind = TN_PREPEND;
        x->str = hs_xstrdup(p->valuestring);
        x->str_len = strlen(x->str);
        return HS_OK;
    }
    if (!strcmp(ty, "Replace")) {
        x->kind = TN_REPLACE;
        if ((st = parse_pattern(j, "normalizer Replace", where, &x->pat, &x->pat_len, &x->is_regex, &x->re))) return st;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (!cJSON_IsString(c))
            return tok_err(HS_EBADINPUT, where, "Replace needs \"content\": \"...\"", "normalizer Replace has no content");
        x->str = hs_xstrdup(c->valuestring);
        x->str_len = strlen(x->str);
        if (x->is_regex && strchr(x->str, '$'))
            return tok_err(HS_EUNSUPPORTED, where, "use a content without $ group references",
                           "normalizer Replace with regex group expansion (\"%.40s\") is not supported", x->str);
        return HS_OK;
    }
    if (!strcmp(ty, "Strip")) {
        x->kind = TN_STRIP;
        if ((st = tok_json_bool(j, "strip_left", true, &x->left, where))) return st;
        return tok_json_bool(j, "strip_right", true, &x->right, where);
    }
    static const struct { const char *name; int kind; } simple[] = {
        {"NFC", TN_NFC}, {"NFD", TN_NFD}, {"NFKC", TN_NFKC}, {"NFKD", TN_NFKD}, {"Lowercase", TN_LOWERCASE},
        {"ByteLevel", TN_BYTELEVEL},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (!strcmp(ty, simple[i].name)) { x->kind = simple[i].kind; return HS_OK; }
    (*n)--;
    return tok_err(HS_EUNSUPPORTED, where, "supported normalizers: Sequence, Prepend, Replace, Strip, NFC, NFD, NFKC, NFKD, Lowercase, ByteLevel",
                   "normalizer type \"%.40s\" is not supported", ty);
}

hs_status tok_norms_parse(const cJSON *j, const char *where, tok_norm **out, int *n) {
    int cap = 0;
    *out = NULL; *n = 0;
    if (!j || cJSON_IsNull(j)) return HS_OK;
    return norm_parse_one(j, where, out, n, &cap);
}

void tok_norms_free(tok_norm *v, int n) {
    for (int i = 0; i < n; i++) {
        free(v[i].str); free(v[i].pat);
        if (v[i].is_regex) tok_regex_free(&v[i].re);
    }
    free(v);
}

/* NFC is the identity on text made only of characters with NFC_Quick_Check=Yes and combining class 0.
 * Without Unicode tables we accept a conservative set of such blocks and refuse everything else. */
static bool nfc_stable(uint32_t c) {
    if (c < 0x300) return true;
    if (c >= 0x370 && c <= 0x3FF) return c != 0x374 && c != 0x37E && c != 0x387;
    if ((c >= 0x400 && c <= 0x482) || (c >= 0x48A && c <= 0x52F)) return true;
    if (c >= 0x2002 && c <= 0x206F) return true;
    if (c >= 0x20A0 && c <= 0x20BF) return true;
    if (c >= 0x2190 && c <= 0x23FF) return c != 0x2329 && c != 0x232A;
    if (c >= 0x2500 && c <= 0x27BF) return true;
    if ((c >= 0x3000 && c <= 0x3029) || (c >= 0x3030 && c <= 0x303F)) return true;
    if ((c >= 0x3041 && c <= 0x3096) || (c >= 0x309B && c <= 0x30FF)) return true;
    if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF)) return true;
    if (c >= 0xAC00 && c <= 0xD7A3) return true;
    if (c >= 0xFE00 && c <= 0xFE0F) return true;
    if (c >= 0xFF01 && c <= 0xFFEF) return true;
    if (c >= 0x1F000 && c <= 0x1FAFF) return true;
    if (c >= 0x20000 && c <= 0x2EBEF) return true;
    return false;
}

static hs_status norm_unicode(const tok_norm *x, const char *s, size_t n, tok_buf *out, const char *where) {
    static const char *names[] = { [TN_NFC] = "NFC", [TN_NFD] = "NFD", [TN_NFKC] = "NFKC", [TN_NFKD] = "NFKD",
                                   [TN_LOWERCASE] = "Lowercase" };
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t c = tok_utf8_decode((const unsigned char *)s + i, &l);
        bool ok = x->kind == TN_NFC ? nfc_stable(c) : c < 0x80;
        if (!ok)
            return tok_err(HS_EUNSUPPORTED, where,
                           "headscope implements this normalizer only where it is exact; pre-normalize the text or drop the normalizer",
                           "%s normalizer on U+%04X (byte %zu of the piece) is not implemented", names[x->kind], c, i);
        if (x->kind == TN_LOWERCASE && c >= 'A' && c <= 'Z') c += 32;
        if (x->kind == TN_LOWERCASE) tok_buf_putc(out, (char)c);
        else tok_buf_put(out, s + i, (size_t)l);
        i += (size_t)l;
    }
    return HS_OK;
}

/* Literal or regex replace-all. zw (inserted prefix) follows through: a replacement of inserted text is
 * inserted text. A match at the very start replaced by nothing moves the start off the origin. */
static hs_status norm_replace(const tok_norm *x, const char *s, size_t n, tok_scratch *sc, tok_buf *out,
                              bool *at_origin, size_t *zw, const char *where) {
    size_t pos = 0, nzw = 0;
    bool zw_done = *zw == 0;
    if (x->is_regex) {
        hs_status st = tok_regex_spans(&x->re, s, n, sc, where);
        if (st) return st;
    } else {
        sc->nsp = 0;
        for (size_t i = 0; i + x->pat_len <= n;) {
            const char *hit = memmem(s + i, n - i, x->pat, x->pat_len);
            if (!hit) break;
            size_t ms = (size_t)(hit - s);
            span_push(&sc->sp, &sc->nsp, &sc->capsp, ms, ms + x->pat_len, true);
            i = ms + x->pat_len;
        }
    }
    for (size_t k = 0; k < sc->nsp; k++) {
        tok_span sp = sc->sp[k];
        if (!sp.m) continue;
        if (!zw_done && sp.s >= *zw) { nzw = out->n + (*zw - pos); zw_done = true; }
        tok_buf_put(out, s + pos, sp.s - pos);
        if (!zw_done && sp.e > *zw) { nzw = out->n; zw_done = true; }
        if (sp.s == 0 && x->str_len == 0 && *zw == 0 && sp.e > 0) *at_origin = false;
        tok_buf_put(out, x->str, x->str_len);
        pos = sp.e;
    }
    if (!zw_done) nzw = out->n + (*zw > pos ? *zw - pos : 0);
    tok_buf_put(out, s + pos, n - pos);
    *zw = nzw;
    return HS_OK;
}

static void norm_strip(const tok_norm *x, const char *s, size_t n, tok_buf *out, bool *at_origin, size_t *zw) {
    size_t a = 0, b = n;
    if (x->left)
        while (a < n) {
            int l;
            if (!tok_is_white_space(tok_utf8_decode((const unsigned char *)s + a, &l))) break;
            a += (size_t)l;
        }
    if (x->right)
        while (b > a) {
            size_t k = b - 1;
            while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
            int l;
            if (!tok_is_white_space(tok_utf8_decode((const unsigned char *)s + k, &l))) break;
            b = k;
        }
    if (a > *zw) *at_origin = false;
    *zw = *zw > a ? *zw - a : 0;
    tok_buf_put(out, s + a, b - a);
}

hs_status tok_normalize(const tok_norm *v, int nv, const char *s, size_t n, tok_scratch *sc, tok_buf *out,
                        bool *at_origin, size_t *zw, const char *where) {
    const char *cur = s;
    size_t cn = n;
    int k = 0;
    for (int i = 0; i < nv; i++) {
        const tok_norm *x = &v[i];
        tok_buf *dst = &sc->norm[k];
        dst->n = 0;
        hs_status st = HS_OK;
        switch (x->kind) {
        case TN_PREPEND:
            if (cn) { tok_buf_put(dst, x->str, x->str_len); *zw += x->str_len; }
            tok_buf_put(dst, cur, cn);
            break;
        case TN_REPLACE: st = norm_replace(x, cur, cn, sc, dst, at_origin, zw, where); break;
        case TN_STRIP: norm_strip(x, cur, cn, dst, at_origin, zw); break;
        case TN_BYTELEVEL: {
            size_t nzw = 0;
            for (size_t j = 0; j < cn; j++) {
                if (j == *zw) nzw = dst->n;
                char u[4];
                tok_buf_put(dst, u, (size_t)tok_utf8_encode(tok_byte_char((unsigned char)cur[j]), u));
            }
            *zw = *zw >= cn ? dst->n : nzw;
            break;
        }
        default: st = norm_unicode(x, cur, cn, dst, where); break;
        }
        if (st) return st;
        cur = dst->p ? dst->p : "";
        cn = dst->n;
        k ^= 1;
    }
    out->n = 0;
    tok_buf_put(out, cur, cn);
    return HS_OK;
}

/* ------------------------------------------------------------------ pre-tokenizers */
hs_status tok_metaspace_parse(const cJSON *j, const char *where, uint32_t *rep, int *prepend, bool *split) {
    hs_status st;
    if ((st = tok_json_char(j, "replacement", 0x2581, rep, where))) return st;
    if ((st = tok_json_bool(j, "split", true, split, where))) return st;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "prepend_scheme");
    *prepend = TPS_ALWAYS;   /* serde default */
    if (ps && !cJSON_IsNull(ps)) {
        *prepend = -1;
        if (cJSON_IsString(ps)) {
            if (!strcmp(ps->valuestring, "always")) *prepend = TPS_ALWAYS;
            else if (!strcmp(ps->valuestring, "first")) *prepend = TPS_FIRST;
            else if (!strcmp(ps->valuestring, "never")) *prepend = TPS_NEVER;
        }
        if (*prepend < 0)
            return tok_err(HS_EBADINPUT, where, "prepend_scheme is \"always\", \"first\" or \"never\"",
                           "Metaspace has an invalid prepend_scheme");
    }
    /* Legacy spelling: add_prefix_space=false means never (and must not contradict prepend_scheme). */
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(j, "add_prefix_space");
    if (aps && !cJSON_IsNull(aps) && !cJSON_IsBool(aps))
        return tok_err(HS_EBADINPUT, where, "add_prefix_space is true or false", "Metaspace add_prefix_space is not a bool");
    if (cJSON_IsFalse(aps)) {
        if (*prepend != TPS_NEVER && ps && !cJSON_IsNull(ps))
            return tok_err(HS_EBADINPUT, where, "drop add_prefix_space or make it agree with prepend_scheme",
                           "Metaspace add_prefix_space does not match declared prepend_scheme");
        *prepend = TPS_NEVER;
    }
    return HS_OK;
}

static hs_status pretok_parse_one(const cJSON *j, const char *where, tok_regex *gpt2, tok_pretok **v, int *n, int *cap) {
    if (!cJSON_IsObject(j))
        return tok_err(HS_EBADINPUT, where, "each pre_tokenizer is an object with a \"type\"", "pre_tokenizer is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(t))
        return tok_err(HS_EBADINPUT, where, "each pre_tokenizer needs a \"type\" string", "pre_tokenizer without a type");
    const char *ty = t->valuestring;
    hs_status st;
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(arr))
            return tok_err(HS_EBADINPUT, where, "a Sequence pre_tokenizer needs \"pretokenizers\": [...]",
                           "pre_tokenizer Sequence has no pretokenizers array");
        for (const cJSON *it = arr->child; it; it = it->next)
            if ((st = pretok_parse_one(it, where, gpt2, v, n, cap))) return st;
        return HS_OK;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *v = hs_xrealloc(*v, (size_t)*cap * sizeof **v);
    }
    tok_pretok *x = &(*v)[*n];
    memset(x, 0, sizeof *x);
    if (!strcmp(ty, "ByteLevel")) {
        x->kind = TP_BYTELEVEL;
        if ((st = tok_json_bool(j, "add_prefix_space", true, &x->add_prefix_space, where))) return st;
        if ((st = tok_json_bool(j, "use_regex", true, &x->use_regex, where))) return st;
        if (x->use_regex && !gpt2->code) {
            static const char re[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
            if ((st = tok_regex_compile(gpt2, re, sizeof re - 1, false, where))) return st;
        }
        x->re.code = gpt2->code;   /* borrowed: freed with the tokenizer */
        (*n)++;
        return HS_OK;
    }
    if (!strcmp(ty, "Split")) {
        x->kind = TP_SPLIT;
        char *pat = NULL; size_t pat_len = 0; bool is_regex = false;
        st = parse_pattern(j, "pre_tokenizer Split", where, &pat, &pat_len, &is_regex, &x->re);
        if (!st && !is_regex) st = tok_regex_compile(&x->re, pat, pat_len, true, where);
        free(pat);
        if (st) { tok_regex_free(&x->re); return st; }
        (*n)++;   /* owns x->re from here on */
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "behavior");
        static const char *names[] = { "Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous" };
        x->behavior = -1;
        for (int i = 0; i < 5; i++)
            if (cJSON_IsString(b) && !strcmp(b->valuestring, names[i])) x->behavior = i;
        if (x->behavior < 0)
            return tok_err(HS_EBADINPUT, where, "behavior is Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous",
                           "pre_tokenizer Split has no valid behavior");
        return tok_json_bool(j, "invert", false, &x->invert, where);
    }
    if (!strcmp(ty, "Metaspace")) {
        x->kind = TP_METASPACE;
        if ((st = tok_metaspace_parse(j, where, &x->rep, &x->prepend, &x->split))) return st;
        x->rep_len = tok_utf8_encode(x->rep, x->rep_s);
        (*n)++;
        return HS_OK;
    }
    return tok_err(HS_EUNSUPPORTED, where, "supported pre_tokenizers: ByteLevel, Split, Metaspace, Sequence",
                   "pre_tokenizer type \"%.40s\" is not supported", ty);
}

hs_status tok_pretoks_parse(const cJSON *j, const char *where, tok_regex *gpt2, tok_pretok **out, int *n) {
    int cap = 0;
    *out = NULL; *n = 0;
    if (!j || cJSON_IsNull(j)) return HS_OK;
    return pretok_parse_one(j, where, gpt2, out, n, &cap);
}

void tok_pretoks_free(tok_pretok *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i].kind == TP_SPLIT) tok_regex_free(&v[i].re);
    free(v);
}

/* Sub-piece [s,e) of a piece: it keeps the origin only if it starts inside (or right after) the
 * inserted prefix, whose bytes all map to the piece's original start. */
static void push_sub(tok_stage *out, const char *t, size_t s, size_t e, bool at_origin, size_t zw) {
    if (e <= s) return;
    size_t off = out->text.n;
    tok_buf_put(&out->text, t + s, e - s);
    tok_stage_push(out, off, e - s, s < zw ? zw - s : 0, at_origin && s <= zw);
}

static hs_status pretok_bytelevel(const tok_pretok *x, const char *t, size_t n, bool at_origin, size_t zw,
                                  tok_scratch *sc, tok_stage *out, const char *where) {
    if (x->add_prefix_space && t[0] != ' ') {
        sc->word.n = 0;
        tok_buf_putc(&sc->word, ' ');
        tok_buf_put(&sc->word, t, n);
        t = sc->word.p; n++; zw++;
    }
    if (x->use_regex) {
        hs_status st = tok_regex_spans(&x->re, t, n, sc, where);
        if (st) return st;
    } else {
        sc->nsp = 0;
        span_push(&sc->sp, &sc->nsp, &sc->capsp, 0, n, false);
    }
    for (size_t k = 0; k < sc->nsp; k++) {
        size_t s = sc->sp[k].s, e = sc->sp[k].e;
        if (e <= s) continue;
        size_t pzw = s < zw ? zw - s : 0, off = out->text.n, nzw = 0;
        for (size_t j = s; j < e; j++) {
            if (j - s == pzw) nzw = out->text.n - off;
            char u[4];
            tok_buf_put(&out->text, u, (size_t)tok_utf8_encode(tok_byte_char((unsigned char)t[j]), u));
        }
        if (pzw >= e - s) nzw = out->text.n - off;
        tok_stage_push(out, off, out->text.n - off, nzw, at_origin && s <= zw);
    }
    return HS_OK;
}

static hs_status pretok_split(const tok_pretok *x, const char *t, size_t n, bool at_origin, size_t zw,
                              tok_scratch *sc, tok_stage *out, const char *where) {
    hs_status st = tok_regex_spans(&x->re, t, n, sc, where);
    if (st) return st;
    if (x->invert)
        for (size_t k = 0; k < sc->nsp; k++) sc->sp[k].m = !sc->sp[k].m;
    apply_behavior(sc, x->behavior);
    for (size_t k = 0; k < sc->nsp2; k++)
        if (!sc->sp2[k].m) push_sub(out, t, sc->sp2[k].s, sc->sp2[k].e, at_origin, zw);
    return HS_OK;
}

static void pretok_metaspace(const tok_pretok *x, const char *t, size_t n, bool at_origin, size_t zw,
                             tok_scratch *sc, tok_stage *out) {
    bool starts = t[0] == ' ' || ((size_t)x->rep_len <= n && !memcmp(t, x->rep_s, (size_t)x->rep_len));
    bool prepend = !starts && (x->prepend == TPS_ALWAYS || (x->prepend == TPS_FIRST && at_origin));
    sc->word.n = 0;
    size_t nzw = 0;
    if (prepend) { tok_buf_put(&sc->word, x->rep_s, (size_t)x->rep_len); nzw = (size_t)x->rep_len; }
    for (size_t j = 0; j < n; j++) {
        if (t[j] == ' ') tok_buf_put(&sc->word, x->rep_s, (size_t)x->rep_len);
        else tok_buf_putc(&sc->word, t[j]);
        if (j + 1 == zw) nzw = sc->word.n;
    }
    const char *w = sc->word.p;
    size_t wn = sc->word.n;
    if (!x->split) { push_sub(out, w, 0, wn, at_origin, nzw); return; }
    /* HF splits on the replacement char with MergedWithNext: each ▁ opens a new piece. */
    sc->nsp = 0;
    size_t prev = 0;
    for (size_t j = 0; j < wn;) {
        if (j + (size_t)x->rep_len <= wn && !memcmp(w + j, x->rep_s, (size_t)x->rep_len)) {
            if (prev < j) span_push(&sc->sp, &sc->nsp, &sc->capsp, prev, j, false);
            span_push(&sc->sp, &sc->nsp, &sc->capsp, j, j + (size_t)x->rep_len, true);
            j += (size_t)x->rep_len;
            prev = j;
        } else {
            j += (size_t)hs_utf8_len((unsigned char)w[j]);
        }
    }
    if (prev < wn) span_push(&sc->sp, &sc->nsp, &sc->capsp, prev, wn, false);
    apply_behavior(sc, TB_MERGED_NEXT);
    for (size_t k = 0; k < sc->nsp2; k++) push_sub(out, w, sc->sp2[k].s, sc->sp2[k].e, at_origin, nzw);
}

hs_status tok_pretokenize(const tok_pretok *v, int nv, const char *s, size_t n, bool at_origin, size_t zw,
                          tok_scratch *sc, int *which, const char *where) {
    int cur = 0;
    tok_stage *in = &sc->st[0];
    in->text.n = 0; in->n = 0;
    if (n) { tok_buf_put(&in->text, s, n); tok_stage_push(in, 0, n, zw, at_origin); }
    for (int i = 0; i < nv; i++) {
        in = &sc->st[cur];
        tok_stage *out = &sc->st[cur ^ 1];
        out->text.n = 0; out->n = 0;
        for (size_t k = 0; k < in->n; k++) {
            tok_piece p = in->p[k];
            const char *t = in->text.p + p.off;
            hs_status st = HS_OK;
            if (v[i].kind == TP_BYTELEVEL) st = pretok_bytelevel(&v[i], t, p.len, p.at_origin, p.zw, sc, out, where);
            else if (v[i].kind == TP_SPLIT) st = pretok_split(&v[i], t, p.len, p.at_origin, p.zw, sc, out, where);
            else pretok_metaspace(&v[i], t, p.len, p.at_origin, p.zw, sc, out);
            if (st) return st;
        }
        cur ^= 1;
    }
    *which = cur;
    return HS_OK;
}
