/* bench_runtime.c — CPU prefill throughput against a token-by-token baseline, and memory.
 *
 * Figures are ratios against baselines measured in the same run (these machines are noisy):
 *   - prefill tokens/s (one batched forward over T positions, OpenBLAS) vs llama2.c-style
 *     token-by-token decoding (naive_decode.h) over the same T tokens; target >= 5x at T=256;
 *   - peak RSS of `headscope trace` at T=1024 with and without pattern capture, against the same
 *     command at T=1 (process, libraries, OpenBLAS buffers, weights) plus one layer's activations
 *     and the logits the trace returns; target <= 1.5x;
 *   - activation arena peak for a 4096-token forward without hooks vs the T×T×H×L pattern tensor
 *     that a cache-everything tool would build.
 * Models whose n_ctx is below T: llama-family ones run with n_ctx raised (RoPE has no table
 * limit; the numbers measure speed, not quality); gpt2 (learned positions) is reported n/a.
 */
#include "naive_decode.h"
#include "runtime/forward.h"
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static const char *shared_path(const char *rel) {
    static char buf[4][1024]; static int k;
    const char *s = getenv("HS_SHARED"); if (!s || !*s) s = "../shared";
    char *b = buf[k++ & 3]; snprintf(b, 1024, "%s/%s", s, rel);
    return access(b, R_OK) == 0 ? b : NULL;
}

/* Peak RSS (MiB) of a child running argv. */
static double child_rss_mib(char *const argv[]) {
    fflush(stdout);   /* the child must not inherit (and re-print) buffered output */
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(127);
        execv(argv[0], argv); _exit(127);
    }
    int st; struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    return ru.ru_maxrss / 1024.0;
}

static size_t weight_bytes(const rt_model *m) { return (size_t)m->cfg.n_params * sizeof(float); }
static size_t layer_act_bytes(const rt_config *c, int T) {   /* x, xn, q, k, v, z, ao, hidden (+gate/qkv) */
    size_t per = 3 * (size_t)c->d_model + 2 * (size_t)c->n_heads * c->d_head + 2 * (size_t)c->n_kv_heads * c->d_head +
                 2 * (size_t)c->d_mlp + (c->arch == RT_ARCH_GPT2 ? 3 * (size_t)c->d_model : 0);
    return per * T * sizeof(float);
}

static void bench_prefill(const char *name, const char *path) {
    rt_model *m;
    if (!path || rt_model_load(path, &m) != HS_OK) { printf("prefill %-24s skipped (model missing)\n", name); return; }
    const int Ts[3] = { 64, 256, 1024 };
    for (int ti = 0; ti < 3; ti++) {
        int T = Ts[ti];
        if (T > m->cfg.n_ctx) {
            if (m->cfg.arch == RT_ARCH_GPT2) { printf("prefill %-24s T=%-5d n/a (learned positions stop at n_ctx=%d)\n", name, T, m->cfg.n_ctx); continue; }
            m->cfg.n_ctx = T;
        }
        int *ids = malloc(T * sizeof(int));
        for (int i = 0; i < T; i++) ids[i] = (int)((i * 2654435761u) % (unsigned)m->cfg.vocab_size);
        rt_forward *f = rt_forward_init(m);
        float *lg = malloc(m->cfg.vocab_size * sizeof(float));
        rt_seq s = { ids, T, NULL };
        rt_forward_run(f, &s, 1, NULL, lg);            /* warm-up: arena, OpenBLAS threads */
        double best = 1e30;
        for (int r = 0; r < 5; r++) { double t0 = now(); rt_forward_run(f, &s, 1, NULL, lg); double dt = now() - t0; if (dt < best) best = dt; }
        naive_state ns; naive_init(&ns, m, T);
        double nbest = 1e30;
        for (int r = 0; r < 2; r++) {
            double t0 = now();
            for (int i = 0; i < T; i++) naive_step(&ns, ids[i], i);
            double dt = now() - t0; if (dt < nbest) nbest = dt;
        }
        double diff = 0;
        for (int j = 0; j < m->cfg.vocab_size; j++) { double d = fabs(lg[j] - ns.logits[j]); if (d > diff) diff = d; }
        printf("prefill %-24s T=%-5d %10.0f tok/s | token-by-token %9.0f tok/s | ratio %6.1fx%s | max|dlogit| %.1e\n",
               name, T, T / best, T / nbest, nbest / best, T == 256 ? " (target >= 5x)" : "", diff);
        naive_free(&ns); free(lg); free(ids); rt_forward_free(f);
    }
    rt_model_free(m);
}

static void bench_rss(const char *hs, const char *name, const char *path) {
    rt_model *m;
    if (!path || rt_model_load(path, &m) != HS_OK) { printf("rss %s skipped (model missing)\n", name); return; }
    int T = m->pos_embed && m->cfg.n_ctx < 1024 ? m->cfg.n_ctx : 1024;   /* RoPE models: --n-ctx 1024 */
    char ids1[16] = "1", *idsT = malloc(8 * (size_t)T + 1), *p = idsT;
    for (int i = 0; i < T; i++) p += sprintf(p, i ? ",%d" : "%d", (int)((i * 2654435761u) % (unsigned)m->cfg.vocab_size));
    char out[] = "/tmp/hs-bench-trace.json", nctx[16];
    snprintf(nctx, sizeof nctx, "%d", T);
    char *a1[] = { (char *)hs, "trace", (char *)path, "--ids", ids1, "--out", out, "--hooks", "logits", "--n-ctx", nctx, NULL };
    char *a2[] = { (char *)hs, "trace", (char *)path, "--ids", idsT, "--out", out, "--hooks", "logits", "--n-ctx", nctx, NULL };
    char *a3[] = { (char *)hs, "trace", (char *)path, "--ids", idsT, "--out", out, "--hooks", "logits,hook_pattern", "--n-ctx", nctx, NULL };
    double r1 = child_rss_mib(a1), r2 = child_rss_mib(a2), r3 = child_rss_mib(a3);
    double w = weight_bytes(m) / 1048576.0, layer = layer_act_bytes(&m->cfg, T) / 1048576.0;
    double logits = (double)T * m->cfg.vocab_size * 4 / 1048576.0;   /* the requested output itself */
    double pat = (double)m->cfg.n_layers * m->cfg.n_heads * T * T * 4 / 1048576.0;
    printf("rss %-24s T=%d: base(T=1) %.1f MiB | logits only %.1f MiB (+%.1f) | +patterns %.1f MiB (+%.1f)\n",
           name, T, r1, r2, r2 - r1, r3, r3 - r1);
    printf("rss %-24s weights %.1f MiB, one layer's activations %.1f MiB, requested logits %.1f MiB, all patterns %.1f MiB\n",
           name, w, layer, logits, pat);
    /* base(T=1) already holds the process, libraries, OpenBLAS buffers and the weights; a T-token
     * trace without patterns should add at most one layer's activations and the logits it returns. */
    printf("rss %-24s no-pattern ratio RSS(T) / (RSS(T=1) + one layer + requested logits) = %.2f (target <= 1.5)\n",
           name, r2 / (r1 + layer + logits));
    remove(out); free(idsT);
    rt_model_free(m);
}

static void bench_long(const char *name, const char *path) {
    rt_model *m;
    if (!path || rt_model_load(path, &m) != HS_OK) return;
    int T = 4096;
    m->cfg.n_ctx = T;
    int *ids = malloc(T * sizeof(int));
    for (int i = 0; i < T; i++) ids[i] = (int)((i * 2654435761u) % (unsigned)m->cfg.vocab_size);
    rt_forward *f = rt_forward_init(m);
    float *lg = malloc(m->cfg.vocab_size * sizeof(float));
    rt_seq s = { ids, T, NULL };
    double t0 = now();
    rt_forward_run(f, &s, 1, NULL, lg);
    double dt = now() - t0;
    double peak = rt_forward_peak_bytes(f) / 1048576.0, layer = layer_act_bytes(&m->cfg, T) / 1048576.0;
    double all = (double)m->cfg.n_layers * m->cfg.n_heads * T * T * 4 / 1048576.0;
    printf("long  %-24s T=%d: %.2f s, %.0f tok/s | activation arena peak %.1f MiB vs one layer %.1f MiB (ratio %.2f) | "
           "a T*T*H*L pattern tensor would be %.0f MiB\n", name, T, dt, T / dt, peak, layer, peak / layer, all);
    free(ids); free(lg); rt_forward_free(f); rt_model_free(m);
}

int main(int argc, char **argv) {
    const char *hs = argc > 1 ? argv[1] : "bin/headscope";
    printf("== CPU prefill vs token-by-token (same run; best of 5 / best of 2)\n");
    bench_prefill("tiny-gpt2-shakespeare", shared_path("models/tiny-gpt2-shakespeare"));
    bench_prefill("tiny-llama-shakespeare", shared_path("models/tiny-llama-shakespeare"));
    bench_prefill("stories260K", shared_path("models/stories260K/stories260K.bin"));
    printf("== peak RSS of headscope trace\n");
    bench_rss(hs, "tiny-llama-shakespeare", shared_path("models/tiny-llama-shakespeare"));
    bench_rss(hs, "tiny-gpt2-shakespeare", shared_path("models/tiny-gpt2-shakespeare"));
    printf("== 4096-token forward, no hooks\n");
    bench_long("tiny-llama-shakespeare", shared_path("models/tiny-llama-shakespeare"));
    return 0;
}
