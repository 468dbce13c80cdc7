/* weights.h — a head's parameters as dense matrices in TransformerLens's convention, whatever
 * layout the checkpoint stored (HF nn.Linear (out, in), GPT-2 Conv1D (in, out), llama2.c).
 *
 *   W_Q^h, W_K^h, W_V^h  (D, HD)   x · W gives the head's query/key/value (row-vector convention)
 *   W_O^h                (HD, D)   z · W_O^h is the head's write into the residual stream
 *   b_Q^h, b_K^h, b_V^h  (HD)      zero when the model has no bias
 * GQA: K and V of query head h are those of its KV head h / (H / KV).
 * These are raw weights (no LayerNorm folding); passes that fold say so in their report.
 */
#ifndef HS_AN_WEIGHTS_H
#define HS_AN_WEIGHTS_H
#include "runtime/model.h"

typedef struct {
    float *w;        /* (rows, cols) row-major, owned: free with an_mat_free */
    int rows, cols;
} an_mat;

typedef enum { AN_W_Q, AN_W_K, AN_W_V, AN_W_O } an_head_weight;

/* Copy head h of layer l's W_Q/W_K/W_V (D, HD) or W_O (HD, D) into *out (allocated here). */
void an_head_matrix(const rt_model *m, int l, int h, an_head_weight which, an_mat *out);
/* Copy the head's bias (HD) for Q/K/V into out (caller's buffer of HD floats); zeros if none.
 * For W_O there is no per-head bias (b_O belongs to the layer): zeros. */
void an_head_bias(const rt_model *m, int l, int h, an_head_weight which, float *out);
/* out (rows_a, cols_b) = a · b  (sgemm). out is allocated here. */
void an_matmul(const an_mat *a, const an_mat *b, an_mat *out);
/* out = aᵀ (allocated here). */
void an_transpose(const an_mat *a, an_mat *out);
void an_mat_free(an_mat *m);
/* Unembedding W_U as a borrowed (V, D) matrix in row-major (i.e. W_Uᵀ): logits = x · W_U = (W_Uᵀ x).
 * Both the tied and untied cases store the unembedding as (V, D) rows. */
const float *an_unembed_rows(const rt_model *m);
#endif
