/* cmd_analyze_spectra.c — `headscope analyze spectra` (issue 5; being implemented). */
#include "cli.h"

int cmd_analyze_spectra(int argc, char **argv) {
    (void)argc; (void)argv;
    hs_log_error("analyze", "the spectra pass is not built yet in this version — see 'headscope analyze --help'");
    return CLI_BADINPUT;
}
