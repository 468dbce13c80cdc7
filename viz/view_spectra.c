/* view_spectra.c — the empirical spectral density (ESD) of one weight matrix from the spectra
 * report: the histogram as a density, the fitted Marchenko-Pastur density on top, and markers at
 * lambda_+ (bulk edge; eigenvalues beyond it are spikes, drawn in another colour with a rug) and
 * lambda_-. The list on the left holds the selected layer's matrices and the selected head's.
 *
 * The histogram counts are normalised to a density (count / (total x bin width)) so they share
 * the y axis with the MP density; the MP curve can diverge at lambda_- for square matrices, so
 * the y range is capped at 3x the tallest bar.
 */
#include "viz_internal.h"
#include <stdlib.h>
#include <string.h>

static void build_items(viz_app *a) {
    viz_spectra_state *s = &a->sp;
    s->items = hs_xrealloc(s->items, (size_t)(a->d.n_spectra ? a->d.n_spectra : 1) * sizeof *s->items);
    s->n_items = 0;
    for (int pass = 0; pass < 2; pass++)   /* the layer's matrices, then the head's */
        for (int i = 0; i < a->d.n_spectra; i++) {
            const viz_spectrum *m = &a->d.spectra[i];
            if (m->layer != a->layer) continue;
            if (pass == 0 ? m->head == -1 : m->head == a->head) s->items[s->n_items++] = i;
        }
    bool ok = false;
    for (int k = 0; k < s->n_items; k++) if (s->items[k] == s->sel) ok = true;
    if (ok) return;
    s->sel = -1;
    for (int k = 0; k < s->n_items && s->sel < 0; k++) {   /* same matrix name on the new head/layer */
        const viz_spectrum *m = &a->d.spectra[s->items[k]];
        if (s->sel_name[0] && strcmp(m->name, s->sel_name) == 0 && (m->head >= 0) == s->sel_is_head) s->sel = s->items[k];
    }
    for (int k = 0; k < s->n_items && s->sel < 0; k++)
        if ((a->d.spectra[s->items[k]].head >= 0) == s->prefer_head) s->sel = s->items[k];
    if (s->sel < 0 && s->n_items) s->sel = s->items[0];
}

static void remember(viz_app *a) {
    viz_spectra_state *s = &a->sp;
    if (s->sel < 0) return;
    snprintf(s->sel_name, sizeof s->sel_name, "%s", a->d.spectra[s->sel].name);
    s->sel_is_head = a->d.spectra[s->sel].head >= 0;
}

static double tx(const viz_spectra_state *s, double v, double floor_pos) {
    if (!s->logx) return v;
    return log10(v > floor_pos ? v : floor_pos);
}

static void draw_plot(viz_app *a, const viz_spectrum *m, SDL_Rect area) {
    viz_ui *u = &a->ui;
    viz_spectra_state *s = &a->sp;
    int sh = u->line_h[VIZ_FONT_SMALL], pad = viz_px(u, 8);
    char title[160];
    if (m->head >= 0) snprintf(title, sizeof title, "%s of head %d.%d  ·  %d × %d", m->name, m->layer, m->head, m->shape[0], m->shape[1]);
    else snprintf(title, sizeof title, "%s of layer %d  ·  %d × %d", m->name, m->layer, m->shape[0], m->shape[1]);
    viz_text(u, VIZ_FONT_BIG, area.x, area.y, u->th.text, VIZ_LEFT, area.w, title);
    int top = area.y + u->line_h[VIZ_FONT_BIG] + pad;
    int bw = viz_px(u, 180);   /* the numbers, right of the plot */
    SDL_Rect P = { area.x + viz_px(u, 56), top + pad, area.w - viz_px(u, 56) - 2 * pad - bw, area.h - (top - area.y) - 3 * sh - 2 * pad };
    s->plot = P;
    if (P.w < 40 || P.h < 40) return;
    double total = 0, dmax = 0;
    for (int i = 0; i < m->n_bins; i++) total += m->counts[i];
    double floor_pos = INFINITY;
    for (int i = 0; i <= m->n_bins; i++) if (m->edges[i] > 0 && m->edges[i] < floor_pos) floor_pos = m->edges[i];
    for (int i = 0; i < m->n_mp; i++) if (m->mp_x[i] > 0 && m->mp_x[i] < floor_pos) floor_pos = m->mp_x[i];
    if (!isfinite(floor_pos)) floor_pos = 1e-6;
    double *dens = hs_xmalloc((size_t)m->n_bins * sizeof *dens);
    for (int i = 0; i < m->n_bins; i++) {
        double w = m->edges[i + 1] - m->edges[i];
        dens[i] = total > 0 && w > 0 ? m->counts[i] / (total * w) : 0;
        if (dens[i] > dmax) dmax = dens[i];
    }
    double mpmax = 0;
    for (int i = 0; i < m->n_mp; i++) if (m->mp_y[i] > mpmax) mpmax = m->mp_y[i];
    double ymax = dmax;
    if (mpmax > ymax) ymax = mpmax < 3 * dmax || dmax == 0 ? mpmax : 3 * dmax;
    ymax = ymax > 0 ? ymax * 1.12 : 1;
    double xlo = m->edges[0], xhi = m->edges[m->n_bins];
    if (isfinite(m->lambda_plus) && m->lambda_plus > xhi) xhi = m->lambda_plus;
    if (isfinite(m->lambda_minus) && m->lambda_minus < xlo) xlo = m->lambda_minus;
    s->logx = s->xmode == 2 || (s->xmode == 0 && xhi > 0 && xhi / floor_pos > 1e3);
    double X0 = tx(s, xlo, floor_pos), X1 = tx(s, xhi, floor_pos);
    if (!(X1 > X0)) X1 = X0 + 1;
    double span = X1 - X0; X0 -= span * 0.02; X1 += span * 0.04;
#define PX(v) (P.x + (float)((tx(s, (v), floor_pos) - X0) / (X1 - X0) * P.w))
#define PY(d) (P.y + P.h - (float)((d) / ymax * P.h))
    viz_fill(u, P, u->th.panel);
    /* y grid and ticks */
    double ticks[12];
    int nt = viz_nice_ticks(0, ymax, 6, ticks);
    for (int i = 0; i < nt; i++) {
        int y = (int)PY(ticks[i]);
        viz_hline(u, P.x, P.x + P.w, y, u->th.bg);
        char b[32]; snprintf(b, sizeof b, "%.4g", ticks[i]);
        viz_text(u, VIZ_FONT_SMALL, P.x - viz_px(u, 6), y - sh / 2, u->th.dim, VIZ_RIGHT, 0, b);
    }
    /* x ticks */
    nt = viz_nice_ticks(X0, X1, 8, ticks);
    for (int i = 0; i < nt; i++) {
        int x = P.x + (int)((ticks[i] - X0) / (X1 - X0) * P.w);
        viz_vline(u, x, P.y + P.h, P.y + P.h + viz_px(u, 4), u->th.dim);
        char b[32]; snprintf(b, sizeof b, "%.4g", s->logx ? pow(10, ticks[i]) : ticks[i]);
        viz_text(u, VIZ_FONT_SMALL, x, P.y + P.h + viz_px(u, 5), u->th.dim, VIZ_CENTER, 0, b);
    }
    viz_text(u, VIZ_FONT_SMALL, P.x + P.w / 2, P.y + P.h + sh + viz_px(u, 8), u->th.dim, VIZ_CENTER, 0,
             s->logx ? (s->xmode ? "eigenvalue λ (log scale · l)" : "eigenvalue λ (log scale, auto · l)") : (s->xmode ? "eigenvalue λ (linear · l)" : "eigenvalue λ (linear, auto · l)"));
    viz_text(u, VIZ_FONT_SMALL, P.x - viz_px(u, 6), P.y - sh - viz_px(u, 2), u->th.dim, VIZ_RIGHT, 0, "density");
    /* bars: bulk, then spikes (beyond λ+) with a rug so a single eigenvalue stays visible */
    s->hover_bin = -1;
    for (int i = 0; i < m->n_bins; i++) {
        float x0 = PX(m->edges[i]), x1 = PX(m->edges[i + 1]);
        double cut = isfinite(m->spike_threshold) ? m->spike_threshold : m->lambda_plus;
        bool spike = isfinite(cut) && m->edges[i] >= cut;   /* a bin straddling the edge is bulk */
        int h = (int)(dens[i] / ymax * P.h);
        if (m->counts[i] > 0 && h < 2) h = 2;
        SDL_Rect r = { (int)x0, P.y + P.h - h, (int)ceilf(x1 - x0) - (x1 - x0 > 4 ? 1 : 0), h };
        if (r.w < 1) r.w = 1;
        viz_fill(u, r, spike ? u->th.spike : u->th.bar);
        if (spike && m->counts[i] > 0) viz_fill(u, (SDL_Rect){ (int)x0, P.y + P.h - viz_px(u, 8), r.w > 2 ? r.w : 2, viz_px(u, 8) }, u->th.spike);
        if (u->mx >= (int)x0 && u->mx < (int)x0 + (r.w > 1 ? r.w : 1) && viz_hit(P, u->mx, u->my)) s->hover_bin = i;
    }
    /* MP density */
    for (int i = 1; i < m->n_mp; i++) {
        double y0 = m->mp_y[i - 1] > ymax ? ymax : m->mp_y[i - 1], y1 = m->mp_y[i] > ymax ? ymax : m->mp_y[i];
        if (s->logx && (m->mp_x[i - 1] <= 0 || m->mp_x[i] <= 0)) continue;
        viz_line(u, PX(m->mp_x[i - 1]), PY(y0), PX(m->mp_x[i]), PY(y1), 2.2f * u->s, u->th.curve);
    }
    viz_lines_flush(u);
    /* λ+ and λ- markers (dashed) */
    const double lam[2] = { m->lambda_plus, m->lambda_minus };
    for (int k = 0; k < 2; k++) {
        if (!isfinite(lam[k]) || (s->logx && lam[k] <= 0)) continue;
        int x = (int)PX(lam[k]);
        if (x < P.x || x > P.x + P.w) continue;
        SDL_Color c = k == 0 ? u->th.text : u->th.dim;
        for (int y = P.y; y < P.y + P.h; y += viz_px(u, 8)) viz_fill(u, (SDL_Rect){ x - (k == 0), y, k == 0 ? 2 : 1, viz_px(u, 5) }, c);
        char b[48], n[32]; viz_fmt_num(n, sizeof n, lam[k]);
        snprintf(b, sizeof b, "%s = %s", k == 0 ? "λ+" : "λ−", n);
        int tw, th; viz_text_size(u, VIZ_FONT_SMALL, b, &tw, &th);
        bool flip = x + viz_px(u, 4) + tw > P.x + P.w;
        viz_text(u, VIZ_FONT_SMALL, flip ? x - viz_px(u, 4) : x + viz_px(u, 4), P.y + viz_px(u, 4) + k * sh, c, flip ? VIZ_RIGHT : VIZ_LEFT, 0, b);
    }
    /* the numbers */
    char lines[12][96], n1[32];
    int nl = 0;
    snprintf(lines[nl++], 96, "spikes %d   (shuffled: %d)", m->num_spikes, m->rand_num_spikes);
    if (m->law[0]) snprintf(lines[nl++], 96, "law  %s%s%s", m->law, m->status[0] && strcmp(m->status, "ok") ? " · " : "", m->status[0] && strcmp(m->status, "ok") ? m->status : "");
    struct { const char *k; double v; } f[] = { { "σ_MP", m->sigma_mp }, { "λ+", m->lambda_plus }, { "λ−", m->lambda_minus },
        { "MP soft rank", m->mp_softrank }, { "stable rank", m->stable_rank }, { "entropy", m->entropy }, { "α (power law)", m->alpha } };
    for (size_t k = 0; k < sizeof f / sizeof *f; k++) { viz_fmt_num(n1, sizeof n1, f[k].v); snprintf(lines[nl++], 96, "%s  %s", f[k].k, n1); }
    int bx = P.x + P.w + pad, by = P.y;
    viz_fill(u, (SDL_Rect){ bx, by, bw, nl * sh + 2 * pad }, u->th.panel);
    for (int i = 0; i < nl; i++) viz_text(u, VIZ_FONT_SMALL, bx + pad, by + pad + i * sh, i == 0 && m->num_spikes ? u->th.spike : u->th.text, VIZ_LEFT, bw - 2 * pad, lines[i]);
    /* legend of marks */
    int ly = P.y + P.h + sh + viz_px(u, 8);
    viz_fill(u, (SDL_Rect){ P.x, ly + sh / 4, viz_px(u, 12), sh / 2 }, u->th.bar);
    viz_text(u, VIZ_FONT_SMALL, P.x + viz_px(u, 16), ly, u->th.dim, VIZ_LEFT, 0, "bulk");
    viz_fill(u, (SDL_Rect){ P.x + viz_px(u, 56), ly + sh / 4, viz_px(u, 12), sh / 2 }, u->th.spike);
    viz_text(u, VIZ_FONT_SMALL, P.x + viz_px(u, 72), ly, u->th.dim, VIZ_LEFT, 0, "spikes > λ+");
    viz_fill(u, (SDL_Rect){ P.x + viz_px(u, 160), ly + sh / 2 - 1, viz_px(u, 16), 3 }, u->th.curve);
    viz_text(u, VIZ_FONT_SMALL, P.x + viz_px(u, 180), ly, u->th.dim, VIZ_LEFT, 0, "fitted MP density");
    if (s->hover_bin >= 0) {
        char tip[200], e0[32], e1[32], d0[32];
        viz_fmt_num(e0, sizeof e0, m->edges[s->hover_bin]); viz_fmt_num(e1, sizeof e1, m->edges[s->hover_bin + 1]); viz_fmt_num(d0, sizeof d0, dens[s->hover_bin]);
        snprintf(tip, sizeof tip, "λ in [%s, %s)\n%.0f eigenvalues · density %s", e0, e1, m->counts[s->hover_bin], d0);
        viz_tooltip(u, u->mx, u->my, tip);
    }
    free(dens);
#undef PX
#undef PY
}

void viz_spectra_draw(viz_app *a, SDL_Rect area) {
    viz_ui *u = &a->ui;
    viz_spectra_state *s = &a->sp;
    if (!a->d.has[VIZ_SRC_SPECTRA]) {
        s->list = s->plot = (SDL_Rect){ 0, 0, 0, 0 };
        viz_empty_state(u, area, "No spectra report loaded",
                        "The spectra view plots each weight matrix's eigenvalue histogram with its Marchenko-Pastur fit. "
                        "Run 'headscope analyze spectra --model MODEL --out spectra.json' and open it with "
                        "'headscope view RUN.db --report spectra.json'.");
        return;
    }
    build_items(a);
    int pad = viz_px(u, 8), lw = area.w * 22 / 100;
    if (lw > viz_px(u, 240)) lw = viz_px(u, 240);
    s->list = (SDL_Rect){ area.x, area.y, lw, area.h };
    char t[64]; snprintf(t, sizeof t, "LAYER %d  ·  HEAD %d.%d  (PgUp/PgDn)", a->layer, a->layer, a->head);
    SDL_Rect c = viz_panel(u, s->list, t);
    s->row_h = u->line_h[VIZ_FONT_NORMAL] + viz_px(u, 2);
    int rows = c.h / s->row_h;
    if (s->list_scroll > s->n_items - rows) s->list_scroll = s->n_items - rows;
    if (s->list_scroll < 0) s->list_scroll = 0;
    for (int r = 0; r < rows && s->list_scroll + r < s->n_items; r++) {
        int i = s->items[s->list_scroll + r], y = c.y + r * s->row_h;
        const viz_spectrum *m = &a->d.spectra[i];
        SDL_Rect rr = { c.x, y, c.w, s->row_h };
        if (i == s->sel) viz_fill(u, rr, u->th.panel_hi);
        char b[96];
        if (m->head >= 0) snprintf(b, sizeof b, "%d.%d %s", m->layer, m->head, m->name);
        else snprintf(b, sizeof b, "L%d %s", m->layer, m->name);
        viz_text(u, VIZ_FONT_NORMAL, c.x + viz_px(u, 4), y + viz_px(u, 1), i == s->sel ? u->th.text : u->th.dim, VIZ_LEFT, c.w * 62 / 100, b);
        snprintf(b, sizeof b, "%d spike%s", m->num_spikes, m->num_spikes == 1 ? "" : "s");
        viz_text(u, VIZ_FONT_SMALL, c.x + c.w, y + viz_px(u, 3), m->num_spikes ? u->th.spike : u->th.dim, VIZ_RIGHT, 0, b);
    }
    SDL_Rect plot = { area.x + lw + pad, area.y, area.w - lw - pad, area.h };
    if (s->sel < 0) {
        s->plot = (SDL_Rect){ 0, 0, 0, 0 };
        char b[300];
        snprintf(b, sizeof b, "The spectra report (%s) has no matrix of layer %d or head %d.%d. Arrow keys select another head.",
                 a->d.src_where[VIZ_SRC_SPECTRA], a->layer, a->layer, a->head);
        viz_empty_state(u, plot, "Nothing for this head", b);
        return;
    }
    draw_plot(a, &a->d.spectra[s->sel], plot);
}

bool viz_spectra_event(viz_app *a, const SDL_Event *e) {
    viz_spectra_state *s = &a->sp;
    switch (e->type) {
    case SDL_KEYDOWN: {
        SDL_Keycode k = e->key.keysym.sym;
        if (k == SDLK_l) { s->xmode = s->logx ? 1 : 2; return true; }   /* flip what is shown, then stay */
        if ((k == SDLK_PAGEUP || k == SDLK_PAGEDOWN) && s->n_items) {
            int at = 0;
            for (int i = 0; i < s->n_items; i++) if (s->items[i] == s->sel) at = i;
            at = (at + (k == SDLK_PAGEDOWN ? 1 : s->n_items - 1)) % s->n_items;
            s->sel = s->items[at];
            remember(a);
            return true;
        }
        return false;
    }
    case SDL_MOUSEBUTTONDOWN: {
        if (e->button.button != SDL_BUTTON_LEFT || !viz_hit(s->list, e->button.x, e->button.y) || s->row_h <= 0) return false;
        int top = s->list.y + viz_px(&a->ui, 6) + a->ui.line_h[VIZ_FONT_SMALL] + viz_px(&a->ui, 6) / 2;
        int r = (e->button.y - top) / s->row_h + s->list_scroll;
        if (e->button.y >= top && r >= 0 && r < s->n_items) { s->sel = s->items[r]; remember(a); return true; }
        return false;
    }
    case SDL_MOUSEWHEEL:
        if (viz_hit(s->list, a->ui.mx, a->ui.my)) { s->list_scroll += e->wheel.y > 0 ? -3 : 3; return true; }
        return false;
    case SDL_MOUSEMOTION: return viz_hit(s->plot, e->motion.x, e->motion.y) || s->hover_bin >= 0;
    default: return false;
    }
}

void viz_spectra_free(viz_app *a) {
    free(a->sp.items);
    a->sp.items = NULL; a->sp.n_items = 0;
}
