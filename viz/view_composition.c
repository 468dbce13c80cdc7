/* view_composition.c — the composition graph: heads as nodes in columns by layer, the strongest
 * Q-, K- and V-composition edges (sender in an earlier layer -> receiver) coloured by type and as
 * thick as their score, a threshold slider and type toggles.
 *
 * Edges come from the report's full matrix, sorted by score once at load, so the threshold is a
 * prefix of that list; at most k_max_drawn edges are drawn, all in one geometry batch. The default
 * threshold is the weakest edge the pass itself reported (its z-score cut), so the first view shows
 * what the analysis called significant.
 */
#include "viz_internal.h"
#include <stdlib.h>
#include <string.h>

enum { k_max_drawn = 4000 };

static int type_idx(char t) { return t == 'Q' ? 0 : t == 'K' ? 1 : 2; }

/* The weakest edge the pass reported as significant, raised so that at most max(24, heads)
 * edges show at first (a trained model's z > 3 list is a hairball); +/- and the slider go lower. */
static double default_threshold(const viz_data *d) {
    double t = NAN;
    for (int i = 0; i < d->n_edges; i++) if (!isnan(d->edges[i].z) && (isnan(t) || d->edges[i].score < t)) t = d->edges[i].score;
    int cap = d->L * d->H > 24 ? d->L * d->H : 24;
    if (d->n_edges > cap && (isnan(t) || d->edges[cap - 1].score > t)) t = d->edges[cap - 1].score;
    if (isnan(t) && d->n_edges) t = d->edges[d->n_edges - 1].score;
    return isnan(t) ? 0 : t;
}

static void node_pos(const viz_app *a, int flat, float *x, float *y) { *x = a->cp.nx[flat]; *y = a->cp.ny[flat]; }

void viz_comp_draw(viz_app *a, SDL_Rect area) {
    viz_ui *u = &a->ui;
    viz_comp_state *c = &a->cp;
    const viz_data *d = &a->d;
    if (!d->has[VIZ_SRC_COMPOSITION]) {
        c->graph = c->side = c->slider = (SDL_Rect){ 0, 0, 0, 0 };
        viz_empty_state(u, area, "No composition report loaded",
                        "The composition graph shows how heads read what earlier heads wrote (Q-, K- and V-composition, Elhage et al. 2021). "
                        "Run 'headscope analyze composition --model MODEL --out comp.json' and open it with "
                        "'headscope view RUN.db --report comp.json'.");
        return;
    }
    int L = d->L, H = d->H, N = L * H, pad = viz_px(u, 8), sh = u->line_h[VIZ_FONT_SMALL], lh = u->line_h[VIZ_FONT_NORMAL];
    if (isnan(c->threshold)) c->threshold = default_threshold(d);
    if (!c->nx) { c->nx = hs_xmalloc((size_t)N * sizeof *c->nx); c->ny = hs_xmalloc((size_t)N * sizeof *c->ny); }
    int sw = area.w * 24 / 100;
    if (sw > viz_px(u, 260)) sw = viz_px(u, 260);
    c->side = (SDL_Rect){ area.x, area.y, sw, area.h };
    c->graph = (SDL_Rect){ area.x + sw + pad, area.y, area.w - sw - pad, area.h };

    /* ---- side panel: types, threshold, the selected head's edges */
    SDL_Rect s = viz_panel(u, c->side, "EDGES  (q k v: types · +/-: threshold)");
    static const char *const tname[3] = { "Q-composition", "K-composition", "V-composition" };
    for (int t = 0; t < 3; t++) {
        int y = s.y + t * lh;
        SDL_Rect box = { s.x, y + viz_px(u, 3), lh - viz_px(u, 6), lh - viz_px(u, 6) };
        if (c->show[t]) viz_fill(u, box, u->th.edge[t]); else viz_outline(u, box, u->th.edge[t], 2);
        viz_text(u, VIZ_FONT_NORMAL, s.x + lh, y, c->show[t] ? u->th.text : u->th.dim, VIZ_LEFT, s.w - lh, tname[t]);
    }
    int y = s.y + 3 * lh + pad;
    char num[32]; viz_fmt_num(num, sizeof num, c->threshold);
    viz_textf(u, VIZ_FONT_NORMAL, s.x, y, u->th.text, VIZ_LEFT, s.w, "score ≥ %s", num);
    y += lh + viz_px(u, 4);
    double vmax = d->edge_max > 0 ? d->edge_max : 1;
    c->slider = (SDL_Rect){ s.x + viz_px(u, 4), y, s.w - viz_px(u, 8), viz_px(u, 14) };
    viz_fill(u, (SDL_Rect){ c->slider.x, c->slider.y + c->slider.h / 2 - 2, c->slider.w, 4 }, u->th.border);
    int hx = c->slider.x + (int)(c->slider.w * (c->threshold / vmax < 0 ? 0 : c->threshold / vmax > 1 ? 1 : c->threshold / vmax));
    viz_fill(u, (SDL_Rect){ c->slider.x, c->slider.y + c->slider.h / 2 - 2, hx - c->slider.x, 4 }, u->th.accent);
    viz_fill(u, (SDL_Rect){ hx - viz_px(u, 4), c->slider.y, viz_px(u, 8), c->slider.h }, u->th.text);
    y += c->slider.h + viz_px(u, 4);
    int n_above = 0;
    for (int i = 0; i < d->n_edges && d->edges[i].score >= c->threshold; i++) if (c->show[type_idx(d->edges[i].type)]) n_above++;
    viz_textf(u, VIZ_FONT_SMALL, s.x, y, u->th.dim, VIZ_LEFT, s.w, "%d edges%s  ·  max %s", n_above, n_above > k_max_drawn ? " (strongest drawn)" : "",
              (viz_fmt_num(num, sizeof num, d->edge_max), num));
    y += sh + pad;
    int flat_sel = a->layer * H + a->head;
    viz_textf(u, VIZ_FONT_SMALL, s.x, y, u->th.accent, VIZ_LEFT, s.w, "HEAD %d.%d: STRONGEST EDGES", a->layer, a->head);
    y += sh + viz_px(u, 2);
    int listed = 0;
    for (int i = 0; i < d->n_edges && y + sh <= s.y + s.h && listed < 24; i++) {
        const viz_edge *e = &d->edges[i];
        if (e->from != flat_sel && e->to != flat_sel) continue;
        char z[32] = "";
        if (!isnan(e->z)) snprintf(z, sizeof z, "  z %.1f", e->z);
        viz_fmt_num(num, sizeof num, e->score);
        bool out = e->from == flat_sel;
        int other = out ? e->to : e->from;
        viz_textf(u, VIZ_FONT_SMALL, s.x, y, e->score >= c->threshold ? u->th.edge[type_idx(e->type)] : u->th.dim, VIZ_LEFT, s.w,
                  "%s %c %s %d.%d  %s%s", out ? "→" : "←", e->type, out ? "to" : "from", other / H, other % H, num, z);
        y += sh; listed++;
    }

    /* ---- graph */
    SDL_Rect g = c->graph;
    viz_fill(u, g, u->th.panel);
    int mx = viz_px(u, 46), mt = sh + viz_px(u, 20), mb = viz_px(u, 20);
    float colgap = L > 1 ? (float)(g.w - 2 * mx) / (L - 1) : 0, rowgap = H > 1 ? (float)(g.h - mt - mb) / (H - 1) : 0;
    float rmax = (L > 1 ? colgap : g.w) * 0.22f, rr = (H > 1 ? rowgap : g.h) * 0.32f;
    if (rr > rmax) rr = rmax;
    if (rr > 14 * u->s) rr = 14 * u->s;
    if (rr < 2) rr = 2;
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            c->nx[l * H + h] = g.x + (L > 1 ? mx + l * colgap : g.w / 2.0f);
            c->ny[l * H + h] = g.y + (H > 1 ? mt + h * rowgap : g.h / 2.0f);
        }
    int lstep = 1;
    while (lstep * colgap < viz_px(u, 26) && L > 1) lstep++;
    for (int l = 0; l < L; l += lstep) viz_textf(u, VIZ_FONT_SMALL, (int)c->nx[l * H], g.y + viz_px(u, 4), u->th.dim, VIZ_CENTER, 0, "L%d", l);
    if (rowgap >= sh || H == 1)
        for (int h = 0; h < H; h++) viz_textf(u, VIZ_FONT_SMALL, g.x + viz_px(u, 6), (int)c->ny[h] - sh / 2, u->th.dim, VIZ_LEFT, 0, "%d", h);
    /* hover */
    c->hover = -1;
    if (viz_hit(g, u->mx, u->my)) {
        float best = (rr + 6 * u->s) * (rr + 6 * u->s);
        for (int i = 0; i < N; i++) {
            float dx = c->nx[i] - u->mx, dy = c->ny[i] - u->my;
            if (dx * dx + dy * dy < best) { best = dx * dx + dy * dy; c->hover = i; }
        }
    }
    int focus = c->hover >= 0 ? c->hover : -1;
    /* edges: weakest first so the strongest end on top */
    int last = 0;
    while (last < d->n_edges && d->edges[last].score >= c->threshold) last++;
    int drawn = 0, lim = last;
    {
        int cnt = 0;   /* find the prefix that holds k_max_drawn visible edges */
        for (lim = 0; lim < last && cnt < k_max_drawn; lim++) if (c->show[type_idx(d->edges[lim].type)]) cnt++;
    }
    double span = d->edge_max - c->threshold;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = lim - 1; i >= 0; i--) {
            const viz_edge *e = &d->edges[i];
            int t = type_idx(e->type);
            if (!c->show[t]) continue;
            bool hi = focus >= 0 && (e->from == focus || e->to == focus);
            if ((pass == 1) != hi) continue;
            float x0, y0, x1, y1;
            node_pos(a, e->from, &x0, &y0);
            node_pos(a, e->to, &x1, &y1);
            x0 += rr; x1 -= rr;
            y1 += (t - 1) * rr * 0.6f;   /* Q enters high, K middle, V low */
            double f = span > 0 ? (e->score - c->threshold) / span : 1, rel = d->edge_max > 0 ? e->score / d->edge_max : 1;
            SDL_Color col = u->th.edge[t];
            col.a = (uint8_t)(focus >= 0 && !hi ? 40 : 110 + 140 * f);
            viz_line(u, x0, y0, x1, y1, (float)(1.0 + 6.0 * rel) * u->s, col);   /* width ∝ score, opacity ∝ rank above the threshold */
            drawn++;
        }
        viz_lines_flush(u);
    }
    c->n_drawn = drawn;
    /* type and score on the strongest edges, skipping labels that would overlap placed ones */
    SDL_Rect placed[12];
    for (int i = 0, labelled = 0; i < lim && labelled < 12; i++) {
        const viz_edge *e = &d->edges[i];
        int t = type_idx(e->type);
        if (!c->show[t] || (focus >= 0 && e->from != focus && e->to != focus)) continue;
        float x0, y0, x1, y1;
        node_pos(a, e->from, &x0, &y0);
        node_pos(a, e->to, &x1, &y1);
        y1 += (t - 1) * rr * 0.6f;
        float fx = 0.35f + 0.1f * (labelled % 3);   /* stagger labels of edges that share a sender */
        int lx = (int)(x0 + (x1 - x0) * fx), ly = (int)(y0 + (y1 - y0) * fx);
        char b[48]; viz_fmt_num(num, sizeof num, e->score); snprintf(b, sizeof b, "%c %s", e->type, num);
        int tw, th; viz_text_size(u, VIZ_FONT_SMALL, b, &tw, &th);
        SDL_Rect box = { lx - tw / 2 - 3, ly - th / 2 - 1, tw + 6, th + 2 };
        bool clash = false;
        for (int k = 0; k < labelled; k++) if (SDL_HasIntersection(&box, &placed[k])) clash = true;
        if (clash) continue;
        placed[labelled] = box;
        viz_fill(u, box, viz_rgba(u->th.panel.r, u->th.panel.g, u->th.panel.b, 220));
        viz_text(u, VIZ_FONT_SMALL, lx, ly - th / 2, u->th.edge[t], VIZ_CENTER, 0, b);
        labelled++;
    }
    /* nodes */
    for (int i = 0; i < N; i++) {
        SDL_Color col = i == focus ? u->th.accent : u->th.text;
        if (i == flat_sel) viz_disc(u, (int)c->nx[i], (int)c->ny[i], (int)rr + viz_px(u, 4), u->th.select);
        viz_disc(u, (int)c->nx[i], (int)c->ny[i], (int)rr, col);
    }
    if (rr >= 9 * u->s)
        for (int i = 0; i < N; i++) viz_textf(u, VIZ_FONT_SMALL, (int)c->nx[i], (int)c->ny[i] - sh / 2, viz_rgba(20, 20, 20, 255), VIZ_CENTER, 0, "%d.%d", i / H, i % H);
    if (focus >= 0) {
        char tip[1200]; size_t k = 0; int shown = 0;
        k += (size_t)snprintf(tip + k, sizeof tip - k, "head %d.%d", focus / H, focus % H);
        for (int i = 0; i < d->n_edges && shown < 10 && k < sizeof tip - 100; i++) {
            const viz_edge *e = &d->edges[i];
            if (e->from != focus && e->to != focus) continue;
            char sc[32]; viz_fmt_num(sc, sizeof sc, e->score);
            int other = e->from == focus ? e->to : e->from;
            k += (size_t)snprintf(tip + k, sizeof tip - k, "\n%s %c %d.%d  score %s", e->from == focus ? "→" : "←", e->type, other / H, other % H, sc);
            if (!isnan(e->z)) k += (size_t)snprintf(tip + k, sizeof tip - k, "  z %.1f", e->z);
            shown++;
        }
        viz_tooltip(u, u->mx, u->my, tip);
    }
    (void)last;
}

static void set_threshold_from_x(viz_app *a, int x) {
    viz_comp_state *c = &a->cp;
    double f = c->slider.w > 0 ? (double)(x - c->slider.x) / c->slider.w : 0;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    c->threshold = f * (a->d.edge_max > 0 ? a->d.edge_max : 1);
}

bool viz_comp_event(viz_app *a, const SDL_Event *e) {
    viz_comp_state *c = &a->cp;
    if (!a->d.has[VIZ_SRC_COMPOSITION]) return false;
    double step = (a->d.edge_max > 0 ? a->d.edge_max : 1) * 0.02;
    switch (e->type) {
    case SDL_KEYDOWN:
        switch (e->key.keysym.sym) {
        case SDLK_q: c->show[0] = !c->show[0]; return true;
        case SDLK_k: c->show[1] = !c->show[1]; return true;
        case SDLK_v: c->show[2] = !c->show[2]; return true;
        case SDLK_PLUS: case SDLK_EQUALS: case SDLK_KP_PLUS: c->threshold += step; if (c->threshold > a->d.edge_max) c->threshold = a->d.edge_max; return true;
        case SDLK_MINUS: case SDLK_KP_MINUS: c->threshold -= step; if (c->threshold < 0) c->threshold = 0; return true;
        case SDLK_0: c->threshold = default_threshold(&a->d); return true;
        /* columns are layers here: right/left walk layers, up/down walk heads */
        case SDLK_RIGHT: viz_app_select(a, a->layer + 1, a->head); return true;
        case SDLK_LEFT: viz_app_select(a, a->layer - 1, a->head); return true;
        case SDLK_UP: viz_app_select(a, a->layer, a->head - 1); return true;
        case SDLK_DOWN: viz_app_select(a, a->layer, a->head + 1); return true;
        default: return false;
        }
    case SDL_MOUSEBUTTONDOWN: {
        if (e->button.button != SDL_BUTTON_LEFT) return false;
        SDL_Rect hit = { c->slider.x - 6, c->slider.y - 6, c->slider.w + 12, c->slider.h + 12 };
        if (viz_hit(hit, e->button.x, e->button.y)) { c->drag_slider = true; set_threshold_from_x(a, e->button.x); return true; }
        int lh = a->ui.line_h[VIZ_FONT_NORMAL];
        SDL_Rect boxes = { c->side.x, c->side.y + viz_px(&a->ui, 6) + a->ui.line_h[VIZ_FONT_SMALL] + viz_px(&a->ui, 3), c->side.w, 3 * lh };
        if (viz_hit(boxes, e->button.x, e->button.y)) { int t = (e->button.y - boxes.y) / lh; if (t >= 0 && t < 3) c->show[t] = !c->show[t]; return true; }
        if (c->hover >= 0) {
            viz_app_select(a, c->hover / a->d.H, c->hover % a->d.H);
            if (e->button.clicks >= 2) a->view = VIZ_VIEW_HEAD;
            return true;
        }
        return false;
    }
    case SDL_MOUSEMOTION:
        if (c->drag_slider) { set_threshold_from_x(a, e->motion.x); return true; }
        return viz_hit(c->graph, e->motion.x, e->motion.y) || c->hover >= 0;
    case SDL_MOUSEBUTTONUP:
        if (c->drag_slider) { c->drag_slider = false; return true; }
        return false;
    case SDL_MOUSEWHEEL:
        if (viz_hit(c->side, a->ui.mx, a->ui.my) || viz_hit(c->graph, a->ui.mx, a->ui.my)) {
            c->threshold += e->wheel.y > 0 ? step : -step;
            if (c->threshold < 0) c->threshold = 0;
            if (c->threshold > a->d.edge_max) c->threshold = a->d.edge_max;
            return true;
        }
        return false;
    default: return false;
    }
}

void viz_comp_free(viz_app *a) {
    free(a->cp.nx); free(a->cp.ny);
    a->cp.nx = a->cp.ny = NULL;
}
