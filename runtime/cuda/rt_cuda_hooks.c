/* rt_cuda_hooks.c — hook dispatch of the GPU runtime (see rt_cuda_gpu.h): a hooked device tensor
 * goes to the host, its requests fire (hooks.c matches them), and edits come back.
 *
 * Two paths:
 *   synchronous — the tensor may be edited by some request: copy out, wait, fire, copy back. The
 *     GPU idles while the callbacks run, which is what an edit needs (the next kernel reads it).
 *   pipelined — every request on it is read-only (capture, recorders, analyses): the copy is queued
 *     on the context's copy stream into one of two page-locked slots and the function returns (the
 *     device table first snapshots it on the device, so later kernels may overwrite it while the
 *     PCIe copy runs beside them); neither the host nor the GPU waits for the copy. The hooks fire when their slot is needed again, before any synchronous hook, and at
 *     the end of the forward — in the order they were queued, which is forward.c's order — so the
 *     host's callbacks (f16 encoding, store batches) run while the GPU computes the next layers.
 * opts.hooks_sync forces the synchronous path everywhere (tests compare the two).
 */
#include "rt_cuda_gpu.h"
#include <stdlib.h>
#include <string.h>

#define TRY(expr) do { hs_status st_ = (expr); if (st_ != HS_OK) return st_; } while (0)

/* Host memory for n floats in *buf (capacity *cap, floats): page-locked from the table when it
 * can, else malloc (a pageable copy still works, only slower). Old contents are not kept. */
static float *grow_host(rt_gpu *g, float **buf, size_t *cap, bool *pinned, size_t n) {
    if (n <= *cap) return *buf;
    if (*pinned) g->ops->host_free(g->ctx, *buf); else free(*buf);
    *buf = g->ops->host_alloc(g->ctx, n * sizeof(float));
    *pinned = *buf != NULL;
    if (!*buf) *buf = hs_xmalloc(n * sizeof(float));
    *cap = n;
    return *buf;
}

float *rt_cuda_stage(rt_gpu *g, size_t n) { return grow_host(g, &g->stage, &g->stage_cap, &g->stage_pinned, n); }

hs_status rt_cuda_download(rt_gpu *g, void *dst, const void *src, size_t bytes, const char *where) {
    g->ops->download(g->ctx, dst, src, bytes);
    return g->ops->check(g->ctx, where);
}

/* ---- the hooks of a tensor that is on the host ---- */

static void deliver_rows(const batch_view *bv, rt_hook_point p, int l, float *h, int cols) {
    for (int s = 0; s < bv->n_seqs; s++)
        rt_hook_fire(bv->spec, p, l, -1, s, bv->pos0[s], bv->seqs[s].n, cols, h + (size_t)bv->off[s] * cols);
}

/* Each wanted head of each sequence gathered into a contiguous (T, hd) scratch, fired, scattered back. */
static void deliver_heads(const batch_view *bv, rt_hook_point p, int l, float *hb, int nh, int hd) {
    float *scratch = bv->scratch;
    for (int s = 0; s < bv->n_seqs; s++) {
        int T = bv->seqs[s].n;
        for (int h = 0; h < nh; h++) {
            if (!rt_hook_spec_wants(bv->spec, p, l, h)) continue;
            float *base = hb + (size_t)bv->off[s] * nh * hd + (size_t)h * hd;
            for (int t = 0; t < T; t++) memcpy(scratch + (size_t)t * hd, base + (size_t)t * nh * hd, (size_t)hd * sizeof(float));
            rt_hook_fire(bv->spec, p, l, h, s, bv->pos0[s], T, hd, scratch);
            for (int t = 0; t < T; t++) memcpy(base + (size_t)t * nh * hd, scratch + (size_t)t * hd, (size_t)hd * sizeof(float));
        }
    }
}

static void deliver(const batch_view *bv, const hook_slot *k) {
    switch (k->kind) {
    case HOOK_ROWS: deliver_rows(bv, k->p, k->l, k->buf, k->cols); break;
    case HOOK_HEADS: deliver_heads(bv, k->p, k->l, k->buf, k->nh, k->hd); break;
    case HOOK_ONE: rt_hook_fire(bv->spec, k->p, k->l, k->h, k->s, bv->pos0[k->s], k->rows, k->cols, k->buf); break;
    }
}

/* ---- the pipeline ---- */

/* Wait for slot i's copy and fire its hooks (nothing when it is idle). */
static hs_status slot_fire(rt_gpu *g, const batch_view *bv, int i) {
    hook_slot *k = &g->slots[i];
    if (!k->busy) return HS_OK;
    k->busy = false;
    char where[96];
    rt_hook_format_name(k->p, k->l, where, sizeof where);
    TRY(g->ops->download_wait(g->ctx, i, where));
    deliver(bv, k);
    return HS_OK;
}

hs_status rt_cuda_hooks_flush(rt_gpu *g, const batch_view *bv) {
    for (int j = 0; j < RT_GPU_HOOK_SLOTS; j++) TRY(slot_fire(g, bv, (g->slot_next + j) % RT_GPU_HOOK_SLOTS));
    return HS_OK;
}

void rt_cuda_hooks_reset(rt_gpu *g) {
    for (int i = 0; i < RT_GPU_HOOK_SLOTS; i++) {
        hook_slot *k = &g->slots[i];
        if (k->busy) (void)g->ops->download_wait(g->ctx, i, "a hook copy of an earlier, failed forward");   /* the DMA must be done */
        k->busy = false;
    }
    g->slot_next = 0;
}

void rt_cuda_hooks_free(rt_gpu *g) {
    rt_cuda_hooks_reset(g);
    for (int i = 0; i < RT_GPU_HOOK_SLOTS; i++) {
        hook_slot *k = &g->slots[i];
        if (k->pinned) g->ops->host_free(g->ctx, k->buf); else free(k->buf);
        k->buf = NULL; k->cap = 0; k->pinned = false;
    }
}

/* Queue the copy of dbuf (n floats) into the oldest slot, after firing what that slot held. */
static hs_status queue(rt_gpu *g, const batch_view *bv, const float *dbuf, size_t n, hook_slot what) {
    int i = g->slot_next;
    TRY(slot_fire(g, bv, i));   /* the oldest hooks run now, while the GPU computes on */
    hook_slot *k = &g->slots[i];
    float *buf = grow_host(g, &k->buf, &k->cap, &k->pinned, n);
    k->kind = what.kind; k->p = what.p; k->l = what.l; k->h = what.h; k->s = what.s;
    k->rows = what.rows; k->cols = what.cols; k->nh = what.nh; k->hd = what.hd;
    g->ops->download_async(g->ctx, i, buf, dbuf, n * sizeof(float));
    k->busy = true;
    g->slot_next = (i + 1) % RT_GPU_HOOK_SLOTS;
    return HS_OK;
}

static bool pipelined(const rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, int h) {
    return !g->hooks_sync && !rt_hook_spec_writes(bv->spec, p, l, h);
}

/* ---- the entry points ---- */

hs_status rt_cuda_fire_rows(rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, float *dbuf, int cols) {
    if (!rt_hook_spec_wants(bv->spec, p, l, -1)) return HS_OK;
    size_t n = (size_t)bv->N * cols;
    if (pipelined(g, bv, p, l, -1)) return queue(g, bv, dbuf, n, (hook_slot){ .kind = HOOK_ROWS, .p = p, .l = l, .cols = cols });
    TRY(rt_cuda_hooks_flush(g, bv));                  /* earlier hooks fire first */
    float *h = rt_cuda_stage(g, n);
    char where[96];
    rt_hook_format_name(p, l, where, sizeof where);
    TRY(rt_cuda_download(g, h, dbuf, n * sizeof(float), where));
    deliver_rows(bv, p, l, h, cols);
    if (rt_hook_spec_writes(bv->spec, p, l, -1)) g->ops->upload(g->ctx, dbuf, h, n * sizeof(float));   /* edits go back */
    return HS_OK;
}

hs_status rt_cuda_fire_heads(rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, float *dbuf, int nh, int hd) {
    if (!rt_hook_spec_wants(bv->spec, p, l, -1)) return HS_OK;
    size_t n = (size_t)bv->N * nh * hd;
    if (pipelined(g, bv, p, l, -1))
        return queue(g, bv, dbuf, n, (hook_slot){ .kind = HOOK_HEADS, .p = p, .l = l, .nh = nh, .hd = hd });
    TRY(rt_cuda_hooks_flush(g, bv));
    float *hb = rt_cuda_stage(g, n);
    char where[96];
    rt_hook_format_name(p, l, where, sizeof where);
    TRY(rt_cuda_download(g, hb, dbuf, n * sizeof(float), where));
    deliver_heads(bv, p, l, hb, nh, hd);
    if (rt_hook_spec_writes(bv->spec, p, l, -1)) g->ops->upload(g->ctx, dbuf, hb, n * sizeof(float));
    return HS_OK;
}

hs_status rt_cuda_fire_one(rt_gpu *g, const batch_view *bv, rt_hook_point p, int l, int h, int s, float *dbuf, int rows,
                           int cols) {
    size_t n = (size_t)rows * cols;
    if (pipelined(g, bv, p, l, h))
        return queue(g, bv, dbuf, n, (hook_slot){ .kind = HOOK_ONE, .p = p, .l = l, .h = h, .s = s, .rows = rows, .cols = cols });
    TRY(rt_cuda_hooks_flush(g, bv));
    float *hb = rt_cuda_stage(g, n);
    char where[96];
    rt_hook_format_name(p, l, where, sizeof where);
    TRY(rt_cuda_download(g, hb, dbuf, n * sizeof(float), where));
    rt_hook_fire(bv->spec, p, l, h, s, bv->pos0[s], rows, cols, hb);
    if (rt_hook_spec_writes(bv->spec, p, l, h)) g->ops->upload(g->ctx, dbuf, hb, n * sizeof(float));
    return HS_OK;
}
