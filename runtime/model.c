/* model.c — pick the loader for a path, release models, describe them as JSON (`headscope info`).
 *
 * The format is decided by what the path is, not by its name alone: a folder with config.json is
 * a Hugging Face checkpoint; a regular file is a llama2.c checkpoint when it is called *.bin or its
 * first 28 bytes look like a llama2.c header. Files we recognise but do not load (a bare
 * .safetensors, GGUF, PyTorch pickles) get a line that says what to pass instead.
 */
#include "model.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The seven int32 of a llama2.c header, loosely: the loader does the exact checks. */
static bool plausible_llama2c(const unsigned char *b, size_t n) {
    int32_t h[7];
    if (n < sizeof h) return false;
    memcpy(h, b, sizeof h);
    if ((uint32_t)h[0] == 0x616b3432u) return true;   /* "ak42": versioned export, refused with its own line */
    return h[0] > 0 && h[0] <= (1 << 20) && h[1] > 0 && h[1] <= (1 << 22) && h[2] > 0 && h[2] <= 4096 &&
           h[3] > 0 && h[3] <= h[0] && h[4] > 0 && h[4] <= h[3] && h[5] != 0 && h[5] >= -(1 << 24) &&
           h[5] <= (1 << 24) && h[6] > 0 && h[6] <= (1 << 24);
}

hs_status rt_model_load(const char *path, rt_model **out) {
    struct stat sb;
    hs_status st;
    *out = NULL;
    if (stat(path, &sb) != 0) {
        hs_log_error("model", "cannot open %s: %s — check the path", path, strerror(errno));
        return HS_EIO;
    }
    rt_model *m = hs_xcalloc(1, sizeof *m);
    if (S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path) + sizeof "/config.json";
        char *cfg = hs_xmalloc(n);
        snprintf(cfg, n, "%s/config.json", path);
        bool has_cfg = stat(cfg, &sb) == 0 && S_ISREG(sb.st_mode);
        free(cfg);
        if (!has_cfg) goto neither;
        st = rt_hf_load(path, m);
    } else if (S_ISREG(sb.st_mode)) {
        unsigned char head[28] = {0};
        size_t got = 0;
        FILE *f = fopen(path, "rb");
        if (!f) {
            hs_log_error("model", "cannot open %s: %s — check the path and permissions", path, strerror(errno));
            free(m);
            return HS_EIO;
        }
        got = fread(head, 1, sizeof head, f);
        fclose(f);
        if (ends_with(path, ".safetensors") || ends_with(path, "config.json") || ends_with(path, ".index.json")) {
            hs_log_error("model", "%s is one file of a Hugging Face checkpoint — pass the folder that holds config.json and the .safetensors files", path);
            st = HS_EBADINPUT;
        } else if (got >= 4 && memcmp(head, "GGUF", 4) == 0) {
            hs_log_error("model", "%s is a GGUF file, which is not supported — pass a Hugging Face folder (config.json + safetensors) or a llama2.c .bin", path);
            st = HS_EUNSUPPORTED;
        } else if (got >= 4 && memcmp(head, "PK\x03\x04", 4) == 0) {
            hs_log_error("model", "%s is a PyTorch pickle checkpoint, which is not supported — re-save it as safetensors (save_pretrained(safe_serialization=True)) and pass the folder", path);
            st = HS_EUNSUPPORTED;
        } else if (ends_with(path, ".bin") || plausible_llama2c(head, got)) {
            st = rt_llama2c_load(path, m);
        } else {
            goto neither;
        }
    } else {
        goto neither;
    }
    if (st != HS_OK) { free(m); return st; }
    *out = m;
    return HS_OK;
neither:
    hs_log_error("model", "%s is neither a Hugging Face folder (config.json) nor a llama2.c .bin checkpoint — pass a checkpoint folder or a .bin file", path);
    free(m);
    return HS_EBADINPUT;
}

void rt_model_clear(rt_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_maps; i++)
        if (m->maps[i]) munmap(m->maps[i], m->map_lens[i]);
    free(m->maps);
    free(m->map_lens);
    hs_arena_free(&m->weights);
    free(m->path);
    free(m->config_json);
    memset(m, 0, sizeof *m);
}

void rt_model_free(rt_model *m) {
    if (!m) return;
    rt_model_clear(m);
    free(m);
}

/* float fields hold decimal values from configs (1e-5, 500000); print them as such, not as the
 * nearest binary32 widened to double (9.9999997e-06). */
static double shortest(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)f);
    return strtod(buf, NULL);
}

char *rt_model_info_json(const rt_model *m) {
    const rt_config *g = &m->cfg;
    cJSON *o = cJSON_CreateObject();
    /* the first eleven keys, in this order, are the `headscope info --json` contract */
    cJSON_AddStringToObject(o, "format", g->format == RT_FORMAT_HF ? "hf" : "llama2c");
    cJSON_AddStringToObject(o, "model_type", g->model_type);
    cJSON_AddNumberToObject(o, "n_layers", g->n_layers);
    cJSON_AddNumberToObject(o, "n_heads", g->n_heads);
    cJSON_AddNumberToObject(o, "n_kv_heads", g->n_kv_heads);
    cJSON_AddNumberToObject(o, "d_model", g->d_model);
    cJSON_AddNumberToObject(o, "d_head", g->d_head);
    cJSON_AddNumberToObject(o, "d_mlp", g->d_mlp);
    cJSON_AddNumberToObject(o, "vocab_size", g->vocab_size);
    cJSON_AddNumberToObject(o, "n_ctx", g->n_ctx);
    cJSON_AddNumberToObject(o, "n_params", (double)g->n_params);
    cJSON_AddStringToObject(o, "arch", g->arch == RT_ARCH_GPT2 ? "gpt2" : "llama");
    cJSON_AddStringToObject(o, "norm", g->norm == RT_NORM_LAYER ? "layernorm" : "rmsnorm");
    cJSON_AddNumberToObject(o, "norm_eps", shortest(g->norm_eps));
    cJSON_AddStringToObject(o, "act", g->act == RT_ACT_GELU_TANH ? "gelu_tanh" : g->act == RT_ACT_GELU_EXACT ? "gelu" : "silu");
    cJSON_AddStringToObject(o, "positions", g->arch == RT_ARCH_GPT2 ? "learned" : "rope");
    if (g->arch == RT_ARCH_LLAMA) {
        cJSON_AddNumberToObject(o, "rope_theta", shortest(g->rope_theta));
        cJSON_AddBoolToObject(o, "rope_interleaved", g->rope_interleaved);
    }
    cJSON_AddBoolToObject(o, "tied_embeddings", g->tied_embeddings);
    cJSON_AddNumberToObject(o, "sliding_window", g->sliding_window);
    cJSON_AddNumberToObject(o, "bos_id", g->bos_id);
    cJSON_AddNumberToObject(o, "eos_id", g->eos_id);
    cJSON_AddStringToObject(o, "dtype", g->dtype[0] ? g->dtype : "F32");
    if (m->path) cJSON_AddStringToObject(o, "path", m->path);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    HS_ASSERT(s);
    return s;
}
