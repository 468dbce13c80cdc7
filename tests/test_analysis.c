/* test_analysis.c — capture + analysis passes end to end, against ground truth and brute force.
 *
 * 1. The planted-circuit model (datasets/plant.c): capture a prompt set, run `sinks` and
 *    `detectors`, and require the planted heads (planted.json) to rank first, by a clear margin.
 * 2. A shared model: every per-head sink score in the report equals a brute-force recomputation
 *    from the patterns (recorded through hooks, independent loops; tolerance 1e-6 because the
 *    capture ran prompts in batches of 8 and the brute force one at a time, and sgemm's blocking
 *    differs with the batch size), detector "mul"/"abs" scores
 *    equal TransformerLens's formulas over explicit detection matrices, and the run aggregates in
 *    head_stats equal pooled brute-force means.
 * 3. Every report validates against docs/report.schema.json.
 */
#include "testlib.h"
#include "fixture.h"
#include "analysis/json_schema.h"
#include "analysis/passes.h"
#include "datasets/plant.h"
#include "probe/capture.h"
#include "runtime/forward.h"
#include "runtime/intervene.h"
#include <unistd.h>

static cJSON *g_schema;

static cJSON *check_report(const char *path, const char *what) {
    cJSON *r = fx_load(path);
    char err[512] = "unreadable";
    bool ok = r && an_schema_validate(g_schema, g_schema, r, err, sizeof err);
    TL_CHECK(ok, "%s: report validates against docs/report.schema.json%s%s", what, ok ? "" : " — ", ok ? "" : err);
    return r;
}

/* name and score of entry k of a ranked list */
static const char *rank_head(const cJSON *list, int k, double *score) {
    const cJSON *e = cJSON_GetArrayItem(list, k);
    if (!e) { *score = NAN; return "?"; }
    *score = cJSON_GetObjectItem(e, "score")->valuedouble;
    return cJSON_GetObjectItem(e, "head")->valuestring;
}

static void expect_first(const cJSON *list, const char *planted, double margin, const char *what) {
    double s0, s1;
    const char *h0 = rank_head(list, 0, &s0);
    rank_head(list, 1, &s1);
    TL_CHECK(planted && strcmp(h0, planted) == 0 && s0 - s1 >= margin,
             "planted: %s ranks %s first (%.3f vs next %.3f, margin >= %.2f; planted %s)", what, h0, s0, s1, margin, planted ? planted : "?");
}

static void write_file(const char *path, const char *text) { FILE *f = fopen(path, "w"); fputs(text, f); fclose(f); }

static void test_planted(const char *tmp) {
    char dir[512], db[512], prompts[512], sinks[512], det[512], pj[600];
    snprintf(dir, sizeof dir, "%s/planted", tmp); snprintf(db, sizeof db, "%s/planted.db", tmp);
    snprintf(prompts, sizeof prompts, "%s/prompts.txt", tmp); snprintf(sinks, sizeof sinks, "%s/sinks.json", tmp);
    snprintf(det, sizeof det, "%s/detectors.json", tmp); snprintf(pj, sizeof pj, "%s/planted.json", dir);
    if (ds_plant_write(dir, 7) != HS_OK) { tl_fail("plant the model"); return; }
    write_file(prompts, "The quick brown fox jumps over the lazy dog.\nabcdefg abcdefg abcdefg\n"
                        "Attention heads attend; heads attend to tokens.\nOnce upon a time there was a model. Once upon a time\n"
                        "1 2 3 4 5 6 7 8 9 10 1 2 3 4 5 6 7 8 9 10\nShall I compare thee to a summer's day?\n");
    probe_capture_opts o; probe_capture_defaults(&o);
    o.model = dir; o.prompts = prompts; o.db = db; o.quiet = true; o.hooks = "hook_pattern"; o.layers = "1";
    int64_t run;
    TL_CHECK(probe_capture_run(&o, &run) == HS_OK, "planted: capture 6 prompts (stats + layer-1 patterns)");
    an_ctx ctx;
    if (an_ctx_open(db, run, NULL, &ctx) != HS_OK) { tl_fail("planted: open the run"); return; }
    an_sinks_params sp; an_sinks_defaults(&sp);
    an_detectors_params dp; an_detectors_defaults(&dp);
    TL_CHECK(an_sinks_run(&ctx, &sp, sinks) == HS_OK, "planted: sinks pass runs");
    TL_CHECK(an_detectors_run(&ctx, &dp, det) == HS_OK, "planted: detectors pass runs");
    an_ctx_close(&ctx);
    cJSON *truth = fx_load(pj), *rs = check_report(sinks, "planted sinks"), *rd = check_report(det, "planted detectors");
    if (!truth || !rs || !rd) { tl_fail("planted: read planted.json and reports"); goto done; }
    const char *prev = cJSON_GetStringValue(cJSON_GetObjectItem(truth, "previous_token"));
    const char *ind = cJSON_GetStringValue(cJSON_GetObjectItem(truth, "induction"));
    const char *bos = cJSON_GetStringValue(cJSON_GetObjectItem(truth, "bos_sink"));
    const cJSON *sum = cJSON_GetObjectItem(rd, "summary");
    expect_first(cJSON_GetObjectItem(sum, "previous_token"), prev, 0.3, "previous-token detector");
    expect_first(cJSON_GetObjectItem(sum, "induction"), ind, 0.3, "induction detector");
    expect_first(cJSON_GetObjectItem(cJSON_GetObjectItem(rs, "summary"), "top_sink_heads"), bos, 0.3, "sink score alpha_0");
done:
    cJSON_Delete(truth); cJSON_Delete(rs); cJSON_Delete(rd);
}

/* Brute-force α_0 and TL scores on a shared model, compared with the reports. */
static void test_shared(const char *tmp) {
    const char *model = tl_shared_path("models/tiny-llama-shakespeare"), *corpus = tl_shared_path("corpora/tinyshakespeare/input.txt");
    if (!model || !corpus) { tl_skip("shared-model analysis: ../shared is missing"); return; }
    char db[512], sinks[512], det[512];
    snprintf(db, sizeof db, "%s/shared.db", tmp); snprintf(sinks, sizeof sinks, "%s/s.json", tmp); snprintf(det, sizeof det, "%s/d.json", tmp);
    probe_capture_opts o; probe_capture_defaults(&o);
    o.model = model; o.corpus = corpus; o.window = 64; o.stride = 20000; o.db = db; o.quiet = true;
    int64_t run;
    if (probe_capture_run(&o, &run) != HS_OK) { tl_fail("shared: capture corpus windows"); return; }
    an_ctx ctx;
    if (an_ctx_open(db, run, NULL, &ctx) != HS_OK) { tl_fail("shared: open run"); return; }
    an_sinks_params sp; an_sinks_defaults(&sp);
    an_detectors_params dp; an_detectors_defaults(&dp); dp.n_seqs = 4;
    an_sinks_run(&ctx, &sp, sinks);
    an_detectors_run(&ctx, &dp, det);
    const rt_config *c = &ctx.m->cfg;
    int L = c->n_layers, H = c->n_heads;
    /* brute force: patterns of every prompt through hooks */
    store_prompt *ps; int np;
    store_prompts_get(ctx.db, run, &ps, &np);
    double *a0 = calloc((size_t)L * H, sizeof(double)), *prev_num = calloc((size_t)L * H, sizeof(double)), rows = 0;
    rt_forward *f = rt_forward_init(ctx.m);
    for (int i = 0; i < np; i++) {
        int *ids, n; char **strs;
        store_tokens_get(ctx.db, run, ps[i].index, &ids, &strs, &n);
        rt_cache cache; rt_cache_init(&cache);
        rt_hook_req r = { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false };
        rt_hook_spec spec = { &r, 1 };
        rt_seq s = { ids, n, NULL };
        rt_forward_run(f, &s, 1, &spec, NULL);
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) {
                char name[64]; snprintf(name, sizeof name, "blocks.%d.attn.hook_pattern", l);
                const float *P = rt_cache_get(&cache, name, h, 0, NULL, NULL);
                double col = 0;
                for (int t = 0; t < n; t++) col += P[(size_t)t * n];
                a0[l * H + h] += col / n;
                for (int t = 1; t < n; t++) prev_num[l * H + h] += P[(size_t)t * n + t - 1];
            }
        rows += n - 1;
        rt_cache_free(&cache); free(ids); store_strs_free(strs, n);
    }
    rt_forward_free(f);
    cJSON *rs = check_report(sinks, "shared sinks"), *rd = check_report(det, "shared detectors");
    double worst = 0, worst_prev = 0;
    const cJSON *heads = rs ? cJSON_GetObjectItem(rs, "heads") : NULL;
    for (int k = 0; heads && k < L * H; k++) {
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(heads, k), "metrics");
        worst = fmax(worst, fabs(cJSON_GetObjectItem(m, "alpha_0")->valuedouble - a0[k] / np));
    }
    TL_CHECK(heads && worst <= 1e-6, "shared: every head's alpha_0 equals the brute force over %d prompts (max diff %.1e)", np, worst);
    store_stat *st; int nst;
    store_stats_get(ctx.db, run, -1, "prev_token", &st, &nst);
    for (int i = 0; i < nst; i++) worst_prev = fmax(worst_prev, fabs(st[i].value - prev_num[st[i].layer * H + st[i].head] / rows));
    TL_CHECK(nst == L * H && worst_prev <= 1e-6, "shared: run aggregate prev_token in head_stats equals the pooled brute force (%d heads, max diff %.1e)", nst, worst_prev);
    free(st);
    /* detectors: TL formulas over explicit matrices on the same seeded sequences */
    int T; int **seqs = an_detectors_sequences(&dp, c, &T);
    double *mul = calloc((size_t)L * H, sizeof(double)), *absv = calloc((size_t)L * H, sizeof(double));
    f = rt_forward_init(ctx.m);
    for (int s = 0; s < dp.n_seqs; s++) {
        rt_cache cache; rt_cache_init(&cache);
        rt_hook_req r = { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false };
        rt_hook_spec spec = { &r, 1 };
        rt_seq q = { seqs[s], T, NULL };
        rt_forward_run(f, &q, 1, &spec, NULL);
        double *D = calloc((size_t)T * T, sizeof(double)), *dup = calloc((size_t)T * T, sizeof(double));
        for (int i = 0; i < T; i++) for (int j = 0; j < i; j++) dup[i * T + j] = seqs[s][i] == seqs[s][j];
        for (int i = 0; i < T; i++) for (int j = 1; j <= i; j++) D[i * T + j] = dup[i * T + j - 1];   /* induction */
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) {
                char name[64]; snprintf(name, sizeof name, "blocks.%d.attn.hook_pattern", l);
                const float *P = rt_cache_get(&cache, name, h, 0, NULL, NULL);
                double num = 0, den = 0, ad = 0;
                for (int x = 0; x < T * T; x++) { num += P[x] * D[x]; den += P[x]; ad += fabs(P[x] - D[x]); }
                mul[l * H + h] += num / den;
                absv[l * H + h] += 1 - round(ad / (T * T) * T * 1000) / 1000;
            }
        free(D); free(dup); rt_cache_free(&cache); free(seqs[s]);
    }
    free(seqs);
    rt_forward_free(f);
    double wm = 0, wa = 0;
    heads = rd ? cJSON_GetObjectItem(rd, "heads") : NULL;
    for (int k = 0; heads && k < L * H; k++) {
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(heads, k), "metrics");
        wm = fmax(wm, fabs(cJSON_GetObjectItem(m, "induction_mul")->valuedouble - mul[k] / dp.n_seqs));
        wa = fmax(wa, fabs(cJSON_GetObjectItem(m, "induction_abs")->valuedouble - absv[k] / dp.n_seqs));
    }
    TL_CHECK(heads && wm <= 1e-9 && wa <= 1e-9, "shared: induction mul/abs scores equal TL's formulas on explicit matrices (diff %.1e / %.1e)", wm, wa);
    free(mul); free(absv); free(a0); free(prev_num);
    store_prompts_free(ps, np);
    cJSON_Delete(rs); cJSON_Delete(rd);
    an_ctx_close(&ctx);
}

int main(void) {
    g_schema = fx_load("docs/report.schema.json");
    if (!g_schema) { tl_fail("docs/report.schema.json parses"); return tl_done(); }
    char tmp[] = "/tmp/hs-analysis-XXXXXX";
    if (!mkdtemp(tmp)) { tl_fail("mkdtemp"); return tl_done(); }
    test_planted(tmp);
    test_shared(tmp);
    /* the schema rejects what it should */
    cJSON *bad = cJSON_Parse("{\"schema_version\": 1, \"pass\": \"sinks\"}");
    char err[256];
    TL_CHECK(!an_schema_validate(g_schema, g_schema, bad, err, sizeof err), "schema rejects a report without required members (%s)", err);
    cJSON_Delete(bad);
    cJSON_Delete(g_schema);
    char cmd[600]; snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) tl_fail("clean %s", tmp);
    return tl_done();
}
