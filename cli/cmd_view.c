/* cmd_view.c — `headscope view RUN.db [--report FILE.json ...]`: the head-inspection viewer
 * (viz/), interactive or rendered headlessly to PNG with --screenshot. docs/viewer.md. */
#include "cli.h"
#include "viz/viz.h"
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: headscope view RUN.db [--report FILE.json ...] [--run ID] [--view VIEW] [--metric NAME]\n"
        "                     [--size WxH] [--scale F] [--light] [--pattern-scale linear|sqrt|log] [--screenshot OUT.png]\n\n"
        "Opens the run read-only (it works while a capture is still writing) with the reports stored in it\n"
        "and any --report files (a file replaces a stored report of the same pass).\n\n"
        "  --view VIEW        grid | head:L.H[:PROMPT] | spectra[:L.H] | maps | composition (default grid)\n"
        "  --metric NAME      grid colour: a metric such as sinks.alpha_0, or a unique suffix (alpha_0)\n"
        "  --run ID           a run other than the latest\n"
        "  --size WxH         window or image size in pixels (default 1280x800)\n"
        "  --scale F          UI scale (default: from the display's pixel ratio and DPI; 1 headless)\n"
        "  --light            light theme (figures for papers)\n"
        "  --pattern-scale S  head view colours: linear, sqrt (default) or log (key g cycles them)\n"
        "  --screenshot FILE  render VIEW offscreen to a PNG and exit (no display needed)\n\n"
        "Keys: Tab views · arrows heads · [ ] prompts · / search · s screenshot · ? help · Esc quit.\n"
        "Font: DejaVu Sans (fonts-dejavu-core), or HEADSCOPE_FONT=/path/to/font.ttf.\n");
}

static bool parse_size(const char *s, int *w, int *h) {
    char *e;
    long a = strtol(s, &e, 10);
    if (e == s || (*e != 'x' && *e != 'X')) return false;
    const char *p = e + 1;
    long b = strtol(p, &e, 10);
    if (e == p || *e || a < 320 || b < 200 || a > 16384 || b > 16384) return false;
    *w = (int)a; *h = (int)b;
    return true;
}

int cmd_view(int argc, char **argv) {
    viz_options o;
    memset(&o, 0, sizeof o);
    const char **reports = calloc((size_t)argc, sizeof *reports);
    int status = CLI_BADINPUT;
    if (!reports) { hs_log_error("view", "out of memory"); return CLI_BADINPUT; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) { usage(stdout); status = CLI_OK; goto done; }
        if (!strcmp(a, "--report")) { if (!(v = cli_value(argc, argv, &i, "view"))) goto done; reports[o.n_reports++] = v; }
        else if (!strcmp(a, "--run")) { long r; if (!(v = cli_value(argc, argv, &i, "view")) || !cli_parse_int(v, "--run", 1, 1L << 40, &r)) goto done; o.run_id = r; }
        else if (!strcmp(a, "--view")) { if (!(o.view = cli_value(argc, argv, &i, "view"))) goto done; }
        else if (!strcmp(a, "--metric")) { if (!(o.metric = cli_value(argc, argv, &i, "view"))) goto done; }
        else if (!strcmp(a, "--screenshot")) { if (!(o.screenshot = cli_value(argc, argv, &i, "view"))) goto done; }
        else if (!strcmp(a, "--size")) {
            if (!(v = cli_value(argc, argv, &i, "view"))) goto done;
            if (!parse_size(v, &o.width, &o.height)) { hs_log_error("view", "--size '%s' must be WxH within 320x200 .. 16384x16384 (e.g. 1280x800)", v); goto done; }
        }
        else if (!strcmp(a, "--scale")) { if (!(v = cli_value(argc, argv, &i, "view")) || !cli_parse_float(v, "--scale", 0.5, 4, &o.scale)) goto done; }
        else if (!strcmp(a, "--light")) o.light = true;
        else if (!strcmp(a, "--pattern-scale")) { if (!(o.pattern_scale = cli_value(argc, argv, &i, "view"))) goto done; }
        /* hidden, for tests: scripted input events and the final state as JSON (docs/viewer.md) */
        else if (!strcmp(a, "--script")) { if (!(o.script = cli_value(argc, argv, &i, "view"))) goto done; }
        else if (!strcmp(a, "--state-out")) { if (!(o.state_out = cli_value(argc, argv, &i, "view"))) goto done; }
        else if (a[0] == '-' && a[1]) { status = cli_unknown("view", a); goto done; }
        else if (!o.db_path) o.db_path = a;
        else { status = cli_unknown("view", a); goto done; }
    }
    if (!o.db_path) { hs_log_error("view", "view needs a run database — usage: headscope view RUN.db [--report FILE.json ...]"); goto done; }
    if (o.view) {   /* check the syntax before anything opens */
        viz_view_id id; int l, h, p;
        if (viz_view_parse(o.view, &id, &l, &h, &p) != HS_OK) goto done;
    }
    o.reports = reports;
    status = viz_main(&o);
done:
    free(reports);
    return status;
}
