/* stats.c — online per-head statistics (see stats.h). */
#include "stats.h"
#include <math.h>
#include <string.h>

static const char *const k_names[PROBE_M_N] = {
    "entropy", "max_weight", "bos_mass", "self", "prev_token", "distance", "duplicate", "induction",
};

const char *probe_metric_name(probe_metric m) { return (unsigned)m < PROBE_M_N ? k_names[m] : "?"; }

void probe_head_stats(const float *P, int T, int Tk, int pos0, const int *ids, bool has_repeat, probe_head_sums *acc) {
    for (int r = 0; r < T; r++) {
        int i = pos0 + r;
        if (i == 0) continue;                       /* the BOS query attends only to itself */
        const float *p = P + (size_t)r * Tk;
        int last = i < Tk - 1 ? i : Tk - 1;
        /* Two loops: the first has no data-dependent branches besides p > 0, so it vectorises;
         * the token comparisons run only for prompts with a repeated token. logf: this is the
         * O(T^2)-per-head part of capture, and float log is accurate to about 1 ulp. */
        float ent = 0, mx = 0, dist = 0;
        for (int j = 0; j <= last; j++) {
            float v = p[j];
            ent -= v > 0 ? v * logf(v) : 0.0f;
            mx = v > mx ? v : mx;
            dist += v * (float)(i - j);
        }
        double dup = 0, ind = 0;
        if (has_repeat) {
            int ti = ids[i];
            for (int j = 0; j < i && j <= last; j++) {
                if (ids[j] == ti) dup += p[j];
                if (j >= 1 && ids[j - 1] == ti) ind += p[j];
            }
            if (ids[i - 1] == ti) ind += p[i];   /* j = i: tok_{i−1} = tok_i */
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
