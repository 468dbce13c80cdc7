/* cmd_info.c — `headscope info MODEL`: the model's configuration as JSON on stdout. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: headscope info MODEL\n\nPrints JSON: format, model_type, n_layers, n_heads, n_kv_heads, d_model,\n"
                   "d_head, d_mlp, vocab_size, n_ctx, n_params (and more details after those).\n");
            return CLI_OK;
        }
        if (argv[i][0] == '-' || path) return cli_unknown("info", argv[i]);
        path = argv[i];
    }
    if (!path) { hs_log_error("headscope", "info needs MODEL — usage: headscope info MODEL"); return CLI_BADINPUT; }
    rt_model *m;
    if (!cli_load(path, NULL, false, &m, NULL)) return CLI_BADINPUT;
    char *js = rt_model_info_json(m);
    printf("%s\n", js);
    free(js);
    rt_model_free(m);
    return CLI_OK;
}
