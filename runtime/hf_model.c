/* hf_model.c — load a Hugging Face checkpoint folder (config.json + safetensors, sharded or not)
 * into an rt_model.
 *
 * Memory: F32 tensors that are 4-byte aligned in the file are used in place from the read-only
 * mmap (zero copy: a model costs its file's pages, shared with the page cache); F16/BF16 (and
 * misaligned F32) are converted once into m->weights. Files from which nothing is used in place
 * are unmapped at the end, so converted checkpoints do not hold both copies.
 * Every tensor's dtype and shape is checked against the config before it is used; a missing or
 * mis-shaped tensor is one error line naming the tensor, what was expected and what was found.
 */
#include "model.h"
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    rt_model *m;
    const char *dir;
    rt_st_file *files;        /* (n_files) model.safetensors, or every shard of the index */
    bool *in_place;           /* (n_files) some weight points into this file's map */
    int n_files;
    rt_st_index ix;           /* sharded only */
    bool sharded;
    char *index_path;         /* sharded only: where a missing tensor is reported */
    int n_by_dtype[3];        /* F32, F16, BF16 tensors used, for cfg.dtype */
} hf_ctx;

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hs_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Find `name`: *t = NULL when absent. Errors only for an index that names a shard lacking it. */
static hs_status find(hf_ctx *c, const char *name, const rt_st_tensor **t, int *fi) {
    *t = NULL;
    if (!c->sharded) {
        *fi = 0;
        *t = rt_st_find(&c->files[0], name);
        return HS_OK;
    }
    int s = rt_st_index_find(&c->ix, name);
    if (s < 0) return HS_OK;
    *fi = s;
    *t = rt_st_find(&c->files[s], name);
    if (!*t) {
        hs_log_error("model", "the index maps tensor '%s' to %s, which does not contain it (%s) — the sharded checkpoint is inconsistent",
                     name, c->files[s].where, c->index_path);
        return HS_EBADINPUT;
    }
    return HS_OK;
}

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Load tensor `name` of shape (d0) or (d0, d1) as fp32. Absent and !required: *out = NULL, OK. */
static hs_status take(hf_ctx *c, const char *name, bool required, int ndim, int64_t d0, int64_t d1, const float **out) {
    const rt_st_tensor *t;
    int fi = 0;
    *out = NULL;
    hs_status st = find(c, name, &t, &fi);
    if (st != HS_OK) return st;
    if (!t) {
        if (!required) return HS_OK;
        hs_log_error("model", "tensor '%s' missing (%s) — is this checkpoint complete?",
                     name, c->sharded ? c->index_path : c->files[0].where);
        return HS_EBADINPUT;
    }
    int64_t want[2] = {d0, d1};
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == want[i];
    if (!same) {
        char got[160], exp[64];
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        fmt_shape(exp, sizeof exp, ndim, want);
        hs_log_error("model", "tensor '%s' has shape %s, expected %s from config.json (%s) — the weights do not match the config",
                     name, got, exp, c->files[fi].where);
        return HS_EBADINPUT;
    }
    size_t n = t->n_elem;
    float *dst;
    switch (t->dtype) {
    case RT_ST_F32:
        c->n_by_dtype[0]++;
        if (((uintptr_t)t->data & 3u) == 0) {
            *out = (const float *)(const void *)t->data;
            c->in_place[fi] = true;
        } else {
            /* the format does not promise alignment; a misaligned float load is UB, so copy */
            dst = hs_arena_alloc(&c->m->weights, n * sizeof(float));
            memcpy(dst, t->data, n * sizeof(float));
            *out = dst;
        }
        break;
    case RT_ST_F16:
    case RT_ST_BF16:
        c->n_by_dtype[t->dtype == RT_ST_F16 ? 1 : 2]++;
        dst = hs_arena_alloc(&c->m->weights, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);   /* data may be only 1-byte aligned */
            dst[i] = t->dtype == RT_ST_F16 ? rt_f16_to_f32(h) : rt_bf16_to_f32(h);
        }
        *out = dst;
        break;
    default:
        hs_log_error("model", "tensor '%s' has dtype %s (%s) — headscope loads F32, F16 and BF16 weights only",
                     name, rt_st_dtype_name(t->dtype), c->files[fi].where);
        return HS_EUNSUPPORTED;
    }
    c->m->cfg.n_params += (int64_t)n;
    return HS_OK;
}

/* A linear layer: weight (n_out, n_in) for nn.Linear or (n_in, n_out) for GPT-2 Conv1D; bias (n_out). */
static hs_status linear(hf_ctx *c, rt_linear *L, const char *base, bool bias_required, int n_in, int n_out, bool in_major) {
    char name[512];
    hs_status st;
    snprintf(name, sizeof name, "%s.weight", base);
    st = take(c, name, true, 2, in_major ? n_in : n_out, in_major ? n_out : n_in, &L->w);
    if (st != HS_OK) return st;
    snprintf(name, sizeof name, "%s.bias", base);
    st = take(c, name, bias_required, 1, n_out, 0, &L->b);
    if (st != HS_OK) return st;
    L->n_in = n_in;
    L->n_out = n_out;
    L->in_major = in_major;
    return HS_OK;
}

static hs_status norm(hf_ctx *c, rt_norm *N, const char *base, bool has_bias, int D) {
    char name[512];
    snprintf(name, sizeof name, "%s.weight", base);
    hs_status st = take(c, name, true, 1, D, 0, &N->w);
    if (st != HS_OK || !has_bias) return st;
    snprintf(name, sizeof name, "%s.bias", base);
    return take(c, name, true, 1, D, 0, &N->b);
}

static hs_status load_gpt2(hf_ctx *c) {
    rt_model *m = c->m;
    const rt_config *g = &m->cfg;
    int D = g->d_model, F = g->d_mlp;
    const rt_st_tensor *t;
    int fi;
    char name[512], base[256];
    hs_status st;
    /* GPT2LMHeadModel saves "transformer.*"; a bare GPT2Model saves the same names without it. */
    if ((st = find(c, "transformer.wte.weight", &t, &fi)) != HS_OK) return st;
    const char *P = t ? "transformer." : "";

    snprintf(name, sizeof name, "%swte.weight", P);
    if ((st = take(c, name, true, 2, g->vocab_size, D, &m->tok_embed)) != HS_OK) return st;
    snprintf(name, sizeof name, "%swpe.weight", P);
    if ((st = take(c, name, true, 2, g->n_ctx, D, &m->pos_embed)) != HS_OK) return st;
    for (int l = 0; l < g->n_layers; l++) {
        rt_layer *ly = &m->layers[l];
        /* h.{l}.attn.bias / masked_bias are causal-mask buffers, not parameters: never read. */
        snprintf(base, sizeof base, "%sh.%d.ln_1", P, l);
        if ((st = norm(c, &ly->ln1, base, true, D)) != HS_OK) return st;
        snprintf(base, sizeof base, "%sh.%d.attn.c_attn", P, l);
        if ((st = linear(c, &ly->qkv, base, true, D, 3 * D, true)) != HS_OK) return st;
        snprintf(base, sizeof base, "%sh.%d.attn.c_proj", P, l);
        if ((st = linear(c, &ly->o, base, true, D, D, true)) != HS_OK) return st;
        snprintf(base, sizeof base, "%sh.%d.ln_2", P, l);
        if ((st = norm(c, &ly->ln2, base, true, D)) != HS_OK) return st;
        snprintf(base, sizeof base, "%sh.%d.mlp.c_fc", P, l);
        if ((st = linear(c, &ly->up, base, true, D, F, true)) != HS_OK) return st;
        snprintf(base, sizeof base, "%sh.%d.mlp.c_proj", P, l);
        if ((st = linear(c, &ly->down, base, true, F, D, true)) != HS_OK) return st;
    }
    snprintf(base, sizeof base, "%sln_f", P);
    if ((st = norm(c, &m->ln_final, base, true, D)) != HS_OK) return st;
    if (!g->tied_embeddings) {
        if ((st = take(c, "lm_head.weight", true, 2, g->vocab_size, D, &m->lm_head.w)) != HS_OK) return st;
    }
    return HS_OK;
}

static hs_status load_llama(hf_ctx *c, bool attention_bias, bool mlp_bias) {
    rt_model *m = c->m;
    const rt_config *g = &m->cfg;
    int D = g->d_model, F = g->d_mlp, QD = g->n_heads * g->d_head, KD = g->n_kv_heads * g->d_head;
    bool qkv_bias = attention_bias || strcmp(g->model_type, "qwen2") == 0;   /* Qwen2 always has q/k/v biases */
    char base[256];
    hs_status st;

    if ((st = take(c, "model.embed_tokens.weight", true, 2, g->vocab_size, D, &m->tok_embed)) != HS_OK) return st;
    for (int l = 0; l < g->n_layers; l++) {
        rt_layer *ly = &m->layers[l];
        snprintf(base, sizeof base, "model.layers.%d.input_layernorm", l);
        if ((st = norm(c, &ly->ln1, base, false, D)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.self_attn.q_proj", l);
        if ((st = linear(c, &ly->q, base, qkv_bias, D, QD, false)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.self_attn.k_proj", l);
        if ((st = linear(c, &ly->k, base, qkv_bias, D, KD, false)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.self_attn.v_proj", l);
        if ((st = linear(c, &ly->v, base, qkv_bias, D, KD, false)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.self_attn.o_proj", l);
        if ((st = linear(c, &ly->o, base, attention_bias, QD, D, false)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.post_attention_layernorm", l);
        if ((st = norm(c, &ly->ln2, base, false, D)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.mlp.gate_proj", l);
        if ((st = linear(c, &ly->gate, base, mlp_bias, D, F, false)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.mlp.up_proj", l);
        if ((st = linear(c, &ly->up, base, mlp_bias, D, F, false)) != HS_OK) return st;
        snprintf(base, sizeof base, "model.layers.%d.mlp.down_proj", l);
        if ((st = linear(c, &ly->down, base, mlp_bias, F, D, false)) != HS_OK) return st;
    }
    if ((st = norm(c, &m->ln_final, "model.norm", false, D)) != HS_OK) return st;
    if (!g->tied_embeddings) {
        if ((st = take(c, "lm_head.weight", true, 2, g->vocab_size, D, &m->lm_head.w)) != HS_OK) return st;
    }
    return HS_OK;
}

/* attention_bias / mlp_bias are not in rt_config (any bias present in the file is used anyway);
 * they only make the biases required. rt_hf_config_parse has already validated the text. */
static void bias_flags(const char *json, size_t len, bool *attn, bool *mlp) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    *attn = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "attention_bias"));
    *mlp = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "mlp_bias"));
    cJSON_Delete(root);
}

hs_status rt_hf_load(const char *dir, rt_model *m) {
    hf_ctx c;
    hs_status st;
    char *cfg_path = join(dir, "config.json");
    char *single = join(dir, "model.safetensors");
    char *text = NULL;
    size_t text_len = 0;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.dir = dir;
    memset(m, 0, sizeof *m);
    hs_arena_init(&m->weights, 0);
    m->path = hs_xstrdup(dir);

    if ((st = hs_read_file("model", cfg_path, &text, &text_len)) != HS_OK) goto fail;
    if ((st = rt_hf_config_parse(text, text_len, cfg_path, &m->cfg)) != HS_OK) goto fail;
    m->config_json = text;
    text = NULL;

    if (file_exists(single)) {
        c.n_files = 1;
        c.files = hs_xcalloc(1, sizeof *c.files);
        c.in_place = hs_xcalloc(1, sizeof *c.in_place);
        if ((st = rt_st_open(single, &c.files[0])) != HS_OK) goto fail;
    } else {
        c.index_path = join(dir, "model.safetensors.index.json");
        if (!file_exists(c.index_path)) {
            hs_log_error("model", "%s has config.json but neither model.safetensors nor model.safetensors.index.json — only safetensors checkpoints are supported (re-save with save_pretrained(safe_serialization=True))", dir);
            st = HS_EBADINPUT;
            goto fail;
        }
        char *ij = NULL;
        size_t ij_len = 0;
        if ((st = hs_read_file("model", c.index_path, &ij, &ij_len)) != HS_OK) goto fail;
        st = rt_st_index_parse(ij, ij_len, c.index_path, &c.ix);
        free(ij);
        if (st != HS_OK) goto fail;
        c.sharded = true;
        c.files = hs_xcalloc((size_t)c.ix.n_shards + 1, sizeof *c.files);
        c.in_place = hs_xcalloc((size_t)c.ix.n_shards + 1, sizeof *c.in_place);
        for (int i = 0; i < c.ix.n_shards; i++) {
            char *sp = join(dir, c.ix.shards[i]);
            st = rt_st_open(sp, &c.files[i]);
            free(sp);
            if (st != HS_OK) goto fail;
            c.n_files = i + 1;
        }
    }

    m->cfg.n_params = 0;
    m->layers = hs_arena_calloc(&m->weights, (size_t)m->cfg.n_layers, sizeof *m->layers);
    if (m->cfg.arch == RT_ARCH_GPT2) {
        st = load_gpt2(&c);
    } else {
        bool ab, mb;
        bias_flags(m->config_json, text_len, &ab, &mb);
        st = load_llama(&c, ab, mb);
    }
    if (st != HS_OK) goto fail;
    if (m->cfg.tied_embeddings) m->lm_head.w = m->tok_embed;   /* counted once: not taken again */
    m->lm_head.b = NULL;
    m->lm_head.n_in = m->cfg.d_model;
    m->lm_head.n_out = m->cfg.vocab_size;
    m->lm_head.in_major = false;
    {
        int kinds = (c.n_by_dtype[0] > 0) + (c.n_by_dtype[1] > 0) + (c.n_by_dtype[2] > 0);
        snprintf(m->cfg.dtype, sizeof m->cfg.dtype, "%s",
                 kinds > 1 ? "mixed" : c.n_by_dtype[1] ? "F16" : c.n_by_dtype[2] ? "BF16" : "F32");
    }
    /* Keep only the maps that weights point into; the rest were fully converted. */
    for (int i = 0; i < c.n_files; i++) {
        if (!c.in_place[i]) continue;
        m->maps = hs_xrealloc(m->maps, (size_t)(m->n_maps + 1) * sizeof *m->maps);
        m->map_lens = hs_xrealloc(m->map_lens, (size_t)(m->n_maps + 1) * sizeof *m->map_lens);
        rt_st_detach_map(&c.files[i], &m->maps[m->n_maps], &m->map_lens[m->n_maps]);
        m->n_maps++;
    }
    st = HS_OK;
fail:
    if (st != HS_OK) rt_model_clear(m);
    for (int i = 0; i < c.n_files; i++) rt_st_close(&c.files[i]);
    free(c.files);
    free(c.in_place);
    rt_st_index_free(&c.ix);
    free(c.index_path);
    free(text);
    free(cfg_path);
    free(single);
    return st;
}
