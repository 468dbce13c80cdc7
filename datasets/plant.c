/* plant.c — build the planted-circuit gpt2 model analytically and write it as a Hugging Face folder.
 *
 * The residual stream (D = 256) is cut into channels, each a block of 64 coordinates:
 *   TOK  [0, 64)     token identity code (wte), read by 0.1/1.2/1.3; also the unembedding (tied)
 *   PREV [64, 128)   the previous token's code, written by 0.1, read by 1.2's keys
 *   POS  [128, 192)  position code: 16 cos/sin frequencies (wpe), read by 0.1's queries and keys
 *   BOS  [192, 194)  a flag only position 0 carries (wpe row 0), read by 1.0's keys; [194, 256) spare
 * Every vector written into the stream sums to zero (token codes are centred, position and flag
 * values come in +v/√2, −v/√2 coordinate pairs, head outputs copy centred inputs), so LayerNorm
 * (weight 1, bias 0) subtracts nothing and only rescales by 16/|x|; |x| is made the same at every
 * position, so that rescaling is a known constant per layer (1 before layer 0, ≈0.82 before layer 1).
 * Every planted read goes through the block's centring matrix C = I − 11ᵀ/64, so the small mean that
 * random filler and MLP outputs leave in the stream cannot leak into a planted head.
 * docs/planted.md derives each scale constant below; tests/test_plant.c measures the result.
 */
#include "plant.h"
#include "safetensors_write.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    D = DS_PLANT_D, H = DS_PLANT_HEADS, HD = DS_PLANT_HD, L = DS_PLANT_LAYERS, F = 4 * DS_PLANT_D,
    V = DS_PLANT_VOCAB, NCTX = DS_PLANT_CTX, CH = 64,
    TOK_AT = 0, PREV_AT = 64, POS_AT = 128, BOS_AT = 192,
    N_FREQ = 16,
};

/* Scales (why each value: docs/planted.md, "Scale constants"). */
#define TOK_NORM   11.313708498984761   /* |token code| = √128: half of |x|² = 256 before layer 0 */
#define POS_AMP    2.8284271247461903   /* per-frequency amplitude √8: |position code| = √(16·8) = √128 */
#define BOS_FLAG   4.0                  /* |flag| at position 0 */
#define PREV_QK    2.0                  /* 0.1 query gain: logit gap to the runner-up ≈ 16 */
#define PREV_OV    1.0                  /* 0.1 writes the attended token's code at unit gain */
#define IND_Q      2.0                  /* 1.2 query gain: logit of the matching key ≈ 21 */
#define IND_OV     4.0                  /* 1.2 copy gain: beats the current token's own code in the logits */
#define BOS_Q      8.0                  /* 1.0 constant query (bias) ... */
#define BOS_K      8.0                  /* ... times the flag read: logit ≈ 26 at position 0, ≈ 0 elsewhere */
#define COPY_OV    1.0                  /* 1.3 copy gain */
#define FILL_STD   0.02f                /* filler head weights (GPT-2's init scale) */
#define MLP_IN_STD 0.02f                /* MLPs: near no-ops, |output| ≈ 1% of |x| */
#define MLP_OUT_STD 0.002f

/* ------------------------------------------------------------------ seeded randomness */
/* splitmix64: tiny, fast, and every (seed, stream) pair gives an independent-looking sequence, so
 * the token codes, each filler head and each MLP draw from their own stream: changing how one is
 * drawn never shifts the others. */
typedef struct { uint64_t s; } prng;

static uint64_t prng_next(prng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static prng prng_stream(uint64_t seed, uint64_t stream) {
    prng r = { seed };
    r.s = prng_next(&r) ^ (stream * 0xD1B54A32D192ED03ull);
    prng_next(&r);
    return r;
}

static double prng_uniform(prng *r) {   /* in (0, 1) */
    return ((double)(prng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double prng_normal(prng *r) {    /* Box-Muller; one value per call keeps the stream simple */
    double u = prng_uniform(r), v = prng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ------------------------------------------------------------------ the weights */
typedef struct {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b;   /* (D) */
    float *qkv_w;                           /* (D, 3D) Conv1D: columns q | k | v, head h = h*HD.. */
    float *qkv_b;                           /* (3D) */
    float *o_w;                             /* (D, D) Conv1D: rows = head h's dims h*HD.. */
    float *o_b;                             /* (D) */
    float *fc_w, *fc_b;                     /* (D, F), (F) */
    float *proj_w, *proj_b;                 /* (F, D), (D) */
} layer_w;

typedef struct {
    float *all;                             /* one allocation holds every tensor */
    float *wte;                             /* (V, D) */
    float *wpe;                             /* (NCTX, D) */
    layer_w ly[L];
    float *lnf_w, *lnf_b;                   /* (D) */
} plant_w;

enum { Q = 0, K = 1, VV = 2 };

static float *qkv(layer_w *w, int which, int h, int in, int hd) {
    return &w->qkv_w[(size_t)in * 3 * D + (size_t)which * D + (size_t)h * HD + hd];
}
static float *o_at(layer_w *w, int h, int hd, int out) {
    return &w->o_w[(size_t)(h * HD + hd) * D + out];
}

/* Head dims 0..63 of (which, h) read channel `at` through C = I − 11ᵀ/64, times gain. */
static void read_centred(layer_w *w, int which, int h, int at, double gain) {
    for (int c = 0; c < CH; c++)
        for (int k = 0; k < CH; k++)
            *qkv(w, which, h, at + c, k) = (float)(gain * ((c == k) - 1.0 / CH));
}

/* Head h's dims 0..63 are written to channel `at`, times gain. */
static void write_channel(layer_w *w, int h, int at, double gain) {
    for (int k = 0; k < CH; k++) *o_at(w, h, k, at + k) = (float)gain;
}

/* A head with no planted structure: every q, k, v weight N(0, FILL_STD²); the W_O rows are
 * centred so its output, like everything else written, sums to zero. */
static void random_head(layer_w *w, int h, prng *r, bool qk, bool ov) {
    for (int which = qk ? Q : VV; which <= (ov ? VV : K); which++)
        for (int in = 0; in < D; in++)
            for (int k = 0; k < HD; k++) *qkv(w, which, h, in, k) = FILL_STD * (float)prng_normal(r);
    if (!ov) return;
    for (int k = 0; k < HD; k++) {
        double row[D], mean = 0;
        for (int j = 0; j < D; j++) { row[j] = FILL_STD * prng_normal(r); mean += row[j]; }
        mean /= D;
        for (int j = 0; j < D; j++) *o_at(w, h, k, j) = (float)(row[j] - mean);
    }
}

/* ω_f = π · 32^(−f/15): geometric from π (period 2) to π/32 (period 64). Among geometric sets this
 * range maximises the worst-case gap F − max_{d≠0} Σ_f cos(ω_f d) over d ∈ {−1, 1..255}: 8.1 of 16,
 * reached at d = ±1 (docs/planted.md). */
static double freq(int f) { return M_PI * pow(32.0, -(double)f / (N_FREQ - 1)); }

/* Write logical value v of a ±-paired channel: coordinates (at+2k, at+2k+1) = (v/√2, −v/√2). */
static void put_pair(float *row, int at, int k, double v) {
    row[at + 2 * k] = (float)(v * M_SQRT1_2);
    row[at + 2 * k + 1] = (float)(-v * M_SQRT1_2);
}

static void build_embeddings(plant_w *p, uint64_t seed) {
    prng r = prng_stream(seed, 1);
    for (int t = 0; t < V; t++) {           /* random codes, centred, all of norm TOK_NORM */
        double g[CH], mean = 0, ss = 0;
        for (int c = 0; c < CH; c++) { g[c] = prng_normal(&r); mean += g[c]; }
        mean /= CH;
        for (int c = 0; c < CH; c++) { g[c] -= mean; ss += g[c] * g[c]; }
        double s = TOK_NORM / sqrt(ss);
        for (int c = 0; c < CH; c++) p->wte[(size_t)t * D + TOK_AT + c] = (float)(g[c] * s);
    }
    for (int i = 0; i < NCTX; i++) {
        float *row = p->wpe + (size_t)i * D;
        for (int f = 0; f < N_FREQ; f++) {
            put_pair(row, POS_AT, 2 * f, POS_AMP * cos(freq(f) * i));
            put_pair(row, POS_AT, 2 * f + 1, POS_AMP * sin(freq(f) * i));
        }
    }
    put_pair(p->wpe, BOS_AT, 0, BOS_FLAG);
}

static void build_layer0(plant_w *p, uint64_t seed) {
    layer_w *w = &p->ly[0];
    /* 0.1 previous-token: q_i = PREV_QK · R(−ω) u_i = PREV_QK · u_{i−1}, k_j = u_j, where u is the
     * logical position code (cos ω_f i, sin ω_f i)·POS_AMP. So q_i·k_j = PREV_QK·POS_AMP²·Σ_f
     * cos(ω_f (i−1−j)), largest at j = i−1. Logical value k of POS is (x[2k] − x[2k+1])/√2. */
    for (int f = 0; f < N_FREQ; f++) {
        double c = cos(freq(f)), s = sin(freq(f));
        double m[2][2] = { { c, s }, { -s, c } };   /* rows: head dims 2f, 2f+1; cols: logical 2f, 2f+1 */
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                int in = POS_AT + 2 * (2 * f + b);
                *qkv(w, Q, 1, in, 2 * f + a) = (float)(PREV_QK * m[a][b] * M_SQRT1_2);
                *qkv(w, Q, 1, in + 1, 2 * f + a) = (float)(-PREV_QK * m[a][b] * M_SQRT1_2);
            }
        for (int a = 0; a < 2; a++) {
            int in = POS_AT + 2 * (2 * f + a);
            *qkv(w, K, 1, in, 2 * f + a) = (float)M_SQRT1_2;
            *qkv(w, K, 1, in + 1, 2 * f + a) = (float)-M_SQRT1_2;
        }
    }
    read_centred(w, VV, 1, TOK_AT, 1.0);
    write_channel(w, 1, PREV_AT, PREV_OV);
    for (int h = 0; h < H; h++) {
        if (h == 1) continue;
        prng r = prng_stream(seed, 100 + (uint64_t)h);
        random_head(w, h, &r, true, true);
    }
}

static void build_layer1(plant_w *p, uint64_t seed) {
    layer_w *w = &p->ly[1];
    prng r;
    /* 1.0 BOS sink: constant query (bias) against a key that reads the position-0 flag */
    w->qkv_b[Q * D + 0 * HD + 0] = (float)BOS_Q;
    *qkv(w, K, 0, BOS_AT, 0) = (float)(BOS_K * M_SQRT1_2);
    *qkv(w, K, 0, BOS_AT + 1, 0) = (float)(-BOS_K * M_SQRT1_2);
    r = prng_stream(seed, 110);
    random_head(w, 0, &r, false, true);      /* a sink's value is small and structureless */
    /* 1.1 filler */
    r = prng_stream(seed, 111);
    random_head(w, 1, &r, true, true);
    /* 1.2 induction: query = current token, key = PREV channel (what 0.1 wrote), OV = copy to TOK */
    read_centred(w, Q, 2, TOK_AT, IND_Q);
    read_centred(w, K, 2, PREV_AT, 1.0);
    read_centred(w, VV, 2, TOK_AT, 1.0);
    write_channel(w, 2, TOK_AT, IND_OV);
    /* 1.3 copying: W_Q = W_K = 0 gives uniform attention over the prefix; OV = identity on TOK */
    read_centred(w, VV, 3, TOK_AT, 1.0);
    write_channel(w, 3, TOK_AT, COPY_OV);
}

static void build_mlps(plant_w *p, uint64_t seed) {
    for (int l = 0; l < L; l++) {
        prng r = prng_stream(seed, 200 + (uint64_t)l);
        for (size_t i = 0; i < (size_t)D * F; i++) p->ly[l].fc_w[i] = MLP_IN_STD * (float)prng_normal(&r);
        for (size_t i = 0; i < (size_t)F * D; i++) p->ly[l].proj_w[i] = MLP_OUT_STD * (float)prng_normal(&r);
    }
}

static void plant_build(plant_w *p, uint64_t seed) {
    size_t per_layer = 4 * (size_t)D + (size_t)D * 3 * D + 3 * (size_t)D + (size_t)D * D + D +
                       (size_t)D * F + F + (size_t)F * D + D;
    size_t total = (size_t)V * D + (size_t)NCTX * D + L * per_layer + 2 * (size_t)D;
    float *a = p->all = hs_xcalloc(total, sizeof(float));
#define TAKE(n) (a += (n), a - (n))
    p->wte = TAKE((size_t)V * D);
    p->wpe = TAKE((size_t)NCTX * D);
    for (int l = 0; l < L; l++) {
        layer_w *w = &p->ly[l];
        w->ln1_w = TAKE(D); w->ln1_b = TAKE(D); w->ln2_w = TAKE(D); w->ln2_b = TAKE(D);
        w->qkv_w = TAKE((size_t)D * 3 * D); w->qkv_b = TAKE(3 * (size_t)D);
        w->o_w = TAKE((size_t)D * D); w->o_b = TAKE(D);
        w->fc_w = TAKE((size_t)D * F); w->fc_b = TAKE(F);
        w->proj_w = TAKE((size_t)F * D); w->proj_b = TAKE(D);
        for (int j = 0; j < D; j++) w->ln1_w[j] = w->ln2_w[j] = 1.0f;
    }
    p->lnf_w = TAKE(D); p->lnf_b = TAKE(D);
#undef TAKE
    HS_ASSERT(a == p->all + total);
    for (int j = 0; j < D; j++) p->lnf_w[j] = 1.0f;
    build_embeddings(p, seed);
    build_layer0(p, seed);
    build_layer1(p, seed);
    build_mlps(p, seed);
}

/* ------------------------------------------------------------------ the files */
static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = hs_xmalloc(n);
    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static hs_status write_json(const char *dir, const char *name, cJSON *root) {
    char *path = join(dir, name), *text = cJSON_Print(root);
    HS_ASSERT(text);
    size_t n = strlen(text);
    text[n] = '\n';   /* replaces the terminator: the file ends with a newline, the length says where */
    hs_status st = ds_file_write_atomic(path, text, n + 1, "plant");
    cJSON_free(text);
    free(path);
    cJSON_Delete(root);
    return st;
}

static cJSON *config_json(void) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "activation_function", "gelu_new");
    cJSON *arch = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
    cJSON_AddNumberToObject(c, "attn_pdrop", 0.0);
    cJSON_AddNumberToObject(c, "bos_token_id", DS_PLANT_BOS);
    cJSON_AddStringToObject(c, "dtype", "float32");
    cJSON_AddNumberToObject(c, "embd_pdrop", 0.0);
    cJSON_AddNumberToObject(c, "eos_token_id", DS_PLANT_BOS);
    cJSON_AddNumberToObject(c, "initializer_range", 0.02);
    cJSON_AddNumberToObject(c, "layer_norm_epsilon", 1e-5);
    cJSON_AddStringToObject(c, "model_type", "gpt2");
    cJSON_AddNumberToObject(c, "n_embd", D);
    cJSON_AddNumberToObject(c, "n_head", H);
    cJSON_AddNullToObject(c, "n_inner");
    cJSON_AddNumberToObject(c, "n_layer", L);
    cJSON_AddNumberToObject(c, "n_positions", NCTX);
    cJSON_AddNullToObject(c, "pad_token_id");
    cJSON_AddBoolToObject(c, "reorder_and_upcast_attn", false);
    cJSON_AddNumberToObject(c, "resid_pdrop", 0.0);
    cJSON_AddBoolToObject(c, "scale_attn_by_inverse_layer_idx", false);
    cJSON_AddBoolToObject(c, "scale_attn_weights", true);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", true);
    cJSON_AddBoolToObject(c, "use_cache", true);
    cJSON_AddNumberToObject(c, "vocab_size", V);
    return c;
}

static cJSON *tokenizer_config_json(void) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "tokenizer_class", "PreTrainedTokenizerFast");
    cJSON_AddStringToObject(c, "bos_token", "<|endoftext|>");
    cJSON_AddStringToObject(c, "eos_token", "<|endoftext|>");
    cJSON_AddNumberToObject(c, "model_max_length", NCTX);
    cJSON_AddBoolToObject(c, "clean_up_tokenization_spaces", false);
    return c;
}

static cJSON *strings(const char *const *s, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
    return a;
}

static cJSON *range(int b, int e) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(b));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(e));
    return a;
}

static cJSON *planted_json(uint64_t seed) {
    static const char *const fillers[] = { "0.0", "0.2", "0.3", "1.1" };
    static const char *const also[] = { "1.2" };
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "previous_token", "0.1");
    cJSON_AddStringToObject(c, "induction", "1.2");
    cJSON_AddStringToObject(c, "bos_sink", "1.0");
    cJSON_AddStringToObject(c, "copying", "1.3");
    cJSON_AddItemToObject(c, "filler", strings(fillers, 4));
    /* an induction head that predicts through the tied unembedding must copy: 1.2's OV is the
     * same identity as 1.3's, so a copying detector finds both (1.3 is the one that only copies) */
    cJSON_AddItemToObject(c, "also_copying", strings(also, 1));
    cJSON_AddNumberToObject(c, "seed", (double)seed);   /* exact: seed < 2^53 */
    cJSON_AddStringToObject(c, "construction", "docs/planted.md");
    cJSON_AddNumberToObject(c, "bos_token_id", DS_PLANT_BOS);
    cJSON_AddStringToObject(c, "bos_sink_key", "position 0 (the flag is in wpe row 0, whatever the token)");
    cJSON *ch = cJSON_AddObjectToObject(c, "channels");
    cJSON_AddItemToObject(ch, "token", range(TOK_AT, TOK_AT + CH));
    cJSON_AddItemToObject(ch, "previous_token", range(PREV_AT, PREV_AT + CH));
    cJSON_AddItemToObject(ch, "position", range(POS_AT, POS_AT + CH));
    cJSON_AddItemToObject(ch, "bos_flag", range(BOS_AT, BOS_AT + 2));
    cJSON *th = cJSON_AddObjectToObject(c, "thresholds");   /* what tests/test_plant.c asserts */
    cJSON_AddNumberToObject(th, "previous_token", 0.9);
    cJSON_AddNumberToObject(th, "induction", 0.8);
    cJSON_AddNumberToObject(th, "bos_sink", 0.9);
    cJSON_AddNumberToObject(th, "copying", 0.95);
    cJSON_AddNumberToObject(th, "filler_margin", 0.3);
    cJSON_AddStringToObject(c, "generator", "headscope plant " HS_VERSION);
    return c;
}

/* mkdir -p: create DIR and any missing parents. */
static hs_status make_dirs(const char *dir) {
    char *p = hs_xstrdup(dir);
    hs_status st = HS_OK;
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            struct stat sb;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                hs_log_error("plant", "cannot create folder %s: %s — choose a writable --out", p, strerror(errno));
                st = HS_EIO;
                break;
            }
            if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                hs_log_error("plant", "%s exists and is not a folder — choose another --out", p);
                st = HS_EIO;
                break;
            }
            if (end) break;
            *s = '/';
        }
    }
    free(p);
    return st;
}

static void add_tensor(ds_st_tensor *t, int *n, char (*names)[96], const char *name, const float *data,
                       int64_t d0, int64_t d1) {
    snprintf(names[*n], 96, "%s", name);
    t[*n] = (ds_st_tensor){ names[*n], d1 ? 2 : 1, { d0, d1 }, data };
    (*n)++;
}

static hs_status write_weights(const char *dir, const plant_w *p) {
    enum { MAX_T = 3 + L * 12 + 2 };
    ds_st_tensor t[MAX_T];
    char names[MAX_T][96], nm[96];
    int n = 0;
    add_tensor(t, &n, names, "transformer.wte.weight", p->wte, V, D);
    add_tensor(t, &n, names, "transformer.wpe.weight", p->wpe, NCTX, D);
    for (int l = 0; l < L; l++) {
        const layer_w *w = &p->ly[l];
        struct { const char *suffix; const float *data; int64_t d0, d1; } items[] = {
            { "ln_1.weight", w->ln1_w, D, 0 },         { "ln_1.bias", w->ln1_b, D, 0 },
            { "attn.c_attn.weight", w->qkv_w, D, 3 * D }, { "attn.c_attn.bias", w->qkv_b, 3 * D, 0 },
            { "attn.c_proj.weight", w->o_w, D, D },    { "attn.c_proj.bias", w->o_b, D, 0 },
            { "ln_2.weight", w->ln2_w, D, 0 },         { "ln_2.bias", w->ln2_b, D, 0 },
            { "mlp.c_fc.weight", w->fc_w, D, F },      { "mlp.c_fc.bias", w->fc_b, F, 0 },
            { "mlp.c_proj.weight", w->proj_w, F, D },  { "mlp.c_proj.bias", w->proj_b, D, 0 },
        };
        for (size_t i = 0; i < sizeof items / sizeof *items; i++) {
            snprintf(nm, sizeof nm, "transformer.h.%d.%s", l, items[i].suffix);
            add_tensor(t, &n, names, nm, items[i].data, items[i].d0, items[i].d1);
        }
    }
    add_tensor(t, &n, names, "transformer.ln_f.weight", p->lnf_w, D, 0);
    add_tensor(t, &n, names, "transformer.ln_f.bias", p->lnf_b, D, 0);
    HS_ASSERT(n <= MAX_T);
    char *path = join(dir, "model.safetensors");
    hs_status st = ds_safetensors_write(path, t, n, "plant");
    free(path);
    return st;
}

hs_status ds_plant_write(const char *dir, uint64_t seed) {
    if (seed >= DS_PLANT_MAX_SEED) {
        hs_log_error("plant", "seed %llu is too large (must be below 2^53 so planted.json records it exactly) — pick a smaller seed",
                     (unsigned long long)seed);
        return HS_EBADINPUT;
    }
    if (!dir || !*dir) {
        hs_log_error("plant", "no output folder given — pass --out DIR");
        return HS_EBADINPUT;
    }
    hs_status st = make_dirs(dir);
    if (st != HS_OK) return st;
    plant_w p;
    memset(&p, 0, sizeof p);
    plant_build(&p, seed);
    char *tok = ds_plant_tokenizer_json(), *tok_path = join(dir, "tokenizer.json");
    st = ds_file_write_atomic(tok_path, tok, strlen(tok), "plant");
    free(tok);
    free(tok_path);
    /* config.json last: a folder only looks like a model once everything else is in place */
    if (st == HS_OK) st = write_json(dir, "tokenizer_config.json", tokenizer_config_json());
    if (st == HS_OK) st = write_weights(dir, &p);
    if (st == HS_OK) st = write_json(dir, "planted.json", planted_json(seed));
    if (st == HS_OK) st = write_json(dir, "config.json", config_json());
    free(p.all);
    return st;
}
