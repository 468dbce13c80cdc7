/* model.h — a loaded transformer checkpoint: its configuration and fp32 weights.
 *
 * One struct serves every supported family (gpt2, llama, mistral, qwen2, llama2.c). The loaders
 * (hf_model.c for Hugging Face folders, llama2c.c for llama2.c .bin files) fill it; the forward
 * pass reads it and never sees the file format.
 *
 * Weights are fp32. F32 safetensors are used in place from the mmap; F16/BF16 are converted once
 * into the model's weight arena. Linear weights keep their file layout and say which it is:
 *   HF nn.Linear      : (out, in)  -> in_major = false
 *   GPT-2 Conv1D      : (in, out)  -> in_major = true
 * so no transpose copy is ever made (the GEMM picks the transpose flag).
 */
#ifndef HS_MODEL_H
#define HS_MODEL_H
#include "arena.h"
#include "common.h"
#include "tokenizer.h"

typedef enum { RT_ARCH_GPT2, RT_ARCH_LLAMA } rt_arch;          /* llama covers mistral, qwen2, llama2.c */
typedef enum { RT_FORMAT_HF, RT_FORMAT_LLAMA2C } rt_format;
typedef enum { RT_NORM_LAYER, RT_NORM_RMS } rt_norm_kind;
typedef enum { RT_ACT_GELU_TANH, RT_ACT_GELU_EXACT, RT_ACT_SILU } rt_act;

typedef struct {
    const float *w;    /* (n_out, n_in) if !in_major, (n_in, n_out) if in_major */
    const float *b;    /* (n_out) or NULL */
    int n_in, n_out;
    bool in_major;
} rt_linear;

typedef struct {
    const float *w;    /* (D) */
    const float *b;    /* (D) or NULL (RMSNorm) */
} rt_norm;

typedef struct {
    rt_norm ln1, ln2;
    /* GPT-2 has one fused c_attn (D -> 3D: q|k|v); the llama family has three projections.
     * Exactly one of {qkv} or {q,k,v} is set (w != NULL). */
    rt_linear qkv;
    rt_linear q, k, v;
    rt_linear o;       /* (H*HD -> D) */
    /* MLP: gpt2 uses up (D -> F) then act then down; llama uses act(gate) * up then down. */
    rt_linear gate, up, down;
} rt_layer;

typedef struct {
    char model_type[32];   /* "gpt2", "llama", "mistral", "qwen2" ("llama" for llama2.c) */
    rt_format format;
    rt_arch arch;
    rt_norm_kind norm;
    rt_act act;
    int n_layers, n_heads, n_kv_heads, d_model, d_head, d_mlp, vocab_size, n_ctx;
    float norm_eps;
    float rope_theta;      /* llama family only */
    bool rope_interleaved; /* true: rotate adjacent pairs (llama2.c/Meta); false: HF half-rotation */
    int sliding_window;    /* 0 = none; else key j visible from query i iff i - j < sliding_window */
    bool tied_embeddings;
    int bos_id, eos_id;    /* -1 when unknown */
    int64_t n_params;      /* parameters counted once (tied embeddings once) */
    char dtype[8];         /* added (loaders): storage dtype of the weights in the file: "F32", "F16",
                            * "BF16", or "mixed"; the loaded weights are always fp32 */
} rt_config;

typedef struct {
    rt_config cfg;
    const float *tok_embed;   /* (V, D) */
    const float *pos_embed;   /* (n_ctx, D) gpt2 only, else NULL */
    rt_layer *layers;         /* (L) allocated in `weights` */
    rt_norm ln_final;
    rt_linear lm_head;        /* D -> V; points at tok_embed when tied */
    char *path;               /* owned copy of the path it was loaded from */
    char *config_json;        /* owned: the config as JSON text (HF config.json, or synthesised) */
    /* internal: storage */
    hs_arena weights;         /* converted weights and the layers array */
    void **maps; size_t *map_lens; int n_maps;   /* mmapped files (heap arrays), weights point into them */
} rt_model;

/* Load a model from PATH: a Hugging Face folder (config.json + safetensors, sharded or not)
 * or a llama2.c .bin checkpoint. On success *out is a heap model (free with rt_model_free).
 * On error logs one line and returns HS_EBADINPUT/HS_EIO/HS_EUNSUPPORTED; *out is NULL. */
hs_status rt_model_load(const char *path, rt_model **out);
void rt_model_free(rt_model *m);

/* Hex sha256 of the weight files (llama2.c: the .bin; HF: model.safetensors, or the shards in
 * sorted order as one stream). HS_EIO (one line) if a file cannot be read. */
hs_status rt_model_sha256(const rt_model *m, char hex[65]);

/* The JSON object printed by `headscope info` (caller frees with free()). */
char *rt_model_info_json(const rt_model *m);

/* Loader entry points used by rt_model_load (exposed for tests and fuzzers).
 * m must be zeroed (memset 0) by the caller. On success m owns its storage (release with
 * rt_model_clear; rt_model_load's heap models are released by rt_model_free). On error they log
 * one line, release whatever they attached and leave m zeroed. */
hs_status rt_hf_load(const char *dir, rt_model *m);
hs_status rt_llama2c_load(const char *path, rt_model *m);

/* Added (loaders): release everything m owns (maps, weight arena with the layers, path,
 * config_json) and zero *m; the struct itself is not freed. Safe on a zeroed model. */
void rt_model_clear(rt_model *m);

/* Added (loaders): parse a config.json text (len bytes, need not be NUL-terminated) into *cfg.
 * `where` is the config's path, named in error lines. Fills every rt_config field except
 * n_params and dtype (which need the weights). On error logs one line, returns HS_EBADINPUT
 * (malformed or missing field) or HS_EUNSUPPORTED (model_type, rope type/scaling, activation,
 * attention variant); *cfg unchanged. Used by rt_hf_load, tests and tests/fuzz/fuzz_config.c. */
hs_status rt_hf_config_parse(const char *json, size_t len, const char *where, rt_config *cfg);

/* Added (loaders): open the tokenizer that belongs to m. override_path (may be NULL) wins: a path
 * ending in ".json" is loaded as tokenizer.json, anything else as a llama2.c tokenizer.bin.
 * Otherwise HF folders use <dir>/tokenizer.json and llama2.c models tokenizer.bin, else the first
 * tok*.bin (sorted by name), beside the .bin file. On success *out is a tokenizer to free with
 * rt_tokenizer_free. On error logs one line (a missing file: HS_EIO) and *out = NULL. */
hs_status rt_model_open_tokenizer(const rt_model *m, const char *override_path, rt_tokenizer **out);
#endif
