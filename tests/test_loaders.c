/* test_loaders.c — checkpoint loaders: HF folders (gpt2/llama/mistral/qwen2, F32/F16/BF16, tied and
 * untied, sharded) and llama2.c .bin, against independent decodes of the files' own bytes; then every
 * malformed-input path, each checked for its status, exactly one error line, and (under SAN=1) no leak.
 *
 * Real inputs: ../shared/models (skipped visibly when absent) and tests/fixtures/models/rand-*.
 * Malformed inputs are written by this program into a mkdtemp() folder from small synthetic files.
 * Weight values are checked against this file's own safetensors reader and its own ldexp-based
 * F16/BF16 decoding, so a shared bug in the runtime's parser or converters cannot cancel out.
 */
#include "testlib.h"
#include "model.h"
#include "safetensors.h"
#include "tokenizer.h"
#include <cjson/cJSON.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static char g_tmp[256];

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); fclose(f); return NULL; }
    fclose(f);
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fwrite(data, 1, n, f);
    fclose(f);
}

static const char *tmp_path(const char *rel) {
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 512, "%s/%s", g_tmp, rel);
    return b;
}

/* Capture stderr around a call, to check the text and the number of lines of error output. */
static int g_saved_fd = -1;
static void cap_begin(void) {
    fflush(stderr);
    g_saved_fd = dup(2);
    FILE *f = fopen(tmp_path("stderr.txt"), "w");
    dup2(fileno(f), 2);
    fclose(f);
}
static char g_cap[4096];
static const char *cap_end(int *lines) {
    fflush(stderr);
    dup2(g_saved_fd, 2);
    close(g_saved_fd);
    size_t n = 0;
    char *s = slurp(tmp_path("stderr.txt"), &n);
    snprintf(g_cap, sizeof g_cap, "%s", s ? s : "");
    free(s);
    *lines = 0;
    for (char *p = g_cap; *p; p++) if (*p == '\n') (*lines)++;
    size_t L = strlen(g_cap);
    if (L && g_cap[L - 1] == '\n') g_cap[L - 1] = 0;
    return g_cap;
}

/* Independent decoders (not the runtime's bit tricks). */
static double dec_f16(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}
static double dec_bf16(uint16_t b) {
    int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
    double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(128 + m, e - 134);
    return s ? -v : v;
}

/* Element idx of tensor `name` in a safetensors file, read and decoded by this test alone. */
static double raw_elem(const char *file, const char *name, size_t idx, bool *ok) {
    size_t len;
    char *b = slurp(file, &len);
    double v = NAN;
    *ok = false;
    if (!b || len < 8) { free(b); return v; }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)b[i];
    cJSON *h = cJSON_ParseWithLength(b + 8, n);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(h, name);
    if (t) {
        const char *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring;
        size_t begin = (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), 0)->valuedouble;
        const unsigned char *p = (const unsigned char *)b + 8 + n + begin;
        if (!strcmp(dt, "F32")) { float f; memcpy(&f, p + 4 * idx, 4); v = f; *ok = true; }
        else if (!strcmp(dt, "F16")) { v = dec_f16((uint16_t)(p[2 * idx] | p[2 * idx + 1] << 8)); *ok = true; }
        else if (!strcmp(dt, "BF16")) { v = dec_bf16((uint16_t)(p[2 * idx] | p[2 * idx + 1] << 8)); *ok = true; }
    }
    cJSON_Delete(h);
    free(b);
    return v;
}

/* Sum of elements of every tensor in a safetensors file (for hand counts of n_params). */
static int64_t raw_total_elems(const char *file, const char *skip_prefix) {
    size_t len;
    char *b = slurp(file, &len);
    int64_t tot = 0;
    if (!b) return -1;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)b[i];
    cJSON *h = cJSON_ParseWithLength(b + 8, n);
    for (cJSON *t = h ? h->child : NULL; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        if (skip_prefix && !strncmp(t->string, skip_prefix, strlen(skip_prefix))) continue;
        int64_t e = 1;
        for (cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "shape")->child; d; d = d->next) e *= (int64_t)d->valuedouble;
        tot += e;
    }
    cJSON_Delete(h);
    free(b);
    return tot;
}

static bool same_float(float a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return (double)a == b;
}

static bool in_maps(const rt_model *m, const void *p) {
    for (int i = 0; i < m->n_maps; i++) {
        const char *b = m->maps[i];
        if ((const char *)p >= b && (const char *)p < b + m->map_lens[i]) return true;
    }
    return false;
}

static cJSON *read_json(const char *path) {
    char *s = slurp(path, NULL);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    return j;
}
static int jint(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : -12345;
}

/* Compare one loaded value to the raw file value. */
static void check_val(const char *what, const float *loaded, size_t idx, const char *file, const char *name, size_t raw_idx) {
    bool ok;
    double want = raw_elem(file, name, raw_idx, &ok);
    TL_CHECK(ok && loaded && same_float(loaded[idx], want), "%s: %s[%zu] = %.9g, file says %.9g", what, name, raw_idx,
             loaded ? loaded[idx] : NAN, want);
}

/* ------------------------------------------------------------------ conversions */

static void test_conversions(void) {
    int bad16 = 0, badb = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        float a = rt_f16_to_f32((uint16_t)u), b = rt_bf16_to_f32((uint16_t)u);
        double ea = dec_f16((uint16_t)u), eb = dec_bf16((uint16_t)u);
        if (!same_float(a, ea) || !signbit(a) != !signbit(ea)) bad16++;
        if (!same_float(b, eb) || !signbit(b) != !signbit(eb)) badb++;
        if (isnan(a)) {   /* NaN payloads survive: quiet bit and mantissa moved up 13 bits */
            uint32_t bits; memcpy(&bits, &a, 4);
            if (bits != (((u & 0x8000u) << 16) | 0x7F800000u | ((u & 0x3FFu) << 13))) bad16++;
        }
    }
    TL_CHECK(bad16 == 0, "F16 -> F32 exact for all 65536 patterns (subnormals, +-0, inf, NaN payloads): %d mismatches", bad16);
    TL_CHECK(badb == 0, "BF16 -> F32 exact for all 65536 patterns: %d mismatches", badb);
}

/* ------------------------------------------------------------------ real models */

static void check_info_json(const rt_model *m, const char *fmt, const char *type) {
    char *js = rt_model_info_json(m);
    cJSON *j = cJSON_Parse(js);
    static const char *keys[] = {"format", "model_type", "n_layers", "n_heads", "n_kv_heads", "d_model", "d_head",
                                 "d_mlp", "vocab_size", "n_ctx", "n_params"};
    bool order = j != NULL;
    const cJSON *c = j ? j->child : NULL;
    for (int i = 0; i < 11 && order; i++, c = c->next) order = c && !strcmp(c->string, keys[i]);
    const rt_config *g = &m->cfg;
    bool vals = order && !strcmp(cJSON_GetObjectItem(j, "format")->valuestring, fmt) &&
                !strcmp(cJSON_GetObjectItem(j, "model_type")->valuestring, type) &&
                jint(j, "n_layers") == g->n_layers && jint(j, "n_heads") == g->n_heads &&
                jint(j, "n_kv_heads") == g->n_kv_heads && jint(j, "d_model") == g->d_model &&
                jint(j, "d_head") == g->d_head && jint(j, "d_mlp") == g->d_mlp &&
                jint(j, "vocab_size") == g->vocab_size && jint(j, "n_ctx") == g->n_ctx &&
                cJSON_GetObjectItem(j, "n_params")->valuedouble == (double)g->n_params;
    TL_CHECK(vals, "info json (%s/%s): the 11 contract keys in order with the config's values", fmt, type);
    cJSON_Delete(j);
    free(js);
}

static rt_model *load_ok(const char *path) {
    rt_model *m = NULL;
    int e0 = hs_log_error_count();
    hs_status st = rt_model_load(path, &m);
    TL_CHECK(st == HS_OK && m && hs_log_error_count() == e0, "load %s", path);
    return st == HS_OK ? m : NULL;
}

static void test_tiny_gpt2(void) {
    const char *dir = tl_shared_path("models/tiny-gpt2-shakespeare");
    if (!dir) { tl_skip("tiny-gpt2-shakespeare: ../shared is absent"); return; }
    char cfgp[600], stp[600];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    snprintf(stp, sizeof stp, "%s/model.safetensors", dir);
    rt_model *m = load_ok(dir);
    if (!m) return;
    cJSON *c = read_json(cfgp);
    const rt_config *g = &m->cfg;
    int D = jint(c, "n_embd"), V = jint(c, "vocab_size"), P = jint(c, "n_positions"), L = jint(c, "n_layer");
    int F = 4 * D;   /* n_inner is null */
    TL_CHECK(g->arch == RT_ARCH_GPT2 && g->format == RT_FORMAT_HF && !strcmp(g->model_type, "gpt2") &&
             g->d_model == D && g->n_heads == jint(c, "n_head") && g->n_kv_heads == g->n_heads && g->n_layers == L &&
             g->vocab_size == V && g->n_ctx == P && g->d_mlp == F && g->d_head == D / g->n_heads,
             "tiny-gpt2 config: D=%d H=%d L=%d V=%d n_ctx=%d F=%d (n_inner null -> 4D)", g->d_model, g->n_heads,
             g->n_layers, g->vocab_size, g->n_ctx, g->d_mlp);
    TL_CHECK(g->norm == RT_NORM_LAYER && g->act == RT_ACT_GELU_TANH && g->norm_eps == 1e-5f && g->tied_embeddings &&
             g->bos_id == 0 && g->eos_id == 0 && g->sliding_window == 0 && !strcmp(g->dtype, "F32"),
             "tiny-gpt2: LayerNorm eps 1e-5, gelu_new -> tanh GELU, tied, bos/eos 0, dtype F32");
    int64_t per_layer = 2LL * D + (int64_t)D * 3 * D + 3 * D + (int64_t)D * D + D + 2LL * D + (int64_t)D * F + F + (int64_t)F * D + D;
    int64_t hand = (int64_t)V * D + (int64_t)P * D + L * per_layer + 2LL * D;
    TL_CHECK(g->n_params == hand && hand == raw_total_elems(stp, NULL),
             "tiny-gpt2 n_params %lld == hand count %lld == elements in the file", (long long)g->n_params, (long long)hand);
    const rt_layer *l2 = &m->layers[2];
    TL_CHECK(l2->qkv.w && l2->qkv.in_major && l2->qkv.n_in == D && l2->qkv.n_out == 3 * D && l2->q.w == NULL &&
             l2->o.in_major && l2->up.n_out == F && l2->down.n_in == F && l2->gate.w == NULL && l2->ln1.b && l2->ln2.b,
             "tiny-gpt2 layer 2: fused c_attn (D -> 3D, Conv1D in_major), no q/k/v/gate, LayerNorm biases");
    TL_CHECK(m->lm_head.w == m->tok_embed && !m->lm_head.in_major && m->lm_head.n_in == D && m->lm_head.n_out == V &&
             m->lm_head.b == NULL, "tiny-gpt2 lm_head is the tied embedding (V, D), in_major=false");
    TL_CHECK(m->n_maps == 1 && in_maps(m, m->tok_embed) && in_maps(m, l2->qkv.w) && in_maps(m, m->ln_final.b),
             "tiny-gpt2 F32 weights are used in place from the mmap (zero copy)");
    check_val("c_attn.weight[5, 300] (Conv1D, row = input)", l2->qkv.w, 5 * 3 * D + 300, stp, "transformer.h.2.attn.c_attn.weight", 5 * 3 * D + 300);
    check_val("c_attn.bias", l2->qkv.b, 2 * D + 7, stp, "transformer.h.2.attn.c_attn.bias", 2 * D + 7);
    check_val("mlp.c_proj.weight last", m->layers[3].down.w, (size_t)F * D - 1, stp, "transformer.h.3.mlp.c_proj.weight", (size_t)F * D - 1);
    check_val("wpe", m->pos_embed, 511 * D + 1, stp, "transformer.wpe.weight", 511 * D + 1);
    check_val("wte", m->tok_embed, 1000 * D + 17, stp, "transformer.wte.weight", 1000 * D + 17);
    check_val("ln_f.bias", m->ln_final.b, 3, stp, "transformer.ln_f.bias", 3);
    char *cfgtext = slurp(cfgp, NULL);
    TL_CHECK(m->config_json && cfgtext && !strcmp(m->config_json, cfgtext), "tiny-gpt2 config_json is config.json's text");
    free(cfgtext);
    check_info_json(m, "hf", "gpt2");
    rt_tokenizer *tok = NULL;
    int e0 = hs_log_error_count();
    hs_status st = rt_model_open_tokenizer(m, NULL, &tok);
    TL_CHECK(st == HS_OK && tok && rt_tokenizer_vocab_size(tok) == V && hs_log_error_count() == e0,
             "tiny-gpt2 tokenizer.json opened from the folder (vocab %d)", tok ? rt_tokenizer_vocab_size(tok) : -1);
    rt_tokenizer_free(tok);
    cJSON_Delete(c);
    rt_model_free(m);
}

static void test_tiny_llama(void) {
    const char *dir = tl_shared_path("models/tiny-llama-shakespeare");
    if (!dir) { tl_skip("tiny-llama-shakespeare: ../shared is absent"); return; }
    char cfgp[600], stp[600];
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    snprintf(stp, sizeof stp, "%s/model.safetensors", dir);
    rt_model *m = load_ok(dir);
    if (!m) return;
    cJSON *c = read_json(cfgp);
    const rt_config *g = &m->cfg;
    TL_CHECK(g->arch == RT_ARCH_LLAMA && !strcmp(g->model_type, "llama") && g->d_model == jint(c, "hidden_size") &&
             g->n_heads == jint(c, "num_attention_heads") && g->n_kv_heads == jint(c, "num_key_value_heads") &&
             g->d_head == jint(c, "head_dim") && g->d_mlp == jint(c, "intermediate_size") &&
             g->n_layers == jint(c, "num_hidden_layers") && g->n_ctx == jint(c, "max_position_embeddings") &&
             g->vocab_size == jint(c, "vocab_size"),
             "tiny-llama config: D=%d H=%d KV=%d HD=%d F=%d L=%d n_ctx=%d V=%d", g->d_model, g->n_heads, g->n_kv_heads,
             g->d_head, g->d_mlp, g->n_layers, g->n_ctx, g->vocab_size);
    TL_CHECK(g->rope_theta == 10000.0f && !g->rope_interleaved && g->norm == RT_NORM_RMS && g->norm_eps == 1e-5f &&
             g->act == RT_ACT_SILU && !g->tied_embeddings && g->bos_id == 1 && g->eos_id == 2 && g->sliding_window == 0,
             "tiny-llama: rope_parameters.rope_theta 10000 (5.x spelling), half rotation, RMSNorm 1e-5, SiLU, untied, bos 1 eos 2");
    TL_CHECK(g->n_params == raw_total_elems(stp, NULL), "tiny-llama n_params %lld == elements in the file (untied: lm_head counted)",
             (long long)g->n_params);
    const rt_layer *l3 = &m->layers[3];
    TL_CHECK(l3->q.n_out == 128 && l3->k.n_out == 64 && l3->v.n_out == 64 && l3->o.n_in == 128 && !l3->q.in_major &&
             l3->qkv.w == NULL && l3->q.b == NULL && l3->ln1.b == NULL && l3->gate.n_out == 344 && l3->down.n_in == 344,
             "tiny-llama layer 3: q 128x128, k/v 64x128 (GQA), no biases, SwiGLU 344");
    TL_CHECK(m->lm_head.w != m->tok_embed && in_maps(m, m->lm_head.w) && m->pos_embed == NULL, "tiny-llama lm_head is its own tensor, in place");
    check_val("k_proj", l3->k.w, 63 * 128 + 127, stp, "model.layers.3.self_attn.k_proj.weight", 63 * 128 + 127);
    check_val("up_proj", m->layers[1].up.w, 200 * 128 + 5, stp, "model.layers.1.mlp.up_proj.weight", 200 * 128 + 5);
    check_val("down_proj", m->layers[0].down.w, 100 * 344 + 343, stp, "model.layers.0.mlp.down_proj.weight", 100 * 344 + 343);
    check_val("lm_head", m->lm_head.w, 1023 * 128 + 127, stp, "lm_head.weight", 1023 * 128 + 127);
    check_val("model.norm", m->ln_final.w, 77, stp, "model.norm.weight", 77);
    check_info_json(m, "hf", "llama");
    rt_tokenizer *tok = NULL;
    hs_status st = rt_model_open_tokenizer(m, NULL, &tok);
    TL_CHECK(st == HS_OK && tok, "tiny-llama tokenizer.json opened");
    rt_tokenizer_free(tok);
    cJSON_Delete(c);
    rt_model_free(m);
}

static void test_stories(void) {
    const char *path = tl_shared_path("models/stories260K/stories260K.bin");
    if (!path) { tl_skip("stories260K: ../shared is absent"); return; }
    rt_model *m = load_ok(path);
    if (!m) return;
    const rt_config *g = &m->cfg;
    TL_CHECK(g->format == RT_FORMAT_LLAMA2C && g->arch == RT_ARCH_LLAMA && !strcmp(g->model_type, "llama") &&
             g->d_model == 64 && g->d_mlp == 172 && g->n_layers == 5 && g->n_heads == 8 && g->n_kv_heads == 4 &&
             g->d_head == 8 && g->vocab_size == 512 && g->n_ctx == 512,
             "stories260K header: D=64 F=172 L=5 H=8 KV=4 HD=8 V=512 seq_len=512");
    TL_CHECK(g->norm == RT_NORM_RMS && g->norm_eps == 1e-5f && g->act == RT_ACT_SILU && g->rope_theta == 10000.0f &&
             g->rope_interleaved && g->tied_embeddings && g->bos_id == 1 && g->eos_id == 2,
             "stories260K: RMSNorm 1e-5, SiLU, theta 1e4, interleaved RoPE, tied (vocab_size > 0)");
    size_t D = 64, F = 172, L = 5, QD = 64, KD = 32, V = 512;
    int64_t hand = (int64_t)(V * D + L * D + L * QD * D + 2 * L * KD * D + L * D * QD + L * D + 3 * L * F * D + D);
    TL_CHECK(g->n_params == hand, "stories260K n_params %lld == hand count %lld (freq_cis excluded, classifier shared)",
             (long long)g->n_params, (long long)hand);
    /* independent offsets into the raw file */
    size_t len;
    char *raw = slurp(path, &len);
    const float *f = (const float *)(raw + 28);
    size_t o_emb = 0, o_ratt = o_emb + V * D, o_wq = o_ratt + L * D, o_wk = o_wq + L * QD * D, o_wv = o_wk + L * KD * D,
           o_wo = o_wv + L * KD * D, o_rffn = o_wo + L * D * QD, o_w1 = o_rffn + L * D, o_w2 = o_w1 + L * F * D,
           o_w3 = o_w2 + L * D * F, o_fin = o_w3 + L * F * D;
    const rt_layer *y = m->layers;
    bool eq = y[1].q.w[5 * D + 3] == f[o_wq + 1 * QD * D + 5 * D + 3] && y[4].k.w[KD * D - 1] == f[o_wk + 4 * KD * D + KD * D - 1] &&
              y[2].v.w[7] == f[o_wv + 2 * KD * D + 7] && y[3].o.w[63 * QD + 1] == f[o_wo + 3 * D * QD + 63 * QD + 1] &&
              y[0].ln1.w[9] == f[o_ratt + 9] && y[4].ln2.w[63] == f[o_rffn + 4 * D + 63] &&
              y[2].gate.w[171 * D] == f[o_w1 + 2 * F * D + 171 * D] && y[3].down.w[D * F - 1] == f[o_w2 + 3 * D * F + D * F - 1] &&
              y[4].up.w[3] == f[o_w3 + 4 * F * D + 3] && m->ln_final.w[63] == f[o_fin + 63] && m->tok_embed[511 * D + 2] == f[511 * D + 2];
    TL_CHECK(eq, "stories260K weights (wq, wk, wv, wo, rms_att/ffn, w1=gate, w2=down, w3=up, rms_final, embedding) match the file offsets");
    TL_CHECK(y[0].q.n_out == 64 && y[0].k.n_out == 32 && y[0].o.n_in == 64 && y[0].gate.n_out == 172 && y[0].down.n_in == 172 &&
             y[0].q.b == NULL && y[0].qkv.w == NULL, "stories260K linear shapes: q 64x64, k/v 32x64, gate/up 172x64, down 64x172");
    TL_CHECK(m->lm_head.w == m->tok_embed && m->n_maps == 1 && in_maps(m, y[4].up.w) && !strcmp(g->dtype, "F32"),
             "stories260K: classifier = embedding; weights in place from the mmap");
    free(raw);
    cJSON *cj = cJSON_Parse(m->config_json);
    TL_CHECK(cj && jint(cj, "dim") == 64 && jint(cj, "n_kv_heads") == 4 && jint(cj, "vocab_size") == 512 &&
             cJSON_IsTrue(cJSON_GetObjectItem(cj, "shared_classifier")), "stories260K config_json synthesised from the header");
    cJSON_Delete(cj);
    check_info_json(m, "llama2c", "llama");
    rt_tokenizer *tok = NULL;
    hs_status st = rt_model_open_tokenizer(m, NULL, &tok);
    TL_CHECK(st == HS_OK && tok && rt_tokenizer_vocab_size(tok) == 512, "stories260K: tok512.bin found beside the .bin");
    rt_tokenizer_free(tok);
    rt_model_free(m);
}

static void test_rand_gpt2(void) {
    const char *dir = "tests/fixtures/models/rand-gpt2", *stp = "tests/fixtures/models/rand-gpt2/model.safetensors";
    rt_model *m = load_ok(dir);
    if (!m) return;
    const rt_config *g = &m->cfg;
    TL_CHECK(g->d_model == 64 && g->n_heads == 4 && g->n_layers == 2 && g->n_ctx == 64 && g->d_mlp == 256 &&
             g->vocab_size == 256 && g->tied_embeddings && !strcmp(g->dtype, "F16"),
             "rand-gpt2 (F16): D=64 H=4 L=2 F=256 V=256, tied, dtype F16");
    TL_CHECK(g->bos_id == -1 && g->eos_id == -1, "rand-gpt2: bos/eos 50256 outside vocab 256 -> -1");
    TL_CHECK(g->n_params == raw_total_elems(stp, NULL), "rand-gpt2 n_params %lld == elements in the file", (long long)g->n_params);
    TL_CHECK(m->n_maps == 0 && m->lm_head.w == m->tok_embed, "rand-gpt2: everything converted to fp32, file unmapped, lm_head tied");
    check_val("F16 c_attn.weight", m->layers[1].qkv.w, 63 * 192 + 191, stp, "transformer.h.1.attn.c_attn.weight", 63 * 192 + 191);
    check_val("F16 c_fc.bias", m->layers[0].up.b, 100, stp, "transformer.h.0.mlp.c_fc.bias", 100);
    check_val("F16 wte", m->tok_embed, 255 * 64 + 63, stp, "transformer.wte.weight", 255 * 64 + 63);
    check_val("F16 ln_1.weight", m->layers[1].ln1.w, 10, stp, "transformer.h.1.ln_1.weight", 10);
    check_info_json(m, "hf", "gpt2");
    /* this fixture ships no tokenizer: one clear line */
    rt_tokenizer *tok = (rt_tokenizer *)1;
    int lines;
    cap_begin();
    int e0 = hs_log_error_count();
    hs_status st = rt_model_open_tokenizer(m, NULL, &tok);
    int de = hs_log_error_count() - e0;
    const char *msg = cap_end(&lines);
    TL_CHECK(st == HS_EIO && tok == NULL && de == 1 && lines == 1 && strstr(msg, "tokenizer.json"),
             "missing tokenizer.json -> HS_EIO, 1 line: %s", msg);
    rt_model_free(m);
}

static void test_rand_llama_gqa(void) {
    const char *dir = "tests/fixtures/models/rand-llama-gqa", *stp = "tests/fixtures/models/rand-llama-gqa/model.safetensors";
    rt_model *m = load_ok(dir);
    if (!m) return;
    const rt_config *g = &m->cfg;
    TL_CHECK(g->d_model == 64 && g->n_heads == 4 && g->n_kv_heads == 2 && g->d_head == 24 && g->d_mlp == 96 &&
             g->rope_theta == 500000.0f && !g->tied_embeddings && !strcmp(g->dtype, "BF16"),
             "rand-llama-gqa (BF16, 4.x spelling): head_dim 24 != D/H, KV 2, rope_theta 500000 at top level, untied");
    const rt_layer *y = &m->layers[1];
    TL_CHECK(y->q.n_out == 96 && y->q.n_in == 64 && y->k.n_out == 48 && y->o.n_in == 96 && y->o.n_out == 64,
             "rand-llama-gqa: q (96, 64), k/v (48, 64), o (64, 96)");
    TL_CHECK(g->n_params == raw_total_elems(stp, NULL), "rand-llama-gqa n_params %lld == elements in the file", (long long)g->n_params);
    check_val("BF16 q_proj", y->q.w, 95 * 64 + 63, stp, "model.layers.1.self_attn.q_proj.weight", 95 * 64 + 63);
    check_val("BF16 o_proj", y->o.w, 10 * 96 + 95, stp, "model.layers.1.self_attn.o_proj.weight", 10 * 96 + 95);
    check_val("BF16 lm_head", m->lm_head.w, 3, stp, "lm_head.weight", 3);
    check_val("BF16 post_attention_layernorm", y->ln2.w, 33, stp, "model.layers.1.post_attention_layernorm.weight", 33);
    TL_CHECK(m->lm_head.w != m->tok_embed && m->n_maps == 0, "rand-llama-gqa: separate lm_head, converted, file unmapped");
    rt_model_free(m);
}

static void test_rand_mistral(void) {
    const char *dir = "tests/fixtures/models/rand-mistral";
    rt_model *m = load_ok(dir);
    if (!m) return;
    const rt_config *g = &m->cfg;
    TL_CHECK(!strcmp(g->model_type, "mistral") && g->sliding_window == 6 && g->n_kv_heads == 1 && g->d_head == 16 &&
             g->d_mlp == 112 && g->norm_eps == 1e-6f && g->rope_theta == 10000.0f && !strcmp(g->dtype, "F32"),
             "rand-mistral (F32, 12 shards): sliding_window 6, KV 1, HD 16, eps 1e-6");
    cJSON *ix = read_json("tests/fixtures/models/rand-mistral/model.safetensors.index.json");
    cJSON *wm = cJSON_GetObjectItem(ix, "weight_map");
    int64_t tot = 0;
    char p[512];
    for (int s = 1; s <= 12; s++) {
        snprintf(p, sizeof p, "%s/model-%05d-of-00012.safetensors", dir, s);
        tot += raw_total_elems(p, NULL);
    }
    TL_CHECK(g->n_params == tot && m->n_maps == 12, "rand-mistral n_params %lld == elements over all shards; 12 shards mapped in place",
             (long long)g->n_params);
    const char *names[] = {"model.layers.1.mlp.gate_proj.weight", "model.layers.0.self_attn.v_proj.weight", "lm_head.weight", "model.norm.weight"};
    const float *ptrs[] = {m->layers[1].gate.w, m->layers[0].v.w, m->lm_head.w, m->ln_final.w};
    size_t idx[] = {111 * 64 + 63, 15 * 64 + 1, 255 * 64 + 63, 63};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, cJSON_GetObjectItem(wm, names[i])->valuestring);
        check_val("sharded F32", ptrs[i], idx[i], p, names[i], idx[i]);
        TL_CHECK(in_maps(m, ptrs[i]), "sharded %s points into its shard's mmap", names[i]);
    }
    cJSON_Delete(ix);
    rt_model_free(m);
}

static void test_rand_qwen2(void) {
    const char *dir = "tests/fixtures/models/rand-qwen2", *stp = "tests/fixtures/models/rand-qwen2/model.safetensors";
    rt_model *m = load_ok(dir);
    if (!m) return;
    const rt_config *g = &m->cfg;
    TL_CHECK(!strcmp(g->model_type, "qwen2") && g->tied_embeddings && g->rope_theta == 1000000.0f && g->sliding_window == 0 &&
             g->d_head == 16 && g->n_kv_heads == 2 && g->bos_id == -1 && g->eos_id == -1,
             "rand-qwen2 (BF16): tied, rope_theta 1e6, use_sliding_window false -> 0, bos/eos null -> -1");
    const rt_layer *y = &m->layers[0];
    TL_CHECK(y->q.b && y->k.b && y->v.b && !y->o.b && !y->gate.b, "rand-qwen2: q/k/v biases loaded, o/mlp without");
    check_val("BF16 q bias", y->q.b, 63, stp, "model.layers.0.self_attn.q_proj.bias", 63);
    check_val("BF16 v bias", m->layers[1].v.b, 31, stp, "model.layers.1.self_attn.v_proj.bias", 31);
    check_val("BF16 embed", m->tok_embed, 100 * 64 + 9, stp, "model.embed_tokens.weight", 100 * 64 + 9);
    TL_CHECK(m->lm_head.w == m->tok_embed && g->n_params == raw_total_elems(stp, NULL),
             "rand-qwen2: lm_head = embedding, n_params %lld counts it once", (long long)g->n_params);
    rt_model_free(m);
}

/* ------------------------------------------------------------------ synthetic files */

typedef struct { char name[96]; char dtype[12]; int ndim; int64_t shape[3]; } syn_t;

static size_t dt_size(const char *dt) {
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16")) return 2;
    if (!strcmp(dt, "I64")) return 8;
    return 4;
}

/* Write a safetensors file for tensors ts[0..n). bad_span: that tensor's end offset is 4 bytes short.
 * cut: drop that many bytes from the end of the file. F32 payloads are (i % 13) / 8 - 0.75. */
static void write_st(const char *path, const syn_t *ts, int n, const char *bad_span, size_t cut) {
    char *hdr = malloc(65536);
    size_t k = 0, off = 0;
    k += (size_t)sprintf(hdr + k, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        size_t ne = 1;
        for (int d = 0; d < ts[i].ndim; d++) ne *= (size_t)ts[i].shape[d];
        size_t end = off + ne * dt_size(ts[i].dtype);
        k += (size_t)sprintf(hdr + k, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", ts[i].name, ts[i].dtype);
        for (int d = 0; d < ts[i].ndim; d++) k += (size_t)sprintf(hdr + k, "%s%lld", d ? "," : "", (long long)ts[i].shape[d]);
        k += (size_t)sprintf(hdr + k, "],\"data_offsets\":[%zu,%zu]}", off,
                             bad_span && !strcmp(bad_span, ts[i].name) ? end - 4 : end);
        off = end;
    }
    k += (size_t)sprintf(hdr + k, "}");
    while (k % 8) hdr[k++] = ' ';
    size_t total = 8 + k + off;
    unsigned char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)k >> (8 * i));
    memcpy(buf + 8, hdr, k);
    for (size_t i = 0; i + 4 <= off; i += 4) {
        float v = (float)((i / 4) % 13) / 8.0f - 0.75f;
        memcpy(buf + 8 + k + i, &v, 4);
    }
    spit(path, buf, total - cut);
    free(buf);
    free(hdr);
}

static const char *SYN_CFG =
    "{\"model_type\":\"llama\",\"vocab_size\":16,\"hidden_size\":8,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
    "\"intermediate_size\":12,\"num_hidden_layers\":1,\"max_position_embeddings\":16,\"rms_norm_eps\":1e-5,"
    "\"rope_theta\":10000.0,\"tie_word_embeddings\":false}";

/* A complete one-layer llama: V=16 D=8 H=2 KV=1 HD=4 F=12. */
static int syn_llama(syn_t *t) {
    int n = 0;
#define T1(nm, a) do { snprintf(t[n].name, 96, "%s", nm); strcpy(t[n].dtype, "F32"); t[n].ndim = 1; t[n].shape[0] = a; n++; } while (0)
#define T2(nm, a, b) do { snprintf(t[n].name, 96, "%s", nm); strcpy(t[n].dtype, "F32"); t[n].ndim = 2; t[n].shape[0] = a; t[n].shape[1] = b; n++; } while (0)
    T2("model.embed_tokens.weight", 16, 8);
    T1("model.layers.0.input_layernorm.weight", 8);
    T2("model.layers.0.self_attn.q_proj.weight", 8, 8);
    T2("model.layers.0.self_attn.k_proj.weight", 4, 8);
    T2("model.layers.0.self_attn.v_proj.weight", 4, 8);
    T2("model.layers.0.self_attn.o_proj.weight", 8, 8);
    T1("model.layers.0.post_attention_layernorm.weight", 8);
    T2("model.layers.0.mlp.gate_proj.weight", 12, 8);
    T2("model.layers.0.mlp.up_proj.weight", 12, 8);
    T2("model.layers.0.mlp.down_proj.weight", 8, 12);
    T1("model.norm.weight", 8);
    T2("lm_head.weight", 16, 8);
#undef T1
#undef T2
    return n;
}

static int find_syn(syn_t *t, int n, const char *name) {
    for (int i = 0; i < n; i++) if (!strcmp(t[i].name, name)) return i;
    return -1;
}

/* A folder tmp/<name>/ with config.json (cfg) and model.safetensors (ts). Returns its path. */
static const char *make_hf(const char *name, const char *cfg, const syn_t *ts, int n, const char *bad_span, size_t cut) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, name);
    mkdir(dir, 0700);
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", dir);
    spit(p, cfg, strlen(cfg));
    if (ts) {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        write_st(p, ts, n, bad_span, cut);
    }
    return dir;
}

/* Expect rt_model_load(path) to fail with `want`, exactly one error line, *out NULL; the message
 * must contain `needle`. */
static void expect_load_fail(const char *what, const char *path, hs_status want, const char *needle) {
    rt_model *m = (rt_model *)&m;
    int lines;
    cap_begin();
    int e0 = hs_log_error_count();
    hs_status st = rt_model_load(path, &m);
    int de = hs_log_error_count() - e0;
    const char *msg = cap_end(&lines);
    TL_CHECK(st == want && m == NULL && de == 1 && lines == 1 && (!needle || strstr(msg, needle)),
             "%s -> status %d (want %d), %d error line(s): %s", what, st, want, de, msg);
    if (st == HS_OK) rt_model_free(m);
}

static void expect_parse_fail(const char *what, const void *buf, size_t len, hs_status want, const char *needle) {
    rt_st_file f;
    int lines;
    cap_begin();
    int e0 = hs_log_error_count();
    hs_status st = rt_st_parse(buf, len, "<buf>", &f);
    int de = hs_log_error_count() - e0;
    const char *msg = cap_end(&lines);
    TL_CHECK(st == want && f.tensors == NULL && de == 1 && lines == 1 && (!needle || strstr(msg, needle)),
             "%s -> status %d (want %d), %d error line(s): %s", what, st, want, de, msg);
    if (st == HS_OK) rt_st_close(&f);
}

static void expect_cfg_fail(const char *what, const char *json, hs_status want, const char *needle) {
    rt_config c;
    memset(&c, 0x5a, sizeof c);
    int lines;
    cap_begin();
    int e0 = hs_log_error_count();
    hs_status st = rt_hf_config_parse(json, strlen(json), "DIR/config.json", &c);
    int de = hs_log_error_count() - e0;
    const char *msg = cap_end(&lines);
    TL_CHECK(st == want && de == 1 && lines == 1 && (!needle || strstr(msg, needle)) && c.d_model == 0x5a5a5a5a,
             "%s -> status %d (want %d), %d error line(s): %s", what, st, want, de, msg);
}

/* st header image: 8-byte length then the text (no data). */
static size_t st_image(unsigned char *buf, const char *json, uint64_t claimed_len, size_t data_bytes) {
    size_t k = strlen(json);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(claimed_len >> (8 * i));
    memcpy(buf + 8, json, k);
    memset(buf + 8 + k, 0, data_bytes);
    return 8 + k + data_bytes;
}

static void test_st_parse_malformed(void) {
    unsigned char buf[1024];
    size_t n;
    expect_parse_fail("5-byte file", "abcde", 5, HS_EBADINPUT, "too short");
    n = st_image(buf, "{}", 1000, 0);
    expect_parse_fail("header length past end of file", buf, n, HS_EBADINPUT, "past the end");
    n = st_image(buf, "{}", (uint64_t)1 << 40, 0);
    expect_parse_fail("absurd header length (2^40)", buf, n, HS_EBADINPUT, "absurd");
    n = st_image(buf, "{\"a\":", 5, 0);
    expect_parse_fail("header not JSON", buf, n, HS_EBADINPUT, "not a JSON object");
    n = st_image(buf, "[1,2]", 5, 0);
    expect_parse_fail("header a JSON array", buf, n, HS_EBADINPUT, "not a JSON object");
    const char *j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("negative shape entry", buf, n, HS_EBADINPUT, "shape entry");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,8]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("non-integer shape entry", buf, n, HS_EBADINPUT, "shape entry");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("begin > end", buf, n, HS_EBADINPUT, "begin after");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("end past the data section", buf, n, HS_EBADINPUT, "past the data section");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}";
    n = st_image(buf, j, strlen(j), 0);
    expect_parse_fail("shape product overflows", buf, n, HS_EBADINPUT, "overflow");
    j = "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("shape x dtype size != end - begin", buf, n, HS_EBADINPUT, "span 8 bytes");
    j = "{\"w\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("made-up dtype Q9", buf, n, HS_EUNSUPPORTED, "'Q9'");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("duplicate tensor name", buf, n, HS_EBADINPUT, "twice");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("entry without data_offsets", buf, n, HS_EBADINPUT, "data_offsets");
    j = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   x";
    n = st_image(buf, j, strlen(j), 8);
    expect_parse_fail("trailing junk after the header JSON", buf, n, HS_EBADINPUT, "not a JSON object");
    /* and a good one, with a scalar, a zero-size tensor and overlap (allowed) */
    j = "{\"__metadata__\":{\"format\":\"pt\"},\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
        "\"z\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[4,4]},\"o\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}";
    n = st_image(buf, j, strlen(j), 8);
    rt_st_file f;
    hs_status st = rt_st_parse(buf, n, "<buf>", &f);
    const rt_st_tensor *s = st == HS_OK ? rt_st_find(&f, "s") : NULL, *z = st == HS_OK ? rt_st_find(&f, "z") : NULL;
    TL_CHECK(st == HS_OK && f.n_tensors == 3 && s && s->ndim == 0 && s->n_elem == 1 && z && z->n_elem == 0 &&
             z->dtype == RT_ST_I64 && rt_st_find(&f, "nope") == NULL,
             "valid header: scalar, zero-size I64 and overlapping ranges parse; lookup by name");
    rt_st_close(&f);
}

static void test_hf_malformed(void) {
    syn_t ts[16];
    int n = syn_llama(ts);
    const char *dir = make_hf("syn-ok", SYN_CFG, ts, n, NULL, 0);
    rt_model *m = load_ok(dir);
    if (m) {
        TL_CHECK(m->cfg.n_params == 16 * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 96 * 3 + 8 + 128 && m->layers[0].k.n_out == 4 &&
                 /* up_proj starts 432 floats into the data section; payload float i is (i % 13) / 8 - 0.75 */
                 m->layers[0].up.w[13] == (float)((432 + 13) % 13) / 8.0f - 0.75f,
                 "synthetic llama loads (n_params %lld)", (long long)m->cfg.n_params);
        rt_model_free(m);
    }
    expect_load_fail("truncated model.safetensors (last 100 bytes cut)", make_hf("trunc", SYN_CFG, ts, n, NULL, 100),
                     HS_EBADINPUT, "past the data section");
    {
        char p[600];
        snprintf(p, sizeof p, "%s/model.safetensors", make_hf("short", SYN_CFG, NULL, 0, NULL, 0));
        spit(p, "\x10\0\0", 3);
        expect_load_fail("3-byte model.safetensors", tmp_path("short"), HS_EBADINPUT, "too short");
        unsigned char img[64];
        size_t k = st_image(img, "{}", 4096, 0);
        spit(p, img, k);
        expect_load_fail("header length past end of file", tmp_path("short"), HS_EBADINPUT, "past the end");
    }
    syn_t t2[16];
    memcpy(t2, ts, sizeof ts);
    int iu = find_syn(t2, n, "model.layers.0.mlp.up_proj.weight"), iq = find_syn(t2, n, "model.layers.0.self_attn.q_proj.weight");
    if (iu < 0 || iq < 0) { tl_fail("synthetic tensor list"); return; }
    strcpy(t2[iu].dtype, "I64");
    expect_load_fail("I64 weight", make_hf("i64", SYN_CFG, t2, n, NULL, 0), HS_EUNSUPPORTED, "I64");
    memcpy(t2, ts, sizeof ts);
    strcpy(t2[iq].dtype, "Q9");
    expect_load_fail("made-up dtype Q9", make_hf("q9", SYN_CFG, t2, n, NULL, 0), HS_EUNSUPPORTED, "Q9");
    expect_load_fail("shape/offset mismatch", make_hf("span", SYN_CFG, ts, n, "model.norm.weight", 0), HS_EBADINPUT, "model.norm.weight");
    memcpy(t2, ts, sizeof ts);
    t2[iq + 1].shape[0] = 8;   /* k_proj follows q_proj */
    expect_load_fail("k_proj shape != config", make_hf("shape", SYN_CFG, t2, n, NULL, 0), HS_EBADINPUT, "expected [4, 8]");
    memcpy(t2, ts, sizeof ts);
    t2[iu] = t2[n - 1];
    expect_load_fail("missing tensor", make_hf("missing", SYN_CFG, t2, n - 1, NULL, 0), HS_EBADINPUT,
                     "tensor 'model.layers.0.mlp.up_proj.weight' missing");
    /* untied config without lm_head */
    expect_load_fail("untied config, no lm_head.weight", make_hf("nolmhead", SYN_CFG, ts, n - 1, NULL, 0), HS_EBADINPUT, "lm_head.weight");
    /* tied config: lm_head absent is fine and points at the embedding */
    {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "%s", SYN_CFG);
        char *p = strstr(cfg, "\"tie_word_embeddings\":false");
        memcpy(p, "\"tie_word_embeddings\":true ", 27);
        m = load_ok(make_hf("tied", cfg, ts, n - 1, NULL, 0));
        TL_CHECK(m && m->lm_head.w == m->tok_embed && m->cfg.n_params == 16 * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 96 * 3 + 8,
                 "tied llama without lm_head.weight: lm_head = embedding, counted once");
        rt_model_free(m);
    }
    {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "%s", SYN_CFG);
        memcpy(strstr(cfg, "\"hidden_size\""), "\"hidden_sizX\"", 13);
        expect_load_fail("config lacks hidden_size", make_hf("nohidden", cfg, ts, n, NULL, 0), HS_EBADINPUT,
                         "config.json lacks 'hidden_size'");
        snprintf(cfg, sizeof cfg, "%s", SYN_CFG);
        memcpy(strstr(cfg, "\"llama\""), "\"bert\" ", 7);
        expect_load_fail("model_type bert", make_hf("bert", cfg, ts, n, NULL, 0), HS_EUNSUPPORTED,
                         "model_type 'bert' is not supported");
        snprintf(cfg, sizeof cfg, "%s", SYN_CFG);
        snprintf(strstr(cfg, "\"rope_theta\""), 200, "\"rope_parameters\":{\"rope_type\":\"yarn\",\"rope_theta\":1e4,\"factor\":4},\"tie_word_embeddings\":false}");
        expect_load_fail("rope_type yarn", make_hf("yarn", cfg, ts, n, NULL, 0), HS_EUNSUPPORTED, "rope_type 'yarn'");
    }
    expect_load_fail("folder with config.json but no weights", make_hf("noweights", SYN_CFG, NULL, 0, NULL, 0), HS_EBADINPUT,
                     "neither model.safetensors nor");
    {
        const char *d = tmp_path("empty");
        mkdir(d, 0700);
        expect_load_fail("folder without config.json", d, HS_EBADINPUT, "neither a Hugging Face folder");
        char p[600];
        snprintf(p, sizeof p, "%s/model.safetensors", tmp_path("syn-ok"));
        expect_load_fail("a .safetensors file given directly", p, HS_EBADINPUT, "pass the folder");
        spit(tmp_path("notes.txt"), "hello world, this is not a model at all", 39);
        expect_load_fail("a text file", tmp_path("notes.txt"), HS_EBADINPUT, "neither a Hugging Face folder");
        spit(tmp_path("m.gguf"), "GGUF\3\0\0\0", 8);
        expect_load_fail("a GGUF file", tmp_path("m.gguf"), HS_EUNSUPPORTED, "GGUF");
        expect_load_fail("a path that does not exist", tmp_path("nope"), HS_EIO, "cannot open");
    }
}

static void test_sharded_malformed(void) {
    syn_t ts[16];
    int n = syn_llama(ts);
    /* good: two shards */
    const char *dir = make_hf("shard-ok", SYN_CFG, NULL, 0, NULL, 0);
    char p[600], idx[8192];
    snprintf(p, sizeof p, "%s/a.safetensors", dir);
    write_st(p, ts, 6, NULL, 0);
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    write_st(p, ts + 6, n - 6, NULL, 0);
    size_t k = (size_t)sprintf(idx, "{\"metadata\":{},\"weight_map\":{");
    for (int i = 0; i < n; i++) k += (size_t)sprintf(idx + k, "%s\"%s\":\"%s\"", i ? "," : "", ts[i].name, i < 6 ? "a.safetensors" : "b.safetensors");
    sprintf(idx + k, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    spit(p, idx, strlen(idx));
    rt_model *m = load_ok(dir);
    TL_CHECK(m && m->n_maps == 2, "two-shard synthetic llama loads, both shards mapped");
    rt_model_free(m);

    struct { const char *what, *from, *to, *needle; hs_status st; } cases[] = {
        {"index points at a missing shard", "b.safetensors", "c.safetensors", "c.safetensors", HS_EIO},
        {"index shard escapes the folder (..)", "b.safetensors", "../b.safetensors", "'../b.safetensors'", HS_EBADINPUT},
        {"index shard in a subfolder (/)", "b.safetensors", "sub/b.safetensors", "'sub/b.safetensors'", HS_EBADINPUT},
        {"index shard absolute path", "b.safetensors", "/etc/passwd", "'/etc/passwd'", HS_EBADINPUT},
        {"index maps a tensor to the wrong shard", "\"model.norm.weight\":\"b.safetensors\"", "\"model.norm.weight\":\"a.safetensors\"",
         "does not contain it", HS_EBADINPUT},
        {"index without weight_map", "weight_map", "weight_maq", "weight_map", HS_EBADINPUT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32], bad[8192];
        snprintf(name, sizeof name, "shard-bad%zu", c);
        const char *d = make_hf(name, SYN_CFG, NULL, 0, NULL, 0);
        snprintf(p, sizeof p, "%s/a.safetensors", d);
        write_st(p, ts, 6, NULL, 0);
        snprintf(p, sizeof p, "%s/b.safetensors", d);
        write_st(p, ts + 6, n - 6, NULL, 0);
        /* replace the first (or, for a whole entry, the only) occurrence */
        const char *at = strstr(idx, cases[c].from);
        size_t pre = (size_t)(at - idx);
        snprintf(bad, sizeof bad, "%.*s%s%s", (int)pre, idx, cases[c].to, at + strlen(cases[c].from));
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
        spit(p, bad, strlen(bad));
        expect_load_fail(cases[c].what, d, cases[c].st, cases[c].needle);
    }
}

static void test_config_parse(void) {
    rt_config c;
    const char *gpt2 = "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_embd\":16,\"n_head\":2,\"n_layer\":1,\"n_positions\":8,"
                       "\"n_inner\":40,\"activation_function\":\"gelu\",\"eos_token_id\":[7,9],\"bos_token_id\":50}";
    hs_status st = rt_hf_config_parse(gpt2, strlen(gpt2), "x", &c);
    TL_CHECK(st == HS_OK && c.d_mlp == 40 && c.act == RT_ACT_GELU_EXACT && c.tied_embeddings && c.eos_id == 7 && c.bos_id == -1 &&
             c.norm_eps == 1e-5f && c.n_kv_heads == 2 && c.d_head == 8,
             "gpt2 config: explicit n_inner, gelu -> exact, tie default true, eos list -> first, bos >= vocab -> -1");
    const char *q = "{\"model_type\":\"qwen2\",\"vocab_size\":50,\"hidden_size\":16,\"num_attention_heads\":4,\"intermediate_size\":8,"
                    "\"num_hidden_layers\":2,\"max_position_embeddings\":32,\"use_sliding_window\":true,\"sliding_window\":4,"
                    "\"max_window_layers\":0,\"rope_scaling\":{\"rope_type\":\"default\"}}";
    st = rt_hf_config_parse(q, strlen(q), "x", &c);
    TL_CHECK(st == HS_OK && c.sliding_window == 4 && c.n_kv_heads == 4 && c.d_head == 4 && c.rope_theta == 10000.0f &&
             !c.tied_embeddings && c.norm_eps == 1e-6f,
             "qwen2 config: use_sliding_window + max_window_layers 0 -> window 4 on every layer; kv defaults to heads; theta default 1e4");
    const char *mi = "{\"model_type\":\"mistral\",\"vocab_size\":50,\"hidden_size\":16,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                     "\"intermediate_size\":8,\"num_hidden_layers\":2,\"max_position_embeddings\":32,\"sliding_window\":null,\"rope_theta\":1e6}";
    st = rt_hf_config_parse(mi, strlen(mi), "x", &c);
    TL_CHECK(st == HS_OK && c.sliding_window == 0 && c.rope_theta == 1e6f, "mistral config: sliding_window null -> 0, 4.x rope_theta");

    const char *base = "{\"model_type\":\"llama\",\"vocab_size\":50,\"hidden_size\":16,\"num_attention_heads\":4,\"intermediate_size\":8,"
                       "\"num_hidden_layers\":2,\"max_position_embeddings\":32";
    char j[1024];
#define CFG(extra) (snprintf(j, sizeof j, "%s%s}", base, extra), j)
    expect_cfg_fail("not JSON", "{\"model_type\": ", HS_EBADINPUT, "not a JSON object");
    expect_cfg_fail("model_type missing", "{\"vocab_size\":3}", HS_EBADINPUT, "lacks 'model_type'");
    expect_cfg_fail("model_type bert", "{\"model_type\":\"bert\"}", HS_EUNSUPPORTED,
                    "model: model_type 'bert' is not supported (DIR/config.json) — supported: gpt2, llama, mistral, qwen2");
    expect_cfg_fail("missing hidden_size", "{\"model_type\":\"llama\",\"vocab_size\":50}", HS_EBADINPUT,
                    "model: config.json lacks 'hidden_size' (DIR/config.json) — ");
    expect_cfg_fail("rope_type llama3 (5.x)", CFG(",\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":5e5}"),
                    HS_EUNSUPPORTED, "rope_type 'llama3'");
    expect_cfg_fail("rope_scaling linear (4.x)", CFG(",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}"),
                    HS_EUNSUPPORTED, "rope_scaling");
    expect_cfg_fail("heads % kv_heads != 0", CFG(",\"num_key_value_heads\":3"), HS_EBADINPUT, "multiple of num_key_value_heads");
    expect_cfg_fail("negative hidden_size", "{\"model_type\":\"llama\",\"vocab_size\":50,\"hidden_size\":-16}", HS_EBADINPUT, "'hidden_size'");
    expect_cfg_fail("vocab_size 0", "{\"model_type\":\"llama\",\"vocab_size\":0}", HS_EBADINPUT, "'vocab_size'");
    expect_cfg_fail("hidden_size a string", "{\"model_type\":\"llama\",\"vocab_size\":5,\"hidden_size\":\"16\"}", HS_EBADINPUT, "'hidden_size'");
    expect_cfg_fail("hidden_act gelu on llama", CFG(",\"hidden_act\":\"gelu\""), HS_EUNSUPPORTED, "hidden_act 'gelu'");
    expect_cfg_fail("dims whose products overflow",
                    "{\"model_type\":\"llama\",\"vocab_size\":50,\"hidden_size\":65536,\"num_attention_heads\":2,"
                    "\"intermediate_size\":1073741824,\"num_hidden_layers\":1048576,\"max_position_embeddings\":32}", HS_EBADINPUT, "overflow");
    expect_cfg_fail("gpt2 scale_attn_by_inverse_layer_idx", "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_embd\":16,\"n_head\":2,"
                    "\"n_layer\":1,\"n_positions\":8,\"scale_attn_by_inverse_layer_idx\":true}", HS_EUNSUPPORTED, "scale_attn_by_inverse_layer_idx");
    expect_cfg_fail("gpt2 reorder_and_upcast_attn", "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_embd\":16,\"n_head\":2,"
                    "\"n_layer\":1,\"n_positions\":8,\"reorder_and_upcast_attn\":true}", HS_EUNSUPPORTED, "reorder_and_upcast_attn");
    expect_cfg_fail("eps that underflows to 0 as a float (found by fuzz_config)", "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_embd\":16,"
                    "\"n_head\":2,\"n_layer\":1,\"n_positions\":8,\"layer_norm_epsilon\":1e-85}", HS_EBADINPUT, "layer_norm_epsilon");
    expect_cfg_fail("gpt2 n_embd % n_head", "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_embd\":15,\"n_head\":2,"
                    "\"n_layer\":1,\"n_positions\":8}", HS_EBADINPUT, "divisible");
    snprintf(j, sizeof j, "%s", q);
    memcpy(strstr(j, "\"max_window_layers\":0"), "\"max_window_layers\":1", 21);
    expect_cfg_fail("qwen2 mixed sliding/full layers", j, HS_EUNSUPPORTED, "mix of sliding-window and full-attention");
#undef CFG
}

static void test_llama2c_malformed(void) {
    int32_t h[7] = {8, 12, 1, 2, 1, 16, 4};
    /* exact size: V*D + L*D + L*D*D + 2*L*KV*HD*D + L*D*D + L*D + 3*L*F*D + D + T*HD */
    size_t floats = 16 * 8 + 8 + 64 + 2 * 32 + 64 + 8 + 3 * 96 + 8 + 4 * 4;
    size_t bytes = 28 + 4 * floats;
    unsigned char *buf = calloc(1, bytes + 64);
    memcpy(buf, h, 28);
    spit(tmp_path("ok.bin"), buf, bytes);
    rt_model *m = load_ok(tmp_path("ok.bin"));
    TL_CHECK(m && m->cfg.n_params == (int64_t)(floats - 16) && m->layers[0].k.n_out == 4, "synthetic llama2.c file loads");
    rt_tokenizer *tok = (rt_tokenizer *)1;
    int lines;
    if (m) {
        cap_begin();
        int e0 = hs_log_error_count();
        hs_status st = rt_model_open_tokenizer(m, NULL, &tok);
        int de = hs_log_error_count() - e0;
        const char *msg = cap_end(&lines);
        TL_CHECK(st == HS_EIO && !tok && de == 1 && lines == 1 && strstr(msg, "tok*.bin"),
                 "llama2.c model without tokenizer.bin/tok*.bin beside it -> 1 line: %s", msg);
    }
    rt_model_free(m);

    spit(tmp_path("ok.bin"), buf, bytes - 4);
    expect_load_fail("llama2.c file too short by 4 bytes", tmp_path("ok.bin"), HS_EBADINPUT, "truncated");
    spit(tmp_path("ok.bin"), buf, bytes + 8);
    expect_load_fail("llama2.c file 8 bytes too long", tmp_path("ok.bin"), HS_EBADINPUT, "more than");
    spit(tmp_path("ok.bin"), buf, 20);
    expect_load_fail("llama2.c file shorter than its header", tmp_path("ok.bin"), HS_EBADINPUT, "too short");
    int32_t bad[][7] = {{0, 12, 1, 2, 1, 16, 4}, {8, 12, -1, 2, 1, 16, 4}, {8, 12, 1, 2, 1, 0, 4}, {8, 12, 1, 3, 1, 16, 4},
                        {8, 12, 1, 2, 0, 16, 4}, {8, 12, 1, 2, 1, 16, -5}, {65536, 65536, 4096, 2, 1, 16777216, 16777216}};
    const char *what[] = {"dim 0", "n_layers -1", "vocab_size 0", "dim % n_heads != 0", "n_kv_heads 0", "seq_len -5",
                          "huge dims (size far beyond the file)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(buf, bad[i], 28);
        spit(tmp_path("bad.bin"), buf, bytes);
        char w[96];
        snprintf(w, sizeof w, "llama2.c header %s", what[i]);
        expect_load_fail(w, tmp_path("bad.bin"), HS_EBADINPUT, "llama2.c header");
    }
    uint32_t ak[7] = {0x616b3432u, 1, 0, 0, 0, 0, 0};
    memcpy(buf, ak, 28);
    spit(tmp_path("v1.bin"), buf, bytes);
    expect_load_fail("llama2.c version-1 export (ak42)", tmp_path("v1.bin"), HS_EUNSUPPORTED, "ak42");
    /* a negative vocab_size means a separate classifier after freq_cis */
    int32_t hs[7] = {8, 12, 1, 2, 1, -16, 4};
    memset(buf, 0, bytes + 64);
    memcpy(buf, hs, 28);
    float mark = 42.0f;
    size_t cls = 28 + 4 * floats;
    buf = realloc(buf, cls + 4 * 16 * 8);
    memset(buf + bytes, 0, 4 * 16 * 8);
    memcpy(buf + cls + 4 * 5, &mark, 4);
    spit(tmp_path("cls.bin"), buf, cls + 4 * 16 * 8);
    m = load_ok(tmp_path("cls.bin"));
    TL_CHECK(m && !m->cfg.tied_embeddings && m->cfg.vocab_size == 16 && m->lm_head.w != m->tok_embed && m->lm_head.w[5] == 42.0f &&
             m->cfg.n_params == (int64_t)(floats - 16 + 128),
             "llama2.c vocab_size -16: separate classifier read after freq_cis, counted in n_params");
    rt_model_free(m);
    free(buf);
}


int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hs_test_loaders_XXXXXX");
    if (!mkdtemp(g_tmp)) { perror("mkdtemp"); return 2; }
    test_conversions();
    test_tiny_gpt2();
    test_tiny_llama();
    test_stories();
    test_rand_gpt2();
    test_rand_llama_gqa();
    test_rand_mistral();
    test_rand_qwen2();
    test_config_parse();
    test_st_parse_malformed();
    test_hf_malformed();
    test_sharded_malformed();
    test_llama2c_malformed();
    tl_rm_tree(g_tmp);
    return tl_done();
}
