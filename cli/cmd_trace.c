/* cmd_trace.c — `headscope trace`: one prompt through the model, the requested hook tensors
 * written to a JSON file in TransformerLens shapes (batch dimension dropped):
 *   logits [T][V]; whole-layer hooks [T][cols]; hook_pattern / hook_attn_scores [H][T][T];
 *   hook_q, hook_z, hook_rot_q [T][H][HD]; hook_k, hook_v, hook_rot_k [T][KV][HD];
 *   hook_result [T][H][D]. Masked scores (-inf) are written as null.
 * The file is written to FILE.tmp and renamed, so a failed run never leaves half a file. */
#include "cli.h"
#include "runtime/forward.h"
#include "runtime/gpu.h"
#include "runtime/intervene.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: headscope trace MODEL (--prompt TEXT | --ids 1,2,3) --out FILE.json\n"
           "                       [--hooks LIST] [--layers SPEC] [--heads SPEC] [--tokenizer FILE]\n\n"
           "  --hooks LIST   comma-separated hook names (default: logits,hook_pattern); bare suffixes apply\n"
           "                 to every selected layer, full names (blocks.2.attn.hook_z) to one layer\n"
           "  --layers SPEC  layers for bare per-layer hooks, e.g. 0-2,5 (default all)\n"
           "  --heads SPEC   query heads for per-head hooks (default all; k/v hooks always give every KV head)\n"
           "  --n-ctx N      override the context length of a RoPE model (beyond training = extrapolation)\n"
           "  --device D     cpu (default), cuda or cuda:N: run the forward pass on a GPU\n"
           "  --dtype T      with --device cuda: bf16 (default: bf16 GEMMs, fp32 accumulation, norms and\n"
           "                 softmax) or f32 (fp32 GEMMs without TF32: matches the CPU to ~1e-6)\n\n"
           "Hooks: %s\n", rt_hook_all_names());
}

typedef struct { rt_hook_point point; int layer; } wanted_hook;   /* layer -1: every selected layer */

static void write_float(FILE *f, float v) {
    if (isinf(v) || isnan(v)) fputs("null", f);
    else fprintf(f, "%.8g", v);
}

/* Per-head hooks whose head index counts KV heads rather than query heads. */
static bool is_kv_point(rt_hook_point p) { return p == RT_HOOK_K || p == RT_HOOK_V || p == RT_HOOK_ROT_K; }

static bool req_layer_selected(const int *layers, int n, int l) {
    if (!layers) return true;
    for (int i = 0; i < n; i++) if (layers[i] == l) return true;
    return false;
}

static void write_hook(FILE *out, const rt_cache *cache, const rt_config *c, rt_hook_point p, int layer,
                       const int *heads, int n_heads, int T) {
    char name[96];
    rt_hook_format_name(p, layer, name, sizeof name);
    fprintf(out, ",\n\"%s\":", name);
    if (!rt_hook_point_is_head(p)) {
        int rows, cols;
        const float *d = rt_cache_get(cache, name, -1, 0, &rows, &cols);
        fputc('[', out);
        for (int r = 0; d && r < rows; r++) {
            fputs(r ? ",[" : "[", out);
            for (int j = 0; j < cols; j++) { if (j) fputc(',', out); write_float(out, d[(size_t)r * cols + j]); }
            fputc(']', out);
        }
        fputc(']', out);
        return;
    }
    int nh = is_kv_point(p) ? c->n_kv_heads : n_heads;
    if (p == RT_HOOK_PATTERN || p == RT_HOOK_ATTN_SCORES) {          /* [H][T][Tk] */
        fputc('[', out);
        for (int hi = 0; hi < nh; hi++) {
            int rows, cols;
            const float *d = rt_cache_get(cache, name, heads[hi], 0, &rows, &cols);
            fputs(hi ? ",[" : "[", out);
            for (int r = 0; d && r < rows; r++) {
                fputs(r ? ",[" : "[", out);
                for (int j = 0; j < cols; j++) { if (j) fputc(',', out); write_float(out, d[(size_t)r * cols + j]); }
                fputc(']', out);
            }
            fputc(']', out);
        }
        fputc(']', out);
        return;
    }
    fputc('[', out);                                                 /* [T][H][cols] */
    for (int t = 0; t < T; t++) {
        fputs(t ? ",[" : "[", out);
        for (int hi = 0; hi < nh; hi++) {
            int rows, cols, h = is_kv_point(p) ? hi : heads[hi];
            const float *d = rt_cache_get(cache, name, h, 0, &rows, &cols);
            fputs(hi ? ",[" : "[", out);
            for (int j = 0; d && j < cols; j++) { if (j) fputc(',', out); write_float(out, d[(size_t)t * cols + j]); }
            fputc(']', out);
        }
        fputc(']', out);
    }
    fputc(']', out);
}

static void write_shape(FILE *out, const rt_config *c, rt_hook_point p, int layer, int n_heads, int T, bool *first) {
    char name[96];
    rt_hook_format_name(p, layer, name, sizeof name);
    fprintf(out, "%s\"%s\":", *first ? "" : ",", name);
    *first = false;
    int D = c->d_model, HD = c->d_head;
    switch (p) {
    case RT_HOOK_LOGITS: fprintf(out, "[%d,%d]", T, c->vocab_size); break;
    case RT_HOOK_PATTERN: case RT_HOOK_ATTN_SCORES: fprintf(out, "[%d,%d,%d]", n_heads, T, T); break;
    case RT_HOOK_Q: case RT_HOOK_ROT_Q: case RT_HOOK_Z: fprintf(out, "[%d,%d,%d]", T, n_heads, HD); break;
    case RT_HOOK_K: case RT_HOOK_V: case RT_HOOK_ROT_K: fprintf(out, "[%d,%d,%d]", T, c->n_kv_heads, HD); break;
    case RT_HOOK_RESULT: fprintf(out, "[%d,%d,%d]", T, n_heads, D); break;
    case RT_HOOK_MLP_PRE: case RT_HOOK_MLP_POST: fprintf(out, "[%d,%d]", T, c->d_mlp); break;
    default: fprintf(out, "[%d,%d]", T, D);
    }
}

int cmd_trace(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *ids_arg = NULL, *outp = NULL, *tokp = NULL, *nctx_arg = NULL;
    const char *hooks_arg = "logits,hook_pattern", *layers_arg = "all", *heads_arg = "all";
    const char *device_arg = "cpu", *dtype_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (strcmp(a, "--prompt") == 0) dst = &prompt;
        else if (strcmp(a, "--ids") == 0) dst = &ids_arg;
        else if (strcmp(a, "--out") == 0) dst = &outp;
        else if (strcmp(a, "--hooks") == 0) dst = &hooks_arg;
        else if (strcmp(a, "--layers") == 0) dst = &layers_arg;
        else if (strcmp(a, "--heads") == 0) dst = &heads_arg;
        else if (strcmp(a, "--tokenizer") == 0) dst = &tokp;
        else if (strcmp(a, "--n-ctx") == 0) dst = &nctx_arg;
        else if (strcmp(a, "--device") == 0) dst = &device_arg;
        else if (strcmp(a, "--dtype") == 0) dst = &dtype_arg;
        else if (a[0] == '-' || path) return cli_unknown("trace", a);
        else { path = a; continue; }
        if (!(*dst = cli_value(argc, argv, &i, "trace"))) return CLI_BADINPUT;
    }
    if (!path || !outp || (!prompt == !ids_arg)) {
        hs_log_error("headscope", "trace needs MODEL, exactly one of --prompt/--ids, and --out — see 'headscope trace --help'");
        return CLI_BADINPUT;
    }
    bool cuda;
    int device;
    rt_gpu_dtype gdt;
    if (!cli_parse_device_dtype(device_arg, dtype_arg, &cuda, &device, &gdt)) return CLI_BADINPUT;
    rt_model *m; rt_tokenizer *tok = NULL;
    long n_ctx = 0;
    if (nctx_arg && !cli_parse_int(nctx_arg, "--n-ctx", 1, 1 << 24, &n_ctx)) return CLI_BADINPUT;
    if (!cli_load(path, tokp, prompt != NULL, &m, prompt ? &tok : NULL)) return CLI_BADINPUT;
    if (!cli_set_n_ctx(m, n_ctx)) { rt_tokenizer_free(tok); rt_model_free(m); return CLI_BADINPUT; }
    const rt_config *c = &m->cfg;
    int rc = CLI_BADINPUT, *ids = NULL, n_ids = 0, *layers = NULL, n_layers = 0, *heads = NULL, n_heads = 0;
    wanted_hook *wh = NULL; int n_wh = 0;
    rt_hook_req *reqs = NULL;
    rt_forward *f = NULL;
    rt_gpu *gpu = NULL;
    rt_cache cache; rt_cache_init(&cache);
    char *tmp = NULL;
    FILE *out = NULL;

    if (prompt ? rt_tokenizer_encode(tok, prompt, strlen(prompt), true, &ids, &n_ids) != HS_OK
               : !cli_parse_ids(ids_arg, &ids, &n_ids)) goto done;
    if (n_ids == 0) { hs_log_error("trace", "the prompt encodes to no tokens — give a non-empty prompt"); goto done; }
    if (rt_parse_index_list(layers_arg, c->n_layers, "--layers", &layers, &n_layers) != HS_OK) goto done;
    if (rt_parse_index_list(heads_arg, c->n_heads, "--heads", &heads, &n_heads) != HS_OK) goto done;
    if (!heads) {
        n_heads = c->n_heads; heads = hs_xmalloc((size_t)n_heads * sizeof *heads);
        for (int h = 0; h < n_heads; h++) heads[h] = h;
    }
    /* parse --hooks */
    {
        char *list = hs_xstrdup(hooks_arg), *save = NULL;
        for (char *tokn = strtok_r(list, ",", &save); tokn; tokn = strtok_r(NULL, ",", &save)) {
            rt_hook_point p; int l;
            while (*tokn == ' ') tokn++;
            if (rt_hook_parse_name(tokn, &p, &l) != HS_OK || l >= c->n_layers) {
                hs_log_error("trace", "unknown hook '%s' — valid: %s (prefix blocks.L. for one layer, L < %d)", tokn,
                             rt_hook_all_names(), c->n_layers);
                free(list); goto done;
            }
            if ((p == RT_HOOK_ROT_Q || p == RT_HOOK_ROT_K || p == RT_HOOK_POS_EMBED) &&
                (c->arch == RT_ARCH_GPT2) != (p == RT_HOOK_POS_EMBED)) {
                hs_log_error("trace", "hook '%s' does not exist in a %s model — %s", tokn, c->model_type,
                             p == RT_HOOK_POS_EMBED ? "it has no learned positions" : "it has no rotary embedding");
                free(list); goto done;
            }
            wh = hs_xrealloc(wh, (size_t)(n_wh + 1) * sizeof *wh);
            wh[n_wh++] = (wanted_hook){ p, l };
        }
        free(list);
    }
    reqs = hs_xcalloc((size_t)n_wh, sizeof *reqs);
    for (int i = 0; i < n_wh; i++) {
        rt_hook_req *r = &reqs[i];
        r->point = wh[i].point;
        if (wh[i].layer >= 0) { r->layers = &wh[i].layer; r->n_layers = 1; }
        else { r->layers = layers; r->n_layers = n_layers; }
        if (rt_hook_point_is_head(r->point) && !is_kv_point(r->point)) { r->heads = heads; r->n_heads = n_heads; }
        r->fn = rt_cache_record; r->user = &cache;
    }
    rt_hook_spec spec = { reqs, n_wh };
    if (cuda) {
        rt_gpu_opts go;
        rt_gpu_opts_default(&go);
        go.dtype = gdt; go.device = device;
        rt_gpu_seq gsq = { ids, n_ids, NULL };
        if (rt_gpu_init(m, &go, &gpu) != HS_OK || rt_gpu_forward_run(gpu, &gsq, 1, &spec, NULL) != HS_OK) goto done;
    } else {
        f = rt_forward_init(m);
        rt_seq sq = { ids, n_ids, NULL };
        if (rt_forward_run(f, &sq, 1, &spec, NULL) != HS_OK) goto done;
    }

    size_t plen = strlen(outp);
    tmp = hs_xmalloc(plen + 5);
    memcpy(tmp, outp, plen); memcpy(tmp + plen, ".tmp", 5);
    out = fopen(tmp, "w");
    if (!out) { hs_log_error("trace", "cannot write %s: %s — check the --out path", tmp, strerror(errno)); goto done; }
    fprintf(out, "{\"ids\":[");
    for (int i = 0; i < n_ids; i++) fprintf(out, i ? ",%d" : "%d", ids[i]);
    fprintf(out, "],\n\"tokens\":[");
    for (int i = 0; i < n_ids; i++) {
        char *s = NULL; size_t len = 0;
        if (i) fputc(',', out);
        if (tok && rt_tokenizer_decode(tok, &ids[i], 1, &s, &len) == HS_OK) cli_json_string(out, s, len);
        else fprintf(out, "\"%d\"", ids[i]);
        free(s);
    }
    fprintf(out, "],\n\"heads\":[");
    for (int i = 0; i < n_heads; i++) fprintf(out, i ? ",%d" : "%d", heads[i]);
    fprintf(out, "],\n\"shapes\":{");
    bool first = true;
    for (int i = 0; i < n_wh; i++) {
        if (!rt_hook_point_is_layer(wh[i].point)) { write_shape(out, c, wh[i].point, -1, n_heads, n_ids, &first); continue; }
        for (int l = 0; l < c->n_layers; l++)
            if (wh[i].layer == l || (wh[i].layer < 0 && req_layer_selected(layers, n_layers, l)))
                write_shape(out, c, wh[i].point, l, n_heads, n_ids, &first);
    }
    fputc('}', out);
    for (int i = 0; i < n_wh; i++) {
        if (!rt_hook_point_is_layer(wh[i].point)) { write_hook(out, &cache, c, wh[i].point, -1, heads, n_heads, n_ids); continue; }
        for (int l = 0; l < c->n_layers; l++)
            if (wh[i].layer == l || (wh[i].layer < 0 && req_layer_selected(layers, n_layers, l)))
                write_hook(out, &cache, c, wh[i].point, l, heads, n_heads, n_ids);
    }
    fprintf(out, "}\n");
    if (ferror(out) | fclose(out)) {
        out = NULL;
        hs_log_error("trace", "writing %s failed (disk full?) — free space and retry", tmp);
        remove(tmp); goto done;
    }
    out = NULL;
    if (rename(tmp, outp) != 0) { hs_log_error("trace", "cannot rename %s to %s: %s", tmp, outp, strerror(errno)); remove(tmp); goto done; }
    rc = CLI_OK;
done:
    if (out) { fclose(out); remove(tmp); }
    free(tmp); free(ids); free(layers); free(heads); free(wh); free(reqs);
    rt_cache_free(&cache);
    rt_forward_free(f);
    rt_gpu_free(gpu);
    rt_tokenizer_free(tok);
    rt_model_free(m);
    return rc;
}
