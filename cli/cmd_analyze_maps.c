/* cmd_analyze_maps.c — `headscope analyze maps`: MAPS relation scores and salient operations of
 * every head, from the weights alone (analysis/maps.h; docs/analysis-maps.md). */
#include "cli.h"
#include "analysis/maps.h"
#include "datasets/relations.h"
#include "runtime/gpu.h"
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: headscope analyze maps --model MODEL --relations FILE|DIR [--relations ...] [options]\n\n"
           "MAPS (Elhelo & Geva 2025): for every head, how often the head's OV map sends a relation's source\n"
           "token to its target, M = E'' W_V W_O W_U over the full vocabulary, and each head's most salient\n"
           "operations. Weights only; the report (JSON) goes to --out or stdout. docs/analysis-maps.md.\n\n"
           "  --relations P     a relation file (JSON list of [source, target] pairs) or a folder of them;\n"
           "                    repeatable. Shipped: datasets/relations/\n"
           "  --k N             top-k for every relation (default: 1 for copying relations, 10 otherwise)\n"
           "  --first-mlp on|off  E'' for layers >= 1 = MLP_0(LN2_0(W_E)) (on, MAPS's default) or W_E (off)\n"
           "  --suppression     suppression scores (on -M); always computed, accepted for MAPS-style command lines\n"
           "  --validate        dynamic scores from the runtime on one prompt per pair, and Pearson r\n"
           "                    between static and dynamic scores across heads (with and without context)\n"
           "  --salient N       salient tokens per head (15; 0 skips the full-vocabulary saliency pass)\n"
           "  --mapped N        mapped tokens per salient token (5)\n"
           "  --top N           heads listed per relation in top_heads (10)\n"
           "  --min-pairs N     relations with fewer single-token pairs stay out of the summary (30, as MAPS)\n"
           "  --exhaustive      form every logit of every row (same scores; for timing comparisons)\n"
           "  --device D        cpu (default), cuda or cuda:N: the row products, full-vocabulary logits and\n"
           "                    top-k hit tests on the GPU (fp32, no TF32; hit counts equal the CPU's)\n"
           "  --tokenizer FILE  tokenizer to use instead of the model's own\n"
           "  --out FILE        write the report here (atomically) instead of stdout\n"
           "  --quiet           no progress lines on stderr\n");
}

int cmd_analyze_maps(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *tok_path = NULL;
    const char **rel_paths = hs_xmalloc((size_t)(argc > 0 ? argc : 1) * sizeof(char *));
    int n_paths = 0, status = CLI_BADINPUT;
    an_maps_params p;
    an_maps_defaults(&p);
    ds_relation *rels = NULL;
    int n_rels = 0;
    ds_pairs *res = NULL;
    an_maps_relation *mr = NULL;
    char *rel_arg = NULL;
    an_ctx ctx = { 0 };
    bool have_ctx = false, quiet = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n;
        if (cli_is_help(a)) { usage(); status = CLI_OK; goto done; }
        if (strcmp(a, "--suppression") == 0) continue;
        if (strcmp(a, "--validate") == 0) { p.validate = true; continue; }
        if (strcmp(a, "--exhaustive") == 0) { p.exhaustive = true; continue; }
        if (strcmp(a, "--quiet") == 0) { quiet = true; continue; }
        if (a[0] != '-' || !(strcmp(a, "--model") == 0 || strcmp(a, "--relations") == 0 || strcmp(a, "--k") == 0 ||
                             strcmp(a, "--first-mlp") == 0 || strcmp(a, "--salient") == 0 || strcmp(a, "--mapped") == 0 ||
                             strcmp(a, "--top") == 0 || strcmp(a, "--min-pairs") == 0 || strcmp(a, "--tokenizer") == 0 ||
                             strcmp(a, "--out") == 0 || strcmp(a, "--device") == 0)) {
            status = cli_unknown("analyze maps", a);
            goto done;
        }
        if (!(v = cli_value(argc, argv, &i, "analyze maps"))) goto done;
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--relations") == 0) rel_paths[n_paths++] = v;
        else if (strcmp(a, "--tokenizer") == 0) tok_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--device") == 0) { if (rt_gpu_parse_device(v, &p.cuda, &p.device) != HS_OK) goto done; }
        else if (strcmp(a, "--first-mlp") == 0) {
            if (strcmp(v, "on") == 0) p.first_mlp = true;
            else if (strcmp(v, "off") == 0) p.first_mlp = false;
            else { hs_log_error("headscope", "--first-mlp '%s' must be on or off — fix the option", v); goto done; }
        } else {
            long lo = strcmp(a, "--salient") == 0 || strcmp(a, "--min-pairs") == 0 ? 0 : 1;
            if (!cli_parse_int(v, a, lo, 100000, &n)) goto done;
            if (strcmp(a, "--k") == 0) p.k_override = (int)n;
            else if (strcmp(a, "--salient") == 0) p.n_salient = (int)n;
            else if (strcmp(a, "--mapped") == 0) p.n_mapped = (int)n;
            else if (strcmp(a, "--top") == 0) p.n_top_heads = (int)n;
            else p.min_pairs = (int)n;
        }
    }
    if (!model || n_paths == 0) {
        hs_log_error("headscope", "analyze maps needs --model MODEL and --relations FILE|DIR — see 'headscope analyze maps --help'");
        goto done;
    }
    hs_log_quiet(quiet);
    /* the device before anything is loaded: no GPU is one line and exit 2 */
    if (p.cuda && rt_gpu_device_check(p.device, NULL) != HS_OK) goto done;

    /* relation files first: a typo in one should not cost a model load */
    size_t al = 1;
    for (int i = 0; i < n_paths; i++) al += strlen(rel_paths[i]) + 1;
    rel_arg = hs_xcalloc(al, 1);
    for (int i = 0; i < n_paths; i++) {
        if (ds_relations_load(rel_paths[i], &rels, &n_rels) != HS_OK) goto done;
        if (i) strcat(rel_arg, ",");
        strcat(rel_arg, rel_paths[i]);
    }
    p.relations_arg = rel_arg;

    if (an_ctx_open_model(model, &ctx) != HS_OK) goto done;
    have_ctx = true;
    if (rt_model_open_tokenizer(ctx.m, tok_path, &ctx.tok) != HS_OK) goto done;

    res = hs_xcalloc((size_t)n_rels, sizeof *res);
    mr = hs_xcalloc((size_t)n_rels, sizeof *mr);
    int V = ctx.m->cfg.vocab_size;
    for (int i = 0; i < n_rels; i++) {
        ds_pairs *q = &res[i];
        if (ds_relation_resolve(&rels[i], ctx.tok, p.validate, q) != HS_OK) goto done;
        for (int j = 0; j < q->n; j++)
            if (q->src[j] >= V || q->tgt[j] >= V) {
                hs_log_error("analyze", "token id %d of relation %s is outside the model's vocabulary of %d (%s) — use the model's own tokenizer",
                             q->src[j] >= V ? q->src[j] : q->tgt[j], rels[i].name, V, rels[i].path);
                goto done;
            }
        mr[i] = (an_maps_relation){
            .name = rels[i].name, .k = q->k, .n = q->n, .src = q->src, .tgt = q->tgt,
            .prompt = (const int *const *)q->prompt, .prompt_len = q->prompt_len, .src_pos = q->src_pos,
            .source = rels[i].path, .template_text = q->template_text,
            .n_listed = q->n_listed, .n_multi_token = q->n_multi_token, .n_duplicate = q->n_duplicate,
        };
    }
    status = an_maps_run(&ctx, &p, mr, n_rels, out) == HS_OK ? CLI_OK : CLI_BADINPUT;

done:
    if (res) for (int i = 0; i < n_rels; i++) ds_pairs_free(&res[i]);
    free(res); free(mr); free(rel_arg); free(rel_paths);
    ds_relations_free(rels, n_rels);
    if (have_ctx) an_ctx_close(&ctx);
    return status;
}
