/* model_hash.c — the sha256 fingerprint of a model's weight files, recorded with every run so a
 * resumed capture can refuse a different checkpoint. */
#include "model.h"
#include "safetensors.h"
#include "sha256.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

hs_status rt_model_sha256(const rt_model *m, char hex[65]) {
    if (m->cfg.format == RT_FORMAT_LLAMA2C) {
        const char *p[1] = { m->path };
        return rt_sha256_files(p, 1, hex);
    }
    size_t n = strlen(m->path) + 64;
    char *single = hs_xmalloc(n), *index = hs_xmalloc(n);
    snprintf(single, n, "%s/model.safetensors", m->path);
    snprintf(index, n, "%s/model.safetensors.index.json", m->path);
    struct stat st;
    hs_status rc;
    if (stat(single, &st) == 0) {
        const char *p[1] = { single };
        rc = rt_sha256_files(p, 1, hex);
    } else {
        char *txt = NULL; size_t len = 0;
        rt_st_index ix = {0};
        rc = hs_read_file("model", index, &txt, &len);
        if (rc == HS_OK) rc = rt_st_index_parse(txt, len, index, &ix);
        if (rc == HS_OK) {   /* shards in sorted order, as one stream */
            char **paths = hs_xcalloc((size_t)ix.n_shards, sizeof *paths);
            for (int i = 0; i < ix.n_shards; i++) {
                size_t k = strlen(m->path) + strlen(ix.shards[i]) + 2;
                paths[i] = hs_xmalloc(k);
                snprintf(paths[i], k, "%s/%s", m->path, ix.shards[i]);
            }
            rc = rt_sha256_files((const char *const *)paths, ix.n_shards, hex);
            for (int i = 0; i < ix.n_shards; i++) free(paths[i]);
            free(paths);
        }
        rt_st_index_free(&ix);
        free(txt);
    }
    free(single); free(index);
    return rc;
}
