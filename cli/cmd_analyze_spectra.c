/* cmd_analyze_spectra.c — `headscope analyze spectra --model MODEL [--out FILE] [--bins N] [--no-heads]
 * [--seed S]`: WeightWatcher-style empirical spectral densities of every layer and head (issue 5;
 * analysis/spectra.h, docs/analysis-spectra.md). Weight-only: no run, no database. */
#include "cli.h"
#include "analysis/spectra.h"
#include <string.h>

static void usage(void) {
    printf("usage: headscope analyze spectra --model MODEL [--out REPORT.json] [--bins N] [--no-heads] [--seed S]\n\n"
           "Empirical spectral densities (eigenvalues of W^T W / N) of every layer's W_Q, W_K, W_V, W_O,\n"
           "W_QK = W_Q W_K^T, W_in, W_gate, W_out and every head's W_Q^h, W_K^h, W_QK^h, W_OV^h, with\n"
           "WeightWatcher's Marchenko-Pastur fit (sigma, lambda+-, Tracy-Widom spike count, mp_softrank),\n"
           "stable rank, matrix entropy, power-law alpha (KS-optimal xmin) and a shuffled null whose\n"
           "spikes are correlation traps. Raw weights (no LayerNorm folding). See docs/analysis-spectra.md.\n\n"
           "  --model MODEL   Hugging Face folder or llama2.c .bin (required)\n"
           "  --out FILE      write the JSON report here (default: stdout)\n"
           "  --bins N        histogram bins per matrix (default 100)\n"
           "  --no-heads      per-layer matrices only\n"
           "  --seed S        seed of the shuffled null (default 0)\n");
}

int cmd_analyze_spectra(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    an_spectra_params p;
    an_spectra_defaults(&p);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (strcmp(a, "--no-heads") == 0) { p.heads = false; continue; }
        if (a[0] != '-' || a[1] != '-') return cli_unknown("analyze spectra", a);
        if (strcmp(a, "--model") != 0 && strcmp(a, "--out") != 0 && strcmp(a, "--bins") != 0 && strcmp(a, "--seed") != 0)
            return cli_unknown("analyze spectra", a);
        if (!(v = cli_value(argc, argv, &i, "analyze spectra"))) return CLI_BADINPUT;
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--bins") == 0) { if (!cli_parse_int(v, "--bins", 1, 100000, &n)) return CLI_BADINPUT; p.bins = (int)n; }
        else { if (!cli_parse_int(v, "--seed", 0, 0x7fffffffL, &n)) return CLI_BADINPUT; p.seed = (uint64_t)n; }
    }
    if (!model) {
        hs_log_error("analyze", "spectra needs --model MODEL (a Hugging Face folder or llama2.c .bin) — see 'headscope analyze spectra --help'");
        return CLI_BADINPUT;
    }
    an_ctx ctx;
    if (an_ctx_open_model(model, &ctx) != HS_OK) return CLI_BADINPUT;
    hs_status rc = an_spectra_run(&ctx, &p, out);
    an_ctx_close(&ctx);
    return rc == HS_OK ? CLI_OK : CLI_BADINPUT;
}
