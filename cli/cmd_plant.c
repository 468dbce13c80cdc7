/* cmd_plant.c — `headscope plant --out DIR [--seed S]`: write the planted-circuit gpt2 model, the
 * ground truth for the head detectors and sink analyses (construction: docs/planted.md). */
#include "cli.h"
#include "datasets/plant.h"
#include <string.h>

static void usage(void) {
    printf("usage: headscope plant --out DIR [--seed S]\n\n"
           "Writes a Hugging Face gpt2 folder (config.json, model.safetensors, tokenizer.json,\n"
           "tokenizer_config.json, planted.json) whose weights are built by hand so that known heads\n"
           "implement known circuits (2 layers, 4 heads, d_model %d, n_ctx %d, vocab %d):\n"
           "  0.1 previous-token   1.2 induction (K-composition with 0.1)   1.0 BOS sink   1.3 copying\n"
           "  0.0 0.2 0.3 1.1 fillers (small random weights)\n"
           "planted.json names them; docs/planted.md explains the construction.\n\n"
           "  --out DIR   folder to write (created if missing; files of the same names are replaced)\n"
           "  --seed S    0 <= S < 2^53 (default 0): token codes and random weights; same seed, same bytes\n",
           DS_PLANT_D, DS_PLANT_CTX, DS_PLANT_VOCAB);
}

int cmd_plant(int argc, char **argv) {
    const char *out = NULL;
    long seed = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { usage(); return CLI_OK; }
        if (strcmp(argv[i], "--out") == 0) {
            if (!(out = cli_value(argc, argv, &i, "plant"))) return CLI_BADINPUT;
        } else if (strcmp(argv[i], "--seed") == 0) {
            const char *v = cli_value(argc, argv, &i, "plant");
            if (!v || !cli_parse_int(v, "--seed", 0, (long)(DS_PLANT_MAX_SEED - 1), &seed)) return CLI_BADINPUT;
        } else {
            return cli_unknown("plant", argv[i]);
        }
    }
    if (!out || !*out) {
        hs_log_error("headscope", "plant needs --out DIR — usage: headscope plant --out DIR [--seed S]");
        return CLI_BADINPUT;
    }
    if (ds_plant_write(out, (uint64_t)seed) != HS_OK) return CLI_BADINPUT;
    hs_log_info("plant", "wrote %s (seed %ld): previous-token 0.1, induction 1.2, BOS sink 1.0, copying 1.3 — see %s/planted.json",
                out, seed, out);
    return CLI_OK;
}
