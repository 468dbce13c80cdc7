/* cmd_analyze.c — `headscope analyze PASS --db RUN.db [--model MODEL] [--run ID] [--out REPORT.json] [params]`. */
#include "cli.h"
#include "analysis/passes.h"
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: headscope analyze PASS --db RUN.db [--run ID] [--model MODEL] [--out REPORT.json] [params]\n\n"
           "Passes (each writes a JSON report into the run's database and, with --out, to a file):\n"
           "  sinks      Gu et al. sink scores (alpha_k, Sink_1^eps), primary-sink mass, ACT non-initial sinks,\n"
           "             massive activations (Sun et al., VAR), secondary sinks (Wong et al.)\n"
           "             params: --eps 0.3 --window 64 --tau-act 0.1 --massive-abs 100 --massive-ratio 1000\n"
           "                     --phi-tau 20 --phi-min-layer 2 --cos-tau 0.9 --primary-lifetime N --secondary-min N\n"
           "                     --max-prompts N\n"
           "  detectors  previous-token, duplicate-token, induction (TransformerLens mul/abs scores on seeded repeated\n"
           "             random sequences), self and positional heads, ranked\n"
           "             params: --seqs 16 --seq-len 32 --seed 0 --top 5\n"
           "  all        every pass above\n\n"
           "Weight-only passes (no run needed; see 'headscope analyze PASS --help'):\n"
           "  maps --model MODEL --relations FILE|DIR   MAPS relation scores and salient operations\n"
           "  svd --model MODEL                         OV/QK singular values, ranks, top tokens\n"
           "  composition --model MODEL                 Q/K/V-composition scores with a null baseline\n"
           "  spectra --model MODEL                     Marchenko-Pastur fits per layer and per head\n\n"
           "--run picks a run (default: the latest); --model overrides the stored model path (same weights required).\n");
}

/* Passes that read only weights (no run): each file parses its own options. */
static const struct { const char *name; int (*fn)(int, char **); } k_weight_passes[] = {
    { "maps", cmd_analyze_maps }, { "svd", cmd_analyze_svd },
    { "composition", cmd_analyze_composition }, { "spectra", cmd_analyze_spectra },
};

int cmd_analyze(int argc, char **argv) {
    if (argc > 1)
        for (size_t i = 0; i < sizeof k_weight_passes / sizeof *k_weight_passes; i++)
            if (strcmp(argv[1], k_weight_passes[i].name) == 0) return k_weight_passes[i].fn(argc - 1, argv + 1);
    const char *pass = NULL, *db = NULL, *model = NULL, *out = NULL;
    long run = 0;
    an_sinks_params sp; an_sinks_defaults(&sp);
    an_detectors_params dp; an_detectors_defaults(&dp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (a[0] != '-') { if (pass) return cli_unknown("analyze", a); pass = a; continue; }
        if (!(v = cli_value(argc, argv, &i, "analyze"))) return CLI_BADINPUT;
        double d; long n;
#define F(opt, field, lo, hi) else if (strcmp(a, opt) == 0) { if (!cli_parse_float(v, opt, lo, hi, &d)) return CLI_BADINPUT; field = d; }
#define I(opt, field, lo, hi) else if (strcmp(a, opt) == 0) { if (!cli_parse_int(v, opt, lo, hi, &n)) return CLI_BADINPUT; field = (int)n; }
        if (strcmp(a, "--db") == 0) db = v;
        else if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--run") == 0) { if (!cli_parse_int(v, "--run", 1, 1L << 40, &run)) return CLI_BADINPUT; }
        F("--eps", sp.eps, 0, 1) F("--tau-act", sp.tau_act, 0, 1) F("--massive-abs", sp.massive_abs, 0, 1e30)
        F("--massive-ratio", sp.massive_ratio, 0, 1e30) F("--phi-tau", sp.phi_tau, 0, 1e30) F("--cos-tau", sp.cos_tau, 0, 1)
        I("--window", sp.window, 2, 1 << 20) I("--phi-min-layer", sp.phi_min_layer, 0, 1 << 20)
        I("--primary-lifetime", sp.primary_lifetime, 0, 1 << 20) I("--secondary-min", sp.secondary_min, 0, 1 << 20)
        I("--max-prompts", sp.max_prompts, 0, 1 << 30)
        I("--seqs", dp.n_seqs, 2, 100000) I("--seq-len", dp.seq_len, 2, 1 << 20) I("--top", dp.top, 1, 1 << 20)
        else if (strcmp(a, "--seed") == 0) { if (!cli_parse_int(v, "--seed", 0, 0x7fffffffL, &n)) return CLI_BADINPUT; dp.seed = (uint64_t)n; }
        else return cli_unknown("analyze", a);
#undef F
#undef I
    }
    if (!pass || !db) { hs_log_error("headscope", "analyze needs PASS and --db RUN.db — see 'headscope analyze --help'"); return CLI_BADINPUT; }
    bool all = strcmp(pass, "all") == 0;
    if (!all && strcmp(pass, "sinks") != 0 && strcmp(pass, "detectors") != 0) {
        hs_log_error("headscope", "unknown pass '%s' — available: sinks, detectors, all, maps, svd, composition, spectra", pass);
        return CLI_BADINPUT;
    }
    if (all && out) { hs_log_error("headscope", "--out names one report; with 'all' the reports go into the database (read them with --out per pass)"); return CLI_BADINPUT; }
    an_ctx ctx;
    if (an_ctx_open(db, run, model, &ctx) != HS_OK) return CLI_BADINPUT;
    hs_status rc = HS_OK;
    if (all || strcmp(pass, "sinks") == 0) rc = an_sinks_run(&ctx, &sp, out);
    if (rc == HS_OK && (all || strcmp(pass, "detectors") == 0)) rc = an_detectors_run(&ctx, &dp, out);
    an_ctx_close(&ctx);
    return rc == HS_OK ? CLI_OK : CLI_BADINPUT;
}
