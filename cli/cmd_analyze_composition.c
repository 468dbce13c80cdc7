/* cmd_analyze_composition.c — `headscope analyze composition` (issue 5; being implemented). */
#include "cli.h"

int cmd_analyze_composition(int argc, char **argv) {
    (void)argc; (void)argv;
    hs_log_error("analyze", "the composition pass is not built yet in this version — see 'headscope analyze --help'");
    return CLI_BADINPUT;
}
