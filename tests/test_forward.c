/* test_forward.c — the CPU forward pass against float64 Hugging Face references, plus batching,
 * KV-cache decoding and the no-hooks path.
 *
 * References (tests/fixtures/ref/NAME.json, made by tests/fixtures/gen_fixtures.py with transformers
 * at float64): log-softmax logits, per-head patterns, hook_z, hook_resid_post and greedy ids.
 * Tolerances are the issue's: patterns max abs ≤ 1e-5, log-probs max abs ≤ 1e-4,
 * hook_z and resid_post relative error ≤ 1e-4.
 */
#include "testlib.h"
#include "fixture.h"
#include "runtime/forward.h"
#include "runtime/intervene.h"
#include "runtime/sample.h"

typedef struct { const char *name; const char *path; bool shared; } ref_model;

static const ref_model k_models[] = {
    { "tiny-gpt2-shakespeare", "models/tiny-gpt2-shakespeare", true },
    { "tiny-llama-shakespeare", "models/tiny-llama-shakespeare", true },
    { "stories260K", "models/stories260K/stories260K.bin", true },
    { "rand-gpt2", "tests/fixtures/models/rand-gpt2", false },
    { "rand-llama-gqa", "tests/fixtures/models/rand-llama-gqa", false },
    { "rand-mistral", "tests/fixtures/models/rand-mistral", false },
    { "rand-qwen2", "tests/fixtures/models/rand-qwen2", false },
};


static double max_abs_d(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) { double d = fabs(a[i] - b[i]); if (d > m || d != d) m = d; }
    return m;
}

/* Compare one prompt of one model against its reference record. */
static void check_prompt(const char *name, rt_model *m, const cJSON *rec, int pi) {
    const rt_config *c = &m->cfg;
    int T = 0, L = c->n_layers, H = c->n_heads, HD = c->d_head, D = c->d_model, V = c->vocab_size;
    int *ids = fx_ints(rec, "ids", &T);
    rt_cache cache; rt_cache_init(&cache);
    rt_hook_req reqs[] = {
        { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false },
        { RT_HOOK_Z, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false },
        { RT_HOOK_RESID_POST, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false },
        { RT_HOOK_LOGITS, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false },
    };
    rt_hook_spec spec = { reqs, 4 };
    rt_forward *f = rt_forward_init(m);
    rt_seq sq = { ids, T, NULL };
    float *last = hs_xmalloc((size_t)V * sizeof(float));
    hs_status st = rt_forward_run(f, &sq, 1, &spec, last);
    TL_CHECK(st == HS_OK, "%s p%d: forward runs (T=%d)", name, pi, T);
    if (st != HS_OK) goto out;

    size_t n = 0;
    double *ref = fx_array(rec, "logprobs", &n);
    int rows, cols;
    const float *lg = rt_cache_get(&cache, "logits", -1, 0, &rows, &cols);
    double *ours = hs_xmalloc((size_t)T * V * sizeof(double));
    fx_log_softmax_rows(lg, T, V, ours);
    double e = (n == (size_t)T * V) ? max_abs_d(ours, ref, n) : INFINITY;
    TL_CHECK(e <= 1e-4, "%s p%d: log-softmax logits max abs err %.2e <= 1e-4", name, pi, e);
    free(ref); free(ours);

    ref = fx_array(rec, "pattern", &n);           /* [L][H][T][T] */
    double worst = 0;
    for (int l = 0; l < L && n == (size_t)L * H * T * T; l++)
        for (int h = 0; h < H; h++) {
            char hn[64]; snprintf(hn, sizeof hn, "blocks.%d.attn.hook_pattern", l);
            const float *p = rt_cache_get(&cache, hn, h, 0, &rows, &cols);
            double d = p ? tl_max_abs(p, ref + (((size_t)l * H + h) * T) * T, (size_t)T * T) : INFINITY;
            if (d > worst) worst = d;
        }
    if (n != (size_t)L * H * T * T) worst = INFINITY;
    TL_CHECK(worst <= 1e-5, "%s p%d: per-head patterns max abs err %.2e <= 1e-5", name, pi, worst);
    free(ref);

    ref = fx_array(rec, "z", &n);                 /* [L][T][H*HD] */
    worst = 0;
    float *zl = hs_xmalloc((size_t)T * H * HD * sizeof(float));
    for (int l = 0; l < L && n == (size_t)L * T * H * HD; l++) {
        char hn[64]; snprintf(hn, sizeof hn, "blocks.%d.attn.hook_z", l);
        for (int h = 0; h < H; h++) {
            const float *z = rt_cache_get(&cache, hn, h, 0, &rows, &cols);
            for (int t = 0; t < T; t++) memcpy(zl + ((size_t)t * H + h) * HD, z + (size_t)t * HD, (size_t)HD * sizeof(float));
        }
        double d = tl_rel_err(zl, ref + (size_t)l * T * H * HD, (size_t)T * H * HD);
        if (d > worst) worst = d;
    }
    if (n != (size_t)L * T * H * HD) worst = INFINITY;
    TL_CHECK(worst <= 1e-4, "%s p%d: hook_z relative err %.2e <= 1e-4", name, pi, worst);
    free(zl); free(ref);

    ref = fx_array(rec, "resid_post", &n);        /* [L][T][D] */
    worst = 0;
    for (int l = 0; l < L && n == (size_t)L * T * D; l++) {
        char hn[64]; snprintf(hn, sizeof hn, "blocks.%d.hook_resid_post", l);
        const float *r = rt_cache_get(&cache, hn, -1, 0, &rows, &cols);
        double d = tl_rel_err(r, ref + (size_t)l * T * D, (size_t)T * D);
        if (d > worst) worst = d;
    }
    if (n != (size_t)L * T * D) worst = INFINITY;
    TL_CHECK(worst <= 1e-4, "%s p%d: hook_resid_post relative err %.2e <= 1e-4", name, pi, worst);
    free(ref);

    /* the no-hooks path (blocked attention) must agree with the hooked one */
    float *last2 = hs_xmalloc((size_t)V * sizeof(float));
    rt_forward_run(f, &sq, 1, NULL, last2);
    double dd = 0;
    for (int j = 0; j < V; j++) { double d = fabs(last[j] - last2[j]); if (d > dd) dd = d; }
    TL_CHECK(dd <= 1e-5, "%s p%d: unhooked forward equals hooked forward (max diff %.2e)", name, pi, dd);
    free(last2);

    int ng;
    int *greedy = fx_ints(rec, "greedy_ids", &ng);
    if (greedy) {   /* greedy decoding through the KV cache, as generate does */
        rt_kv_cache kv; rt_kv_cache_init(&kv, c, T + ng);
        int *seq = hs_xmalloc((size_t)(T + ng) * sizeof(int));
        memcpy(seq, ids, (size_t)T * sizeof(int));
        rt_seq s2 = { seq, T, &kv };
        int k = 0;
        for (; k < ng; k++) {
            if (rt_forward_run(f, &s2, 1, NULL, last) != HS_OK) break;
            seq[T + k] = rt_argmax(last, V);
            s2.ids = seq + T + k; s2.n = 1;
        }
        TL_CHECK(k == ng && memcmp(seq + T, greedy, (size_t)ng * sizeof(int)) == 0,
                 "%s p%d: %d greedy ids via KV cache equal HF generate", name, pi, ng);
        free(seq); free(greedy); rt_kv_cache_free(&kv);
    }
out:
    free(last); free(ids);
    rt_forward_free(f);
    rt_cache_free(&cache);
}

/* Both prompts in one ragged batch must give each prompt's own last-position logits. */
static void check_batch(const char *name, rt_model *m, const cJSON *prompts) {
    int V = m->cfg.vocab_size, n0 = 0, n1 = 0;
    int *a = fx_ints(cJSON_GetArrayItem(prompts, 0), "ids", &n0), *b = fx_ints(cJSON_GetArrayItem(prompts, 1), "ids", &n1);
    rt_forward *f = rt_forward_init(m);
    float *single = hs_xmalloc(2 * (size_t)V * sizeof(float)), *both = hs_xmalloc(2 * (size_t)V * sizeof(float));
    rt_seq s0 = { a, n0, NULL }, s1 = { b, n1, NULL };
    rt_forward_run(f, &s0, 1, NULL, single);
    rt_forward_run(f, &s1, 1, NULL, single + V);
    rt_seq sb[2] = { s0, s1 };
    rt_forward_run(f, sb, 2, NULL, both);
    double d = 0;
    for (int j = 0; j < 2 * V; j++) { double x = fabs(single[j] - both[j]); if (x > d) d = x; }
    TL_CHECK(d <= 1e-4, "%s: batch of 2 prompts (T=%d,%d) equals separate runs (max diff %.2e)", name, n0, n1, d);
    free(single); free(both); free(a); free(b);
    rt_forward_free(f);
}

int main(void) {
    for (size_t i = 0; i < sizeof k_models / sizeof *k_models; i++) {
        const ref_model *rm = &k_models[i];
        const char *path = rm->shared ? tl_shared_path(rm->path) : rm->path;
        if (!path) { tl_skip("%s: ../shared is missing", rm->name); continue; }
        char refp[256]; snprintf(refp, sizeof refp, "tests/fixtures/ref/%s.json", rm->name);
        cJSON *ref = fx_load(refp);
        rt_model *m = NULL;
        if (!ref || rt_model_load(path, &m) != HS_OK) { tl_fail("%s: load model and reference", rm->name); cJSON_Delete(ref); continue; }
        const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(ref, "prompts");
        for (int p = 0; p < cJSON_GetArraySize(prompts); p++) check_prompt(rm->name, m, cJSON_GetArrayItem(prompts, p), p);
        check_batch(rm->name, m, prompts);
        rt_model_free(m);
        cJSON_Delete(ref);
    }
    return tl_done();
}
