/* bench_svd.c — the svd and composition passes at GPT-2-small shapes (L=12, H=12, D=768, HD=64,
 * V=50257), random-init weights built in memory (uniform, std 0.02; no file), each figure next to a
 * baseline measured in the same run (these 2-core machines are shared and noisy):
 *
 *   svd          an_svd_compute: the OV, QK and bias-augmented QK SVDs of all 144 heads (432 factored
 *                SVDs). Target <= 2 s. Baseline: the explicit D×D circuit (sgemm) and a full D×D
 *                LAPACKE_sgesdd, values only (the cheapest dense SVD), timed on 4 circuits (best of
 *                2 each) and extrapolated to the 288 OV + QK circuits (a full run would take minutes).
 *   svd + tokens an_svd_build: the above plus the top-3 directions' token lists through W_E and W_U
 *                (one (V, D)·(D, 108) and one (V, D)·(D, 36) SGEMM per layer) and the JSON.
 *   composition  an_composition_compute: all 144×144×3 scores (28,512 valid pairs), the 200-sample
 *                null and the edges. Target <= 5 s. Baseline: the definition on explicit D×D matrices
 *                (one D×D×D sgemm per pair), the best of 3 pairs extrapolated to 28,512.
 *                Ceiling: the pass's block-GEMM flops at the rate of a square 2048³ sgemm in this run;
 *                the null's share from a 1-layer pass with 200 vs 2 samples.
 * Each pass figure is the best of 3. argv[1] (the headscope binary) is ignored.
 */
#include "analysis/lowrank.h"
#include "analysis/weights.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

enum { L = 12, H = 12, D = 768, HD = 64, V = 50257 };

static uint64_t g_s = 1;
static float urand(void) {   /* uniform on ±0.02·√3: std 0.02, GPT-2's init scale */
    uint64_t z = (g_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; z ^= z >> 31;
    return (float)(((z >> 11) * 0x1.0p-53 * 2 - 1) * 0.02 * 1.7320508);
}
static float *fill(size_t n, float c) {
    float *a = malloc(n * sizeof(float));
    if (!a) { perror("malloc"); exit(2); }
    for (size_t i = 0; i < n; i++) a[i] = isnan(c) ? urand() : c;
    return a;
}

/* A GPT-2-shaped model in memory: fused c_attn (D, 3D) and c_proj (D, D) in Conv1D layout, LayerNorm
 * with gain 1 and bias 0, tied embeddings. Only what the weight passes read is set. */
static rt_model *make_model(void) {
    rt_model *m = calloc(1, sizeof *m);
    rt_config *c = &m->cfg;
    snprintf(c->model_type, sizeof c->model_type, "gpt2");
    c->arch = RT_ARCH_GPT2; c->norm = RT_NORM_LAYER; c->format = RT_FORMAT_HF;
    c->n_layers = L; c->n_heads = H; c->n_kv_heads = H; c->d_model = D; c->d_head = HD; c->d_mlp = 4 * D;
    c->vocab_size = V; c->n_ctx = 1024; c->norm_eps = 1e-5f; c->tied_embeddings = true; c->bos_id = c->eos_id = -1;
    m->path = "synthetic-gpt2-small";
    m->layers = calloc(L, sizeof *m->layers);
    for (int l = 0; l < L; l++) {
        rt_layer *ly = &m->layers[l];
        rt_linear qkv = { fill((size_t)D * 3 * D, NAN), fill(3 * D, NAN), D, 3 * D, true };
        rt_linear o = { fill((size_t)D * D, NAN), fill(D, NAN), D, D, true };
        ly->qkv = qkv; ly->o = o;
        ly->ln1.w = fill(D, 1); ly->ln1.b = fill(D, 0);
    }
    m->tok_embed = fill((size_t)V * D, NAN);
    rt_linear head = { m->tok_embed, NULL, D, V, false };
    m->lm_head = head;
    m->ln_final.w = fill(D, 1); m->ln_final.b = fill(D, 0);
    return m;
}

static void free_model(rt_model *m) {
    for (int l = 0; l < L; l++) {
        rt_layer *ly = &m->layers[l];
        free((void *)ly->qkv.w); free((void *)ly->qkv.b); free((void *)ly->o.w); free((void *)ly->o.b);
        free((void *)ly->ln1.w); free((void *)ly->ln1.b);
    }
    free(m->layers); free((void *)m->tok_embed); free((void *)m->ln_final.w); free((void *)m->ln_final.b);
    free(m);
}

/* Seconds for one dense circuit: the D×D product (sgemm) and its full SVD, values only. */
static double dense_svd_circuit(const rt_model *m, int l, int h, bool qk) {
    an_mat a, b, p;
    an_head_matrix(m, l, h, qk ? AN_W_Q : AN_W_V, &a);
    if (qk) { an_mat k; an_head_matrix(m, l, h, AN_W_K, &k); an_transpose(&k, &b); an_mat_free(&k); }
    else an_head_matrix(m, l, h, AN_W_O, &b);
    float s[D];
    double t0 = now();
    an_matmul(&a, &b, &p);
    lapack_int info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'N', D, D, p.w, D, s, NULL, 1, NULL, 1);   /* σ(Pᵀ) = σ(P) */
    double t = now() - t0;
    if (info != 0) { fprintf(stderr, "sgesdd failed (%d)\n", (int)info); exit(2); }
    an_mat_free(&a); an_mat_free(&b); an_mat_free(&p);
    return t;
}

/* Seconds for one dense composition score: OV_A·M_B as a D×D×D sgemm plus the three norms
 * (the circuits are formed outside the timer, in the baseline's favour). */
static double dense_comp_pair(void) {
    float *A = fill((size_t)D * D, NAN), *B = fill((size_t)D * D, NAN), *C = fill((size_t)D * D, 0);
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, D, D, D, 1.0f, A, D, B, D, 0.0f, C, D);
    double s = cblas_snrm2(D * D, C, 1) / (cblas_snrm2(D * D, A, 1) * cblas_snrm2(D * D, B, 1));
    double t = now() - t0;
    if (!(s >= 0)) exit(2);
    free(A); free(B); free(C);
    return t;
}

static double square_sgemm_gflops(void) {
    int n = 2048;
    float *A = fill((size_t)n * n, NAN), *B = fill((size_t)n * n, NAN), *C = fill((size_t)n * n, 0);
    double best = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        best = fmin(best, now() - t0);
    }
    free(A); free(B); free(C);
    return 2.0 * n * n * n / best / 1e9;
}

int main(int argc, char **argv) {
    (void)argc; (void)argv;
    hs_log_quiet(true);
    double t0 = now();
    rt_model *m = make_model();
    printf("synthetic GPT-2 small (L=%d H=%d D=%d HD=%d V=%d) built in %.2f s; OpenBLAS threads: %d\n", L, H, D, HD, V,
           now() - t0, openblas_get_num_threads());

    /* svd */
    an_svd_params sp;
    an_svd_defaults(&sp);
    double t_svd = INFINITY, t_full = INFINITY;
    for (int r = 0; r < 3; r++) {
        an_svd_result res;
        t0 = now();
        if (an_svd_compute(m, &sp, &res) != HS_OK) return 2;
        t_svd = fmin(t_svd, now() - t0);
        an_svd_result_free(&res);
    }
    double t_dense = 0;   /* per circuit: the best of 2 timings (as the passes: the least disturbed) */
    int n_dense = 0;
    for (int i = 0; i < 2; i++) {
        t_dense += fmin(dense_svd_circuit(m, 5 * i, i, false), dense_svd_circuit(m, 5 * i, i, false));
        t_dense += fmin(dense_svd_circuit(m, 5 * i + 1, i + 2, true), dense_svd_circuit(m, 5 * i + 1, i + 2, true));
        n_dense += 2;
    }
    double dense_all = t_dense / n_dense * 2 * L * H;
    printf("svd          %6.3f s  all OV + QK + augmented-QK singular values (432 factored SVDs)         target <= 2 s\n", t_svd);
    printf("  baseline   %6.1f s  dense D×D sgemm + sgesdd (values only) for the 288 OV + QK circuits,\n"
           "                        extrapolated from %d circuits (best of 2: %.3f s each)          ratio %.0fx faster\n",
           dense_all, n_dense, t_dense / n_dense, dense_all / t_svd);
    for (int r = 0; r < 3; r++) {
        cJSON *root = cJSON_CreateObject();
        t0 = now();
        if (an_svd_build(m, NULL, &sp, root) != HS_OK) return 2;
        char *txt = cJSON_PrintUnformatted(root);
        t_full = fmin(t_full, now() - t0);
        if (r == 0) printf("svd + tokens %6.3f s  + top-3 directions' %d-token lists through W_E/W_U (V=%d) and the JSON (%.1f MB)\n",
                           now() - t0, sp.top, V, strlen(txt) / 1e6);
        free(txt);
        cJSON_Delete(root);
    }
    printf("  best of 3  %6.3f s  (%.1fx the SVDs alone: the vocabulary GEMMs dominate)\n", t_full, t_full / t_svd);

    /* composition */
    an_composition_params cp;
    an_composition_defaults(&cp);
    double t_comp = INFINITY;
    int n_edges = 0;
    for (int r = 0; r < 3; r++) {
        an_composition_result res;
        t0 = now();
        if (an_composition_compute(m, &cp, &res) != HS_OK) return 2;
        t_comp = fmin(t_comp, now() - t0);
        n_edges = res.n_edges;
        an_composition_result_free(&res);
    }
    /* the null's share, measured where nothing else dominates: the same pass on layer 0 alone (no
     * pairs; 12 heads' factors) with 200 and with 2 null samples, best of 3 each */
    double t_null[2] = { INFINITY, INFINITY };
    m->cfg.n_layers = 1;
    for (int r = 0; r < 6; r++) {
        an_composition_params q = cp;
        q.null_samples = r % 2 ? 2 : cp.null_samples;
        an_composition_result res;
        t0 = now();
        if (an_composition_compute(m, &q, &res) != HS_OK) return 2;
        t_null[r % 2] = fmin(t_null[r % 2], now() - t0);
        an_composition_result_free(&res);
    }
    m->cfg.n_layers = L;
    double pairs = (double)H * H * L * (L - 1) / 2 * 3;
    double t_pair = fmin(dense_comp_pair(), fmin(dense_comp_pair(), dense_comp_pair()));
    double gemm_flop = 0;
    for (int l = 0; l < L; l++) gemm_flop += 2.0 * (H * HD) * D * (3.0 * H * HD) * (L - 1 - l);
    double peak = square_sgemm_gflops();
    printf("composition  %6.3f s  all %.0f Q/K/V scores + %d-sample null + edges (%d edges at z >= %.0f)  target <= 5 s\n",
           t_comp, pairs, cp.null_samples, n_edges, cp.threshold);
    printf("  baseline   %6.0f s  dense D×D×D sgemm per pair, extrapolated from the best of 3 pairs (%.3f s)  ratio %.0fx faster\n",
           t_pair * pairs, t_pair, t_pair * pairs / t_comp);
    printf("  null       %6.3f s  of it is the %d-sample null (a 1-layer pass with %d vs 2 samples)\n",
           t_null[0] - t_null[1], cp.null_samples, cp.null_samples);
    printf("  ceiling    %6.3f s  the pass's %.0f GFLOP of block GEMMs at this run's square-sgemm rate (%.0f GFLOP/s)\n",
           gemm_flop / 1e9 / peak, gemm_flop / 1e9, peak);
    free_model(m);
    return 0;
}
