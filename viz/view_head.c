/* view_head.c — one head on one prompt: the attention pattern as a heatmap (query rows x key
 * columns) with zoom and pan, hover readout, a BertViz-style token strip whose lines from the
 * active query to its keys are as thick as the attention, and the head's statistics.
 *
 * How T = 4096 stays smooth: the pattern is never drawn cell by cell. On load it is quantised to
 * colour indices and reduced into a max-pooled mip pyramid (2x2 max per level), so a sharp
 * one-cell peak such as the previous-token diagonal survives any zoom-out. When the view changes,
 * each screen pixel takes the max over the <= 3x3 texels of the finest level at least as coarse
 * as one pixel, written into one streaming texture the size of the heatmap: cost ~ pixels, not
 * T^2. Hover, tooltips and the token strip only redraw overlays on the unchanged texture.
 */
#include "viz_internal.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const k_scale_name[3] = { "linear", "sqrt", "log10" };

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }

static void unload(viz_head_state *hv) {
    store_tensor_clear(&hv->pat);
    free(hv->pyr);
    hv->pyr = NULL; hv->n_levels = 0; hv->pyr_scale = -1;
    hv->prompt = hv->layer = hv->head = -1;
    hv->R = hv->C = hv->row0 = 0;
}

static void ensure_pattern(viz_app *a) {
    viz_head_state *hv = &a->hv;
    if (a->d.n_prompts == 0) { unload(hv); hv->status = HS_ENOTFOUND; return; }
    int p = a->d.prompts[a->prompt].index;
    if (hv->prompt == p && hv->layer == a->layer && hv->head == a->head) return;
    int oldR = hv->R, oldC = hv->C;
    unload(hv);
    hv->prompt = p; hv->layer = a->layer; hv->head = a->head;
    hv->status = viz_data_pattern(&a->d, p, a->layer, a->head, &hv->pat, &hv->row0);
    if (hv->status != HS_OK) return;
    hv->R = hv->pat.shape[0]; hv->C = hv->pat.shape[1];
    if (hv->R != oldR || hv->C != oldC) { hv->zoom = 1; hv->cx = hv->C / 2.0; hv->cy = hv->R / 2.0; }   /* same shape: keep the view to compare heads */
}

static inline int quant(float v, int mode) {
    if (!(v > 0)) return 0;   /* NaN, 0 and negatives */
    if (v > 1) v = 1;
    float t = mode == 0 ? v : mode == 1 ? sqrtf(v) : (log10f(v < 1e-4f ? 1e-4f : v) + 4.0f) / 4.0f;
    return (int)(t * 255.0f + 0.5f);
}

/* Colour indices of the pattern and its max-pooled levels. */
static void build_pyramid(viz_head_state *hv) {
    int w = hv->C, h = hv->R, n = 0;
    size_t total = 0;
    while (n < 24) {
        hv->lvl_w[n] = w; hv->lvl_h[n] = h; hv->lvl_off[n] = total;
        total += (size_t)w * h;
        n++;
        if (w == 1 && h == 1) break;
        w = (w + 1) / 2; h = (h + 1) / 2;
    }
    hv->n_levels = n;
    free(hv->pyr);
    hv->pyr = hs_xmalloc(total);
    uint8_t *l0 = hv->pyr;
    const float *src = hv->pat.data;
    size_t cells = (size_t)hv->R * hv->C;
    for (size_t i = 0; i < cells; i++) l0[i] = (uint8_t)quant(src[i], hv->scale_mode);
    for (int k = 1; k < n; k++) {
        const uint8_t *up = hv->pyr + hv->lvl_off[k - 1];
        uint8_t *dn = hv->pyr + hv->lvl_off[k];
        int uw = hv->lvl_w[k - 1], uh = hv->lvl_h[k - 1], dw = hv->lvl_w[k], dh = hv->lvl_h[k];
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                int x0 = 2 * x, y0 = 2 * y, x1 = x0 + 1 < uw ? x0 + 1 : x0, y1 = y0 + 1 < uh ? y0 + 1 : y0;
                uint8_t m = up[(size_t)y0 * uw + x0];
                if (up[(size_t)y0 * uw + x1] > m) m = up[(size_t)y0 * uw + x1];
                if (up[(size_t)y1 * uw + x0] > m) m = up[(size_t)y1 * uw + x0];
                if (up[(size_t)y1 * uw + x1] > m) m = up[(size_t)y1 * uw + x1];
                dn[(size_t)y * dw + x] = m;
            }
    }
    hv->pyr_scale = hv->scale_mode;
}

static void grow(int **p, int need) { *p = hs_xrealloc(*p, (size_t)need * sizeof **p); }

/* Fill the streaming texture with the visible window [x0, x0+sx) x [y0, y0+sy). */
static void render_texture(viz_app *a, int tw, int th) {
    viz_head_state *hv = &a->hv;
    double t0 = now_ms();
    if (!hv->tex || hv->tex_w != tw || hv->tex_h != th) {
        if (hv->tex) SDL_DestroyTexture(hv->tex);
        hv->tex = SDL_CreateTexture(a->ui.r, SDL_PIXELFORMAT_ARGB8888, SDL_TEXTUREACCESS_STREAMING, tw, th);
        hv->tex_w = tw; hv->tex_h = th;
        if (!hv->tex) return;
    }
    if (tw > hv->cap_x) { grow(&hv->xa, tw); grow(&hv->xb, tw); grow(&hv->xm, tw); hv->cap_x = tw; }
    if (th > hv->cap_y) { grow(&hv->ya, th); grow(&hv->yb, th); grow(&hv->ym, th); hv->cap_y = th; }
    double kx = hv->sx / tw, ky = hv->sy / th, kmin = kx < ky ? kx : ky;
    int lv = 0;
    while (lv + 1 < hv->n_levels && (double)(1 << (lv + 1)) <= kmin) lv++;
    double sc = 1.0 / (1 << lv);
    int lw = hv->lvl_w[lv], lh = hv->lvl_h[lv];
    for (int px = 0; px < tw; px++) {
        double c0 = hv->x0 + px * kx, c1 = hv->x0 + (px + 1) * kx;
        int ta = (int)floor(c0 * sc), tb = (int)ceil(c1 * sc) - 1;
        if (tb < ta) tb = ta;
        hv->xa[px] = ta < 0 ? 0 : ta >= lw ? lw - 1 : ta;
        hv->xb[px] = tb < 0 ? 0 : tb >= lw ? lw - 1 : tb;
        hv->xm[px] = (int)floor(c0);                   /* first key column in the pixel */
    }
    for (int py = 0; py < th; py++) {
        double r0 = hv->y0 + py * ky, r1 = hv->y0 + (py + 1) * ky;
        int ta = (int)floor(r0 * sc), tb = (int)ceil(r1 * sc) - 1;
        if (tb < ta) tb = ta;
        hv->ya[py] = ta < 0 ? 0 : ta >= lh ? lh - 1 : ta;
        hv->yb[py] = tb < 0 ? 0 : tb >= lh ? lh - 1 : tb;
        int last = (int)ceil(r1) - 1;
        if (last < (int)floor(r0)) last = (int)floor(r0);
        hv->ym[py] = hv->row0 + last;                  /* last query position in the pixel */
    }
    void *pixels; int pitch;
    if (SDL_LockTexture(hv->tex, NULL, &pixels, &pitch) != 0) return;
    const uint32_t *lut = viz_cmap_argb(VIZ_CMAP_INFERNO);
    SDL_Color mk = a->ui.th.masked;
    uint32_t masked = 0xFF000000u | (uint32_t)mk.r << 16 | (uint32_t)mk.g << 8 | mk.b;
    const uint8_t *L = hv->pyr + hv->lvl_off[lv];
    for (int py = 0; py < th; py++) {
        uint32_t *row = (uint32_t *)((uint8_t *)pixels + (size_t)py * pitch);
        int ya = hv->ya[py], yb = hv->yb[py], qmax = hv->ym[py];
        for (int px = 0; px < tw; px++) {
            if (hv->xm[px] > qmax) { row[px] = masked; continue; }   /* keys after every query in the pixel: causal mask */
            int xa = hv->xa[px], xb = hv->xb[px];
            uint8_t m = 0;
            for (int y = ya; y <= yb; y++) {
                const uint8_t *r = L + (size_t)y * lw;
                for (int x = xa; x <= xb; x++) if (r[x] > m) m = r[x];
            }
            row[px] = lut[m];
        }
    }
    SDL_UnlockTexture(hv->tex);
    hv->last_render_ms = now_ms() - t0;
    hv->rebuilds++;
}

bool viz_head_cell_center(const viz_app *a, int query, int key, int *x, int *y) {
    const viz_head_state *hv = &a->hv;
    if (hv->status != HS_OK || hv->sx <= 0 || hv->sy <= 0) return false;
    double fx = (key + 0.5 - hv->x0) / hv->sx, fy = (query - hv->row0 + 0.5 - hv->y0) / hv->sy;
    if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1) return false;
    *x = hv->hm.x + (int)(fx * hv->hm.w);
    *y = hv->hm.y + (int)(fy * hv->hm.h);
    return true;
}

static float weight(const viz_head_state *hv, int q, int k) {
    int r = q - hv->row0;
    if (r < 0 || r >= hv->R || k < 0 || k >= hv->C) return NAN;
    return hv->pat.data[(size_t)r * hv->C + k];
}

static const char *tok_at(const viz_app *a, int pos) {
    return pos >= 0 && pos < a->n_tok ? a->tok[pos] : "?";
}

static bool ci_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (n == 0) return false;
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && ((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]) == ((needle[i] >= 'A' && needle[i] <= 'Z') ? needle[i] + 32 : needle[i])) i++;
        if (i == n) return true;
    }
    return false;
}

static void update_matches(viz_app *a) {
    viz_head_state *hv = &a->hv;
    hv->n_matches = 0; hv->match_i = -1;
    if (!viz_app_tokens(a) || !hv->search[0]) return;
    hv->matches = hs_xrealloc(hv->matches, (size_t)(a->n_tok ? a->n_tok : 1) * sizeof *hv->matches);
    char needle[3 * sizeof hv->search];   /* tokens show spaces as ␣: search them the same way */
    size_t k = 0;
    for (const char *p = hv->search; *p; p++) {
        if (*p == ' ') { memcpy(needle + k, "\xE2\x90\xA3", 3); k += 3; } else needle[k++] = *p;
    }
    needle[k] = 0;
    for (int i = 0; i < a->n_tok; i++) if (ci_contains(a->tok[i], needle)) hv->matches[hv->n_matches++] = i;
}

static void jump_match(viz_app *a, int dir) {
    viz_head_state *hv = &a->hv;
    if (hv->n_matches == 0) return;
    hv->match_i = hv->match_i < 0 ? (dir > 0 ? 0 : hv->n_matches - 1) : (hv->match_i + dir + hv->n_matches) % hv->n_matches;
    int q = hv->matches[hv->match_i];
    hv->sel_query = q;
    hv->cy = q - hv->row0 + 0.5;
    hv->cx = q + 0.5;
}

static void draw_stats(viz_app *a, SDL_Rect r) {
    viz_ui *u = &a->ui;
    viz_head_state *hv = &a->hv;
    char title[64]; snprintf(title, sizeof title, "HEAD %d.%d  ·  THIS PROMPT  /  RUN", a->layer, a->head);
    SDL_Rect c = viz_panel(u, r, title);
    int p = a->d.n_prompts ? a->d.prompts[a->prompt].index : -1;
    if (p >= 0 && a->pst_prompt != p) {
        free(a->pst); a->pst = NULL; a->n_pst = 0;
        a->pst_prompt = p;
        viz_data_prompt_stats(&a->d, p, &a->pst, &a->n_pst);
    }
    int lh = u->line_h[VIZ_FONT_SMALL] + viz_px(u, 1), rows = c.h / lh, flat = a->layer * a->d.H + a->head;
    int n = a->d.n_metrics;
    if (hv->stats_scroll > n - rows) hv->stats_scroll = n - rows;
    if (hv->stats_scroll < 0) hv->stats_scroll = 0;
    int col1 = c.x + c.w * 62 / 100, col2 = c.x + c.w;
    if (n == 0) viz_text(u, VIZ_FONT_SMALL, c.x, c.y, u->th.dim, VIZ_LEFT, c.w, "no statistics or reports for this run");
    for (int i = hv->stats_scroll, row = 0; i < n && row < rows; i++, row++) {
        const viz_metric *m = &a->d.metrics[i];
        int y = c.y + row * lh;
        char v1[32] = "", v2[32];
        if (m->src == VIZ_SRC_STATS) {
            double pv = NAN;
            for (int k = 0; k < a->n_pst; k++)
                if (a->pst[k].layer == a->layer && a->pst[k].head == a->head && strcmp(a->pst[k].metric, m->name + 6) == 0) pv = a->pst[k].value;
            viz_fmt_num(v1, sizeof v1, pv);
        }
        viz_fmt_num(v2, sizeof v2, m->v[flat]);
        viz_text(u, VIZ_FONT_SMALL, c.x, y, i == a->metric ? u->th.accent : u->th.dim, VIZ_LEFT, col1 - c.x - viz_px(u, 50), m->name);
        viz_text(u, VIZ_FONT_SMALL, col1, y, u->th.text, VIZ_RIGHT, 0, v1);
        viz_text(u, VIZ_FONT_SMALL, col2, y, u->th.text, VIZ_RIGHT, 0, v2);
    }
}

/* The BertViz-style strip: queries on the left, keys on the right, lines ∝ attention. */
static void draw_strip(viz_app *a, SDL_Rect r, int aq) {
    viz_ui *u = &a->ui;
    viz_head_state *hv = &a->hv;
    char title[96];
    snprintf(title, sizeof title, "TOKENS  ·  query %d → keys", aq);
    SDL_Rect c = viz_panel(u, r, title);
    int rh = u->line_h[VIZ_FONT_SMALL] + viz_px(u, 2);
    int T = hv->C;
    int head_h = rh;   /* a line for "↑ mass above" */
    int n = (c.h - 2 * head_h) / rh;
    if (n < 1) n = 1;
    if (n > T) n = T;
    int first = aq - n / 2;
    if (first > T - n) first = T - n;
    if (first < 0) first = 0;
    hv->strip_first = first; hv->strip_n = n; hv->strip_row_h = rh;
    int colw = c.w * 36 / 100, ytop = c.y + head_h;
    hv->strip_q = (SDL_Rect){ c.x, ytop, colw, n * rh };
    hv->strip_k = (SDL_Rect){ c.x + c.w - colw, ytop, colw, n * rh };
    double above = 0, below = 0;
    bool have_row = aq - hv->row0 >= 0 && aq - hv->row0 < hv->R;
    for (int k = 0; have_row && k < T; k++) {
        float w = weight(hv, aq, k);
        if (!(w > 0)) continue;
        if (k < first) above += w; else if (k >= first + n) below += w;
    }
    SDL_Color ac = u->th.accent;
    for (int i = 0; i < n; i++) {
        int pos = first + i, y = ytop + i * rh;
        float w = have_row ? weight(hv, aq, pos) : NAN;
        if (w > 0.003f) {   /* key highlight ∝ weight */
            SDL_Color hc = ac; hc.a = (uint8_t)(30 + 190 * (w > 1 ? 1 : w));
            viz_fill(u, (SDL_Rect){ hv->strip_k.x, y, colw, rh - 1 }, hc);
        }
        bool is_q = pos == aq, is_sel = pos == hv->sel_query;
        bool match = false;
        for (int m = 0; m < hv->n_matches; m++) if (hv->matches[m] == pos) { match = true; break; }
        if (is_q) viz_fill(u, (SDL_Rect){ hv->strip_q.x, y, colw, rh - 1 }, u->th.panel_hi);
        SDL_Color qc = is_sel ? u->th.select : match ? u->th.warn : pos - hv->row0 >= 0 && pos - hv->row0 < hv->R ? u->th.text : u->th.dim;
        viz_textf(u, VIZ_FONT_SMALL, hv->strip_q.x + colw - viz_px(u, 4), y + viz_px(u, 1), qc, VIZ_RIGHT, colw - viz_px(u, 4), "%s", tok_at(a, pos));
        viz_textf(u, VIZ_FONT_SMALL, hv->strip_q.x, y + viz_px(u, 1), u->th.dim, VIZ_LEFT, 0, "%d", pos);
        viz_text(u, VIZ_FONT_SMALL, hv->strip_k.x + viz_px(u, 4), y + viz_px(u, 1), match ? u->th.warn : u->th.text, VIZ_LEFT, colw - viz_px(u, 8), tok_at(a, pos));
    }
    if (!have_row) {
        viz_text(u, VIZ_FONT_SMALL, c.x + c.w / 2, ytop + n * rh / 2, u->th.dim, VIZ_CENTER, c.w - 2 * colw, "query row not stored");
        return;
    }
    float xq = (float)(hv->strip_q.x + colw + viz_px(u, 3)), xk = (float)(hv->strip_k.x - viz_px(u, 3));
    float yq = (float)(ytop + (aq - first) * rh + rh / 2);
    for (int i = 0; i < n; i++) {
        float w = weight(hv, aq, first + i);
        if (!(w > 0.005f)) continue;
        if (w > 1) w = 1;
        SDL_Color lc = ac; lc.a = (uint8_t)(70 + 185 * w);
        viz_line(u, xq, yq, xk, (float)(ytop + i * rh + rh / 2), 0.6f + 7.0f * w * u->s, lc);
    }
    char buf[96];
    if (above > 0.0005) {
        snprintf(buf, sizeof buf, "↑ %.1f%% to keys 0–%d", 100 * above, first - 1);
        int tw, th; viz_text_size(u, VIZ_FONT_SMALL, buf, &tw, &th);
        int tx0 = hv->strip_k.x + colw - tw;   /* the line ends where the label starts */
        viz_line(u, xq, yq, (float)(tx0 - viz_px(u, 4)), (float)(c.y + rh / 2), 0.6f + 7.0f * (float)(above > 1 ? 1 : above) * u->s,
                 viz_rgba(ac.r, ac.g, ac.b, (uint8_t)(70 + 185 * (above > 1 ? 1 : above))));
        viz_text(u, VIZ_FONT_SMALL, hv->strip_k.x + colw, c.y, u->th.accent, VIZ_RIGHT, c.w, buf);
    }
    if (below > 0.0005) {
        snprintf(buf, sizeof buf, "↓ %.1f%% to keys %d–%d", 100 * below, first + n, T - 1);
        viz_text(u, VIZ_FONT_SMALL, hv->strip_k.x + colw, ytop + n * rh, u->th.accent, VIZ_RIGHT, c.w, buf);
    }
}

void viz_head_draw(viz_app *a, SDL_Rect area) {
    viz_ui *u = &a->ui;
    viz_head_state *hv = &a->hv;
    int pad = viz_px(u, 8), sh = u->line_h[VIZ_FONT_SMALL], bh = u->line_h[VIZ_FONT_BIG];
    int side_w = area.w * 34 / 100;
    if (side_w > viz_px(u, 360)) side_w = viz_px(u, 360);
    SDL_Rect side = { area.x + area.w - side_w, area.y, side_w, area.h };
    hv->strip = (SDL_Rect){ side.x, side.y, side.w, side.h * 58 / 100 };
    hv->stats = (SDL_Rect){ side.x, side.y + hv->strip.h + pad, side.w, side.h - hv->strip.h - pad };
    SDL_Rect left = { area.x, area.y, area.w - side_w - pad, area.h };
    ensure_pattern(a);
    bool have_tok = viz_app_tokens(a);
    hv->hover_q = hv->hover_k = -1;

    /* header */
    char hdr[600];
    const char *text = a->d.n_prompts ? a->d.prompts[a->prompt].text : "";
    char *shown = viz_token_display(text ? text : "", false);
    snprintf(hdr, sizeof hdr, "head %d.%d  ·  prompt %d: %s", a->layer, a->head, a->d.n_prompts ? a->d.prompts[a->prompt].index : 0, shown);
    free(shown);
    int lg_w = viz_px(u, 120);
    viz_text(u, VIZ_FONT_BIG, left.x, left.y, u->th.text, VIZ_LEFT, left.w, hdr);
    draw_stats(a, hv->stats);

    if (a->d.n_prompts == 0) {
        viz_empty_state(u, left, "No prompts captured yet",
                        "This run has no committed prompt. Capture some (headscope capture MODEL --prompts FILE --db RUN.db --hooks hook_pattern); a capture in progress shows up after pressing r.");
        viz_panel(u, hv->strip, "TOKENS");
        return;
    }
    if (hv->status != HS_OK) {
        char body[1300];
        if (hv->status == HS_ENOTFOUND)
            snprintf(body, sizeof body, "Run %lld did not store blocks.%d.attn.hook_pattern for head %d.%d on prompt %d. "
                     "Capture with --hooks hook_pattern and --layers/--heads that include this head to see its pattern. "
                     "Its statistics are on the right; other heads: arrow keys.", (long long)a->d.run.id, a->layer, a->layer, a->head, hv->prompt);
        else snprintf(body, sizeof body, "%s", a->d.err);
        viz_empty_state(u, (SDL_Rect){ left.x, left.y + bh, left.w, left.h - bh }, hv->status == HS_ENOTFOUND ? "No pattern stored for this head" : "Cannot read this pattern", body);
        viz_panel(u, hv->strip, "TOKENS");
        return;
    }
    if (hv->pyr_scale != hv->scale_mode) build_pyramid(hv);

    /* geometry: square cells fitted into the area, then the zoom window */
    int R = hv->R, C = hv->C;
    int axis_w = viz_px(u, 76), top_m = bh + pad + sh + viz_px(u, 4);
    SDL_Rect avail = { left.x + axis_w, left.y + top_m, left.w - axis_w, left.h - top_m - 2 * sh - 3 * pad };
    double fit = (double)avail.w / C < (double)avail.h / R ? (double)avail.w / C : (double)avail.h / R;
    int rw = (int)(C * fit), rh = (int)(R * fit);
    int minh = viz_px(u, 48) < avail.h ? viz_px(u, 48) : avail.h;
    if (rh < minh) rh = minh;
    if (rw < 1) rw = 1;
    if (rh < 1) rh = 1;
    hv->hm = (SDL_Rect){ avail.x, avail.y, rw, rh };
    double zmax = C / 4.0 > 1 ? C / 4.0 : 1;
    if (hv->zoom > zmax) hv->zoom = zmax;
    if (hv->zoom < 1) hv->zoom = 1;
    hv->sx = C / hv->zoom; hv->sy = R / hv->zoom;
    hv->x0 = hv->cx - hv->sx / 2; hv->y0 = hv->cy - hv->sy / 2;
    if (hv->x0 > C - hv->sx) hv->x0 = C - hv->sx;
    if (hv->x0 < 0) hv->x0 = 0;
    if (hv->y0 > R - hv->sy) hv->y0 = R - hv->sy;
    if (hv->y0 < 0) hv->y0 = 0;
    hv->cx = hv->x0 + hv->sx / 2; hv->cy = hv->y0 + hv->sy / 2;

    uint64_t key[8];
    double dk[4] = { hv->x0, hv->y0, hv->sx, hv->sy };
    key[0] = (uint64_t)hv->prompt << 32 | (uint32_t)(hv->layer * 65536 + hv->head);
    key[1] = (uint64_t)hv->scale_mode << 48 | (uint64_t)rw << 24 | (uint64_t)rh;
    memcpy(&key[2], dk, sizeof dk);
    key[6] = (uint64_t)(uintptr_t)hv->pyr; key[7] = 0;
    if (!hv->tex || memcmp(key, hv->tex_key, sizeof key) != 0) { render_texture(a, rw, rh); memcpy(hv->tex_key, key, sizeof key); }
    if (hv->tex) SDL_RenderCopy(u->r, hv->tex, NULL, &hv->hm);
    viz_outline(u, (SDL_Rect){ hv->hm.x - 1, hv->hm.y - 1, hv->hm.w + 2, hv->hm.h + 2 }, u->th.border, 1);

    /* legend and scale */
    char lbl[64]; snprintf(lbl, sizeof lbl, "weight, %s scale (g)", k_scale_name[hv->scale_mode]);
    SDL_Rect lg = { left.x + left.w - lg_w - viz_px(u, 50), hv->hm.y - sh / 2 - viz_px(u, 4) - viz_px(u, 5), lg_w, viz_px(u, 10) };
    hv->legend = lg;
    viz_legend(u, lg, VIZ_CMAP_INFERNO, hv->scale_mode == 2 ? 1e-4 : 0, 1, false, lbl);
    int lbl_w, lbl_h, lo_w;
    viz_text_size(u, VIZ_FONT_SMALL, lbl, &lbl_w, &lbl_h);
    viz_text_size(u, VIZ_FONT_SMALL, hv->scale_mode == 2 ? "1e-04" : "0", &lo_w, &lbl_h);
    int info_w = lg.x - lbl_w - lo_w - viz_px(u, 40) - hv->hm.x;   /* what is left of the legend line */

    /* axes: query rows on the left (tokens when rows are tall enough), key positions on top */
    double cwp = hv->hm.w / hv->sx, chp = hv->hm.h / hv->sy;
    char buf[160];
    snprintf(buf, sizeof buf, "keys %d–%d of %d  ·  queries %d–%d  ·  zoom %.3gx", (int)hv->x0, (int)ceil(hv->x0 + hv->sx) - 1, C,
             hv->row0 + (int)hv->y0, hv->row0 + (int)ceil(hv->y0 + hv->sy) - 1, hv->zoom);
    if (info_w > viz_px(u, 40)) viz_text(u, VIZ_FONT_SMALL, hv->hm.x, hv->hm.y - sh - viz_px(u, 4), u->th.dim, VIZ_LEFT, info_w, buf);
    if (chp >= sh) {
        for (int r = (int)hv->y0; r < R && r < hv->y0 + hv->sy; r++) {
            int y = hv->hm.y + (int)((r - hv->y0) * chp + (chp - sh) / 2);
            if (y < hv->hm.y - 2 || y + sh > hv->hm.y + hv->hm.h + 2) continue;
            viz_text(u, VIZ_FONT_SMALL, hv->hm.x - viz_px(u, 5), y, u->th.dim, VIZ_RIGHT, axis_w - viz_px(u, 8), have_tok ? tok_at(a, hv->row0 + r) : "");
        }
    } else {
        int step = 1;
        for (int dec = 1, done = 0; !done; dec *= 10)   /* 1, 2, 5, 10, 20, 50, ... rows between labels */
            for (int m = 1; m <= 5 && !done; m += m == 1 ? 1 : 3)
                if (m * dec * chp >= sh * 2.5) { step = m * dec; done = 1; }
        for (int r = ((int)hv->y0 / step) * step; r < hv->y0 + hv->sy; r += step) {
            if (r < hv->y0) continue;
            int y = hv->hm.y + (int)((r - hv->y0 + 0.5) * chp);
            viz_hline(u, hv->hm.x - viz_px(u, 4), hv->hm.x, y, u->th.dim);
            viz_textf(u, VIZ_FONT_SMALL, hv->hm.x - viz_px(u, 6), y - sh / 2, u->th.dim, VIZ_RIGHT, 0, "%d", hv->row0 + r);
        }
    }
    /* key positions under the heatmap */
    {
        int step = 1;
        for (int dec = 1, done = 0; !done; dec *= 10)
            for (int m = 1; m <= 5 && !done; m += m == 1 ? 1 : 3)
                if (m * dec * cwp >= viz_px(u, 36)) { step = m * dec; done = 1; }
        for (int k = ((int)hv->x0 / step) * step; k < hv->x0 + hv->sx; k += step) {
            if (k < hv->x0) continue;
            int x = hv->hm.x + (int)((k - hv->x0 + 0.5) * cwp);
            viz_vline(u, x, hv->hm.y + hv->hm.h, hv->hm.y + hv->hm.h + viz_px(u, 3), u->th.dim);
            viz_textf(u, VIZ_FONT_SMALL, x, hv->hm.y + hv->hm.h + viz_px(u, 3), u->th.dim, VIZ_CENTER, 0, "%d", k);
        }
    }
    /* search matches: ticks on both axes */
    for (int m = 0; m < hv->n_matches; m++) {
        int x, y, q = hv->matches[m];
        double fy = (q - hv->row0 + 0.5 - hv->y0) / hv->sy, fx = (q + 0.5 - hv->x0) / hv->sx;
        if (fy >= 0 && fy < 1) { y = hv->hm.y + (int)(fy * hv->hm.h); viz_fill(u, (SDL_Rect){ hv->hm.x - viz_px(u, 4), y - 1, viz_px(u, 4), 3 }, u->th.warn); }
        if (fx >= 0 && fx < 1) { x = hv->hm.x + (int)(fx * hv->hm.w); viz_fill(u, (SDL_Rect){ x - 1, hv->hm.y + hv->hm.h + 1, 3, viz_px(u, 4) }, u->th.warn); }
    }
    /* pinned query */
    if (hv->sel_query >= 0) {
        double fy = (hv->sel_query - hv->row0 - hv->y0) / hv->sy;
        if (fy >= 0 && fy < 1) {
            int y0 = hv->hm.y + (int)(fy * hv->hm.h), hh = (int)chp > 1 ? (int)chp : 1;
            viz_fill(u, (SDL_Rect){ hv->hm.x - viz_px(u, 3), y0, viz_px(u, 3), hh }, u->th.select);
            viz_fill(u, (SDL_Rect){ hv->hm.x + hv->hm.w, y0, viz_px(u, 3), hh }, u->th.select);
        }
    }
    /* hover */
    if (viz_hit(hv->hm, u->mx, u->my)) {
        int col = (int)(hv->x0 + (u->mx - hv->hm.x) * hv->sx / hv->hm.w), row = (int)(hv->y0 + (u->my - hv->hm.y) * hv->sy / hv->hm.h);
        if (col >= 0 && col < C && row >= 0 && row < R) {
            hv->hover_q = hv->row0 + row; hv->hover_k = col;
            int x0 = hv->hm.x + (int)((col - hv->x0) * cwp), y0 = hv->hm.y + (int)((row - hv->y0) * chp);
            SDL_Color g = viz_rgba(255, 255, 255, 60);
            viz_fill(u, (SDL_Rect){ hv->hm.x, y0, hv->hm.w, (int)chp > 1 ? (int)chp : 1 }, g);
            viz_fill(u, (SDL_Rect){ x0, hv->hm.y, (int)cwp > 1 ? (int)cwp : 1, hv->hm.h }, g);
            if (cwp >= 3) viz_outline(u, (SDL_Rect){ x0, y0, (int)ceil(cwp), (int)ceil(chp) }, viz_rgba(255, 255, 255, 255), 1);
            char tip[700], wv[32];
            float w = weight(hv, hv->hover_q, col);
            viz_fmt_num(wv, sizeof wv, w);
            snprintf(tip, sizeof tip, "weight %s%s\nquery %d  %s\nkey   %d  %s", wv, col > hv->hover_q ? "  (masked: key after query)" : "",
                     hv->hover_q, have_tok ? tok_at(a, hv->hover_q) : "", col, have_tok ? tok_at(a, col) : "");
            viz_tooltip(u, u->mx, u->my, tip);
        }
    }
    /* the strip shows the hovered query, else the pinned one, else the last */
    int aq = hv->hover_q >= 0 ? hv->hover_q : hv->sel_query >= 0 ? hv->sel_query : hv->row0 + R - 1;
    if (viz_hit(hv->strip_q, u->mx, u->my) && hv->strip_row_h > 0) {
        int pos = hv->strip_first + (u->my - hv->strip_q.y) / hv->strip_row_h;
        if (pos >= 0 && pos < C) aq = pos;
    }
    if (have_tok) draw_strip(a, hv->strip, aq);
    else viz_empty_state(u, hv->strip, "No tokens", "The prompt's tokens could not be read.");

    /* search box */
    if (hv->searching || hv->search[0]) {
        SDL_Rect sb = { hv->hm.x, left.y + left.h - sh - viz_px(u, 8), hv->hm.w, sh + viz_px(u, 8) };
        if (hv->searching) {
            viz_fill(u, sb, u->th.panel_hi);
            viz_outline(u, sb, u->th.accent, 1);
        }
        char sbuf[300];
        snprintf(sbuf, sizeof sbuf, "/%s%s   %d match%s%s", hv->search, hv->searching ? "▏" : "", hv->n_matches, hv->n_matches == 1 ? "" : "es",
                 hv->searching ? "  ·  Enter: next  ·  Esc: close" : "  ·  n / N: next / previous");
        viz_text(u, VIZ_FONT_SMALL, sb.x + viz_px(u, 6), sb.y + viz_px(u, 4), u->th.text, VIZ_LEFT, sb.w - viz_px(u, 12), sbuf);
    }
}

static void zoom_at(viz_head_state *hv, double factor, int mx, int my) {
    if (hv->status != HS_OK || hv->hm.w <= 0) return;
    double fx = viz_hit(hv->hm, mx, my) ? (double)(mx - hv->hm.x) / hv->hm.w : 0.5;
    double fy = viz_hit(hv->hm, mx, my) ? (double)(my - hv->hm.y) / hv->hm.h : 0.5;
    double cellx = hv->x0 + fx * hv->sx, celly = hv->y0 + fy * hv->sy;   /* keep this cell under the mouse */
    double zmax = hv->C / 4.0 > 1 ? hv->C / 4.0 : 1;
    double z = hv->zoom * factor;
    if (z < 1) z = 1;
    if (z > zmax) z = zmax;
    hv->zoom = z;
    double sx = hv->C / z, sy = hv->R / z;
    hv->cx = cellx - fx * sx + sx / 2;
    hv->cy = celly - fy * sy + sy / 2;
}

static void utf8_pop(char *s) {
    size_t n = strlen(s);
    while (n > 0 && ((unsigned char)s[n - 1] & 0xC0) == 0x80) n--;
    if (n > 0) n--;
    s[n] = 0;
}

bool viz_head_event(viz_app *a, const SDL_Event *e) {
    viz_head_state *hv = &a->hv;
    viz_ui *u = &a->ui;
    if (hv->searching) {
        if (e->type == SDL_TEXTINPUT) {
            if (hv->skip_slash && strcmp(e->text.text, "/") == 0) { hv->skip_slash = false; return false; }
            hv->skip_slash = false;
            size_t n = strlen(hv->search), k = strlen(e->text.text);
            if (n + k < sizeof hv->search) { memcpy(hv->search + n, e->text.text, k + 1); update_matches(a); }
            return true;
        }
        if (e->type == SDL_KEYDOWN) {
            hv->skip_slash = false;
            switch (e->key.keysym.sym) {
            case SDLK_ESCAPE: hv->searching = false; hv->search[0] = 0; hv->n_matches = 0; return true;
            case SDLK_BACKSPACE: utf8_pop(hv->search); update_matches(a); return true;
            case SDLK_RETURN: case SDLK_KP_ENTER: jump_match(a, (e->key.keysym.mod & KMOD_SHIFT) ? -1 : 1); if (!hv->n_matches) hv->searching = false; return true;
            case SDLK_TAB: hv->searching = false; return false;
            default: return e->key.keysym.sym < 0x80 && e->key.keysym.sym >= 0x20;   /* printable keys come as TEXTINPUT */
            }
        }
        if (e->type != SDL_MOUSEMOTION && e->type != SDL_MOUSEWHEEL && e->type != SDL_MOUSEBUTTONDOWN && e->type != SDL_MOUSEBUTTONUP) return false;
    }
    switch (e->type) {
    case SDL_KEYDOWN:
        switch (e->key.keysym.sym) {
        case SDLK_SLASH: if (e->key.keysym.mod & KMOD_SHIFT) return false;
            hv->searching = true; hv->skip_slash = true; hv->search[0] = 0; hv->n_matches = 0; return true;
        case SDLK_PLUS: case SDLK_EQUALS: case SDLK_KP_PLUS: zoom_at(hv, 1.5, -1, -1); return true;
        case SDLK_MINUS: case SDLK_KP_MINUS: zoom_at(hv, 1 / 1.5, -1, -1); return true;
        case SDLK_0: case SDLK_KP_0: hv->zoom = 1; hv->cx = hv->C / 2.0; hv->cy = hv->R / 2.0; return true;
        case SDLK_g: hv->scale_mode = (hv->scale_mode + 1) % 3; return true;
        case SDLK_n: jump_match(a, (e->key.keysym.mod & KMOD_SHIFT) ? -1 : 1); return true;
        case SDLK_ESCAPE: if (hv->search[0]) { hv->search[0] = 0; hv->n_matches = 0; return true; } return false;
        default: return false;
        }
    case SDL_MOUSEWHEEL: {
        if (viz_hit(hv->stats, u->mx, u->my)) { hv->stats_scroll += e->wheel.y > 0 ? -3 : 3; return true; }
        if (!viz_hit(hv->hm, u->mx, u->my)) return false;
        double f = e->wheel.preciseY != 0 ? pow(1.25, e->wheel.preciseY) : pow(1.25, e->wheel.y);
        zoom_at(hv, f, u->mx, u->my);
        return true;
    }
    case SDL_MOUSEBUTTONDOWN:
        if (e->button.button != SDL_BUTTON_LEFT) return false;
        if (viz_hit(hv->hm, e->button.x, e->button.y)) {
            hv->dragging = true; hv->drag_x = e->button.x; hv->drag_y = e->button.y; hv->drag_cx = hv->cx; hv->drag_cy = hv->cy;
            return true;
        }
        if (viz_hit(hv->strip_q, e->button.x, e->button.y) && hv->strip_row_h > 0) {
            hv->sel_query = hv->strip_first + (e->button.y - hv->strip_q.y) / hv->strip_row_h;
            return true;
        }
        return false;
    case SDL_MOUSEMOTION:
        if (hv->dragging && hv->hm.w > 0) {
            hv->cx = hv->drag_cx - (double)(e->motion.x - hv->drag_x) * hv->sx / hv->hm.w;
            hv->cy = hv->drag_cy - (double)(e->motion.y - hv->drag_y) * hv->sy / hv->hm.h;
            return true;
        }
        return viz_hit(a->main, e->motion.x, e->motion.y);
    case SDL_MOUSEBUTTONUP:
        if (e->button.button == SDL_BUTTON_LEFT && hv->dragging) {
            hv->dragging = false;
            if (abs(e->button.x - hv->drag_x) + abs(e->button.y - hv->drag_y) < 4 && hv->hm.h > 0) {   /* a click: pin this query */
                int row = (int)(hv->y0 + (e->button.y - hv->hm.y) * hv->sy / hv->hm.h);
                if (row >= 0 && row < hv->R) hv->sel_query = hv->sel_query == hv->row0 + row ? -1 : hv->row0 + row;
            }
            return true;
        }
        return false;
    default: return false;
    }
}

void viz_head_free(viz_app *a) {
    viz_head_state *hv = &a->hv;
    unload(hv);
    if (hv->tex) SDL_DestroyTexture(hv->tex);
    hv->tex = NULL;
    free(hv->matches); hv->matches = NULL; hv->n_matches = 0;
    free(hv->xa); free(hv->xb); free(hv->xm); free(hv->ya); free(hv->yb); free(hv->ym);
    hv->xa = hv->xb = hv->xm = hv->ya = hv->yb = hv->ym = NULL; hv->cap_x = hv->cap_y = 0;
}
