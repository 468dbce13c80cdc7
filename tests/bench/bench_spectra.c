/* bench_spectra.c — the spectra pass at GPT-2-small shapes (L=12, H=12, D=768, HD=64, d_mlp=3072),
 * random-init weights built in memory (seeded Gaussian, GPT-2's init: std 0.02, residual projections
 * 0.02/√(2L); no file), each figure next to a baseline measured in the same run (2 shared cores: noisy).
 *
 *   pass      an_spectra_run on the whole model: 84 per-layer + 576 per-head matrices, each with its
 *             ESD, MP fit, power law, norms, shuffled null (5 replicas under 100 eigenvalues, as
 *             WeightWatcher) and JSON. Target <= 10 s.
 *   baseline  what a direct port of WeightWatcher would spend on LAPACK alone for the same matrices:
 *             LAPACKE_sgesdd (values only, fp32: WeightWatcher's svd_vals) of every single matrix, and of
 *             every W_QK / W_OV formed densely (sgemm D×r×D, then a D×D sgesdd) — once for the ESD and
 *             again for each null replica. The per-layer part is timed on one layer and the per-head
 *             part on 4 heads, both extrapolated to the model (a full run would take minutes).
 * The pass's ESDs are exact (double Grams, products through thin QRs); the baseline is the cheapest
 * dense equivalent, so the ratio is what the factored design buys. argv[1] (headscope) is ignored.
 */
#include "analysis/spectra.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

enum { L = 12, H = 12, D = 768, HD = 64, F = 3072 };

static uint64_t g_s = 12345;
static double urand(void) {
    uint64_t z = (g_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; z ^= z >> 31;
    return ((z >> 11) + 0.5) * 0x1.0p-53;
}
static float *gauss(size_t n, double std) {
    float *a = malloc(n * sizeof *a);
    if (!a) { perror("malloc"); exit(2); }
    for (size_t i = 0; i < n; i++) a[i] = (float)(std * sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()));
    return a;
}

/* GPT-2 layout: fused c_attn (D, 3D), c_proj (D, D), c_fc (D, F), c_proj (F, D), all Conv1D (in_major). */
static rt_model *make_model(void) {
    rt_model *m = calloc(1, sizeof *m);
    rt_config *c = &m->cfg;
    snprintf(c->model_type, sizeof c->model_type, "gpt2");
    c->arch = RT_ARCH_GPT2; c->format = RT_FORMAT_HF; c->norm = RT_NORM_LAYER;
    c->n_layers = L; c->n_heads = H; c->n_kv_heads = H; c->d_model = D; c->d_head = HD; c->d_mlp = F;
    c->vocab_size = 50257; c->n_ctx = 1024;
    m->path = "synthetic-gpt2-small (random init)";
    m->layers = calloc(L, sizeof *m->layers);
    double proj = 0.02 / sqrt(2.0 * L);
    for (int l = 0; l < L; l++) {
        rt_layer *ly = &m->layers[l];
        ly->qkv = (rt_linear){ gauss((size_t)D * 3 * D, 0.02), NULL, D, 3 * D, true };
        ly->o = (rt_linear){ gauss((size_t)D * D, proj), NULL, D, D, true };
        ly->up = (rt_linear){ gauss((size_t)D * F, 0.02), NULL, D, F, true };
        ly->down = (rt_linear){ gauss((size_t)F * D, proj), NULL, F, D, true };
    }
    return m;
}

static void free_model(rt_model *m) {
    for (int l = 0; l < L; l++) {
        rt_layer *ly = &m->layers[l];
        free((void *)ly->qkv.w); free((void *)ly->o.w); free((void *)ly->up.w); free((void *)ly->down.w);
    }
    free(m->layers); free(m);
}

/* values-only sgesdd of a (rows, cols) copy; returns seconds */
static double sgesdd_time(const float *w, int rows, int cols, float *buf, float *s) {
    memcpy(buf, w, (size_t)rows * cols * sizeof *w);
    double t = now();
    LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'N', rows, cols, buf, cols, s, NULL, cols, NULL, cols);
    return now() - t;
}

/* D×D product of a (D, r) and bᵀ (b (D, r)), formed with sgemm, then sgesdd: the dense W_QK route */
static double dense_product_time(const float *a, int lda, const float *b, int ldb, int r, float *p, float *s) {
    double t = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, D, D, r, 1.0f, a, lda, b, ldb, 0.0f, p, D);
    LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'N', D, D, p, D, s, NULL, D, NULL, D);
    return now() - t;
}

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    hs_log_quiet(true);
    openblas_set_num_threads(2);   /* the machine's two cores, for the pass and the baseline alike */
    printf("building GPT-2-small-shaped random weights (L=%d, H=%d, D=%d, HD=%d, d_mlp=%d) ...\n", L, H, D, HD, F);
    fflush(stdout);
    rt_model *m = make_model();

    /* baseline: one layer's per-layer matrices + 4 heads' per-head matrices, dense, then extrapolate */
    float *buf = malloc((size_t)D * F * sizeof *buf), *s = malloc((size_t)F * sizeof *s), *p = malloc((size_t)D * D * sizeof *p);
    float *wq = malloc((size_t)D * D * sizeof *wq), *wk = malloc((size_t)D * D * sizeof *wk), *wv = malloc((size_t)D * D * sizeof *wv);
    const rt_layer *ly = &m->layers[0];
    for (int i = 0; i < D; i++) {   /* split c_attn's (D, 3D) rows into W_Q | W_K | W_V */
        memcpy(wq + (size_t)i * D, ly->qkv.w + (size_t)i * 3 * D, D * sizeof *wq);
        memcpy(wk + (size_t)i * D, ly->qkv.w + (size_t)i * 3 * D + D, D * sizeof *wk);
        memcpy(wv + (size_t)i * D, ly->qkv.w + (size_t)i * 3 * D + 2 * D, D * sizeof *wv);
    }
    sgesdd_time(wq, D, D, buf, s);   /* warm-up: OpenBLAS threads, page faults */
    double t_layer = sgesdd_time(wq, D, D, buf, s) + sgesdd_time(wk, D, D, buf, s) + sgesdd_time(wv, D, D, buf, s) +
                     sgesdd_time(ly->o.w, D, D, buf, s) + sgesdd_time(ly->up.w, D, F, buf, s) + sgesdd_time(ly->down.w, F, D, buf, s) +
                     dense_product_time(wq, D, wk, D, D, p, s);
    const int nh = 4;
    double t_heads = 0;
    float *ot = malloc((size_t)D * HD * sizeof *ot), *hq = malloc((size_t)D * HD * sizeof *hq);
    for (int h = 0; h < nh; h++) {
        for (int i = 0; i < D; i++) memcpy(hq + (size_t)i * HD, wq + (size_t)i * D + h * HD, HD * sizeof *hq);
        for (int i = 0; i < HD; i++)
            for (int j = 0; j < D; j++) ot[(size_t)j * HD + i] = ly->o.w[(size_t)(h * HD + i) * D + j];
        t_heads += sgesdd_time(hq, D, HD, buf, s);
        for (int i = 0; i < D; i++) memcpy(hq + (size_t)i * HD, wk + (size_t)i * D + h * HD, HD * sizeof *hq);
        t_heads += sgesdd_time(hq, D, HD, buf, s);
        t_heads += dense_product_time(wq + h * HD, D, wk + h * HD, D, HD, p, s);
        t_heads += dense_product_time(wv + h * HD, D, ot, HD, HD, p, s);
    }
    /* the null: one replica of each per-layer matrix (≥ 100 eigenvalues), five of each per-head one */
    double base = L * t_layer * 2 + (double)L * H / nh * t_heads * (1 + 5);
    free(ot); free(hq); free(wq); free(wk); free(wv); free(buf); free(s); free(p);

    an_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.m = m;
    memset(ctx.sha256, '0', 64);
    an_spectra_params prm;
    an_spectra_defaults(&prm);
    const char *out = "/tmp/bench_spectra_report.json";
    double best = 1e30, best_cpu = 0;
    for (int rep = 0; rep < 2; rep++) {
        ctx.t0 = an_now();
        double t = now(), c = cpu();
        if (an_spectra_run(&ctx, &prm, out) != HS_OK) { printf("spectra pass failed\n"); return 1; }
        t = now() - t; c = cpu() - c;
        if (t < best) { best = t; best_cpu = c; }
    }
    remove(out);
    printf("spectra   all %d layers + %d heads (660 matrices, ESD + MP fit + power law + null + JSON): %6.2f s wall, "
           "%.2f s CPU on 2 OpenBLAS threads (target <= 10 s)\n", L, L * H, best, best_cpu);
    printf("baseline  dense fp32 sgesdd of the same matrices and their nulls, W_QK/W_OV formed D x D: %6.2f s "
           "(extrapolated from 1 layer and %d heads)\n", base, nh);
    printf("ratio     baseline / pass = %.1fx\n", base / best);
    free_model(m);
    return 0;
}
