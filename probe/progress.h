/* progress.h — progress on stderr for long work: a redrawn bar with rate and ETA when stderr is a
 * terminal, plain "module: ..." lines (at most one every few seconds) otherwise. */
#ifndef HS_PROBE_PROGRESS_H
#define HS_PROBE_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *module;   /* prefix, e.g. "capture" */
    const char *unit;     /* what `done` counts, e.g. "prompts" */
    int64_t total;
    double t0, last_print;
    bool tty, quiet;
} probe_progress;

void probe_progress_begin(probe_progress *p, const char *module, const char *unit, int64_t total, bool quiet);
/* done items of total, tokens processed, bytes written so far (0 to omit). Rate-limited. */
void probe_progress_update(probe_progress *p, int64_t done, int64_t tokens, uint64_t bytes);
/* Final line (always printed unless quiet). */
void probe_progress_end(probe_progress *p, int64_t done, int64_t tokens, uint64_t bytes);
#endif
