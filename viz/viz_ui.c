/* viz_ui.c — the viewer's drawing context: font discovery, a text-texture cache, primitives
 * (filled rects, batched thick lines, discs), and the small widgets the views share (legend,
 * tooltip, panel, empty state).
 *
 * Why a text cache: SDL_ttf rasterises a string into a surface and a texture each call (tens of
 * microseconds); a frame draws hundreds of labels, so strings are rendered once in white and
 * reused with a colour modulation until they go unused for a frame.
 * Why batched lines: SDL2 has no thick lines; each line is a quad, and all quads of a frame layer go
 * out in one SDL_RenderGeometry call (a composition graph draws thousands of edges).
 */
#include "viz_internal.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct viz_text_entry {
    uint64_t hash;
    char *s;              /* NULL = empty slot */
    int font, max_w;
    SDL_Texture *tex;     /* NULL for a string that renders to nothing */
    int w, h;
    uint64_t used;        /* frame of the last use */
};

static const char *const k_font_paths[] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",      /* Debian/Ubuntu fonts-dejavu-core */
    "/usr/share/fonts/TTF/DejaVuSans.ttf",                  /* Arch */
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",               /* Fedora */
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/opt/homebrew/share/fonts/DejaVuSans.ttf",
};

static const char *find_font(void) {
    struct stat st;
    const char *env = getenv("HEADSCOPE_FONT");
    if (env && *env) return stat(env, &st) == 0 ? env : NULL;
    for (size_t i = 0; i < sizeof k_font_paths / sizeof *k_font_paths; i++)
        if (stat(k_font_paths[i], &st) == 0) return k_font_paths[i];
    return NULL;
}

static viz_theme theme(bool light) {
    viz_theme t;
    if (light) {
        t.bg = viz_rgba(250, 250, 250, 255);   t.panel = viz_rgba(240, 241, 243, 255); t.panel_hi = viz_rgba(222, 226, 232, 255);
        t.border = viz_rgba(200, 203, 208, 255); t.text = viz_rgba(28, 30, 34, 255);  t.dim = viz_rgba(96, 100, 108, 255);
        t.accent = viz_rgba(0, 110, 200, 255);  t.select = viz_rgba(230, 40, 40, 255); t.missing = viz_rgba(215, 215, 215, 255);
        t.masked = viz_rgba(232, 232, 236, 255); t.warn = viz_rgba(170, 110, 0, 255); t.error = viz_rgba(190, 30, 30, 255);
        t.bar = viz_rgba(90, 130, 190, 255); t.spike = viz_rgba(220, 100, 30, 255); t.curve = viz_rgba(200, 30, 60, 255);
    } else {
        t.bg = viz_rgba(28, 29, 33, 255);      t.panel = viz_rgba(37, 39, 44, 255);    t.panel_hi = viz_rgba(52, 56, 64, 255);
        t.border = viz_rgba(64, 68, 76, 255);  t.text = viz_rgba(228, 230, 234, 255);  t.dim = viz_rgba(150, 155, 165, 255);
        t.accent = viz_rgba(90, 190, 250, 255); t.select = viz_rgba(255, 80, 80, 255); t.missing = viz_rgba(70, 72, 78, 255);
        t.masked = viz_rgba(44, 46, 52, 255);  t.warn = viz_rgba(250, 190, 60, 255);   t.error = viz_rgba(255, 110, 110, 255);
        t.bar = viz_rgba(100, 150, 220, 255);  t.spike = viz_rgba(250, 150, 60, 255);  t.curve = viz_rgba(255, 90, 120, 255);
    }
    t.edge[0] = viz_rgba(70, 140, 255, 255);   /* Q: blue */
    t.edge[1] = viz_rgba(255, 120, 40, 255);   /* K: orange */
    t.edge[2] = viz_rgba(60, 190, 90, 255);    /* V: green */
    return t;
}

static SDL_Texture *make_disc(SDL_Renderer *r, int R) {
    SDL_Surface *s = SDL_CreateRGBSurfaceWithFormat(0, 2 * R, 2 * R, 32, SDL_PIXELFORMAT_ARGB8888);
    if (!s) return NULL;
    uint32_t *px = s->pixels;
    for (int y = 0; y < 2 * R; y++)
        for (int x = 0; x < 2 * R; x++) {
            double d = hypot(x + 0.5 - R, y + 0.5 - R);
            double a = R - d + 0.5;   /* one pixel of coverage ramp: a cheap anti-aliased edge */
            a = a < 0 ? 0 : a > 1 ? 1 : a;
            px[y * (s->pitch / 4) + x] = (uint32_t)lround(a * 255) << 24 | 0xFFFFFFu;
        }
    SDL_Texture *t = SDL_CreateTextureFromSurface(r, s);
    SDL_FreeSurface(s);
    if (t) { SDL_SetTextureBlendMode(t, SDL_BLENDMODE_BLEND); SDL_SetTextureScaleMode(t, SDL_ScaleModeLinear); }
    return t;
}

hs_status viz_ui_init(viz_ui *u, SDL_Renderer *r, float scale, bool light) {
    memset(u, 0, sizeof *u);
    u->r = r;
    u->s = scale > 0.25f ? scale : 1.0f;
    u->th = theme(light);
    u->mx = u->my = -1;
    const char *path = find_font();
    if (!path) {
        const char *env = getenv("HEADSCOPE_FONT");
        if (env && *env)
            hs_log_error("view", "font %s (from HEADSCOPE_FONT) does not exist — point HEADSCOPE_FONT at a .ttf file or unset it", env);
        else
            hs_log_error("view", "font DejaVuSans.ttf not found (looked in /usr/share/fonts/truetype/dejavu and 5 other places) — "
                                 "install Debian's fonts-dejavu-core (scripts/install-deps.sh) or set HEADSCOPE_FONT=/path/to/font.ttf");
        return HS_EIO;
    }
    if (!TTF_WasInit() && TTF_Init() != 0) {
        hs_log_error("view", "SDL_ttf failed to start (%s) — check the SDL2_ttf installation", TTF_GetError());
        return HS_EIO;
    }
    static const float sizes[VIZ_FONT_COUNT] = { 11, 13, 16 };
    for (int i = 0; i < VIZ_FONT_COUNT; i++) {
        u->font[i] = TTF_OpenFont(path, (int)lroundf(sizes[i] * u->s));
        if (!u->font[i]) {
            hs_log_error("view", "cannot open the font %s (%s) — reinstall fonts-dejavu-core or set HEADSCOPE_FONT", path, TTF_GetError());
            viz_ui_free(u);
            return HS_EIO;
        }
        TTF_SetFontHinting(u->font[i], TTF_HINTING_LIGHT);
        u->line_h[i] = TTF_FontLineSkip(u->font[i]);
    }
    u->cache_cap = 4096;
    u->cache = hs_xcalloc((size_t)u->cache_cap, sizeof *u->cache);
    u->disc_r = 32;
    u->disc = make_disc(r, u->disc_r);
    return HS_OK;
}

static void entry_free(viz_text_entry *e) {
    if (e->tex) SDL_DestroyTexture(e->tex);
    free(e->s);
    memset(e, 0, sizeof *e);
}

void viz_ui_free(viz_ui *u) {
    if (u->cache) for (int i = 0; i < u->cache_cap; i++) if (u->cache[i].s) entry_free(&u->cache[i]);
    free(u->cache);
    for (int i = 0; i < VIZ_FONT_COUNT; i++) if (u->font[i]) TTF_CloseFont(u->font[i]);
    if (u->disc) SDL_DestroyTexture(u->disc);
    free(u->verts);
    memset(u, 0, sizeof *u);
}

static uint64_t hash_key(const char *s, int font, int max_w) {
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) { h ^= *p; h *= 1099511628211ull; }
    h ^= (uint64_t)font * 0x9E3779B97F4A7C15ull ^ (uint64_t)(unsigned)max_w * 0xC2B2AE3D27D4EB4Full;
    return h ? h : 1;
}

static void cache_insert_raw(viz_ui *u, const viz_text_entry *e) {
    int m = u->cache_cap - 1;
    for (int i = (int)(e->hash & (uint64_t)m);; i = (i + 1) & m)
        if (!u->cache[i].s) { u->cache[i] = *e; u->cache_n++; return; }
}

/* Drop entries not used in this frame; grow when the live set itself is large. */
static void cache_trim(viz_ui *u) {
    if (u->cache_n < u->cache_cap / 2) return;
    viz_text_entry *old = u->cache;
    int old_cap = u->cache_cap, live = 0;
    for (int i = 0; i < old_cap; i++) if (old[i].s && old[i].used == u->frame) live++;
    int cap = old_cap;
    while (live > cap / 2) cap *= 2;
    u->cache = hs_xcalloc((size_t)cap, sizeof *u->cache);
    u->cache_cap = cap; u->cache_n = 0;
    for (int i = 0; i < old_cap; i++) {
        if (!old[i].s) continue;
        if (old[i].used == u->frame) cache_insert_raw(u, &old[i]);
        else entry_free(&old[i]);
    }
    free(old);
}

/* Longest prefix of s (cut on a UTF-8 boundary) that fits max_w pixels with "…" appended. Heap. */
static char *ellipsize(TTF_Font *f, const char *s, int max_w) {
    size_t n = strlen(s);
    size_t *b = hs_xmalloc((n + 1) * sizeof *b);
    int nb = 0;
    for (size_t i = 0; i <= n; i++) if (i == n || ((unsigned char)s[i] & 0xC0) != 0x80) b[nb++] = i;
    char *buf = hs_xmalloc(n + 4);
    int lo = 0, hi = nb - 1;   /* binary search: width grows with the prefix */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2, w = 0, h = 0;
        memcpy(buf, s, b[mid]); memcpy(buf + b[mid], "\xE2\x80\xA6", 4);
        if (TTF_SizeUTF8(f, buf, &w, &h) == 0 && w <= max_w) lo = mid; else hi = mid - 1;
    }
    memcpy(buf, s, b[lo]); memcpy(buf + b[lo], "\xE2\x80\xA6", 4);
    free(b);
    return buf;
}

static viz_text_entry *text_get(viz_ui *u, int font, const char *s, int max_w) {
    HS_ASSERT(font >= 0 && font < VIZ_FONT_COUNT);
    if (max_w < 0) max_w = 0;
    uint64_t h = hash_key(s, font, max_w);
    int m = u->cache_cap - 1;
    int i = (int)(h & (uint64_t)m);
    for (;; i = (i + 1) & m) {
        viz_text_entry *e = &u->cache[i];
        if (!e->s) break;
        if (e->hash == h && e->font == font && e->max_w == max_w && strcmp(e->s, s) == 0) { e->used = u->frame; return e; }
    }
    if (u->cache_n + 1 > u->cache_cap * 3 / 4) {   /* full within one frame: grow (rare) */
        viz_text_entry *old = u->cache; int old_cap = u->cache_cap;
        u->cache_cap *= 2; u->cache = hs_xcalloc((size_t)u->cache_cap, sizeof *u->cache); u->cache_n = 0;
        for (int k = 0; k < old_cap; k++) if (old[k].s) cache_insert_raw(u, &old[k]);
        free(old);
        m = u->cache_cap - 1;
    }
    viz_text_entry e = { .hash = h, .s = hs_xstrdup(s), .font = font, .max_w = max_w, .used = u->frame };
    char *shown = NULL;
    if (max_w > 0) {
        int w = 0, hh = 0;
        if (TTF_SizeUTF8(u->font[font], s, &w, &hh) == 0 && w > max_w) shown = ellipsize(u->font[font], s, max_w);
    }
    const char *txt = shown ? shown : s;
    if (*txt) {
        SDL_Color white = { 255, 255, 255, 255 };
        SDL_Surface *surf = TTF_RenderUTF8_Blended(u->font[font], txt, white);
        if (surf) {
            e.tex = SDL_CreateTextureFromSurface(u->r, surf);
            e.w = surf->w; e.h = surf->h;
            SDL_FreeSurface(surf);
            if (e.tex) SDL_SetTextureBlendMode(e.tex, SDL_BLENDMODE_BLEND);
        }
    }
    if (!e.tex) { e.w = 0; e.h = u->line_h[font]; }
    free(shown);
    cache_insert_raw(u, &e);
    /* find it again: the slot index is needed for the caller's pointer */
    for (i = (int)(h & (uint64_t)m);; i = (i + 1) & m)
        if (u->cache[i].s && u->cache[i].hash == h && u->cache[i].font == font && u->cache[i].max_w == max_w && strcmp(u->cache[i].s, s) == 0)
            return &u->cache[i];
}

void viz_text_size(viz_ui *u, int font, const char *s, int *w, int *h) {
    viz_text_entry *e = text_get(u, font, s, 0);
    if (w) *w = e->w;
    if (h) *h = e->h ? e->h : u->line_h[font];
}

int viz_text(viz_ui *u, int font, int x, int y, SDL_Color c, int align, int max_w, const char *s) {
    if (!s || !*s) return 0;
    viz_text_entry *e = text_get(u, font, s, max_w);
    if (!e->tex) return 0;
    SDL_Rect dst = { x, y, e->w, e->h };
    if (align == VIZ_CENTER) dst.x -= e->w / 2;
    else if (align == VIZ_RIGHT) dst.x -= e->w;
    SDL_SetTextureColorMod(e->tex, c.r, c.g, c.b);
    SDL_SetTextureAlphaMod(e->tex, c.a);
    SDL_RenderCopy(u->r, e->tex, NULL, &dst);
    return e->w;
}

int viz_textf(viz_ui *u, int font, int x, int y, SDL_Color c, int align, int max_w, const char *fmt, ...) {
    char buf[1024];
    va_list ap; va_start(ap, fmt); vsnprintf(buf, sizeof buf, fmt, ap); va_end(ap);
    return viz_text(u, font, x, y, c, align, max_w, buf);
}

void viz_text_up(viz_ui *u, int font, int x, int y, SDL_Color c, int max_len, const char *s) {
    if (!s || !*s) return;
    viz_text_entry *e = text_get(u, font, s, max_len);
    if (!e->tex) return;
    /* rotate about the texture's centre, then place: the rotated box is h wide and w tall, with
     * the text's end at the top; (x, y) is the bottom-left of that box */
    SDL_Rect dst = { x + e->h / 2 - e->w / 2, y - e->w / 2 - e->h / 2, e->w, e->h };
    SDL_SetTextureColorMod(e->tex, c.r, c.g, c.b);
    SDL_SetTextureAlphaMod(e->tex, c.a);
    SDL_RenderCopyEx(u->r, e->tex, NULL, &dst, -90.0, NULL, SDL_FLIP_NONE);
}

void viz_fill(viz_ui *u, SDL_Rect r, SDL_Color c) {
    if (r.w <= 0 || r.h <= 0) return;
    SDL_SetRenderDrawColor(u->r, c.r, c.g, c.b, c.a);
    SDL_RenderFillRect(u->r, &r);
}

void viz_outline(viz_ui *u, SDL_Rect r, SDL_Color c, int t) {
    if (t < 1) t = 1;
    SDL_Rect e[4] = { { r.x, r.y, r.w, t }, { r.x, r.y + r.h - t, r.w, t }, { r.x, r.y, t, r.h }, { r.x + r.w - t, r.y, t, r.h } };
    SDL_SetRenderDrawColor(u->r, c.r, c.g, c.b, c.a);
    SDL_RenderFillRects(u->r, e, 4);
}

void viz_hline(viz_ui *u, int x0, int x1, int y, SDL_Color c) { viz_fill(u, (SDL_Rect){ x0, y, x1 - x0, 1 }, c); }
void viz_vline(viz_ui *u, int x, int y0, int y1, SDL_Color c) { viz_fill(u, (SDL_Rect){ x, y0, 1, y1 - y0 }, c); }

void viz_line(viz_ui *u, float x0, float y0, float x1, float y1, float width, SDL_Color c) {
    float dx = x1 - x0, dy = y1 - y0, len = sqrtf(dx * dx + dy * dy);
    if (!(len > 0.01f)) return;
    if (width < 1.0f) { c.a = (uint8_t)(c.a * width); width = 1.0f; }   /* sub-pixel width: fade instead */
    float nx = -dy / len * width * 0.5f, ny = dx / len * width * 0.5f;
    if (u->n_verts + 6 > u->cap_verts) {
        u->cap_verts = u->cap_verts ? u->cap_verts * 2 : 1024;
        u->verts = hs_xrealloc(u->verts, (size_t)u->cap_verts * sizeof *u->verts);
    }
    SDL_Vertex v[4];
    float px[4] = { x0 + nx, x0 - nx, x1 - nx, x1 + nx }, py[4] = { y0 + ny, y0 - ny, y1 - ny, y1 + ny };
    for (int i = 0; i < 4; i++) { v[i].position.x = px[i]; v[i].position.y = py[i]; v[i].color = c; v[i].tex_coord.x = v[i].tex_coord.y = 0; }
    static const int idx[6] = { 0, 1, 2, 0, 2, 3 };
    for (int i = 0; i < 6; i++) u->verts[u->n_verts++] = v[idx[i]];
}

void viz_lines_flush(viz_ui *u) {
    if (u->n_verts) SDL_RenderGeometry(u->r, NULL, u->verts, u->n_verts, NULL, 0);
    u->n_verts = 0;
}

void viz_disc(viz_ui *u, int cx, int cy, int radius, SDL_Color c) {
    SDL_Rect d = { cx - radius, cy - radius, 2 * radius, 2 * radius };
    if (!u->disc) { viz_fill(u, d, c); return; }
    SDL_SetTextureColorMod(u->disc, c.r, c.g, c.b);
    SDL_SetTextureAlphaMod(u->disc, c.a);
    SDL_RenderCopy(u->r, u->disc, NULL, &d);
}

void viz_fmt_num(char *buf, size_t n, double v) {
    double a = fabs(v);
    if (isnan(v)) snprintf(buf, n, "\xE2\x80\x94");
    else if (isinf(v)) snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else if (v == 0) snprintf(buf, n, "0");
    else if (a >= 1e5 || a < 1e-3) snprintf(buf, n, "%.3g", v);
    else if (a >= 100) snprintf(buf, n, "%.1f", v);
    else snprintf(buf, n, "%.4f", v);
}

int viz_nice_ticks(double lo, double hi, int max_n, double *ticks) {
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi) || max_n < 2) return 0;
    double raw = (hi - lo) / (max_n - 1), mag = pow(10, floor(log10(raw))), step = mag;
    static const double m[4] = { 1, 2, 5, 10 };
    for (int i = 0; i < 4; i++) if (m[i] * mag >= raw) { step = m[i] * mag; break; }
    int n = 0;
    for (double t = ceil(lo / step) * step; t <= hi + step * 1e-9 && n < max_n; t += step) ticks[n++] = fabs(t) < step * 1e-9 ? 0 : t;
    return n;
}

void viz_legend(viz_ui *u, SDL_Rect bar, viz_cmap m, double lo, double hi, bool vertical, const char *label) {
    const SDL_Color *lut = viz_cmap_lut(m);
    if (vertical) {
        for (int i = 0; i < bar.h; i++) {   /* top row = entry 255 exactly */
            int k = bar.h > 1 ? (int)lround(255.0 * (bar.h - 1 - i) / (bar.h - 1)) : 255;
            viz_hline(u, bar.x, bar.x + bar.w, bar.y + i, lut[k]);
        }
    } else {
        for (int i = 0; i < bar.w; i++) {
            int k = bar.w > 1 ? (int)lround(255.0 * i / (bar.w - 1)) : 255;
            viz_vline(u, bar.x + i, bar.y, bar.y + bar.h, lut[k]);
        }
    }
    viz_outline(u, (SDL_Rect){ bar.x - 1, bar.y - 1, bar.w + 2, bar.h + 2 }, u->th.border, 1);
    char a[32], b[32];
    viz_fmt_num(a, sizeof a, lo); viz_fmt_num(b, sizeof b, hi);
    int lh = u->line_h[VIZ_FONT_SMALL], pad = viz_px(u, 4);
    if (vertical) {
        viz_text(u, VIZ_FONT_SMALL, bar.x + bar.w + pad, bar.y - lh / 2, u->th.text, VIZ_LEFT, 0, b);
        viz_text(u, VIZ_FONT_SMALL, bar.x + bar.w + pad, bar.y + bar.h - lh / 2, u->th.text, VIZ_LEFT, 0, a);
        if (label) viz_text(u, VIZ_FONT_SMALL, bar.x, bar.y - lh - pad - lh / 2, u->th.dim, VIZ_LEFT, 0, label);
    } else {   /* one line: "label  lo [bar] hi" */
        int ty = bar.y + bar.h / 2 - lh / 2;
        int wl = viz_text(u, VIZ_FONT_SMALL, bar.x - pad, ty, u->th.text, VIZ_RIGHT, 0, a);
        viz_text(u, VIZ_FONT_SMALL, bar.x + bar.w + pad, ty, u->th.text, VIZ_LEFT, 0, b);
        if (label) viz_text(u, VIZ_FONT_SMALL, bar.x - 3 * pad - wl, ty, u->th.dim, VIZ_RIGHT, 0, label);
    }
}

void viz_tooltip(viz_ui *u, int x, int y, const char *text) {
    snprintf(u->tip, sizeof u->tip, "%s", text);
    u->tip_x = x; u->tip_y = y; u->tip_on = true;
}

static void draw_tooltip(viz_ui *u) {
    if (!u->tip_on) return;
    u->tip_on = false;
    char buf[sizeof u->tip];
    memcpy(buf, u->tip, sizeof buf);
    const char *lines[48]; int n = 0, wmax = 0;
    for (char *p = buf; p && n < 48;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl) { *nl = 0; p = nl + 1; } else p = NULL;
    }
    int maxw = u->w / 2;
    for (int i = 0; i < n; i++) { int w, h; viz_text_size(u, VIZ_FONT_NORMAL, lines[i], &w, &h); if (w > wmax) wmax = w; }
    if (wmax > maxw) wmax = maxw;
    int pad = viz_px(u, 6), lh = u->line_h[VIZ_FONT_NORMAL];
    SDL_Rect r = { u->tip_x + viz_px(u, 14), u->tip_y + viz_px(u, 14), wmax + 2 * pad, n * lh + 2 * pad };
    if (r.x + r.w > u->w) r.x = u->tip_x - r.w - viz_px(u, 8);
    if (r.y + r.h > u->h) r.y = u->h - r.h;
    if (r.x < 0) r.x = 0;
    if (r.y < 0) r.y = 0;
    viz_fill(u, r, u->th.panel_hi);
    viz_outline(u, r, u->th.border, 1);
    for (int i = 0; i < n; i++)
        viz_text(u, VIZ_FONT_NORMAL, r.x + pad, r.y + pad + i * lh, i == 0 ? u->th.accent : u->th.text, VIZ_LEFT, maxw, lines[i]);
}

void viz_empty_state(viz_ui *u, SDL_Rect area, const char *title, const char *body) {
    int pad = viz_px(u, 16), w = area.w - 4 * pad;
    if (w > viz_px(u, 720)) w = viz_px(u, 720);
    /* wrap the body on spaces to the box width */
    char line[512]; const char *p = body ? body : ""; int nl = 0; const char *lines_at[32]; int lens[32];
    while (*p && nl < 32) {
        int best = 0, i = 0;
        while (p[i] && p[i] != '\n') {
            if (p[i] == ' ' || p[i + 1] == 0 || p[i + 1] == '\n') {
                int k = p[i] == ' ' ? i : i + 1;
                if (k >= (int)sizeof line) break;
                memcpy(line, p, (size_t)k); line[k] = 0;
                int tw, th; viz_text_size(u, VIZ_FONT_NORMAL, line, &tw, &th);
                if (tw > w && best > 0) break;
                best = k;
            }
            i++;
        }
        if (best == 0) best = i > 0 ? i : 1;
        if (best >= (int)sizeof line) best = (int)sizeof line - 1;
        lines_at[nl] = p; lens[nl] = best; nl++;
        p += best;
        while (*p == ' ' || *p == '\n') p++;
    }
    int lh = u->line_h[VIZ_FONT_NORMAL], bh = u->line_h[VIZ_FONT_BIG];
    SDL_Rect box = { area.x + (area.w - w - 2 * pad) / 2, area.y + area.h / 2 - (bh + nl * lh + 3 * pad) / 2, w + 2 * pad, bh + nl * lh + 3 * pad };
    viz_fill(u, box, u->th.panel);
    viz_outline(u, box, u->th.border, 1);
    viz_text(u, VIZ_FONT_BIG, box.x + pad, box.y + pad, u->th.text, VIZ_LEFT, w, title);
    for (int i = 0; i < nl; i++) {
        memcpy(line, lines_at[i], (size_t)lens[i]); line[lens[i]] = 0;
        viz_text(u, VIZ_FONT_NORMAL, box.x + pad, box.y + 2 * pad + bh + i * lh, u->th.dim, VIZ_LEFT, w, line);
    }
}

SDL_Rect viz_panel(viz_ui *u, SDL_Rect r, const char *title) {
    viz_fill(u, r, u->th.panel);
    int pad = viz_px(u, 6);
    if (!title) return (SDL_Rect){ r.x + pad, r.y + pad, r.w - 2 * pad, r.h - 2 * pad };
    viz_text(u, VIZ_FONT_SMALL, r.x + pad, r.y + pad, u->th.dim, VIZ_LEFT, r.w - 2 * pad, title);
    int top = pad + u->line_h[VIZ_FONT_SMALL] + pad / 2;
    return (SDL_Rect){ r.x + pad, r.y + top, r.w - 2 * pad, r.h - top - pad };
}

void viz_ui_frame_begin(viz_ui *u) {
    u->frame++;
    SDL_GetRendererOutputSize(u->r, &u->w, &u->h);
    SDL_SetRenderDrawBlendMode(u->r, SDL_BLENDMODE_BLEND);
    SDL_SetRenderDrawColor(u->r, u->th.bg.r, u->th.bg.g, u->th.bg.b, 255);
    SDL_RenderClear(u->r);
    u->n_verts = 0;
}

void viz_ui_frame_end(viz_ui *u) {
    viz_lines_flush(u);
    draw_tooltip(u);
    cache_trim(u);
}
