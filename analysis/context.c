/* context.c — run + model + report skeleton shared by the analysis passes (see context.h). */
#include "context.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AN_REPORT_SCHEMA_VERSION 1

double an_now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

void an_ctx_close(an_ctx *c) {
    rt_tokenizer_free(c->tok);
    rt_model_free(c->m);
    if (c->db) store_run_info_clear(&c->run);
    store_close(c->db);
    memset(c, 0, sizeof *c);
}

hs_status an_ctx_open(const char *db_path, int64_t run_id, const char *model_override, an_ctx *c) {
    memset(c, 0, sizeof *c);
    c->db_path = db_path;
    c->t0 = an_now();
    hs_status rc = store_open(db_path, false, &c->db);
    if (rc != HS_OK) return rc;
    if (run_id <= 0) {
        store_run_info *runs; int n;
        if ((rc = store_runs_list(c->db, &runs, &n)) != HS_OK) goto fail;
        if (n == 0) { store_runs_free(runs, n); hs_log_error("analyze", "%s holds no run — capture one first", db_path); rc = HS_EBADINPUT; goto fail; }
        run_id = runs[n - 1].id;
        store_runs_free(runs, n);
    }
    if ((rc = store_run_get(c->db, run_id, &c->run)) != HS_OK) goto fail;
    if (c->run.n_prompts == 0) { hs_log_error("analyze", "run %lld in %s has no committed prompt — capture first", (long long)run_id, db_path); rc = HS_EBADINPUT; goto fail; }
    const char *mp = model_override ? model_override : c->run.model_path;
    if ((rc = rt_model_load(mp, &c->m)) != HS_OK) goto fail;
    if ((rc = rt_model_sha256(c->m, c->sha256)) != HS_OK) goto fail;
    if (strcmp(c->sha256, c->run.model_sha256) != 0) {
        hs_log_error("analyze", "the weights at %s (sha256 %.12s…) are not the ones run %lld captured (%.12s…) — pass the right --model",
                     mp, c->sha256, (long long)c->run.id, c->run.model_sha256);
        rc = HS_EBADINPUT; goto fail;
    }
    return HS_OK;
fail:
    an_ctx_close(c);
    return rc;
}

hs_status an_ctx_open_model(const char *model_path, an_ctx *c) {
    memset(c, 0, sizeof *c);
    c->t0 = an_now();
    hs_status rc = rt_model_load(model_path, &c->m);
    if (rc == HS_OK) rc = rt_model_sha256(c->m, c->sha256);
    if (rc != HS_OK) an_ctx_close(c);
    return rc;
}

cJSON *an_report_begin(const an_ctx *c, const char *pass, cJSON *params) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "schema_version", AN_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(r, "headscope_version", HS_VERSION);
    cJSON_AddStringToObject(r, "pass", pass);
    cJSON *m = cJSON_AddObjectToObject(r, "model");
    cJSON_AddStringToObject(m, "path", c->m->path);
    cJSON_AddStringToObject(m, "model_type", c->m->cfg.model_type);
    cJSON_AddStringToObject(m, "sha256", c->sha256);
    cJSON_AddNumberToObject(m, "n_layers", c->m->cfg.n_layers);
    cJSON_AddNumberToObject(m, "n_heads", c->m->cfg.n_heads);
    if (c->db) {
        cJSON *run = cJSON_AddObjectToObject(r, "run");
        cJSON_AddNumberToObject(run, "id", (double)c->run.id);
        cJSON_AddStringToObject(run, "db", c->db_path);
        cJSON_AddNumberToObject(run, "n_prompts", c->run.n_prompts);
        cJSON_AddStringToObject(run, "status", c->run.status);
    }
    cJSON_AddItemToObject(r, "params", params ? params : cJSON_CreateObject());
    return r;
}

cJSON *an_report_head(cJSON *heads, int layer, int head) {
    cJSON *h = cJSON_CreateObject();
    char name[32];
    snprintf(name, sizeof name, "%d.%d", layer, head);
    cJSON_AddNumberToObject(h, "layer", layer);
    cJSON_AddNumberToObject(h, "head", head);
    cJSON_AddStringToObject(h, "name", name);
    cJSON *m = cJSON_AddObjectToObject(h, "metrics");
    cJSON_AddItemToArray(heads, h);
    return m;
}

cJSON *an_rank(const double *s, int L, int H, int n) {
    int N = L * H;
    int *order = hs_xmalloc((size_t)(N ? N : 1) * sizeof(int));
    int k = 0;
    for (int i = 0; i < N; i++) if (!isnan(s[i])) order[k++] = i;
    for (int i = 1; i < k; i++) {   /* insertion sort: N is heads, and ties keep layer order */
        int v = order[i], j = i - 1;
        while (j >= 0 && s[order[j]] < s[v]) { order[j + 1] = order[j]; j--; }
        order[j + 1] = v;
    }
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < k && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        char name[32];
        snprintf(name, sizeof name, "%d.%d", order[i] / H, order[i] % H);
        cJSON_AddStringToObject(e, "head", name);
        cJSON_AddNumberToObject(e, "score", s[order[i]]);
        cJSON_AddItemToArray(a, e);
    }
    free(order);
    return a;
}

hs_status an_report_finish(an_ctx *c, cJSON *root, const char *out_path) {
    cJSON *t = cJSON_AddObjectToObject(root, "timing");
    cJSON_AddNumberToObject(t, "seconds", an_now() - c->t0);
    char *txt = cJSON_Print(root);
    const cJSON *pass = cJSON_GetObjectItem(root, "pass"), *params = cJSON_GetObjectItem(root, "params");
    char *ptxt = cJSON_PrintUnformatted(params);
    int64_t id;
    hs_status rc = c->db ? store_report_put(c->db, c->run.id, pass->valuestring, ptxt, txt, &id) : HS_OK;
    if (rc == HS_OK && !out_path && !c->db) { fputs(txt, stdout); fputc('\n', stdout); }
    if (rc == HS_OK && out_path) {
        size_t n = strlen(out_path) + 5;
        char *tmp = hs_xmalloc(n);
        snprintf(tmp, n, "%s.tmp", out_path);
        FILE *f = fopen(tmp, "w");
        if (!f) { hs_log_error("analyze", "cannot write %s: %s — check the --out path", tmp, strerror(errno)); rc = HS_EIO; }
        else {
            fputs(txt, f); fputc('\n', f);
            if (ferror(f) | fclose(f)) { hs_log_error("analyze", "writing %s failed (disk full?)", tmp); remove(tmp); rc = HS_EIO; }
            else if (rename(tmp, out_path) != 0) { hs_log_error("analyze", "cannot rename %s: %s", tmp, strerror(errno)); remove(tmp); rc = HS_EIO; }
        }
        free(tmp);
    }
    free(txt); free(ptxt);
    cJSON_Delete(root);
    return rc;
}
