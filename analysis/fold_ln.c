/* fold_ln.c — per-head weights, raw or folded as TransformerLens does (see fold_ln.h). */
#include "fold_ln.h"
#include <stdlib.h>
#include <string.h>

void an_head_w_init(an_head_w *w, const rt_config *c) {
    int D = c->d_model, HD = c->d_head;
    size_t dh = (size_t)D * HD;
    w->D = D; w->HD = HD;
    w->buf = hs_xmalloc((4 * dh + 3 * (size_t)HD) * sizeof(float));
    w->W_Q = w->buf; w->W_K = w->W_Q + dh; w->W_V = w->W_K + dh; w->W_O = w->W_V + dh;
    w->b_Q = w->W_O + dh; w->b_K = w->b_Q + HD; w->b_V = w->b_K + HD;
}

void an_head_w_free(an_head_w *w) { free(w->buf); memset(w, 0, sizeof *w); }

/* Copy one matrix out of weights.h. an_head_matrix allocates its result; this is the only place the
 * passes call it, once per head and matrix, outside every inner loop. */
static void take(const rt_model *m, int l, int h, an_head_weight which, float *dst) {
    an_mat t;
    an_head_matrix(m, l, h, which, &t);
    memcpy(dst, t.w, (size_t)t.rows * t.cols * sizeof(float));
    an_mat_free(&t);
}

/* Fold the reading norm (gain g (D), bias b (D) or NULL) into W (D, HD) and its bias (HD); centre
 * the columns when the norm is a LayerNorm. Double accumulation: b·W sums D products. */
static void fold_reading(float *W, float *bias, int D, int HD, const float *g, const float *b, bool centre) {
    if (b)
        for (int j = 0; j < HD; j++) {
            double acc = bias[j];
            for (int i = 0; i < D; i++) acc += (double)b[i] * W[(size_t)i * HD + j];
            bias[j] = (float)acc;
        }
    for (int i = 0; i < D; i++)
        for (int j = 0; j < HD; j++) W[(size_t)i * HD + j] *= g[i];
    if (!centre) return;
    for (int j = 0; j < HD; j++) {
        double mean = 0;
        for (int i = 0; i < D; i++) mean += W[(size_t)i * HD + j];
        mean /= D;
        for (int i = 0; i < D; i++) W[(size_t)i * HD + j] = (float)(W[(size_t)i * HD + j] - mean);
    }
}

void an_head_w_load(const rt_model *m, int l, int h, bool fold, an_head_w *w) {
    const rt_config *c = &m->cfg;
    HS_ASSERT(w->D == c->d_model && w->HD == c->d_head);
    int D = w->D, HD = w->HD;
    take(m, l, h, AN_W_Q, w->W_Q); take(m, l, h, AN_W_K, w->W_K);
    take(m, l, h, AN_W_V, w->W_V); take(m, l, h, AN_W_O, w->W_O);
    an_head_bias(m, l, h, AN_W_Q, w->b_Q); an_head_bias(m, l, h, AN_W_K, w->b_K); an_head_bias(m, l, h, AN_W_V, w->b_V);
    if (!fold) return;
    const rt_norm *ln = &m->layers[l].ln1;
    bool layernorm = c->norm == RT_NORM_LAYER;
    fold_reading(w->W_Q, w->b_Q, D, HD, ln->w, layernorm ? ln->b : NULL, layernorm);
    fold_reading(w->W_K, w->b_K, D, HD, ln->w, layernorm ? ln->b : NULL, layernorm);
    fold_reading(w->W_V, w->b_V, D, HD, ln->w, layernorm ? ln->b : NULL, layernorm);
    if (layernorm)   /* center_writing_weights */
        for (int i = 0; i < HD; i++) {
            float *row = w->W_O + (size_t)i * D;
            double mean = 0;
            for (int j = 0; j < D; j++) mean += row[j];
            mean /= D;
            for (int j = 0; j < D; j++) row[j] = (float)(row[j] - mean);
        }
}

void an_fold_unembed_dir(const rt_model *m, bool fold, const float *v, float *out) {
    int D = m->cfg.d_model;
    const float *g = m->ln_final.w;
    for (int i = 0; i < D; i++) out[i] = fold && g ? v[i] * g[i] : v[i];
}
