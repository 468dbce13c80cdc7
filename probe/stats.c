/* stats.c — online per-head statistics (see stats.h). */
#include "stats.h"
#include "runtime/fastmath.h"
#include <math.h>
#include <string.h>

static const char *const k_names[PROBE_M_N] = {
    "entropy", "max_weight", "bos_mass", "self", "prev_token", "distance", "duplicate", "induction",
};

const char *probe_metric_name(probe_metric m) { return (unsigned)m < PROBE_M_N ? k_names[m] : "?"; }

/* Built for AVX2 too (chosen at load time by the CPU): 8-wide lanes halve the cost of this
 * O(T²)-per-head loop where available, and the baseline build still runs everywhere. The lane
 * order is fixed in the source, so both versions give the same bits (no FMA contraction in C11). */
__attribute__((target_clones("avx2", "default")))
void probe_head_stats(const float *P, int T, int Tk, int pos0, const int *ids, bool has_repeat, probe_head_sums *acc) {
    for (int r = 0; r < T; r++) {
        int i = pos0 + r;
        if (i == 0) continue;                       /* the BOS query attends only to itself */
        const float *p = P + (size_t)r * Tk;
        int last = i < Tk - 1 ? i : Tk - 1;
        /* Two loops: the first has no data-dependent branches, so with 8 independent lanes (a float
         * reduction is not reordered without -ffast-math) and hs_logf_pos (fastmath.h, ≤ 2 ulp of
         * logf) it vectorises; this is the O(T²)-per-head part of capture. The token comparisons
         * run only for prompts with a repeated token. */
        float ent8[8] = { 0 }, mx8[8] = { 0 }, dist8[8] = { 0 };
        int n = last + 1, j = 0;
        for (; j + 8 <= n; j += 8)
            for (int k = 0; k < 8; k++) {
                float v = p[j + k];
                ent8[k] -= v * hs_logf_pos(v > 0 ? v : 1.0f);
                mx8[k] = v > mx8[k] ? v : mx8[k];
                dist8[k] += v * (float)(i - j - k);
            }
        for (; j < n; j++) {
            float v = p[j];
            ent8[0] -= v * hs_logf_pos(v > 0 ? v : 1.0f);
            mx8[0] = v > mx8[0] ? v : mx8[0];
            dist8[0] += v * (float)(i - j);
        }
        float ent = 0, mx = 0, dist = 0;
        for (int k = 0; k < 8; k++) { ent += ent8[k]; dist += dist8[k]; mx = mx8[k] > mx ? mx8[k] : mx; }
        double dup = 0, ind = 0;
        if (has_repeat) {   /* branch-free selects in 8 lanes, so this loop vectorises too */
            int ti = ids[i], end = i - 1 < last ? i - 1 : last;   /* keys 0..end, all before the query */
            float dup8[8] = { 0 }, ind8[8] = { 0 };
            float d0 = ids[0] == ti ? p[0] : 0.0f;
            int k = 1;
            for (; k + 8 <= end + 1; k += 8)
                for (int q = 0; q < 8; q++) {
                    float v = p[k + q];
                    dup8[q] += ids[k + q] == ti ? v : 0.0f;
                    ind8[q] += ids[k + q - 1] == ti ? v : 0.0f;
                }
            for (; k <= end; k++) {
                dup8[0] += ids[k] == ti ? p[k] : 0.0f;
                ind8[0] += ids[k - 1] == ti ? p[k] : 0.0f;
            }
            dup = d0;
            for (int q = 0; q < 8; q++) { dup += dup8[q]; ind += ind8[q]; }
            if (ids[i - 1] == ti && i <= last) ind += p[i];   /* key i (the query itself): tok_{i−1} = tok_i */
        }
        acc->sum[PROBE_M_ENTROPY] += ent;
        acc->sum[PROBE_M_MAX_WEIGHT] += mx;
        acc->sum[PROBE_M_BOS_MASS] += p[0];
        acc->sum[PROBE_M_SELF] += p[i];
        acc->sum[PROBE_M_PREV_TOKEN] += p[i - 1];
        acc->sum[PROBE_M_DISTANCE] += dist;
        acc->rows += 1;
        if (has_repeat) {
            acc->sum[PROBE_M_DUPLICATE] += dup;
            acc->sum[PROBE_M_INDUCTION] += ind;
            acc->rep_rows += 1;
        }
    }
}

double probe_sums_mean(const probe_head_sums *acc, probe_metric m) {
    double n = (m == PROBE_M_DUPLICATE || m == PROBE_M_INDUCTION) ? acc->rep_rows : acc->rows;
    return n > 0 ? acc->sum[m] / n : NAN;
}

void probe_sums_add(probe_head_sums *a, const probe_head_sums *b) {
    for (int m = 0; m < PROBE_M_N; m++) a->sum[m] += b->sum[m];
    a->rows += b->rows;
    a->rep_rows += b->rep_rows;
}

bool probe_has_repeat(const int *ids, int n, uint8_t *scratch) {
    bool rep = false;
    int i = 0;
    for (; i < n && !rep; i++) {
        unsigned id = (unsigned)ids[i];
        if (scratch[id >> 3] & (1u << (id & 7))) rep = true;
        scratch[id >> 3] |= (uint8_t)(1u << (id & 7));
    }
    for (int k = 0; k < i; k++) scratch[(unsigned)ids[k] >> 3] = 0;   /* leave it zeroed */
    return rep;
}
