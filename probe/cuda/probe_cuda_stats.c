/* probe_cuda_stats.c — host side of the on-GPU statistics (see probe_cuda_stats.h), and the CPU
 * reference of their kernel. Plain C, built everywhere; the kernel itself needs nvcc.
 */
#include "probe_cuda_stats.h"
#include "runtime/half.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float bf16_round(float x) { uint16_t b = rt_f32_to_bf16(x); uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }

struct probe_cuda_stats {
    rt_gpu *g;
    int L, H, max_seqs, max_tokens;
    int *ids;               /* device (max_seqs, max_tokens) */
    double *sums;           /* device (max_seqs, L, H, PROBE_M_N) */
    int n_seqs;             /* current forward */
    int *n_ids;             /* host (max_seqs) */
    bool *rep;              /* host (max_seqs) */
    double *rows;           /* host (max_seqs, L): counted query rows */
    bool overrun;           /* an event needed more ids than were given */
    /* device events of the current layer not yet launched (one launch per layer, at its last
     * sequence): copies of the events and their per-sequence arguments, (max_seqs) each */
    rt_gpu_attn_event *pend;
    const int **pend_ids;
    bool *pend_rep;
    double **pend_sums;
    int n_pend;
};

hs_status probe_cuda_stats_init(rt_gpu *g, int n_layers, int n_heads, int max_seqs, int max_tokens, probe_cuda_stats **out) {
    *out = NULL;
    HS_ASSERT(n_layers > 0 && n_heads > 0 && max_seqs > 0 && max_tokens > 0);
    probe_cuda_stats *s = hs_xcalloc(1, sizeof *s);
    s->g = g; s->L = n_layers; s->H = n_heads; s->max_seqs = max_seqs; s->max_tokens = max_tokens;
    s->ids = rt_gpu_mem_alloc(g, (size_t)max_seqs * max_tokens * sizeof(int), "the statistics' token ids");
    s->sums = s->ids ? rt_gpu_mem_alloc(g, (size_t)max_seqs * n_layers * n_heads * PROBE_M_N * sizeof(double),
                                        "the statistics' sums") : NULL;
    if (!s->sums) { probe_cuda_stats_free(s); return HS_EIO; }
    s->n_ids = hs_xcalloc((size_t)max_seqs, sizeof *s->n_ids);
    s->rep = hs_xcalloc((size_t)max_seqs, sizeof *s->rep);
    s->rows = hs_xcalloc((size_t)max_seqs * n_layers, sizeof *s->rows);
    s->pend = hs_xcalloc((size_t)max_seqs, sizeof *s->pend);
    s->pend_ids = hs_xcalloc((size_t)max_seqs, sizeof *s->pend_ids);
    s->pend_rep = hs_xcalloc((size_t)max_seqs, sizeof *s->pend_rep);
    s->pend_sums = hs_xcalloc((size_t)max_seqs, sizeof *s->pend_sums);
    *out = s;
    return HS_OK;
}

void probe_cuda_stats_free(probe_cuda_stats *s) {
    if (!s) return;
    rt_gpu_mem_free(s->g, s->ids);
    rt_gpu_mem_free(s->g, s->sums);
    free(s->n_ids); free(s->rep); free(s->rows);
    free(s->pend); free(s->pend_ids); free(s->pend_rep); free(s->pend_sums);
    free(s);
}

hs_status probe_cuda_stats_begin(probe_cuda_stats *s, int n_seqs, const int *const *ids, const int *n_ids,
                                 const bool *has_repeat) {
    if (n_seqs < 1 || n_seqs > s->max_seqs) {
        hs_log_error("stats", "a batch of %d sequences exceeds the GPU statistics' %d — create them with a larger max_seqs",
                     n_seqs, s->max_seqs);
        return HS_EBADINPUT;
    }
    for (int i = 0; i < n_seqs; i++)
        if (n_ids[i] < 1 || n_ids[i] > s->max_tokens) {
            hs_log_error("stats", "sequence %d has %d ids, outside the GPU statistics' 1..%d — create them with a larger max_tokens",
                         i, n_ids[i], s->max_tokens);
            return HS_EBADINPUT;
        }
    s->n_seqs = n_seqs;
    s->overrun = false;
    s->n_pend = 0;
    for (int i = 0; i < n_seqs; i++) {
        rt_gpu_mem_upload(s->g, s->ids + (size_t)i * s->max_tokens, ids[i], (size_t)n_ids[i] * sizeof(int));
        s->n_ids[i] = n_ids[i];
        s->rep[i] = has_repeat[i];
    }
    rt_gpu_mem_zero(s->g, s->sums, (size_t)n_seqs * s->L * s->H * PROBE_M_N * sizeof(double));
    memset(s->rows, 0, (size_t)s->max_seqs * s->L * sizeof *s->rows);
    rt_gpu_set_attn_hook(s->g, probe_cuda_stats_on_attn, s);
    return HS_OK;
}

#ifdef HS_HAVE_CUDA
static void flush_pending(probe_cuda_stats *s) {
    const char *err = probe_cuda_stats_launch_batch(s->pend, s->n_pend, s->pend_ids, s->pend_rep, s->pend_sums);
    if (err) rt_gpu_note_error(s->g, "head statistics kernel", err);
    s->n_pend = 0;
}
#endif

void probe_cuda_stats_on_attn(const rt_gpu_attn_event *ev, void *user) {
    probe_cuda_stats *s = user;
    if (ev->seq >= s->n_seqs || ev->layer >= s->L || ev->n_heads != s->H) return;
    if (ev->pos0 + ev->T > s->n_ids[ev->seq]) { s->overrun = true; return; }
    const int *ids = s->ids + (size_t)ev->seq * s->max_tokens;
    double *sums = s->sums + ((size_t)ev->seq * s->L + ev->layer) * s->H * PROBE_M_N;
    s->rows[(size_t)ev->seq * s->L + ev->layer] += ev->T - (ev->pos0 == 0 ? 1 : 0);   /* the BOS query is skipped */
    if (ev->emulated) { probe_cuda_stats_ref(ev, ids, s->rep[ev->seq], sums); return; }
#ifdef HS_HAVE_CUDA
    /* queue the layer's events and launch them together at its last sequence (the event's
     * pointers stay valid until then: runtime/gpu.h) */
    if (s->n_pend > 0 && s->pend[0].layer != ev->layer) s->n_pend = 0;   /* from a forward that stopped part-way: dropped */
    s->pend[s->n_pend] = *ev;
    s->pend_ids[s->n_pend] = ids;
    s->pend_rep[s->n_pend] = s->rep[ev->seq];
    s->pend_sums[s->n_pend] = sums;
    s->n_pend++;
    if (ev->seq + 1 >= ev->n_seqs || s->n_pend >= s->max_seqs) flush_pending(s);
#endif
}

hs_status probe_cuda_stats_end(probe_cuda_stats *s, probe_head_sums *out) {
    rt_gpu_set_attn_hook(s->g, NULL, NULL);
    s->n_pend = 0;   /* left only by a forward that failed part-way through a layer: its buffers are gone */
    size_t n = (size_t)s->n_seqs * s->L * s->H;
    double *h = hs_xmalloc(n * PROBE_M_N * sizeof(double));
    hs_status st = rt_gpu_mem_download(s->g, h, s->sums, n * PROBE_M_N * sizeof(double));
    if (st == HS_OK && s->overrun) {
        hs_log_error("stats", "a sequence of the forward reached past the ids given to probe_cuda_stats_begin — "
                     "pass every position's id from 0");
        st = HS_EIO;
    }
    if (st == HS_OK)
        for (int q = 0; q < s->n_seqs; q++)
            for (int l = 0; l < s->L; l++)
                for (int hh = 0; hh < s->H; hh++) {
                    size_t i = ((size_t)q * s->L + l) * s->H + hh;
                    probe_head_sums *o = &out[i];
                    memset(o, 0, sizeof *o);
                    for (int m = 0; m < PROBE_M_N; m++) o->sum[m] = h[i * PROBE_M_N + m];
                    o->rows = s->rows[(size_t)q * s->L + l];
                    o->rep_rows = s->rep[q] ? o->rows : 0;
                    if (!s->rep[q]) o->sum[PROBE_M_DUPLICATE] = o->sum[PROBE_M_INDUCTION] = 0;
                }
    free(h);
    return st;
}

/* CPU reference: for each head and each query row (the BOS query skipped), p_ij = exp(s_ij − lse_i)
 * over the visible keys, with s_ij formed as the attention kernel forms it (fp32 multiply-adds over
 * d in order, then × scale), folded exactly as probe_head_stats folds a stored pattern row.
 * ev->bf16 (the tensor-core attention): q and k rounded to bf16 first, and the entropy term is
 * p·(lse − s), as that kernel folds it. */
void probe_cuda_stats_ref(const rt_gpu_attn_event *ev, const int *ids, bool has_repeat, double *sums) {
    int H = ev->n_heads, HD = ev->d_head, grp = ev->n_heads / ev->n_kv_heads;
    for (int h = 0; h < H; h++) {
        const float *kb = ev->k + (size_t)(h / grp) * HD;
        for (int r = 0; r < ev->T; r++) {
            int i = ev->pos0 + r;
            if (i == 0) continue;
            const float *q = ev->q + (size_t)r * ev->ldq + (size_t)h * HD;
            float lse = ev->lse[(size_t)r * ev->ldlse + h];
            int a = ev->window > 0 && i - ev->window + 1 > 0 ? i - ev->window + 1 : 0;
            float ent = 0, mx = 0, dist = 0, bos = 0, self = 0, prev = 0;
            double dup = 0, ind = 0;
            for (int j = a; j <= i; j++) {
                const float *k = kb + (size_t)j * ev->ldk;
                float sdot = 0;
                if (ev->bf16)
                    for (int d = 0; d < HD; d++) sdot = fmaf(bf16_round(q[d]), bf16_round(k[d]), sdot);
                else
                    for (int d = 0; d < HD; d++) sdot = fmaf(q[d], k[d], sdot);
                float p = expf(sdot * ev->scale - lse);
                if (ev->bf16) ent += p * (lse - sdot * ev->scale);
                else ent -= p > 0 ? p * logf(p) : 0.0f;
                mx = p > mx ? p : mx;
                dist += p * (float)(i - j);
                if (j == 0) bos = p;
                if (j == i) self = p;
                if (j == i - 1) prev = p;
                if (has_repeat) {
                    if (j < i && ids[j] == ids[i]) dup += p;
                    if (j >= 1 && ids[j - 1] == ids[i]) ind += p;   /* j = i included: tok_{i−1} = tok_i */
                }
            }
            double *o = sums + (size_t)h * PROBE_M_N;
            o[PROBE_M_ENTROPY] += ent;
            o[PROBE_M_MAX_WEIGHT] += mx;
            o[PROBE_M_BOS_MASS] += bos;
            o[PROBE_M_SELF] += self;
            o[PROBE_M_PREV_TOKEN] += prev;
            o[PROBE_M_DISTANCE] += dist;
            if (has_repeat) { o[PROBE_M_DUPLICATE] += dup; o[PROBE_M_INDUCTION] += ind; }
        }
    }
}
