/* detectors.c — head detectors (`headscope analyze detectors`).
 *
 * Runs the model on seeded random token sequences repeated twice ([BOS] r r) and scores every
 * head's pattern A (T×T) against TransformerLens's detection patterns:
 *   previous_token  D(i, i−1) = 1
 *   duplicate_token D(i, j) = 1 if tok_j = tok_i, j < i
 *   induction       D(i, j) = 1 if tok_{j−1} = tok_i, 1 ≤ j ≤ i
 * with TL's two measures: "mul" = Σ A·D / Σ A, and "abs" = 1 − round(mean|A − D| · T, 3).
 * Plus two of our own: self = mean_{i≥1} A(i, i); positional = 1 − mean total-variation distance
 * between the rows of two different random sequences (1 = the pattern ignores content), with the
 * relative offset that receives the most attention. When the run has capture statistics, their
 * natural-text aggregates are added to each head's row.
 */
#include "passes.h"
#include "probe/stats.h"
#include "runtime/forward.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void an_detectors_defaults(an_detectors_params *p) { p->n_seqs = 16; p->seq_len = 32; p->seed = 0; p->top = 5; }

enum { D_PREV_MUL, D_PREV_ABS, D_DUP_MUL, D_DUP_ABS, D_IND_MUL, D_IND_ABS, D_SELF, D_POS, D_OFFSET, D_OFFSET_MASS, D_N };
static const char *const k_dname[D_N] = {
    "previous_token_mul", "previous_token_abs", "duplicate_token_mul", "duplicate_token_abs",
    "induction_mul", "induction_abs", "self", "positional", "best_offset", "best_offset_mass",
};

typedef struct {
    const rt_config *c;
    int T, max_off;
    const int *tok;          /* (T) the sequence whose patterns are arriving */
    int n_done;              /* sequences finished before it */
    double *score;           /* (L, H, D_N) sums over sequences */
    float *prev_pattern;     /* (L, H, T, T) pattern of the previous sequence, for "positional" */
    double *off_mass;        /* (L, H, max_off+1) */
} det_acc;

static double round3(double x) { return round(x * 1000.0) / 1000.0; }

static void on_pattern(const rt_hook_event *ev, void *user) {
    det_acc *a = user;
    int T = ev->rows, H = a->c->n_heads;
    size_t lh = (size_t)ev->layer * H + ev->head;
    const int *tok = a->tok;
    const float *A = ev->data;
    double mul[3] = {0}, absd[3] = {0}, sumA = 0, self = 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double v = A[(size_t)i * T + j];
            double dp = (j == i - 1), dd = (j < i && tok[j] == tok[i]), di = (j >= 1 && j <= i && tok[j - 1] == tok[i] && j - 1 < i);
            sumA += v;
            mul[0] += v * dp; mul[1] += v * dd; mul[2] += v * di;
            absd[0] += fabs(v - dp); absd[1] += fabs(v - dd); absd[2] += fabs(v - di);
        }
    for (int i = 1; i < T; i++) self += A[(size_t)i * T + i];
    double *s = a->score + lh * D_N;
    for (int k = 0; k < 3; k++) {
        s[2 * k] += mul[k] / sumA;
        s[2 * k + 1] += 1.0 - round3(absd[k] / ((double)T * T) * T);
    }
    s[D_SELF] += self / (T - 1);
    for (int off = 0; off <= a->max_off; off++) {
        double m = 0; int n = 0;
        for (int i = 1 > off ? 1 : off; i < T; i++) { m += A[(size_t)i * T + i - off]; n++; }
        if (n) a->off_mass[lh * (a->max_off + 1) + off] += m / n;
    }
    float *prev = a->prev_pattern + lh * T * T;
    if (a->n_done > 0) {   /* content independence: rows of this and the previous random sequence */
        double tv = 0;
        for (int i = 1; i < T; i++) {
            double d = 0;
            for (int j = 0; j <= i; j++) d += fabs((double)A[(size_t)i * T + j] - prev[(size_t)i * T + j]);
            tv += 0.5 * d;
        }
        s[D_POS] += 1.0 - tv / (T - 1);
    }
    memcpy(prev, A, (size_t)T * T * sizeof(float));
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int **an_detectors_sequences(const an_detectors_params *p, const rt_config *c, int *T_out) {
    int nb = c->bos_id >= 0 ? 1 : 0, S = p->seq_len, T = nb + 2 * S;
    int **ids = hs_xcalloc((size_t)p->n_seqs, sizeof(int *));
    uint64_t rng = p->seed ^ 0x68656164736370ull;   /* "headscp": seed 0 is still a good stream */
    for (int s = 0; s < p->n_seqs; s++) {
        ids[s] = hs_xmalloc((size_t)T * sizeof(int));
        if (nb) ids[s][0] = c->bos_id;
        for (int i = 0; i < S; i++) {
            int t;
            do t = (int)(splitmix(&rng) % (uint64_t)c->vocab_size); while (t == c->bos_id || t == c->eos_id);
            ids[s][nb + i] = ids[s][nb + S + i] = t;
        }
    }
    *T_out = T;
    return ids;
}

hs_status an_detectors_run(an_ctx *ctx, const an_detectors_params *p, const char *out_path) {
    const rt_config *c = &ctx->m->cfg;
    int L = c->n_layers, H = c->n_heads, S = p->seq_len, nb = c->bos_id >= 0 ? 1 : 0, T = nb + 2 * S;
    if (p->n_seqs < 2 || S < 2 || T > c->n_ctx) {
        hs_log_error("analyze", "detectors need --seqs >= 2 and 2 <= --seq-len with 2*seq_len+1 <= n_ctx (%d)", c->n_ctx);
        return HS_EBADINPUT;
    }
    size_t LH = (size_t)L * H;
    int **ids = an_detectors_sequences(p, c, &T);
    det_acc a = { c, T, 8, NULL, 0, NULL, NULL, NULL };
    a.score = hs_xcalloc(LH * D_N, sizeof(double));
    a.prev_pattern = hs_xmalloc(LH * T * T * sizeof(float));
    a.off_mass = hs_xcalloc(LH * (a.max_off + 1), sizeof(double));
    rt_hook_req req = { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, on_pattern, &a, false };
    rt_hook_spec spec = { &req, 1 };
    rt_forward *f = rt_forward_init(ctx->m);
    hs_status rc = HS_OK;
    for (int s = 0; s < p->n_seqs && rc == HS_OK; s++) {   /* one at a time: "positional" compares consecutive ones */
        rt_seq sq = { ids[s], T, NULL };
        a.tok = ids[s];
        a.n_done = s;
        rc = rt_forward_run(f, &sq, 1, &spec, NULL);
    }
    rt_forward_free(f);
    store_stat *st = NULL; int nst = 0;
    if (rc == HS_OK) rc = store_stats_get(ctx->db, ctx->run.id, -1, NULL, &st, &nst);
    if (rc != HS_OK) goto done;

    cJSON *params = cJSON_CreateObject();
    cJSON_AddNumberToObject(params, "n_seqs", p->n_seqs); cJSON_AddNumberToObject(params, "seq_len", S);
    cJSON_AddNumberToObject(params, "seed", (double)p->seed); cJSON_AddBoolToObject(params, "bos_prefix", nb);
    cJSON_AddNumberToObject(params, "top", p->top);
    cJSON *r = an_report_begin(ctx, "detectors", params);
    cJSON_AddStringToObject(r, "method",
        "Seeded random token sequences repeated twice ([BOS] r r). previous/duplicate/induction use TransformerLens's detection "
        "patterns and its 'mul' (sum(A*D)/sum(A)) and 'abs' (1 - round(mean|A-D|*T, 3)) measures, averaged over sequences. "
        "self = mean attention to the query's own position (queries >= 1). positional = 1 - mean total-variation distance between "
        "the pattern rows of consecutive random sequences (1 = content-independent); best_offset = the relative offset k in 0..8 "
        "with the most attention A(i, i-k). natural_* = the run's capture statistics on its own prompts, when present.");
    cJSON *heads = cJSON_AddArrayToObject(r, "heads");
    double *col[D_N];
    for (int d = 0; d < D_N; d++) col[d] = hs_xmalloc(LH * sizeof(double));
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            size_t lh = (size_t)l * H + h;
            double *s = a.score + lh * D_N;
            for (int d = 0; d < D_POS; d++) col[d][lh] = s[d] / p->n_seqs;
            col[D_POS][lh] = s[D_POS] / (p->n_seqs - 1);
            int bo = 0;
            for (int off = 1; off <= a.max_off; off++) if (a.off_mass[lh * (a.max_off + 1) + off] > a.off_mass[lh * (a.max_off + 1) + bo]) bo = off;
            col[D_OFFSET][lh] = bo;
            col[D_OFFSET_MASS][lh] = a.off_mass[lh * (a.max_off + 1) + bo] / p->n_seqs;
            cJSON *m = an_report_head(heads, l, h);
            for (int d = 0; d < D_N; d++) cJSON_AddNumberToObject(m, k_dname[d], col[d][lh]);
            for (int i = 0; i < nst; i++)
                if (st[i].layer == l && st[i].head == h) {
                    char key[48];
                    snprintf(key, sizeof key, "natural_%s", st[i].metric);
                    cJSON_AddNumberToObject(m, key, st[i].value);
                }
        }
    cJSON *rk = cJSON_AddObjectToObject(r, "rankings");
    cJSON_AddItemToObject(rk, "previous_token", an_rank(col[D_PREV_MUL], L, H, L * H));
    cJSON_AddItemToObject(rk, "duplicate_token", an_rank(col[D_DUP_MUL], L, H, L * H));
    cJSON_AddItemToObject(rk, "induction", an_rank(col[D_IND_MUL], L, H, L * H));
    cJSON_AddItemToObject(rk, "self", an_rank(col[D_SELF], L, H, L * H));
    cJSON_AddItemToObject(rk, "positional", an_rank(col[D_POS], L, H, L * H));
    cJSON *sum = cJSON_AddObjectToObject(r, "summary");
    cJSON_AddItemToObject(sum, "previous_token", an_rank(col[D_PREV_MUL], L, H, p->top));
    cJSON_AddItemToObject(sum, "duplicate_token", an_rank(col[D_DUP_MUL], L, H, p->top));
    cJSON_AddItemToObject(sum, "induction", an_rank(col[D_IND_MUL], L, H, p->top));
    cJSON_AddItemToObject(sum, "self", an_rank(col[D_SELF], L, H, p->top));
    cJSON_AddItemToObject(sum, "positional", an_rank(col[D_POS], L, H, p->top));
    for (int d = 0; d < D_N; d++) free(col[d]);
    rc = an_report_finish(ctx, r, out_path);
done:
    free(st);
    for (int s = 0; s < p->n_seqs; s++) free(ids[s]);
    free(ids); free(a.score); free(a.prev_pattern); free(a.off_mass);
    return rc;
}
