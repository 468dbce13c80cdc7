/* json_schema.c — JSON Schema subset validator (see json_schema.h). */
#include "json_schema.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static bool type_ok(const char *t, const cJSON *d) {
    if (!strcmp(t, "object")) return cJSON_IsObject(d);
    if (!strcmp(t, "array")) return cJSON_IsArray(d);
    if (!strcmp(t, "string")) return cJSON_IsString(d);
    if (!strcmp(t, "number")) return cJSON_IsNumber(d);
    if (!strcmp(t, "integer")) return cJSON_IsNumber(d) && d->valuedouble == floor(d->valuedouble);
    if (!strcmp(t, "boolean")) return cJSON_IsBool(d);
    if (!strcmp(t, "null")) return cJSON_IsNull(d);
    return false;
}

static bool fail(char *err, size_t n, const char *path, const char *why) {
    snprintf(err, n, "%s: %s", path[0] ? path : "(root)", why);
    return false;
}

static bool validate(const cJSON *root, const cJSON *s, const cJSON *d, const char *path, char *err, size_t n) {
    const cJSON *k;
    char sub[512], why[256];
    if (cJSON_IsBool(s)) return cJSON_IsTrue(s) ? true : fail(err, n, path, "not allowed");
    if ((k = cJSON_GetObjectItem(s, "$ref")) && cJSON_IsString(k)) {
        const char *ref = k->valuestring;
        if (strncmp(ref, "#/$defs/", 8) != 0) return fail(err, n, path, "unsupported $ref");
        const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "$defs"), ref + 8);
        if (!t) return fail(err, n, path, "dangling $ref");
        if (!validate(root, t, d, path, err, n)) return false;
    }
    if ((k = cJSON_GetObjectItem(s, "type"))) {
        bool ok = false;
        if (cJSON_IsString(k)) ok = type_ok(k->valuestring, d);
        else { const cJSON *t; cJSON_ArrayForEach(t, k) if (cJSON_IsString(t) && type_ok(t->valuestring, d)) ok = true; }
        if (!ok) { char *ts = cJSON_PrintUnformatted(k); snprintf(why, sizeof why, "expected type %s", ts); cJSON_free(ts); return fail(err, n, path, why); }
    }
    if ((k = cJSON_GetObjectItem(s, "enum"))) {
        bool ok = false; const cJSON *e;
        cJSON_ArrayForEach(e, k) if (cJSON_Compare(e, d, true)) ok = true;
        if (!ok) return fail(err, n, path, "value not in enum");
    }
    if ((k = cJSON_GetObjectItem(s, "const")) && !cJSON_Compare(k, d, true)) return fail(err, n, path, "value differs from const");
    if (cJSON_IsNumber(d)) {
        if ((k = cJSON_GetObjectItem(s, "minimum")) && d->valuedouble < k->valuedouble) { snprintf(why, sizeof why, "%g < minimum %g", d->valuedouble, k->valuedouble); return fail(err, n, path, why); }
        if ((k = cJSON_GetObjectItem(s, "maximum")) && d->valuedouble > k->valuedouble) { snprintf(why, sizeof why, "%g > maximum %g", d->valuedouble, k->valuedouble); return fail(err, n, path, why); }
    }
    if (cJSON_IsString(d) && (k = cJSON_GetObjectItem(s, "minLength")) && (double)strlen(d->valuestring) < k->valuedouble)
        return fail(err, n, path, "string too short");
    if (cJSON_IsArray(d)) {
        int sz = cJSON_GetArraySize(d);
        if ((k = cJSON_GetObjectItem(s, "minItems")) && sz < k->valueint) return fail(err, n, path, "too few items");
        if ((k = cJSON_GetObjectItem(s, "maxItems")) && sz > k->valueint) return fail(err, n, path, "too many items");
        if ((k = cJSON_GetObjectItem(s, "items"))) {
            int i = 0; const cJSON *e;
            cJSON_ArrayForEach(e, d) {
                snprintf(sub, sizeof sub, "%s[%d]", path, i++);
                if (!validate(root, k, e, sub, err, n)) return false;
            }
        }
    }
    if (cJSON_IsObject(d)) {
        const cJSON *props = cJSON_GetObjectItem(s, "properties"), *addl = cJSON_GetObjectItem(s, "additionalProperties"), *e;
        if ((k = cJSON_GetObjectItem(s, "required")))
            cJSON_ArrayForEach(e, k)
                if (cJSON_IsString(e) && !cJSON_GetObjectItemCaseSensitive(d, e->valuestring)) {
                    snprintf(why, sizeof why, "missing required member \"%s\"", e->valuestring);
                    return fail(err, n, path, why);
                }
        cJSON_ArrayForEach(e, d) {
            const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, e->string) : NULL;
            snprintf(sub, sizeof sub, "%s.%s", path, e->string);
            if (ps) { if (!validate(root, ps, e, sub, err, n)) return false; }
            else if (addl && !validate(root, addl, e, sub, err, n)) return false;
        }
    }
    if ((k = cJSON_GetObjectItem(s, "anyOf"))) {
        const cJSON *e; bool ok = false;
        cJSON_ArrayForEach(e, k) { char tmp[8]; if (validate(root, e, d, path, tmp, sizeof tmp)) { ok = true; break; } }
        if (!ok) return fail(err, n, path, "matches no alternative of anyOf");
    }
    return true;
}

bool an_schema_validate(const cJSON *root, const cJSON *schema, const cJSON *doc, char *err, size_t n) {
    if (n) err[0] = '\0';
    return validate(root, schema, doc, "", err, n);
}
