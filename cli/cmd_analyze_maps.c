/* cmd_analyze_maps.c — `headscope analyze maps` (issue 5; being implemented). */
#include "cli.h"

int cmd_analyze_maps(int argc, char **argv) {
    (void)argc; (void)argv;
    hs_log_error("analyze", "the maps pass is not built yet in this version — see 'headscope analyze --help'");
    return CLI_BADINPUT;
}
