/* test_intervene.c — every intervention checked against a brute-force recomputation.
 *
 * The independent reference is weight surgery: ablating or scaling head h's hook_z / hook_result
 * is the same function as editing that head's block of W_O (and, for mean-ablation, the output
 * bias), run through a plain forward with no hooks. Patching is checked against the donor run,
 * a pattern-row override against the value vector it selects, and Σ_h hook_result + b_O against
 * hook_attn_out.
 */
#include "testlib.h"
#include "runtime/forward.h"
#include "runtime/intervene.h"

static float *g_logits_a, *g_logits_b;

/* Copy layer l's W_O and return the copy (owned by caller); the model now points at it. */
static float *own_wo(rt_model *m, int l) {
    rt_linear *o = &m->layers[l].o;
    size_t n = (size_t)o->n_in * o->n_out;
    float *w = hs_xmalloc(n * sizeof(float));
    memcpy(w, o->w, n * sizeof(float));
    o->w = w;
    return w;
}
/* Pointer to element (j = output dim, i = input dim within head h) of W_O in its layout. */
static float *wo_at(rt_model *m, int l, float *w, int h, int i, int j) {
    const rt_linear *o = &m->layers[l].o;
    int col = h * m->cfg.d_head + i;
    return o->in_major ? &w[(size_t)col * o->n_out + j] : &w[(size_t)j * o->n_in + col];
}

static void run_last(rt_model *m, const int *ids, int T, const rt_hook_spec *spec, float *out) {
    rt_forward *f = rt_forward_init(m);
    rt_seq s = { ids, T, NULL };
    HS_ASSERT(rt_forward_run(f, &s, 1, spec, out) == HS_OK);
    rt_forward_free(f);
}

static double diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) { double x = fabs((double)a[i] - b[i]); if (x > d || x != x) d = x; }
    return d;
}

static void test_model(const char *name, const char *path) {
    rt_model *m;
    if (rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load", name); return; }
    const rt_config *c = &m->cfg;
    int V = c->vocab_size, D = c->d_model, HD = c->d_head, H = c->n_heads;
    int l = c->n_layers - 1, h = 1 % H;
    int ids[12], ids2[12], T = 12;
    for (int i = 0; i < T; i++) { ids[i] = (i * 37 + 5) % V; ids2[i] = (i * 11 + 3) % V; }
    float *hooked = hs_xmalloc((size_t)V * sizeof(float)), *surg = hs_xmalloc((size_t)V * sizeof(float));
    const float *orig_w = m->layers[l].o.w, *orig_b = m->layers[l].o.b;

    /* 1-2. zero-ablation of hook_z and of hook_result == zeroing head h's block of W_O */
    int lsel[1] = { l }, hsel[1] = { h };
    rt_hook_req rz = { RT_HOOK_Z, lsel, 1, hsel, 1, 0, 0, rt_iv_zero, NULL, false };
    rt_hook_spec sz = { &rz, 1 };
    run_last(m, ids, T, &sz, hooked);
    float *w = own_wo(m, l);
    for (int i = 0; i < HD; i++) for (int j = 0; j < D; j++) *wo_at(m, l, w, h, i, j) = 0;
    run_last(m, ids, T, NULL, surg);
    double d = diff(hooked, surg, V);
    TL_CHECK(d <= 1e-5, "%s: zero-ablate hook_z %d.%d == W_O surgery (max diff %.2e)", name, l, h, d);
    m->layers[l].o.w = orig_w;
    rt_hook_req rr = { RT_HOOK_RESULT, lsel, 1, hsel, 1, 0, 0, rt_iv_zero, NULL, false };
    rt_hook_spec sr = { &rr, 1 };
    run_last(m, ids, T, &sr, hooked);
    d = diff(hooked, surg, V);
    TL_CHECK(d <= 1e-5, "%s: zero-ablate hook_result %d.%d == W_O surgery (max diff %.2e)", name, l, h, d);

    /* 3. scaling head h's output by 0.5 == scaling its W_O block */
    float k = 0.5f;
    rt_hook_req rs = { RT_HOOK_RESULT, lsel, 1, hsel, 1, 0, 0, rt_iv_scale, &k, false };
    rt_hook_spec ss = { &rs, 1 };
    run_last(m, ids, T, &ss, hooked);
    memcpy(w, orig_w, (size_t)m->layers[l].o.n_in * D * sizeof(float));
    for (int i = 0; i < HD; i++) for (int j = 0; j < D; j++) *wo_at(m, l, w, h, i, j) *= 0.5f;
    m->layers[l].o.w = w;
    run_last(m, ids, T, NULL, surg);
    m->layers[l].o.w = orig_w;
    d = diff(hooked, surg, V);
    TL_CHECK(d <= 1e-5, "%s: scale head %d.%d output x0.5 == W_O surgery (max diff %.2e)", name, l, h, d);

    /* 4. mean-ablation of hook_z with vector mu == W_O block zeroed + bias += W_O^h mu */
    float *mu = hs_xmalloc((size_t)HD * sizeof(float)), *bias = hs_xcalloc((size_t)D, sizeof(float));
    for (int i = 0; i < HD; i++) mu[i] = 0.1f * (float)(i % 5) - 0.2f;
    rt_iv_mean_arg ma = { mu, false };
    rt_hook_req rm = { RT_HOOK_Z, lsel, 1, hsel, 1, 0, 0, rt_iv_mean, &ma, false };
    rt_hook_spec sm = { &rm, 1 };
    run_last(m, ids, T, &sm, hooked);
    memcpy(w, orig_w, (size_t)m->layers[l].o.n_in * D * sizeof(float));
    for (int j = 0; j < D; j++) {
        double acc = orig_b ? orig_b[j] : 0;
        for (int i = 0; i < HD; i++) { acc += (double)*wo_at(m, l, w, h, i, j) * mu[i]; *wo_at(m, l, w, h, i, j) = 0; }
        bias[j] = (float)acc;
    }
    m->layers[l].o.w = w; m->layers[l].o.b = bias;
    run_last(m, ids, T, NULL, surg);
    m->layers[l].o.w = orig_w; m->layers[l].o.b = orig_b;
    d = diff(hooked, surg, V);
    TL_CHECK(d <= 1e-4, "%s: mean-ablate hook_z %d.%d == W_O/bias surgery (max diff %.2e)", name, l, h, d);
    free(mu); free(bias); free(w);

    /* 5. activation patching: B's resid_pre at layer 1 replaced by A's => A's logits */
    rt_cache cache; rt_cache_init(&cache);
    int l1[1] = { c->n_layers > 1 ? 1 : 0 };
    rt_hook_req rec = { RT_HOOK_RESID_PRE, l1, 1, NULL, 0, 0, 0, rt_cache_record, &cache, false };
    rt_hook_spec srec = { &rec, 1 };
    run_last(m, ids, T, &srec, g_logits_a);
    rt_hook_req pat = { RT_HOOK_RESID_PRE, l1, 1, NULL, 0, 0, 0, rt_iv_patch, &cache, false };
    rt_hook_spec spat = { &pat, 1 };
    run_last(m, ids2, T, &spat, g_logits_b);
    d = diff(g_logits_a, g_logits_b, V);
    TL_CHECK(d <= 1e-6, "%s: patching resid_pre of layer %d from run A makes run B give A's logits (diff %.2e)", name, l1[0], d);
    /* patching only position 3 leaves the last position's logits different from both runs */
    rt_hook_req pat3 = { RT_HOOK_RESID_PRE, l1, 1, NULL, 0, 3, 4, rt_iv_patch, &cache, false };
    rt_hook_spec spat3 = { &pat3, 1 };
    run_last(m, ids2, T, &spat3, g_logits_b);
    run_last(m, ids2, T, NULL, surg);
    TL_CHECK(diff(g_logits_b, surg, V) > 1e-6 && diff(g_logits_b, g_logits_a, V) > 1e-6,
             "%s: patching one position changes the output but not into the donor's", name);
    rt_cache_free(&cache);

    /* 6. pattern-row override: one-hot on key 0 for query row q => z_h[q] == v_g[0] */
    rt_cache c2; rt_cache_init(&c2);
    int q = T - 2, g = h / (H / c->n_kv_heads), gsel[1] = { g };
    float *onehot = hs_xcalloc((size_t)T, sizeof(float));
    onehot[0] = 1.0f;
    rt_iv_row_arg ra = { q, onehot, T };
    rt_hook_req r6[3] = {
        { RT_HOOK_PATTERN, lsel, 1, hsel, 1, 0, 0, rt_iv_pattern_row, &ra, false },
        { RT_HOOK_Z, lsel, 1, hsel, 1, 0, 0, rt_cache_record, &c2, false },
        { RT_HOOK_V, lsel, 1, gsel, 1, 0, 0, rt_cache_record, &c2, false },
    };
    rt_hook_spec s6 = { r6, 3 };
    run_last(m, ids, T, &s6, hooked);
    char zn[64], vn[64];
    snprintf(zn, sizeof zn, "blocks.%d.attn.hook_z", l); snprintf(vn, sizeof vn, "blocks.%d.attn.hook_v", l);
    const float *z = rt_cache_get(&c2, zn, h, 0, NULL, NULL), *v = rt_cache_get(&c2, vn, g, 0, NULL, NULL);
    d = (z && v) ? diff(z + (size_t)q * HD, v, HD) : INFINITY;
    TL_CHECK(d <= 1e-6, "%s: overriding pattern row %d of head %d.%d with one-hot(0) gives z = v[0] (diff %.2e)", name, q, l, h, d);
    free(onehot);
    rt_cache_free(&c2);

    /* 7. Σ_h hook_result + b_O == hook_attn_out */
    rt_cache c3; rt_cache_init(&c3);
    rt_hook_req r7[2] = {
        { RT_HOOK_RESULT, lsel, 1, NULL, 0, 0, 0, rt_cache_record, &c3, false },
        { RT_HOOK_ATTN_OUT, lsel, 1, NULL, 0, 0, 0, rt_cache_record, &c3, false },
    };
    rt_hook_spec s7 = { r7, 2 };
    run_last(m, ids, T, &s7, hooked);
    char rn[64], an[64];
    snprintf(rn, sizeof rn, "blocks.%d.attn.hook_result", l); snprintf(an, sizeof an, "blocks.%d.hook_attn_out", l);
    const float *ao = rt_cache_get(&c3, an, -1, 0, NULL, NULL);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < D; j++) {
            double s = orig_b ? orig_b[j] : 0;
            for (int hh = 0; hh < H; hh++) s += rt_cache_get(&c3, rn, hh, 0, NULL, NULL)[(size_t)t * D + j];
            double e = fabs(s - ao[(size_t)t * D + j]);
            if (e > worst) worst = e;
        }
    TL_CHECK(worst <= 1e-5, "%s: sum of hook_result over heads + b_O == hook_attn_out (max diff %.2e)", name, worst);
    rt_cache_free(&c3);

    free(hooked); free(surg);
    rt_model_free(m);
}

int main(void) {
    g_logits_a = hs_xmalloc(1 << 20); g_logits_b = hs_xmalloc(1 << 20);
    test_model("rand-gpt2", "tests/fixtures/models/rand-gpt2");
    test_model("rand-llama-gqa", "tests/fixtures/models/rand-llama-gqa");
    const char *p = tl_shared_path("models/tiny-llama-shakespeare");
    if (p) test_model("tiny-llama-shakespeare", p); else tl_skip("tiny-llama-shakespeare: ../shared is missing");
    free(g_logits_a); free(g_logits_b);
    return tl_done();
}
