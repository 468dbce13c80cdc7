/* topk.c — blocked full-vocabulary rankings (see topk.h).
 *
 * Cost model: forming logits is R·V·D multiply-adds and dominates everything else (for GPT-2 small,
 * 144 heads × 100 pairs is 1.1 TFLOP — 6 s at the 2-core peak of this machine). The only exact way
 * to do less is to stop forming a row once its answer is known: "is the target in the top-k" is
 * settled as soon as k tokens beat it (and, for suppression, k tokens lose to it). In trained
 * models most (head, pair) rows are such misses, so an_topk_target_ranks scans the vocabulary in
 * growing blocks and drops finished rows between blocks. Rows whose target does rank high are
 * formed completely — those are the ones the score counts.
 */
#include "topk.h"
#include "runtime/common.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

enum {
    ROW_CHUNK = 1024,   /* rows per sgemm: enough to keep OpenBLAS at full speed, bounds the C buffer */
    BLOCK_FIRST = 1024, /* first vocabulary block (early exit): settles ~98% of rows whose target
                         * sits anywhere but the extreme 1% of a random ranking */
    BLOCK_MAX = 8192,   /* later blocks double up to this: fewer compactions, C ≤ 32 MiB */
};

static inline double dot_d(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Count, in one block of logits c[0..bw) (token ids v0..v0+bw-1), the tokens ranked before target t
 * whose exact logit is lt: above[0] for the descending order, below[0] for the ascending one. */
static void count_block(const float *c, int bw, int v0, int t, double lt, int *above, int *below) {
    float lf = (float)lt;   /* the nearest float: compare in float so the loop vectorises */
    int gt = 0, ls = 0;
    for (int j = 0; j < bw; j++) { gt += c[j] > lf; ls += c[j] < lf; }
    int eq = bw - gt - ls;
    if (t >= v0 && t < v0 + bw) {   /* the target itself is not ranked against itself */
        float ct = c[t - v0];
        if (ct > lf) gt--; else if (ct < lf) ls--; else eq--;
    }
    /* c[j] == lf: if lf is above (below) the exact lt, such a logit is above (below) the target;
     * only an exact tie falls back to the id order */
    if (eq > 0) {
        if ((double)lf > lt) gt += eq;
        else if ((double)lf < lt) ls += eq;
        else
            for (int j = 0; j < bw; j++)
                if (c[j] == lf && v0 + j < t) { gt++; ls++; }
    }
    *above += gt;
    *below += ls;
}

void an_topk_target_ranks(const float *Y, int R, int D, const float *W, int V, const int *tgt, int cap,
                          bool exhaustive, int *up, int *down) {
    HS_ASSERT(R >= 0 && D > 0 && V > 0 && cap >= 1);
    if (R == 0) return;
    int rc = R < ROW_CHUNK ? R : ROW_CHUNK;
    float *yp = hs_xmalloc((size_t)rc * D * sizeof(float));          /* (rc, D) gathered alive rows */
    float *c = hs_xmalloc((size_t)rc * BLOCK_MAX * sizeof(float));   /* (rc, block) logits */
    double *lt = hs_xmalloc((size_t)R * sizeof(double));             /* (R) target logits */
    int *alive = hs_xmalloc((size_t)R * sizeof(int));                /* (na) rows still undecided */
    for (int r = 0; r < R; r++) {
        HS_ASSERT(tgt[r] >= 0 && tgt[r] < V);
        lt[r] = dot_d(Y + (size_t)r * D, W + (size_t)tgt[r] * D, D);
        up[r] = down[r] = 0;
        alive[r] = r;
    }
    /* Vocabulary blocks are the outer loop and the alive rows of ALL chunks the inner one: after the
     * first block only a few rows per chunk survive, and sgemm packs the whole W block for every
     * call — gathering the survivors first lets one packing serve up to ROW_CHUNK of them. */
    int na = R;
    bool dense = true;   /* alive[] is still 0..R-1: read Y in place instead of gathering */
    int bw = exhaustive ? BLOCK_MAX : BLOCK_FIRST;
    for (int v0 = 0; v0 < V && na > 0; v0 += bw, bw = bw * 2 > BLOCK_MAX ? BLOCK_MAX : bw * 2) {
        int w = V - v0 < bw ? V - v0 : bw, keep = 0;
        for (int a0 = 0; a0 < na; a0 += rc) {
            int nc = na - a0 < rc ? na - a0 : rc;
            const float *a = Y + (size_t)a0 * D;
            if (!dense) {
                for (int i = 0; i < nc; i++)
                    memcpy(yp + (size_t)i * D, Y + (size_t)alive[a0 + i] * D, (size_t)D * sizeof(float));
                a = yp;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nc, w, D, 1.0f, a, D, W + (size_t)v0 * D, D,
                        0.0f, c, w);
            for (int i = 0; i < nc; i++) {
                int r = alive[a0 + i];
                count_block(c + (size_t)i * w, w, v0, tgt[r], lt[r], &up[r], &down[r]);
                if (exhaustive || up[r] < cap || down[r] < cap) alive[keep++] = r;   /* keep <= a0 + i: in place */
            }
        }
        if (keep < na) dense = false;
        na = keep;
    }
    free(yp); free(c); free(lt); free(alive);
}

/* (val, id) pairs ordered best-first: a before b when a's logit is higher, or equal with a lower id */
static inline bool better(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

/* Min-heap of the k best so far (root = the worst kept), sifted with `better`. */
static void heap_down(float *hv, int *hi, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && better(hv[m], hi[m], hv[l], hi[l])) m = l;
        if (r < n && better(hv[m], hi[m], hv[r], hi[r])) m = r;
        if (m == i) return;
        float tv = hv[i]; hv[i] = hv[m]; hv[m] = tv;
        int ti = hi[i]; hi[i] = hi[m]; hi[m] = ti;
        i = m;
    }
}

void an_topk_rows(const float *Y, int R, int D, const float *W, int V, int k, int *ids, float *vals) {
    HS_ASSERT(R >= 0 && D > 0 && k >= 1 && k <= V);
    if (R == 0) return;
    int rc = R < ROW_CHUNK ? R : ROW_CHUNK;
    float *c = hs_xmalloc((size_t)rc * BLOCK_MAX * sizeof(float));   /* (rows, block) logits */
    float *hv = hs_xmalloc((size_t)rc * k * sizeof(float));          /* (rows, k) heap values */
    int *hi = hs_xmalloc((size_t)rc * k * sizeof(int));              /* (rows, k) heap ids */
    int *fill = hs_xmalloc((size_t)rc * sizeof(int));                /* (rows) heap sizes */
    for (int r0 = 0; r0 < R; r0 += rc) {
        int n = R - r0 < rc ? R - r0 : rc;
        memset(fill, 0, (size_t)n * sizeof(int));
        for (int v0 = 0; v0 < V; v0 += BLOCK_MAX) {
            int w = V - v0 < BLOCK_MAX ? V - v0 : BLOCK_MAX;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, w, D, 1.0f, Y + (size_t)r0 * D, D,
                        W + (size_t)v0 * D, D, 0.0f, c, w);
            for (int i = 0; i < n; i++) {
                const float *row = c + (size_t)i * w;
                float *v = hv + (size_t)i * k;
                int *id = hi + (size_t)i * k;
                for (int j = 0; j < w; j++) {
                    if (fill[i] < k) {   /* heap not full: append and sift up */
                        int p = fill[i]++;
                        v[p] = row[j]; id[p] = v0 + j;
                        while (p > 0 && better(v[(p - 1) / 2], id[(p - 1) / 2], v[p], id[p])) {
                            int q = (p - 1) / 2;
                            float tv = v[p]; v[p] = v[q]; v[q] = tv;
                            int ti = id[p]; id[p] = id[q]; id[q] = ti;
                            p = q;
                        }
                    } else if (better(row[j], v0 + j, v[0], id[0])) {
                        v[0] = row[j]; id[0] = v0 + j;
                        heap_down(v, id, k, 0);
                    }
                }
            }
        }
        for (int i = 0; i < n; i++) {   /* pop worst-first into the output from the back */
            float *v = hv + (size_t)i * k;
            int *id = hi + (size_t)i * k;
            for (int m = k; m > 0; m--) {
                int r = r0 + i;
                ids[(size_t)r * k + m - 1] = id[0];
                if (vals) vals[(size_t)r * k + m - 1] = v[0];
                v[0] = v[m - 1]; id[0] = id[m - 1];
                heap_down(v, id, m - 1, 0);
            }
        }
    }
    free(c); free(hv); free(hi); free(fill);
}
