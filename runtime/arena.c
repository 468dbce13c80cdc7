/* arena.c — bump allocator (see arena.h). */
#include "arena.h"
#include "common.h"
#include <stdlib.h>
#include <string.h>

struct hs_arena_block {
    hs_arena_block *next;
    size_t cap, used;
    unsigned char *mem;  /* 64-byte aligned */
};

void hs_arena_init(hs_arena *a, size_t block) {
    memset(a, 0, sizeof *a);
    a->block = block ? block : (1u << 20);
}

void *hs_arena_alloc(hs_arena *a, size_t bytes) {
    size_t need = (bytes + 63) & ~(size_t)63;
    HS_ASSERT(need >= bytes);
    hs_arena_block *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > a->block ? need : a->block;
        b = hs_xmalloc(sizeof *b);
        if (posix_memalign((void **)&b->mem, 64, cap ? cap : 64) != 0) hs_abort(__FILE__, __LINE__, "out of memory");
        b->cap = cap; b->used = 0; b->next = a->head; a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += need;
    a->used_total += need;
    if (a->used_total > a->peak_total) a->peak_total = a->used_total;
    return p;
}

void *hs_arena_calloc(hs_arena *a, size_t n, size_t size) {
    size_t bytes;
    HS_ASSERT(hs_mul_ok(n, size, &bytes));
    void *p = hs_arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void hs_arena_reset(hs_arena *a) {
    /* Keep the biggest block so a repeated forward of the same size never allocates again. */
    hs_arena_block *keep = NULL;
    for (hs_arena_block *b = a->head; b; b = b->next)
        if (!keep || b->cap > keep->cap) keep = b;
    for (hs_arena_block *b = a->head, *n; b; b = n) {
        n = b->next;
        if (b != keep) { free(b->mem); free(b); }
    }
    if (keep) { keep->used = 0; keep->next = NULL; }
    a->head = keep;
    a->used_total = 0;
}

void hs_arena_free(hs_arena *a) {
    for (hs_arena_block *b = a->head, *n; b; b = n) { n = b->next; free(b->mem); free(b); }
    a->head = NULL; a->used_total = 0;
}
