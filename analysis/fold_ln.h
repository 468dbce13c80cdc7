/* fold_ln.h — one head's circuit weights for the weight-only passes, raw or processed the way
 * TransformerLens's HookedTransformer.from_pretrained processes them.
 *
 * Raw (MAPS's convention, from_pretrained_no_processing): analysis/weights.h as stored.
 * Folded (TransformerLens's defaults fold_ln=True, center_writing_weights=True, center_unembed=True):
 *   reading weights, ln1 = LayerNorm (w, b):  W' = diag(w)·W, then every column centred over D
 *                                              (LN output is centred, so the 1-direction of W is dead);
 *                                              b' = b_head + b·W (the LN bias moves into the head bias)
 *   reading weights, ln1 = RMSNorm (w):        W' = diag(w)·W (no centring, no bias)
 *   writing weights (LayerNorm models only):   every row of W_O centred over D (the next LN removes
 *                                              the mean anyway)
 *   unembedding: W_U' = diag(w_final)·W_U, centred over the vocabulary (a constant logit shift).
 * Why it matters: the folded W_QK, W_OV are the maps between residual directions the model really
 * uses; the raw ones ignore a per-dimension gain in between, which changes singular vectors and
 * composition scores (methods.md §0).
 */
#ifndef HS_AN_FOLD_LN_H
#define HS_AN_FOLD_LN_H
#include "weights.h"

typedef struct {
    int D, HD;
    float *W_Q, *W_K, *W_V;   /* (D, HD) */
    float *W_O;               /* (HD, D) */
    float *b_Q, *b_K, *b_V;   /* (HD) */
    float *buf;               /* owned: the single allocation the pointers above live in */
} an_head_w;

/* Size w for model config c (one allocation; free with an_head_w_free). */
void an_head_w_init(an_head_w *w, const rt_config *c);
void an_head_w_free(an_head_w *w);

/* Load head h of layer l into w (sized for m's config): raw when !fold, else processed as above.
 * GQA: K and V are the head's KV head's (weights.h). Cannot fail. */
void an_head_w_load(const rt_model *m, int l, int h, bool fold, an_head_w *w);

/* A residual-stream write direction v (D) as the unembedding sees it: out = v (raw) or
 * w_final ⊙ v (folded), so that out · W_U[:, t] (rows of an_unembed_rows) is the folded logit
 * direction up to the constant that center_unembed removes. out may alias v. */
void an_fold_unembed_dir(const rt_model *m, bool fold, const float *v, float *out);
#endif
