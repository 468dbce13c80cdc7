/* cmd_generate.c — `headscope generate`: prefill the prompt, then decode token by token with a
 * KV cache; sampling follows llama2.c's run.c so seeded runs reproduce. */
#include "cli.h"
#include "runtime/forward.h"
#include "runtime/gpu.h"
#include "runtime/sample.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(void) {
    printf("usage: headscope generate MODEL [--prompt TEXT] [-n N] [--temp T] [--top-p P] [--seed S] [--ids]\n"
           "                          [--tokenizer FILE]\n\n"
           "  --prompt TEXT  start from TEXT (encoded with the tokenizer's special tokens, e.g. BOS);\n"
           "                 without it generation starts from BOS\n"
           "  -n N           tokens to generate (default 64); stops early at EOS (and, for llama2.c\n"
           "                 checkpoints, at BOS, as run.c does) or at the model's context length\n"
           "  --temp T       temperature; 0 = greedy argmax (default 1.0)\n"
           "  --top-p P      nucleus sampling threshold (default 0.9)\n"
           "  --seed S       RNG seed (default: time)\n"
           "  --ids          print the generated ids as a JSON array instead of text\n"
           "  --n-ctx N      override the context length of a RoPE model (beyond training = extrapolation)\n"
           "  --device D     cpu (default), cuda or cuda:N: run the model on a GPU (KV cache on the device)\n"
           "  --dtype T      with --device cuda: bf16 (default) or f32 (matches the CPU to ~1e-6)\n");
}

int cmd_generate(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *tokp = NULL, *device_arg = "cpu", *dtype_arg = NULL;
    long n_new = 64, seed = (long)time(NULL), n_ctx = 0;
    double temp = 1.0, top_p = 0.9;
    bool print_ids = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (strcmp(a, "--ids") == 0) print_ids = true;
        else if (strcmp(a, "--prompt") == 0) { if (!(prompt = cli_value(argc, argv, &i, "generate"))) return CLI_BADINPUT; }
        else if (strcmp(a, "--tokenizer") == 0) { if (!(tokp = cli_value(argc, argv, &i, "generate"))) return CLI_BADINPUT; }
        else if (strcmp(a, "--device") == 0) { if (!(device_arg = cli_value(argc, argv, &i, "generate"))) return CLI_BADINPUT; }
        else if (strcmp(a, "--dtype") == 0) { if (!(dtype_arg = cli_value(argc, argv, &i, "generate"))) return CLI_BADINPUT; }
        else if (strcmp(a, "-n") == 0) { if (!(v = cli_value(argc, argv, &i, "generate")) || !cli_parse_int(v, "-n", 0, 1 << 24, &n_new)) return CLI_BADINPUT; }
        else if (strcmp(a, "--n-ctx") == 0) { if (!(v = cli_value(argc, argv, &i, "generate")) || !cli_parse_int(v, "--n-ctx", 1, 1 << 24, &n_ctx)) return CLI_BADINPUT; }
        else if (strcmp(a, "--seed") == 0) { if (!(v = cli_value(argc, argv, &i, "generate")) || !cli_parse_int(v, "--seed", 0, 0x7fffffffL, &seed)) return CLI_BADINPUT; }
        else if (strcmp(a, "--temp") == 0) { if (!(v = cli_value(argc, argv, &i, "generate")) || !cli_parse_float(v, "--temp", 0, 100, &temp)) return CLI_BADINPUT; }
        else if (strcmp(a, "--top-p") == 0) { if (!(v = cli_value(argc, argv, &i, "generate")) || !cli_parse_float(v, "--top-p", 0, 1, &top_p)) return CLI_BADINPUT; }
        else if (a[0] == '-' || path) return cli_unknown("generate", a);
        else path = a;
    }
    if (!path) { hs_log_error("headscope", "generate needs MODEL — usage: headscope generate MODEL [--prompt TEXT]"); return CLI_BADINPUT; }

    bool cuda;
    int device;
    rt_gpu_dtype gdt;
    if (!cli_parse_device_dtype(device_arg, dtype_arg, &cuda, &device, &gdt)) return CLI_BADINPUT;

    rt_model *m; rt_tokenizer *tok;
    if (!cli_load(path, tokp, true, &m, &tok)) return CLI_BADINPUT;
    if (!cli_set_n_ctx(m, n_ctx)) { rt_tokenizer_free(tok); rt_model_free(m); return CLI_BADINPUT; }
    const rt_config *c = &m->cfg;
    int rc = CLI_BADINPUT, *ids = NULL, n_prompt = 0;
    float *logits = NULL;
    rt_forward *f = NULL;
    rt_kv_cache cache = {0};
    rt_gpu *gpu = NULL;
    rt_gpu_kv *gkv = NULL;
    rt_sampler smp = {0};
    int bos = rt_tokenizer_bos_id(tok) >= 0 ? rt_tokenizer_bos_id(tok) : c->bos_id;
    int eos = rt_tokenizer_eos_id(tok) >= 0 ? rt_tokenizer_eos_id(tok) : c->eos_id;

    if (prompt) {
        int *p;
        if (rt_tokenizer_encode(tok, prompt, strlen(prompt), true, &p, &n_prompt) != HS_OK) goto done;
        ids = p;
    }
    if (n_prompt == 0) {   /* no prompt (or an empty encoding): start from BOS */
        if (bos < 0) { hs_log_error("generate", "the model has no BOS token to start from — give --prompt"); goto done; }
        free(ids);
        ids = hs_xmalloc(sizeof *ids); ids[0] = bos; n_prompt = 1;
    }
    if (n_prompt > c->n_ctx) {
        hs_log_error("generate", "prompt is %d tokens but the model's context is n_ctx=%d — shorten the prompt", n_prompt, c->n_ctx);
        goto done;
    }
    int total = n_prompt + (int)n_new > c->n_ctx ? c->n_ctx : n_prompt + (int)n_new;
    ids = hs_xrealloc(ids, (size_t)(total + 1) * sizeof *ids);
    if (cuda) {
        rt_gpu_opts go;
        rt_gpu_opts_default(&go);
        go.dtype = gdt; go.device = device;
        if (rt_gpu_init(m, &go, &gpu) != HS_OK || rt_gpu_kv_init(gpu, total, &gkv) != HS_OK) goto done;
    } else {
        f = rt_forward_init(m);
        rt_kv_cache_init(&cache, c, total);
    }
    logits = hs_xmalloc((size_t)c->vocab_size * sizeof *logits);
    rt_sampler_init(&smp, c->vocab_size, (float)temp, (float)top_p, (uint64_t)seed);
    rt_seq sq = { ids, n_prompt, &cache };
    rt_gpu_seq gsq = { ids, n_prompt, gkv };
    int n = n_prompt;
    while (n < total) {
        if (cuda ? rt_gpu_forward_run(gpu, &gsq, 1, NULL, logits) != HS_OK : rt_forward_run(f, &sq, 1, NULL, logits) != HS_OK) goto done;
        int next = rt_sample(&smp, logits);
        if (next == eos || (m->cfg.format == RT_FORMAT_LLAMA2C && next == bos)) break;
        ids[n++] = next;
        sq.ids = ids + n - 1; sq.n = 1;
        gsq.ids = ids + n - 1; gsq.n = 1;
    }
    if (print_ids) {
        putchar('[');
        for (int i = n_prompt; i < n; i++) printf(i > n_prompt ? ",%d" : "%d", ids[i]);
        printf("]\n");
    } else {
        /* Decode prompt + continuation together so merges across the boundary print as one word.
         * HF special tokens (BOS/EOS) are dropped from the text; llama2.c's decoder handles BOS itself. */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (m->cfg.format == RT_FORMAT_LLAMA2C || (ids[i] != bos && ids[i] != eos)) ids[k++] = ids[i];
        char *text; size_t len;
        if (rt_tokenizer_decode(tok, ids, k, &text, &len) != HS_OK) goto done;
        fwrite(text, 1, len, stdout);
        putchar('\n');
        free(text);
    }
    rc = CLI_OK;
done:
    rt_sampler_free(&smp);
    rt_kv_cache_free(&cache);
    free(logits);
    free(ids);
    rt_forward_free(f);
    rt_gpu_kv_free(gkv);
    rt_gpu_free(gpu);
    rt_tokenizer_free(tok);
    rt_model_free(m);
    return rc;
}
