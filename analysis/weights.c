/* weights.c — per-head weight extraction in TransformerLens convention (see weights.h). */
#include "weights.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

void an_mat_free(an_mat *m) { free(m->w); m->w = NULL; m->rows = m->cols = 0; }

/* Element (i_in, j_out) of a linear map y = x·W with W of shape (n_in, n_out) in TL terms,
 * read from the stored layout. For GPT-2's fused c_attn, `col0` offsets into the 3D outputs. */
static float lin_at(const rt_linear *L, int i_in, int j_out) {
    return L->in_major ? L->w[(size_t)i_in * L->n_out + j_out] : L->w[(size_t)j_out * L->n_in + i_in];
}

void an_head_matrix(const rt_model *m, int l, int h, an_head_weight which, an_mat *out) {
    const rt_config *c = &m->cfg;
    const rt_layer *L = &m->layers[l];
    int D = c->d_model, HD = c->d_head, g = h / (c->n_heads / c->n_kv_heads);
    HS_ASSERT(l >= 0 && l < c->n_layers && h >= 0 && h < c->n_heads);
    if (which == AN_W_O) {
        out->rows = HD; out->cols = D;
        out->w = hs_xmalloc((size_t)HD * D * sizeof(float));
        for (int i = 0; i < HD; i++)
            for (int j = 0; j < D; j++) out->w[(size_t)i * D + j] = lin_at(&L->o, h * HD + i, j);
        return;
    }
    out->rows = D; out->cols = HD;
    out->w = hs_xmalloc((size_t)D * HD * sizeof(float));
    const rt_linear *lin;
    int col0;
    if (L->qkv.w) { lin = &L->qkv; col0 = (which == AN_W_Q ? 0 : which == AN_W_K ? D : 2 * D) + h * HD; }
    else {
        lin = which == AN_W_Q ? &L->q : which == AN_W_K ? &L->k : &L->v;
        col0 = (which == AN_W_Q ? h : g) * HD;
    }
    for (int i = 0; i < D; i++)
        for (int j = 0; j < HD; j++) out->w[(size_t)i * HD + j] = lin_at(lin, i, col0 + j);
}

void an_head_bias(const rt_model *m, int l, int h, an_head_weight which, float *out) {
    const rt_config *c = &m->cfg;
    const rt_layer *L = &m->layers[l];
    int D = c->d_model, HD = c->d_head, g = h / (c->n_heads / c->n_kv_heads);
    memset(out, 0, (size_t)HD * sizeof(float));
    if (which == AN_W_O) return;
    const float *b; int off;
    if (L->qkv.w) { b = L->qkv.b; off = (which == AN_W_Q ? 0 : which == AN_W_K ? D : 2 * D) + h * HD; }
    else {
        const rt_linear *lin = which == AN_W_Q ? &L->q : which == AN_W_K ? &L->k : &L->v;
        b = lin->b; off = (which == AN_W_Q ? h : g) * HD;
    }
    if (b) memcpy(out, b + off, (size_t)HD * sizeof(float));
}

void an_matmul(const an_mat *a, const an_mat *b, an_mat *out) {
    HS_ASSERT(a->cols == b->rows);
    out->rows = a->rows; out->cols = b->cols;
    out->w = hs_xmalloc((size_t)out->rows * out->cols * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->rows, b->cols, a->cols, 1.0f, a->w, a->cols,
                b->w, b->cols, 0.0f, out->w, out->cols);
}

void an_transpose(const an_mat *a, an_mat *out) {
    out->rows = a->cols; out->cols = a->rows;
    out->w = hs_xmalloc((size_t)a->rows * a->cols * sizeof(float));
    for (int i = 0; i < a->rows; i++)
        for (int j = 0; j < a->cols; j++) out->w[(size_t)j * a->rows + i] = a->w[(size_t)i * a->cols + j];
}

const float *an_unembed_rows(const rt_model *m) {
    /* lm_head is stored (V, D) (nn.Linear layout) in every supported format, tied or not */
    HS_ASSERT(!m->lm_head.in_major);
    return m->lm_head.w;
}
