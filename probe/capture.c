/* capture.c — the capture pipeline (see capture.h). */
#include "capture.h"
#include "progress.h"
#include "prompts.h"
#include "stats.h"
#include "probe/cuda/probe_cuda_stats.h"
#include "runtime/forward.h"
#include "runtime/half.h"
#include "runtime/model.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void probe_capture_defaults(probe_capture_opts *o) {
    memset(o, 0, sizeof *o);
    o->hooks = ""; o->layers = "all"; o->heads = "all"; o->positions = "all";
    o->dtype = STORE_F16; o->batch = 8; o->stats = true; o->window = 64; o->stride = 64;
    o->gpu_dtype = RT_GPU_BF16;
}

static const char *dtype_name(store_dtype d) { return d == STORE_F32 ? "f32" : d == STORE_BF16 ? "bf16" : "f16"; }

/* ------------------------------------------------------------------ the spec stored with the run */

static char *abs_path(const char *p) {
    char *r = p ? realpath(p, NULL) : NULL;
    return r ? r : (p ? hs_xstrdup(p) : NULL);
}

static char *spec_to_json(const probe_capture_opts *o) {
    cJSON *j = cJSON_CreateObject();
    char *model = abs_path(o->model), *prompts = abs_path(o->prompts), *corpus = abs_path(o->corpus), *tok = abs_path(o->tokenizer);
    cJSON_AddStringToObject(j, "model", model);
    if (tok) cJSON_AddStringToObject(j, "tokenizer", tok);
    if (prompts) cJSON_AddStringToObject(j, "prompts", prompts);
    if (corpus) {
        cJSON_AddStringToObject(j, "corpus", corpus);
        cJSON_AddNumberToObject(j, "window", o->window);
        cJSON_AddNumberToObject(j, "stride", o->stride);
    }
    cJSON_AddStringToObject(j, "hooks", o->hooks);
    cJSON_AddStringToObject(j, "layers", o->layers);
    cJSON_AddStringToObject(j, "heads", o->heads);
    cJSON_AddStringToObject(j, "positions", o->positions);
    cJSON_AddStringToObject(j, "dtype", dtype_name(o->dtype));
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "max_tokens", o->max_tokens);
    cJSON_AddBoolToObject(j, "stats", o->stats);
    if (o->cuda) {   /* only GPU runs carry these: a CPU run's spec is unchanged */
        char dev[32];
        snprintf(dev, sizeof dev, "cuda:%d", o->device);
        cJSON_AddStringToObject(j, "device", dev);
        cJSON_AddStringToObject(j, "gpu_dtype", rt_gpu_dtype_name(o->gpu_dtype));
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(model); free(prompts); free(corpus); free(tok);
    return s;
}

/* Fill o from a stored spec; strings point into *keep (free with cJSON_Delete). */
static hs_status spec_from_json(const char *json, const char *db, probe_capture_opts *o, cJSON **keep) {
    cJSON *j = cJSON_Parse(json);
    const cJSON *v;
    if (!cJSON_IsObject(j) || !cJSON_IsString(cJSON_GetObjectItem(j, "model"))) {
        hs_log_error("capture", "the run in %s has no usable capture spec — start a new capture instead of --resume", db);
        cJSON_Delete(j);
        return HS_EBADINPUT;
    }
    bool q = o->quiet, emu = o->gpu_emulate; int64_t mp = o->max_pages; int fab = o->fail_after_batches;
    probe_capture_defaults(o);
    o->quiet = q; o->max_pages = mp; o->db = db; o->resume = true; o->gpu_emulate = emu; o->fail_after_batches = fab;
#define STR(name, field) if (cJSON_IsString(v = cJSON_GetObjectItem(j, name))) o->field = v->valuestring
#define NUM(name, field) if (cJSON_IsNumber(v = cJSON_GetObjectItem(j, name))) o->field = v->valueint
    STR("model", model); STR("tokenizer", tokenizer); STR("prompts", prompts); STR("corpus", corpus);
    STR("hooks", hooks); STR("layers", layers); STR("heads", heads); STR("positions", positions);
    NUM("window", window); NUM("stride", stride); NUM("batch", batch); NUM("max_tokens", max_tokens);
#undef STR
#undef NUM
    if (cJSON_IsBool(v = cJSON_GetObjectItem(j, "stats"))) o->stats = cJSON_IsTrue(v);
    if (cJSON_IsString(v = cJSON_GetObjectItem(j, "dtype")))
        o->dtype = strcmp(v->valuestring, "f32") == 0 ? STORE_F32 : strcmp(v->valuestring, "bf16") == 0 ? STORE_BF16 : STORE_F16;
    if (cJSON_IsString(v = cJSON_GetObjectItem(j, "device")) &&
        rt_gpu_parse_device(v->valuestring, &o->cuda, &o->device) != HS_OK) { cJSON_Delete(j); return HS_EBADINPUT; }
    if (cJSON_IsString(v = cJSON_GetObjectItem(j, "gpu_dtype")) &&
        rt_gpu_parse_dtype(v->valuestring, &o->gpu_dtype) != HS_OK) { cJSON_Delete(j); return HS_EBADINPUT; }
    *keep = j;
    return HS_OK;
}

/* ------------------------------------------------------------------ hook callbacks */

typedef struct {
    const rt_config *c;
    store_batch *batch;
    const int *prompt_index;     /* (n_seqs) */
    int *const *ids;             /* (n_seqs) token ids of each sequence */
    const bool *has_rep;         /* (n_seqs) */
    probe_head_sums *sums;       /* (n_seqs, L, H) */
    store_dtype dtype;
    uint16_t *conv; size_t conv_cap;   /* f16/bf16 staging, grown rarely (not per token) */
} cap_ctx;

static void on_stats(const rt_hook_event *ev, void *user) {
    cap_ctx *x = user;
    probe_head_sums *acc = &x->sums[((size_t)ev->seq * x->c->n_layers + ev->layer) * x->c->n_heads + ev->head];
    probe_head_stats(ev->data, ev->rows, ev->cols, ev->pos0, x->ids[ev->seq], x->has_rep[ev->seq], acc);
}

static void on_capture(const rt_hook_event *ev, void *user) {
    cap_ctx *x = user;
    int rows = ev->pos_end - ev->pos_begin, shape[2] = { rows, ev->cols };
    size_t n = (size_t)rows * ev->cols;
    const float *src = ev->data + (size_t)ev->pos_begin * ev->cols;
    if (rows <= 0) return;
    if (x->dtype == STORE_F32) {
        store_batch_add_activation(x->batch, x->prompt_index[ev->seq], ev->name, ev->layer, ev->head, ev->pos0 + ev->pos_begin,
                                   ev->pos0 + ev->pos_end, STORE_F32, shape, 2, src, n * sizeof(float));
        return;
    }
    if (n > x->conv_cap) { x->conv_cap = n * 2; x->conv = hs_xrealloc(x->conv, x->conv_cap * sizeof(uint16_t)); }
    if (x->dtype == STORE_F16) rt_f32_to_f16_array(x->conv, src, n);
    else for (size_t i = 0; i < n; i++) x->conv[i] = rt_f32_to_bf16(src[i]);
    store_batch_add_activation(x->batch, x->prompt_index[ev->seq], ev->name, ev->layer, ev->head, ev->pos0 + ev->pos_begin,
                               ev->pos0 + ev->pos_end, x->dtype, shape, 2, x->conv, n * sizeof(uint16_t));
}

/* ------------------------------------------------------------------ requests */

typedef struct {
    rt_hook_req *reqs; int n;
    int *layers, n_layers, *heads, n_heads;
    int *one_layer;   /* storage for full names' single layers */
} req_set;

static void req_set_free(req_set *r) { free(r->reqs); free(r->layers); free(r->heads); free(r->one_layer); memset(r, 0, sizeof *r); }

static hs_status parse_positions(const char *s, int *b, int *e) {
    long a, z;
    char *end;
    if (strcmp(s, "all") == 0) { *b = 0; *e = 0; return HS_OK; }
    if (strcmp(s, "last") == 0) { *b = -1; *e = 0; return HS_OK; }
    a = strtol(s, &end, 10);
    if (end != s && *end == '-') {
        const char *t = end + 1;
        z = strtol(t, &end, 10);
        if (end != t && *end == '\0' && a >= 0 && z >= a && z < INT_MAX) { *b = (int)a; *e = (int)z + 1; return HS_OK; }
    }
    hs_log_error("capture", "--positions '%s' must be all, last or A-B (e.g. 0-31)", s);
    return HS_EBADINPUT;
}

static hs_status build_requests(const probe_capture_opts *o, const rt_config *c, cap_ctx *x, req_set *r) {
    int pb, pe;
    memset(r, 0, sizeof *r);
    if (parse_positions(o->positions, &pb, &pe) != HS_OK) return HS_EBADINPUT;
    if (rt_parse_index_list(o->layers, c->n_layers, "--layers", &r->layers, &r->n_layers) != HS_OK) return HS_EBADINPUT;
    if (rt_parse_index_list(o->heads, c->n_heads, "--heads", &r->heads, &r->n_heads) != HS_OK) return HS_EBADINPUT;
    size_t hl = strlen(o->hooks);
    r->reqs = hs_xcalloc(hl / 2 + 2, sizeof *r->reqs);
    r->one_layer = hs_xcalloc(hl / 2 + 2, sizeof(int));
    if (o->stats && !o->cuda)   /* every head's pattern, all positions: statistics are over the whole prompt
                                 * (on the GPU they are reduced on the device instead: probe_cuda_stats) */
        r->reqs[r->n++] = (rt_hook_req){ RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, on_stats, x, true };
    char *list = hs_xstrdup(o->hooks), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        rt_hook_point p; int l;
        while (*t == ' ') t++;
        if (!*t) continue;
        if (rt_hook_parse_name(t, &p, &l) != HS_OK || l >= c->n_layers) {
            hs_log_error("capture", "unknown hook '%s' — valid: %s (prefix blocks.L. for one layer)", t, rt_hook_all_names());
            free(list); return HS_EBADINPUT;
        }
        rt_hook_req q = { p, r->layers, r->n_layers, NULL, 0, pb, pe, on_capture, x, true };
        if (l >= 0) { r->one_layer[r->n] = l; q.layers = &r->one_layer[r->n]; q.n_layers = 1; }
        if (rt_hook_point_is_head(p) && p != RT_HOOK_K && p != RT_HOOK_V && p != RT_HOOK_ROT_K) { q.heads = r->heads; q.n_heads = r->n_heads; }
        r->reqs[r->n++] = q;
    }
    free(list);
    return HS_OK;
}

/* ------------------------------------------------------------------ run aggregates */

/* Pooled means over every query position of the run: Σ_p mean_p·rows_p / Σ_p rows_p, where
 * rows_p = n_tokens_p − 1 (BOS query excluded). This session's prompts are added as their means are
 * stored (agg_add); prompts committed before a --resume are read back from the store
 * (agg_add_committed), so the aggregate covers the whole run either way. */
typedef struct {
    int L, H;
    double *num, *den;   /* (L, H, PROBE_M_N) */
} run_agg;

static void agg_add(run_agg *a, int l, int h, int m, double mean, int n_tokens) {
    size_t k = ((size_t)l * a->H + h) * PROBE_M_N + m;
    a->num[k] += mean * (n_tokens - 1);
    a->den[k] += n_tokens - 1;
}

static hs_status agg_add_committed(run_agg *a, store_db *db, int64_t run, const int *done_idx, int n_done) {
    store_stat *rows = NULL; int n = 0, np = 0;
    store_prompt *ps = NULL;
    hs_status rc = store_stats_get(db, run, -2, NULL, &rows, &n);
    if (rc == HS_OK) rc = store_prompts_get(db, run, &ps, &np);
    if (rc != HS_OK) goto done;
    int maxidx = 0;
    for (int i = 0; i < np; i++) if (ps[i].index > maxidx) maxidx = ps[i].index;
    for (int d = 0; d < n_done; d++) if (done_idx[d] > maxidx) maxidx = done_idx[d];
    bool *before = hs_xcalloc((size_t)maxidx + 1, sizeof(bool));   /* committed before this session */
    for (int d = 0; d < n_done; d++) if (done_idx[d] >= 0) before[done_idx[d]] = true;
    int *ntok = hs_xcalloc((size_t)maxidx + 1, sizeof(int));      /* 0: not counted here */
    for (int i = 0; i < np; i++)
        if (ps[i].index >= 0 && before[ps[i].index]) ntok[ps[i].index] = ps[i].n_tokens;
    free(before);
    for (int i = 0; i < n; i++) {
        const store_stat *s = &rows[i];
        if (s->prompt_index < 0 || s->prompt_index > maxidx || !ntok[s->prompt_index] || s->layer < 0 || s->layer >= a->L ||
            s->head < 0 || s->head >= a->H) continue;
        for (int m = 0; m < PROBE_M_N; m++)
            if (strcmp(s->metric, probe_metric_name((probe_metric)m)) == 0) agg_add(a, s->layer, s->head, m, s->value, ntok[s->prompt_index]);
    }
    free(ntok);
done:
    free(rows);
    store_prompts_free(ps, np);
    return rc;
}

static hs_status agg_write(const run_agg *a, store_db *db, int64_t run) {
    store_batch *b = store_batch_new(run);
    for (int l = 0; l < a->L; l++)
        for (int h = 0; h < a->H; h++)
            for (int m = 0; m < PROBE_M_N; m++) {
                size_t k = ((size_t)l * a->H + h) * PROBE_M_N + m;
                if (a->den[k] > 0) store_batch_add_stat(b, -1, l, h, probe_metric_name((probe_metric)m), a->num[k] / a->den[k]);
            }
    hs_status rc = store_batch_write(db, b);
    store_batch_free(b);
    return rc;
}

/* The string of one token id, decoded once per run (the tokens table stores it for every position). */
static const char *token_string(const rt_tokenizer *tok, char **cache, int vocab, int id) {
    if (id < 0 || id >= vocab) return "";
    if (!cache[id]) {
        size_t len;
        if (rt_tokenizer_decode(tok, &id, 1, &cache[id], &len) != HS_OK) cache[id] = hs_xstrdup("");
    }
    return cache[id];
}

/* ------------------------------------------------------------------ the run */

hs_status probe_capture_run(const probe_capture_opts *opts, int64_t *run_id_out) {
    probe_capture_opts o = *opts;
    cJSON *spec_keep = NULL;
    store_db *db = NULL;
    store_writer *w = NULL;
    rt_model *m = NULL;
    rt_tokenizer *tok = NULL;
    rt_forward *f = NULL;
    rt_gpu *g = NULL;
    probe_cuda_stats *gst = NULL;
    rt_gpu_seq *gseqs = NULL;
    probe_prompts pr = {0};
    req_set rs = {0};
    cap_ctx x = {0};
    int *done_idx = NULL, n_done = 0;
    run_agg agg = { 0, 0, NULL, NULL };
    char **tok_strs = NULL;          /* (vocab) decoded token strings, filled on first use */
    const char **strs = NULL; int strs_cap = 0;
    bool *skip = NULL;
    char *spec = NULL;
    int64_t run = 0;
    bool run_started = false, db_failed = false;
    hs_status rc;
    uint8_t *seen = NULL;

    if ((rc = store_open(o.db, false, &db)) != HS_OK) return rc;
    if (o.max_pages > 0) store_set_max_pages(db, o.max_pages);
    if (o.resume) {
        store_run_info *runs = NULL; int nr = 0;
        if ((rc = store_runs_list(db, &runs, &nr)) != HS_OK) goto fail;
        int k = nr - 1;
        if (k < 0) { hs_log_error("capture", "%s has no run to resume — start one without --resume", o.db); store_runs_free(runs, nr); rc = HS_EBADINPUT; goto fail; }
        run = runs[k].id;
        if (strcmp(runs[k].status, "complete") == 0) {
            hs_log_info("capture", "run %lld in %s is already complete — nothing to resume", (long long)run, o.db);
            store_runs_free(runs, nr);
            store_close(db);
            if (run_id_out) *run_id_out = run;
            return HS_OK;
        }
        rc = spec_from_json(runs[k].spec_json, opts->db, &o, &spec_keep);
        store_runs_free(runs, nr);
        if (rc != HS_OK) goto fail;
    }
    if (!o.model) { hs_log_error("capture", "capture needs MODEL — usage: headscope capture MODEL --prompts FILE --db RUN.db"); rc = HS_EBADINPUT; goto fail; }
    if (!o.prompts == !o.corpus) { hs_log_error("capture", "give exactly one of --prompts FILE or --corpus FILE"); rc = HS_EBADINPUT; goto fail; }
    if (o.batch < 1 || o.batch > 4096) { hs_log_error("capture", "--batch %d must be in 1..4096", o.batch); rc = HS_EBADINPUT; goto fail; }
    if ((rc = rt_model_load(o.model, &m)) != HS_OK) goto fail;
    if ((rc = rt_model_open_tokenizer(m, o.tokenizer, &tok)) != HS_OK) goto fail;
    const rt_config *c = &m->cfg;

    if (o.corpus) {
        int *a = NULL, *b = NULL, na = 0, nb = 0, pre = 0;
        /* the post-processor's leading special ids (e.g. BOS) prefix every window */
        if (rt_tokenizer_encode(tok, "a", 1, true, &a, &na) == HS_OK && rt_tokenizer_encode(tok, "a", 1, false, &b, &nb) == HS_OK)
            while (pre < na && (pre >= nb || a[pre] != b[0])) pre++;
        rc = probe_prompts_corpus(o.corpus, tok, o.window, o.stride, a, pre > na - nb ? na - nb : pre, &pr);
        free(a); free(b);
    } else {
        rc = probe_prompts_load(o.prompts, c->vocab_size, &pr);
    }
    if (rc != HS_OK) goto fail;
    for (int i = 0; i < pr.n; i++) {   /* tokenize, truncate, check the context */
        probe_prompt *p = &pr.items[i];
        if (!p->ids && (rc = rt_tokenizer_encode(tok, p->text, strlen(p->text), true, &p->ids, &p->n_ids)) != HS_OK) goto fail;
        if (o.max_tokens > 0 && p->n_ids > o.max_tokens) p->n_ids = o.max_tokens;
        if (p->n_ids == 0) { hs_log_error("capture", "prompt %d encodes to no tokens — remove it", i); rc = HS_EBADINPUT; goto fail; }
        if (p->n_ids > c->n_ctx) {
            hs_log_error("capture", "prompt %d has %d tokens but the model's context is n_ctx=%d — use --max-tokens %d", i, p->n_ids, c->n_ctx, c->n_ctx);
            rc = HS_EBADINPUT; goto fail;
        }
    }
    if ((rc = build_requests(&o, c, &x, &rs)) != HS_OK) goto fail;

    /* the run: new, or the resumed one after checking it is the same model */
    {
        char sha[65];
        int64_t model_id;
        if ((rc = rt_model_sha256(m, sha)) != HS_OK) goto fail;
        char *mabs = abs_path(m->path);   /* analyses reopen the model from another directory */
        rc = store_model_put(db, mabs, c->format == RT_FORMAT_HF ? "hf" : "llama2c", m->config_json, sha, &model_id);
        free(mabs);
        if (rc != HS_OK) { db_failed = true; goto fail; }
        if (o.resume) {
            store_run_info ri;
            if ((rc = store_run_get(db, run, &ri)) != HS_OK) { db_failed = true; goto fail; }
            bool same = ri.model_id == model_id;
            store_run_info_clear(&ri);
            if (!same) { hs_log_error("capture", "the weights at %s changed since run %lld started — resume needs the same checkpoint", o.model, (long long)run); rc = HS_EBADINPUT; goto fail; }
            if ((rc = store_prompt_indices(db, run, &done_idx, &n_done)) != HS_OK) { db_failed = true; goto fail; }
        } else {
            spec = spec_to_json(&o);
            if ((rc = store_run_begin(db, model_id, spec, &run)) != HS_OK) { db_failed = true; goto fail; }
        }
        run_started = true;
    }
    skip = hs_xcalloc((size_t)pr.n, sizeof(bool));
    for (int i = 0; i < n_done; i++) if (done_idx[i] >= 0 && done_idx[i] < pr.n) skip[done_idx[i]] = true;

    if ((rc = store_writer_start(db, (size_t)64 << 20, &w)) != HS_OK) { db_failed = true; goto fail; }

    int B = o.batch;
    if (o.cuda) {   /* after the run exists: a GPU that fails from here on marks it failed */
        rt_gpu_opts go;
        rt_gpu_opts_default(&go);
        go.dtype = o.gpu_dtype; go.device = o.device; go.emulate = o.gpu_emulate;
        if ((rc = rt_gpu_init(m, &go, &g)) != HS_OK) goto fail;
        int maxt = 1;
        for (int i = 0; i < pr.n; i++) if (pr.items[i].n_ids > maxt) maxt = pr.items[i].n_ids;
        if (o.stats && (rc = probe_cuda_stats_init(g, c->n_layers, c->n_heads, B, maxt, &gst)) != HS_OK) goto fail;
        gseqs = hs_xcalloc((size_t)B, sizeof *gseqs);
        hs_log_info("capture", "forward on %s (%s), %s", o.gpu_emulate ? "the emulated GPU" : "the GPU", rt_gpu_backend_name(g),
                    rt_gpu_dtype_name(o.gpu_dtype));
    } else {
        f = rt_forward_init(m);
    }
    x.c = c; x.dtype = o.dtype;
    rt_seq *seqs = hs_xcalloc((size_t)B, sizeof *seqs);
    int *pidx = hs_xcalloc((size_t)B, sizeof(int));
    int **sids = hs_xcalloc((size_t)B, sizeof(int *));
    bool *rep = hs_xcalloc((size_t)B, sizeof(bool));
    size_t nsums = (size_t)B * c->n_layers * c->n_heads;
    x.sums = hs_xcalloc(nsums, sizeof *x.sums);
    size_t ncells = (size_t)c->n_layers * c->n_heads * PROBE_M_N;
    tok_strs = hs_xcalloc((size_t)c->vocab_size, sizeof *tok_strs);
    agg = (run_agg){ c->n_layers, c->n_heads, hs_xcalloc(ncells, sizeof(double)), hs_xcalloc(ncells, sizeof(double)) };
    x.prompt_index = pidx; x.ids = sids; x.has_rep = rep;
    seen = hs_xcalloc(((size_t)c->vocab_size + 7) / 8, 1);
    rt_hook_spec hs = { rs.reqs, rs.n };
    probe_progress prog;
    int64_t todo = 0, done = 0, tokens = 0;
    for (int i = 0; i < pr.n; i++) todo += !skip[i];
    probe_progress_begin(&prog, "capture", "prompts", todo, o.quiet);
    if (n_done) hs_log_info("capture", "resuming run %lld: %d prompts already committed, %lld to go", (long long)run, n_done, (long long)todo);

    int n_batches = 0;
    for (int i = 0; i < pr.n && rc == HS_OK;) {
        int nb = 0;
        for (; i < pr.n && nb < B; i++) {
            if (skip[i]) continue;
            probe_prompt *p = &pr.items[i];
            seqs[nb] = (rt_seq){ p->ids, p->n_ids, NULL };
            if (gseqs) gseqs[nb] = (rt_gpu_seq){ p->ids, p->n_ids, NULL };
            pidx[nb] = i; sids[nb] = p->ids;
            rep[nb] = probe_has_repeat(p->ids, p->n_ids, seen);
            nb++;
        }
        if (nb == 0) break;
        x.batch = store_batch_new(run);
        memset(x.sums, 0, nsums * sizeof *x.sums);
        if (o.fail_after_batches > 0 && n_batches == o.fail_after_batches) {
            hs_log_error("capture", "simulated GPU failure after %d batches (test hook) — resume with --resume", n_batches);
            rc = HS_EIO;
        } else if (!g) {
            rc = rt_forward_run(f, seqs, nb, &hs, NULL);
        } else {
            int *nid = hs_xmalloc((size_t)nb * sizeof(int));
            for (int s = 0; s < nb; s++) nid[s] = pr.items[pidx[s]].n_ids;
            if (gst) rc = probe_cuda_stats_begin(gst, nb, (const int *const *)sids, nid, rep);
            if (rc == HS_OK) rc = rt_gpu_forward_run(g, gseqs, nb, &hs, NULL);
            if (gst) {   /* always removes the hook; its sums are the stats when the forward succeeded */
                hs_status se = probe_cuda_stats_end(gst, x.sums);
                if (rc == HS_OK) rc = se;
            }
            free(nid);
        }
        n_batches++;
        if (rc != HS_OK) { store_batch_free(x.batch); break; }
        for (int s = 0; s < nb; s++) {
            const probe_prompt *p = &pr.items[pidx[s]];
            if (p->n_ids > strs_cap) { strs_cap = p->n_ids; strs = hs_xrealloc(strs, (size_t)strs_cap * sizeof *strs); }
            for (int t = 0; t < p->n_ids; t++) strs[t] = token_string(tok, tok_strs, c->vocab_size, p->ids[t]);
            store_batch_add_prompt(x.batch, pidx[s], p->text, p->ids, (const char *const *)strs, p->n_ids);
            if (o.stats)
                for (int l = 0; l < c->n_layers; l++)
                    for (int h = 0; h < c->n_heads; h++)
                        for (int mm = 0; mm < PROBE_M_N; mm++) {
                            double v = probe_sums_mean(&x.sums[((size_t)s * c->n_layers + l) * c->n_heads + h], (probe_metric)mm);
                            if (isnan(v)) continue;
                            store_batch_add_stat(x.batch, pidx[s], l, h, probe_metric_name((probe_metric)mm), v);
                            agg_add(&agg, l, h, mm, v, p->n_ids);
                        }
            tokens += p->n_ids;
        }
        done += nb;
        if ((rc = store_writer_submit(w, x.batch)) != HS_OK) db_failed = true;
        x.batch = NULL;
        probe_progress_update(&prog, done, tokens, store_writer_bytes_written(w));
    }
    hs_status wrc = store_writer_finish(w);
    w = NULL;
    if (rc == HS_OK && wrc != HS_OK) { rc = wrc; db_failed = true; }
    free(seqs); free(pidx); free(sids); free(rep);
    if (rc != HS_OK) goto fail;
    {   /* bytes on disk: the database plus its write-ahead log (not yet checkpointed) */
        struct stat st;
        uint64_t bytes = stat(o.db, &st) == 0 ? (uint64_t)st.st_size : 0;
        size_t n = strlen(o.db) + 5;
        char *wal = hs_xmalloc(n);
        snprintf(wal, n, "%s-wal", o.db);
        if (stat(wal, &st) == 0) bytes += (uint64_t)st.st_size;
        free(wal);
        probe_progress_end(&prog, done, tokens, bytes);
    }
    if (o.stats && ((n_done && (rc = agg_add_committed(&agg, db, run, done_idx, n_done)) != HS_OK) ||
                    (rc = agg_write(&agg, db, run)) != HS_OK)) { db_failed = true; goto fail; }
    if ((rc = store_run_set_status(db, run, "complete")) != HS_OK) { db_failed = true; goto fail; }
    if (run_id_out) *run_id_out = run;
    goto out;
fail:
    if (w) store_writer_finish(w);
    /* Record the failure unless the database itself is what failed (then it could not take the
     * write either, and a "running" run can still be resumed). */
    if (run_started && !db_failed && db) store_run_set_status(db, run, "failed");
out:
    free(seen); free(x.sums); free(x.conv);
    free(done_idx); free(skip); free(spec);
    free(agg.num); free(agg.den);
    if (tok_strs) for (int v = 0; v < m->cfg.vocab_size; v++) free(tok_strs[v]);
    free(tok_strs); free(strs);
    req_set_free(&rs);
    probe_prompts_free(&pr);
    rt_forward_free(f);
    probe_cuda_stats_free(gst);
    rt_gpu_free(g);
    free(gseqs);
    rt_tokenizer_free(tok);
    rt_model_free(m);
    store_close(db);
    cJSON_Delete(spec_keep);
    return rc;
}
