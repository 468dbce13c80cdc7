/* viz.h — the head-inspection viewer: a native SDL2 window over a run database and its reports,
 * and the same drawing rendered offscreen to PNG (docs/viewer.md).
 *
 * Data flows one way: the viewer reads the run only through store/ (opened read-only, so it works
 * while a capture writes) and the analysis reports as JSON (from the database or --report files).
 * It never writes the database and never calls runtime/probe/analysis code.
 *
 * Views: overview grid (layers x heads coloured by a metric), head detail (attention pattern,
 * token strip, stats), spectra (ESD + Marchenko-Pastur fit), MAPS (relation x head scores, salient
 * operations), composition graph (Q/K/V edges between heads).
 */
#ifndef HS_VIZ_H
#define HS_VIZ_H
#include "runtime/common.h"

typedef struct {
    const char *db_path;          /* RUN.db (required) */
    const char *const *reports;   /* --report FILE.json, n_reports of them (may be NULL) */
    int n_reports;
    int64_t run_id;               /* 0 = the latest run of the database */
    const char *view;             /* "grid" | "head:L.H[:PROMPT]" | "spectra[:L.H]" | "maps" | "composition"; NULL = grid */
    const char *metric;           /* grid metric ("sinks.alpha_0", or a unique suffix such as "alpha_0"); NULL = first */
    int width, height;            /* window / image size in pixels (0 = 1280 x 800) */
    double scale;                 /* UI scale (fonts, padding); 0 = automatic (HiDPI ratio x display DPI) */
    bool light;                   /* light theme (figures for papers) instead of the dark one */
    const char *pattern_scale;    /* head view colour scale: "linear", "sqrt" (default) or "log"; NULL = default */
    const char *screenshot;       /* headless: render once to this PNG and return (no window) */
    const char *script;           /* hidden, interactive: scripted input events (docs/viewer.md#scripted-input) */
    const char *state_out;        /* hidden, interactive: write the final state as JSON on exit */
} viz_options;

/* Parse a view spec into its parts. Returns HS_OK, or HS_EBADINPUT with one logged line
 * ("view: ... — ..."). The layer, head and prompt outputs are -1 when the spec does not name them. */
typedef enum { VIZ_VIEW_GRID = 0, VIZ_VIEW_HEAD, VIZ_VIEW_SPECTRA, VIZ_VIEW_MAPS, VIZ_VIEW_COMPOSITION, VIZ_VIEW_COUNT } viz_view_id;
hs_status viz_view_parse(const char *spec, viz_view_id *view, int *layer, int *head, int *prompt);

/* Run the viewer: interactive window, or the headless screenshot when o->screenshot is set.
 * Returns a CLI exit status: 0 ok, 2 bad input / unreadable database or report / no display
 * (one error line logged; an interactive session shows the error on screen instead and returns 2
 * when closed). */
int viz_main(const viz_options *o);
#endif
