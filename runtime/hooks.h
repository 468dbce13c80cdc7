/* hooks.h — TransformerLens-named hook points: declare what you want before the forward pass,
 * receive each requested tensor through a callback, optionally modify it in place.
 *
 * Why a declared spec instead of "cache everything": a hook nobody asked for costs nothing —
 * no copy, no T×T pattern buffer, no per-head output projection. A 4096-token forward with no
 * hooks keeps only one layer's activations alive.
 *
 * Tensors handed to a callback are contiguous fp32, row-major, rows = token positions of ONE
 * sequence of the batch (batch dimension dropped). Per-head hooks fire once per requested head:
 *   hook_q, hook_rot_q, hook_z         (T, HD)      head = query head
 *   hook_k, hook_v, hook_rot_k         (T, HD)      head = key/value head (GQA: KV of them)
 *   hook_attn_scores, hook_pattern     (T, Tk)      row = query, Tk = keys visible (pos0 + T);
 *                                                   scores are scaled and masked (-inf), pattern post-softmax
 *   hook_result                        (T, D)       z_h · W_O[:, h]ᵀ, without the output bias
 * Whole-layer hooks fire once per layer: (T, D), or (T, F) for mlp.hook_pre / mlp.hook_post,
 * (T, V) for logits. Writing into `data` is an intervention: the forward continues with the
 * modified values (see intervene.h for ready-made ablation, patching and pattern overrides).
 */
#ifndef HS_HOOKS_H
#define HS_HOOKS_H
#include "common.h"

typedef enum {
    RT_HOOK_EMBED, RT_HOOK_POS_EMBED,
    RT_HOOK_RESID_PRE, RT_HOOK_LN1_NORMALIZED,
    RT_HOOK_Q, RT_HOOK_K, RT_HOOK_V, RT_HOOK_ROT_Q, RT_HOOK_ROT_K,
    RT_HOOK_ATTN_SCORES, RT_HOOK_PATTERN, RT_HOOK_Z, RT_HOOK_RESULT,
    RT_HOOK_ATTN_OUT, RT_HOOK_RESID_MID, RT_HOOK_LN2_NORMALIZED,
    RT_HOOK_MLP_PRE, RT_HOOK_MLP_POST, RT_HOOK_MLP_OUT, RT_HOOK_RESID_POST,
    RT_HOOK_LN_FINAL, RT_HOOK_LOGITS,
    RT_HOOK_N
} rt_hook_point;

typedef struct {
    rt_hook_point point;
    const char *name;     /* full TransformerLens name, e.g. "blocks.2.attn.hook_pattern" */
    int layer;            /* -1 for hook_embed, hook_pos_embed, ln_final, logits */
    int head;             /* -1 for whole-layer hooks */
    int seq;              /* index of the sequence in the batch */
    int pos0;             /* absolute position of data row 0 */
    int rows, cols;       /* data is (rows, cols), contiguous */
    int pos_begin, pos_end; /* the requested rows [begin, end) within data */
    float *data;          /* mutable; valid only during the callback */
} rt_hook_event;

typedef void (*rt_hook_fn)(const rt_hook_event *ev, void *user);

/* One request: a hook point, which layers/heads/positions, and the callback.
 * layers/heads: NULL (or n == 0) means all. Positions: [pos_begin, pos_end) with Python-style
 * negatives (pos_begin = -1 => the last position); pos_end == 0 means "to the end". */
typedef struct {
    rt_hook_point point;
    const int *layers; int n_layers;
    const int *heads;  int n_heads;
    int pos_begin, pos_end;
    rt_hook_fn fn;
    void *user;
    bool read_only;       /* the callback only reads data (a recorder, capture): a backend that holds the
                           * tensor elsewhere (the GPU runtime) may skip copying it back, and may call
                           * the callback later (still in event order, before the forward returns).
                           * A read-only callback that writes anyway has undefined effect there.
                           * Default false. */
} rt_hook_req;

typedef struct {
    const rt_hook_req *reqs;  /* borrowed; evaluated in order (interventions compose in order) */
    int n;
} rt_hook_spec;

/* True when request r covers layer l and head h (-1 = "any": global points, whole-layer hooks). */
bool rt_hook_req_covers(const rt_hook_req *r, int l, int h);
/* True when any request of spec (may be NULL) asks for point p at layer l, head h (h = -1: any head). */
bool rt_hook_spec_wants(const rt_hook_spec *spec, rt_hook_point p, int l, int h);

/* True when some request of spec covering (p, l, h) (h = -1: any head) may modify the tensor
 * (read_only false): the GPU runtime copies a hooked tensor back only then. */
bool rt_hook_spec_writes(const rt_hook_spec *spec, rt_hook_point p, int l, int h);
/* Call every request of spec that covers (p, l, h) with a (rows, cols) tensor of sequence `seq`
 * whose row 0 is absolute position pos0; each request's position window is resolved (negative =
 * from the end) and clamped to the rows. Shared by every backend's forward pass. */
void rt_hook_fire(const rt_hook_spec *spec, rt_hook_point p, int l, int h, int seq, int pos0, int rows, int cols,
                  float *data);

/* Logits are computed only for the rows some request wants: the first row any logits request asks
 * for in a T-row sequence (T - 1 when none asks for more, e.g. sampling). */
int rt_hook_logits_first_row(const rt_hook_spec *spec, int T);
/* Fire the logits requests on rows [first, T) of a T-row sequence held in data ((T - first, V));
 * each request's window is resolved against T and expressed relative to data's rows. */
void rt_hook_fire_logits(const rt_hook_spec *spec, int seq, int pos0, int T, int first, int V, float *data);

/* The TransformerLens suffix of a point ("attn.hook_pattern", "hook_resid_post", "logits", ...). */
const char *rt_hook_point_suffix(rt_hook_point p);
/* True for per-layer points (named "blocks.{l}.<suffix>"). */
bool rt_hook_point_is_layer(rt_hook_point p);
/* True for per-head points. */
bool rt_hook_point_is_head(rt_hook_point p);
/* Parse a hook name: either a bare suffix ("hook_pattern", "attn.hook_pattern", "hook_resid_post")
 * or a full name ("blocks.3.attn.hook_z"); *layer = parsed layer or -1. HS_ENOTFOUND (not logged)
 * when the name is unknown. */
hs_status rt_hook_parse_name(const char *name, rt_hook_point *p, int *layer);
/* Write the full name of (p, layer) into buf (always NUL-terminated). */
void rt_hook_format_name(rt_hook_point p, int layer, char *buf, size_t n);
/* Comma-separated list of every valid suffix, for error messages and --help. */
const char *rt_hook_all_names(void);

/* Parse a selection like "all", "3", "0-2,5" into a heap int array (caller frees) with values < limit.
 * *out = NULL and *n = 0 for "all". HS_EBADINPUT (logged once, with `what` naming the option). */
hs_status rt_parse_index_list(const char *spec, int limit, const char *what, int **out, int *n);
#endif
