/* cmd_analyze_svd.c — `headscope analyze svd` (issue 5; being implemented). */
#include "cli.h"

int cmd_analyze_svd(int argc, char **argv) {
    (void)argc; (void)argv;
    hs_log_error("analyze", "the svd pass is not built yet in this version — see 'headscope analyze --help'");
    return CLI_BADINPUT;
}
