/* cmd_analyze_svd.c — `headscope analyze svd --model MODEL [--out FILE] [--fold-ln] [--top N]`:
 * singular values, stable/effective ranks and top tokens of every head's OV and QK circuits
 * (analysis/svd.c). Weight-only: no run, no database; the report goes to --out or stdout. */
#include "cli.h"
#include "analysis/lowrank.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(void) {
    printf("usage: headscope analyze svd --model MODEL [--out REPORT.json] [--fold-ln] [--top N]\n\n"
           "Per head: the OV circuit W_V·W_O, the QK circuit W_Q·W_K^T and the bias-augmented QK\n"
           "(Franco & Crovella), through factored SVDs (never a d_model×d_model SVD). Reports all d_head\n"
           "singular values, stable rank, entropy-effective rank, and for the top 3 singular directions the\n"
           "tokens at both ends through W_E (read side) and W_U (OV write side).\n\n"
           "  --model MODEL   Hugging Face folder or llama2.c .bin (required)\n"
           "  --out FILE      write the JSON report there (default: stdout)\n"
           "  --fold-ln       TransformerLens weight processing: fold LayerNorm/RMSNorm gains (and LN biases\n"
           "                  and centring, for LayerNorm models) into the head weights, the final norm into\n"
           "                  W_U (default: raw weights, as MAPS)\n"
           "  --top N         tokens per list (default 5)\n"
           "Tokens are the tokenizer's pieces when a tokenizer sits beside the model, else ids.\n"
           "Details: docs/analysis-svd-composition.md\n");
}

/* True when rt_model_open_tokenizer would find a file beside the model: checked first so a model
 * without a tokenizer (random fixtures) gets ids instead of an error line. */
static bool tokenizer_beside(const rt_model *m) {
    struct stat st;
    char buf[4096];
    if (m->cfg.format == RT_FORMAT_HF) {
        snprintf(buf, sizeof buf, "%s/tokenizer.json", m->path);
        return stat(buf, &st) == 0;
    }
    snprintf(buf, sizeof buf, "%s", m->path);
    char *slash = strrchr(buf, '/');
    const char *dir = slash ? (*slash = '\0', buf[0] ? buf : "/") : ".";
    DIR *d = opendir(dir);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        found = strcmp(e->d_name, "tokenizer.bin") == 0 ||
                (strncmp(e->d_name, "tok", 3) == 0 && n >= 7 && strcmp(e->d_name + n - 4, ".bin") == 0);
    }
    if (d) closedir(d);
    return found;
}

int cmd_analyze_svd(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    an_svd_params p;
    an_svd_defaults(&p);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long n;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (strcmp(a, "--fold-ln") == 0) { p.fold_ln = true; continue; }
        if (strcmp(a, "--model") != 0 && strcmp(a, "--out") != 0 && strcmp(a, "--top") != 0) return cli_unknown("analyze svd", a);
        if (!(v = cli_value(argc, argv, &i, "analyze svd"))) return CLI_BADINPUT;
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else { if (!cli_parse_int(v, "--top", 1, 1000, &n)) return CLI_BADINPUT; p.top = (int)n; }
    }
    if (!model) { hs_log_error("headscope", "analyze svd needs --model MODEL — see 'headscope analyze svd --help'"); return CLI_BADINPUT; }
    an_ctx ctx;
    if (an_ctx_open_model(model, &ctx) != HS_OK) return CLI_BADINPUT;
    if (tokenizer_beside(ctx.m) && rt_model_open_tokenizer(ctx.m, NULL, &ctx.tok) != HS_OK) { an_ctx_close(&ctx); return CLI_BADINPUT; }
    hs_status rc = an_svd_run(&ctx, &p, out);
    an_ctx_close(&ctx);
    return rc == HS_OK ? CLI_OK : CLI_BADINPUT;
}
