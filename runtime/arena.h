/* arena.h — bump allocator: one arena per lifetime (weights, forward activations, scratch).
 *
 * Why: the conventions forbid malloc/free in per-token or per-head loops. A forward pass sizes
 * its arena once, then every buffer is a pointer bump; hs_arena_reset() frees them all at once.
 * Memory comes from blocks of at least `block` bytes; allocations are 64-byte aligned (AVX-512 / cache line).
 */
#ifndef HS_ARENA_H
#define HS_ARENA_H
#include <stddef.h>

typedef struct hs_arena_block hs_arena_block;
typedef struct {
    hs_arena_block *head;   /* newest block first; owned */
    size_t block;           /* minimum block size in bytes */
    size_t used_total;      /* bytes handed out since the last reset (for memory reports) */
    size_t peak_total;
} hs_arena;

/* Initialise an empty arena; no memory is taken until the first alloc. */
void hs_arena_init(hs_arena *a, size_t block);
/* Uninitialised, 64-byte aligned memory valid until reset/free. Aborts on out-of-memory. */
void *hs_arena_alloc(hs_arena *a, size_t bytes);
/* Same, zero-filled; n*size is overflow-checked (aborts: sizes come from validated configs). */
void *hs_arena_calloc(hs_arena *a, size_t n, size_t size);
/* Forget every allocation but keep the largest block for reuse. */
void hs_arena_reset(hs_arena *a);
/* Release all memory. The arena may be re-initialised afterwards. */
void hs_arena_free(hs_arena *a);
#endif
