/* cmd_analyze_composition.c — `headscope analyze composition --model MODEL [--out FILE] [--fold-ln]
 * [--threshold Z] [--null-samples N] [--seed S]`: Q/K/V-composition scores between every pair of
 * heads in different layers, with a Gaussian null and Talking-Heads components
 * (analysis/composition.c). Weight-only: the report goes to --out or stdout. */
#include "cli.h"
#include "analysis/lowrank.h"
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: headscope analyze composition --model MODEL [--out REPORT.json] [--fold-ln] [--threshold Z]\n"
           "                                     [--null-samples N] [--seed S]\n\n"
           "Composition scores CS(A,B) = |W_OV^A M_B|_F / (|W_OV^A|_F |M_B|_F) for every sender A in an earlier\n"
           "layer than receiver B, M_B = W_QK^B (Q), W_QK^B^T (K), W_OV^B (V) (TransformerLens definitions),\n"
           "z-scores against random Gaussian heads of the same shapes, and the edges with z >= Z, each with\n"
           "the 1-3 rank-1 components of the sender's OV that carry it.\n\n"
           "  --model MODEL      Hugging Face folder or llama2.c .bin (required)\n"
           "  --out FILE         write the JSON report there (default: stdout)\n"
           "  --fold-ln          TransformerLens weight processing (fold norms, centre); default raw weights\n"
           "  --threshold Z      edge threshold on the z-score (default 4)\n"
           "  --null-samples N   random head pairs in the null (default 200, at least 2)\n"
           "  --seed S           seed of the null's Gaussian draws (default 0)\n"
           "Details: docs/analysis-svd-composition.md\n");
}

int cmd_analyze_composition(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    an_composition_params p;
    an_composition_defaults(&p);
    static const char *const with_value[] = { "--model", "--out", "--threshold", "--null-samples", "--seed" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n; double d;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (strcmp(a, "--fold-ln") == 0) { p.fold_ln = true; continue; }
        bool known = false;
        for (size_t j = 0; j < sizeof with_value / sizeof *with_value; j++) known |= strcmp(a, with_value[j]) == 0;
        if (!known) return cli_unknown("analyze composition", a);
        if (!(v = cli_value(argc, argv, &i, "analyze composition"))) return CLI_BADINPUT;
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--threshold") == 0) { if (!cli_parse_float(v, a, -1e6, 1e6, &d)) return CLI_BADINPUT; p.threshold = d; }
        else if (strcmp(a, "--null-samples") == 0) { if (!cli_parse_int(v, a, 2, 1000000, &n)) return CLI_BADINPUT; p.null_samples = (int)n; }
        else { if (!cli_parse_int(v, a, 0, 0x7fffffffL, &n)) return CLI_BADINPUT; p.seed = (uint64_t)n; }
    }
    if (!model) {
        hs_log_error("headscope", "analyze composition needs --model MODEL — see 'headscope analyze composition --help'");
        return CLI_BADINPUT;
    }
    an_ctx ctx;
    if (an_ctx_open_model(model, &ctx) != HS_OK) return CLI_BADINPUT;
    hs_status rc = an_composition_run(&ctx, &p, out);
    an_ctx_close(&ctx);
    return rc == HS_OK ? CLI_OK : CLI_BADINPUT;
}
