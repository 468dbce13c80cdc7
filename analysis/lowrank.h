/* lowrank.h — low-rank linear algebra for per-head circuits, and the two weight-only passes built
 * on it: `headscope analyze svd` (svd.c) and `headscope analyze composition` (composition.c).
 *
 * A head's circuits W_OV = W_V·W_O and W_QK = W_Q·W_Kᵀ are D×D but have rank ≤ HD. Everything here
 * works on the factors: the SVD of a product A·B (A (m, r), B (r, n)) comes from two thin QRs and
 * one r×r SVD, cost O((m + n)·r² + r³) instead of O(m·n·min(m, n)) — for GPT-2 small ~10 MFLOP per
 * head instead of ~1 GFLOP. No m×n matrix is ever formed.
 *
 * Numbers: inputs are float (the model's storage), the QRs and the small SVD run in double (LAPACK,
 * column-major, through the *_work entry points so that no call allocates), outputs are double
 * except the collapsed factors, which feed float GEMMs.
 * Conventions (docs/analysis-svd-composition.md): row vectors as TransformerLens, x·W_OV is what a
 * head writes for input x; a left singular vector u is a read direction, a right one v a write
 * direction.
 */
#ifndef HS_AN_LOWRANK_H
#define HS_AN_LOWRANK_H
#include "context.h"
#include <stddef.h>

/* A borrowed, strided view of a float matrix: element (i, j) is p[i*rs + j*cs]. A transpose is a
 * view with the strides swapped, so Wᵀ never needs a copy. */
typedef struct {
    const float *p;
    int rows, cols;
    ptrdiff_t rs, cs;
} an_view;

/* View of a dense row-major (rows, cols) matrix. */
static inline an_view an_view_rm(const float *p, int rows, int cols) {
    an_view v = { p, rows, cols, cols, 1 };
    return v;
}
/* The transpose of v, as a view of the same memory. */
static inline an_view an_view_tr(an_view v) {
    an_view t = { v.p, v.cols, v.rows, v.cs, v.rs };
    return t;
}

typedef struct an_lowrank an_lowrank;   /* opaque LAPACK workspace */

/* Workspace for products A (m, r)·B (r, n) with m, n <= max_mn and r <= max_r. Sized once (with
 * LAPACK's workspace queries), so per-head calls never allocate. Aborts on out-of-memory.
 * Free with an_lowrank_free (NULL is fine). */
an_lowrank *an_lowrank_init(int max_mn, int max_r);
void an_lowrank_free(an_lowrank *w);

/* SVD of P = A·B, A (m, r), B (r, n), within the workspace's bounds, without forming P:
 *   A = Q_a R_a, Bᵀ = Q_b R_b (thin Householder QR), R_a·R_bᵀ = U_s S V_sᵀ (k×k, dgesdd),
 *   P = (Q_a U_s) S (Q_b V_s)ᵀ.
 * s:  (k) singular values, descending, k = min(m, n, r) — the rank bound, always all of them.
 * nv: how many singular vector pairs to return (0 <= nv <= k);
 * u:  NULL or (m, nv) column-major: column j (u + j*m, contiguous) is the j-th left vector;
 * v:  NULL or (n, nv) column-major, the right vectors. Signs are LAPACK's (u_j, v_j flip together).
 * Returns k (> 0). Returns -1 when an input is not finite and -2 when the small SVD did not
 * converge; nothing is logged (the caller knows which head it was and logs one line). */
int an_lowrank_svd(an_lowrank *w, an_view A, an_view B, double *s, int nv, double *u, double *v);

/* A factor C (m, kb) with C·Cᵀ = P·Pᵀ for P = A·B, kb = min(r, n): C = A·R_bᵀ where Bᵀ = Q_b R_b.
 * Because Q_b has orthonormal columns, ‖X·P‖_F = ‖X·C‖_F for every X (TransformerLens's
 * FactoredMatrix.collapse_r up to an orthogonal factor) — the composition pass multiplies senders
 * by C instead of the D×D circuit. Written as float to c[i*ldc + j]. Returns kb, or -1 when an input
 * is not finite (c untouched; nothing logged). */
int an_lowrank_collapse_r(an_lowrank *w, an_view A, an_view B, float *c, int ldc);

/* Stable rank Σσ²/σ_max² of singular values s (k, any order, >= 0); 0 for a zero matrix. */
double an_stable_rank(const double *s, int k);
/* Entropy-effective rank (Roy & Vetterli 2007): exp(−Σ p_i ln p_i) with p_i = σ_i/Σσ; in [1, k]
 * for a non-zero matrix, 0 for a zero matrix. */
double an_effective_rank(const double *s, int k);

/* Scoped single-threaded BLAS for the per-head phases: OpenBLAS's threading costs more than it
 * gains on 768×64 QRs and 64×64 SVDs (measured on the 2-core dev machine: a factored SVD takes
 * 2.4 ms with 2 threads, 1.3 ms with 1), while the passes' big GEMMs want every core. begin returns
 * the thread count to hand back to end. Not for use while another thread is inside OpenBLAS. */
int an_blas_serial_begin(void);
void an_blas_serial_end(int prev_threads);

/* ---- headscope analyze svd (svd.c) ---- */

typedef struct {
    bool fold_ln;       /* false: raw weights (MAPS convention); true: TransformerLens's default
                         * processing (fold_ln.h) */
    int top;            /* tokens per list (5) */
    int directions;     /* top singular directions per circuit with token lists (3) */
} an_svd_params;
void an_svd_defaults(an_svd_params *p);

/* Singular values of every head's circuits, no tokens (tests, benchmark). */
typedef struct {
    int L, H, k;          /* k = min(D, HD) values per circuit */
    double *ov_sv;        /* (L, H, k) W_V·W_O, descending */
    double *qk_sv;        /* (L, H, k) W_Q·W_Kᵀ */
    double *qk_aug_sv;    /* (L, H, k) [W_Q; b_Q]·[W_K; b_K]ᵀ (Franco & Crovella's Ω) */
} an_svd_result;

/* Fill *r (allocated here; free with an_svd_result_free, also after an error). HS_OK, or
 * HS_EBADINPUT with one logged line when a head's weights are not finite or an SVD fails. */
hs_status an_svd_compute(const rt_model *m, const an_svd_params *p, an_svd_result *r);
void an_svd_result_free(an_svd_result *r);

/* Add the pass's members ("heads", "summary") to root (a report from an_report_begin, or any
 * object). tok may be NULL (tokens are then written as their ids). Same errors as an_svd_compute;
 * on error root may hold a partial "heads" array (the caller discards it). */
hs_status an_svd_build(const rt_model *m, const rt_tokenizer *tok, const an_svd_params *p, cJSON *root);

/* The whole pass: report envelope, an_svd_build, an_report_finish to out_path (NULL: stdout). */
hs_status an_svd_run(an_ctx *ctx, const an_svd_params *p, const char *out_path);

/* ---- headscope analyze composition (composition.c) ---- */

enum { AN_COMP_Q, AN_COMP_K, AN_COMP_V, AN_COMP_N };

typedef struct {
    bool fold_ln;       /* as an_svd_params */
    double threshold;   /* z-score at or above which a pair is an edge (4) */
    int null_samples;   /* random (sender, receiver) head pairs in the null (200) */
    uint64_t seed;      /* of the null's Gaussian draws (0) */
} an_composition_params;
void an_composition_defaults(an_composition_params *p);

typedef struct {
    int index;          /* component of the sender's W_OV, 0 = largest singular value */
    double sv;          /* its singular value σ_i */
    double score;       /* ‖v_iᵀ·M_B‖ / ‖M_B‖_F: the rank-1 component's own composition score */
    double share;       /* σ_i²‖v_iᵀM_B‖² / ‖W_OV·M_B‖_F²: its part of the composed norm */
} an_comp_component;

typedef struct {
    int from, to;       /* flat head indices l*H + h, layer(from) < layer(to) */
    int type;           /* AN_COMP_Q/K/V */
    double score, z;
    int n_comp;         /* 1..3: the fewest components whose shares reach 1/2, at most 3 */
    an_comp_component comp[3];
} an_comp_edge;

typedef struct {
    int L, H, N;                    /* N = L*H */
    float *score;                   /* (3, N, N) CS[type][from][to]; 0 unless layer(from) < layer(to) */
    double null_mean[AN_COMP_N], null_sd[AN_COMP_N];
    int null_samples;
    an_comp_edge *edges;            /* (n_edges) by z, descending */
    int n_edges;
} an_composition_result;

/* Every Q-, K- and V-composition score (Elhage et al.; TransformerLens all_composition_scores):
 *   CS(A, B) = ‖W_OV^A·M_B‖_F / (‖W_OV^A‖_F ‖M_B‖_F),  M_B = W_QK^B (Q), (W_QK^B)ᵀ (K), W_OV^B (V),
 * computed through the factors (an_lowrank_collapse_r), then the seeded Gaussian null, z-scores,
 * the edges with z >= threshold and their Talking-Heads components. *r is allocated here (free with
 * an_composition_result_free, also after an error). HS_OK, or HS_EBADINPUT with one logged line when
 * a head's weights are not finite or an SVD fails. */
hs_status an_composition_compute(const rt_model *m, const an_composition_params *p, an_composition_result *r);
void an_composition_result_free(an_composition_result *r);

/* Add "edges", "matrix", "null" and "summary" to root, from a computed result. */
void an_composition_build(const an_composition_result *r, const an_composition_params *p, cJSON *root);

/* The whole pass: envelope, compute, build, an_report_finish to out_path (NULL: stdout). */
hs_status an_composition_run(an_ctx *ctx, const an_composition_params *p, const char *out_path);
#endif
