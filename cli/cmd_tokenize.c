/* cmd_tokenize.c — `headscope tokenize MODEL TEXT` and `headscope detokenize MODEL ID...`. */
#include "cli.h"
#include <stdlib.h>
#include <string.h>

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *text = NULL, *tokp = NULL, *file = NULL;
    bool special = true, pieces = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: headscope tokenize MODEL (TEXT | --file PATH) [--no-special] [--pieces] [--tokenizer FILE]\n\n"
                   "Prints the JSON array of token ids, with special tokens as the tokenizer's post-processor adds\n"
                   "them (e.g. BOS). --no-special omits them; --pieces prints the token strings instead.\n"
                   "TEXT must be valid UTF-8 (exit 2 with the byte offset otherwise).\n");
            return CLI_OK;
        }
        if (strcmp(argv[i], "--no-special") == 0) special = false;
        else if (strcmp(argv[i], "--pieces") == 0) pieces = true;
        else if (strcmp(argv[i], "--tokenizer") == 0) { if (!(tokp = cli_value(argc, argv, &i, "tokenize"))) return CLI_BADINPUT; }
        else if (strcmp(argv[i], "--file") == 0) { if (!(file = cli_value(argc, argv, &i, "tokenize"))) return CLI_BADINPUT; }
        else if (argv[i][0] == '-' && argv[i][1] == '-') return cli_unknown("tokenize", argv[i]);
        else if (!path) path = argv[i];
        else if (!text) text = argv[i];
        else return cli_unknown("tokenize", argv[i]);
    }
    if (!path || !text == !file) { hs_log_error("headscope", "tokenize needs MODEL and one of TEXT or --file PATH — usage: headscope tokenize MODEL TEXT"); return CLI_BADINPUT; }
    char *buf = NULL; size_t len = text ? strlen(text) : 0;
    if (file && hs_read_file("tokenize", file, &buf, &len) != HS_OK) return CLI_BADINPUT;
    rt_model *m; rt_tokenizer *tok;
    if (!cli_load(path, tokp, true, &m, &tok)) { free(buf); return CLI_BADINPUT; }
    int *ids = NULL, n = 0;
    int rc = CLI_OK;
    if (rt_tokenizer_encode(tok, file ? buf : text, len, special, &ids, &n) != HS_OK) { rc = CLI_BADINPUT; goto done; }
    putchar('[');
    for (int i = 0; i < n; i++) {
        if (i) putchar(',');
        if (pieces) { const char *p = rt_tokenizer_piece(tok, ids[i]); cli_json_string(stdout, p, strlen(p)); }
        else printf("%d", ids[i]);
    }
    printf("]\n");
done:
    free(ids); free(buf);
    rt_tokenizer_free(tok);
    rt_model_free(m);
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *path = NULL, *tokp = NULL;
    int *ids = NULL, n = 0, rc = CLI_OK;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: headscope detokenize MODEL ID... [--tokenizer FILE]\n\n"
                   "Prints the text of the ids (given as separate words or comma-separated), as the tokenizer decodes them.\n");
            free(ids);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--tokenizer") == 0) { if (!(tokp = cli_value(argc, argv, &i, "detokenize"))) { free(ids); return CLI_BADINPUT; } }
        else if (argv[i][0] == '-' && argv[i][1] == '-') { free(ids); return cli_unknown("detokenize", argv[i]); }
        else if (!path) path = argv[i];
        else {
            int *more, k;
            if (!cli_parse_ids(argv[i], &more, &k)) { free(ids); return CLI_BADINPUT; }
            ids = hs_xrealloc(ids, (size_t)(n + k + 1) * sizeof *ids);
            memcpy(ids + n, more, (size_t)k * sizeof *ids);
            n += k;
            free(more);
        }
    }
    if (!path) { hs_log_error("headscope", "detokenize needs MODEL and ids — usage: headscope detokenize MODEL ID..."); free(ids); return CLI_BADINPUT; }
    rt_model *m; rt_tokenizer *tok;
    if (!cli_load(path, tokp, true, &m, &tok)) { free(ids); return CLI_BADINPUT; }
    char *text = NULL; size_t len = 0;
    if (rt_tokenizer_decode(tok, ids, n, &text, &len) != HS_OK) rc = CLI_BADINPUT;
    else { fwrite(text, 1, len, stdout); putchar('\n'); }
    free(text); free(ids);
    rt_tokenizer_free(tok);
    rt_model_free(m);
    return rc;
}
