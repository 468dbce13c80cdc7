/* test_weights.c — analysis/weights.c (per-head W_Q/W_K/W_V/W_O and biases in TransformerLens
 * convention) checked against the runtime's forward pass, an independent reading of the same
 * checkpoint (the forward multiplies the stored layouts through its own GEMM calls).
 *
 * For every layer and head of each model, recorded through the hooks on one 11-token sequence:
 *   hook_q[h]            == ln1.hook_normalized · W_Q^h + b_Q^h
 *   hook_k[g], hook_v[g] == ln1.hook_normalized · W_K^h + b_K^h   for every query head h of KV head g
 *   hook_result[h]       == hook_z[h] · W_O^h
 * Tolerance: max|a − b| <= 1e-4 · max|b| + 1e-6 (fp32 GEMMs in a different summation order).
 * Models: the three shared models (skipped without ../shared) and the random gpt2, llama-GQA and
 * qwen2 (q/k/v biases) fixtures.
 */
#include "testlib.h"
#include "analysis/weights.h"
#include "runtime/forward.h"

typedef struct {
    int L, H, KV, T, D, HD;
    float *xn;                  /* (L, T, D) ln1.hook_normalized */
    float *q, *z;               /* (L, H, T, HD) */
    float *k, *v;               /* (L, KV, T, HD) */
    float *result;              /* (L, H, T, D) */
} rec;

static void on_hook(const rt_hook_event *ev, void *user) {
    rec *r = user;
    float *dst;
    size_t n = (size_t)ev->rows * ev->cols;
    switch (ev->point) {
    case RT_HOOK_LN1_NORMALIZED: dst = r->xn + (size_t)ev->layer * r->T * r->D; break;
    case RT_HOOK_Q: dst = r->q + ((size_t)ev->layer * r->H + ev->head) * r->T * r->HD; break;
    case RT_HOOK_Z: dst = r->z + ((size_t)ev->layer * r->H + ev->head) * r->T * r->HD; break;
    case RT_HOOK_K: dst = r->k + ((size_t)ev->layer * r->KV + ev->head) * r->T * r->HD; break;
    case RT_HOOK_V: dst = r->v + ((size_t)ev->layer * r->KV + ev->head) * r->T * r->HD; break;
    case RT_HOOK_RESULT: dst = r->result + ((size_t)ev->layer * r->H + ev->head) * r->T * r->D; break;
    default: return;
    }
    HS_ASSERT(ev->rows == r->T);
    memcpy(dst, ev->data, n * sizeof(float));
}

/* max |x·W + b − ref| / (max|ref|) over (T, cols) in double; x (T, n_in), W (n_in, cols). */
static double rel_affine(const float *x, const an_mat *W, const float *b, const float *ref, int T) {
    double err = 0, scale = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < W->cols; j++) {
            double acc = b ? b[j] : 0.0;
            for (int i = 0; i < W->rows; i++) acc += (double)x[(size_t)t * W->rows + i] * W->w[(size_t)i * W->cols + j];
            double r = ref[(size_t)t * W->cols + j];
            if (fabs(acc - r) > err || acc != acc) err = acc != acc ? INFINITY : fabs(acc - r);
            if (fabs(r) > scale) scale = fabs(r);
        }
    return err / (scale + 1e-6);
}

static void check_model(const char *name, const char *path) {
    if (!path) { tl_skip("%s: ../shared not found", name); return; }
    rt_model *m;
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load %s", name, path); return; }
    const rt_config *c = &m->cfg;
    rec r = { c->n_layers, c->n_heads, c->n_kv_heads, 11, c->d_model, c->d_head, NULL, NULL, NULL, NULL, NULL, NULL };
    size_t LT = (size_t)r.L * r.T;
    r.xn = hs_xmalloc(LT * r.D * sizeof(float));
    r.q = hs_xmalloc(LT * r.H * r.HD * sizeof(float));
    r.z = hs_xmalloc(LT * r.H * r.HD * sizeof(float));
    r.k = hs_xmalloc(LT * r.KV * r.HD * sizeof(float));
    r.v = hs_xmalloc(LT * r.KV * r.HD * sizeof(float));
    r.result = hs_xmalloc(LT * r.H * r.D * sizeof(float));
    int ids[11];
    for (int t = 0; t < r.T; t++) ids[t] = (t * 97 + 13) % c->vocab_size;
    rt_hook_point pts[] = { RT_HOOK_LN1_NORMALIZED, RT_HOOK_Q, RT_HOOK_K, RT_HOOK_V, RT_HOOK_Z, RT_HOOK_RESULT };
    rt_hook_req reqs[6];
    for (int i = 0; i < 6; i++) { rt_hook_req q = { pts[i], NULL, 0, NULL, 0, 0, 0, on_hook, &r, false }; reqs[i] = q; }
    rt_hook_spec spec = { reqs, 6 };
    rt_forward *f = rt_forward_init(m);
    rt_seq s = { ids, r.T, NULL };
    HS_ASSERT(rt_forward_run(f, &s, 1, &spec, NULL) == HS_OK);
    rt_forward_free(f);

    double wq = 0, wk = 0, wv = 0, wo = 0;
    float *b = hs_xmalloc((size_t)r.HD * sizeof(float));
    int group = r.H / r.KV;
    for (int l = 0; l < r.L; l++) {
        const float *xn = r.xn + (size_t)l * r.T * r.D;
        for (int h = 0; h < r.H; h++) {
            an_mat W, Wz;
            size_t qo = ((size_t)l * r.H + h) * r.T * r.HD, ko = ((size_t)l * r.KV + h / group) * r.T * r.HD;
            an_head_matrix(m, l, h, AN_W_Q, &W); an_head_bias(m, l, h, AN_W_Q, b);
            double e = rel_affine(xn, &W, b, r.q + qo, r.T); if (e > wq || e != e) wq = e;
            an_mat_free(&W);
            an_head_matrix(m, l, h, AN_W_K, &W); an_head_bias(m, l, h, AN_W_K, b);
            e = rel_affine(xn, &W, b, r.k + ko, r.T); if (e > wk || e != e) wk = e;
            an_mat_free(&W);
            an_head_matrix(m, l, h, AN_W_V, &W); an_head_bias(m, l, h, AN_W_V, b);
            e = rel_affine(xn, &W, b, r.v + ko, r.T); if (e > wv || e != e) wv = e;
            an_mat_free(&W);
            an_head_matrix(m, l, h, AN_W_O, &Wz);
            e = rel_affine(r.z + qo, &Wz, NULL, r.result + ((size_t)l * r.H + h) * r.T * r.D, r.T); if (e > wo || e != e) wo = e;
            an_mat_free(&Wz);
        }
    }
    const double tol = 1e-4;
    TL_CHECK(wq <= tol, "%s: hook_q == ln1_normalized·W_Q^h + b_Q^h for all %d×%d heads (max rel err %.2e)", name, r.L, r.H, wq);
    TL_CHECK(wk <= tol, "%s: hook_k[h/%d] == ln1_normalized·W_K^h + b_K^h (max rel err %.2e)", name, group, wk);
    TL_CHECK(wv <= tol, "%s: hook_v[h/%d] == ln1_normalized·W_V^h + b_V^h (max rel err %.2e)", name, group, wv);
    TL_CHECK(wo <= tol, "%s: hook_result == hook_z·W_O^h (max rel err %.2e)", name, wo);

    /* shapes as weights.h promises */
    an_mat W;
    an_head_matrix(m, 0, r.H - 1, AN_W_O, &W);
    bool ok = W.rows == r.HD && W.cols == r.D;
    an_mat_free(&W);
    an_head_matrix(m, 0, r.H - 1, AN_W_K, &W);
    ok = ok && W.rows == r.D && W.cols == r.HD;
    an_mat_free(&W);
    an_head_bias(m, 0, 0, AN_W_O, b);
    for (int i = 0; i < r.HD; i++) ok = ok && b[i] == 0.0f;
    TL_CHECK(ok, "%s: W_O^h is (HD, D) = (%d, %d), W_K^h (D, HD), b_O per head is zero", name, r.HD, r.D);
    free(b); free(r.xn); free(r.q); free(r.z); free(r.k); free(r.v); free(r.result);
    rt_model_free(m);
}

int main(void) {
    hs_log_quiet(true);
    check_model("rand-gpt2", "tests/fixtures/models/rand-gpt2");
    check_model("rand-llama-gqa", "tests/fixtures/models/rand-llama-gqa");
    check_model("rand-qwen2", "tests/fixtures/models/rand-qwen2");
    check_model("tiny-gpt2-shakespeare", tl_shared_path("models/tiny-gpt2-shakespeare"));
    check_model("tiny-llama-shakespeare", tl_shared_path("models/tiny-llama-shakespeare"));
    check_model("stories260K", tl_shared_path("models/stories260K/stories260K.bin"));
    return tl_done();
}
