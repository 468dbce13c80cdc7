/* bench_gpu.c — the GPU runtime's throughput and memory on random-init models of real shapes
 * (issue 4): GPT-2 small (12 × 12 heads, d 768) and Llama-3.2-1B (16 layers, 32 query / 8 KV heads,
 * d 2048, head_dim 64, vocab 128256), batch 8, T = 1024 and 4096.
 *
 * The models are built in memory (seeded uniform weights with the initialiser's scale, never zeros),
 * so nothing large has to travel to the GPU machine; scripts/bench_gpu_hf.py builds the same
 * configurations in transformers on the same GPU, and scripts/bench-gpu.sh prints the ratios.
 * GPT-2's position table is extended to 4096 rows for the T = 4096 runs (same in the HF script).
 *   (a) plain forward, last-position logits, in three bf16 configurations: "bf16" (the default:
 *       hi+lo GEMM inputs, tensor-core attention), "bf16-single" (one bf16 GEMM per linear layer,
 *       tensor-core attention: HF's bf16 numerics) and "bf16-fp32attn" (hi+lo GEMMs, fp32 CUDA-core
 *       attention: the configuration before the tensor-core kernel, for comparison)
 *   (b) forward + on-device statistics of every head (probe_cuda_stats), bf16 and bf16-single: time
 *       and device memory, against the pattern tensor a cache-everything tool materialises (B·L·H·T² bf16)
 *   (c) forward + the full patterns of one layer as f16 blobs in SQLite, as capture writes them
 *       (read-only pattern hook -> page-locked staging -> f16 on the host -> store batch -> writer
 *       thread), T = 1024; where the time goes, from runs that stop after each stage: the
 *       full-matrix attention of the hooked layer + the PCIe copy (a no-op read-only hook), + the f16
 *       encoding, + SQLite (everything, store_writer_finish included). At T = 4096 the first two.
 * Each figure: best of `reps` after one warm-up; tokens/s, achieved TFLOP/s against the H200's
 * ~990 TFLOP/s dense bf16 (and ~67 TFLOP/s fp32 for the fp32-attention configuration).
 * Lines starting with "RESULT" are machine-readable: RESULT <model> <T> <figure> <value>.
 * Without a GPU it prints one skip line and exits 0.
 * --profile: instead of the timings, one forward per shape, T and mode on the profiled ops table
 * (rt_gpu_opts.profile: every kernel and copy timed with CUDA events) and the per-op totals.
 * Usage: bench_gpu [--quick] [--model gpt2|llama] [--reps N] [--profile] [--emulate (toy shapes on the CPU references)]
 */
#include "probe/cuda/probe_cuda_stats.h"
#include "runtime/gpu.h"
#include "runtime/cuda/rt_cuda_ops.h"
#include "runtime/half.h"
#include "store/store.h"
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

typedef struct {
    const char *name;
    rt_arch arch;
    int L, H, KV, D, HD, F, V, n_ctx;
    bool tied;
} shape;

static const shape k_gpt2 = { "gpt2-small", RT_ARCH_GPT2, 12, 12, 12, 768, 64, 3072, 50257, 4096, true };
static const shape k_llama = { "llama-3.2-1b", RT_ARCH_LLAMA, 16, 32, 8, 2048, 64, 8192, 128256, 131072, true };
/* --emulate: the same code on the CPU-reference backend with toy shapes (a smoke test without a GPU) */
static const shape k_gpt2_toy = { "gpt2-toy", RT_ARCH_GPT2, 2, 4, 4, 64, 16, 128, 300, 4096, true };
static const shape k_llama_toy = { "llama-toy", RT_ARCH_LLAMA, 2, 4, 2, 64, 16, 96, 300, 131072, true };
static bool g_emulate, g_profile;

static uint64_t g_rng = 0x243F6A8885A308D3ull;
/* Uniform in [-a, a] with a = std·√3, fast (xorshift). */
static void fill(float *w, size_t n, float std, float mean) {
    float a = std * 1.7320508f;
    for (size_t i = 0; i < n; i++) {
        g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
        w[i] = mean + a * (float)((double)(g_rng >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    }
}

typedef struct { rt_model m; float *block; rt_layer *layers; } bench_model;

/* A model of shape s with random weights; the whole thing is one allocation. */
static bool build(const shape *s, bench_model *bm) {
    memset(bm, 0, sizeof *bm);
    rt_config *c = &bm->m.cfg;
    snprintf(c->model_type, sizeof c->model_type, "%s", s->arch == RT_ARCH_GPT2 ? "gpt2" : "llama");
    c->format = RT_FORMAT_HF; c->arch = s->arch;
    c->norm = s->arch == RT_ARCH_GPT2 ? RT_NORM_LAYER : RT_NORM_RMS;
    c->act = s->arch == RT_ARCH_GPT2 ? RT_ACT_GELU_TANH : RT_ACT_SILU;
    c->n_layers = s->L; c->n_heads = s->H; c->n_kv_heads = s->KV; c->d_model = s->D; c->d_head = s->HD;
    c->d_mlp = s->F; c->vocab_size = s->V; c->n_ctx = s->n_ctx; c->norm_eps = 1e-5f; c->rope_theta = 500000.0f;
    c->tied_embeddings = s->tied; c->bos_id = 1; c->eos_id = 2;
    size_t D = s->D, F = s->F, QD = (size_t)s->H * s->HD, KD = (size_t)s->KV * s->HD;
    size_t per_layer = 4 * D + (s->arch == RT_ARCH_GPT2 ? D * 3 * D + 3 * D + D * D + D + D * F + F + F * D + D
                                                         : D * QD + 2 * D * KD + QD * D + 3 * D * F);
    size_t total = (size_t)s->V * D + (s->arch == RT_ARCH_GPT2 ? (size_t)s->n_ctx * D : 0) + per_layer * s->L + 2 * D;
    bm->block = malloc(total * sizeof(float));
    bm->layers = calloc((size_t)s->L, sizeof(rt_layer));
    if (!bm->block || !bm->layers) { fprintf(stderr, "bench_gpu: cannot allocate %.1f GiB of host memory\n", total * 4.0 / (1 << 30)); return false; }
    float *p = bm->block;
#define TAKE(n) (p += (n), p - (n))
    bm->m.tok_embed = TAKE((size_t)s->V * D); fill((float *)bm->m.tok_embed, (size_t)s->V * D, 0.02f, 0);
    if (s->arch == RT_ARCH_GPT2) { bm->m.pos_embed = TAKE((size_t)s->n_ctx * D); fill((float *)bm->m.pos_embed, (size_t)s->n_ctx * D, 0.01f, 0); }
    for (int l = 0; l < s->L; l++) {
        rt_layer *L = &bm->layers[l];
        float *w;
        L->ln1.w = w = TAKE(D); fill(w, D, 0.05f, 1);
        L->ln2.w = w = TAKE(D); fill(w, D, 0.05f, 1);
        if (s->arch == RT_ARCH_GPT2) {
            L->ln1.b = w = TAKE(D); fill(w, D, 0.02f, 0);
            L->ln2.b = w = TAKE(D); fill(w, D, 0.02f, 0);
            L->qkv = (rt_linear){ w = TAKE(D * 3 * D), NULL, (int)D, (int)(3 * D), true }; fill(w, D * 3 * D, 0.02f, 0);
            L->qkv.b = w = TAKE(3 * D); fill(w, 3 * D, 0.02f, 0);
            L->o = (rt_linear){ w = TAKE(D * D), NULL, (int)D, (int)D, true }; fill(w, D * D, 0.02f, 0);
            L->o.b = w = TAKE(D); fill(w, D, 0.02f, 0);
            L->up = (rt_linear){ w = TAKE(D * F), NULL, (int)D, (int)F, true }; fill(w, D * F, 0.02f, 0);
            L->up.b = w = TAKE(F); fill(w, F, 0.02f, 0);
            L->down = (rt_linear){ w = TAKE(F * D), NULL, (int)F, (int)D, true }; fill(w, F * D, 0.02f, 0);
            L->down.b = w = TAKE(D); fill(w, D, 0.02f, 0);
        } else {
            p += 2 * D;   /* keep the per-layer count above exact */
            L->q = (rt_linear){ w = TAKE(D * QD), NULL, (int)D, (int)QD, false }; fill(w, D * QD, 0.02f, 0);
            L->k = (rt_linear){ w = TAKE(D * KD), NULL, (int)D, (int)KD, false }; fill(w, D * KD, 0.02f, 0);
            L->v = (rt_linear){ w = TAKE(D * KD), NULL, (int)D, (int)KD, false }; fill(w, D * KD, 0.02f, 0);
            L->o = (rt_linear){ w = TAKE(QD * D), NULL, (int)QD, (int)D, false }; fill(w, QD * D, 0.02f, 0);
            L->gate = (rt_linear){ w = TAKE(D * F), NULL, (int)D, (int)F, false }; fill(w, D * F, 0.02f, 0);
            L->up = (rt_linear){ w = TAKE(D * F), NULL, (int)D, (int)F, false }; fill(w, D * F, 0.02f, 0);
            L->down = (rt_linear){ w = TAKE(F * D), NULL, (int)F, (int)D, false }; fill(w, F * D, 0.02f, 0);
        }
    }
    float *w;
    bm->m.ln_final.w = w = TAKE(D); fill(w, D, 0.05f, 1);
    if (s->arch == RT_ARCH_GPT2) { bm->m.ln_final.b = w = TAKE(D); fill(w, D, 0.02f, 0); }
#undef TAKE
    bm->m.layers = bm->layers;
    bm->m.lm_head = (rt_linear){ bm->m.tok_embed, NULL, (int)D, s->V, false };
    return true;
}

/* Dense FLOPs of one forward over N tokens (GEMMs; logits for n_seqs rows) and attention (causal). */
static double gemm_flops(const shape *s, double N, double n_seqs) {
    double D = s->D, F = s->F, QD = (double)s->H * s->HD, KD = (double)s->KV * s->HD;
    double per_tok = s->arch == RT_ARCH_GPT2 ? D * 3 * D + D * D + 2 * D * F : D * QD + 2 * D * KD + QD * D + 3 * D * F;
    return 2.0 * N * per_tok * s->L + 2.0 * n_seqs * D * s->V;
}
static double attn_flops(const shape *s, double B, double T) {
    return 4.0 * B * s->L * s->H * (T * (T + 1) / 2) * s->HD;
}

typedef struct { uint16_t *buf; size_t cap; double bytes; } f16_sink;
static void encode_f16(const rt_hook_event *ev, void *user) {   /* what the store does with a pattern */
    f16_sink *k = user;
    size_t n = (size_t)ev->rows * ev->cols;
    if (n > k->cap) { free(k->buf); k->buf = malloc(n * sizeof(uint16_t)); k->cap = n; }
    if (!k->buf) return;
    rt_f32_to_f16_array(k->buf, ev->data, n);
    k->bytes += (double)n * 2;
}

static void noop_hook(const rt_hook_event *ev, void *user) { (void)ev; (void)user; }

/* (c) into SQLite: one store batch per forward (its prompts and the layer's pattern blobs). */
typedef struct { f16_sink enc; store_batch *b; int base; } db_sink;
static void to_store(const rt_hook_event *ev, void *user) {
    db_sink *k = user;
    encode_f16(ev, &k->enc);
    int dims[2] = { ev->rows, ev->cols };
    store_batch_add_activation(k->b, k->base + ev->seq, ev->name, ev->layer, ev->head, ev->pos0, ev->pos0 + ev->rows, STORE_F16, dims, 2,
                               k->enc.buf, (size_t)ev->rows * ev->cols * 2);
}
static double run_store(rt_gpu *g, const rt_gpu_seq *sq, int B, int layer, int forwards, double *mib_out) {
    char path[] = "/tmp/hs-bench-gpu-XXXXXX", db_path[600], cmd[700];
    if (!mkdtemp(path)) return -1;
    snprintf(db_path, sizeof db_path, "%s/c.db", path);
    store_db *db = NULL; store_writer *w = NULL; int64_t model, run;
    db_sink k = { { NULL, 0, 0 }, NULL, 0 };
    rt_hook_req rq = { RT_HOOK_PATTERN, &layer, 1, NULL, 0, 0, 0, to_store, &k, true };
    rt_hook_spec spec = { &rq, 1 };
    int T = sq[0].n;
    const char **strs = malloc((size_t)T * sizeof *strs);
    for (int t = 0; t < T; t++) strs[t] = "t";
    double t0 = now(), t = -1;
    if (store_open(db_path, false, &db) || store_model_put(db, "/bench/gpu", "hf", "{}", NULL, &model) ||
        store_run_begin(db, model, "{}", &run) || store_writer_start(db, (size_t)1 << 30, &w)) goto out;
    for (int f = 0; f < forwards; f++) {
        k.b = store_batch_new(run);
        for (int s = 0; s < B; s++) store_batch_add_prompt(k.b, f * B + s, "bench", sq[s].ids, strs, T);
        k.base = f * B;   /* the hook's ev->seq is the batch row */
        if (rt_gpu_forward_run(g, sq, B, &spec, NULL) != HS_OK) { store_batch_free(k.b); goto out; }
        if (store_writer_submit(w, k.b)) goto out;
    }
    if (store_writer_finish(w) == HS_OK) t = now() - t0;
    w = NULL;
out:
    if (w) store_writer_finish(w);
    store_close(db);
    *mib_out = k.enc.bytes / (1 << 20);
    free(k.enc.buf); free(strs);
    snprintf(cmd, sizeof cmd, "rm -rf %s", path);
    if (system(cmd)) {}
    return t;
}

static double run_best(rt_gpu *g, const rt_gpu_seq *sq, int B, const rt_hook_spec *spec, float *logits, int reps,
                       probe_cuda_stats *st, int *const *ids, const int *nid, const bool *rep) {
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {   /* r = 0: warm-up */
        double t0 = now();
        if (st && probe_cuda_stats_begin(st, B, (const int *const *)ids, nid, rep) != HS_OK) return -1;
        if (rt_gpu_forward_run(g, sq, B, spec, logits) != HS_OK) return -1;
        if (st) {
            static probe_head_sums sums[8 * 16 * 32];
            if (probe_cuda_stats_end(st, sums) != HS_OK) return -1;
        }
        double t = now() - t0;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

static int bench_shape(const shape *s, const int *Ts, int nT, int reps) {
    bench_model bm;
    printf("== %s: L=%d H=%d KV=%d D=%d HD=%d F=%d V=%d (building random weights...)\n", s->name, s->L, s->H, s->KV, s->D,
           s->HD, s->F, s->V);
    fflush(stdout);
    double t0 = now();
    if (!build(s, &bm)) return 1;
    printf("   host weights ready in %.1f s\n", now() - t0);
    const int B = 8;
    int rc = 0;
    static const char *const mnames[3] = { "bf16", "bf16-single", "bf16-fp32attn" };
    for (int mode = 0; mode < 3; mode++) {
        rt_gpu_opts o; rt_gpu_opts_default(&o);
        o.bf16_single_pass = mode == 1;
        o.attn_fp32 = mode == 2;
        o.emulate = g_emulate;
        o.profile = g_profile;
        const char *mname = mnames[mode];
        rt_gpu *g = NULL;
        t0 = now();
        if (rt_gpu_init(&bm.m, &o, &g) != HS_OK) { rc = 1; break; }
        printf("   [%s] upload + conversion %.1f s, weights on device %.0f MiB\n", mname, now() - t0,
               (double)rt_gpu_device_bytes(g) / (1 << 20));
        for (int ti = 0; ti < nT; ti++) {
            int T = Ts[ti];
            int *ids[8], nid[8];
            bool rep[8];
            rt_gpu_seq sq[8];
            for (int b = 0; b < B; b++) {
                ids[b] = malloc((size_t)T * sizeof(int)); nid[b] = T; rep[b] = true;
                for (int i = 0; i < T; i++) ids[b][i] = (int)((i * 7919u + b * 104729u) % (unsigned)s->V);
                sq[b] = (rt_gpu_seq){ ids[b], T, NULL };
            }
            float *logits = malloc((size_t)B * s->V * sizeof(float));
            if (g_profile) {   /* one warm-up forward, then one profiled forward */
                char title[128];
                double tp = -1;
                if (rt_gpu_forward_run(g, sq, B, NULL, logits) == HS_OK) {
                    rt_cuda_profile_reset();
                    double t0p = now();
                    if (rt_gpu_forward_run(g, sq, B, NULL, logits) == HS_OK) tp = now() - t0p;
                }
                snprintf(title, sizeof title, "%s T=%d %s forward (%.1f ms with a wait after every op)", s->name, T, mname, tp * 1e3);
                rt_cuda_profile_report(stdout, title);
                goto next;
            }
            double N = (double)B * T, gf = gemm_flops(s, N, B) * (mode == 1 ? 1 : 2), af = attn_flops(s, B, T);
            double peak_attn = mode == 2 ? 67e12 : 990e12;
            double ta = run_best(g, sq, B, NULL, logits, reps, NULL, NULL, NULL, NULL);
            if (ta < 0) { rc = 1; goto next; }
            printf("   [%s] T=%d (a) forward: %.1f ms, %.0f tok/s; GEMMs %.2f TFLOP (%.1f ms at 990 TFLOP/s) + attention %.2f TFLOP "
                   "%s (%.1f ms at %.0f TFLOP/s); %.0f TFLOP/s overall\n", mname, T, ta * 1e3, N / ta, gf / 1e12, gf / 990e12 * 1e3,
                   af / 1e12, mode == 2 ? "fp32" : "bf16", af / peak_attn * 1e3, peak_attn / 1e12, (gf + af) / ta / 1e12);
            printf("RESULT %s %d forward_%s_ms %.3f\n", s->name, T, mname, ta * 1e3);
            if (mode == 1) {
                probe_cuda_stats *st = NULL;
                if (probe_cuda_stats_init(g, s->L, s->H, B, T, &st) == HS_OK) {
                    double tb = run_best(g, sq, B, NULL, logits, reps, st, ids, nid, rep);
                    printf("   [%s] T=%d (b) forward + all-head stats: %.1f ms (%.2fx the plain forward)\n", mname, T, tb * 1e3, tb / ta);
                    printf("RESULT %s %d stats_%s_ms %.3f\n", s->name, T, mname, tb * 1e3);
                    probe_cuda_stats_free(st);
                } else rc = 1;
            }
            if (mode == 0) {
                probe_cuda_stats *st = NULL;
                if (probe_cuda_stats_init(g, s->L, s->H, B, T, &st) == HS_OK) {
                    double tb = run_best(g, sq, B, NULL, logits, reps, st, ids, nid, rep);
                    double dev = (double)rt_gpu_device_bytes(g) + (double)B * T * 4 + (double)B * s->L * s->H * 8 * 8;
                    double hf = (double)B * s->L * s->H * T * (double)T * 2;
                    printf("   [%s] T=%d (b) forward + all-head stats: %.1f ms (%.2fx the plain forward); device memory %.0f MiB vs "
                           "%.0f MiB of bf16 patterns a cache-everything tool holds\n", mname, T, tb * 1e3, tb / ta, dev / (1 << 20), hf / (1 << 20));
                    printf("RESULT %s %d stats_ms %.3f\nRESULT %s %d device_mib %.1f\n", s->name, T, tb * 1e3, s->name, T, dev / (1 << 20));
                    probe_cuda_stats_free(st);
                } else rc = 1;
                /* (c) one layer's full patterns: GPU + PCIe, + f16 encoding, + SQLite */
                int layer = s->L / 2;
                f16_sink sink = { NULL, 0, 0 };
                rt_hook_req r0 = { RT_HOOK_PATTERN, &layer, 1, NULL, 0, 0, 0, noop_hook, NULL, true };
                rt_hook_req r1 = { RT_HOOK_PATTERN, &layer, 1, NULL, 0, 0, 0, encode_f16, &sink, true };
                rt_hook_spec s0 = { &r0, 1 }, s1 = { &r1, 1 };
                double c0 = run_best(g, sq, B, &s0, logits, 1, NULL, NULL, NULL, NULL);
                double c1 = run_best(g, sq, B, &s1, logits, 1, NULL, NULL, NULL, NULL);
                double mib = sink.bytes / 2 / (1 << 20);   /* two forwards (warm-up + 1) */
                rt_gpu_set_hooks_sync(g, true);   /* the same without the hook pipeline: copy, wait, encode, per head */
                double c1s = run_best(g, sq, B, &s1, logits, 1, NULL, NULL, NULL, NULL);
                rt_gpu_set_hooks_sync(g, false);
                free(sink.buf);
                double c2 = -1, db_mib = 0;
                const int nf = 3;
                if (T <= 1024) { c2 = run_store(g, sq, B, layer, nf, &db_mib); if (c2 > 0) c2 /= nf; }
                printf("   [%s] T=%d (c) layer %d patterns, %.0f MiB of f16 per forward: GPU full-matrix attention + PCIe %.1f ms, "
                       "+ f16 encoding %.1f ms (GPU + PCIe + encoding %.1f ms pipelined, %.1f ms with synchronous hooks)", mname, T,
                       layer, mib, (c0 - ta) * 1e3, (c1 - c0) * 1e3, (c1 - ta) * 1e3, (c1s - ta) * 1e3);
                if (c2 > 0)
                    printf(", + SQLite %.1f ms (%d forwards into one run, writer thread finished): %.1f ms per forward, %.0f tok/s, "
                           "%.0f MB/s of blobs\n", (c2 - c1) * 1e3, nf, c2 * 1e3, N / c2, db_mib * 1.048576 / nf / c2);
                else
                    printf(" (SQLite: measured at T = 1024 only)\n");
                printf("RESULT %s %d patterns_gpu_pcie_ms %.3f\nRESULT %s %d patterns_f16_ms %.3f\n", s->name, T, c0 * 1e3, s->name, T, c1 * 1e3);
                printf("RESULT %s %d patterns_f16_sync_ms %.3f\n", s->name, T, c1s * 1e3);
                if (c2 > 0) printf("RESULT %s %d patterns_sqlite_ms %.3f\n", s->name, T, c2 * 1e3);
            }
        next:
            free(logits);
            for (int b = 0; b < B; b++) free(ids[b]);
            fflush(stdout);
        }
        rt_gpu_free(g);
    }
    free(bm.block); free(bm.layers);
    return rc;
}

int main(int argc, char **argv) {
    bool quick = false;
    const char *only = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--emulate") == 0) g_emulate = true;
        else if (strcmp(argv[i], "--profile") == 0) g_profile = true;
        else if (argv[i][0] == '/' || strstr(argv[i], "headscope")) continue;   /* run-bench.sh passes the CLI path */
        else { fprintf(stderr, "usage: bench_gpu [--quick] [--model gpt2|llama] [--reps N] [--profile]\n"); return 2; }
    }
    if (g_emulate) {   /* toy shapes, short prompts, CPU-reference kernels */
        int Te[2] = { 40, 70 };
        return bench_shape(&k_gpt2_toy, Te, 2, 1) | bench_shape(&k_llama_toy, Te, 2, 1);
    }
    rt_gpu_device_info info;
    if (rt_gpu_device_check(0, &info) != HS_OK) { printf("skip  bench_gpu: no usable CUDA device (line above)\n"); return 0; }
    printf("device: %s, cc %d.%d, %d SMs, %.0f GiB; ceilings ~990 TFLOP/s dense bf16, ~67 TFLOP/s fp32, ~4.8 TB/s HBM\n", info.name,
           info.cc_major, info.cc_minor, info.n_sm, (double)info.mem_total / (1 << 30));
    int Ts[2] = { 1024, 4096 };
    int rc = 0;
    if (!only || strcmp(only, "gpt2") == 0) rc |= bench_shape(&k_gpt2, Ts, quick ? 1 : 2, reps);
    if (!quick && (!only || strcmp(only, "llama") == 0)) rc |= bench_shape(&k_llama, Ts, 2, reps);
    return rc;
}
