/* view_grid.c — the overview: a layers x heads heatmap coloured by one metric (statistics or any
 * report), with a metric picker, a colour legend with the value range, a tooltip listing the
 * head's values, a ranked list of heads and a quantile filter.
 *
 * Colour: viridis over [min, max] of the metric across heads; the legend's top is entry 255, so
 * the head holding the maximum is painted exactly the legend's top colour. NaN (no value) cells
 * are grey. Cells are plain filled rects: even 64 x 64 heads is 4096 rects, well inside a frame.
 */
#include "viz_internal.h"
#include <stdlib.h>
#include <string.h>

static const double k_filter_frac[4] = { 1.0, 0.5, 0.25, 0.10 };
static const char *const k_filter_name[4] = { "all heads", "top 50%", "top 25%", "top 10%" };

static const viz_metric *cur_metric(const viz_app *a) {
    return a->metric >= 0 && a->metric < a->d.n_metrics ? &a->d.metrics[a->metric] : NULL;
}

static const viz_metric *g_sort_m;
static bool g_sort_asc;
static int cmp_heads(const void *x, const void *y) {
    int i = *(const int *)x, j = *(const int *)y;
    double a = g_sort_m->v[i], b = g_sort_m->v[j];
    if (a != b) return (a < b) == g_sort_asc ? -1 : 1;
    return i - j;
}

static void update_order(viz_app *a) {
    viz_grid_state *g = &a->grid;
    const viz_metric *m = cur_metric(a);
    int key = a->metric * 2 + (g->ascending ? 1 : 0);
    if (g->order_metric == key && g->order) return;
    int N = a->d.L * a->d.H;
    free(g->order);
    g->order = hs_xmalloc((size_t)(N ? N : 1) * sizeof *g->order);
    g->n_order = 0;
    g->order_metric = key;
    g->filter_cut = NAN;
    if (!m) return;
    for (int i = 0; i < N; i++) if (!isnan(m->v[i])) g->order[g->n_order++] = i;
    g_sort_m = m; g_sort_asc = false;
    qsort(g->order, (size_t)g->n_order, sizeof *g->order, cmp_heads);   /* descending first: the filter cut */
    if (g->filter > 0 && g->n_order > 0) {
        int k = (int)ceil(g->n_order * k_filter_frac[g->filter]);
        if (k < 1) k = 1;
        g->filter_cut = m->v[g->order[k - 1]];
    }
    if (g->ascending) { g_sort_asc = true; qsort(g->order, (size_t)g->n_order, sizeof *g->order, cmp_heads); }
}

static bool dimmed(const viz_grid_state *g, double v) { return !isnan(g->filter_cut) && !(v >= g->filter_cut); }

static SDL_Color mix(SDL_Color a, SDL_Color b, float t) {
    return viz_rgba((uint8_t)(a.r + (b.r - a.r) * t), (uint8_t)(a.g + (b.g - a.g) * t), (uint8_t)(a.b + (b.b - a.b) * t), 255);
}

static void head_tooltip(viz_app *a, int flat, int x, int y) {
    char buf[2000], num[32];
    size_t k = 0;
    const viz_metric *m = cur_metric(a);
    k += (size_t)snprintf(buf + k, sizeof buf - k, "head %d.%d", flat / a->d.H, flat % a->d.H);
    if (m) { viz_fmt_num(num, sizeof num, m->v[flat]); k += (size_t)snprintf(buf + k, sizeof buf - k, "\n%s = %s", m->name, num); }
    int shown = 0;
    for (int i = 0; i < a->d.n_metrics && shown < 16 && k < sizeof buf - 100; i++) {
        const viz_metric *o = &a->d.metrics[i];
        if (o == m || isnan(o->v[flat])) continue;
        viz_fmt_num(num, sizeof num, o->v[flat]);
        k += (size_t)snprintf(buf + k, sizeof buf - k, "\n  %s = %s", o->name, num);
        shown++;
    }
    if (shown == 16) snprintf(buf + k, sizeof buf - k, "\n  … (all values: head view)");
    viz_tooltip(&a->ui, x, y, buf);
}

void viz_grid_draw(viz_app *a, SDL_Rect area) {
    viz_ui *u = &a->ui;
    viz_grid_state *g = &a->grid;
    int pad = viz_px(u, 8), lh = u->line_h[VIZ_FONT_NORMAL], sh = u->line_h[VIZ_FONT_SMALL];
    int pw = area.w * 22 / 100, rw = area.w * 20 / 100;
    if (pw > viz_px(u, 260)) pw = viz_px(u, 260);
    if (rw > viz_px(u, 230)) rw = viz_px(u, 230);
    g->picker = (SDL_Rect){ area.x, area.y, pw, area.h };
    g->rank = (SDL_Rect){ area.x + area.w - rw, area.y, rw, area.h };
    SDL_Rect mid = { area.x + pw + pad, area.y, area.w - pw - rw - 2 * pad, area.h };
    const viz_metric *m = cur_metric(a);
    update_order(a);

    /* ---- metric picker */
    SDL_Rect pc = viz_panel(u, g->picker, "METRIC  (PgUp/PgDn)");
    g->picker_row_h = lh + viz_px(u, 2);
    int rows_vis = pc.h / g->picker_row_h, row = 0, total = 0;
    for (int i = 0; i < a->d.n_metrics; i++) total += 1 + (i == 0 || a->d.metrics[i].src != a->d.metrics[i - 1].src);
    if (g->shown_metric != a->metric) {   /* the metric changed (keys, --metric): scroll it into view */
        g->shown_metric = a->metric;
        int row_of = 0;
        for (int i = 0; i < a->d.n_metrics && i <= a->metric; i++) row_of += 1 + (i == 0 || a->d.metrics[i].src != a->d.metrics[i - 1].src);
        row_of--;
        if (row_of < g->picker_scroll + 1) g->picker_scroll = row_of - 1;
        if (row_of >= g->picker_scroll + rows_vis) g->picker_scroll = row_of - rows_vis + 2;
    }
    if (g->picker_scroll > total - rows_vis) g->picker_scroll = total - rows_vis;
    if (g->picker_scroll < 0) g->picker_scroll = 0;
    if (a->d.n_metrics == 0)
        viz_text(u, VIZ_FONT_SMALL, pc.x, pc.y, u->th.dim, VIZ_LEFT, pc.w, "no metrics loaded");
    for (int i = 0; i < a->d.n_metrics; i++) {
        const viz_metric *mm = &a->d.metrics[i];
        bool head = i == 0 || mm->src != a->d.metrics[i - 1].src;
        for (int pass = head ? 0 : 1; pass < 2; pass++, row++) {
            int r = row - g->picker_scroll;
            if (r < 0 || r >= rows_vis) continue;
            int y = pc.y + r * g->picker_row_h;
            if (pass == 0) {
                char t[200];
                const char *w = a->d.src_where[mm->src];
                const char *base = w ? strrchr(w, '/') : NULL;
                snprintf(t, sizeof t, "%s%s%s", viz_source_name[mm->src], w ? " · " : "", w ? (base ? base + 1 : w) : "");
                viz_text(u, VIZ_FONT_SMALL, pc.x, y + (g->picker_row_h - sh) / 2, u->th.accent, VIZ_LEFT, pc.w, t);
                continue;
            }
            SDL_Rect rr = { pc.x, y, pc.w, g->picker_row_h };
            if (i == a->metric) viz_fill(u, rr, u->th.panel_hi);
            else if (viz_hit(rr, u->mx, u->my)) viz_fill(u, rr, viz_rgba(u->th.panel_hi.r, u->th.panel_hi.g, u->th.panel_hi.b, 120));
            const char *dot = strchr(mm->name, '.');
            viz_text(u, VIZ_FONT_NORMAL, pc.x + viz_px(u, 10), y + viz_px(u, 1), i == a->metric ? u->th.text : u->th.dim, VIZ_LEFT, pc.w - viz_px(u, 10), dot ? dot + 1 : mm->name);
        }
    }
    if (total > rows_vis && rows_vis > 0) {   /* scroll indicator */
        int bh = pc.h * rows_vis / total, by = pc.y + (pc.h - bh) * g->picker_scroll / (total - rows_vis);
        viz_fill(u, (SDL_Rect){ g->picker.x + g->picker.w - viz_px(u, 3), by, viz_px(u, 3), bh }, u->th.border);
    }

    /* ---- ranked heads */
    char title[200];
    snprintf(title, sizeof title, "RANKED %s  (o)  ·  %s  (f)", g->ascending ? "ASC" : "DESC", k_filter_name[g->filter]);
    SDL_Rect rc = viz_panel(u, g->rank, title);
    g->rank_row_h = lh + viz_px(u, 2);
    int rvis = rc.h / g->rank_row_h;
    if (g->rank_scroll > g->n_order - rvis) g->rank_scroll = g->n_order - rvis;
    if (g->rank_scroll < 0) g->rank_scroll = 0;
    const SDL_Color *lut = viz_cmap_lut(VIZ_CMAP_VIRIDIS);
    for (int r = 0; m && r < rvis && g->rank_scroll + r < g->n_order; r++) {
        int flat = g->order[g->rank_scroll + r], y = rc.y + r * g->rank_row_h;
        double v = m->v[flat];
        SDL_Rect rr = { rc.x, y, rc.w, g->rank_row_h };
        if (flat == a->layer * a->d.H + a->head) viz_fill(u, rr, u->th.panel_hi);
        int bw = rc.w * 45 / 100, ci = viz_cmap_index(v, m->lo, m->hi);
        int bl = m->hi > m->lo ? (int)(bw * (v - m->lo) / (m->hi - m->lo)) : bw / 2;
        SDL_Color bc = ci >= 0 ? lut[ci] : u->th.missing;
        if (dimmed(g, v)) bc = mix(bc, u->th.panel, 0.75f);
        viz_fill(u, (SDL_Rect){ rc.x + rc.w - bw, y + viz_px(u, 3), bl > 1 ? bl : 1, g->rank_row_h - viz_px(u, 6) }, bc);
        char num[32]; viz_fmt_num(num, sizeof num, v);
        SDL_Color tc = dimmed(g, v) ? u->th.dim : u->th.text;
        viz_textf(u, VIZ_FONT_NORMAL, rc.x, y + viz_px(u, 1), tc, VIZ_LEFT, 0, "%d.%d", flat / a->d.H, flat % a->d.H);
        viz_text(u, VIZ_FONT_NORMAL, rc.x + rc.w - bw - pad, y + viz_px(u, 1), tc, VIZ_RIGHT, 0, num);
    }

    /* ---- the grid */
    g->hover = -1;
    if (!m) {
        viz_empty_state(u, mid, "No metrics to colour the heads by",
                        a->d.n_prompts == 0
                            ? "This run has no prompts captured yet and no reports are loaded. Capture prompts (headscope capture MODEL --prompts FILE --db RUN.db), then press r to re-read."
                            : "This run has no per-head statistics (captured with --no-stats?) and no reports are loaded. Run 'headscope analyze sinks --db RUN.db' or 'analyze detectors', or open a report with --report FILE.json.");
        g->grid = (SDL_Rect){ 0, 0, 0, 0 };
        return;
    }
    char head[300];
    snprintf(head, sizeof head, "%s  ·  %d of %d heads have a value", m->name, m->n_valid, a->d.L * a->d.H);
    viz_text(u, VIZ_FONT_BIG, mid.x, mid.y, u->th.text, VIZ_LEFT, mid.w, head);
    int top = mid.y + u->line_h[VIZ_FONT_BIG] + pad + sh + viz_px(u, 4), left = mid.x + viz_px(u, 40);
    int legend_w = viz_px(u, 90);
    int aw = mid.x + mid.w - legend_w - left, ah = mid.y + mid.h - top - sh;
    int L = a->d.L, H = a->d.H;
    int cw = aw / H, ch = ah / L, c = cw < ch ? cw : ch;
    if (c > viz_px(u, 96)) c = viz_px(u, 96);
    if (c < 1) c = 1;
    g->cell_w = g->cell_h = c;
    g->grid = (SDL_Rect){ left, top, c * H, c * L };
    int gap = c >= 8 ? 1 : 0;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            int flat = l * H + h;
            double v = m->v[flat];
            int ci = viz_cmap_index(v, m->lo, m->hi);
            SDL_Color col = ci >= 0 ? lut[ci] : u->th.missing;
            if (ci >= 0 && dimmed(g, v)) col = mix(col, u->th.bg, 0.8f);
            viz_fill(u, (SDL_Rect){ left + h * c, top + l * c, c - gap, c - gap }, col);
        }
    /* values inside big cells (bottom-right corner, clear of the sampled top-left area) */
    if (c >= viz_px(u, 56)) {
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++) {
                int flat = l * H + h, ci = viz_cmap_index(m->v[flat], m->lo, m->hi);
                char num[32]; viz_fmt_num(num, sizeof num, m->v[flat]);
                SDL_Color col = ci >= 0 ? lut[ci] : u->th.missing;
                bool darkcell = 0.299 * col.r + 0.587 * col.g + 0.114 * col.b < 140;
                viz_text(u, VIZ_FONT_SMALL, left + h * c + c - viz_px(u, 5), top + l * c + c - sh - viz_px(u, 4),
                         darkcell ? viz_rgba(255, 255, 255, 230) : viz_rgba(0, 0, 0, 230), VIZ_RIGHT, c - viz_px(u, 8), num);
            }
    }
    /* axes: layers down the left, heads along the top (every k-th label when cells are small) */
    int step = 1;
    while (step * c < sh + viz_px(u, 2)) step++;
    for (int l = 0; l < L; l += step) viz_textf(u, VIZ_FONT_SMALL, left - viz_px(u, 6), top + l * c + (c - sh) / 2, u->th.dim, VIZ_RIGHT, 0, "L%d", l);
    int hstep = 1;
    while (hstep * c < viz_px(u, 22)) hstep++;
    for (int h = 0; h < H; h += hstep) viz_textf(u, VIZ_FONT_SMALL, left + h * c + c / 2, top - sh - viz_px(u, 2), u->th.dim, VIZ_CENTER, 0, "%d", h);
    viz_text(u, VIZ_FONT_SMALL, left - viz_px(u, 6), top - sh - viz_px(u, 2), u->th.dim, VIZ_RIGHT, 0, "head");
    /* selection and hover */
    int t = c >= 12 ? viz_px(u, 2) : 1;
    viz_outline(u, (SDL_Rect){ left + a->head * c - t, top + a->layer * c - t, c + 2 * t - gap, c + 2 * t - gap }, u->th.select, t);
    if (viz_hit(g->grid, u->mx, u->my)) {
        int h = (u->mx - left) / c, l = (u->my - top) / c;
        if (h >= 0 && h < H && l >= 0 && l < L) {
            g->hover = l * H + h;
            viz_outline(u, (SDL_Rect){ left + h * c, top + l * c, c - gap, c - gap }, u->th.text, 1);
            head_tooltip(a, g->hover, u->mx, u->my);
        }
    }
    /* legend: same height as the grid, to its right */
    int lg_h = g->grid.h < viz_px(u, 120) ? viz_px(u, 120) : g->grid.h;
    if (lg_h > ah) lg_h = ah;
    g->legend = (SDL_Rect){ left + g->grid.w + viz_px(u, 16), top, viz_px(u, 14), lg_h };
    viz_legend(u, g->legend, VIZ_CMAP_VIRIDIS, m->lo, m->hi, true, NULL);
    if (m->n_valid < L * H) {
        SDL_Rect sw = { g->legend.x, g->legend.y + g->legend.h + sh + viz_px(u, 6), g->legend.w, g->legend.w };
        if (sw.y + sw.h + sh < area.y + area.h) {
            viz_fill(u, sw, u->th.missing);
            viz_text(u, VIZ_FONT_SMALL, sw.x + sw.w + viz_px(u, 4), sw.y, u->th.dim, VIZ_LEFT, 0, "no value");
        }
    }
}

bool viz_grid_event(viz_app *a, const SDL_Event *e) {
    viz_grid_state *g = &a->grid;
    viz_ui *u = &a->ui;
    switch (e->type) {
    case SDL_MOUSEMOTION: return viz_hit(a->main, e->motion.x, e->motion.y) || g->hover >= 0;
    case SDL_MOUSEWHEEL: {
        int dy = e->wheel.y > 0 ? -3 : e->wheel.y < 0 ? 3 : 0;
        if (viz_hit(g->picker, u->mx, u->my)) { g->picker_scroll += dy; return true; }
        if (viz_hit(g->rank, u->mx, u->my)) { g->rank_scroll += dy; return true; }
        return false;
    }
    case SDL_MOUSEBUTTONDOWN: {
        if (e->button.button != SDL_BUTTON_LEFT) return false;
        int x = e->button.x, y = e->button.y;
        if (viz_hit(g->grid, x, y) && g->cell_w > 0) {
            viz_app_select(a, (y - g->grid.y) / g->cell_h, (x - g->grid.x) / g->cell_w);
            if (e->button.clicks >= 2) a->view = VIZ_VIEW_HEAD;
            return true;
        }
        if (viz_hit(g->picker, x, y) && g->picker_row_h > 0) {
            SDL_Rect pc = { g->picker.x, g->picker.y, g->picker.w, g->picker.h };
            int top = pc.y + viz_px(u, 6) + u->line_h[VIZ_FONT_SMALL] + viz_px(u, 6) / 2;
            int r = (y - top) / g->picker_row_h + g->picker_scroll, row = 0;
            if (y < top) return false;
            for (int i = 0; i < a->d.n_metrics; i++) {
                if (i == 0 || a->d.metrics[i].src != a->d.metrics[i - 1].src) row++;
                if (row == r) { a->metric = i; g->rank_scroll = 0; return true; }
                row++;
            }
            return false;
        }
        if (viz_hit(g->rank, x, y) && g->rank_row_h > 0) {
            int top = g->rank.y + viz_px(u, 6) + u->line_h[VIZ_FONT_SMALL] + viz_px(u, 6) / 2;
            int r = (y - top) / g->rank_row_h + g->rank_scroll;
            if (y >= top && r >= 0 && r < g->n_order) {
                viz_app_select(a, g->order[r] / a->d.H, g->order[r] % a->d.H);
                if (e->button.clicks >= 2) a->view = VIZ_VIEW_HEAD;
                return true;
            }
        }
        return false;
    }
    case SDL_KEYDOWN:
        switch (e->key.keysym.sym) {
        case SDLK_PAGEUP: if (a->d.n_metrics) { a->metric = (a->metric + a->d.n_metrics - 1) % a->d.n_metrics; g->rank_scroll = 0; } return true;
        case SDLK_PAGEDOWN: if (a->d.n_metrics) { a->metric = (a->metric + 1) % a->d.n_metrics; g->rank_scroll = 0; } return true;
        case SDLK_RETURN: case SDLK_KP_ENTER: a->view = VIZ_VIEW_HEAD; return true;
        case SDLK_f: g->filter = (g->filter + 1) % 4; g->order_metric = -1; return true;
        case SDLK_o: g->ascending = !g->ascending; g->rank_scroll = 0; return true;
        default: return false;
        }
    default: return false;
    }
}

void viz_grid_free(viz_app *a) {
    free(a->grid.order);
    a->grid.order = NULL; a->grid.n_order = 0; a->grid.order_metric = -1;
}
