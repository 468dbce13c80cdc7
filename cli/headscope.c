/* headscope.c — the command-line entry point: dispatches to one subcommand per file. */
#include "cli.h"
#include <string.h>

typedef struct { const char *name; int (*fn)(int, char **); const char *help; } command;

static const command k_commands[] = {
    { "info",       cmd_info,       "print a model's configuration as JSON" },
    { "tokenize",   cmd_tokenize,   "print the token ids of a text as a JSON array" },
    { "detokenize", cmd_detokenize, "print the text of token ids" },
    { "generate",   cmd_generate,   "sample a continuation (greedy at --temp 0)" },
    { "trace",      cmd_trace,      "run one prompt and write the requested hook tensors to JSON" },
    { "plant",      cmd_plant,      "write the planted-circuit gpt2 model (ground truth for detectors)" },
    { "capture",    cmd_capture,    "run prompts and store per-head activations and statistics in SQLite" },
    { "analyze",    cmd_analyze,    "run an analysis pass (sinks, detectors) over a captured run" },
    { "summary",    cmd_summary,    "print a short human summary of a run's reports" },
    { "view",       cmd_view,       "open the head-inspection viewer (or --screenshot headlessly)" },
};

static void usage(FILE *f) {
    fprintf(f, "headscope %s — a workbench for the attention heads of transformer language models\n\n"
               "usage: headscope <command> [args]   (headscope <command> --help for details)\n\ncommands:\n", HS_VERSION);
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        fprintf(f, "  %-11s %s\n", k_commands[i].name, k_commands[i].help);
    fprintf(f, "\nMODEL is a Hugging Face folder (config.json + safetensors) or a llama2.c .bin checkpoint.\n"
               "Exit status: 0 ok, 1 a check failed, 2 bad input.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return CLI_BADINPUT; }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) { usage(stdout); return CLI_OK; }
    if (strcmp(argv[1], "--version") == 0) { printf("headscope %s\n", HS_VERSION); return CLI_OK; }
    for (size_t i = 0; i < sizeof k_commands / sizeof *k_commands; i++)
        if (strcmp(argv[1], k_commands[i].name) == 0) return k_commands[i].fn(argc - 1, argv + 1);
    hs_log_error("headscope", "unknown command '%s' — run 'headscope --help' for the list", argv[1]);
    return CLI_BADINPUT;
}
