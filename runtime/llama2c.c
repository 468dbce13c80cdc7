/* llama2c.c — load a legacy llama2.c checkpoint (Karpathy's run.c format, "version 0").
 *
 * Layout: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then
 * fp32 arrays in this order: token_embedding (V,D), rms_att (L,D), wq (L,H*HD,D), wk (L,KV*HD,D),
 * wv (L,KV*HD,D), wo (L,D,H*HD), rms_ffn (L,D), w1 (L,F,D), w2 (L,D,F), w3 (L,F,D), rms_final (D),
 * freq_cis_real (seq_len,HD/2), freq_cis_imag (seq_len,HD/2), then wcls (V,D) only when
 * vocab_size < 0 (a negative vocab_size means "separate classifier"). HD = dim / n_heads.
 *
 * The file is mmapped and used in place (the 28-byte header keeps the floats 4-byte aligned).
 * Its size must equal exactly what the header describes: the format has no magic, so the exact
 * size is the only evidence that the seven integers really are a llama2.c header. The versioned
 * exports (magic "ak42") are a different layout and are refused.
 */
#include "model.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_BYTES 28
#define AK42_MAGIC 0x616b3432u

/* Floats per section, from a validated header. false when a size overflows. */
typedef struct { size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, wcls, total; } l2c_sizes;

static bool mul3(size_t a, size_t b, size_t c, size_t *out) {
    size_t t;
    return hs_mul_ok(a, b, &t) && hs_mul_ok(t, c, out);
}

static bool sizes(const int32_t h[7], l2c_sizes *s) {
    size_t D = (size_t)h[0], F = (size_t)h[1], L = (size_t)h[2], H = (size_t)h[3], KV = (size_t)h[4];
    size_t V = (size_t)(h[5] < 0 ? -(int64_t)h[5] : h[5]), T = (size_t)h[6], HD = D / H;
    memset(s, 0, sizeof *s);
    bool ok = hs_mul_ok(V, D, &s->emb) && hs_mul_ok(L, D, &s->rms_att) &&
              mul3(L, H * HD, D, &s->wq) && mul3(L, KV * HD, D, &s->wk) && mul3(L, KV * HD, D, &s->wv) &&
              mul3(L, D, H * HD, &s->wo) && hs_mul_ok(L, D, &s->rms_ffn) &&
              mul3(L, F, D, &s->w1) && mul3(L, D, F, &s->w2) && mul3(L, F, D, &s->w3) &&
              hs_mul_ok(T, HD, &s->freq);   /* real + imag: 2 x (T, HD/2) */
    s->rms_final = D;
    s->wcls = h[5] < 0 ? s->emb : 0;
    size_t parts[] = {s->emb, s->rms_att, s->wq, s->wk, s->wv, s->wo, s->rms_ffn, s->w1, s->w2, s->w3,
                      s->rms_final, s->freq, s->wcls};
    for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++) ok = hs_add_ok(s->total, parts[i], &s->total);
    size_t bytes;
    return ok && hs_mul_ok(s->total, sizeof(float), &bytes) && hs_add_ok(bytes, HDR_BYTES, &bytes);
}

static char *synth_config(const int32_t h[7]) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "llama2c");
    cJSON_AddNumberToObject(o, "dim", h[0]);
    cJSON_AddNumberToObject(o, "hidden_dim", h[1]);
    cJSON_AddNumberToObject(o, "n_layers", h[2]);
    cJSON_AddNumberToObject(o, "n_heads", h[3]);
    cJSON_AddNumberToObject(o, "n_kv_heads", h[4]);
    cJSON_AddNumberToObject(o, "vocab_size", h[5] < 0 ? -(double)h[5] : h[5]);
    cJSON_AddNumberToObject(o, "seq_len", h[6]);
    cJSON_AddBoolToObject(o, "shared_classifier", h[5] > 0);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    HS_ASSERT(s);
    /* cJSON allocates with malloc by default, so free() releases it like every other owned string. */
    return s;
}

hs_status rt_llama2c_load(const char *path, rt_model *m) {
    hs_status st = HS_EBADINPUT;
    void *map = MAP_FAILED;
    size_t len = 0;
    struct stat sb;
    int32_t h[7];
    memset(m, 0, sizeof *m);
    hs_arena_init(&m->weights, 0);
    m->path = hs_xstrdup(path);

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hs_log_error("model", "cannot open %s: %s — check the path", path, strerror(errno));
        st = HS_EIO;
        goto fail;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        hs_log_error("model", "%s is not a regular file — pass a llama2.c .bin checkpoint", path);
        close(fd);
        st = HS_EIO;
        goto fail;
    }
    len = (size_t)sb.st_size;
    if (len < HDR_BYTES) {
        hs_log_error("model", "%s is %zu bytes, too short for a llama2.c header (28 bytes) — the file is truncated or not a llama2.c checkpoint", path, len);
        close(fd);
        goto fail;
    }
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        hs_log_error("model", "cannot mmap %s: %s — check free address space and file permissions", path, strerror(errno));
        st = HS_EIO;
        goto fail;
    }
    memcpy(h, map, sizeof h);
    if ((uint32_t)h[0] == AK42_MAGIC) {
        hs_log_error("model", "%s is a versioned llama2.c export (magic \"ak42\", version %d), which is not supported — export with the legacy format (export.py --version 0) or use the Hugging Face folder",
                     path, h[1]);
        st = HS_EUNSUPPORTED;
        goto fail;
    }
    int D = h[0], F = h[1], L = h[2], H = h[3], KV = h[4], Vs = h[5], T = h[6];
    if (D <= 0 || F <= 0 || L <= 0 || H <= 0 || KV <= 0 || Vs == 0 || Vs == INT32_MIN || T <= 0) {
        hs_log_error("model", "%s has an invalid llama2.c header (dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d): every value must be positive (vocab_size may be negative) — the file is corrupt or not a llama2.c checkpoint",
                     path, D, F, L, H, KV, Vs, T);
        goto fail;
    }
    if (D % H != 0 || H % KV != 0 || (D / H) % 2 != 0) {
        hs_log_error("model", "%s has an inconsistent llama2.c header: dim %d must be a multiple of n_heads %d with an even head size, and n_heads a multiple of n_kv_heads %d — the file is corrupt",
                     path, D, H, KV);
        goto fail;
    }
    l2c_sizes s;
    char hdr[200];
    snprintf(hdr, sizeof hdr, "dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d",
             D, F, L, H, KV, Vs, T);
    if (!sizes(h, &s)) {
        hs_log_error("model", "%s has a llama2.c header (%s) whose tensor sizes overflow — the file is corrupt or not a llama2.c checkpoint", path, hdr);
        goto fail;
    }
    size_t need = HDR_BYTES + s.total * sizeof(float);   /* cannot overflow: checked in sizes() */
    if (need > len) {
        hs_log_error("model", "%s is %zu bytes but its llama2.c header (%s) needs %zu — the file is truncated or its header is corrupt",
                     path, len, hdr, need);
        goto fail;
    }
    if (need < len) {
        hs_log_error("model", "%s is %zu bytes, more than the %zu its llama2.c header (%s) describes — not a legacy llama2.c checkpoint, or its header is corrupt",
                     path, len, need, hdr);
        goto fail;
    }

    rt_config *g = &m->cfg;
    snprintf(g->model_type, sizeof g->model_type, "llama");
    snprintf(g->dtype, sizeof g->dtype, "F32");
    g->format = RT_FORMAT_LLAMA2C;
    g->arch = RT_ARCH_LLAMA;
    g->norm = RT_NORM_RMS;
    g->act = RT_ACT_SILU;
    g->n_layers = L; g->n_heads = H; g->n_kv_heads = KV; g->d_model = D; g->d_head = D / H;
    g->d_mlp = F; g->vocab_size = Vs < 0 ? -Vs : Vs; g->n_ctx = T;
    g->norm_eps = 1e-5f;            /* run.c's rmsnorm */
    g->rope_theta = 10000.0f;       /* run.c's RoPE frequency base */
    g->rope_interleaved = true;     /* run.c rotates adjacent pairs (x[i], x[i+1]) */
    g->sliding_window = 0;
    g->tied_embeddings = Vs > 0;
    g->bos_id = g->vocab_size > 1 ? 1 : -1;   /* SentencePiece ids used by run.c: <s> = 1, </s> = 2 */
    g->eos_id = g->vocab_size > 2 ? 2 : -1;
    g->n_params = (int64_t)(s.total - s.freq);   /* freq_cis is a table, not a parameter */

    const float *p = (const float *)((const char *)map + HDR_BYTES);
    const float *emb = p;                    p += s.emb;
    const float *rms_att = p;                p += s.rms_att;
    const float *wq = p;                     p += s.wq;
    const float *wk = p;                     p += s.wk;
    const float *wv = p;                     p += s.wv;
    const float *wo = p;                     p += s.wo;
    const float *rms_ffn = p;                p += s.rms_ffn;
    const float *w1 = p;                     p += s.w1;
    const float *w2 = p;                     p += s.w2;
    const float *w3 = p;                     p += s.w3;
    const float *rms_final = p;              p += s.rms_final;
    p += s.freq;                             /* skip freq_cis_real/imag: RoPE is recomputed */
    const float *wcls = Vs < 0 ? p : emb;

    size_t HD = (size_t)(D / H), QD = (size_t)H * HD, KD = (size_t)KV * HD;
    m->tok_embed = emb;
    m->pos_embed = NULL;
    m->layers = hs_arena_calloc(&m->weights, (size_t)L, sizeof *m->layers);
    for (size_t l = 0; l < (size_t)L; l++) {
        rt_layer *ly = &m->layers[l];
        ly->ln1.w = rms_att + l * (size_t)D;
        ly->ln2.w = rms_ffn + l * (size_t)D;
        ly->q = (rt_linear){wq + l * QD * (size_t)D, NULL, D, (int)QD, false};
        ly->k = (rt_linear){wk + l * KD * (size_t)D, NULL, D, (int)KD, false};
        ly->v = (rt_linear){wv + l * KD * (size_t)D, NULL, D, (int)KD, false};
        ly->o = (rt_linear){wo + l * (size_t)D * QD, NULL, (int)QD, D, false};
        ly->gate = (rt_linear){w1 + l * (size_t)F * (size_t)D, NULL, D, F, false};
        ly->down = (rt_linear){w2 + l * (size_t)D * (size_t)F, NULL, F, D, false};
        ly->up = (rt_linear){w3 + l * (size_t)F * (size_t)D, NULL, D, F, false};
    }
    m->ln_final.w = rms_final;
    m->lm_head = (rt_linear){wcls, NULL, D, g->vocab_size, false};
    m->config_json = synth_config(h);
    m->maps = hs_xmalloc(sizeof *m->maps);
    m->map_lens = hs_xmalloc(sizeof *m->map_lens);
    m->maps[0] = map;
    m->map_lens[0] = len;
    m->n_maps = 1;
    return HS_OK;
fail:
    if (map != MAP_FAILED) munmap(map, len);
    rt_model_clear(m);
    return st;
}
