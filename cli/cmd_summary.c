/* cmd_summary.c — `headscope summary --db RUN.db [--run ID]`: a short human summary of a run's
 * latest reports (top heads per detector, sink findings, natural-text statistics). When the
 * model folder has a planted.json (headscope plant), each planted head is checked against it. */
#include "cli.h"
#include "store/store.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void print_ranked(const char *label, const cJSON *list, int n) {
    printf("  %-16s", label);
    for (int i = 0; i < n && i < cJSON_GetArraySize(list); i++) {
        const cJSON *e = cJSON_GetArrayItem(list, i);
        printf(" %s (%.3f)", cJSON_GetStringValue(cJSON_GetObjectItem(e, "head")), cJSON_GetObjectItem(e, "score")->valuedouble);
    }
    printf("\n");
}

static const char *top_of(const cJSON *list) {
    return cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "head"));
}

int cmd_summary(int argc, char **argv) {
    const char *db = NULL;
    long run = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: headscope summary --db RUN.db [--run ID]\n\nPrints the top heads per detector, the sink findings and the run's\n"
                   "natural-text statistics from the latest reports (run 'headscope analyze all' first).\n");
            return CLI_OK;
        }
        if (strcmp(argv[i], "--db") == 0) { if (!(db = cli_value(argc, argv, &i, "summary"))) return CLI_BADINPUT; }
        else if (strcmp(argv[i], "--run") == 0) { const char *v = cli_value(argc, argv, &i, "summary"); if (!v || !cli_parse_int(v, "--run", 1, 1L << 40, &run)) return CLI_BADINPUT; }
        else return cli_unknown("summary", argv[i]);
    }
    if (!db) { hs_log_error("headscope", "summary needs --db RUN.db"); return CLI_BADINPUT; }
    store_db *s;
    if (store_open(db, true, &s) != HS_OK) return CLI_BADINPUT;
    int rc = CLI_BADINPUT;
    store_run_info ri = {0};
    store_report rd = {0}, rs = {0};
    cJSON *det = NULL, *snk = NULL, *planted = NULL;
    if (run == 0) {
        store_run_info *runs; int n;
        if (store_runs_list(s, &runs, &n) != HS_OK) goto done;
        if (n == 0) { store_runs_free(runs, n); hs_log_error("summary", "%s holds no run — capture one first", db); goto done; }
        run = runs[n - 1].id;
        store_runs_free(runs, n);
    }
    if (store_run_get(s, run, &ri) != HS_OK) goto done;
    printf("run %ld (%s): %d prompts, model %s\n", run, ri.status, ri.n_prompts, ri.model_path);
    {   /* planted ground truth beside the model, if any */
        size_t n = strlen(ri.model_path) + 16;
        char *pj = hs_xmalloc(n), *txt = NULL;
        snprintf(pj, n, "%s/planted.json", ri.model_path);
        size_t len;
        FILE *probe = fopen(pj, "r");
        if (probe) { fclose(probe); if (hs_read_file("summary", pj, &txt, &len) == HS_OK) planted = cJSON_Parse(txt); }
        free(txt); free(pj);
    }
    bool any = false;
    if (store_report_get(s, run, "detectors", &rd) == HS_OK && (det = cJSON_Parse(rd.report_json))) {
        const cJSON *sum = cJSON_GetObjectItem(det, "summary");
        printf("detectors (TransformerLens mul scores on seeded repeated random sequences):\n");
        print_ranked("previous-token", cJSON_GetObjectItem(sum, "previous_token"), 3);
        print_ranked("induction", cJSON_GetObjectItem(sum, "induction"), 3);
        print_ranked("duplicate-token", cJSON_GetObjectItem(sum, "duplicate_token"), 3);
        print_ranked("self", cJSON_GetObjectItem(sum, "self"), 3);
        print_ranked("positional", cJSON_GetObjectItem(sum, "positional"), 3);
        any = true;
    }
    if (store_report_get(s, run, "sinks", &rs) == HS_OK && (snk = cJSON_Parse(rs.report_json))) {
        const cJSON *sum = cJSON_GetObjectItem(snk, "summary");
        printf("sinks (first %d tokens of each prompt):\n", cJSON_GetObjectItem(cJSON_GetObjectItem(snk, "params"), "window")->valueint);
        printf("  Sink_1^%.1f       %.1f%% of (prompt, layer, head) have alpha_0 > eps\n",
               cJSON_GetObjectItem(cJSON_GetObjectItem(snk, "params"), "eps")->valuedouble,
               cJSON_GetObjectItem(sum, "sink1_eps_percent")->valuedouble);
        print_ranked("alpha_0", cJSON_GetObjectItem(sum, "top_sink_heads"), 3);
        printf("  massive activations %d, secondary sinks %d\n", cJSON_GetObjectItem(sum, "massive_activations")->valueint,
               cJSON_GetObjectItem(sum, "secondary_sinks")->valueint);
        any = true;
    }
    if (!any) { hs_log_error("summary", "run %ld has no reports yet — run 'headscope analyze all --db %s' first", run, db); goto done; }
    if (planted && det && snk) {
        const cJSON *dsum = cJSON_GetObjectItem(det, "summary"), *ssum = cJSON_GetObjectItem(snk, "summary");
        struct { const char *key, *label; const cJSON *list; } chk[3] = {
            { "previous_token", "previous-token", cJSON_GetObjectItem(dsum, "previous_token") },
            { "induction", "induction", cJSON_GetObjectItem(dsum, "induction") },
            { "bos_sink", "BOS sink", cJSON_GetObjectItem(ssum, "top_sink_heads") },
        };
        printf("planted ground truth (planted.json):\n");
        for (int i = 0; i < 3; i++) {
            const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(planted, chk[i].key)), *got = top_of(chk[i].list);
            bool hit = want && got && strcmp(want, got) == 0;
            printf("  %-16s planted %s, found %s  %s\n", chk[i].label, want ? want : "?", got ? got : "?", hit ? "✓" : "✗");
        }
    }
    rc = CLI_OK;
done:
    cJSON_Delete(det); cJSON_Delete(snk); cJSON_Delete(planted);
    store_report_clear(&rd); store_report_clear(&rs);
    if (ri.id) store_run_info_clear(&ri);
    store_close(s);
    return rc;
}
