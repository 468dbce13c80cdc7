/* viz_internal.h — what the viewer's files share: the loaded data (viz_data), the drawing context
 * (viz_ui: text cache, primitives, widgets, colour maps, theme), the application state (viz_app)
 * and each view's entry points. Not a public API: cli/ uses viz.h only; tests and the benchmark
 * include this header to sample pixels at known geometry.
 *
 * Frame model: every frame redraws everything (immediate mode). Each view records the geometry it
 * drew (rects, cell sizes) in its state, and the next event is hit-tested against that geometry.
 * Coordinates are output pixels (HiDPI: window coordinates x the pixel ratio).
 */
#ifndef HS_VIZ_INTERNAL_H
#define HS_VIZ_INTERNAL_H
#include "viz/viz.h"
#include "store/store.h"
#include <SDL.h>
#include <SDL_ttf.h>
#include <math.h>
#include <stdio.h>

/* ------------------------------------------------------------------ colour maps */
typedef enum { VIZ_CMAP_VIRIDIS = 0, VIZ_CMAP_INFERNO, VIZ_CMAP_COUNT } viz_cmap;
/* 256-entry tables, entry 255 = the top of the legend. Static storage, never freed. */
const SDL_Color *viz_cmap_lut(viz_cmap m);
const uint32_t *viz_cmap_argb(viz_cmap m);      /* the same as ARGB8888 pixels */
/* Index 0..255 of v in [lo, hi] (clamped); -1 for NaN; 128 when hi <= lo. */
int viz_cmap_index(double v, double lo, double hi);

/* ------------------------------------------------------------------ data */
typedef enum { VIZ_SRC_STATS = 0, VIZ_SRC_SINKS, VIZ_SRC_DETECTORS, VIZ_SRC_MAPS, VIZ_SRC_SVD,
               VIZ_SRC_SPECTRA, VIZ_SRC_COMPOSITION, VIZ_SRC_COUNT } viz_source;
extern const char *const viz_source_name[VIZ_SRC_COUNT];   /* "stats", "sinks", ... (= report pass names) */

typedef struct {
    char *name;            /* "stats.entropy", "sinks.alpha_0", "maps.copying", ... owned */
    viz_source src;
    double *v;             /* (L*H) value of head l*H+h; NaN = no value. owned */
    double lo, hi;         /* finite min / max (0, 0 when no value) */
    int n_valid;
} viz_metric;

typedef struct {
    char name[16];         /* W_Q, W_K, W_V, W_O, W_QK, W_OV, W_in, W_out, W_gate */
    int layer, head;       /* head -1 = a layer-level matrix */
    int shape[2];
    int num_spikes, rand_num_spikes;
    double sigma_mp, lambda_plus, lambda_minus, mp_softrank, stable_rank, entropy, alpha;   /* NaN = absent */
    double spike_threshold;  /* optional: lambda_+ plus the Tracy-Widom margin (NaN = use lambda_plus) */
    char law[32], status[32];  /* optional: fitted law ("marchenko_pastur", ...) and fit status */
    int n_bins;
    double *edges;         /* (n_bins + 1) ascending; owned */
    double *counts;        /* (n_bins); owned */
    int n_mp;
    double *mp_x, *mp_y;   /* (n_mp) fitted MP density; owned */
} viz_spectrum;

typedef struct {
    char *name;            /* owned */
    int k, n_pairs;
    double *scores, *supp; /* (L*H), NaN = absent; owned */
    int *top; int n_top;   /* flattened head indices l*H+h; owned */
} viz_relation;

typedef struct {
    char *token;           /* owned, display form */
    char **mapped; int n_mapped;   /* owned */
} viz_salient_op;

typedef struct { int from, to; char type; double score, z; } viz_edge;   /* heads flattened l*H+h */

typedef struct {
    char *db_path;         /* owned */
    store_db *db;
    store_run_info run;
    int L, H;              /* layers, query heads per layer */
    store_prompt *prompts; int n_prompts;
    viz_metric *metrics; int n_metrics;
    bool has[VIZ_SRC_COUNT];           /* which reports are loaded (stats: the run has statistics) */
    char *src_where[VIZ_SRC_COUNT];    /* "RUN.db" or the --report path; owned */
    viz_spectrum *spectra; int n_spectra;
    viz_relation *relations; int n_relations;
    viz_salient_op **salient; int *n_salient;   /* (L*H) lists; NULL when no maps report; owned */
    viz_edge *edges; int n_edges;      /* composition: pairs from the matrix, score descending; owned */
    bool edges_from_matrix;
    double edge_max;
    char warn[512];        /* a non-fatal note shown in the status bar ("" = none) */
    char err[1024];        /* the last error line (also logged once on stderr) */
} viz_data;

/* Open RUN.db read-only and load the run (run_id 0 = the latest), its prompts, run-level
 * statistics, the reports stored for it, then each --report file (a later file replaces an earlier
 * report of the same pass). On error: one line logged and copied to d->err; d is left closed
 * (viz_data_close is still safe). */
hs_status viz_data_open(viz_data *d, const char *db_path, int64_t run_id, const char *const *reports, int n_reports);
void viz_data_close(viz_data *d);
/* Index of a metric by full name, or by a unique suffix after a '.' ("alpha_0" -> "sinks.alpha_0").
 * -1 when none matches, -2 when several do. */
int viz_metric_find(const viz_data *d, const char *name);
/* The display strings of a prompt's tokens (invalid UTF-8 as \xHH, control characters escaped).
 * Caller frees with store_strs_free. HS_ENOTFOUND (not logged) when the prompt is not committed. */
hs_status viz_data_tokens(viz_data *d, int prompt, char ***strs, int *n);
/* The attention pattern of head (layer, head) in a prompt: *out (R, C) f32, row r = query
 * position row0 + r, column = key position. HS_ENOTFOUND (not logged) when not stored; other
 * errors logged once and copied to d->err. Free with store_tensor_clear. */
hs_status viz_data_pattern(viz_data *d, int prompt, int layer, int head, store_tensor *out, int *row0);
/* Per-prompt statistics of one prompt (all heads, all metrics). Caller frees *rows with free(). */
hs_status viz_data_prompt_stats(viz_data *d, int prompt, store_stat **rows, int *n);
/* Parse a head name "L.H" against the run's shape. */
bool viz_head_parse(const char *s, int L, int H, int *layer, int *head);
/* Validate and load one report (JSON text) into d; `where` names it in error lines. Exposed for
 * tests (the fuzz-style loop feeds it mutated reports). */
hs_status viz_data_load_report(viz_data *d, const char *json, size_t len, const char *where);

/* Make a token string displayable: \n \t escapes, other control and invalid UTF-8 bytes as \xHH,
 * spaces as U+2423 (␣) when visible_spaces, at most ~1 KiB. Heap string, free(). */
char *viz_token_display(const char *s, bool visible_spaces);

/* stderr capture: the store logs its error lines to stderr; the error screen wants them too.
 * Between begin and end, stderr writes go to memory; end writes them to the real stderr and copies
 * the last line into buf. Single-threaded use only (the viewer's thread). */
typedef struct { FILE *saved, *mem; char *text; size_t len; } viz_errcap;
void viz_errcap_begin(viz_errcap *c);
void viz_errcap_end(viz_errcap *c, char *buf, size_t n);

/* ------------------------------------------------------------------ drawing context */
enum { VIZ_FONT_SMALL = 0, VIZ_FONT_NORMAL, VIZ_FONT_BIG, VIZ_FONT_COUNT };
enum { VIZ_LEFT = 0, VIZ_CENTER = 1, VIZ_RIGHT = 2 };

typedef struct {
    SDL_Color bg, panel, panel_hi, border, text, dim, accent, select, missing, masked, warn, error;
    SDL_Color edge[3];     /* composition Q, K, V */
    SDL_Color bar, spike, curve;
} viz_theme;

typedef struct viz_text_entry viz_text_entry;
typedef struct { float x, y; } viz_pt;

typedef struct {
    SDL_Renderer *r;
    TTF_Font *font[VIZ_FONT_COUNT];
    int line_h[VIZ_FONT_COUNT];
    float s;               /* UI scale: 1 = 96 dpi */
    int w, h;              /* output size in pixels */
    viz_theme th;
    viz_text_entry *cache; int cache_cap, cache_n;
    uint64_t frame;
    SDL_Texture *disc;     /* white anti-aliased disc, colour-modulated for nodes */
    int disc_r;
    int mx, my;            /* mouse in output pixels; -1 when outside */
    char tip[2048]; int tip_x, tip_y; bool tip_on;
    SDL_Vertex *verts; int n_verts, cap_verts;    /* batched thick lines */
} viz_ui;

/* Open the font (font_path, else $HEADSCOPE_FONT, else the DejaVu Sans locations) at three sizes
 * scaled by `scale`. HS_EIO with one line when no font is found. Free with viz_ui_free. */
hs_status viz_ui_init(viz_ui *u, SDL_Renderer *r, float scale, bool light);
void viz_ui_free(viz_ui *u);
void viz_ui_frame_begin(viz_ui *u);       /* read the output size, clear to the background */
void viz_ui_frame_end(viz_ui *u);         /* draw the pending tooltip, trim the text cache */
static inline int viz_px(const viz_ui *u, float v) { return (int)lroundf(v * u->s); }
static inline bool viz_hit(SDL_Rect r, int x, int y) { return x >= r.x && y >= r.y && x < r.x + r.w && y < r.y + r.h; }
static inline SDL_Color viz_rgba(uint8_t r, uint8_t g, uint8_t b, uint8_t a) { SDL_Color c = { r, g, b, a }; return c; }

/* Text (cached textures). x is the left/centre/right edge per align, y the top. Clipped with an
 * ellipsis to max_w pixels when max_w > 0. Returns the drawn width. */
int viz_text(viz_ui *u, int font, int x, int y, SDL_Color c, int align, int max_w, const char *s);
int viz_textf(viz_ui *u, int font, int x, int y, SDL_Color c, int align, int max_w, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* Text rotated 90 degrees counter-clockwise, its baseline end at (x, y) (for column labels). */
void viz_text_up(viz_ui *u, int font, int x, int y, SDL_Color c, int max_len, const char *s);
void viz_text_size(viz_ui *u, int font, const char *s, int *w, int *h);
void viz_fill(viz_ui *u, SDL_Rect r, SDL_Color c);
void viz_outline(viz_ui *u, SDL_Rect r, SDL_Color c, int thickness);
void viz_hline(viz_ui *u, int x0, int x1, int y, SDL_Color c);
void viz_vline(viz_ui *u, int x, int y0, int y1, SDL_Color c);
/* Thick anti-alias-free line as a quad; batched until viz_lines_flush (one draw call for all). */
void viz_line(viz_ui *u, float x0, float y0, float x1, float y1, float width, SDL_Color c);
void viz_lines_flush(viz_ui *u);
void viz_disc(viz_ui *u, int cx, int cy, int radius, SDL_Color c);
/* A colour bar with its range: vertical (top = hi = entry 255) or horizontal (right = hi). */
void viz_legend(viz_ui *u, SDL_Rect bar, viz_cmap m, double lo, double hi, bool vertical, const char *label);
/* Queue a tooltip (lines separated by '\n') to draw on top at the end of the frame. */
void viz_tooltip(viz_ui *u, int x, int y, const char *text);
/* A centred box explaining why a view is empty and what to do. */
void viz_empty_state(viz_ui *u, SDL_Rect area, const char *title, const char *body);
/* Panel background with a title; returns the content rect. */
SDL_Rect viz_panel(viz_ui *u, SDL_Rect r, const char *title);
/* Up to max_n round tick values (1, 2, 5 x 10^k steps) inside [lo, hi]; returns how many. */
int viz_nice_ticks(double lo, double hi, int max_n, double *ticks);
/* "1.234", "1.2e-05", "—" for NaN: fixed width-ish formatting for tables. */
void viz_fmt_num(char *buf, size_t n, double v);

/* ------------------------------------------------------------------ application */
typedef struct {
    SDL_Rect grid, legend, picker, rank;
    int cell_w, cell_h;
    int hover;                   /* flattened head under the mouse, -1 none */
    int picker_scroll, rank_scroll, picker_row_h, rank_row_h;
    int filter;                  /* 0 all, 1 top 50 %, 2 top 25 %, 3 top 10 % */
    bool ascending;              /* ranked list order */
    int *order; int n_order;     /* heads with a value, ranked; owned */
    int order_metric;            /* metric the order was computed for (-1 none) */
    int shown_metric;            /* metric the picker last scrolled to (-1 none) */
    double filter_cut;           /* heads below this value are dimmed (NaN = none) */
} viz_grid_state;

typedef struct {
    int prompt, layer, head;     /* which pattern is loaded (-1 none) */
    hs_status status;            /* HS_OK, HS_ENOTFOUND (empty state) or an error */
    store_tensor pat;            /* (R, C) row = query row0 + r */
    int R, C, row0;
    uint8_t *pyr;                /* max-pooled colour indices, level 0 = (R, C); owned */
    int n_levels; size_t lvl_off[24]; int lvl_w[24], lvl_h[24];
    int scale_mode;              /* 0 linear, 1 sqrt, 2 log10 (1e-4 .. 1) */
    int pyr_scale;               /* scale the pyramid was built with (-1 none) */
    double zoom, cx, cy;         /* zoom >= 1; centre of the view in cell units */
    SDL_Texture *tex; int tex_w, tex_h;
    bool tex_dirty;
    uint64_t tex_key[8];         /* view parameters the texture shows */
    SDL_Rect hm, strip, stats, legend;
    double x0, y0, sx, sy;       /* visible cells: columns [x0, x0+sx), rows [y0, y0+sy) */
    int strip_first, strip_n, strip_row_h;
    SDL_Rect strip_q, strip_k;   /* the two token columns */
    int sel_query;               /* selected query position, -1 none */
    int hover_q, hover_k;        /* positions under the mouse, -1 none */
    bool dragging; int drag_x, drag_y; double drag_cx, drag_cy;
    bool searching; char search[128]; int *matches; int n_matches, match_i;
    bool skip_slash;             /* drop the TEXTINPUT "/" that follows the key that opened the search */
    int stats_scroll;
    int *xa, *xb, *xm, *ya, *yb, *ym, cap_x, cap_y;   /* per-pixel texel ranges (reused buffers) */
    double last_render_ms;       /* time of the last texture rebuild (bench) */
    int rebuilds;                /* texture rebuilds so far (bench, tests) */
} viz_head_state;

typedef struct {
    int sel;                     /* index into d->spectra, -1 none */
    char sel_name[16];           /* what sel shows, kept across head changes */
    bool sel_is_head, prefer_head;
    int xmode;                   /* 0 auto (log when the eigenvalues span > 3 decades), 1 linear, 2 log */
    bool logx;                   /* what the last frame used */
    SDL_Rect list, plot;
    int list_scroll, row_h;
    int *items; int n_items;     /* spectra shown in the list (this layer + this head); owned */
    int hover_bin;
} viz_spectra_state;

typedef struct {
    int rel;                     /* selected relation */
    SDL_Rect table, ops;
    int row_h, strip_x, strip_w, scroll;
    SDL_Texture **strips; int n_strips;  /* one 1-pixel-high texture per relation row (L*H wide) */
    int hover_rel, hover_head;
} viz_maps_state;

typedef struct {
    double threshold;            /* edges with score >= threshold are drawn */
    bool show[3];                /* Q, K, V */
    SDL_Rect graph, side, slider;
    int hover;                   /* node under the mouse, -1 none */
    bool drag_slider;
    int n_drawn;
    float *nx, *ny;              /* node centres of the last frame (L*H); owned */
} viz_comp_state;

typedef struct viz_app {
    const viz_options *opt;
    viz_data d;
    bool loaded;
    char error[1024];            /* non-empty: the error screen shows it */
    viz_ui ui;
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Surface *surf;           /* headless target */
    bool headless;
    float px_ratio;              /* output pixels per window coordinate */
    viz_view_id view;
    int layer, head, prompt, metric;
    bool help;
    char status[512]; uint32_t status_until;
    SDL_Rect tabs[VIZ_VIEW_COUNT], main, top, bottom;
    /* the current prompt's tokens and per-prompt stats, loaded on demand */
    int tok_prompt; char **tok; int n_tok; hs_status tok_status;
    int pst_prompt; store_stat *pst; int n_pst;
    viz_grid_state grid;
    viz_head_state hv;
    viz_spectra_state sp;
    viz_maps_state mp;
    viz_comp_state cp;
    bool quit;
    int shots;
} viz_app;

/* Create the app state over an SDL renderer (window or software surface). Loads the data; a
 * load error leaves a->error set (the error screen) and returns its status. */
hs_status viz_app_init(viz_app *a, const viz_options *o, SDL_Renderer *r, float scale, bool headless);
void viz_app_free(viz_app *a);
/* Apply the initial --view / --metric (HS_EBADINPUT with one line when they do not fit the run). */
hs_status viz_app_apply_options(viz_app *a);
/* Draw one complete frame into the renderer (not presented). */
void viz_app_render(viz_app *a);
/* Handle one event (mouse coordinates already in output pixels). Returns true when a redraw is needed. */
bool viz_app_event(viz_app *a, const SDL_Event *e);
/* Render headlessly at w x h and return the frame as an ARGB8888 surface (caller frees with
 * SDL_FreeSurface), or NULL with one line logged. For tests and the benchmark. */
SDL_Surface *viz_render_surface(viz_app *a);
/* Select a head (clamped) and a prompt; reloads what the views need. */
void viz_app_select(viz_app *a, int layer, int head);
void viz_app_set_prompt(viz_app *a, int prompt);
void viz_app_status(viz_app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ensure the current prompt's tokens are loaded; false when unavailable (a->tok_status says why). */
bool viz_app_tokens(viz_app *a);
/* Write the state JSON (view, layer, head, prompt, metric, query, zoom) to path. */
hs_status viz_app_write_state(const viz_app *a, const char *path);

/* Views: draw into `area`; handle one event (true = redraw); free view-owned resources. */
void viz_grid_draw(viz_app *a, SDL_Rect area);
bool viz_grid_event(viz_app *a, const SDL_Event *e);
void viz_grid_free(viz_app *a);
void viz_grid_help(const char **lines, int *n);
void viz_head_draw(viz_app *a, SDL_Rect area);
bool viz_head_event(viz_app *a, const SDL_Event *e);
void viz_head_free(viz_app *a);
/* Map a pattern cell to the centre pixel of its on-screen square in the last frame (tests). */
bool viz_head_cell_center(const viz_app *a, int query, int key, int *x, int *y);
void viz_spectra_draw(viz_app *a, SDL_Rect area);
bool viz_spectra_event(viz_app *a, const SDL_Event *e);
void viz_spectra_free(viz_app *a);
void viz_maps_draw(viz_app *a, SDL_Rect area);
bool viz_maps_event(viz_app *a, const SDL_Event *e);
void viz_maps_free(viz_app *a);
void viz_comp_draw(viz_app *a, SDL_Rect area);
bool viz_comp_event(viz_app *a, const SDL_Event *e);
void viz_comp_free(viz_app *a);
#endif
