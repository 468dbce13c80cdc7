/* viz_colormap.c — the viewer's colour maps as 256-entry lookup tables.
 *
 * viridis (metrics) and inferno (attention weights) are matplotlib's perceptually uniform maps;
 * the tables are evaluated from degree-6 polynomial fits of them (max error about 1/255 per
 * channel), which saves shipping 2 x 256 literal triples. Entry 0 is the low end, 255 the top:
 * the legend's top colour is exactly entry 255, which the pixel tests rely on.
 */
#include "viz_internal.h"

static const double k_viridis[7][3] = {
    { 0.2777273272234177, 0.005407344544966578, 0.3340998053353061 },
    { 0.1050930431085774, 1.404613529898575, 1.384590162594685 },
    { -0.3308618287255563, 0.214847559468213, 0.09509516302823659 },
    { -4.634230498983486, -5.799100973351585, -19.33244095627987 },
    { 6.228269936347081, 14.17993336680509, 56.69055260068105 },
    { 4.776384997670288, -13.74514537774601, -65.35303263337234 },
    { -5.435455855934631, 4.645852612178535, 26.3124352495832 },
};
static const double k_inferno[7][3] = {
    { 0.0002189403691192265, 0.001651004631001012, -0.01948089843709184 },
    { 0.1065134194856116, 0.5639564367884091, 3.932712388889277 },
    { 11.60249308247187, -3.972853965665698, -15.9423941062914 },
    { -41.70399613139459, 17.43639888205313, 44.35414519872813 },
    { 77.162935699427, -33.40235894210092, -81.80730925738993 },
    { -71.31942824499214, 32.62606426397723, 73.20951985803202 },
    { 25.13112622477341, -12.24266895238567, -23.07032500287172 },
};

static SDL_Color g_lut[VIZ_CMAP_COUNT][256];
static uint32_t g_argb[VIZ_CMAP_COUNT][256];
static bool g_ready;

static void build(void) {
    for (int m = 0; m < VIZ_CMAP_COUNT; m++) {
        const double (*c)[3] = m == VIZ_CMAP_VIRIDIS ? k_viridis : k_inferno;
        for (int i = 0; i < 256; i++) {
            double t = i / 255.0, ch[3];
            for (int k = 0; k < 3; k++) {
                double v = c[6][k];
                for (int d = 5; d >= 0; d--) v = v * t + c[d][k];
                ch[k] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
            SDL_Color col = { (uint8_t)lround(ch[0] * 255), (uint8_t)lround(ch[1] * 255), (uint8_t)lround(ch[2] * 255), 255 };
            g_lut[m][i] = col;
            g_argb[m][i] = 0xFF000000u | (uint32_t)col.r << 16 | (uint32_t)col.g << 8 | col.b;
        }
    }
    g_ready = true;
}

const SDL_Color *viz_cmap_lut(viz_cmap m) {
    HS_ASSERT(m >= 0 && m < VIZ_CMAP_COUNT);
    if (!g_ready) build();
    return g_lut[m];
}

const uint32_t *viz_cmap_argb(viz_cmap m) {
    HS_ASSERT(m >= 0 && m < VIZ_CMAP_COUNT);
    if (!g_ready) build();
    return g_argb[m];
}

int viz_cmap_index(double v, double lo, double hi) {
    if (isnan(v)) return -1;
    if (!(hi > lo)) return 128;   /* one value (or all equal): the middle, so it reads as "no spread" */
    double t = (v - lo) / (hi - lo);
    int i = (int)lround(t * 255.0);
    return i < 0 ? 0 : i > 255 ? 255 : i;
}
