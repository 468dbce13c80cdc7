/* cmd_capture.c — `headscope capture`: prompts through a model into a SQLite run database. */
#include "cli.h"
#include "probe/capture.h"
#include "runtime/gpu.h"
#include <string.h>

static void usage(void) {
    printf("usage: headscope capture MODEL (--prompts FILE | --corpus FILE [--window N] [--stride S]) --db RUN.db\n"
           "                         [--hooks LIST] [--layers SPEC] [--heads SPEC] [--positions all|last|A-B]\n"
           "                         [--dtype f16|bf16|f32] [--batch N] [--max-tokens N] [--no-stats] [--quiet]\n"
           "                         [--device cpu|cuda|cuda:N] [--gpu-dtype f32|bf16]\n"
           "       headscope capture --resume --db RUN.db\n\n"
           "  --prompts FILE   .txt (one prompt per line; \\n \\t \\\\ escapes) or .jsonl ({\"text\": ...} or {\"ids\": [...]})\n"
           "  --corpus FILE    slice a long text into windows of N tokens every S tokens (default 64/64)\n"
           "  --hooks LIST     activations to store, e.g. hook_pattern,hook_z,blocks.0.hook_resid_post\n"
           "                   (default: none — only the online per-head statistics)\n"
           "  --positions      which positions (query rows) of each stored tensor to keep (default all)\n"
           "  --dtype          blob dtype of stored activations (default f16)\n"
           "  --batch N        prompts per forward pass and per transaction (default 8)\n"
           "  --max-tokens N   truncate prompts to N tokens\n"
           "  --no-stats       skip the online statistics (entropy, max_weight, bos_mass, self, prev_token,\n"
           "                   distance, duplicate, induction per head, per prompt and for the run)\n"
           "  --device D       cpu (default), cuda or cuda:N: the forward on the GPU, per-head statistics reduced\n"
           "                   on the device; stored in the run, so --resume continues on the same device\n"
           "  --gpu-dtype T    GPU numeric mode: bf16 (default) or f32 (fp32 GEMMs, no TF32: the exactness mode).\n"
           "                   (--dtype is the stored blobs' dtype, as without --device cuda)\n"
           "  --resume         continue the latest unfinished run of RUN.db with its stored options\n\n"
           "Progress goes to stderr; a killed capture keeps every committed prompt and can be resumed.\n");
}

int cmd_capture(int argc, char **argv) {
    probe_capture_opts o;
    probe_capture_defaults(&o);
    bool gpu_opt = false, gpu_dtype_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        const char **dst = NULL;
        long num;
        if (cli_is_help(a)) { usage(); return CLI_OK; }
        if (strcmp(a, "--resume") == 0) { o.resume = true; continue; }
        if (strcmp(a, "--no-stats") == 0) { o.stats = false; continue; }
        if (strcmp(a, "--quiet") == 0) { o.quiet = true; continue; }
        if (strcmp(a, "--prompts") == 0) dst = &o.prompts;
        else if (strcmp(a, "--corpus") == 0) dst = &o.corpus;
        else if (strcmp(a, "--db") == 0) dst = &o.db;
        else if (strcmp(a, "--hooks") == 0) dst = &o.hooks;
        else if (strcmp(a, "--layers") == 0) dst = &o.layers;
        else if (strcmp(a, "--heads") == 0) dst = &o.heads;
        else if (strcmp(a, "--positions") == 0) dst = &o.positions;
        else if (strcmp(a, "--tokenizer") == 0) dst = &o.tokenizer;
        else if (strcmp(a, "--device") == 0 || strcmp(a, "--gpu-dtype") == 0) {
            if (!(v = cli_value(argc, argv, &i, "capture"))) return CLI_BADINPUT;
            if (strcmp(a, "--device") == 0 ? rt_gpu_parse_device(v, &o.cuda, &o.device) != HS_OK
                                           : rt_gpu_parse_dtype(v, &o.gpu_dtype) != HS_OK) return CLI_BADINPUT;
            gpu_opt = true;
            if (strcmp(a, "--gpu-dtype") == 0) gpu_dtype_given = true;
            continue;
        } else if (strcmp(a, "--dtype") == 0 || strcmp(a, "--batch") == 0 || strcmp(a, "--max-tokens") == 0 ||
                 strcmp(a, "--window") == 0 || strcmp(a, "--stride") == 0 || strcmp(a, "--max-pages") == 0) {
            if (!(v = cli_value(argc, argv, &i, "capture"))) return CLI_BADINPUT;
            if (strcmp(a, "--dtype") == 0) {
                if (strcmp(v, "f16") == 0) o.dtype = STORE_F16;
                else if (strcmp(v, "bf16") == 0) o.dtype = STORE_BF16;
                else if (strcmp(v, "f32") == 0) o.dtype = STORE_F32;
                else { hs_log_error("headscope", "--dtype '%s' must be f16, bf16 or f32", v); return CLI_BADINPUT; }
                continue;
            }
            if (!cli_parse_int(v, a, strcmp(a, "--max-tokens") == 0 ? 0 : 1, strcmp(a, "--max-pages") == 0 ? 1L << 40 : 1 << 24, &num)) return CLI_BADINPUT;
            if (strcmp(a, "--batch") == 0) o.batch = (int)num;
            else if (strcmp(a, "--max-tokens") == 0) o.max_tokens = (int)num;
            else if (strcmp(a, "--window") == 0) o.window = (int)num;
            else if (strcmp(a, "--stride") == 0) o.stride = (int)num;
            else o.max_pages = num;   /* undocumented: simulates a full disk in tests */
            continue;
        } else if (a[0] == '-' || o.model) return cli_unknown("capture", a);
        else { o.model = a; continue; }
        if (!(*dst = cli_value(argc, argv, &i, "capture"))) return CLI_BADINPUT;
    }
    if (!o.db) { hs_log_error("headscope", "capture needs --db RUN.db — see 'headscope capture --help'"); return CLI_BADINPUT; }
    if (gpu_dtype_given && !o.cuda && !o.resume) {
        hs_log_error("headscope", "--gpu-dtype needs --device cuda");
        return CLI_BADINPUT;
    }
    if (o.resume && gpu_opt) {
        hs_log_error("headscope", "--resume takes the device from the stored run — drop --device/--gpu-dtype");
        return CLI_BADINPUT;
    }
    if (o.resume && (o.model || o.prompts || o.corpus)) {
        hs_log_error("headscope", "--resume takes only --db: the model and options come from the stored run");
        return CLI_BADINPUT;
    }
    int64_t run;
    hs_status st = probe_capture_run(&o, &run);
    if (st != HS_OK) return CLI_BADINPUT;
    fputs("{\"db\": ", stdout);
    cli_json_string(stdout, o.db, strlen(o.db));
    printf(", \"run\": %lld}\n", (long long)run);
    return CLI_OK;
}
