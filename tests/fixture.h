/* fixture.h — reading the HF reference fixtures (tests/fixtures/ref/NAME.json) in tests (header-only).
 * Nested JSON number arrays are flattened row-major into heap double arrays. */
#ifndef HS_TEST_FIXTURE_H
#define HS_TEST_FIXTURE_H
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "runtime/common.h"

static inline size_t fx_count(const cJSON *a) {
    if (cJSON_IsNumber(a) || cJSON_IsNull(a)) return 1;
    size_t n = 0; const cJSON *e;
    cJSON_ArrayForEach(e, a) n += fx_count(e);
    return n;
}
static inline void fx_fill(const cJSON *a, double *out, size_t *k) {
    if (cJSON_IsNumber(a)) { out[(*k)++] = a->valuedouble; return; }
    if (cJSON_IsNull(a)) { out[(*k)++] = -INFINITY; return; }
    const cJSON *e;
    cJSON_ArrayForEach(e, a) fx_fill(e, out, k);
}
/* Flatten member `name` of obj; *n = element count. Caller frees. NULL if absent. */
static inline double *fx_array(const cJSON *obj, const char *name, size_t *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!a) return NULL;
    *n = fx_count(a);
    double *v = hs_xmalloc((*n ? *n : 1) * sizeof *v);
    size_t k = 0; fx_fill(a, v, &k);
    return v;
}
static inline int *fx_ints(const cJSON *obj, const char *name, int *n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsArray(a)) return NULL;
    *n = cJSON_GetArraySize(a);
    int *v = hs_xmalloc((size_t)(*n ? *n : 1) * sizeof *v);
    int k = 0; const cJSON *e;
    cJSON_ArrayForEach(e, a) v[k++] = e->valueint;
    return v;
}
static inline cJSON *fx_load(const char *path) {
    char *txt; size_t len;
    if (hs_read_file("test", path, &txt, &len) != HS_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    return j;
}
/* log_softmax of each (V) row of x (T, V) into out (double): logits are compared after it. */
static inline void fx_log_softmax_rows(const float *x, int T, int V, double *out) {
    for (int t = 0; t < T; t++) {
        const float *r = x + (size_t)t * V;
        double mx = r[0], s = 0;
        for (int j = 1; j < V; j++) if (r[j] > mx) mx = r[j];
        for (int j = 0; j < V; j++) s += exp((double)r[j] - mx);
        double lse = mx + log(s);
        for (int j = 0; j < V; j++) out[(size_t)t * V + j] = r[j] - lse;
    }
}
#endif
