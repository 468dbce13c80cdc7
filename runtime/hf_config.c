/* hf_config.c — Hugging Face config.json -> rt_config for the gpt2, llama, mistral and qwen2 families.
 *
 * Why here and not in the loader: the config decides every tensor shape the loader will accept,
 * so it is validated on its own (and fuzzed: tests/fuzz/fuzz_config.c) before any weight is read.
 * Both transformers spellings are read: 4.x (`rope_theta`, `rope_scaling` at top level) and 5.x
 * (`rope_parameters: {rope_theta, rope_type}`). Anything that would change the maths and that the
 * forward pass does not implement (rope scaling, GPT-2 attention variants, mixed sliding/full
 * layers, other activations) is refused with HS_EUNSUPPORTED rather than silently ignored.
 */
#include "model.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define SUPPORTED "supported: gpt2, llama, mistral, qwen2"

typedef struct {
    const cJSON *root;
    const char *where;   /* path of config.json, for error lines */
    hs_status st;        /* first error (already logged) */
} cfg_ctx;

static bool present(const cJSON *v) { return v && !cJSON_IsNull(v); }

static const cJSON *item(cfg_ctx *c, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(c->root, key);
}

static void fail_lacks(cfg_ctx *c, const char *key) {
    hs_log_error("model", "config.json lacks '%s' (%s) — the config is incomplete; re-save it with transformers' save_pretrained", key, c->where);
    c->st = HS_EBADINPUT;
}

/* Integer in [lo, INT_MAX]. Absent or null: *out = def when !required, else an error. */
static bool get_int(cfg_ctx *c, const char *key, bool required, int lo, int def, int *out) {
    const cJSON *v = item(c, key);
    if (!present(v)) {
        if (required) { fail_lacks(c, key); return false; }
        *out = def;
        return true;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < lo || d > INT_MAX) {
        hs_log_error("model", "config.json field '%s' must be an integer >= %d (%s) — fix the config", key, lo, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    *out = (int)d;
    return true;
}

/* Finite number > 0 (eps, theta). */
static bool get_pos_float(cfg_ctx *c, const cJSON *v, const char *key, float def, float *out) {
    if (!present(v)) { *out = def; return true; }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    /* checked as the float it becomes: 1e-85 is positive as a double but 0 as a float */
    if (!isfinite(d) || d > 3.0e38 || !((float)d > 0)) {
        hs_log_error("model", "config.json field '%s' must be a positive number (%s) — fix the config", key, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    *out = (float)d;
    return true;
}

static bool get_bool(cfg_ctx *c, const char *key, bool def, bool *out) {
    const cJSON *v = item(c, key);
    if (!present(v)) { *out = def; return true; }
    if (!cJSON_IsBool(v)) {
        hs_log_error("model", "config.json field '%s' must be true or false (%s) — fix the config", key, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* String field; absent/null -> def. */
static bool get_str(cfg_ctx *c, const char *key, const char *def, const char **out) {
    const cJSON *v = item(c, key);
    if (!present(v)) { *out = def; return true; }
    if (!cJSON_IsString(v)) {
        hs_log_error("model", "config.json field '%s' must be a string (%s) — fix the config", key, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    *out = v->valuestring;
    return true;
}

/* bos/eos: an int, or the first int of a list (Llama 3 lists several eos ids); -1 when absent or
 * outside [0, vocab) — an out-of-range id (e.g. GPT-2's 50256 in a resized vocab) cannot be used. */
static int special_id(cfg_ctx *c, const char *key, int vocab) {
    const cJSON *v = item(c, key);
    if (cJSON_IsArray(v)) v = v->child;
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < 0 || d >= vocab) return -1;
    return (int)d;
}

static bool unsupported(cfg_ctx *c, const char *what, const char *fix) {
    hs_log_error("model", "%s is not supported (%s) — %s", what, c->where, fix);
    c->st = HS_EUNSUPPORTED;
    return false;
}

static bool parse_gpt2(cfg_ctx *c, rt_config *cfg) {
    int n_inner;
    const char *act;
    bool b;
    if (!get_int(c, "vocab_size", true, 1, 0, &cfg->vocab_size)) return false;
    if (!get_int(c, "n_embd", true, 1, 0, &cfg->d_model)) return false;
    if (!get_int(c, "n_head", true, 1, 0, &cfg->n_heads)) return false;
    if (!get_int(c, "n_layer", true, 1, 0, &cfg->n_layers)) return false;
    /* n_positions is the saved name; very old configs carry only n_ctx (same meaning). */
    if (present(item(c, "n_positions")) || !present(item(c, "n_ctx"))) {
        if (!get_int(c, "n_positions", true, 1, 0, &cfg->n_ctx)) return false;
    } else if (!get_int(c, "n_ctx", true, 1, 0, &cfg->n_ctx)) return false;
    if (!get_int(c, "n_inner", false, 1, 0, &n_inner)) return false;
    if (n_inner == 0) {
        if (cfg->d_model > INT_MAX / 4) {
            hs_log_error("model", "config.json n_embd %d is too large (4*n_embd overflows) (%s) — fix the config", cfg->d_model, c->where);
            c->st = HS_EBADINPUT;
            return false;
        }
        n_inner = 4 * cfg->d_model;
    }
    cfg->d_mlp = n_inner;
    if (cfg->d_model % cfg->n_heads != 0) {
        hs_log_error("model", "config.json n_embd %d is not divisible by n_head %d (%s) — fix the config",
                     cfg->d_model, cfg->n_heads, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    cfg->n_kv_heads = cfg->n_heads;
    cfg->d_head = cfg->d_model / cfg->n_heads;
    if (!get_pos_float(c, item(c, "layer_norm_epsilon"), "layer_norm_epsilon", 1e-5f, &cfg->norm_eps)) return false;
    if (!get_str(c, "activation_function", "gelu_new", &act)) return false;
    if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) cfg->act = RT_ACT_GELU_TANH;
    else if (!strcmp(act, "gelu")) cfg->act = RT_ACT_GELU_EXACT;
    else {
        char what[96];
        snprintf(what, sizeof what, "activation_function '%.40s'", act);
        return unsupported(c, what, "supported: gelu_new, gelu_pytorch_tanh, gelu");
    }
    if (!get_bool(c, "tie_word_embeddings", true, &cfg->tied_embeddings)) return false;
    if (!get_bool(c, "scale_attn_by_inverse_layer_idx", false, &b)) return false;
    if (b) return unsupported(c, "scale_attn_by_inverse_layer_idx=true", "headscope implements standard GPT-2 attention only");
    if (!get_bool(c, "reorder_and_upcast_attn", false, &b)) return false;
    if (b) return unsupported(c, "reorder_and_upcast_attn=true", "headscope implements standard GPT-2 attention only");
    if (!get_bool(c, "scale_attn_weights", true, &b)) return false;
    if (!b) return unsupported(c, "scale_attn_weights=false", "headscope implements standard GPT-2 attention (scaled by 1/sqrt(head_dim)) only");
    cfg->arch = RT_ARCH_GPT2;
    cfg->norm = RT_NORM_LAYER;
    cfg->rope_theta = 0;
    return true;
}

/* RoPE: 5.x `rope_parameters` or 4.x `rope_theta` + `rope_scaling`. Only plain RoPE is implemented. */
static bool parse_rope(cfg_ctx *c, rt_config *cfg) {
    const cJSON *rp = item(c, "rope_parameters");
    const cJSON *theta = item(c, "rope_theta");
    const char *type = "default";
    if (present(rp)) {
        if (!cJSON_IsObject(rp)) {
            hs_log_error("model", "config.json field 'rope_parameters' must be an object (%s) — fix the config", c->where);
            c->st = HS_EBADINPUT;
            return false;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        if (!present(t)) t = cJSON_GetObjectItemCaseSensitive(rp, "type");
        if (present(t)) {
            if (!cJSON_IsString(t)) {
                hs_log_error("model", "config.json field 'rope_parameters.rope_type' must be a string (%s) — fix the config", c->where);
                c->st = HS_EBADINPUT;
                return false;
            }
            type = t->valuestring;
        }
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(rp, "rope_theta");
        if (present(th)) theta = th;
    }
    if (strcmp(type, "default") != 0) {
        char what[96];
        snprintf(what, sizeof what, "rope_type '%.40s'", type);
        return unsupported(c, what, "headscope implements plain RoPE (rope_type 'default') only");
    }
    const cJSON *rs = item(c, "rope_scaling");
    if (present(rs)) {
        /* A scaling block that says "default" is plain RoPE; any other is a different position map. */
        const cJSON *t = cJSON_IsObject(rs) ? cJSON_GetObjectItemCaseSensitive(rs, "rope_type") : NULL;
        if (!present(t) && cJSON_IsObject(rs)) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
        if (!(cJSON_IsString(t) && strcmp(t->valuestring, "default") == 0)) {
            char what[96];
            snprintf(what, sizeof what, "rope_scaling (type '%.40s')", cJSON_IsString(t) ? t->valuestring : "?");
            return unsupported(c, what, "headscope implements plain RoPE without scaling only");
        }
    }
    return get_pos_float(c, theta, "rope_theta", 10000.0f, &cfg->rope_theta);
}

/* Sliding-window attention. The forward pass applies one window to every layer, so a config whose
 * layers mix full and sliding attention (HF's layer_types / Qwen2's max_window_layers) is refused. */
static bool parse_sliding(cfg_ctx *c, rt_config *cfg) {
    int window = 0;
    bool use = true;
    if (!strcmp(cfg->model_type, "llama")) return true;
    if (!strcmp(cfg->model_type, "qwen2") && !get_bool(c, "use_sliding_window", false, &use)) return false;
    if (use && !get_int(c, "sliding_window", false, 0, 0, &window)) return false;
    if (!use) window = 0;
    const cJSON *lt = item(c, "layer_types");
    int n_sliding = 0, n_full = 0;
    if (present(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != cfg->n_layers) {
            hs_log_error("model", "config.json field 'layer_types' must list one type per layer (%s) — fix the config", c->where);
            c->st = HS_EBADINPUT;
            return false;
        }
        for (const cJSON *e = lt->child; e; e = e->next) {
            if (cJSON_IsString(e) && !strcmp(e->valuestring, "sliding_attention")) n_sliding++;
            else if (cJSON_IsString(e) && !strcmp(e->valuestring, "full_attention")) n_full++;
            else return unsupported(c, "a layer_types entry other than full_attention/sliding_attention",
                                    "headscope implements full and sliding-window attention only");
        }
    } else if (!strcmp(cfg->model_type, "qwen2") && window > 0) {
        int mwl;
        if (!get_int(c, "max_window_layers", false, 0, 28, &mwl)) return false;
        /* transformers: layer i slides iff i >= max_window_layers */
        n_full = mwl < cfg->n_layers ? mwl : cfg->n_layers;
        n_sliding = cfg->n_layers - n_full;
    } else {
        n_sliding = window > 0 ? cfg->n_layers : 0;
        n_full = cfg->n_layers - n_sliding;
    }
    if (n_sliding > 0 && n_full > 0)
        return unsupported(c, "a mix of sliding-window and full-attention layers",
                           "headscope applies one attention window to every layer");
    if (n_sliding > 0 && window <= 0) {
        hs_log_error("model", "config.json marks layers as sliding_attention but 'sliding_window' is not a positive integer (%s) — fix the config", c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    cfg->sliding_window = n_sliding > 0 ? window : 0;
    return true;
}

static bool parse_llama(cfg_ctx *c, rt_config *cfg) {
    const char *act;
    if (!get_int(c, "vocab_size", true, 1, 0, &cfg->vocab_size)) return false;
    if (!get_int(c, "hidden_size", true, 1, 0, &cfg->d_model)) return false;
    if (!get_int(c, "num_attention_heads", true, 1, 0, &cfg->n_heads)) return false;
    if (!get_int(c, "num_key_value_heads", false, 1, cfg->n_heads, &cfg->n_kv_heads)) return false;
    if (!get_int(c, "intermediate_size", true, 1, 0, &cfg->d_mlp)) return false;
    if (!get_int(c, "num_hidden_layers", true, 1, 0, &cfg->n_layers)) return false;
    if (!get_int(c, "max_position_embeddings", true, 1, 0, &cfg->n_ctx)) return false;
    if (!get_int(c, "head_dim", false, 1, 0, &cfg->d_head)) return false;
    if (cfg->d_head == 0) {
        if (cfg->d_model % cfg->n_heads != 0) {
            hs_log_error("model", "config.json hidden_size %d is not divisible by num_attention_heads %d and no head_dim is given (%s) — fix the config",
                         cfg->d_model, cfg->n_heads, c->where);
            c->st = HS_EBADINPUT;
            return false;
        }
        cfg->d_head = cfg->d_model / cfg->n_heads;
    }
    if (cfg->n_heads % cfg->n_kv_heads != 0) {
        hs_log_error("model", "config.json num_attention_heads %d is not a multiple of num_key_value_heads %d (%s) — fix the config",
                     cfg->n_heads, cfg->n_kv_heads, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    if (cfg->d_head % 2 != 0) {
        hs_log_error("model", "config.json head_dim %d is odd; RoPE rotates pairs (%s) — fix the config", cfg->d_head, c->where);
        c->st = HS_EBADINPUT;
        return false;
    }
    if (!get_pos_float(c, item(c, "rms_norm_eps"), "rms_norm_eps", 1e-6f, &cfg->norm_eps)) return false;
    if (!get_str(c, "hidden_act", "silu", &act)) return false;
    if (strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0) {
        char what[96];
        snprintf(what, sizeof what, "hidden_act '%.40s'", act);
        return unsupported(c, what, "the llama family is supported with hidden_act 'silu' only");
    }
    if (!get_bool(c, "tie_word_embeddings", false, &cfg->tied_embeddings)) return false;
    if (!parse_rope(c, cfg)) return false;
    if (!parse_sliding(c, cfg)) return false;
    cfg->arch = RT_ARCH_LLAMA;
    cfg->norm = RT_NORM_RMS;
    cfg->act = RT_ACT_SILU;
    cfg->rope_interleaved = false;   /* HF checkpoints rotate halves (rotate_half) */
    return true;
}

/* Every tensor size derived from the config must fit in size_t bytes, and so must the whole model
 * (an upper bound: every optional bias counted), and every width the forward pass keeps in an int
 * (H*HD, KV*HD, 3*D) must fit in an int. */
static bool check_sizes(cfg_ctx *c, const rt_config *cfg) {
    size_t D = (size_t)cfg->d_model, V = (size_t)cfg->vocab_size, F = (size_t)cfg->d_mlp, L = (size_t)cfg->n_layers;
    size_t HD = (size_t)cfg->d_head, H = (size_t)cfg->n_heads, KV = (size_t)cfg->n_kv_heads;
    size_t qd = 0, kd = 0, a, b, layer = 0, total = 0;
    bool ok = hs_mul_ok(H, HD, &qd) && qd <= INT_MAX && hs_mul_ok(KV, HD, &kd) && kd <= INT_MAX &&
              (cfg->arch != RT_ARCH_GPT2 || D <= INT_MAX / 3);
    /* per layer: q, k, v, o weights; gate, up, down; biases and norms (generously 8 vectors of max width) */
    ok = ok && hs_mul_ok(qd, D, &a) && hs_mul_ok(a, 2, &a) && hs_add_ok(layer, a, &layer) &&
         hs_mul_ok(kd, D, &a) && hs_mul_ok(a, 2, &a) && hs_add_ok(layer, a, &layer) &&
         hs_mul_ok(F, D, &a) && hs_mul_ok(a, 3, &a) && hs_add_ok(layer, a, &layer) &&
         hs_add_ok(qd + kd, D + F, &a) && hs_mul_ok(a, 8, &a) && hs_add_ok(layer, a, &layer) &&
         hs_mul_ok(layer, L, &total) &&
         hs_mul_ok(V, D, &a) && hs_mul_ok(a, 2, &a) && hs_add_ok(total, a, &total) &&
         hs_mul_ok((size_t)cfg->n_ctx, D, &b) && hs_add_ok(total, b, &total) &&
         hs_add_ok(total, 2 * D, &total) && hs_mul_ok(total, sizeof(float), &total);
    if (!ok) {
        hs_log_error("model", "config.json dimensions are too large: tensor sizes overflow (%s) — fix the config", c->where);
        c->st = HS_EBADINPUT;
    }
    return ok;
}

hs_status rt_hf_config_parse(const char *json, size_t len, const char *where, rt_config *cfg) {
    cfg_ctx c = {NULL, where, HS_OK};
    rt_config r;
    memset(&r, 0, sizeof r);
    cJSON *root = cJSON_ParseWithLength(json, len);
    c.root = root;
    if (!cJSON_IsObject(root)) {
        hs_log_error("model", "config.json is not a JSON object (%s) — the file is corrupt", where);
        c.st = HS_EBADINPUT;
        goto fail;
    }
    const char *mt;
    if (!get_str(&c, "model_type", NULL, &mt)) goto fail;
    if (!mt) { fail_lacks(&c, "model_type"); goto fail; }
    if (strcmp(mt, "gpt2") && strcmp(mt, "llama") && strcmp(mt, "mistral") && strcmp(mt, "qwen2")) {
        hs_log_error("model", "model_type '%.40s' is not supported (%s) — " SUPPORTED, mt, where);
        c.st = HS_EUNSUPPORTED;
        goto fail;
    }
    snprintf(r.model_type, sizeof r.model_type, "%s", mt);
    r.format = RT_FORMAT_HF;
    if (!(strcmp(mt, "gpt2") == 0 ? parse_gpt2(&c, &r) : parse_llama(&c, &r))) goto fail;
    if (!check_sizes(&c, &r)) goto fail;
    r.bos_id = special_id(&c, "bos_token_id", r.vocab_size);
    r.eos_id = special_id(&c, "eos_token_id", r.vocab_size);
    cJSON_Delete(root);
    *cfg = r;
    return HS_OK;
fail:
    cJSON_Delete(root);
    HS_ASSERT(c.st != HS_OK);
    return c.st;
}
