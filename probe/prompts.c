/* prompts.c — prompt sources for capture (see prompts.h). */
#include "prompts.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void push(probe_prompts *p, int *cap, probe_prompt item) {
    if (p->n == *cap) { *cap = *cap ? *cap * 2 : 64; p->items = hs_xrealloc(p->items, (size_t)*cap * sizeof *p->items); }
    p->items[p->n++] = item;
}

void probe_prompts_free(probe_prompts *p) {
    for (int i = 0; i < p->n; i++) { free(p->items[i].text); free(p->items[i].ids); }
    free(p->items);
    p->items = NULL; p->n = 0;
}

/* Unescape \n, \t, \r and \\ in place; other backslashes stay as they are. */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) {
            char c = r[1];
            if (c == 'n' || c == 't' || c == 'r' || c == '\\') { *w++ = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : '\\'; r++; continue; }
        }
        *w++ = *r;
    }
    *w = '\0';
}

static hs_status parse_jsonl_line(const char *line, size_t len, const char *path, int lineno, int vocab, probe_prompt *out) {
    cJSON *j = cJSON_ParseWithLength(line, len);
    hs_status rc = HS_EBADINPUT;
    const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
    const cJSON *ids = j ? cJSON_GetObjectItemCaseSensitive(j, "ids") : NULL;
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(j) || (!cJSON_IsString(t) && !cJSON_IsArray(ids))) {
        hs_log_error("capture", "line %d of %s is not a JSON object with \"text\" or \"ids\" — write {\"text\": \"...\"}", lineno, path);
        goto done;
    }
    if (cJSON_IsString(t)) {
        size_t bad;
        if (!hs_utf8_valid(t->valuestring, strlen(t->valuestring), &bad)) {
            hs_log_error("capture", "line %d of %s: text is not valid UTF-8 at byte %zu — re-encode the file", lineno, path, bad);
            goto done;
        }
        out->text = hs_xstrdup(t->valuestring);
    } else {
        int n = cJSON_GetArraySize(ids), k = 0;
        out->ids = hs_xmalloc((size_t)(n ? n : 1) * sizeof(int));
        const cJSON *e;
        cJSON_ArrayForEach(e, ids) {
            if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int)e->valuedouble || e->valueint < 0 || e->valueint >= vocab) {
                hs_log_error("capture", "line %d of %s: ids must be integers in 0..%d — fix the ids", lineno, path, vocab - 1);
                free(out->ids); out->ids = NULL;
                goto done;
            }
            out->ids[k++] = e->valueint;
        }
        out->n_ids = n;
        if (n == 0) { hs_log_error("capture", "line %d of %s: empty ids list — give at least one id", lineno, path); free(out->ids); out->ids = NULL; goto done; }
        char buf[48];
        snprintf(buf, sizeof buf, "ids:%d tokens", n);
        out->text = hs_xstrdup(buf);
    }
    rc = HS_OK;
done:
    cJSON_Delete(j);
    return rc;
}

hs_status probe_prompts_load(const char *path, int vocab, probe_prompts *out) {
    char *txt = NULL; size_t len = 0;
    int cap = 0, lineno = 0;
    memset(out, 0, sizeof *out);
    size_t pl = strlen(path);
    bool jsonl = pl > 6 && strcmp(path + pl - 6, ".jsonl") == 0;
    if (!jsonl && !(pl > 4 && strcmp(path + pl - 4, ".txt") == 0)) {
        hs_log_error("capture", "prompt file %s must end in .txt (one prompt per line) or .jsonl ({\"text\"|\"ids\"} per line)", path);
        return HS_EBADINPUT;
    }
    if (hs_read_file("capture", path, &txt, &len) != HS_OK) return HS_EIO;
    if (strlen(txt) != len) { hs_log_error("capture", "%s contains a NUL byte — prompt files are text", path); free(txt); return HS_EBADINPUT; }
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[--n] = '\0';
        if (n == 0) continue;
        probe_prompt p;
        if (jsonl) {
            if (parse_jsonl_line(line, n, path, lineno, vocab, &p) != HS_OK) goto fail;
        } else {
            size_t bad;
            if (!hs_utf8_valid(line, n, &bad)) {
                hs_log_error("capture", "line %d of %s is not valid UTF-8 at byte %zu — re-encode the file", lineno, path, bad);
                goto fail;
            }
            unescape(line);
            p = (probe_prompt){ hs_xstrdup(line), NULL, 0 };
        }
        push(out, &cap, p);
    }
    free(txt);
    if (out->n == 0) { hs_log_error("capture", "%s holds no prompts — add one per line", path); return HS_EBADINPUT; }
    return HS_OK;
fail:
    free(txt);
    probe_prompts_free(out);
    return HS_EBADINPUT;
}

hs_status probe_prompts_corpus(const char *path, const rt_tokenizer *tok, int window, int stride,
                               const int *prefix, int n_prefix, probe_prompts *out) {
    char *txt = NULL; size_t len = 0;
    int *ids = NULL, n = 0, cap = 0;
    memset(out, 0, sizeof *out);
    if (window <= n_prefix || stride <= 0) {
        hs_log_error("capture", "--window must exceed the %d prefix token(s) and --stride must be positive", n_prefix);
        return HS_EBADINPUT;
    }
    if (hs_read_file("capture", path, &txt, &len) != HS_OK) return HS_EIO;
    hs_status rc = rt_tokenizer_encode(tok, txt, len, false, &ids, &n);
    free(txt);
    if (rc != HS_OK) return rc;
    int body = window - n_prefix;
    for (int a = 0; a + body <= n; a += stride) {
        probe_prompt p;
        p.n_ids = window;
        p.ids = hs_xmalloc((size_t)window * sizeof(int));
        memcpy(p.ids, prefix, (size_t)n_prefix * sizeof(int));
        memcpy(p.ids + n_prefix, ids + a, (size_t)body * sizeof(int));
        size_t tl;
        if (rt_tokenizer_decode(tok, ids + a, body, &p.text, &tl) != HS_OK) p.text = hs_xstrdup("");
        push(out, &cap, p);
    }
    free(ids);
    if (out->n == 0) {
        hs_log_error("capture", "corpus %s has %d tokens, fewer than one window of %d — lower --window", path, n, body);
        return HS_EBADINPUT;
    }
    return HS_OK;
}
