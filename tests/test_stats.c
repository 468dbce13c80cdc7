/* test_stats.c — the online per-head statistics against a brute-force computation.
 *
 * The reference builds TransformerLens's detection matrices (previous-token, duplicate-token,
 * induction) explicitly and evaluates every metric with its own loops over full matrices, on
 * random causal patterns and on real patterns of the shared models (recorded through hooks),
 * including a KV-cached second chunk (pos0 > 0).
 */
#include "testlib.h"
#include "probe/stats.h"
#include "runtime/forward.h"
#include "runtime/intervene.h"

static uint64_t g_rng = 88172645463325252ull;
static double urand(void) { g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17; return (g_rng >> 11) * (1.0 / 9007199254740992.0); }

/* Brute force on a full causal pattern P (T, T) of tokens tok (T): means over queries i >= 1. */
static void brute(const float *P, int T, const int *tok, double out[PROBE_M_N], bool *rep) {
    double *dup = calloc((size_t)T * T, sizeof(double)), *ind = calloc((size_t)T * T, sizeof(double));
    *rep = false;
    for (int i = 0; i < T; i++) for (int j = 0; j < i; j++) if (tok[i] == tok[j]) { dup[i * T + j] = 1; *rep = true; }
    for (int i = 0; i < T; i++) for (int j = 1; j <= i; j++) ind[i * T + j] = dup[i * T + j - 1];   /* roll right, tril */
    memset(out, 0, PROBE_M_N * sizeof(double));
    for (int i = 1; i < T; i++) {
        double e = 0, mx = 0, d = 0, du = 0, in = 0;
        for (int j = 0; j < T; j++) {
            double p = P[i * T + j];
            if (p > 0) e -= p * log(p);
            if (p > mx) mx = p;
            d += p * abs(i - j); du += p * dup[i * T + j]; in += p * ind[i * T + j];
        }
        out[PROBE_M_ENTROPY] += e; out[PROBE_M_MAX_WEIGHT] += mx; out[PROBE_M_BOS_MASS] += P[i * T];
        out[PROBE_M_SELF] += P[i * T + i]; out[PROBE_M_PREV_TOKEN] += P[i * T + i - 1]; out[PROBE_M_DISTANCE] += d;
        out[PROBE_M_DUPLICATE] += du; out[PROBE_M_INDUCTION] += in;
    }
    for (int m = 0; m < PROBE_M_N; m++) out[m] /= (T - 1);
    free(dup); free(ind);
}

static double compare(const float *P, int T, const int *tok, const char *what) {
    double ref[PROBE_M_N]; bool rep;
    brute(P, T, tok, ref, &rep);
    uint8_t seen[1 << 10] = {0};
    bool rep2 = probe_has_repeat(tok, T, seen);
    probe_head_sums acc = {0};
    probe_head_stats(P, T, T, 0, tok, rep2, &acc);
    double worst = rep == rep2 ? 0 : INFINITY;
    for (int m = 0; m < PROBE_M_N; m++) {
        double v = probe_sums_mean(&acc, (probe_metric)m);
        if ((m == PROBE_M_DUPLICATE || m == PROBE_M_INDUCTION) && !rep) { if (!isnan(v)) worst = INFINITY; continue; }
        double e = fabs(v - ref[m]) / (fabs(ref[m]) > 1 ? fabs(ref[m]) : 1);
        if (e > worst || e != e) worst = e;
    }
    (void)what;
    return worst;
}

int main(void) {
    /* random causal patterns with repeated tokens */
    double worst = 0;
    for (int trial = 0; trial < 50; trial++) {
        int T = 2 + trial % 40, tok[64];
        float P[64 * 64] = {0};
        for (int i = 0; i < T; i++) tok[i] = (int)(urand() * (trial % 3 ? 6 : 1000));
        for (int i = 0; i < T; i++) {
            double s = 0;
            for (int j = 0; j <= i; j++) { P[i * T + j] = (float)pow(urand(), 3); s += P[i * T + j]; }
            for (int j = 0; j <= i; j++) P[i * T + j] = (float)(P[i * T + j] / s);
        }
        double e = compare(P, T, tok, "random");
        if (e > worst) worst = e;
    }
    TL_CHECK(worst <= 1e-6, "50 random causal patterns: every metric equals the brute force (max rel err %.1e; entropy in double with log)", worst);

    /* a KV-cached chunk: rows pos0.. of a longer pattern give the same sums as the full pattern's rows */
    {
        int T = 20, tok[20]; float P[400] = {0};
        for (int i = 0; i < T; i++) tok[i] = i % 7;
        for (int i = 0; i < T; i++) for (int j = 0; j <= i; j++) P[i * T + j] = 1.0f / (i + 1);
        uint8_t seen[16] = {0};
        bool rep = probe_has_repeat(tok, T, seen);
        probe_head_sums full = {0}, a = {0}, b = {0};
        probe_head_stats(P, T, T, 0, tok, rep, &full);
        probe_head_stats(P, 8, T, 0, tok, rep, &a);
        probe_head_stats(P + 8 * T, T - 8, T, 8, tok, rep, &b);
        probe_sums_add(&a, &b);
        double d = 0;
        for (int m = 0; m < PROBE_M_N; m++) d = fmax(d, fabs(probe_sums_mean(&a, m) - probe_sums_mean(&full, m)));
        TL_CHECK(d <= 1e-12, "chunked rows (pos0 = 8) add up to the full pattern's statistics (diff %.1e)", d);
    }

    /* real patterns from the shared models */
    const char *models[2] = { "models/tiny-llama-shakespeare", "models/stories260K/stories260K.bin" };
    for (int k = 0; k < 2; k++) {
        const char *path = tl_shared_path(models[k]);
        rt_model *m;
        if (!path) { tl_skip("%s: ../shared is missing", models[k]); continue; }
        if (rt_model_load(path, &m) != HS_OK) { tl_fail("load %s", path); continue; }
        int T = 48, ids[48];
        for (int i = 0; i < T; i++) ids[i] = i == 0 ? 1 : 3 + (int)((i * 37) % 23);   /* repeats */
        rt_cache cache; rt_cache_init(&cache);
        rt_hook_req r = { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, rt_cache_record, &cache, false };
        rt_hook_spec sp = { &r, 1 };
        rt_forward *f = rt_forward_init(m);
        rt_seq s = { ids, T, NULL };
        rt_forward_run(f, &s, 1, &sp, NULL);
        double w = 0;
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int h = 0; h < m->cfg.n_heads; h++) {
                char name[64]; snprintf(name, sizeof name, "blocks.%d.attn.hook_pattern", l);
                const float *P = rt_cache_get(&cache, name, h, 0, NULL, NULL);
                double e = compare(P, T, ids, name);
                if (e > w) w = e;
            }
        TL_CHECK(w <= 1e-6, "%s: statistics of every head's real pattern equal the brute force (max rel err %.1e)", models[k], w);
        rt_cache_free(&cache); rt_forward_free(f); rt_model_free(m);
    }
    return tl_done();
}
