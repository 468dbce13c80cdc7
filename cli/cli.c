/* cli.c — helpers shared by the subcommands (see cli.h). */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool cli_is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

const char *cli_value(int argc, char **argv, int *i, const char *cmd) {
    if (*i + 1 >= argc) {
        hs_log_error("headscope", "%s needs a value — see 'headscope %s --help'", argv[*i], cmd);
        return NULL;
    }
    return argv[++*i];
}

bool cli_parse_int(const char *s, const char *opt, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        hs_log_error("headscope", "%s '%s' is not an integer in %ld..%ld — fix the option", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *s, const char *opt, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        hs_log_error("headscope", "%s '%s' is not a number in %g..%g — fix the option", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

int cli_unknown(const char *cmd, const char *arg) {
    hs_log_error("headscope", "%s: unexpected argument '%s' — see 'headscope %s --help'", cmd, arg, cmd);
    return CLI_BADINPUT;
}

bool cli_parse_device_dtype(const char *device_arg, const char *dtype_arg, bool *cuda, int *device, rt_gpu_dtype *dt) {
    *cuda = false; *device = 0; *dt = RT_GPU_BF16;
    if (rt_gpu_parse_device(device_arg, cuda, device) != HS_OK) return false;
    if (dtype_arg && rt_gpu_parse_dtype(dtype_arg, dt) != HS_OK) return false;
    if (!*cuda && dtype_arg && *dt != RT_GPU_F32) {
        hs_log_error("headscope", "--dtype %s needs --device cuda (the CPU runtime computes in fp32)", dtype_arg);
        return false;
    }
    return !*cuda || rt_gpu_device_check(*device, NULL) == HS_OK;
}

bool cli_load(const char *path, const char *tok_override, bool want_tok, rt_model **m, rt_tokenizer **tok) {
    *m = NULL;
    if (tok) *tok = NULL;
    if (rt_model_load(path, m) != HS_OK) return false;
    if (want_tok && rt_model_open_tokenizer(*m, tok_override, tok) != HS_OK) {
        rt_model_free(*m); *m = NULL;
        return false;
    }
    return true;
}

bool cli_set_n_ctx(rt_model *m, long n_ctx) {
    if (n_ctx <= 0) return true;
    if (m->pos_embed && n_ctx > m->cfg.n_ctx) {
        hs_log_error("headscope", "--n-ctx %ld: %s has learned positions for only %d tokens — use at most %d",
                     n_ctx, m->cfg.model_type, m->cfg.n_ctx, m->cfg.n_ctx);
        return false;
    }
    m->cfg.n_ctx = (int)n_ctx;
    return true;
}

bool cli_parse_ids(const char *s, int **ids, int *n) {
    int cap = 16, cnt = 0;
    int *v = hs_xmalloc((size_t)cap * sizeof *v);
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 0x7fffffff) {
            hs_log_error("headscope", "'%s' is not a list of token ids like 1,2,3 — fix the ids", s);
            free(v); return false;
        }
        if (cnt == cap) { cap *= 2; v = hs_xrealloc(v, (size_t)cap * sizeof *v); }
        v[cnt++] = (int)x;
        p = end;
        if (*p && *p != ',' && *p != ' ' && *p != ']') {
            hs_log_error("headscope", "'%s' is not a list of token ids like 1,2,3 — fix the ids", s);
            free(v); return false;
        }
    }
    *ids = v; *n = cnt;
    return true;
}

void cli_json_string(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
    }
    fputc('"', f);
}
