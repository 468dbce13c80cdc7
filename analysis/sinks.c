/* sinks.c — attention-sink analysis (`headscope analyze sinks`), after ../shared/reference/methods.md §3:
 *   - Gu et al. (ICLR 2025): α_k = mean attention key k receives from the queries that see it,
 *     Sink_1^ε = share of (prompt, layer, head) with α_0 > ε, on the first `window` tokens;
 *   - per-head primary-sink mass: mean attention on position 0 over queries t ≥ 1;
 *   - ACT (Yu et al. 2024): columns with s_j > τ, the first such column excluded (non-initial sinks);
 *   - massive activations: Sun et al. (|x| > 100 and > 1000× the layer's median |x|) and VAR's
 *     RMS-normalised φ > 20 from layer 2, with the dimension indices;
 *   - secondary sinks (Wong et al. 2025): positions whose hidden state has |cos| > 0.9 to the
 *     BOS state over the layer range where the BOS norm jumps, labelled by lifetime.
 * Activations are recomputed through the runtime's hooks on the run's stored token ids.
 */
#include "passes.h"
#include "runtime/forward.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void an_sinks_defaults(an_sinks_params *p) {
    p->eps = 0.3; p->window = 64; p->tau_act = 0.1; p->massive_abs = 100; p->massive_ratio = 1000;
    p->phi_tau = 20; p->phi_min_layer = 2; p->cos_tau = 0.9; p->primary_lifetime = -1; p->secondary_min = -1;
    p->max_prompts = 0;
}

enum { MAX_LISTED = 200 };   /* cap on listed massive activations / secondary sinks in a report */

typedef struct {
    const rt_config *c;
    const an_sinks_params *p;
    int T;
    double *alpha_sum;    /* (L, H, window) Σ over prompts of α_k */
    double *alpha_n;      /* (window) prompts with T > k */
    double *sink1;        /* (L, H) prompts with α_0 > ε */
    double *mass;         /* (L, H) Σ over prompts of mean_{t≥1} A[t,0] */
    double *act_n;        /* (L, H) Σ over prompts of |non-initial sinks| */
    double *act_pos;      /* (L, H, window) how often each position is a non-initial sink */
    float *resid_pre, *resid_post;   /* (L, T, D) this prompt's residual streams */
} sink_acc;

static void on_pattern(const rt_hook_event *ev, void *user) {
    sink_acc *a = user;
    int T = ev->rows, W = a->p->window, H = a->c->n_heads;
    size_t lh = (size_t)ev->layer * H + ev->head;
    double first = -1;
    for (int k = 0; k < T; k++) {
        double s = 0;
        for (int t = k; t < T; t++) s += ev->data[(size_t)t * ev->cols + k];
        double alpha = s / (T - k);                          /* α_k: queries t = k..T−1 see key k */
        if (k < W) a->alpha_sum[lh * W + k] += alpha;
        if (k == 0 && alpha > a->p->eps) a->sink1[lh] += 1;
        if (alpha > a->p->tau_act) {                         /* ACT: the first sink column is kept aside */
            if (first < 0) first = k;
            else { a->act_n[lh] += 1; if (k < W) a->act_pos[lh * W + k] += 1; }
        }
    }
    double m = 0;
    for (int t = 1; t < T; t++) m += ev->data[(size_t)t * ev->cols];
    if (T > 1) a->mass[lh] += m / (T - 1);
}

static void on_resid(const rt_hook_event *ev, void *user) {
    sink_acc *a = user;
    float *dst = ev->point == RT_HOOK_RESID_PRE ? a->resid_pre : a->resid_post;
    memcpy(dst + (size_t)ev->layer * a->T * a->c->d_model, ev->data, (size_t)ev->rows * ev->cols * sizeof(float));
}

static int cmp_float(const void *x, const void *y) { float a = *(const float *)x, b = *(const float *)y; return (a > b) - (a < b); }

static void add_token(cJSON *o, char **strs, int pos) { cJSON_AddStringToObject(o, "token", strs ? strs[pos] : ""); }

/* Sun et al. and VAR rules on one prompt's residual streams. */
static void massive(const sink_acc *a, int prompt, char **strs, float *scratch, cJSON *sun, cJSON *var, int *n_sun, int *n_var) {
    const rt_config *c = a->c;
    int T = a->T, D = c->d_model;
    for (int l = 0; l < c->n_layers; l++) {
        const float *h = a->resid_post + (size_t)l * T * D;
        size_t n = (size_t)T * D;
        for (size_t i = 0; i < n; i++) scratch[i] = fabsf(h[i]);
        qsort(scratch, n, sizeof(float), cmp_float);
        double med = n % 2 ? scratch[n / 2] : 0.5 * (scratch[n / 2 - 1] + scratch[n / 2]);
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                double v = h[(size_t)t * D + d];
                if (fabs(v) > a->p->massive_abs && fabs(v) > a->p->massive_ratio * med) {
                    if (++*n_sun <= MAX_LISTED) {
                        cJSON *e = cJSON_CreateObject();
                        cJSON_AddNumberToObject(e, "layer", l); cJSON_AddNumberToObject(e, "prompt", prompt);
                        cJSON_AddNumberToObject(e, "pos", t); add_token(e, strs, t);
                        cJSON_AddNumberToObject(e, "dim", d); cJSON_AddNumberToObject(e, "value", v);
                        cJSON_AddNumberToObject(e, "median_abs", med);
                        cJSON_AddItemToArray(sun, e);
                    }
                }
            }
        if (l < a->p->phi_min_layer) continue;
        const float *x = a->resid_pre + (size_t)l * T * D;   /* VAR: the input of layer l */
        for (int t = 0; t < T; t++) {
            const float *r = x + (size_t)t * D;
            double ms = 0;
            for (int d = 0; d < D; d++) ms += (double)r[d] * r[d];
            double inv = 1.0 / sqrt(ms / D + 1e-6), best = 0; int bd = -1;
            for (int d = 0; d < D; d++) { double phi = fabs(r[d] * inv); if (phi > best) { best = phi; bd = d; } }
            if (best > a->p->phi_tau && ++*n_var <= MAX_LISTED) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "layer", l); cJSON_AddNumberToObject(e, "prompt", prompt);
                cJSON_AddNumberToObject(e, "pos", t); add_token(e, strs, t);
                cJSON_AddNumberToObject(e, "dim", bd); cJSON_AddNumberToObject(e, "phi", best);
                cJSON_AddItemToArray(var, e);
            }
        }
    }
}

/* Wong et al.: BOS = position 0; the BOS norm's largest rise opens the range, its largest fall
 * after that closes it; positions with |cos| > τ to BOS in that range are sinks for `lifetime` layers. */
static void secondary(const sink_acc *a, int prompt, char **strs, int prim, int sec, cJSON *list, int *counts, int *n_listed,
                      cJSON *ranges) {
    const rt_config *c = a->c;
    int L = c->n_layers, T = a->T, D = c->d_model;
    double *norm = hs_xmalloc((size_t)L * sizeof(double));
    for (int l = 0; l < L; l++) {
        const float *b = a->resid_post + (size_t)l * T * D;
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)b[d] * b[d];
        norm[l] = sqrt(s);
    }
    int start = 0, end = L;
    if (L >= 2) {
        int am = 0;
        for (int l = 0; l + 1 < L; l++) if (norm[l + 1] - norm[l] > norm[am + 1] - norm[am]) am = l;
        start = am + 1;
        if (start + 1 < L) {
            int an = start;
            for (int l = start; l + 1 < L; l++) if (norm[l + 1] - norm[l] < norm[an + 1] - norm[an]) an = l;
            end = an + 1 + 1;   /* argmin over l ≥ start, relative index + start + 1 (as the paper's code) */
            if (end > L) end = L;
        }
    }
    if (prompt < 3) {
        cJSON *r = cJSON_CreateIntArray((int[]){ prompt, start, end }, 3);
        cJSON_AddItemToArray(ranges, r);
    }
    for (int j = 1; j < T; j++) {
        int life = 0, created = -1;
        for (int l = start; l < end; l++) {
            const float *b = a->resid_post + (size_t)l * T * D, *h = b + (size_t)j * D;
            double dot = 0, nb = 0, nh = 0;
            for (int d = 0; d < D; d++) { dot += (double)h[d] * b[d]; nb += (double)b[d] * b[d]; nh += (double)h[d] * h[d]; }
            if (nb > 0 && nh > 0 && fabs(dot / sqrt(nb * nh)) > a->p->cos_tau) { life++; if (created < 0) created = l; }
        }
        if (life == 0) continue;
        int label = life >= prim ? 0 : life > sec ? 1 : 2;   /* 0 BOS-like, 1 secondary, 2 noise */
        counts[label]++;
        if (label < 2 && ++*n_listed <= MAX_LISTED) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "prompt", prompt); cJSON_AddNumberToObject(e, "pos", j); add_token(e, strs, j);
            cJSON_AddNumberToObject(e, "created_layer", created); cJSON_AddNumberToObject(e, "lifetime", life);
            cJSON_AddStringToObject(e, "label", label == 0 ? "bos_like" : "secondary");
            cJSON_AddItemToArray(list, e);
        }
    }
    free(norm);
}

hs_status an_sinks_run(an_ctx *ctx, const an_sinks_params *p, const char *out_path) {
    const rt_config *c = &ctx->m->cfg;
    int L = c->n_layers, H = c->n_heads, D = c->d_model, W = p->window;
    if (W < 2 || W > c->n_ctx) { hs_log_error("analyze", "--window %d must be in 2..%d (the model's n_ctx)", W, c->n_ctx); return HS_EBADINPUT; }
    /* The papers' lifetime rules assume ~48 layers (L − 15 and 4); few-layer models get the same
     * fractions of their depth, so that the labels keep their meaning. */
    int prim = p->primary_lifetime >= 0 ? p->primary_lifetime : L >= 20 ? L - 15 : (int)ceil(L * 33.0 / 48.0);
    int sec = p->secondary_min >= 0 ? p->secondary_min : L >= 20 ? 4 : (int)floor(L * 4.0 / 48.0);
    store_prompt *ps = NULL; int np = 0;
    hs_status rc = store_prompts_get(ctx->db, ctx->run.id, &ps, &np);
    if (rc != HS_OK) return rc;
    int nuse = p->max_prompts > 0 && np > p->max_prompts ? p->max_prompts : np;
    size_t LH = (size_t)L * H;
    sink_acc a = { c, p, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    a.alpha_sum = hs_xcalloc(LH * W, sizeof(double)); a.alpha_n = hs_xcalloc((size_t)W, sizeof(double));
    a.sink1 = hs_xcalloc(LH, sizeof(double)); a.mass = hs_xcalloc(LH, sizeof(double));
    a.act_n = hs_xcalloc(LH, sizeof(double)); a.act_pos = hs_xcalloc(LH * W, sizeof(double));
    a.resid_pre = hs_xmalloc((size_t)L * W * D * sizeof(float)); a.resid_post = hs_xmalloc((size_t)L * W * D * sizeof(float));
    float *scratch = hs_xmalloc((size_t)W * D * sizeof(float));
    rt_hook_req reqs[3] = {
        { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, on_pattern, &a, false },
        { RT_HOOK_RESID_PRE, NULL, 0, NULL, 0, 0, 0, on_resid, &a, false },
        { RT_HOOK_RESID_POST, NULL, 0, NULL, 0, 0, 0, on_resid, &a, false },
    };
    rt_hook_spec spec = { reqs, 3 };
    rt_forward *f = rt_forward_init(ctx->m);
    cJSON *sun = cJSON_CreateArray(), *var = cJSON_CreateArray(), *sec_list = cJSON_CreateArray(), *ranges = cJSON_CreateArray();
    int n_sun = 0, n_var = 0, n_sec_listed = 0, counts[3] = {0}, used = 0;
    for (int i = 0; i < nuse && rc == HS_OK; i++) {
        int *ids = NULL, n = 0; char **strs = NULL;
        if ((rc = store_tokens_get(ctx->db, ctx->run.id, ps[i].index, &ids, &strs, &n)) != HS_OK) break;
        a.T = n < W ? n : W;
        if (a.T >= 2) {
            rt_seq s = { ids, a.T, NULL };
            if ((rc = rt_forward_run(f, &s, 1, &spec, NULL)) == HS_OK) {
                for (int k = 0; k < a.T; k++) a.alpha_n[k] += 1;
                massive(&a, ps[i].index, strs, scratch, sun, var, &n_sun, &n_var);
                secondary(&a, ps[i].index, strs, prim, sec, sec_list, counts, &n_sec_listed, ranges);
                used++;
            }
        }
        free(ids); store_strs_free(strs, n);
    }
    rt_forward_free(f);
    if (rc == HS_OK && used == 0) { hs_log_error("analyze", "no prompt of run %lld has 2+ tokens — nothing to analyse", (long long)ctx->run.id); rc = HS_EBADINPUT; }
    if (rc != HS_OK) goto done;

    cJSON *params = cJSON_CreateObject();
    cJSON_AddNumberToObject(params, "eps", p->eps); cJSON_AddNumberToObject(params, "window", W);
    cJSON_AddNumberToObject(params, "tau_act", p->tau_act); cJSON_AddNumberToObject(params, "massive_abs", p->massive_abs);
    cJSON_AddNumberToObject(params, "massive_ratio", p->massive_ratio); cJSON_AddNumberToObject(params, "phi_tau", p->phi_tau);
    cJSON_AddNumberToObject(params, "phi_min_layer", p->phi_min_layer); cJSON_AddNumberToObject(params, "cos_tau", p->cos_tau);
    cJSON_AddNumberToObject(params, "primary_lifetime", prim); cJSON_AddNumberToObject(params, "secondary_min_lifetime", sec);
    cJSON_AddNumberToObject(params, "prompts_used", used);
    cJSON *r = an_report_begin(ctx, "sinks", params);
    char rules[1024];
    snprintf(rules, sizeof rules,
             "alpha_k = mean attention key k receives from queries k..T-1 (Gu et al.), on the first %d tokens of each prompt; "
             "sink1_rate = share of prompts with alpha_0 > %.2f. Non-initial sinks: ACT's s_j > %.2f, first such column excluded. "
             "Massive activations: |x| > %.0f and > %.0fx the layer median |x| (Sun et al.), and RMS-normalised phi > %.0f from layer %d (VAR). "
             "Secondary sinks: |cos(h_j, h_BOS)| > %.2f over the layer range where the BOS norm rises; lifetime >= %d layers = BOS-like, "
             "> %d = secondary. The papers' lifetime rules (L-15 and 4) assume ~48 layers; with L=%d they are scaled to the same "
             "fractions of depth (override with --primary-lifetime / --secondary-min).",
             W, p->eps, p->tau_act, p->massive_abs, p->massive_ratio, p->phi_tau, p->phi_min_layer, p->cos_tau, prim, sec, L);
    cJSON_AddStringToObject(r, "rules", rules);
    cJSON *heads = cJSON_AddArrayToObject(r, "heads");
    double *alpha0 = hs_xmalloc(LH * sizeof(double)), *nonini = hs_xmalloc(LH * sizeof(double)), total_sink1 = 0;
    cJSON *layers = cJSON_AddArrayToObject(r, "layers");
    for (int l = 0; l < L; l++) {
        double ls = 0;
        for (int h = 0; h < H; h++) {
            size_t lh = (size_t)l * H + h;
            cJSON *m = an_report_head(heads, l, h);
            alpha0[lh] = a.alpha_sum[lh * W] / a.alpha_n[0];
            nonini[lh] = a.act_n[lh] / used;
            cJSON_AddNumberToObject(m, "alpha_0", alpha0[lh]);
            cJSON_AddNumberToObject(m, "sink1_rate", a.sink1[lh] / used);
            cJSON_AddNumberToObject(m, "primary_mass", a.mass[lh] / used);
            cJSON_AddNumberToObject(m, "non_initial_sinks", nonini[lh]);
            cJSON *row = cJSON_GetArrayItem(heads, (int)lh);
            cJSON *al = cJSON_AddArrayToObject(row, "alpha");
            for (int k = 0; k < W && a.alpha_n[k] > 0; k++) cJSON_AddItemToArray(al, cJSON_CreateNumber(a.alpha_sum[lh * W + k] / a.alpha_n[k]));
            cJSON *top = cJSON_AddArrayToObject(row, "non_initial_positions");
            for (int rep = 0; rep < 3; rep++) {   /* the three positions flagged most often */
                int best = -1;
                for (int k = 0; k < W; k++) if (a.act_pos[lh * W + k] > 0 && (best < 0 || a.act_pos[lh * W + k] > a.act_pos[lh * W + best])) best = k;
                if (best < 0) break;
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "pos", best); cJSON_AddNumberToObject(e, "rate", a.act_pos[lh * W + best] / used);
                cJSON_AddItemToArray(top, e);
                a.act_pos[lh * W + best] = -a.act_pos[lh * W + best];   /* mark taken */
            }
            ls += a.sink1[lh];
        }
        total_sink1 += ls;
        cJSON *le = cJSON_CreateObject();
        cJSON_AddNumberToObject(le, "layer", l);
        cJSON_AddNumberToObject(le, "sink1_percent", 100.0 * ls / ((double)H * used));
        cJSON_AddItemToArray(layers, le);
    }
    cJSON *ma = cJSON_AddObjectToObject(r, "massive_activations");
    cJSON_AddNumberToObject(ma, "sun_count", n_sun); cJSON_AddItemToObject(ma, "sun", sun);
    cJSON_AddNumberToObject(ma, "var_count", n_var); cJSON_AddItemToObject(ma, "var", var);
    cJSON *ss = cJSON_AddObjectToObject(r, "secondary_sinks");
    cJSON_AddNumberToObject(ss, "bos_like", counts[0]); cJSON_AddNumberToObject(ss, "secondary", counts[1]);
    cJSON_AddNumberToObject(ss, "noise", counts[2]); cJSON_AddItemToObject(ss, "layer_ranges", ranges);
    cJSON_AddItemToObject(ss, "sinks", sec_list);
    sun = var = sec_list = ranges = NULL;
    cJSON *sum = cJSON_AddObjectToObject(r, "summary");
    cJSON_AddNumberToObject(sum, "sink1_eps_percent", 100.0 * total_sink1 / ((double)LH * used));
    cJSON_AddItemToObject(sum, "top_sink_heads", an_rank(alpha0, L, H, 5));
    cJSON_AddItemToObject(sum, "top_non_initial_sink_heads", an_rank(nonini, L, H, 5));
    cJSON_AddNumberToObject(sum, "massive_activations", n_sun + n_var);
    cJSON_AddNumberToObject(sum, "secondary_sinks", counts[1]);
    free(alpha0); free(nonini);
    rc = an_report_finish(ctx, r, out_path);
done:
    cJSON_Delete(sun); cJSON_Delete(var); cJSON_Delete(sec_list); cJSON_Delete(ranges);
    free(a.alpha_sum); free(a.alpha_n); free(a.sink1); free(a.mass); free(a.act_n); free(a.act_pos);
    free(a.resid_pre); free(a.resid_post); free(scratch);
    store_prompts_free(ps, np);
    return rc;
}
