/* viz_app.c — the viewer application: state, frame layout (tab bar, view, status bar, help and
 * error screens), global keys, the interactive SDL event loop, the headless screenshot path,
 * scripted input for tests, and the exit-state file.
 *
 * The interactive loop is event driven: it sleeps in SDL_WaitEventTimeout and redraws only after
 * an event (or when a status message expires), so an idle viewer costs no CPU on a shared machine.
 * Headless rendering uses SDL's software renderer on a plain surface: no video driver, no display.
 */
#include "viz_internal.h"
#include <SDL_image.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_view_names[VIZ_VIEW_COUNT] = { "grid", "head", "spectra", "maps", "composition" };
static const char *const k_view_titles[VIZ_VIEW_COUNT] = { "Grid", "Head", "Spectra", "MAPS", "Composition" };

/* ------------------------------------------------------------------ view spec */

static bool parse_uint(const char *s, size_t n, long max, long *out) {
    if (n == 0 || n > 9) return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) { if (s[i] < '0' || s[i] > '9') return false; v = v * 10 + (s[i] - '0'); }
    if (v > max) return false;
    *out = v;
    return true;
}

hs_status viz_view_parse(const char *spec, viz_view_id *view, int *layer, int *head, int *prompt) {
    *view = VIZ_VIEW_GRID; *layer = *head = *prompt = -1;
    if (!spec || !*spec) return HS_OK;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    int v = -1;
    for (int i = 0; i < VIZ_VIEW_COUNT; i++) if (strlen(k_view_names[i]) == n && strncmp(spec, k_view_names[i], n) == 0) v = i;
    if (v < 0) goto bad;
    *view = (viz_view_id)v;
    if (!colon) return HS_OK;
    if (v == VIZ_VIEW_GRID) goto bad;
    const char *hs = colon + 1, *dot = strchr(hs, '.');
    if (!dot) goto bad;
    const char *c2 = strchr(dot, ':');
    long l, h, p;
    if (!parse_uint(hs, (size_t)(dot - hs), 100000, &l)) goto bad;
    if (!parse_uint(dot + 1, c2 ? (size_t)(c2 - dot - 1) : strlen(dot + 1), 100000, &h)) goto bad;
    if (c2) {
        if (v != VIZ_VIEW_HEAD || !parse_uint(c2 + 1, strlen(c2 + 1), 1000000000, &p)) goto bad;
        *prompt = (int)p;
    }
    *layer = (int)l; *head = (int)h;
    return HS_OK;
bad:
    hs_log_error("view", "bad --view '%s' — use grid, head:L.H[:PROMPT], spectra[:L.H], maps or composition (e.g. head:0.1:0)", spec);
    return HS_EBADINPUT;
}

/* ------------------------------------------------------------------ state */

void viz_app_status(viz_app *a, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); vsnprintf(a->status, sizeof a->status, fmt, ap); va_end(ap);
    a->status_until = SDL_GetTicks() + 4000;
}

static void drop_prompt_cache(viz_app *a) {
    store_strs_free(a->tok, a->n_tok);
    a->tok = NULL; a->n_tok = 0; a->tok_prompt = -1; a->tok_status = HS_OK;
    free(a->pst); a->pst = NULL; a->n_pst = 0; a->pst_prompt = -1;
}

bool viz_app_tokens(viz_app *a) {
    if (a->d.n_prompts == 0) { a->tok_status = HS_ENOTFOUND; return false; }
    if (a->tok_prompt == a->prompt) return a->tok_status == HS_OK;
    drop_prompt_cache(a);
    a->tok_prompt = a->prompt;
    a->tok_status = viz_data_tokens(&a->d, a->d.prompts[a->prompt].index, &a->tok, &a->n_tok);
    return a->tok_status == HS_OK;
}

void viz_app_select(viz_app *a, int layer, int head) {
    if (a->d.L <= 0) return;
    a->layer = layer < 0 ? 0 : layer >= a->d.L ? a->d.L - 1 : layer;
    a->head = head < 0 ? 0 : head >= a->d.H ? a->d.H - 1 : head;
}

void viz_app_set_prompt(viz_app *a, int prompt) {
    if (a->d.n_prompts <= 0) { a->prompt = 0; return; }
    if (prompt < 0) prompt = 0;
    if (prompt >= a->d.n_prompts) prompt = a->d.n_prompts - 1;
    if (prompt == a->prompt) return;
    a->prompt = prompt;
    a->hv.sel_query = -1;
    a->hv.n_matches = 0;
}

static void free_views(viz_app *a) {
    viz_grid_free(a); viz_head_free(a); viz_spectra_free(a); viz_maps_free(a); viz_comp_free(a);
}

static void init_views(viz_app *a) {
    memset(&a->grid, 0, sizeof a->grid);
    memset(&a->hv, 0, sizeof a->hv);
    memset(&a->sp, 0, sizeof a->sp);
    memset(&a->mp, 0, sizeof a->mp);
    memset(&a->cp, 0, sizeof a->cp);
    a->grid.hover = -1; a->grid.order_metric = -1; a->grid.shown_metric = -1; a->grid.filter_cut = NAN;
    a->hv.prompt = a->hv.layer = a->hv.head = -1; a->hv.pyr_scale = -1; a->hv.zoom = 1;
    a->hv.scale_mode = 1;   /* sqrt: near-uniform heads of long prompts stay visible; g cycles linear/sqrt/log */
    a->hv.sel_query = a->hv.hover_q = a->hv.hover_k = -1; a->hv.status = HS_OK;
    a->sp.sel = -1; a->sp.hover_bin = -1;
    a->mp.hover_rel = a->mp.hover_head = -1; a->mp.rel = -1;
    a->cp.show[0] = a->cp.show[1] = a->cp.show[2] = true; a->cp.hover = -1; a->cp.threshold = NAN;
}

hs_status viz_app_init(viz_app *a, const viz_options *o, SDL_Renderer *r, float scale, bool headless) {
    memset(a, 0, sizeof *a);
    a->opt = o;
    a->ren = r;
    a->headless = headless;
    a->px_ratio = 1;
    a->tok_prompt = a->pst_prompt = -1;
    init_views(a);
    hs_status rc = viz_ui_init(&a->ui, r, scale, o->light);
    if (rc != HS_OK) return rc;   /* no font: nothing can be drawn, not even the error screen */
    rc = viz_data_open(&a->d, o->db_path, o->run_id, o->reports, o->n_reports);
    if (rc != HS_OK) { snprintf(a->error, sizeof a->error, "%s", a->d.err); return rc; }
    a->loaded = true;
    a->metric = a->d.n_metrics ? 0 : -1;
    if (a->d.warn[0]) hs_log_info("view", "%s", a->d.warn);
    return HS_OK;
}

void viz_app_free(viz_app *a) {
    free_views(a);
    drop_prompt_cache(a);
    viz_data_close(&a->d);
    viz_ui_free(&a->ui);
}

hs_status viz_app_apply_options(viz_app *a) {
    const viz_options *o = a->opt;
    int l, h, p;
    viz_view_id v;
    if (viz_view_parse(o->view, &v, &l, &h, &p) != HS_OK) return HS_EBADINPUT;
    a->view = v;
    if (l >= 0) {
        if (l >= a->d.L || h >= a->d.H) {
            hs_log_error("view", "head %d.%d is not in the model (%d layers x %d heads: 0.0 .. %d.%d) — pick a head inside that range",
                         l, h, a->d.L, a->d.H, a->d.L - 1, a->d.H - 1);
            return HS_EBADINPUT;
        }
        viz_app_select(a, l, h);
        a->sp.prefer_head = true;   /* spectra:L.H shows the head's matrices first */
    }
    if (p >= 0) {
        int pos = -1;
        for (int i = 0; i < a->d.n_prompts; i++) if (a->d.prompts[i].index == p) pos = i;
        if (pos < 0) {
            hs_log_error("view", "prompt %d is not in run %lld (it has %d committed prompts: 0 .. %d) — pick another PROMPT",
                         p, (long long)a->d.run.id, a->d.n_prompts, a->d.n_prompts - 1);
            return HS_EBADINPUT;
        }
        a->prompt = pos;
    }
    if (o->pattern_scale) {
        static const char *const names[3] = { "linear", "sqrt", "log" };
        int k = -1;
        for (int i = 0; i < 3; i++) if (!strcmp(o->pattern_scale, names[i])) k = i;
        if (k < 0) { hs_log_error("view", "--pattern-scale '%s' must be linear, sqrt or log", o->pattern_scale); return HS_EBADINPUT; }
        a->hv.scale_mode = k;
    }
    if (o->metric) {
        int m = viz_metric_find(&a->d, o->metric);
        if (m < 0) {
            char list[600]; size_t k = 0; list[0] = 0;
            for (int i = 0; i < a->d.n_metrics && k < sizeof list - 80; i++)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", a->d.metrics[i].name);
            if (k >= sizeof list - 80) snprintf(list + k, sizeof list - k, ", ...");
            hs_log_error("view", "%s metric '%s' — the run has: %s", m == -2 ? "ambiguous" : "no", o->metric, a->d.n_metrics ? list : "no metrics (no statistics, no reports)");
            return HS_EBADINPUT;
        }
        a->metric = m;
    }
    return HS_OK;
}

static hs_status reload(viz_app *a) {
    viz_data nd;
    hs_status rc = viz_data_open(&nd, a->opt->db_path, a->d.run.id, a->opt->reports, a->opt->n_reports);
    if (rc != HS_OK) { viz_app_status(a, "reload failed: %s", nd.err); return rc; }
    char metric[160] = "";
    if (a->metric >= 0 && a->metric < a->d.n_metrics) snprintf(metric, sizeof metric, "%s", a->d.metrics[a->metric].name);
    free_views(a);
    drop_prompt_cache(a);
    viz_data_close(&a->d);
    a->d = nd;
    int keep_q = a->hv.sel_query, keep_scale = a->hv.scale_mode;
    viz_view_id keep_view = a->view;
    init_views(a);
    a->hv.sel_query = keep_q; a->hv.scale_mode = keep_scale; a->view = keep_view;
    a->metric = metric[0] ? viz_metric_find(&a->d, metric) : -1;
    if (a->metric < 0) a->metric = a->d.n_metrics ? 0 : -1;
    viz_app_select(a, a->layer, a->head);
    if (a->prompt >= a->d.n_prompts) a->prompt = a->d.n_prompts ? a->d.n_prompts - 1 : 0;
    viz_app_status(a, "reloaded: %d prompts, %d metrics", a->d.n_prompts, a->d.n_metrics);
    return HS_OK;
}

/* ------------------------------------------------------------------ drawing */

static const char *const k_help[][2] = {
    { "Tab / Shift+Tab, 1..5", "next / previous view, or jump to one" },
    { "arrows", "move between heads (left/right: head, up/down: layer)" },
    { "[  ]", "previous / next prompt" },
    { "PageUp / PageDown", "previous / next metric, matrix or relation" },
    { "Enter, double-click", "open the selected head's pattern" },
    { "/   n  N", "search a token in the prompt; next / previous match" },
    { "+  -  0, wheel, drag", "zoom in / out / reset, pan (head view)" },
    { "g", "colour scale sqrt / log / linear (head view)" },
    { "f  o", "filter heads by quantile, flip ranking order (grid)" },
    { "l", "log / linear x axis (spectra)" },
    { "q k v,  +  -", "toggle edge types, raise / lower threshold (composition)" },
    { "s", "save a screenshot (PNG) of this view" },
    { "r", "re-read the database (a capture may still be writing)" },
    { "?  F1", "this help" },
    { "Esc", "close an overlay or the search, else quit (also Ctrl+Q)" },
};

static void draw_help(viz_app *a) {
    viz_ui *u = &a->ui;
    int n = (int)(sizeof k_help / sizeof *k_help), lh = u->line_h[VIZ_FONT_NORMAL], pad = viz_px(u, 16);
    int kw = 0, dw = 0;
    for (int i = 0; i < n; i++) {
        int tw, th;
        viz_text_size(u, VIZ_FONT_NORMAL, k_help[i][0], &tw, &th); if (tw > kw) kw = tw;
        viz_text_size(u, VIZ_FONT_NORMAL, k_help[i][1], &tw, &th); if (tw > dw) dw = tw;
    }
    int w = kw + pad + dw;
    SDL_Rect box = { (u->w - w) / 2 - pad, (u->h - n * lh) / 2 - pad - lh, w + 2 * pad, n * lh + 2 * pad + 2 * lh };
    u->tip_on = false;   /* no tooltip over the help */
    viz_fill(u, (SDL_Rect){ 0, 0, u->w, u->h }, viz_rgba(0, 0, 0, 140));
    viz_fill(u, box, u->th.panel);
    viz_outline(u, box, u->th.accent, 1);
    viz_text(u, VIZ_FONT_BIG, box.x + pad, box.y + pad / 2, u->th.text, VIZ_LEFT, 0, "Keys and mouse");
    for (int i = 0; i < n; i++) {
        int y = box.y + pad + (i + 1) * lh + lh / 2;
        viz_text(u, VIZ_FONT_NORMAL, box.x + pad, y, u->th.accent, VIZ_LEFT, 0, k_help[i][0]);
        viz_text(u, VIZ_FONT_NORMAL, box.x + pad + kw + pad, y, u->th.text, VIZ_LEFT, 0, k_help[i][1]);
    }
}

static void draw_error(viz_app *a) {
    viz_ui *u = &a->ui;
    char body[1400];
    snprintf(body, sizeof body, "%s\n\nThe viewer did not change anything. Fix the file and start it again. Press Esc to quit.", a->error);
    viz_fill(u, (SDL_Rect){ 0, 0, u->w, u->h }, u->th.bg);
    viz_empty_state(u, (SDL_Rect){ 0, 0, u->w, u->h }, "Cannot show this run", body);
}

static const char *view_hint(const viz_app *a) {
    switch (a->view) {
    case VIZ_VIEW_GRID: return "click/arrows: select head · Enter: open pattern · PgUp/PgDn: metric · f: filter · o: order · ?: help";
    case VIZ_VIEW_HEAD: return "wheel/+/-: zoom · drag: pan · click: pin query · [ ]: prompt · /: search · g: scale · ?: help";
    case VIZ_VIEW_SPECTRA: return "arrows: head · PgUp/PgDn or click: matrix · l: log x · ?: help";
    case VIZ_VIEW_MAPS: return "click a cell: relation and head · PgUp/PgDn: relation · arrows: head · ?: help";
    default: return "q/k/v: edge types · +/-: threshold (or drag the slider) · click a node: select · ?: help";
    }
}

void viz_app_render(viz_app *a) {
    viz_ui *u = &a->ui;
    viz_ui_frame_begin(u);
    if (a->error[0]) { draw_error(a); viz_ui_frame_end(u); return; }
    int pad = viz_px(u, 8), bar_h = u->line_h[VIZ_FONT_NORMAL] + viz_px(u, 12), st_h = u->line_h[VIZ_FONT_SMALL] + viz_px(u, 8);
    a->top = (SDL_Rect){ 0, 0, u->w, bar_h };
    a->bottom = (SDL_Rect){ 0, u->h - st_h, u->w, st_h };
    a->main = (SDL_Rect){ pad, bar_h + pad, u->w - 2 * pad, u->h - bar_h - st_h - 2 * pad };
    viz_fill(u, a->top, u->th.panel);
    viz_hline(u, 0, u->w, bar_h - 1, u->th.border);
    int x = pad;
    for (int i = 0; i < VIZ_VIEW_COUNT; i++) {
        char t[48]; snprintf(t, sizeof t, "%d %s", i + 1, k_view_titles[i]);
        int tw, th; viz_text_size(u, VIZ_FONT_NORMAL, t, &tw, &th);
        SDL_Rect tab = { x, viz_px(u, 3), tw + 2 * pad, bar_h - viz_px(u, 3) };
        a->tabs[i] = tab;
        if (i == (int)a->view) { viz_fill(u, tab, u->th.bg); viz_hline(u, tab.x, tab.x + tab.w, tab.y, u->th.accent); viz_hline(u, tab.x, tab.x + tab.w, tab.y + 1, u->th.accent); }
        viz_text(u, VIZ_FONT_NORMAL, x + pad, (bar_h - th) / 2 + viz_px(u, 1), i == (int)a->view ? u->th.text : u->th.dim, VIZ_LEFT, 0, t);
        x += tab.w + viz_px(u, 2);
    }
    const char *db = strrchr(a->d.db_path, '/');
    db = db ? db + 1 : a->d.db_path;
    char info[600];
    const char *mtype = "";
    if (a->d.run.model_path) { const char *p = strrchr(a->d.run.model_path, '/'); mtype = p && p[1] ? p + 1 : a->d.run.model_path; }
    snprintf(info, sizeof info, "%s · run %lld (%s) · %s · %d×%d heads · head %d.%d · prompt %d of %d",
             db, (long long)a->d.run.id, a->d.run.status ? a->d.run.status : "?", mtype, a->d.L, a->d.H, a->layer, a->head,
             a->d.n_prompts ? a->prompt + 1 : 0, a->d.n_prompts);
    int lh = u->line_h[VIZ_FONT_SMALL];
    viz_text(u, VIZ_FONT_SMALL, u->w - pad, (bar_h - lh) / 2, u->th.dim, VIZ_RIGHT, u->w - x - 2 * pad, info);

    switch (a->view) {
    case VIZ_VIEW_GRID: viz_grid_draw(a, a->main); break;
    case VIZ_VIEW_HEAD: viz_head_draw(a, a->main); break;
    case VIZ_VIEW_SPECTRA: viz_spectra_draw(a, a->main); break;
    case VIZ_VIEW_MAPS: viz_maps_draw(a, a->main); break;
    default: viz_comp_draw(a, a->main); break;
    }
    viz_lines_flush(u);

    viz_fill(u, a->bottom, u->th.panel);
    viz_hline(u, 0, u->w, a->bottom.y, u->th.border);
    bool msg = a->status[0] && (a->headless || SDL_TICKS_PASSED(a->status_until, SDL_GetTicks()) == 0);
    const char *right = msg ? a->status : a->d.warn;
    int rw = 0;
    if (right && *right) rw = viz_text(u, VIZ_FONT_SMALL, u->w - pad, a->bottom.y + viz_px(u, 4), msg ? u->th.accent : u->th.warn, VIZ_RIGHT, u->w / 2, right);
    viz_text(u, VIZ_FONT_SMALL, pad, a->bottom.y + viz_px(u, 4), u->th.dim, VIZ_LEFT, u->w - rw - 3 * pad, view_hint(a));
    if (a->help) draw_help(a);
    viz_ui_frame_end(u);
}

/* ------------------------------------------------------------------ screenshots */

/* Write an ARGB surface as an RGB PNG: screenshots have no transparency, and dropping the alpha
 * channel makes the files ~20% smaller. */
static int write_png(SDL_Surface *argb, const char *path) {
    SDL_Surface *rgb = SDL_ConvertSurfaceFormat(argb, SDL_PIXELFORMAT_RGB24, 0);
    int rc = IMG_SavePNG(rgb ? rgb : argb, path);
    if (rgb) SDL_FreeSurface(rgb);
    return rc;
}

static hs_status save_png(viz_app *a, const char *path) {
    int w = a->ui.w, h = a->ui.h;
    SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, w, h, 32, SDL_PIXELFORMAT_ARGB8888);
    if (!s) { hs_log_error("view", "cannot allocate a %dx%d screenshot (%s) — use a smaller --size", w, h, SDL_GetError()); return HS_EIO; }
    hs_status rc = HS_OK;
    if (SDL_RenderReadPixels(a->ren, NULL, SDL_PIXELFORMAT_ARGB8888, s->pixels, s->pitch) != 0) {
        hs_log_error("view", "cannot read the frame back (%s) — try SDL_RENDER_DRIVER=software", SDL_GetError()); rc = HS_EIO;
    } else if (write_png(s, path) != 0) {
        hs_log_error("view", "cannot write %s (%s) — check the directory exists and is writable", path, IMG_GetError()); rc = HS_EIO;
    }
    SDL_FreeSurface(s);
    return rc;
}

static void shot_interactive(viz_app *a) {
    char path[512];
    const char *dir = getenv("HEADSCOPE_SHOT_DIR");
    for (int tries = 0; tries < 1000; tries++) {
        snprintf(path, sizeof path, "%s%sheadscope-%s-%d.%d-%d.png", dir ? dir : "", dir ? "/" : "", k_view_names[a->view], a->layer, a->head, ++a->shots);
        FILE *f = fopen(path, "rb");
        if (!f) break;
        fclose(f);
    }
    if (save_png(a, path) == HS_OK) viz_app_status(a, "saved %s", path);
    else viz_app_status(a, "screenshot failed (see stderr)");
}

SDL_Surface *viz_render_surface(viz_app *a) {
    viz_app_render(a);
    SDL_RenderFlush(a->ren);
    if (a->surf) {
        SDL_Surface *s = SDL_ConvertSurfaceFormat(a->surf, SDL_PIXELFORMAT_ARGB8888, 0);
        if (!s) hs_log_error("view", "cannot copy the frame (%s) — out of memory?", SDL_GetError());
        return s;
    }
    SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, a->ui.w, a->ui.h, 32, SDL_PIXELFORMAT_ARGB8888);
    if (s && SDL_RenderReadPixels(a->ren, NULL, SDL_PIXELFORMAT_ARGB8888, s->pixels, s->pitch) != 0) { SDL_FreeSurface(s); s = NULL; }
    if (!s) hs_log_error("view", "cannot read the frame back (%s)", SDL_GetError());
    return s;
}

/* ------------------------------------------------------------------ events */

static void move_head(viz_app *a, int dl, int dh) {
    int N = a->d.L * a->d.H;
    if (N <= 0) return;
    int flat = a->layer * a->d.H + a->head;
    if (dh) flat = (flat + dh + N) % N;          /* left/right walk through every head, layer by layer */
    int l = flat / a->d.H + dl, h = flat % a->d.H;
    if (l < 0) l = 0;
    if (l >= a->d.L) l = a->d.L - 1;
    viz_app_select(a, l, h);
}

static bool view_event(viz_app *a, const SDL_Event *e) {
    switch (a->view) {
    case VIZ_VIEW_GRID: return viz_grid_event(a, e);
    case VIZ_VIEW_HEAD: return viz_head_event(a, e);
    case VIZ_VIEW_SPECTRA: return viz_spectra_event(a, e);
    case VIZ_VIEW_MAPS: return viz_maps_event(a, e);
    default: return viz_comp_event(a, e);
    }
}

static bool want_shot;

bool viz_app_event(viz_app *a, const SDL_Event *e) {
    viz_ui *u = &a->ui;
    switch (e->type) {
    case SDL_QUIT: a->quit = true; return false;
    case SDL_WINDOWEVENT:
        if (e->window.event == SDL_WINDOWEVENT_LEAVE) { u->mx = u->my = -1; }
        return true;
    case SDL_MOUSEMOTION: u->mx = e->motion.x; u->my = e->motion.y; break;
    case SDL_MOUSEBUTTONDOWN: case SDL_MOUSEBUTTONUP: u->mx = e->button.x; u->my = e->button.y; break;
    default: break;
    }
    if (a->error[0]) {
        if (e->type == SDL_KEYDOWN && (e->key.keysym.sym == SDLK_ESCAPE || e->key.keysym.sym == SDLK_q)) a->quit = true;
        return e->type != SDL_MOUSEMOTION;
    }
    if (a->help) {
        if (e->type == SDL_KEYDOWN || e->type == SDL_MOUSEBUTTONDOWN) { a->help = false; return true; }
        return false;
    }
    bool searching = a->view == VIZ_VIEW_HEAD && a->hv.searching;
    if (searching || e->type != SDL_KEYDOWN) {
        if (e->type == SDL_MOUSEBUTTONDOWN && e->button.button == SDL_BUTTON_LEFT) {
            for (int i = 0; i < VIZ_VIEW_COUNT; i++)
                if (viz_hit(a->tabs[i], e->button.x, e->button.y)) { a->view = (viz_view_id)i; return true; }
        }
        return view_event(a, e);
    }
    SDL_Keycode k = e->key.keysym.sym;
    Uint16 mod = e->key.keysym.mod;
    bool shift = mod & KMOD_SHIFT, ctrl = mod & KMOD_CTRL;
    if (k == SDLK_F1 || k == SDLK_QUESTION || (k == SDLK_SLASH && shift)) { a->help = true; return true; }
    if (ctrl && k == SDLK_q) { a->quit = true; return false; }
    if (view_event(a, e)) return true;   /* the view's own keys first (it ignores the global ones) */
    switch (k) {
    case SDLK_ESCAPE: a->quit = true; return false;
    case SDLK_TAB: a->view = (viz_view_id)((a->view + (shift ? VIZ_VIEW_COUNT - 1 : 1)) % VIZ_VIEW_COUNT); return true;
    case SDLK_1: case SDLK_2: case SDLK_3: case SDLK_4: case SDLK_5: a->view = (viz_view_id)(k - SDLK_1); return true;
    case SDLK_LEFT: move_head(a, 0, -1); return true;
    case SDLK_RIGHT: move_head(a, 0, 1); return true;
    case SDLK_UP: move_head(a, -1, 0); return true;
    case SDLK_DOWN: move_head(a, 1, 0); return true;
    case SDLK_LEFTBRACKET: viz_app_set_prompt(a, a->prompt - 1); return true;
    case SDLK_RIGHTBRACKET: viz_app_set_prompt(a, a->prompt + 1); return true;
    case SDLK_s: if (!a->headless) want_shot = true; return true;
    case SDLK_r: reload(a); return true;
    default: return false;
    }
}

/* ------------------------------------------------------------------ scripted input */

typedef struct { char op[16]; char arg[256]; int v[4]; int nv; } script_cmd;

static hs_status script_load(const char *path, script_cmd **out, int *n) {
    *out = NULL; *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) { hs_log_error("view", "cannot read --script %s: %s — check the path", path, strerror(errno)); return HS_EBADINPUT; }
    char line[512]; int cap = 0, ln = 0;
    script_cmd *c = NULL;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *p = line; while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\r\n")] = 0;
        if (!*p || *p == '#') continue;
        if (*n == cap) { cap = cap ? cap * 2 : 32; c = hs_xrealloc(c, (size_t)cap * sizeof *c); }
        script_cmd *s = &c[*n];
        memset(s, 0, sizeof *s);
        size_t k = strcspn(p, " \t");
        if (k == 0 || k >= sizeof s->op) goto bad;
        memcpy(s->op, p, k);
        p += k; while (*p == ' ' || *p == '\t') p++;
        snprintf(s->arg, sizeof s->arg, "%s", p);
        static const char *const ops[] = { "key", "text", "move", "click", "dclick", "wheel", "drag", "wait", "screenshot", "resize", "quit" };
        bool known = false;
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) if (!strcmp(s->op, ops[i])) known = true;
        if (!known) goto bad;
        if (strchr("mcdwr", s->op[0]) && strcmp(s->op, "quit")) {
            s->nv = sscanf(p, "%d %d %d %d", &s->v[0], &s->v[1], &s->v[2], &s->v[3]);
            int need = !strcmp(s->op, "drag") ? 4 : (!strcmp(s->op, "wheel") || !strcmp(s->op, "wait")) ? 1 : 2;
            if (s->nv < need) goto bad;
        }
        (*n)++;
        continue;
    bad:
        hs_log_error("view", "--script %s line %d: '%.60s' is not a command (key NAME, text STR, move X Y, click X Y, dclick X Y, wheel DY, drag X0 Y0 X1 Y1, wait MS, screenshot PATH, resize W H, quit)", path, ln, line);
        free(c); fclose(f); *out = NULL; *n = 0;
        return HS_EBADINPUT;
    }
    fclose(f);
    *out = c;
    return HS_OK;
}

static void push_key(viz_app *a, const char *name) {
    Uint16 mod = 0;
    for (;;) {
        if (!strncmp(name, "shift+", 6)) { mod |= KMOD_LSHIFT; name += 6; }
        else if (!strncmp(name, "ctrl+", 5)) { mod |= KMOD_LCTRL; name += 5; }
        else break;
    }
    SDL_Keycode k = SDL_GetKeyFromName(name);
    if (k == SDLK_UNKNOWN && strlen(name) == 1) k = (SDL_Keycode)(unsigned char)name[0];
    SDL_Event e; memset(&e, 0, sizeof e);
    e.type = SDL_KEYDOWN; e.key.state = SDL_PRESSED; e.key.keysym.sym = k; e.key.keysym.mod = mod;
    e.key.keysym.scancode = SDL_GetScancodeFromKey(k);
    e.key.windowID = a->win ? SDL_GetWindowID(a->win) : 0;
    SDL_PushEvent(&e);
    if (strlen(name) == 1 && !(mod & KMOD_CTRL) && (unsigned char)name[0] >= 0x20) {   /* what a real keyboard also sends */
        SDL_Event t; memset(&t, 0, sizeof t);
        t.type = SDL_TEXTINPUT; t.text.windowID = e.key.windowID;
        t.text.text[0] = name[0];
        SDL_PushEvent(&t);
    }
    e.type = SDL_KEYUP; e.key.state = SDL_RELEASED;
    SDL_PushEvent(&e);
}

static void push_mouse(viz_app *a, Uint32 type, int x, int y, int clicks, Uint32 state) {
    SDL_Event e; memset(&e, 0, sizeof e);
    Uint32 wid = a->win ? SDL_GetWindowID(a->win) : 0;
    if (type == SDL_MOUSEMOTION) { e.type = type; e.motion.windowID = wid; e.motion.x = x; e.motion.y = y; e.motion.state = state; }
    else { e.type = type; e.button.windowID = wid; e.button.button = SDL_BUTTON_LEFT; e.button.clicks = (Uint8)clicks;
           e.button.state = type == SDL_MOUSEBUTTONDOWN ? SDL_PRESSED : SDL_RELEASED; e.button.x = x; e.button.y = y; }
    SDL_PushEvent(&e);
}

/* Run script command i; returns the delay (ms) before the next one. */
static Uint32 script_step(viz_app *a, const script_cmd *c) {
    if (!strcmp(c->op, "key")) push_key(a, c->arg);
    else if (!strcmp(c->op, "text")) {
        SDL_Event t; memset(&t, 0, sizeof t);
        t.type = SDL_TEXTINPUT; t.text.windowID = a->win ? SDL_GetWindowID(a->win) : 0;
        size_t k = strlen(c->arg) < sizeof t.text.text - 1 ? strlen(c->arg) : sizeof t.text.text - 1;
        memcpy(t.text.text, c->arg, k);   /* TEXTINPUT carries at most 31 bytes */
        SDL_PushEvent(&t);
    } else if (!strcmp(c->op, "move")) push_mouse(a, SDL_MOUSEMOTION, c->v[0], c->v[1], 0, 0);
    else if (!strcmp(c->op, "click") || !strcmp(c->op, "dclick")) {
        int clicks = c->op[0] == 'd' ? 2 : 1;
        push_mouse(a, SDL_MOUSEMOTION, c->v[0], c->v[1], 0, 0);
        push_mouse(a, SDL_MOUSEBUTTONDOWN, c->v[0], c->v[1], clicks, 0);
        push_mouse(a, SDL_MOUSEBUTTONUP, c->v[0], c->v[1], clicks, 0);
    } else if (!strcmp(c->op, "wheel")) {
        SDL_Event e; memset(&e, 0, sizeof e);
        e.type = SDL_MOUSEWHEEL; e.wheel.windowID = a->win ? SDL_GetWindowID(a->win) : 0; e.wheel.y = c->v[0]; e.wheel.preciseY = (float)c->v[0];
        SDL_PushEvent(&e);
    } else if (!strcmp(c->op, "drag")) {
        push_mouse(a, SDL_MOUSEMOTION, c->v[0], c->v[1], 0, 0);
        push_mouse(a, SDL_MOUSEBUTTONDOWN, c->v[0], c->v[1], 1, 0);
        for (int i = 1; i <= 4; i++)
            push_mouse(a, SDL_MOUSEMOTION, c->v[0] + (c->v[2] - c->v[0]) * i / 4, c->v[1] + (c->v[3] - c->v[1]) * i / 4, 0, SDL_BUTTON_LMASK);
        push_mouse(a, SDL_MOUSEBUTTONUP, c->v[2], c->v[3], 1, 0);
    } else if (!strcmp(c->op, "wait")) return (Uint32)(c->v[0] > 0 ? c->v[0] : 0);
    else if (!strcmp(c->op, "resize")) { if (a->win) SDL_SetWindowSize(a->win, c->v[0], c->v[1]); return 100; }
    else if (!strcmp(c->op, "quit")) { SDL_Event q; memset(&q, 0, sizeof q); q.type = SDL_QUIT; SDL_PushEvent(&q); }
    return 30;
}

/* ------------------------------------------------------------------ state file */

hs_status viz_app_write_state(const viz_app *a, const char *path) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "view", k_view_names[a->view]);
    cJSON_AddNumberToObject(o, "layer", a->layer);
    cJSON_AddNumberToObject(o, "head", a->head);
    cJSON_AddNumberToObject(o, "prompt", a->d.n_prompts ? a->d.prompts[a->prompt].index : -1);
    cJSON_AddNumberToObject(o, "n_prompts", a->d.n_prompts);
    cJSON_AddStringToObject(o, "metric", a->metric >= 0 && a->metric < a->d.n_metrics ? a->d.metrics[a->metric].name : "");
    cJSON_AddNumberToObject(o, "query", a->hv.sel_query);
    cJSON_AddNumberToObject(o, "zoom", a->hv.zoom);
    cJSON_AddNumberToObject(o, "matches", a->hv.n_matches);
    cJSON_AddNumberToObject(o, "width", a->ui.w);
    cJSON_AddNumberToObject(o, "height", a->ui.h);
    cJSON_AddBoolToObject(o, "error", a->error[0] != 0);
    cJSON *g = cJSON_AddArrayToObject(o, "grid_px");   /* x, y, cell of the last grid frame (window coordinates) */
    float k = a->px_ratio > 0 ? a->px_ratio : 1;
    cJSON_AddItemToArray(g, cJSON_CreateNumber(a->grid.grid.x / k));
    cJSON_AddItemToArray(g, cJSON_CreateNumber(a->grid.grid.y / k));
    cJSON_AddItemToArray(g, cJSON_CreateNumber(a->grid.cell_w / k));
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    FILE *f = fopen(path, "w");
    hs_status rc = HS_OK;
    if (!f || fputs(txt, f) < 0) { hs_log_error("view", "cannot write the state file %s: %s — check the path", path, strerror(errno)); rc = HS_EIO; }
    if (f && fclose(f) != 0 && rc == HS_OK) { hs_log_error("view", "cannot write the state file %s (disk full?)", path); rc = HS_EIO; }
    free(txt);
    return rc;
}

/* ------------------------------------------------------------------ entry points */

static int headless(const viz_options *o) {
    int w = o->width > 0 ? o->width : 1280, h = o->height > 0 ? o->height : 800;
    SDL_Surface *surf = SDL_CreateRGBSurfaceWithFormat(0, w, h, 32, SDL_PIXELFORMAT_ARGB8888);
    if (!surf) { hs_log_error("view", "cannot allocate a %dx%d image (%s) — use a smaller --size", w, h, SDL_GetError()); return 2; }
    SDL_Renderer *r = SDL_CreateSoftwareRenderer(surf);
    if (!r) { hs_log_error("view", "cannot start SDL's software renderer (%s) — check the SDL2 installation", SDL_GetError()); SDL_FreeSurface(surf); return 2; }
    viz_app *a = hs_xmalloc(sizeof *a);
    int status = 2;
    hs_status rc = viz_app_init(a, o, r, (float)(o->scale > 0 ? o->scale : 1.0), true);
    a->surf = surf;
    if (rc == HS_OK && viz_app_apply_options(a) == HS_OK) {
        viz_app_render(a);
        SDL_RenderPresent(r);
        if (write_png(surf, o->screenshot) != 0)
            hs_log_error("view", "cannot write %s (%s) — check the directory exists and is writable", o->screenshot, IMG_GetError());
        else status = 0;
    }
    viz_app_free(a);
    free(a);
    SDL_DestroyRenderer(r);
    SDL_FreeSurface(surf);
    return status;
}

static float auto_scale(SDL_Window *w) {
    int ww, wh, dw, dh;
    SDL_GetWindowSize(w, &ww, &wh);
    SDL_GetWindowSizeInPixels(w, &dw, &dh);
    float ratio = ww > 0 ? (float)dw / ww : 1.0f, ddpi = 0, hdpi = 0, vdpi = 0, dpi = 1.0f;
    const char *env = getenv("HEADSCOPE_SCALE");
    if (env && atof(env) >= 0.5 && atof(env) <= 4) return (float)atof(env) * ratio;
    /* X11 reports the monitor's DPI but no pixel ratio: a 4K laptop panel at 1x would get tiny text */
    if (SDL_GetDisplayDPI(SDL_GetWindowDisplayIndex(w), &ddpi, &hdpi, &vdpi) == 0 && ratio < 1.5f && hdpi > 130)
        dpi = roundf(hdpi / 96.0f * 4) / 4;
    return ratio * dpi;
}

static int interactive(const viz_options *o) {
    script_cmd *script = NULL; int n_script = 0, si = 0;
    if (o->script && script_load(o->script, &script, &n_script) != HS_OK) return 2;
#ifdef __linux__
    /* Without a display SDL would try Wayland (one stray line on stderr) and then fall back to its
     * offscreen driver: a window nobody sees that never closes. Say so instead. */
    const char *drv = getenv("SDL_VIDEODRIVER"), *x = getenv("DISPLAY"), *wl = getenv("WAYLAND_DISPLAY");
    if (!(drv && *drv) && !(x && *x) && !(wl && *wl)) {
        hs_log_error("view", "no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset) — run it on a desktop, under xvfb-run, or headless with --screenshot OUT.png");
        free(script);
        return 2;
    }
#endif
    if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
        hs_log_error("view", "cannot open a window (%s) — run it on a desktop (DISPLAY/WAYLAND_DISPLAY), under xvfb-run, or headless with --screenshot OUT.png", SDL_GetError());
        free(script);
        return 2;
    }
    const char *cur = SDL_GetCurrentVideoDriver();
    if (cur && (!strcmp(cur, "dummy") || !strcmp(cur, "offscreen")) && !o->script) {
        hs_log_error("view", "SDL's '%s' video driver shows no window — unset SDL_VIDEODRIVER on a desktop, or use --screenshot OUT.png for headless rendering", cur);
        SDL_QuitSubSystem(SDL_INIT_VIDEO);
        free(script);
        return 2;
    }
    int w = o->width > 0 ? o->width : 1280, h = o->height > 0 ? o->height : 800;
    char title[600];
    snprintf(title, sizeof title, "headscope view — %s", o->db_path);
    SDL_Window *win = SDL_CreateWindow(title, SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, w, h, SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI);
    SDL_Renderer *r = win ? SDL_CreateRenderer(win, -1, 0) : NULL;
    if (win && !r) r = SDL_CreateRenderer(win, -1, SDL_RENDERER_SOFTWARE);
    if (!win || !r) {
        hs_log_error("view", "cannot create the window (%s) — try SDL_RENDER_DRIVER=software, or --screenshot for headless use", SDL_GetError());
        if (win) SDL_DestroyWindow(win);
        SDL_QuitSubSystem(SDL_INIT_VIDEO);
        free(script);
        return 2;
    }
    SDL_SetWindowMinimumSize(win, 480, 320);
    viz_app *a = hs_xmalloc(sizeof *a);
    int win_w, win_h, pix_w, pix_h;
    SDL_GetWindowSize(win, &win_w, &win_h);
    SDL_GetWindowSizeInPixels(win, &pix_w, &pix_h);
    float ratio = win_w > 0 && pix_w > 0 ? (float)pix_w / win_w : 1.0f;
    hs_status rc = viz_app_init(a, o, r, o->scale > 0 ? (float)o->scale * ratio : auto_scale(win), false);
    a->win = win;
    int status = 0;
    if (rc == HS_EIO && !a->ui.font[0]) { status = 2; goto done; }   /* no font: nothing to draw with */
    if (rc != HS_OK) status = 2;
    else if (viz_app_apply_options(a) != HS_OK) { status = 2; goto done; }
    SDL_StartTextInput();
    bool redraw = true;
    Uint32 next_script = SDL_GetTicks() + 300, frames = 0;
    while (!a->quit) {
        if (redraw) {
            int ww, wh;
            SDL_GetWindowSize(win, &ww, &wh);
            a->px_ratio = ww > 0 ? (float)a->ui.w / ww : 1.0f;
            if (a->px_ratio <= 0) a->px_ratio = 1;
            viz_app_render(a);
            if (want_shot) { want_shot = false; shot_interactive(a); viz_app_render(a); }
            SDL_RenderPresent(r);
            frames++;
            redraw = false;
        }
        if (si < n_script && SDL_TICKS_PASSED(SDL_GetTicks(), next_script)) {
            const script_cmd *c = &script[si++];
            if (!strcmp(c->op, "screenshot")) {
                viz_app_render(a);
                if (save_png(a, c->arg) != HS_OK) status = 2;
                SDL_RenderPresent(r);
                next_script = SDL_GetTicks() + 30;
            } else next_script = SDL_GetTicks() + script_step(a, c);
        }
        int timeout = si < n_script ? 10 : 500;
        if (a->status[0] && !SDL_TICKS_PASSED(SDL_GetTicks(), a->status_until)) timeout = 100;
        SDL_Event e;
        if (SDL_WaitEventTimeout(&e, timeout)) {
            do {
                float k = a->px_ratio;
                switch (e.type) {   /* window coordinates -> output pixels (HiDPI) */
                case SDL_MOUSEMOTION: e.motion.x = (int)(e.motion.x * k); e.motion.y = (int)(e.motion.y * k); e.motion.xrel = (int)(e.motion.xrel * k); e.motion.yrel = (int)(e.motion.yrel * k); break;
                case SDL_MOUSEBUTTONDOWN: case SDL_MOUSEBUTTONUP: e.button.x = (int)(e.button.x * k); e.button.y = (int)(e.button.y * k); break;
                default: break;
                }
                if (viz_app_event(a, &e)) redraw = true;
            } while (!a->quit && SDL_PollEvent(&e));
        } else if (a->status[0] && SDL_TICKS_PASSED(SDL_GetTicks(), a->status_until)) { a->status[0] = 0; redraw = true; }
    }
    SDL_StopTextInput();
    (void)frames;
done:
    if (o->state_out && viz_app_write_state(a, o->state_out) != HS_OK) status = 2;
    if (a->error[0]) status = 2;
    viz_app_free(a);
    free(a);
    SDL_DestroyRenderer(r);
    SDL_DestroyWindow(win);
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    free(script);
    return status;
}

int viz_main(const viz_options *o) {
    HS_ASSERT(o && o->db_path);
    if (o->width < 0 || o->height < 0 || o->width > 16384 || o->height > 16384) {
        hs_log_error("view", "--size %dx%d is out of range — use 320x200 .. 16384x16384", o->width, o->height);
        return 2;
    }
    if (SDL_Init(0) != 0) { hs_log_error("view", "SDL failed to start (%s) — check the SDL2 installation", SDL_GetError()); return 2; }
    bool ttf_mine = !TTF_WasInit();   /* a caller (tests) may hold SDL_ttf already */
    if (ttf_mine && TTF_Init() != 0) { hs_log_error("view", "SDL_ttf failed to start (%s) — check the SDL2_ttf installation", TTF_GetError()); SDL_Quit(); return 2; }
    int status = o->screenshot ? headless(o) : interactive(o);
    if (ttf_mine) TTF_Quit();
    IMG_Quit();
    SDL_Quit();
    return status;
}
