/* view_maps.c — MAPS results: a relation x head table (one row per relation, one column per head
 * l*H+h, coloured by the static relation score, top heads marked), the selected relation as a
 * layers x heads grid, and the selected head's salient operations (token -> top mapped tokens).
 *
 * Each table row is a 1-pixel-high texture L*H texels wide, stretched to the row: one draw per
 * relation however many heads the model has.
 */
#include "viz_internal.h"
#include <stdlib.h>
#include <string.h>

static void range(const viz_relation *r, int N, double *lo, double *hi) {
    *lo = 0; *hi = 1;   /* hit rates live in [0, 1]; widen only when a report says otherwise */
    for (int i = 0; i < N; i++) {
        if (isnan(r->scores[i])) continue;
        if (r->scores[i] < *lo) *lo = r->scores[i];
        if (r->scores[i] > *hi) *hi = r->scores[i];
    }
}

static void build_strips(viz_app *a) {
    viz_maps_state *m = &a->mp;
    int N = a->d.L * a->d.H;
    if (m->strips && m->n_strips == a->d.n_relations) return;
    viz_maps_free(a);
    if (N > 16384) return;
    m->strips = hs_xcalloc((size_t)(a->d.n_relations ? a->d.n_relations : 1), sizeof *m->strips);
    m->n_strips = a->d.n_relations;
    uint32_t *px = hs_xmalloc((size_t)N * sizeof *px);
    const uint32_t *lut = viz_cmap_argb(VIZ_CMAP_VIRIDIS);
    SDL_Color miss = a->ui.th.missing;
    for (int r = 0; r < a->d.n_relations; r++) {
        const viz_relation *rel = &a->d.relations[r];
        double lo, hi; range(rel, N, &lo, &hi);
        for (int i = 0; i < N; i++) {
            int ci = viz_cmap_index(rel->scores[i], lo, hi);
            px[i] = ci >= 0 ? lut[ci] : 0xFF000000u | (uint32_t)miss.r << 16 | (uint32_t)miss.g << 8 | miss.b;
        }
        m->strips[r] = SDL_CreateTexture(a->ui.r, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_STATIC, N, 1);
        if (m->strips[r]) SDL_UpdateTexture(m->strips[r], NULL, px, N * 4);
    }
    free(px);
}

static int rank_of(const viz_relation *r, int flat) {
    for (int i = 0; i < r->n_top; i++) if (r->top[i] == flat) return i + 1;
    return 0;
}

void viz_maps_draw(viz_app *a, SDL_Rect area) {
    viz_ui *u = &a->ui;
    viz_maps_state *m = &a->mp;
    if (!a->d.has[VIZ_SRC_MAPS]) {
        m->table = m->ops = (SDL_Rect){ 0, 0, 0, 0 };
        viz_empty_state(u, area, "No MAPS report loaded",
                        "MAPS scores how strongly each head's OV circuit implements a relation (copying, next number, country -> capital, ...). "
                        "Run 'headscope analyze maps --model MODEL --relations datasets/relations --out maps.json' and open it with "
                        "'headscope view RUN.db --report maps.json'.");
        return;
    }
    build_strips(a);
    int N = a->d.L * a->d.H, H = a->d.H, pad = viz_px(u, 8), sh = u->line_h[VIZ_FONT_SMALL], lh = u->line_h[VIZ_FONT_NORMAL];
    if (m->rel < 0 && a->d.n_relations) {   /* first view: the first relation that has scores */
        m->rel = 0;
        for (int r = a->d.n_relations - 1; r >= 0; r--)
            for (int i = 0; i < N; i++) if (!isnan(a->d.relations[r].scores[i])) { m->rel = r; break; }
    }
    if (m->rel >= a->d.n_relations) m->rel = a->d.n_relations - 1;
    if (m->rel < 0) m->rel = 0;
    int flat_sel = a->layer * H + a->head;
    m->hover_rel = m->hover_head = -1;

    /* ---- relation x head table */
    int table_h = area.h * 52 / 100, need = viz_px(u, 12) + 2 * sh + viz_px(u, 8) + (a->d.n_relations + 1) * (lh + viz_px(u, 4));
    if (need < table_h) table_h = need > area.h / 4 ? need : area.h / 4;   /* few relations: give the rest to the panels below */
    m->table = (SDL_Rect){ area.x, area.y, area.w, table_h };
    SDL_Rect c = viz_panel(u, m->table, "RELATIONS × HEADS  ·  static score (top-k hit rate), top heads underlined  ·  PgUp/PgDn");
    m->row_h = lh + viz_px(u, 4);
    int name_w = viz_px(u, 150), num_w = viz_px(u, 90), top_w = viz_px(u, 170);
    m->strip_x = c.x + name_w + num_w;
    m->strip_w = c.w - name_w - num_w - top_w - pad;
    if (m->strip_w < N && m->strip_w < 40) m->strip_w = 40;
    int head_row = sh + viz_px(u, 4);
    int rows = (c.h - head_row) / m->row_h;
    if (m->scroll > a->d.n_relations - rows) m->scroll = a->d.n_relations - rows;
    if (m->scroll < 0) m->scroll = 0;
    viz_text(u, VIZ_FONT_SMALL, c.x, c.y, u->th.dim, VIZ_LEFT, 0, "relation");
    viz_text(u, VIZ_FONT_SMALL, c.x + name_w, c.y, u->th.dim, VIZ_LEFT, 0, "k · pairs");
    double cw = (double)m->strip_w / N;
    for (int l = 0; l < a->d.L; l++) {   /* layer labels over the strip */
        int x = m->strip_x + (int)(l * H * cw);
        if (H * cw >= viz_px(u, 24) || l == 0) viz_textf(u, VIZ_FONT_SMALL, x + 1, c.y, u->th.dim, VIZ_LEFT, 0, "L%d", l);
    }
    viz_text(u, VIZ_FONT_SMALL, m->strip_x + m->strip_w + pad, c.y, u->th.dim, VIZ_LEFT, 0, "top heads");
    int y0 = c.y + head_row;
    for (int r = 0; r < rows && m->scroll + r < a->d.n_relations; r++) {
        int ri = m->scroll + r, y = y0 + r * m->row_h;
        const viz_relation *rel = &a->d.relations[ri];
        SDL_Rect rr = { c.x, y, c.w, m->row_h };
        if (ri == m->rel) viz_fill(u, rr, u->th.panel_hi);
        viz_text(u, VIZ_FONT_NORMAL, c.x + viz_px(u, 2), y + viz_px(u, 2), ri == m->rel ? u->th.text : u->th.dim, VIZ_LEFT, name_w - viz_px(u, 6), rel->name);
        viz_textf(u, VIZ_FONT_SMALL, c.x + name_w, y + viz_px(u, 3), u->th.dim, VIZ_LEFT, num_w, "%d · %d", rel->k, rel->n_pairs);
        SDL_Rect st = { m->strip_x, y + viz_px(u, 2), m->strip_w, m->row_h - viz_px(u, 5) };
        if (m->strips && m->strips[ri]) SDL_RenderCopy(u->r, m->strips[ri], NULL, &st);
        bool any = false;
        for (int i = 0; i < N && !any; i++) any = !isnan(rel->scores[i]);
        if (!any) viz_text(u, VIZ_FONT_SMALL, st.x + viz_px(u, 6), y + viz_px(u, 3), u->th.dim, VIZ_LEFT, st.w, "no scores: no pair of this relation survives the model's vocabulary");
        for (int t = 0; t < rel->n_top; t++) {   /* underline the top heads */
            int x = m->strip_x + (int)(rel->top[t] * cw), w = (int)cw > 2 ? (int)cw - 1 : 2;
            viz_fill(u, (SDL_Rect){ x, st.y + st.h, w, viz_px(u, 2) }, u->th.select);
        }
        char top[200]; size_t k = 0; top[0] = 0;
        for (int t = 0; t < rel->n_top && t < 6 && k < sizeof top - 16; t++)
            k += (size_t)snprintf(top + k, sizeof top - k, "%s%d.%d", t ? " " : "", rel->top[t] / H, rel->top[t] % H);
        viz_text(u, VIZ_FONT_SMALL, m->strip_x + m->strip_w + pad, y + viz_px(u, 3), u->th.text, VIZ_LEFT, top_w, top);
        if (u->my >= st.y && u->my < st.y + st.h && u->mx >= st.x && u->mx < st.x + st.w) {
            m->hover_rel = ri; m->hover_head = (int)((u->mx - st.x) / cw);
            if (m->hover_head >= N) m->hover_head = N - 1;
        }
    }
    if (cw >= 3)   /* layer separators */
        for (int l = 1; l < a->d.L; l++) viz_vline(u, m->strip_x + (int)(l * H * cw) - 1, y0, y0 + rows * m->row_h, u->th.panel);
    int xs = m->strip_x + (int)((flat_sel + 0.5) * cw);
    viz_fill(u, (SDL_Rect){ xs - 1, y0 - viz_px(u, 3), 2, viz_px(u, 3) }, u->th.select);
    viz_fill(u, (SDL_Rect){ m->strip_x + (int)(flat_sel * cw), y0 + (m->rel - m->scroll) * m->row_h + viz_px(u, 2), (int)cw > 2 ? (int)cw : 2, m->row_h - viz_px(u, 5) },
             viz_rgba(255, 255, 255, 70));
    if (m->hover_rel >= 0) {
        const viz_relation *rel = &a->d.relations[m->hover_rel];
        char tip[300], s1[32], s2[32];
        viz_fmt_num(s1, sizeof s1, rel->scores[m->hover_head]); viz_fmt_num(s2, sizeof s2, rel->supp[m->hover_head]);
        int rk = rank_of(rel, m->hover_head);
        snprintf(tip, sizeof tip, "%s · head %d.%d\nscore %s  ·  suppression %s%s", rel->name, m->hover_head / H, m->hover_head % H, s1, s2,
                 rk ? "\n(a top head)" : "");
        viz_tooltip(u, u->mx, u->my, tip);
    }
    if (a->d.n_relations == 0) viz_text(u, VIZ_FONT_NORMAL, c.x, y0, u->th.dim, VIZ_LEFT, c.w, "the report holds no relation");

    /* ---- bottom: the selected relation over layers x heads, and the head's salient operations */
    int by = area.y + table_h + pad, bhh = area.h - table_h - pad;
    int gw = area.w * 38 / 100;
    SDL_Rect gp = { area.x, by, gw, bhh };
    m->ops = (SDL_Rect){ area.x + gw + pad, by, area.w - gw - pad, bhh };
    if (a->d.n_relations > 0) {
        const viz_relation *rel = &a->d.relations[m->rel];
        char t[200], s1[32], s2[32];
        viz_fmt_num(s1, sizeof s1, rel->scores[flat_sel]); viz_fmt_num(s2, sizeof s2, rel->supp[flat_sel]);
        snprintf(t, sizeof t, "%s  ·  head %d.%d: score %s, suppression %s", rel->name, a->layer, a->head, s1, s2);
        SDL_Rect g = viz_panel(u, gp, t);
        double lo, hi; range(rel, N, &lo, &hi);
        int cell = (g.w - viz_px(u, 70)) / H, ch = (g.h - sh) / a->d.L;
        if (ch < cell) cell = ch;
        if (cell > viz_px(u, 48)) cell = viz_px(u, 48);
        if (cell < 1) cell = 1;
        const SDL_Color *lut = viz_cmap_lut(VIZ_CMAP_VIRIDIS);
        int gx = g.x + viz_px(u, 28), gy = g.y + sh;
        for (int l = 0; l < a->d.L; l++) {
            if (cell >= sh) viz_textf(u, VIZ_FONT_SMALL, gx - viz_px(u, 4), gy + l * cell + (cell - sh) / 2, u->th.dim, VIZ_RIGHT, 0, "L%d", l);
            for (int h = 0; h < H; h++) {
                int ci = viz_cmap_index(rel->scores[l * H + h], lo, hi);
                viz_fill(u, (SDL_Rect){ gx + h * cell, gy + l * cell, cell - (cell > 6), cell - (cell > 6) }, ci >= 0 ? lut[ci] : u->th.missing);
                if (rank_of(rel, l * H + h)) viz_outline(u, (SDL_Rect){ gx + h * cell, gy + l * cell, cell - (cell > 6), cell - (cell > 6) }, u->th.select, cell > 10 ? 2 : 1);
            }
        }
        viz_outline(u, (SDL_Rect){ gx + a->head * cell - 2, gy + a->layer * cell - 2, cell + 3, cell + 3 }, u->th.text, 1);
        viz_legend(u, (SDL_Rect){ gx + H * cell + viz_px(u, 10), gy, viz_px(u, 10), a->d.L * cell > viz_px(u, 60) ? a->d.L * cell : viz_px(u, 60) }, VIZ_CMAP_VIRIDIS, lo, hi, true, NULL);
    }
    char t[96]; snprintf(t, sizeof t, "SALIENT OPERATIONS OF HEAD %d.%d  (token → top mapped tokens)", a->layer, a->head);
    SDL_Rect o = viz_panel(u, m->ops, t);
    int n = a->d.n_salient ? a->d.n_salient[flat_sel] : 0;
    if (n == 0) viz_text(u, VIZ_FONT_NORMAL, o.x, o.y, u->th.dim, VIZ_LEFT, o.w, "the report lists no salient operation for this head");
    int tw = o.w * 28 / 100;
    for (int i = 0; i < n && (i + 1) * lh <= o.h; i++) {
        const viz_salient_op *op = &a->d.salient[flat_sel][i];
        int y = o.y + i * lh;
        viz_text(u, VIZ_FONT_NORMAL, o.x + tw - viz_px(u, 22), y, u->th.text, VIZ_RIGHT, tw - viz_px(u, 24), op->token);
        viz_text(u, VIZ_FONT_NORMAL, o.x + tw - viz_px(u, 10), y, u->th.dim, VIZ_CENTER, 0, "→");
        int x = o.x + tw;
        for (int k = 0; k < op->n_mapped && x < o.x + o.w - viz_px(u, 30); k++) {
            int w = viz_text(u, VIZ_FONT_NORMAL, x, y, k == 0 ? u->th.accent : u->th.text, VIZ_LEFT, o.x + o.w - x, op->mapped[k]);
            x += w + viz_px(u, 14);
        }
    }
}

bool viz_maps_event(viz_app *a, const SDL_Event *e) {
    viz_maps_state *m = &a->mp;
    int nr = a->d.n_relations;
    switch (e->type) {
    case SDL_KEYDOWN:
        if (nr && e->key.keysym.sym == SDLK_PAGEUP) { m->rel = (m->rel + nr - 1) % nr; return true; }
        if (nr && e->key.keysym.sym == SDLK_PAGEDOWN) { m->rel = (m->rel + 1) % nr; return true; }
        return false;
    case SDL_MOUSEBUTTONDOWN:
        if (e->button.button != SDL_BUTTON_LEFT) return false;
        if (m->hover_rel >= 0 && m->hover_head >= 0) {
            m->rel = m->hover_rel;
            viz_app_select(a, m->hover_head / a->d.H, m->hover_head % a->d.H);
            if (e->button.clicks >= 2) a->view = VIZ_VIEW_HEAD;
            return true;
        }
        if (viz_hit(m->table, e->button.x, e->button.y) && m->row_h > 0) {
            int top = m->table.y + viz_px(&a->ui, 6) + a->ui.line_h[VIZ_FONT_SMALL] + viz_px(&a->ui, 3) + a->ui.line_h[VIZ_FONT_SMALL] + viz_px(&a->ui, 4);
            int r = (e->button.y - top) / m->row_h + m->scroll;
            if (e->button.y >= top && r >= 0 && r < nr) { m->rel = r; return true; }
        }
        return false;
    case SDL_MOUSEWHEEL:
        if (viz_hit(m->table, a->ui.mx, a->ui.my)) { m->scroll += e->wheel.y > 0 ? -2 : 2; return true; }
        return false;
    case SDL_MOUSEMOTION: return viz_hit(m->table, e->motion.x, e->motion.y) || m->hover_rel >= 0;
    default: return false;
    }
}

void viz_maps_free(viz_app *a) {
    viz_maps_state *m = &a->mp;
    for (int i = 0; i < m->n_strips; i++) if (m->strips && m->strips[i]) SDL_DestroyTexture(m->strips[i]);
    free(m->strips);
    m->strips = NULL; m->n_strips = 0;
}
