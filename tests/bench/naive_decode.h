/* naive_decode.h — the benchmark baseline: llama2.c-style token-by-token decoding.
 *
 * One position at a time, plain C matrix-vector loops, a KV cache, no batching and no BLAS — the
 * way run.c computes. `make bench` reports prefill throughput as a ratio against this, measured
 * in the same run, and checks that both compute the same logits. Header-only; bench use only.
 */
#ifndef HS_NAIVE_DECODE_H
#define HS_NAIVE_DECODE_H
#include "runtime/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const rt_model *m;
    float *kc, *vc;                        /* (L, cap, KV*HD) */
    int cap;
    float *x, *xb, *q, *k, *v, *z, *att, *hb, *hb2, *qkv, *logits;
} naive_state;

static void nv_matvec(float *out, const float *x, const rt_linear *L) {
    for (int i = 0; i < L->n_out; i++) {
        float s = L->b ? L->b[i] : 0.0f;
        if (!L->in_major) { const float *w = L->w + (size_t)i * L->n_in; for (int j = 0; j < L->n_in; j++) s += w[j] * x[j]; }
        else for (int j = 0; j < L->n_in; j++) s += L->w[(size_t)j * L->n_out + i] * x[j];
        out[i] = s;
    }
}

static void nv_norm(const rt_config *c, const rt_norm *n, const float *x, float *y) {
    int D = c->d_model;
    if (c->norm == RT_NORM_RMS) {
        float ss = 0; for (int j = 0; j < D; j++) ss += x[j] * x[j];
        ss = 1.0f / sqrtf(ss / D + c->norm_eps);
        for (int j = 0; j < D; j++) y[j] = n->w[j] * (ss * x[j]);
    } else {
        float mean = 0, var = 0;
        for (int j = 0; j < D; j++) mean += x[j];
        mean /= D;
        for (int j = 0; j < D; j++) var += (x[j] - mean) * (x[j] - mean);
        float inv = 1.0f / sqrtf(var / D + c->norm_eps);
        for (int j = 0; j < D; j++) y[j] = (x[j] - mean) * inv * n->w[j] + (n->b ? n->b[j] : 0.0f);
    }
}

static void nv_rope(const rt_config *c, float *v, int nh, int pos) {
    int HD = c->d_head, half = HD / 2;
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < half; i++) {
            float fr = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)HD), a = pos * fr, cs = cosf(a), sn = sinf(a);
            int p = c->rope_interleaved ? 2 * i : i, q = c->rope_interleaved ? 2 * i + 1 : i + half;
            float x0 = v[h * HD + p], x1 = v[h * HD + q];
            v[h * HD + p] = x0 * cs - x1 * sn; v[h * HD + q] = x1 * cs + x0 * sn;
        }
}

static void naive_init(naive_state *s, const rt_model *m, int cap) {
    const rt_config *c = &m->cfg;
    int D = c->d_model, QD = c->n_heads * c->d_head, KD = c->n_kv_heads * c->d_head, F = c->d_mlp;
    memset(s, 0, sizeof *s);
    s->m = m; s->cap = cap;
    s->kc = calloc((size_t)c->n_layers * cap * KD, sizeof(float));
    s->vc = calloc((size_t)c->n_layers * cap * KD, sizeof(float));
    s->x = calloc(D, 4); s->xb = calloc(D, 4); s->q = calloc(QD, 4); s->k = calloc(KD, 4); s->v = calloc(KD, 4);
    s->z = calloc(QD, 4); s->att = calloc(cap, 4); s->hb = calloc(F, 4); s->hb2 = calloc(F, 4);
    s->qkv = calloc(3 * (size_t)D, 4); s->logits = calloc(c->vocab_size, 4);
}

static void naive_free(naive_state *s) {
    free(s->kc); free(s->vc); free(s->x); free(s->xb); free(s->q); free(s->k); free(s->v); free(s->z);
    free(s->att); free(s->hb); free(s->hb2); free(s->qkv); free(s->logits);
}

/* Process token `tok` at position `pos`; leaves the logits in s->logits. */
static void naive_step(naive_state *s, int tok, int pos) {
    const rt_model *m = s->m; const rt_config *c = &m->cfg;
    int D = c->d_model, H = c->n_heads, KV = c->n_kv_heads, HD = c->d_head, QD = H * HD, KD = KV * HD, F = c->d_mlp;
    memcpy(s->x, m->tok_embed + (size_t)tok * D, D * sizeof(float));
    if (m->pos_embed) for (int j = 0; j < D; j++) s->x[j] += m->pos_embed[(size_t)pos * D + j];
    for (int l = 0; l < c->n_layers; l++) {
        const rt_layer *L = &m->layers[l];
        nv_norm(c, &L->ln1, s->x, s->xb);
        if (L->qkv.w) {
            nv_matvec(s->qkv, s->xb, &L->qkv);
            memcpy(s->q, s->qkv, D * 4); memcpy(s->k, s->qkv + D, D * 4); memcpy(s->v, s->qkv + 2 * D, D * 4);
        } else { nv_matvec(s->q, s->xb, &L->q); nv_matvec(s->k, s->xb, &L->k); nv_matvec(s->v, s->xb, &L->v); }
        if (c->arch == RT_ARCH_LLAMA) { nv_rope(c, s->q, H, pos); nv_rope(c, s->k, KV, pos); }
        float *kl = s->kc + (size_t)l * s->cap * KD, *vl = s->vc + (size_t)l * s->cap * KD;
        memcpy(kl + (size_t)pos * KD, s->k, KD * 4); memcpy(vl + (size_t)pos * KD, s->v, KD * 4);
        for (int h = 0; h < H; h++) {
            int g = h / (H / KV), lo = c->sliding_window > 0 && pos - c->sliding_window + 1 > 0 ? pos - c->sliding_window + 1 : 0;
            float mx = -INFINITY, sum = 0;
            for (int t = lo; t <= pos; t++) {
                float sc = 0; const float *kk = kl + (size_t)t * KD + g * HD;
                for (int i = 0; i < HD; i++) sc += s->q[h * HD + i] * kk[i];
                s->att[t] = sc / sqrtf((float)HD);
                if (s->att[t] > mx) mx = s->att[t];
            }
            for (int t = lo; t <= pos; t++) { s->att[t] = expf(s->att[t] - mx); sum += s->att[t]; }
            float *zh = s->z + h * HD;
            memset(zh, 0, HD * 4);
            for (int t = lo; t <= pos; t++) {
                const float *vv = vl + (size_t)t * KD + g * HD; float a = s->att[t] / sum;
                for (int i = 0; i < HD; i++) zh[i] += a * vv[i];
            }
        }
        nv_matvec(s->xb, s->z, &L->o);
        for (int j = 0; j < D; j++) s->x[j] += s->xb[j];
        nv_norm(c, &L->ln2, s->x, s->xb);
        if (c->arch == RT_ARCH_GPT2) {
            nv_matvec(s->hb, s->xb, &L->up);
            for (int i = 0; i < F; i++) { float u = s->hb[i]; s->hb[i] = 0.5f * u * (1.0f + tanhf(0.7978845608f * (u + 0.044715f * u * u * u))); }
        } else {
            nv_matvec(s->hb, s->xb, &L->gate); nv_matvec(s->hb2, s->xb, &L->up);
            for (int i = 0; i < F; i++) s->hb[i] = s->hb[i] / (1.0f + expf(-s->hb[i])) * s->hb2[i];
        }
        nv_matvec(s->xb, s->hb, &L->down);
        for (int j = 0; j < D; j++) s->x[j] += s->xb[j];
    }
    nv_norm(c, &m->ln_final, s->x, s->xb);
    nv_matvec(s->logits, s->xb, &m->lm_head);
    (void)QD;
}
#endif
