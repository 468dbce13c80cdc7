/* test_viz.c — the viewer (viz/), rendered headlessly with SDL's software renderer, checked by
 * its pixels and by its handling of bad input.
 *
 * 1. The planted-circuit model (docs/planted.md): capture the demo prompts, run sinks and
 *    detectors, then
 *    - grid coloured by sinks.alpha_0: the BOS-sink head 1.0's cell is exactly the legend's top
 *      colour (viridis entry 255, read off the legend) and the four filler heads are far from it;
 *    - head view of the previous-token head 0.1: every sampled sub-diagonal cell (i, i-1) is hot
 *      and cells off it are dark; the pattern texture is built once, not per frame;
 *    - every view renders with the synthetic weight-pass reports (tests/fixtures/viewer), and
 *      the composition graph shows the planted K-composition edge 0.1 -> 1.2 in the K colour.
 * 2. A synthetic 600-token run written through the store: a one-cell-wide diagonal stays visible
 *    when 600 keys share ~250 pixels (the max-pooled pyramid), rows-only captures, a whole-layer
 *    tensor, and a pattern row damaged in the database (an error in the view, not a crash).
 * 3. Bad input: view specs, heads/prompts/metrics out of range, corrupt and mismatched reports,
 *    a non-database file, a missing font: one error line each, and no crash on ~1500 mutated
 *    reports (structural and byte-level).
 * 4. With ../shared: a 512-token tiny-llama run renders every view (skipped visibly otherwise).
 */
#include "testlib.h"
#include "viz/viz_internal.h"
#include "analysis/passes.h"
#include "datasets/plant.h"
#include "probe/capture.h"
#include <SDL_image.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

static const char *FX = "tests/fixtures/viewer";

/* ------------------------------------------------------------------ headless harness */

typedef struct { SDL_Surface *surf; SDL_Renderer *r; viz_app a; viz_options o; const char *reports[8]; bool ok; } hl;

static bool hl_open(hl *h, const char *db, const char *const *reports, int n, const char *view, const char *metric, int w, int hh) {
    memset(h, 0, sizeof *h);
    for (int i = 0; i < n && i < 8; i++) h->reports[i] = reports[i];
    h->o.db_path = db; h->o.reports = h->reports; h->o.n_reports = n; h->o.view = view; h->o.metric = metric;
    h->o.width = w; h->o.height = hh;
    h->surf = SDL_CreateRGBSurfaceWithFormat(0, w, hh, 32, SDL_PIXELFORMAT_ARGB8888);
    h->r = h->surf ? SDL_CreateSoftwareRenderer(h->surf) : NULL;
    if (!h->r) return false;
    hs_status rc = viz_app_init(&h->a, &h->o, h->r, 1.0f, true);
    h->a.surf = h->surf;
    h->ok = rc == HS_OK && viz_app_apply_options(&h->a) == HS_OK;
    return h->ok;
}

static void hl_render(hl *h) { viz_app_render(&h->a); SDL_RenderFlush(h->r); }

static void hl_close(hl *h) {
    if (h->r) { viz_app_free(&h->a); SDL_DestroyRenderer(h->r); }
    if (h->surf) SDL_FreeSurface(h->surf);
    memset(h, 0, sizeof *h);
}

static uint32_t px(const hl *h, int x, int y) {
    if (x < 0 || y < 0 || x >= h->surf->w || y >= h->surf->h) return 0;
    return ((const uint32_t *)h->surf->pixels)[(size_t)y * (h->surf->pitch / 4) + x] & 0xFFFFFF;
}
static int cdist(uint32_t a, uint32_t b) {
    int dr = (int)(a >> 16 & 255) - (int)(b >> 16 & 255), dg = (int)(a >> 8 & 255) - (int)(b >> 8 & 255), db = (int)(a & 255) - (int)(b & 255);
    return abs(dr) + abs(dg) + abs(db);
}
static uint32_t rgb(SDL_Color c) { return (uint32_t)c.r << 16 | (uint32_t)c.g << 8 | c.b; }
static double luma(uint32_t c) { return 0.299 * (c >> 16 & 255) + 0.587 * (c >> 8 & 255) + 0.114 * (c & 255); }

/* ------------------------------------------------------------------ the planted run */

static bool make_planted_run(const char *tmp, char *db, size_t n) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/planted", tmp);
    snprintf(db, n, "%s/planted.db", tmp);
    if (ds_plant_write(dir, 0) != HS_OK) return false;
    probe_capture_opts o; probe_capture_defaults(&o);
    o.model = dir; o.prompts = "datasets/demo_prompts.txt"; o.db = db; o.quiet = true; o.hooks = "hook_pattern";
    int64_t run;
    if (probe_capture_run(&o, &run) != HS_OK) return false;
    an_ctx ctx;
    if (an_ctx_open(db, run, NULL, &ctx) != HS_OK) return false;
    an_sinks_params sp; an_sinks_defaults(&sp);
    an_detectors_params dp; an_detectors_defaults(&dp);
    bool ok = an_sinks_run(&ctx, &sp, NULL) == HS_OK && an_detectors_run(&ctx, &dp, NULL) == HS_OK;
    an_ctx_close(&ctx);
    return ok;
}

static void test_grid_sink(const char *db) {
    hl h;
    if (!hl_open(&h, db, NULL, 0, "grid", "alpha_0", 1000, 640)) { tl_fail("grid: open the planted run (%s)", h.a.error); hl_close(&h); return; }
    hl_render(&h);
    const viz_grid_state *g = &h.a.grid;
    uint32_t top = rgb(viz_cmap_lut(VIZ_CMAP_VIRIDIS)[255]);
    uint32_t legend_top = px(&h, g->legend.x + g->legend.w / 2, g->legend.y);
    TL_CHECK(!strcmp(h.a.d.metrics[h.a.metric].name, "sinks.alpha_0"), "grid: --metric alpha_0 resolves to %s", h.a.d.metrics[h.a.metric].name);
    TL_CHECK(legend_top == top, "grid: the legend's top pixel is viridis[255] (#%06X vs #%06X)", legend_top, top);
    int c = g->cell_w, inset = c / 6 > 3 ? c / 6 : 3;
#define CELL(l, hd) px(&h, g->grid.x + (hd) * c + inset, g->grid.y + (l) * c + inset)
    uint32_t sink = CELL(1, 0);
    TL_CHECK(sink == legend_top, "grid: planted sink 1.0's cell has the legend's top colour (#%06X)", sink);
    const int fillers[4][2] = { { 0, 0 }, { 0, 2 }, { 0, 3 }, { 1, 1 } };
    int worst = 1 << 30;
    for (int i = 0; i < 4; i++) { int d = cdist(CELL(fillers[i][0], fillers[i][1]), legend_top); if (d < worst) worst = d; }
    TL_CHECK(worst > 300, "grid: filler heads 0.0 0.2 0.3 1.1 are far from the top colour (min |Δrgb| = %d > 300)", worst);
    /* the ranked list puts 1.0 first */
    TL_CHECK(g->n_order == 8 && g->order[0] == 1 * 4 + 0, "grid: ranked list: 1.0 first of %d heads", g->n_order);
    /* selection moves with the arrow keys; Enter opens the head view */
    SDL_Event e; memset(&e, 0, sizeof e);
    e.type = SDL_KEYDOWN; e.key.keysym.sym = SDLK_DOWN; viz_app_event(&h.a, &e);
    e.key.keysym.sym = SDLK_RIGHT; viz_app_event(&h.a, &e);
    TL_CHECK(h.a.layer == 1 && h.a.head == 1, "grid: Down, Right moves the selection 0.0 -> 1.1 (got %d.%d)", h.a.layer, h.a.head);
    e.key.keysym.sym = SDLK_f; viz_app_event(&h.a, &e); viz_app_event(&h.a, &e); viz_app_event(&h.a, &e);   /* top 10% */
    hl_render(&h);
    uint32_t dim = CELL(0, 0);
    TL_CHECK(CELL(1, 0) == top && luma(dim) < 40, "grid: filter 'top 10%%' keeps 1.0 coloured and dims 0.0 (luma %.0f)", luma(dim));
#undef CELL
    hl_close(&h);
}

static void test_head_prev(const char *db) {
    hl h;
    if (!hl_open(&h, db, NULL, 0, "head:0.1:0", NULL, 1100, 700)) { tl_fail("head: open 0.1 on prompt 0 (%s)", h.a.error); hl_close(&h); return; }
    hl_render(&h);
    const viz_head_state *hv = &h.a.hv;
    TL_CHECK(hv->status == HS_OK && hv->R == hv->C && hv->C > 40, "head: pattern of 0.1, prompt 0 loaded (%d x %d)", hv->R, hv->C);
    int hot = 0, cold = 0, n_hot = 0, n_cold = 0;
    double min_hot = 1e9, max_cold = 0;
    for (int i = 2; i < hv->R; i += 3) {
        int x, y;
        if (viz_head_cell_center(&h.a, i, i - 1, &x, &y)) { double l = luma(px(&h, x, y)); n_hot++; if (l > 200) hot++; if (l < min_hot) min_hot = l; }
        int k = i >= 4 ? i - 3 : i;   /* off the sub-diagonal: three back, or the diagonal itself */
        if (viz_head_cell_center(&h.a, i, k, &x, &y)) { double l = luma(px(&h, x, y)); n_cold++; if (l < 40) cold++; if (l > max_cold) max_cold = l; }
    }
    TL_CHECK(n_hot > 10 && hot == n_hot, "head: %d/%d sub-diagonal cells (i, i-1) are hot (min luma %.0f > 200)", hot, n_hot, min_hot);
    TL_CHECK(n_cold > 10 && cold == n_cold, "head: %d/%d off-diagonal cells are dark (max luma %.0f < 40)", cold, n_cold, max_cold);
    int before = hv->rebuilds;
    hl_render(&h);
    TL_CHECK(hv->rebuilds == before && before == 1, "head: the pattern texture is built once (%d builds after 2 frames)", hv->rebuilds);
    /* hover shows the query and key: move the mouse over cell (10, 9) */
    int x, y;
    viz_head_cell_center(&h.a, 10, 9, &x, &y);
    SDL_Event e; memset(&e, 0, sizeof e);
    e.type = SDL_MOUSEMOTION; e.motion.x = x; e.motion.y = y;
    viz_app_event(&h.a, &e);
    hl_render(&h);
    TL_CHECK(hv->hover_q == 10 && hv->hover_k == 9 && hv->rebuilds == before, "head: hover at (%d,%d) reads query %d key %d without rebuilding", x, y, hv->hover_q, hv->hover_k);
    /* wheel zoom around the mouse keeps that cell under it */
    memset(&e, 0, sizeof e); e.type = SDL_MOUSEWHEEL; e.wheel.y = 4; e.wheel.preciseY = 4;
    viz_app_event(&h.a, &e);
    hl_render(&h);
    int x2, y2;
    bool in = viz_head_cell_center(&h.a, 10, 9, &x2, &y2);
    TL_CHECK(hv->zoom > 2 && in && abs(x2 - x) < hv->hm.w / hv->sx && luma(px(&h, x2, y2)) > 200,
             "head: wheel zoom %.2fx keeps cell (10, 9) under the mouse (%d,%d -> %d,%d) and hot", hv->zoom, x, y, x2, y2);
    /* search: '/', text "fox", Enter -> selects the first match */
    memset(&e, 0, sizeof e); e.type = SDL_KEYDOWN; e.key.keysym.sym = SDLK_SLASH; viz_app_event(&h.a, &e);
    memset(&e, 0, sizeof e); e.type = SDL_TEXTINPUT; strcpy(e.text.text, "/"); viz_app_event(&h.a, &e);
    strcpy(e.text.text, "o"); viz_app_event(&h.a, &e);
    memset(&e, 0, sizeof e); e.type = SDL_KEYDOWN; e.key.keysym.sym = SDLK_RETURN; viz_app_event(&h.a, &e);
    TL_CHECK(hv->n_matches > 2 && !strcmp(hv->search, "o") && hv->sel_query == hv->matches[0] && strstr(h.a.tok[hv->sel_query], "o"),
             "head: '/' search for \"o\": %d matches, Enter selects query %d", hv->n_matches, hv->sel_query);
    memset(&e, 0, sizeof e); e.type = SDL_KEYDOWN; e.key.keysym.sym = SDLK_ESCAPE; viz_app_event(&h.a, &e);
    /* ] moves to the next prompt and reloads */
    e.key.keysym.sym = SDLK_RIGHTBRACKET; viz_app_event(&h.a, &e);
    hl_render(&h);
    TL_CHECK(h.a.prompt == 1 && hv->prompt == 1 && !h.a.quit, "head: ']' switches to prompt 1 and reloads the pattern (T=%d)", hv->C);
    hl_close(&h);
}

static void test_views_fixtures(const char *db) {
    char r[4][256];
    const char *reps[4];
    const char *names[4] = { "maps", "svd", "composition", "spectra" };
    for (int i = 0; i < 4; i++) { snprintf(r[i], sizeof r[i], "%s/%s.json", FX, names[i]); reps[i] = r[i]; }
    const char *views[] = { "grid", "head:1.2:4", "spectra:0.1", "spectra", "maps", "composition" };
    for (size_t v = 0; v < sizeof views / sizeof *views; v++) {
        hl h;
        bool ok = hl_open(&h, db, reps, 4, views[v], NULL, 960, 600);
        if (ok) hl_render(&h);
        TL_CHECK(ok && !h.a.error[0], "views: %s renders with the planted run and 4 fixture reports%s%s", views[v], h.a.error[0] ? ": " : "", h.a.error);
        if (ok && h.a.view == VIZ_VIEW_COMPOSITION) {
            /* the K edge 0.1 -> 1.2: sample its midpoint */
            float x0 = h.a.cp.nx[1], y0 = h.a.cp.ny[1], x1 = h.a.cp.nx[6], y1 = h.a.cp.ny[6];
            uint32_t c = px(&h, (int)((x0 + x1) / 2) + 30, (int)((y0 + y1) / 2 + 30 * (y1 - y0) / (x1 - x0)));
            uint32_t k = rgb(h.a.ui.th.edge[1]);
            TL_CHECK(cdist(c, k) < 60, "composition: K edge 0.1 -> 1.2 drawn in the K colour (#%06X vs #%06X), %d edges drawn", c, k, h.a.cp.n_drawn);
        }
        if (ok && h.a.view == VIZ_VIEW_SPECTRA) {
            const viz_spectrum *m = h.a.sp.sel >= 0 ? &h.a.d.spectra[h.a.sp.sel] : NULL;
            TL_CHECK(m && (strcmp(views[v], "spectra") ? m->head == 1 : m->head == -1), "spectra: %s selects a %s matrix (%s)", views[v],
                     strcmp(views[v], "spectra") ? "head" : "layer", m ? m->name : "none");
        }
        hl_close(&h);
    }
    /* metrics from every report reach the grid */
    hl h;
    if (hl_open(&h, db, reps, 4, "grid", NULL, 800, 500)) {
        const char *want[] = { "stats.entropy", "sinks.alpha_0", "detectors.induction_mul", "maps.copying", "maps.copying.suppression",
                               "svd.ov_stable_rank", "spectra.W_QK.num_spikes", "composition.max_in" };
        int found = 0;
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) found += viz_metric_find(&h.a.d, want[i]) >= 0;
        TL_CHECK(found == 8, "grid: metrics from stats and all six passes are offered (%d/8)", found);
        int m = viz_metric_find(&h.a.d, "composition.max_in");
        TL_CHECK(m >= 0 && h.a.d.metrics[m].v[6] == h.a.d.metrics[m].hi, "composition.max_in is highest at the induction head 1.2");
        TL_CHECK(viz_metric_find(&h.a.d, "self") == -2 && viz_metric_find(&h.a.d, "nope") == -1, "metric lookup: 'self' ambiguous, 'nope' absent");
    } else tl_fail("grid with fixtures");
    hl_close(&h);
}

static void test_screenshot_file(const char *db, const char *tmp) {
    char out[600];
    snprintf(out, sizeof out, "%s/shot.png", tmp);
    viz_options o; memset(&o, 0, sizeof o);
    o.db_path = db; o.view = "head:0.1"; o.screenshot = out; o.width = 640; o.height = 400;
    int st = viz_main(&o);
    SDL_Surface *s = st == 0 ? IMG_Load(out) : NULL;
    TL_CHECK(st == 0 && s && s->w == 640 && s->h == 400, "viz_main --screenshot writes a 640x400 PNG (status %d)", st);
    if (s) SDL_FreeSurface(s);
    SDL_Init(0); TTF_Init();   /* viz_main quit them */
}

/* ------------------------------------------------------------------ synthetic long run */

static bool make_long_run(const char *path, int T) {
    store_db *db;
    if (store_open(path, false, &db) != HS_OK) return false;
    int64_t mid, rid;
    bool ok = store_model_put(db, "/synthetic", "hf", "{\"n_layer\": 2, \"n_head\": 2}", "", &mid) == HS_OK &&
              store_run_begin(db, mid, "{}", &rid) == HS_OK;
    int *ids = malloc(sizeof(int) * T);
    char **strs = malloc(sizeof(char *) * T);
    float *pat = calloc((size_t)T * T, sizeof(float)), *rows = calloc((size_t)2 * 1 * T, sizeof(float));
    for (int i = 0; i < T; i++) {
        ids[i] = i; strs[i] = malloc(16); snprintf(strs[i], 16, i % 50 == 0 ? " tok%d\xff" : "t%d", i);
        pat[(size_t)i * T + (i ? i - 1 : 0)] = 1.0f;   /* an exact previous-token head */
    }
    for (int h = 0; h < 2; h++) rows[h * T + 0] = 1.0f;   /* layer 1: the last row only, as a whole-layer tensor */
    store_batch *b = store_batch_new(rid);
    store_batch_add_prompt(b, 0, "synthetic long prompt", ids, (const char *const *)strs, T);
    int shape[2] = { T, T }, shape3[3] = { 2, 1, T };
    store_batch_add_activation(b, 0, "blocks.0.attn.hook_pattern", 0, 0, 0, T, STORE_F32, shape, 2, pat, (size_t)T * T * 4);
    store_batch_add_activation(b, 0, "blocks.1.attn.hook_pattern", 1, -1, T - 1, T, STORE_F32, shape3, 3, rows, (size_t)2 * T * 4);
    for (int l = 0; l < 2; l++) for (int h = 0; h < 2; h++) store_batch_add_stat(b, -1, l, h, "entropy", l + h * 0.5);
    ok = ok && store_batch_write(db, b) == HS_OK && store_run_set_status(db, rid, "complete") == HS_OK;
    store_batch_free(b);
    for (int i = 0; i < T; i++) free(strs[i]);
    free(strs); free(ids); free(pat); free(rows);
    store_close(db);
    return ok;
}

static void test_long(const char *tmp) {
    char db[600];
    snprintf(db, sizeof db, "%s/long.db", tmp);
    const int T = 600;
    if (!make_long_run(db, T)) { tl_fail("synthetic run: write %d-token pattern through the store", T); return; }
    hl h;
    if (!hl_open(&h, db, NULL, 0, "head:0.0:0", NULL, 720, 420)) { tl_fail("synthetic run: open (%s)", h.a.error); hl_close(&h); return; }
    hl_render(&h);
    const viz_head_state *hv = &h.a.hv;
    double kx = hv->sx / hv->hm.w;
    /* every pixel row of the heatmap must show the diagonal somewhere near its expected column */
    int rows_ok = 0, rows = 0;
    for (int py = 0; py < hv->hm.h; py++) {
        double q = hv->y0 + (py + 0.5) * hv->sy / hv->hm.h;
        int xc = hv->hm.x + (int)((q - 1 - hv->x0) / kx);
        double best = 0;
        for (int dx = -3; dx <= 3; dx++) { double l = luma(px(&h, xc + dx, hv->hm.y + py)); if (l > best) best = l; }
        rows++; if (best > 200) rows_ok++;
    }
    TL_CHECK(kx > 2 && rows_ok == rows, "max-pooled pyramid: %d keys in %d px (%.2f per px): the 1-cell diagonal is hot in %d/%d pixel rows",
             hv->C, hv->hm.w, kx, rows_ok, rows);
    /* tokens with invalid UTF-8 are escaped, spaces made visible */
    viz_app_tokens(&h.a);
    TL_CHECK(h.a.n_tok == T && !strcmp(h.a.tok[50], "\xE2\x90\xA3tok50\\xFF"), "tokens: ' tok50\\xff' displays as '␣tok50\\xFF' (%s)", h.a.n_tok > 50 ? h.a.tok[50] : "?");
    /* a whole-layer tensor holding only the last query row */
    viz_app_select(&h.a, 1, 1);
    hl_render(&h);
    TL_CHECK(hv->status == HS_OK && hv->R == 1 && hv->C == T && hv->row0 == T - 1 && hv->hm.h >= 40,
             "rows-only whole-layer tensor: head 1.1 sliced to 1 x %d from row %d, drawn %d px high", hv->C, hv->row0, hv->hm.h);
    viz_app_select(&h.a, 0, 1);
    hl_render(&h);
    TL_CHECK(hv->status == HS_ENOTFOUND && !h.a.error[0], "a head without a stored pattern shows the empty state (not an error)");
    hl_close(&h);

    /* damage the pattern row in the database: the view reports it, nothing crashes */
    sqlite3 *s;
    if (sqlite3_open(db, &s) == SQLITE_OK) {
        sqlite3_exec(s, "UPDATE activations SET shape='[7,7]' WHERE layer=0", NULL, NULL, NULL);
        sqlite3_close(s);
    }
    int before = hs_log_error_count();
    if (hl_open(&h, db, NULL, 0, "head:0.0:0", NULL, 640, 400)) {
        hl_render(&h);
        TL_CHECK(h.a.hv.status != HS_OK && h.a.hv.status != HS_ENOTFOUND && !h.a.error[0] && hs_log_error_count() - before == 1,
                 "damaged pattern blob: the head view shows the error (%s), one line logged", h.a.d.err);
    } else tl_fail("damaged pattern: open");
    hl_close(&h);
}

/* ------------------------------------------------------------------ bad input */

static void test_view_parse(void) {
    const char *good[] = { "grid", "head", "head:0.1", "head:12.3:45", "spectra", "spectra:1.2", "maps", "composition" };
    const char *bad[] = { "", "gird", "grid:0.1", "head:", "head:x.1", "head:1", "head:0.1:", "head:0.1:x", "spectra:1.2:3", "head:-1.0", "maps:" };
    int ok = 0, nb = 0;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) { viz_view_id v; int l, h, p; ok += viz_view_parse(good[i], &v, &l, &h, &p) == HS_OK; }
    hs_log_quiet(true);
    int before = hs_log_error_count();
    for (size_t i = 1; i < sizeof bad / sizeof *bad; i++) { viz_view_id v; int l, h, p; nb += viz_view_parse(bad[i], &v, &l, &h, &p) == HS_EBADINPUT; }
    int lines = hs_log_error_count() - before;
    hs_log_quiet(false);
    TL_CHECK(ok == 8 && nb == 10 && lines == 10, "view specs: 8 good accepted, 10 bad refused with one line each (%d, %d, %d lines)", ok, nb, lines);
    viz_view_id v; int l, h, p;
    viz_view_parse("head:12.3:45", &v, &l, &h, &p);
    TL_CHECK(v == VIZ_VIEW_HEAD && l == 12 && h == 3 && p == 45, "head:12.3:45 -> head view, layer 12, head 3, prompt 45");
}

static void expect_open_fail(const char *db, const char *const *reports, int n, const char *view, const char *metric, const char *what, const char *needle) {
    hl h;
    int before = hs_log_error_count();
    bool ok = hl_open(&h, db, reports, n, view, metric, 640, 400);
    int lines = hs_log_error_count() - before;
    const char *msg = h.a.error[0] ? h.a.error : "(logged)";
    TL_CHECK(!ok && lines == 1 && (!needle || strstr(h.a.error, needle) || !h.a.error[0]), "bad input: %s -> refused, 1 line (%d): %.160s", what, lines, msg);
    if (h.r && h.a.error[0]) hl_render(&h);   /* the error screen draws */
    hl_close(&h);
}

static void write_text(const char *path, const char *s, size_t n) { FILE *f = fopen(path, "wb"); if (f) { fwrite(s, 1, n, f); fclose(f); } }

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); long k = ftell(f); fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)k + 1);
    *n = fread(b, 1, (size_t)k, f); b[*n] = 0; fclose(f);
    return b;
}

static void test_bad_input(const char *db, const char *tmp) {
    char p1[600], p2[600], p3[600], p4[600];
    expect_open_fail(db, NULL, 0, "head:2.0", NULL, "head 2.0 in a 2-layer model", NULL);
    expect_open_fail(db, NULL, 0, "head:0.1:99", NULL, "prompt 99 of 10", NULL);
    expect_open_fail(db, NULL, 0, "grid", "nope", "unknown metric", NULL);
    expect_open_fail(db, NULL, 0, "grid", "self", "ambiguous metric 'self'", NULL);
    snprintf(p1, sizeof p1, "%s/missing.json", tmp);
    const char *r1[] = { p1 };
    expect_open_fail(db, r1, 1, NULL, NULL, "missing --report file", "cannot read report");
    snprintf(p2, sizeof p2, "%s/trunc.json", tmp);
    size_t n; char *maps = slurp("tests/fixtures/viewer/maps.json", &n);
    if (maps) write_text(p2, maps, n / 2);
    const char *r2[] = { p2 };
    expect_open_fail(db, r2, 1, NULL, NULL, "truncated report", "not valid JSON");
    snprintf(p3, sizeof p3, "%s/shape.json", tmp);
    if (maps) {
        cJSON *j = cJSON_Parse(maps);
        cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "n_layers"), 12);
        char *t = cJSON_PrintUnformatted(j); write_text(p3, t, strlen(t)); free(t); cJSON_Delete(j);
    }
    const char *r3[] = { p3 };
    expect_open_fail(db, r3, 1, NULL, NULL, "report of a 12-layer model", "12 layers");
    snprintf(p4, sizeof p4, "%s/notadb.db", tmp);
    const char *junk = "this is not a database, just text that is long enough to look like a header............";
    write_text(p4, junk, strlen(junk));
    expect_open_fail(p4, NULL, 0, NULL, NULL, "a text file as RUN.db", NULL);
    expect_open_fail("/nonexistent/run.db", NULL, 0, NULL, NULL, "a missing RUN.db", NULL);
    free(maps);
    /* a database that is not empty but truncated */
    size_t dn; char *dbb = slurp(db, &dn);
    char p5[600]; snprintf(p5, sizeof p5, "%s/trunc.db", tmp);
    if (dbb) write_text(p5, dbb, dn > 16384 ? 16384 : dn / 2);
    free(dbb);
    hl h;
    int before = hs_log_error_count();
    bool ok = hl_open(&h, p5, NULL, 0, "head:0.1", NULL, 640, 400);
    if (ok) { hl_render(&h); viz_app_select(&h.a, 1, 2); hl_render(&h); }
    TL_CHECK(!ok || h.a.hv.status != HS_OK || h.a.d.n_prompts == 0, "truncated RUN.db: refused or views show errors (%d lines logged), no crash", hs_log_error_count() - before);
    hl_close(&h);
    /* no font */
    setenv("HEADSCOPE_FONT", "/nonexistent/font.ttf", 1);
    viz_ui u;
    SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, 64, 64, 32, SDL_PIXELFORMAT_ARGB8888);
    SDL_Renderer *r = SDL_CreateSoftwareRenderer(s);
    before = hs_log_error_count();
    hs_status rc = viz_ui_init(&u, r, 1, false);
    TL_CHECK(rc == HS_EIO && hs_log_error_count() - before == 1, "missing font (HEADSCOPE_FONT): HS_EIO with one line");
    if (rc == HS_OK) viz_ui_free(&u);
    unsetenv("HEADSCOPE_FONT");
    SDL_DestroyRenderer(r); SDL_FreeSurface(s);
    /* token display */
    char *t = viz_token_display("a\nb\tc\x01 d\xC3(", true);
    TL_CHECK(!strcmp(t, "a\\nb\\tc\\x01\xE2\x90\xA3" "d\\xC3("), "token display escapes controls and invalid bytes: %s", t);
    free(t);
}

/* Mutate reports structurally (replace a random node by another type, delete a key) and by
 * bytes; every load must either succeed or fail with one line, never crash or leak. */
static cJSON *nth_node(cJSON *root, int *k, cJSON **parent) {
    for (cJSON *c = root->child; c; c = c->next) {
        if ((*k)-- == 0) { *parent = root; return c; }
        if (c->child) { cJSON *f = nth_node(c, k, parent); if (f) return f; }
    }
    return NULL;
}
static int count_nodes(const cJSON *root) { int n = 0; for (const cJSON *c = root->child; c; c = c->next) n += 1 + (c->child ? count_nodes(c) : 0); return n; }

static void test_fuzz_reports(const char *db) {
    hl h;
    if (!hl_open(&h, db, NULL, 0, "grid", NULL, 320, 200)) { tl_fail("fuzz: open"); hl_close(&h); return; }
    const char *names[4] = { "maps", "svd", "composition", "spectra" };
    unsigned seed = 12345;
    int loads = 0, accepted = 0, refused_one_line = 0;
    hs_log_quiet(true);
    FILE *saved = stderr; FILE *null = fopen("/dev/null", "w"); if (null) stderr = null;   /* thousands of expected error lines */
    for (int f = 0; f < 4; f++) {
        char path[256]; snprintf(path, sizeof path, "%s/%s.json", FX, names[f]);
        size_t n; char *txt = slurp(path, &n);
        if (!txt) continue;
        int iters = f == 3 ? 120 : 300;
        for (int it = 0; it < iters; it++) {
            seed = seed * 1103515245u + 12345u;
            char *m; size_t mn;
            if (it % 3 == 0) {   /* bytes: truncate or flip */
                m = malloc(n + 1); memcpy(m, txt, n + 1); mn = n;
                if (it % 2) mn = seed % n; else for (int k = 0; k < 4; k++) m[(seed >> k) % n] = (char)(seed >> (8 + k));
            } else {             /* structure */
                cJSON *j = cJSON_Parse(txt);
                int k = (int)(seed % (unsigned)count_nodes(j));
                cJSON *parent = NULL, *node = nth_node(j, &k, &parent);
                if (node && (seed >> 8) % 8 == 7) cJSON_Delete(cJSON_DetachItemViaPointer(parent, node));   /* drop a key or element */
                else if (node) {
                    cJSON *rep;
                    switch ((seed >> 8) % 8) {
                    case 0: rep = cJSON_CreateString("x"); break;
                    case 1: rep = cJSON_CreateNull(); break;
                    case 2: rep = cJSON_CreateNumber(-1); break;
                    case 3: rep = cJSON_CreateNumber(1e308); break;
                    case 4: rep = cJSON_CreateArray(); break;
                    case 5: rep = cJSON_CreateObject(); break;
                    default: rep = cJSON_CreateNumber(123456789); break;
                    }
                    if (!cJSON_ReplaceItemViaPointer(parent, node, rep)) cJSON_Delete(rep);
                }
                m = cJSON_PrintUnformatted(j); mn = strlen(m);
                cJSON_Delete(j);
            }
            int before = hs_log_error_count();
            hs_status rc = viz_data_load_report(&h.a.d, m, mn, "fuzz");
            int lines = hs_log_error_count() - before;
            loads++;
            if (rc == HS_OK) accepted++;
            else if (lines == 1) refused_one_line++;
            free(m);
        }
        free(txt);
    }
    if (null) { stderr = saved; fclose(null); }
    hs_log_quiet(false);
    viz_grid_free(&h.a); viz_maps_free(&h.a); viz_spectra_free(&h.a); viz_comp_free(&h.a);
    for (int v = 0; v < VIZ_VIEW_COUNT; v++) { h.a.view = (viz_view_id)v; hl_render(&h); }   /* whatever got installed still draws */
    TL_CHECK(accepted + refused_one_line == loads, "fuzz: %d mutated reports: %d accepted, %d refused with exactly one line, no crash",
             loads, accepted, refused_one_line);
    hl_close(&h);
}

/* ------------------------------------------------------------------ shared model */

static void test_shared(const char *tmp) {
    const char *model = tl_shared_path("models/tiny-llama-shakespeare"), *corpus = tl_shared_path("corpora/tinyshakespeare/input.txt");
    struct stat st;
    if (!model || !corpus || stat(model, &st) != 0 || stat(corpus, &st) != 0) { tl_skip("shared model run: ../shared/models/tiny-llama-shakespeare not found"); return; }
    char db[600]; snprintf(db, sizeof db, "%s/shared.db", tmp);
    probe_capture_opts o; probe_capture_defaults(&o);
    o.model = model; o.corpus = corpus; o.window = 512; o.stride = 400000; o.db = db; o.quiet = true; o.hooks = "hook_pattern"; o.layers = "0,3";
    int64_t run;
    if (probe_capture_run(&o, &run) != HS_OK) { tl_fail("shared: capture 512-token windows"); return; }
    const char *views[] = { "grid", "head:3.5:0", "head:0.0:1", "spectra", "maps", "composition" };
    int good = 0;
    double worst = 0;
    for (size_t v = 0; v < sizeof views / sizeof *views; v++) {
        hl h;
        if (hl_open(&h, db, NULL, 0, views[v], NULL, 1280, 800)) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0); hl_render(&h); clock_gettime(CLOCK_MONOTONIC, &t1);
            double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
            if (ms > worst) worst = ms;
            good += !h.a.error[0] && (strncmp(views[v], "head", 4) || (h.a.hv.status == HS_OK && h.a.hv.C == 512));
        }
        hl_close(&h);
    }
    TL_CHECK(good == 6, "shared: tiny-llama run with 512-token prompts: %d/6 views render (slowest first frame incl. load %.0f ms)", good, worst);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);   /* keep check lines and stderr lines in order when piped */
    char tmp[] = "/tmp/test_viz_XXXXXX";
    if (!mkdtemp(tmp)) { tl_fail("mkdtemp"); return tl_done(); }
    if (SDL_Init(0) != 0 || TTF_Init() != 0) { tl_fail("SDL/TTF init: %s", SDL_GetError()); return tl_done(); }
    char db[700];
    test_view_parse();
    if (make_planted_run(tmp, db, sizeof db)) {
        tl_ok("planted run: plant, capture the demo prompts (patterns + stats), sinks and detectors");
        test_grid_sink(db);
        test_head_prev(db);
        test_views_fixtures(db);
        test_bad_input(db, tmp);
        test_fuzz_reports(db);
        test_screenshot_file(db, tmp);
    } else tl_fail("planted run: plant + capture + analyze");
    test_long(tmp);
    test_shared(tmp);
    TTF_Quit(); IMG_Quit(); SDL_Quit();
    char cmd[800]; snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) tl_fail("cleanup %s", tmp);
    return tl_done();
}
