/* model_tokenizer.c — find and open the tokenizer that belongs to a loaded model.
 *
 * Kept apart from model.c so the loaders do not depend on the tokenizer module: only code that
 * needs text (CLI, probes) links this. Lookup order: an explicit override; a Hugging Face folder's
 * tokenizer.json; beside a llama2.c .bin, tokenizer.bin and then the first tok*.bin by name
 * (llama2.c ships e.g. tok512.bin next to stories260K.bin).
 */
#include "model.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hs_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Directory part of a file path ("." when there is none). Heap string. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return hs_xstrdup(".");
    if (slash == path) return hs_xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = hs_xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

/* First regular file "tok*.bin" in dir by strcmp order, or NULL. Heap string. */
static char *first_tok_bin(const char *dir) {
    DIR *d = opendir(dir);
    char *best = NULL;
    if (!d) return NULL;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "tok", 3) != 0 || !ends_with(e->d_name, ".bin")) continue;
        if (best && strcmp(e->d_name, best) >= 0) continue;
        char *p = join(dir, e->d_name);
        bool ok = is_file(p);
        free(p);
        if (!ok) continue;
        free(best);
        best = hs_xstrdup(e->d_name);
    }
    closedir(d);
    if (!best) return NULL;
    char *p = join(dir, best);
    free(best);
    return p;
}

hs_status rt_model_open_tokenizer(const rt_model *m, const char *override_path, rt_tokenizer **out) {
    *out = NULL;
    if (override_path) {
        if (ends_with(override_path, ".json")) return rt_tokenizer_load_json(override_path, out);
        return rt_tokenizer_load_llama2c(override_path, m->cfg.vocab_size, out);
    }
    hs_status st;
    if (m->cfg.format == RT_FORMAT_HF) {
        char *p = join(m->path, "tokenizer.json");
        if (!is_file(p)) {
            hs_log_error("model", "no tokenizer.json in %s — pass the tokenizer with --tokenizer PATH", m->path);
            free(p);
            return HS_EIO;
        }
        st = rt_tokenizer_load_json(p, out);
        free(p);
        return st;
    }
    char *dir = dir_of(m->path);
    char *p = join(dir, "tokenizer.bin");
    if (!is_file(p)) {
        free(p);
        p = first_tok_bin(dir);
    }
    if (!p) {
        hs_log_error("model", "no tokenizer beside %s (looked for tokenizer.bin and tok*.bin in %s) — pass the tokenizer with --tokenizer PATH",
                     m->path, dir);
        free(dir);
        return HS_EIO;
    }
    st = rt_tokenizer_load_llama2c(p, m->cfg.vocab_size, out);
    free(p);
    free(dir);
    return st;
}
