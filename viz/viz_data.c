/* viz_data.c — what the viewer shows, loaded from a run database (read-only, through store/) and
 * from analysis reports (JSON, docs/report.schema.json): the run, its prompts, per-head metrics
 * from statistics and reports, spectra, MAPS relations and salient operations, composition edges.
 *
 * Reports are untrusted input: every field is type- and range-checked, every array length is
 * checked against the run's layers x heads before use, and a report that does not fit is refused
 * with one line naming the field. A report is parsed into temporaries and installed only when
 * all of it is valid, so a refused report leaves the data as it was.
 */
#include "viz_internal.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const viz_source_name[VIZ_SRC_COUNT] = { "stats", "sinks", "detectors", "maps", "svd", "spectra", "composition" };

#define VIZ_MAX_LH 4096          /* layers or heads per layer */
#define VIZ_MAX_HEADS (1 << 16)  /* layers x heads */
#define VIZ_MAX_METRICS 1024
#define VIZ_MAX_REPORT_BYTES ((size_t)1 << 30)
#define VIZ_MAX_EDGES 50000      /* composition pairs kept (score descending) */

static hs_status fail(viz_data *d, hs_status rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static hs_status fail(viz_data *d, hs_status rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt); vsnprintf(d->err, sizeof d->err, fmt, ap); va_end(ap);
    hs_log_error("view", "%s", d->err);
    return rc;
}

/* ------------------------------------------------------------------ stderr capture */

void viz_errcap_begin(viz_errcap *c) {
    memset(c, 0, sizeof *c);
    fflush(stderr);
    c->mem = open_memstream(&c->text, &c->len);
    if (!c->mem) return;
    /* glibc's stderr is an assignable FILE *; swapping it routes the store's hs_log_error line
     * into memory so the error screen can show it (it is replayed to the real stderr at the end). */
    c->saved = stderr;
    stderr = c->mem;
}

void viz_errcap_end(viz_errcap *c, char *buf, size_t n) {
    if (n) buf[0] = 0;
    if (!c->mem) return;
    stderr = c->saved;
    fclose(c->mem);
    if (c->text && c->len) {
        fwrite(c->text, 1, c->len, stderr);
        size_t e = c->len;
        while (e > 0 && (c->text[e - 1] == '\n' || c->text[e - 1] == '\r')) e--;
        size_t b = e;
        while (b > 0 && c->text[b - 1] != '\n') b--;
        if (n) { size_t k = e - b < n - 1 ? e - b : n - 1; memcpy(buf, c->text + b, k); buf[k] = 0; }
    }
    free(c->text);
    memset(c, 0, sizeof *c);
}

static hs_status store_done(viz_data *d, viz_errcap *c, hs_status rc) {
    char line[1024];
    viz_errcap_end(c, line, sizeof line);
    if (rc != HS_OK && rc != HS_ENOTFOUND)
        snprintf(d->err, sizeof d->err, "%s", line[0] ? line : "the run database could not be read (see the line above on stderr)");
    return rc;
}

/* ------------------------------------------------------------------ small helpers */

char *viz_token_display(const char *s, bool visible_spaces) {
    size_t n = strlen(s), cap = n * 4 + 1, k = 0;
    if (cap > 1024) cap = 1024;
    char *o = hs_xmalloc(cap + 8);
    for (size_t i = 0; i < n && k < cap;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') { memcpy(o + k, "\\n", 2); k += 2; i++; continue; }
        if (c == '\t') { memcpy(o + k, "\\t", 2); k += 2; i++; continue; }
        if (c == '\r') { memcpy(o + k, "\\r", 2); k += 2; i++; continue; }
        if (c < 0x20 || c == 0x7F) { k += (size_t)snprintf(o + k, 8, "\\x%02X", c); i++; continue; }
        int len = hs_utf8_len(c);
        size_t bad = 0;
        if (c == ' ' && visible_spaces) { memcpy(o + k, "\xE2\x90\xA3", 3); k += 3; i++; continue; }   /* U+2423 ␣ */
        if (c < 0x80) { o[k++] = (char)c; i++; continue; }
        if (len > 1 && i + (size_t)len <= n && hs_utf8_valid(s + i, (size_t)len, &bad)) {
            memcpy(o + k, s + i, (size_t)len); k += (size_t)len; i += (size_t)len; continue;
        }
        k += (size_t)snprintf(o + k, 8, "\\x%02X", c); i++;   /* a byte-level BPE piece of a character */
    }
    o[k] = 0;
    return o;
}

bool viz_head_parse(const char *s, int L, int H, int *layer, int *head) {
    if (!s) return false;
    char *e;
    errno = 0;
    if (*s < '0' || *s > '9') return false;
    long l = strtol(s, &e, 10);
    if (errno || *e != '.' || e[1] < '0' || e[1] > '9') return false;
    long h = strtol(e + 1, &e, 10);
    if (errno || *e) return false;
    if (l < 0 || l >= L || h < 0 || h >= H) return false;
    *layer = (int)l; *head = (int)h;
    return true;
}

static bool name_ok(const char *s, size_t max) {
    size_t n = strlen(s), bad;
    if (n == 0 || n > max || !hs_utf8_valid(s, n, &bad)) return false;
    for (size_t i = 0; i < n; i++) if ((unsigned char)s[i] < 0x20) return false;
    return true;
}

static double *nan_array(size_t n) {
    double *v = hs_xmalloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    return v;
}

/* ------------------------------------------------------------------ metric lists */

typedef struct { viz_metric *m; int n, cap; } mlist;

static void metric_range(viz_metric *m, int N) {
    m->lo = m->hi = 0; m->n_valid = 0;
    for (int i = 0; i < N; i++) {
        double v = m->v[i];
        if (!isfinite(v)) { m->v[i] = NAN; continue; }
        if (m->n_valid == 0 || v < m->lo) m->lo = v;
        if (m->n_valid == 0 || v > m->hi) m->hi = v;
        m->n_valid++;
    }
}

static viz_metric *mlist_get(mlist *l, viz_source src, const char *a, const char *b, int N) {
    char name[160];
    snprintf(name, sizeof name, "%s.%s%s%s", viz_source_name[src], a, b ? "." : "", b ? b : "");
    for (int i = 0; i < l->n; i++) if (strcmp(l->m[i].name, name) == 0) return &l->m[i];
    if (l->n >= VIZ_MAX_METRICS) return NULL;
    if (l->n == l->cap) { l->cap = l->cap ? l->cap * 2 : 16; l->m = hs_xrealloc(l->m, (size_t)l->cap * sizeof *l->m); }
    viz_metric *m = &l->m[l->n++];
    memset(m, 0, sizeof *m);
    m->name = hs_xstrdup(name);
    m->src = src;
    m->v = nan_array((size_t)N);
    return m;
}

static void metrics_free(viz_metric *m, int n) {
    for (int i = 0; i < n; i++) { free(m[i].name); free(m[i].v); }
    free(m);
}

/* Replace every metric of source src in d by those of l (l is consumed). */
static void metrics_install(viz_data *d, viz_source src, mlist *l) {
    int N = d->L * d->H, k = 0;
    for (int i = 0; i < d->n_metrics; i++) {
        if (d->metrics[i].src == src) { free(d->metrics[i].name); free(d->metrics[i].v); }
        else d->metrics[k++] = d->metrics[i];
    }
    d->n_metrics = k;
    if (l->n) {   /* a metric without a single value is left out of the picker */
        d->metrics = hs_xrealloc(d->metrics, (size_t)(d->n_metrics + l->n) * sizeof *d->metrics);
        for (int i = 0; i < l->n; i++) {
            metric_range(&l->m[i], N);
            if (l->m[i].n_valid) d->metrics[d->n_metrics++] = l->m[i];
            else { free(l->m[i].name); free(l->m[i].v); }
        }
    }
    free(l->m);
    memset(l, 0, sizeof *l);
    /* keep a stable order: by source, then as loaded */
    for (int i = 1; i < d->n_metrics; i++) {
        viz_metric t = d->metrics[i]; int j = i - 1;
        while (j >= 0 && d->metrics[j].src > t.src) { d->metrics[j + 1] = d->metrics[j]; j--; }
        d->metrics[j + 1] = t;
    }
}

int viz_metric_find(const viz_data *d, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < d->n_metrics; i++) if (strcmp(d->metrics[i].name, name) == 0) return i;
    int found = -1, count = 0;
    size_t n = strlen(name);
    for (int i = 0; i < d->n_metrics; i++) {
        const char *m = d->metrics[i].name;
        size_t k = strlen(m);
        if (k > n && m[k - n - 1] == '.' && strcmp(m + k - n, name) == 0) { found = i; count++; }
    }
    return count == 1 ? found : count > 1 ? -2 : -1;
}

/* ------------------------------------------------------------------ JSON checks */

typedef struct { viz_data *d; const char *where, *pass; } jctx;

static hs_status jfail(jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static hs_status jfail(jctx *c, const char *fmt, ...) {
    char msg[600];
    va_list ap; va_start(ap, fmt); vsnprintf(msg, sizeof msg, fmt, ap); va_end(ap);
    return fail(c->d, HS_EBADINPUT, "report %s (%s): %s — regenerate it with 'headscope analyze %s'",
                c->pass ? c->pass : "?", c->where, msg, c->pass ? c->pass : "PASS");
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static hs_status jint(jctx *c, const cJSON *o, const char *k, const char *path, long lo, long hi, int *out) {
    const cJSON *v = jget(o, k);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return jfail(c, "%s%s%s must be an integer in %ld..%ld", path, *path ? "." : "", k, lo, hi);
    *out = (int)v->valuedouble;
    return HS_OK;
}

/* A number (null -> NaN when allow_null; absent -> NaN when optional). */
static hs_status jnum(jctx *c, const cJSON *o, const char *k, const char *path, bool required, double *out) {
    const cJSON *v = jget(o, k);
    *out = NAN;
    if (!v) return required ? jfail(c, "%s%s%s is missing", path, *path ? "." : "", k) : HS_OK;
    if (cJSON_IsNull(v)) return HS_OK;
    if (!cJSON_IsNumber(v)) return jfail(c, "%s%s%s must be a number", path, *path ? "." : "", k);
    *out = v->valuedouble;
    return HS_OK;
}

/* [n] numbers (null -> NaN); *out heap, *n_out its length. max bounds n. */
static hs_status jnums(jctx *c, const cJSON *a, const char *path, int min_n, int max_n, double **out, int *n_out) {
    *out = NULL; *n_out = 0;
    if (!cJSON_IsArray(a)) return jfail(c, "%s must be an array of numbers", path);
    int n = cJSON_GetArraySize(a);
    if (n < min_n || n > max_n) return jfail(c, "%s has %d entries (expected %d..%d)", path, n, min_n, max_n);
    double *v = nan_array((size_t)n);
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (cJSON_IsNumber(e)) v[i] = e->valuedouble;
        else if (!cJSON_IsNull(e)) { free(v); return jfail(c, "%s[%d] must be a number", path, i); }
    }
    *out = v; *n_out = n;
    return HS_OK;
}

/* A [rows][cols] grid of numbers into dst (row-major); null -> NaN. */
static hs_status jgrid(jctx *c, const cJSON *a, const char *path, int rows, int cols, double *dst) {
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 0) {   /* "no values" (maps: no pair survived the vocabulary) */
        for (size_t i = 0; i < (size_t)rows * cols; i++) dst[i] = NAN;
        return HS_OK;
    }
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != rows)
        return jfail(c, "%s must be a %d x %d array of numbers (it has %d rows)", path, rows, cols, cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0);
    int r = 0;
    for (const cJSON *row = a->child; row; row = row->next, r++) {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != cols)
            return jfail(c, "%s[%d] must have %d numbers (one per %s)", path, r, cols, cols == c->d->H ? "head" : "head of the model");
        int k = 0;
        for (const cJSON *e = row->child; e; e = e->next, k++) {
            if (cJSON_IsNumber(e)) dst[(size_t)r * cols + k] = e->valuedouble;
            else if (cJSON_IsNull(e)) dst[(size_t)r * cols + k] = NAN;
            else return jfail(c, "%s[%d][%d] must be a number", path, r, k);
        }
    }
    return HS_OK;
}

static hs_status jhead(jctx *c, const cJSON *o, const char *path, int *flat) {
    int l = 0, h = 0;
    hs_status rc;
    if ((rc = jint(c, o, "layer", path, 0, c->d->L - 1, &l)) != HS_OK) return rc;
    if ((rc = jint(c, o, "head", path, 0, c->d->H - 1, &h)) != HS_OK) return rc;
    *flat = l * c->d->H + h;
    return HS_OK;
}

static hs_status jhead_name(jctx *c, const cJSON *v, const char *path, int *flat) {
    int l, h;
    if (!cJSON_IsString(v) || !viz_head_parse(v->valuestring, c->d->L, c->d->H, &l, &h))
        return jfail(c, "%s must be a head name \"L.H\" within %d layers x %d heads", path, c->d->L, c->d->H);
    *flat = l * c->d->H + h;
    return HS_OK;
}

/* ------------------------------------------------------------------ per-pass loaders */

/* sinks / detectors: heads[] = {layer, head, metrics: {name: number}} */
static hs_status load_head_metrics(jctx *c, const cJSON *root, viz_source src) {
    viz_data *d = c->d;
    int N = d->L * d->H;
    const cJSON *heads = jget(root, "heads");
    if (!cJSON_IsArray(heads) || cJSON_GetArraySize(heads) < 1) return jfail(c, "heads must be a non-empty array");
    mlist l = { 0 };
    hs_status rc = HS_OK;
    int i = 0;
    for (const cJSON *h = heads->child; h; h = h->next, i++) {
        char path[48]; snprintf(path, sizeof path, "heads[%d]", i);
        int flat;
        if (!cJSON_IsObject(h)) { rc = jfail(c, "%s must be an object", path); goto fail; }
        if ((rc = jhead(c, h, path, &flat)) != HS_OK) goto fail;
        const cJSON *m = jget(h, "metrics");
        if (!cJSON_IsObject(m)) { rc = jfail(c, "%s.metrics must be an object", path); goto fail; }
        for (const cJSON *e = m->child; e; e = e->next) {
            if (!e->string || !name_ok(e->string, 64)) { rc = jfail(c, "%s.metrics has a key that is empty, too long or not UTF-8", path); goto fail; }
            if (!cJSON_IsNumber(e) && !cJSON_IsNull(e)) { rc = jfail(c, "%s.metrics.%s must be a number", path, e->string); goto fail; }
            viz_metric *mm = mlist_get(&l, src, e->string, NULL, N);
            if (!mm) { rc = jfail(c, "more than %d metrics", VIZ_MAX_METRICS); goto fail; }
            mm->v[flat] = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        }
    }
    metrics_install(d, src, &l);
    return HS_OK;
fail:
    metrics_free(l.m, l.n);
    return rc;
}

static void relations_free(viz_relation *r, int n) {
    for (int i = 0; i < n; i++) { free(r[i].name); free(r[i].scores); free(r[i].supp); free(r[i].top); }
    free(r);
}

static void salient_free(viz_salient_op **s, int *n, int N) {
    if (!s) { free(n); return; }
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < n[i]; k++) {
            free(s[i][k].token);
            for (int j = 0; j < s[i][k].n_mapped; j++) free(s[i][k].mapped[j]);
            free(s[i][k].mapped);
        }
        free(s[i]);
    }
    free(s); free(n);
}

static hs_status load_maps(jctx *c, const cJSON *root) {
    viz_data *d = c->d;
    int N = d->L * d->H;
    const cJSON *rels = jget(root, "relations"), *heads = jget(root, "heads");
    if (!cJSON_IsObject(rels)) return jfail(c, "relations must be an object (relation name -> scores)");
    if (!cJSON_IsArray(heads)) return jfail(c, "heads must be an array");
    int nr = cJSON_GetArraySize(rels);
    if (nr > 4096) return jfail(c, "relations has %d entries (at most 4096)", nr);
    viz_relation *R = hs_xcalloc((size_t)(nr ? nr : 1), sizeof *R);
    viz_salient_op **S = hs_xcalloc((size_t)N, sizeof *S);
    int *SN = hs_xcalloc((size_t)N, sizeof *SN);
    mlist l = { 0 };
    hs_status rc = HS_OK;
    int i = 0;
    for (const cJSON *r = rels->child; r; r = r->next, i++) {
        char path[160];
        if (!r->string || !name_ok(r->string, 64)) { rc = jfail(c, "relations[%d] has an empty, long or non-UTF-8 name", i); goto fail; }
        snprintf(path, sizeof path, "relations.%s", r->string);
        if (!cJSON_IsObject(r)) { rc = jfail(c, "%s must be an object", path); goto fail; }
        viz_relation *x = &R[i];
        x->name = hs_xstrdup(r->string);
        if ((rc = jint(c, r, "k", path, 1, 1000000, &x->k)) != HS_OK) goto fail;
        if ((rc = jint(c, r, "n_pairs", path, 0, 100000000, &x->n_pairs)) != HS_OK) goto fail;
        x->scores = nan_array((size_t)N); x->supp = nan_array((size_t)N);
        char p2[200];
        snprintf(p2, sizeof p2, "%s.scores", path);
        if ((rc = jgrid(c, jget(r, "scores"), p2, d->L, d->H, x->scores)) != HS_OK) goto fail;
        snprintf(p2, sizeof p2, "%s.suppression", path);
        if ((rc = jgrid(c, jget(r, "suppression"), p2, d->L, d->H, x->supp)) != HS_OK) goto fail;
        const cJSON *top = jget(r, "top_heads");
        if (!cJSON_IsArray(top)) { rc = jfail(c, "%s.top_heads must be an array of head names", path); goto fail; }
        int nt = cJSON_GetArraySize(top), k = 0;
        if (nt > N) { rc = jfail(c, "%s.top_heads lists %d heads (the model has %d)", path, nt, N); goto fail; }
        x->top = hs_xmalloc((size_t)(nt ? nt : 1) * sizeof *x->top);
        for (const cJSON *t = top->child; t; t = t->next, k++) {
            snprintf(p2, sizeof p2, "%s.top_heads[%d]", path, k);
            if ((rc = jhead_name(c, t, p2, &x->top[k])) != HS_OK) goto fail;
        }
        x->n_top = nt;
        viz_metric *m1 = mlist_get(&l, VIZ_SRC_MAPS, x->name, NULL, N), *m2 = mlist_get(&l, VIZ_SRC_MAPS, x->name, "suppression", N);
        if (!m1 || !m2) { rc = jfail(c, "more than %d metrics", VIZ_MAX_METRICS); goto fail; }
        memcpy(m1->v, x->scores, (size_t)N * sizeof(double));
        memcpy(m2->v, x->supp, (size_t)N * sizeof(double));
    }
    i = 0;
    for (const cJSON *h = heads->child; h; h = h->next, i++) {
        char path[48]; snprintf(path, sizeof path, "heads[%d]", i);
        int flat;
        if (!cJSON_IsObject(h)) { rc = jfail(c, "%s must be an object", path); goto fail; }
        if ((rc = jhead(c, h, path, &flat)) != HS_OK) goto fail;
        const cJSON *sal = jget(h, "salient");
        if (!cJSON_IsArray(sal)) { rc = jfail(c, "%s.salient must be an array", path); goto fail; }
        int ns = cJSON_GetArraySize(sal);
        if (ns > 1000) { rc = jfail(c, "%s.salient has %d entries (at most 1000)", path, ns); goto fail; }
        if (S[flat]) { rc = jfail(c, "%s repeats head %d.%d", path, flat / d->H, flat % d->H); goto fail; }
        S[flat] = hs_xcalloc((size_t)(ns ? ns : 1), sizeof **S);
        int k = 0;
        for (const cJSON *o = sal->child; o; o = o->next, k++) {
            const cJSON *tok = jget(o, "token"), *mapped = jget(o, "mapped");
            if (!cJSON_IsObject(o) || !cJSON_IsString(tok) || !cJSON_IsArray(mapped) || cJSON_GetArraySize(mapped) > 100) {
                rc = jfail(c, "%s.salient[%d] must be {\"token\": string, \"mapped\": [at most 100 strings]}", path, k); goto fail;
            }
            viz_salient_op *op = &S[flat][k];
            SN[flat] = k + 1;
            op->token = viz_token_display(tok->valuestring, true);
            op->mapped = hs_xcalloc((size_t)cJSON_GetArraySize(mapped) + 1, sizeof *op->mapped);
            for (const cJSON *t = mapped->child; t; t = t->next) {
                if (!cJSON_IsString(t)) { rc = jfail(c, "%s.salient[%d].mapped must hold strings", path, k); goto fail; }
                op->mapped[op->n_mapped++] = viz_token_display(t->valuestring, true);
            }
        }
    }
    relations_free(d->relations, d->n_relations);
    salient_free(d->salient, d->n_salient, N);
    d->relations = R; d->n_relations = nr;
    d->salient = S; d->n_salient = SN;
    metrics_install(d, VIZ_SRC_MAPS, &l);
    return HS_OK;
fail:
    relations_free(R, nr);
    salient_free(S, SN, N);
    metrics_free(l.m, l.n);
    return rc;
}

static hs_status load_svd(jctx *c, const cJSON *root) {
    viz_data *d = c->d;
    int N = d->L * d->H;
    const cJSON *heads = jget(root, "heads");
    if (!cJSON_IsArray(heads) || cJSON_GetArraySize(heads) < 1) return jfail(c, "heads must be a non-empty array");
    mlist l = { 0 };
    hs_status rc = HS_OK;
    int i = 0;
    for (const cJSON *h = heads->child; h; h = h->next, i++) {
        char path[48], p2[64]; snprintf(path, sizeof path, "heads[%d]", i);
        int flat;
        if (!cJSON_IsObject(h)) { rc = jfail(c, "%s must be an object", path); goto fail; }
        if ((rc = jhead(c, h, path, &flat)) != HS_OK) goto fail;
        static const char *const req[] = { "ov_stable_rank", "qk_stable_rank" };
        for (int k = 0; k < 2; k++) {
            double v;
            if ((rc = jnum(c, h, req[k], path, true, &v)) != HS_OK) goto fail;
        }
        for (const char *sv = "ov_sv";; sv = "qk_sv") {
            double *vals; int n;
            snprintf(p2, sizeof p2, "%s.%s", path, sv);
            if ((rc = jnums(c, jget(h, sv), p2, 0, 1 << 20, &vals, &n)) != HS_OK) goto fail;
            viz_metric *m = mlist_get(&l, VIZ_SRC_SVD, sv[0] == 'o' ? "ov_sv_max" : "qk_sv_max", NULL, N);
            if (m) m->v[flat] = n ? vals[0] : NAN;
            free(vals);
            if (sv[0] == 'q') break;
        }
        for (const cJSON *e = h->child; e; e = e->next) {   /* every numeric scalar is a metric */
            if (!cJSON_IsNumber(e) || !e->string || !strcmp(e->string, "layer") || !strcmp(e->string, "head")) continue;
            if (!name_ok(e->string, 64)) continue;
            viz_metric *m = mlist_get(&l, VIZ_SRC_SVD, e->string, NULL, N);
            if (!m) { rc = jfail(c, "more than %d metrics", VIZ_MAX_METRICS); goto fail; }
            m->v[flat] = e->valuedouble;
        }
    }
    metrics_install(d, VIZ_SRC_SVD, &l);
    return HS_OK;
fail:
    metrics_free(l.m, l.n);
    return rc;
}

static void spectra_free(viz_spectrum *s, int n) {
    for (int i = 0; i < n; i++) { free(s[i].edges); free(s[i].counts); free(s[i].mp_x); free(s[i].mp_y); }
    free(s);
}

static hs_status load_spectra(jctx *c, const cJSON *root) {
    viz_data *d = c->d;
    int N = d->L * d->H;
    const cJSON *mats = jget(root, "matrices");
    if (!cJSON_IsArray(mats) || cJSON_GetArraySize(mats) < 1) return jfail(c, "matrices must be a non-empty array");
    int n = cJSON_GetArraySize(mats);
    if (n > 1000000) return jfail(c, "matrices has %d entries", n);
    viz_spectrum *S = hs_xcalloc((size_t)n, sizeof *S);
    mlist l = { 0 };
    hs_status rc = HS_OK;
    int i = 0;
    for (const cJSON *m = mats->child; m; m = m->next, i++) {
        char path[48], p2[96]; snprintf(path, sizeof path, "matrices[%d]", i);
        viz_spectrum *s = &S[i];
        if (!cJSON_IsObject(m)) { rc = jfail(c, "%s must be an object", path); goto fail; }
        const cJSON *name = jget(m, "name"), *head = jget(m, "head"), *shape = jget(m, "shape");
        if (!cJSON_IsString(name) || !name_ok(name->valuestring, sizeof s->name - 1)) { rc = jfail(c, "%s.name must be a weight name such as W_QK", path); goto fail; }
        snprintf(s->name, sizeof s->name, "%s", name->valuestring);
        if ((rc = jint(c, m, "layer", path, 0, d->L - 1, &s->layer)) != HS_OK) goto fail;
        s->head = -1;
        if (head && !cJSON_IsNull(head) && (rc = jint(c, m, "head", path, 0, d->H - 1, &s->head)) != HS_OK) goto fail;
        if (!head) { rc = jfail(c, "%s.head is missing (null for a layer-level matrix)", path); goto fail; }
        if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != 2) { rc = jfail(c, "%s.shape must be [N, M]", path); goto fail; }
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetArrayItem(shape, k);
            if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 || v->valuedouble != floor(v->valuedouble)) {
                rc = jfail(c, "%s.shape[%d] must be a positive integer", path, k); goto fail;
            }
            s->shape[k] = (int)v->valuedouble;
        }
        if ((rc = jint(c, m, "num_spikes", path, 0, 1000000000, &s->num_spikes)) != HS_OK) goto fail;
        if ((rc = jint(c, m, "rand_num_spikes", path, 0, 1000000000, &s->rand_num_spikes)) != HS_OK) goto fail;
        struct { const char *k; double *v; } nums[] = {
            { "sigma_mp", &s->sigma_mp }, { "lambda_plus", &s->lambda_plus }, { "lambda_minus", &s->lambda_minus },
            { "mp_softrank", &s->mp_softrank }, { "stable_rank", &s->stable_rank }, { "entropy", &s->entropy }, { "alpha", &s->alpha } };
        for (size_t k = 0; k < sizeof nums / sizeof *nums; k++)
            if ((rc = jnum(c, m, nums[k].k, path, true, nums[k].v)) != HS_OK) goto fail;
        if ((rc = jnum(c, m, "spike_threshold", path, false, &s->spike_threshold)) != HS_OK) goto fail;
        const cJSON *law = jget(m, "law"), *status = jget(m, "status");
        if (cJSON_IsString(law)) snprintf(s->law, sizeof s->law, "%s", law->valuestring);
        if (cJSON_IsString(status)) snprintf(s->status, sizeof s->status, "%s", status->valuestring);
        const cJSON *hist = jget(m, "hist"), *mp = jget(m, "mp_density");
        if (!cJSON_IsObject(hist)) { rc = jfail(c, "%s.hist must be {\"edges\", \"counts\"}", path); goto fail; }
        if (!cJSON_IsObject(mp)) { rc = jfail(c, "%s.mp_density must be {\"x\", \"y\"}", path); goto fail; }
        int ne, nc, nx, ny;
        snprintf(p2, sizeof p2, "%s.hist.edges", path);
        if ((rc = jnums(c, jget(hist, "edges"), p2, 2, 1000001, &s->edges, &ne)) != HS_OK) goto fail;
        snprintf(p2, sizeof p2, "%s.hist.counts", path);
        if ((rc = jnums(c, jget(hist, "counts"), p2, 1, 1000000, &s->counts, &nc)) != HS_OK) goto fail;
        if (ne != nc + 1) { rc = jfail(c, "%s.hist has %d edges for %d counts (expected counts + 1)", path, ne, nc); goto fail; }
        for (int k = 0; k < ne; k++)
            if (!isfinite(s->edges[k]) || (k && !(s->edges[k] > s->edges[k - 1]))) { rc = jfail(c, "%s.hist.edges must be finite and increasing (entry %d)", path, k); goto fail; }
        for (int k = 0; k < nc; k++)
            if (!isfinite(s->counts[k]) || s->counts[k] < 0) { rc = jfail(c, "%s.hist.counts[%d] must be a count >= 0", path, k); goto fail; }
        s->n_bins = nc;
        snprintf(p2, sizeof p2, "%s.mp_density.x", path);
        if ((rc = jnums(c, jget(mp, "x"), p2, 0, 1000000, &s->mp_x, &nx)) != HS_OK) goto fail;
        snprintf(p2, sizeof p2, "%s.mp_density.y", path);
        if ((rc = jnums(c, jget(mp, "y"), p2, 0, 1000000, &s->mp_y, &ny)) != HS_OK) goto fail;
        if (nx != ny) { rc = jfail(c, "%s.mp_density has %d x and %d y values", path, nx, ny); goto fail; }
        for (int k = 0; k < nx; k++)
            if (!isfinite(s->mp_x[k]) || !isfinite(s->mp_y[k])) { rc = jfail(c, "%s.mp_density entry %d is not finite", path, k); goto fail; }
        s->n_mp = nx;
        if (s->head >= 0) {
            int flat = s->layer * d->H + s->head;
            struct { const char *k; double v; } ms[] = { { "num_spikes", s->num_spikes }, { "alpha", s->alpha },
                { "mp_softrank", s->mp_softrank }, { "stable_rank", s->stable_rank }, { "entropy", s->entropy } };
            for (size_t k = 0; k < sizeof ms / sizeof *ms; k++) {
                viz_metric *mm = mlist_get(&l, VIZ_SRC_SPECTRA, s->name, ms[k].k, N);
                if (!mm) { rc = jfail(c, "more than %d metrics", VIZ_MAX_METRICS); goto fail; }
                mm->v[flat] = ms[k].v;
            }
        }
    }
    spectra_free(d->spectra, d->n_spectra);
    d->spectra = S; d->n_spectra = n;
    metrics_install(d, VIZ_SRC_SPECTRA, &l);
    return HS_OK;
fail:
    spectra_free(S, n);
    metrics_free(l.m, l.n);
    return rc;
}

static int edge_cmp(const void *a, const void *b) {
    const viz_edge *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->type != y->type) return x->type - y->type;
    if (x->from != y->from) return x->from - y->from;
    return x->to - y->to;
}
static int edge_key_cmp(const void *a, const void *b) {
    const viz_edge *x = a, *y = b;
    if (x->type != y->type) return x->type - y->type;
    if (x->from != y->from) return x->from - y->from;
    return x->to - y->to;
}

static hs_status load_composition(jctx *c, const cJSON *root) {
    viz_data *d = c->d;
    int N = d->L * d->H;
    const cJSON *edges = jget(root, "edges"), *matrix = jget(root, "matrix");
    if (!cJSON_IsArray(edges)) return jfail(c, "edges must be an array");
    if (!cJSON_IsArray(matrix) || cJSON_GetArraySize(matrix) != 3) return jfail(c, "matrix must be [Q, K, V], three %d x %d grids", N, N);
    if (N > 8192) return jfail(c, "the model has %d heads; the viewer reads composition matrices of at most 8192 heads", N);
    int ne = cJSON_GetArraySize(edges);
    viz_edge *rep = hs_xmalloc((size_t)(ne ? ne : 1) * sizeof *rep);
    double *M = NULL;
    viz_edge *E = NULL;
    mlist l = { 0 };
    hs_status rc = HS_OK;
    int i = 0;
    for (const cJSON *e = edges->child; e; e = e->next, i++) {
        char path[48], p2[64]; snprintf(path, sizeof path, "edges[%d]", i);
        if (!cJSON_IsObject(e)) { rc = jfail(c, "%s must be an object", path); goto fail; }
        snprintf(p2, sizeof p2, "%s.from", path);
        if ((rc = jhead_name(c, jget(e, "from"), p2, &rep[i].from)) != HS_OK) goto fail;
        snprintf(p2, sizeof p2, "%s.to", path);
        if ((rc = jhead_name(c, jget(e, "to"), p2, &rep[i].to)) != HS_OK) goto fail;
        const cJSON *t = jget(e, "type");
        if (!cJSON_IsString(t) || strlen(t->valuestring) != 1 || !strchr("QKV", t->valuestring[0])) { rc = jfail(c, "%s.type must be \"Q\", \"K\" or \"V\"", path); goto fail; }
        rep[i].type = t->valuestring[0];
        if ((rc = jnum(c, e, "score", path, true, &rep[i].score)) != HS_OK) goto fail;
        if ((rc = jnum(c, e, "z", path, true, &rep[i].z)) != HS_OK) goto fail;
    }
    size_t NN = (size_t)N * N;
    M = hs_xmalloc(3 * NN * sizeof *M);
    i = 0;
    for (const cJSON *g = matrix->child; g; g = g->next, i++) {
        char path[32]; snprintf(path, sizeof path, "matrix[%d]", i);
        if ((rc = jgrid(c, g, path, N, N, M + (size_t)i * NN)) != HS_OK) goto fail;
    }
    /* candidate edges: sender in an earlier layer than the receiver, finite score */
    size_t cap = 1024, n = 0;
    E = hs_xmalloc(cap * sizeof *E);
    for (int t = 0; t < 3; t++)
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) {
                double s = M[(size_t)t * NN + (size_t)a * N + b];
                if (a / d->H >= b / d->H || !isfinite(s)) continue;
                if (n == cap) { cap *= 2; E = hs_xrealloc(E, cap * sizeof *E); }
                E[n++] = (viz_edge){ a, b, "QKV"[t], s, NAN };
            }
    qsort(E, n, sizeof *E, edge_cmp);
    if (n > VIZ_MAX_EDGES) n = VIZ_MAX_EDGES;
    qsort(rep, (size_t)ne, sizeof *rep, edge_key_cmp);
    for (size_t k = 0; k < n; k++) {
        viz_edge *f = bsearch(&E[k], rep, (size_t)ne, sizeof *rep, edge_key_cmp);
        if (f) E[k].z = f->z;
    }
    viz_metric *in = mlist_get(&l, VIZ_SRC_COMPOSITION, "in_degree", NULL, N), *out = mlist_get(&l, VIZ_SRC_COMPOSITION, "out_degree", NULL, N);
    viz_metric *mi = mlist_get(&l, VIZ_SRC_COMPOSITION, "max_in", NULL, N), *mo = mlist_get(&l, VIZ_SRC_COMPOSITION, "max_out", NULL, N);
    for (int h = 0; h < N; h++) { in->v[h] = out->v[h] = 0; }
    for (int k = 0; k < ne; k++) { out->v[rep[k].from] += 1; in->v[rep[k].to] += 1; }
    for (int t = 0; t < 3; t++)
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) {
                double s = M[(size_t)t * NN + (size_t)a * N + b];
                if (a / d->H >= b / d->H || !isfinite(s)) continue;
                if (isnan(mo->v[a]) || s > mo->v[a]) mo->v[a] = s;
                if (isnan(mi->v[b]) || s > mi->v[b]) mi->v[b] = s;
            }
    free(d->edges);
    d->edges = E; d->n_edges = (int)n;
    d->edge_max = n ? E[0].score : 0;
    d->edges_from_matrix = true;
    metrics_install(d, VIZ_SRC_COMPOSITION, &l);
    free(M); free(rep);
    return HS_OK;
fail:
    free(M); free(rep); free(E);
    metrics_free(l.m, l.n);
    return rc;
}

hs_status viz_data_load_report(viz_data *d, const char *json, size_t len, const char *where) {
    jctx c = { d, where, NULL };
    cJSON *root = cJSON_ParseWithLength(json, len);
    hs_status rc = HS_OK;
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        char guess[16] = "PASS";   /* name the pass when its field survived the damage */
        const char *p = len > 8 ? memmem(json, len < 4096 ? len : 4096, "\"pass\"", 6) : NULL;
        if (p) {
            p += 6;
            while (p < json + len && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n')) p++;
            if (p < json + len && *p == '"') {
                size_t k = 0;
                for (p++; p < json + len && k < sizeof guess - 1 && *p >= 'a' && *p <= 'z'; p++) guess[k++] = *p;
                if (k && p < json + len && *p == '"') guess[k] = 0; else snprintf(guess, sizeof guess, "PASS");
            }
        }
        return fail(d, HS_EBADINPUT, "report %s is not valid JSON (near byte %ld) — regenerate it with 'headscope analyze %s'", where, off, guess);
    }
    if (!cJSON_IsObject(root)) { rc = jfail(&c, "the top level must be an object"); goto done; }
    const cJSON *pass = jget(root, "pass");
    if (!cJSON_IsString(pass)) { rc = jfail(&c, "\"pass\" is missing (is this a headscope report?)"); goto done; }
    viz_source src = VIZ_SRC_COUNT;
    for (int s = VIZ_SRC_SINKS; s < VIZ_SRC_COUNT; s++) if (strcmp(pass->valuestring, viz_source_name[s]) == 0) src = (viz_source)s;
    if (src == VIZ_SRC_COUNT) { rc = jfail(&c, "unknown pass \"%.40s\" (sinks, detectors, maps, svd, composition, spectra)", pass->valuestring); goto done; }
    c.pass = viz_source_name[src];
    int ver;
    if ((rc = jint(&c, root, "schema_version", "", 1, 1, &ver)) != HS_OK) goto done;
    const cJSON *model = jget(root, "model");
    if (!cJSON_IsObject(model)) { rc = jfail(&c, "model must be an object"); goto done; }
    int L = 0, H = 0;
    if ((rc = jint(&c, model, "n_layers", "model", 1, VIZ_MAX_LH, &L)) != HS_OK) goto done;
    if ((rc = jint(&c, model, "n_heads", "model", 1, VIZ_MAX_LH, &H)) != HS_OK) goto done;
    if (d->L == 0) {
        if ((long)L * H > VIZ_MAX_HEADS) { rc = jfail(&c, "the model has %d x %d heads (the viewer shows at most %d)", L, H, VIZ_MAX_HEADS); goto done; }
        d->L = L; d->H = H;
    } else if (L != d->L || H != d->H) {
        rc = fail(d, HS_EBADINPUT, "report %s (%s) is for a model with %d layers x %d heads, the run's model has %d x %d — pass the report of this run's model",
                  c.pass, where, L, H, d->L, d->H);
        goto done;
    }
    const cJSON *sha = jget(model, "sha256");
    if (cJSON_IsString(sha) && d->run.model_sha256 && d->run.model_sha256[0] && strcmp(sha->valuestring, d->run.model_sha256) != 0)
        snprintf(d->warn, sizeof d->warn, "note: the %s report (%s) was made from weights with another sha256 than the run's model", c.pass, where);
    switch (src) {
    case VIZ_SRC_SINKS: case VIZ_SRC_DETECTORS: rc = load_head_metrics(&c, root, src); break;
    case VIZ_SRC_MAPS: rc = load_maps(&c, root); break;
    case VIZ_SRC_SVD: rc = load_svd(&c, root); break;
    case VIZ_SRC_SPECTRA: rc = load_spectra(&c, root); break;
    case VIZ_SRC_COMPOSITION: rc = load_composition(&c, root); break;
    default: HS_ASSERT(0);
    }
    if (rc == HS_OK) {
        d->has[src] = true;
        free(d->src_where[src]);
        d->src_where[src] = hs_xstrdup(where);
    }
done:
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------ the run */

static void shape_from_config(const char *cfg, int *L, int *H) {
    *L = *H = 0;
    if (!cfg) return;
    cJSON *j = cJSON_Parse(cfg);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return; }
    static const char *const keys[][2] = { { "n_layer", "n_head" }, { "num_hidden_layers", "num_attention_heads" }, { "n_layers", "n_heads" } };
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const cJSON *a = jget(j, keys[k][0]), *b = jget(j, keys[k][1]);
        if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble >= 1 && b->valuedouble >= 1 &&
            a->valuedouble <= VIZ_MAX_LH && b->valuedouble <= VIZ_MAX_LH && a->valuedouble * b->valuedouble <= VIZ_MAX_HEADS) {
            *L = (int)a->valuedouble; *H = (int)b->valuedouble;
            break;
        }
    }
    cJSON_Delete(j);
}

static hs_status load_stats(viz_data *d) {
    store_stat *rows = NULL; int n = 0;
    viz_errcap cap;
    viz_errcap_begin(&cap);
    hs_status rc = store_stats_get(d->db, d->run.id, -1, NULL, &rows, &n);
    if ((rc = store_done(d, &cap, rc)) != HS_OK) return rc;
    if (d->L == 0) {   /* no usable config: the statistics tell the shape */
        int L = 0, H = 0;
        for (int i = 0; i < n; i++) {
            if (rows[i].layer >= 0 && rows[i].layer < VIZ_MAX_LH && rows[i].layer >= L) L = rows[i].layer + 1;
            if (rows[i].head >= 0 && rows[i].head < VIZ_MAX_LH && rows[i].head >= H) H = rows[i].head + 1;
        }
        if ((long)L * H <= VIZ_MAX_HEADS) { d->L = L; d->H = H; }
    }
    int N = d->L * d->H;
    mlist l = { 0 };
    for (int i = 0; i < n; i++) {
        const store_stat *s = &rows[i];
        if (s->layer < 0 || s->layer >= d->L || s->head < 0 || s->head >= d->H) {
            metrics_free(l.m, l.n); free(rows);
            return fail(d, HS_EBADINPUT, "%s: run %lld has a statistic for head %d.%d outside the model's %d x %d heads — the database is inconsistent; re-capture the run",
                        d->db_path, (long long)d->run.id, s->layer, s->head, d->L, d->H);
        }
        char m[40]; snprintf(m, sizeof m, "%.31s", s->metric);
        if (!name_ok(m, 31)) continue;
        viz_metric *mm = mlist_get(&l, VIZ_SRC_STATS, m, NULL, N);
        if (mm) mm->v[s->layer * d->H + s->head] = s->value;
    }
    free(rows);
    d->has[VIZ_SRC_STATS] = l.n > 0;
    metrics_install(d, VIZ_SRC_STATS, &l);
    return HS_OK;
}

static hs_status read_report_file(viz_data *d, const char *path, char **out, size_t *len) {
    *out = NULL; *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(d, HS_EBADINPUT, "cannot read report %s: %s — check the --report path", path, strerror(errno));
    char *buf = NULL; size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 262144;
            if (cap > VIZ_MAX_REPORT_BYTES + 65536 + 1) { free(buf); fclose(f); return fail(d, HS_EBADINPUT, "report %s is larger than 1 GiB — pass a smaller report", path); }
            buf = hs_xrealloc(buf, cap);
        }
        size_t k = fread(buf + n, 1, 65536, f);
        n += k;
        if (k < 65536) break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) { free(buf); return fail(d, HS_EBADINPUT, "cannot read report %s (read error) — check the file", path); }
    buf[n] = 0;
    *out = buf; *len = n;
    return HS_OK;
}

hs_status viz_data_open(viz_data *d, const char *db_path, int64_t run_id, const char *const *reports, int n_reports) {
    memset(d, 0, sizeof *d);
    d->db_path = hs_xstrdup(db_path);
    viz_errcap cap;
    hs_status rc;
    store_run_info *runs = NULL; int nr = 0;
    viz_errcap_begin(&cap);
    rc = store_open(db_path, true, &d->db);
    if ((rc = store_done(d, &cap, rc)) != HS_OK) goto fail;
    viz_errcap_begin(&cap);
    rc = store_runs_list(d->db, &runs, &nr);
    if ((rc = store_done(d, &cap, rc)) != HS_OK) goto fail;
    if (nr == 0) { rc = fail(d, HS_EBADINPUT, "%s holds no run yet — capture one first (headscope capture MODEL --prompts FILE --db %s)", db_path, db_path); goto fail; }
    if (run_id <= 0) run_id = runs[nr - 1].id;
    int64_t first = runs[0].id, last = runs[nr - 1].id;
    store_runs_free(runs, nr); runs = NULL;
    viz_errcap_begin(&cap);
    rc = store_run_get(d->db, run_id, &d->run);
    if ((rc = store_done(d, &cap, rc)) != HS_OK) {
        if (rc == HS_ENOTFOUND)
            rc = fail(d, HS_EBADINPUT, "run %lld is not in %s (it holds runs %lld..%lld) — pass --run with one of them", (long long)run_id, db_path, (long long)first, (long long)last);
        goto fail;
    }
    shape_from_config(d->run.model_config_json, &d->L, &d->H);
    viz_errcap_begin(&cap);
    rc = store_prompts_get(d->db, d->run.id, &d->prompts, &d->n_prompts);
    if ((rc = store_done(d, &cap, rc)) != HS_OK) goto fail;
    if ((rc = load_stats(d)) != HS_OK) goto fail;
    for (int s = VIZ_SRC_SINKS; s < VIZ_SRC_COUNT; s++) {
        store_report r;
        memset(&r, 0, sizeof r);
        viz_errcap_begin(&cap);
        rc = store_report_get(d->db, d->run.id, viz_source_name[s], &r);
        if ((rc = store_done(d, &cap, rc)) == HS_ENOTFOUND) { rc = HS_OK; continue; }
        if (rc != HS_OK) goto fail;
        char where[600];
        snprintf(where, sizeof where, "%.500s, report #%lld", db_path, (long long)r.id);
        rc = viz_data_load_report(d, r.report_json ? r.report_json : "", r.report_json ? strlen(r.report_json) : 0, where);
        store_report_clear(&r);
        if (rc != HS_OK) goto fail;
    }
    for (int i = 0; i < n_reports; i++) {
        char *txt; size_t len;
        if ((rc = read_report_file(d, reports[i], &txt, &len)) != HS_OK) goto fail;
        rc = viz_data_load_report(d, txt, len, reports[i]);
        free(txt);
        if (rc != HS_OK) goto fail;
    }
    if (d->L == 0 || d->H == 0) {
        rc = fail(d, HS_EBADINPUT, "cannot tell the model's layers and heads (%s: no model config, statistics or reports) — capture with statistics or pass --report", db_path);
        goto fail;
    }
    return HS_OK;
fail:
    store_runs_free(runs, nr);
    {
        char keep[sizeof d->err];
        memcpy(keep, d->err, sizeof keep);
        viz_data_close(d);
        memcpy(d->err, keep, sizeof keep);
    }
    return rc;
}

void viz_data_close(viz_data *d) {
    int N = d->L * d->H;
    store_run_info_clear(&d->run);
    store_close(d->db);
    store_prompts_free(d->prompts, d->n_prompts);
    metrics_free(d->metrics, d->n_metrics);
    for (int s = 0; s < VIZ_SRC_COUNT; s++) free(d->src_where[s]);
    spectra_free(d->spectra, d->n_spectra);
    relations_free(d->relations, d->n_relations);
    salient_free(d->salient, d->n_salient, N);
    free(d->edges);
    free(d->db_path);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ per prompt */

hs_status viz_data_tokens(viz_data *d, int prompt, char ***strs, int *n) {
    int *ids = NULL; char **raw = NULL; int cnt = 0;
    *strs = NULL; *n = 0;
    viz_errcap cap;
    viz_errcap_begin(&cap);
    hs_status rc = store_tokens_get(d->db, d->run.id, prompt, &ids, &raw, &cnt);
    if ((rc = store_done(d, &cap, rc)) != HS_OK) return rc;
    free(ids);
    char **out = hs_xmalloc((size_t)(cnt ? cnt : 1) * sizeof *out);
    for (int i = 0; i < cnt; i++) out[i] = viz_token_display(raw[i] ? raw[i] : "", true);
    store_strs_free(raw, cnt);
    *strs = out; *n = cnt;
    return HS_OK;
}

hs_status viz_data_prompt_stats(viz_data *d, int prompt, store_stat **rows, int *n) {
    viz_errcap cap;
    *rows = NULL; *n = 0;
    viz_errcap_begin(&cap);
    hs_status rc = store_stats_get(d->db, d->run.id, prompt, NULL, rows, n);
    return store_done(d, &cap, rc);
}

hs_status viz_data_pattern(viz_data *d, int prompt, int layer, int head, store_tensor *out, int *row0) {
    char hook[64];
    snprintf(hook, sizeof hook, "blocks.%d.attn.hook_pattern", layer);
    memset(out, 0, sizeof *out);
    *row0 = 0;
    int T = -1;
    for (int i = 0; i < d->n_prompts; i++) if (d->prompts[i].index == prompt) T = d->prompts[i].n_tokens;
    viz_errcap cap;
    viz_errcap_begin(&cap);
    hs_status rc = store_activation_get(d->db, d->run.id, prompt, hook, layer, head, out);
    rc = store_done(d, &cap, rc);
    if (rc == HS_ENOTFOUND) {   /* a whole-layer tensor (H, R, C)? take this head's slice */
        store_tensor all;
        viz_errcap_begin(&cap);
        rc = store_activation_get(d->db, d->run.id, prompt, hook, layer, -1, &all);
        if ((rc = store_done(d, &cap, rc)) != HS_OK) return rc;
        if (all.ndim != 3 || all.shape[0] != d->H || head >= all.shape[0]) {
            rc = fail(d, HS_EBADINPUT, "%s: the layer-%d pattern of prompt %d has shape [%d, %d, %d], expected [%d, T, T] — the database is inconsistent; re-capture",
                      d->db_path, layer, prompt, all.shape[0], all.shape[1], all.shape[2], d->H);
            store_tensor_clear(&all);
            return rc;
        }
        *out = all;
        size_t per = (size_t)all.shape[1] * all.shape[2];
        out->data = hs_xmalloc(per * sizeof(float));
        memcpy(out->data, all.data + (size_t)head * per, per * sizeof(float));
        free(all.data);
        out->ndim = 2; out->shape[0] = all.shape[1]; out->shape[1] = all.shape[2];
        out->head = head;
    }
    if (rc != HS_OK) return rc;
    int R = out->shape[0], C = out->shape[1];
    if (out->ndim != 2 || R < 1 || C < 1 || out->pos_begin < 0 || out->pos_end - out->pos_begin != R || out->pos_end > C ||
        (T > 0 && C != T)) {
        rc = fail(d, HS_EBADINPUT, "%s: the pattern of head %d.%d in prompt %d has shape [%d, %d] for rows %d..%d, but the prompt has %d tokens — the database is inconsistent; re-capture",
                  d->db_path, layer, head, prompt, R, out->ndim >= 2 ? C : 0, out->pos_begin, out->pos_end, T);
        store_tensor_clear(out);
        return rc;
    }
    *row0 = out->pos_begin;
    return HS_OK;
}
