/* intervene.c — interventions and the activation cache (see intervene.h). */
#include "intervene.h"
#include <stdlib.h>
#include <string.h>

struct rt_cache_entry {
    char *name;
    int head, seq, rows, cols;
    float *data;   /* (rows, cols) owned */
};

void rt_iv_zero(const rt_hook_event *ev, void *user) {
    (void)user;
    memset(ev->data + (size_t)ev->pos_begin * ev->cols, 0,
           (size_t)(ev->pos_end - ev->pos_begin) * ev->cols * sizeof(float));
}

void rt_iv_mean(const rt_hook_event *ev, void *user) {
    const rt_iv_mean_arg *a = user;
    for (int r = ev->pos_begin; r < ev->pos_end; r++)
        memcpy(ev->data + (size_t)r * ev->cols, a->per_row ? a->mean + (size_t)r * ev->cols : a->mean,
               (size_t)ev->cols * sizeof(float));
}

void rt_iv_scale(const rt_hook_event *ev, void *user) {
    float k = *(const float *)user;
    for (size_t i = (size_t)ev->pos_begin * ev->cols; i < (size_t)ev->pos_end * ev->cols; i++) ev->data[i] *= k;
}

void rt_iv_pattern_row(const rt_hook_event *ev, void *user) {
    const rt_iv_row_arg *a = user;
    if (a->row < ev->pos_begin || a->row >= ev->pos_end || a->n != ev->cols) return;
    memcpy(ev->data + (size_t)a->row * ev->cols, a->values, (size_t)a->n * sizeof(float));
}

void rt_cache_init(rt_cache *c) { memset(c, 0, sizeof *c); }

void rt_cache_free(rt_cache *c) {
    for (int i = 0; i < c->n; i++) { free(c->entries[i].name); free(c->entries[i].data); }
    free(c->entries);
    memset(c, 0, sizeof *c);
}

static rt_cache_entry *find(const rt_cache *c, const char *name, int head, int seq) {
    for (int i = 0; i < c->n; i++) {
        rt_cache_entry *e = &c->entries[i];
        if (e->head == head && e->seq == seq && strcmp(e->name, name) == 0) return e;
    }
    return NULL;
}

void rt_cache_record(const rt_hook_event *ev, void *user) {
    rt_cache *c = user;
    rt_cache_entry *e = find(c, ev->name, ev->head, ev->seq);
    size_t bytes = (size_t)ev->rows * ev->cols * sizeof(float);
    if (!e) {
        if (c->n == c->cap) { c->cap = c->cap ? c->cap * 2 : 64; c->entries = hs_xrealloc(c->entries, (size_t)c->cap * sizeof *e); }
        e = &c->entries[c->n++];
        e->name = hs_xstrdup(ev->name); e->head = ev->head; e->seq = ev->seq; e->data = NULL;
    }
    e->data = hs_xrealloc(e->data, bytes);
    e->rows = ev->rows; e->cols = ev->cols;
    memcpy(e->data, ev->data, bytes);
}

const float *rt_cache_get(const rt_cache *c, const char *name, int head, int seq, int *rows, int *cols) {
    rt_cache_entry *e = find(c, name, head, seq);
    if (!e) return NULL;
    if (rows) *rows = e->rows;
    if (cols) *cols = e->cols;
    return e->data;
}

void rt_iv_patch(const rt_hook_event *ev, void *user) {
    const rt_cache *c = user;
    int rows, cols;
    const float *src = rt_cache_get(c, ev->name, ev->head, ev->seq, &rows, &cols);
    if (!src || cols != ev->cols || rows < ev->pos_end) {
        hs_log_error("intervene", "no cached %s (head %d, seq %d) of matching shape to patch from — record it first",
                     ev->name, ev->head, ev->seq);
        return;
    }
    memcpy(ev->data + (size_t)ev->pos_begin * ev->cols, src + (size_t)ev->pos_begin * cols,
           (size_t)(ev->pos_end - ev->pos_begin) * cols * sizeof(float));
}
