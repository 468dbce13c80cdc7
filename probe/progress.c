/* progress.c — stderr progress reporting (see progress.h). */
#include "progress.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

void probe_progress_begin(probe_progress *p, const char *module, const char *unit, int64_t total, bool quiet) {
    p->module = module; p->unit = unit; p->total = total; p->quiet = quiet;
    p->t0 = p->last_print = now();
    p->tty = isatty(2);
}

static void eta_str(double s, char *buf, size_t n) {
    if (s < 0 || s > 1e7) snprintf(buf, n, "--:--");
    else if (s >= 3600) snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else snprintf(buf, n, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void draw(probe_progress *p, int64_t done, int64_t tokens, uint64_t bytes, bool final) {
    double el = now() - p->t0, tps = el > 0 ? tokens / el : 0;
    double eta = done > 0 && p->total > done ? el * (double)(p->total - done) / (double)done : 0;
    char e[32];
    eta_str(eta, e, sizeof e);
    if (p->tty) {
        int w = 30, fill = p->total > 0 ? (int)(w * (double)done / (double)p->total) : 0;
        char bar[64];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = '\0';
        fprintf(stderr, "\r%s: [%s] %lld/%lld %s  %.0f tok/s  %.1f MB  ETA %s%s", p->module, bar, (long long)done,
                (long long)p->total, p->unit, tps, bytes / 1e6, final ? "00:00" : e, final ? "\n" : "  ");
    } else {
        fprintf(stderr, "%s: %lld/%lld %s, %.0f tok/s, %.1f MB written, %s %s\n", p->module, (long long)done,
                (long long)p->total, p->unit, tps, bytes / 1e6, final ? "done in" : "ETA", final ? (eta_str(el, e, sizeof e), e) : e);
    }
    fflush(stderr);
}

void probe_progress_update(probe_progress *p, int64_t done, int64_t tokens, uint64_t bytes) {
    if (p->quiet) return;
    double t = now();
    if (t - p->last_print < (p->tty ? 0.1 : 2.0)) return;
    p->last_print = t;
    draw(p, done, tokens, bytes, false);
}

void probe_progress_end(probe_progress *p, int64_t done, int64_t tokens, uint64_t bytes) {
    if (p->quiet) return;
    draw(p, done, tokens, bytes, true);
}
