/* hooks.c — hook point names (TransformerLens spelling) and selection parsing. */
#include "hooks.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_suffix[RT_HOOK_N] = {
    [RT_HOOK_EMBED] = "hook_embed",          [RT_HOOK_POS_EMBED] = "hook_pos_embed",
    [RT_HOOK_RESID_PRE] = "hook_resid_pre",  [RT_HOOK_LN1_NORMALIZED] = "ln1.hook_normalized",
    [RT_HOOK_Q] = "attn.hook_q",             [RT_HOOK_K] = "attn.hook_k",
    [RT_HOOK_V] = "attn.hook_v",             [RT_HOOK_ROT_Q] = "attn.hook_rot_q",
    [RT_HOOK_ROT_K] = "attn.hook_rot_k",     [RT_HOOK_ATTN_SCORES] = "attn.hook_attn_scores",
    [RT_HOOK_PATTERN] = "attn.hook_pattern", [RT_HOOK_Z] = "attn.hook_z",
    [RT_HOOK_RESULT] = "attn.hook_result",   [RT_HOOK_ATTN_OUT] = "hook_attn_out",
    [RT_HOOK_RESID_MID] = "hook_resid_mid",  [RT_HOOK_LN2_NORMALIZED] = "ln2.hook_normalized",
    [RT_HOOK_MLP_PRE] = "mlp.hook_pre",      [RT_HOOK_MLP_POST] = "mlp.hook_post",
    [RT_HOOK_MLP_OUT] = "hook_mlp_out",      [RT_HOOK_RESID_POST] = "hook_resid_post",
    [RT_HOOK_LN_FINAL] = "ln_final.hook_normalized", [RT_HOOK_LOGITS] = "logits",
};

bool rt_hook_req_covers(const rt_hook_req *r, int l, int h) {
    bool layer_ok = !r->layers || r->n_layers == 0 || l < 0, head_ok = !r->heads || r->n_heads == 0 || h < 0;
    for (int i = 0; !layer_ok && i < r->n_layers; i++) layer_ok = r->layers[i] == l;
    for (int i = 0; !head_ok && i < r->n_heads; i++) head_ok = r->heads[i] == h;
    return layer_ok && head_ok;
}

bool rt_hook_spec_wants(const rt_hook_spec *s, rt_hook_point p, int l, int h) {
    for (int i = 0; s && i < s->n; i++)
        if (s->reqs[i].point == p && rt_hook_req_covers(&s->reqs[i], l, h)) return true;
    return false;
}

bool rt_hook_spec_writes(const rt_hook_spec *s, rt_hook_point p, int l, int h) {
    for (int i = 0; s && i < s->n; i++)
        if (s->reqs[i].point == p && !s->reqs[i].read_only && rt_hook_req_covers(&s->reqs[i], l, h)) return true;
    return false;
}

void rt_hook_fire(const rt_hook_spec *s, rt_hook_point p, int l, int h, int seq, int pos0, int rows, int cols,
                  float *data) {
    char name[96];
    bool named = false;
    for (int i = 0; s && i < s->n; i++) {
        const rt_hook_req *r = &s->reqs[i];
        if (r->point != p || !rt_hook_req_covers(r, l, h)) continue;
        if (!named) { rt_hook_format_name(p, l, name, sizeof name); named = true; }
        int b = r->pos_begin < 0 ? rows + r->pos_begin : r->pos_begin;
        int e = r->pos_end <= 0 ? rows + r->pos_end : r->pos_end;
        if (b < 0) b = 0;
        if (e > rows) e = rows;
        if (b > e) b = e;
        rt_hook_event ev = { p, name, l, h, seq, pos0, rows, cols, b, e, data };
        r->fn(&ev, r->user);
    }
}

int rt_hook_logits_first_row(const rt_hook_spec *s, int T) {
    int b = T - 1;
    for (int i = 0; s && i < s->n; i++) {
        const rt_hook_req *r = &s->reqs[i];
        if (r->point != RT_HOOK_LOGITS) continue;
        int rb = r->pos_begin < 0 ? T + r->pos_begin : r->pos_begin;
        if (rb < 0) rb = 0;
        if (rb < b) b = rb;
    }
    return b;
}

void rt_hook_fire_logits(const rt_hook_spec *s, int seq, int pos0, int T, int first, int V, float *data) {
    char name[16] = "logits";
    for (int i = 0; s && i < s->n; i++) {
        const rt_hook_req *r = &s->reqs[i];
        if (r->point != RT_HOOK_LOGITS) continue;
        int rb = r->pos_begin < 0 ? T + r->pos_begin : r->pos_begin;
        int re = r->pos_end <= 0 ? T + r->pos_end : r->pos_end;
        if (rb < first) rb = first;
        if (re > T) re = T;
        if (re < rb) re = rb;
        rt_hook_event ev = { RT_HOOK_LOGITS, name, -1, -1, seq, pos0 + first, T - first, V, rb - first, re - first, data };
        r->fn(&ev, r->user);
    }
}

const char *rt_hook_point_suffix(rt_hook_point p) { return (unsigned)p < RT_HOOK_N ? k_suffix[p] : "?"; }

bool rt_hook_point_is_layer(rt_hook_point p) {
    return p != RT_HOOK_EMBED && p != RT_HOOK_POS_EMBED && p != RT_HOOK_LN_FINAL && p != RT_HOOK_LOGITS;
}

bool rt_hook_point_is_head(rt_hook_point p) {
    return p >= RT_HOOK_Q && p <= RT_HOOK_RESULT;
}

hs_status rt_hook_parse_name(const char *name, rt_hook_point *p, int *layer) {
    int l = -1;
    const char *suffix = name;
    if (strncmp(name, "blocks.", 7) == 0) {
        char *end;
        long v = strtol(name + 7, &end, 10);
        if (end == name + 7 || *end != '.' || v < 0 || v > 1000000) return HS_ENOTFOUND;
        l = (int)v; suffix = end + 1;
    }
    for (int i = 0; i < RT_HOOK_N; i++) {
        const char *s = k_suffix[i];
        /* Accept the bare last component too ("hook_pattern" for "attn.hook_pattern"). */
        const char *dot = strrchr(s, '.');
        bool match = strcmp(suffix, s) == 0 || (dot && strcmp(suffix, dot + 1) == 0 &&
                     strcmp(suffix, "hook_normalized") != 0);
        if (!match) continue;
        if (l >= 0 && !rt_hook_point_is_layer((rt_hook_point)i)) return HS_ENOTFOUND;
        *p = (rt_hook_point)i; *layer = l;
        return HS_OK;
    }
    return HS_ENOTFOUND;
}

void rt_hook_format_name(rt_hook_point p, int layer, char *buf, size_t n) {
    if (rt_hook_point_is_layer(p)) snprintf(buf, n, "blocks.%d.%s", layer, rt_hook_point_suffix(p));
    else snprintf(buf, n, "%s", rt_hook_point_suffix(p));
}

const char *rt_hook_all_names(void) {
    static char buf[1024];
    if (!buf[0]) {
        size_t o = 0;
        for (int i = 0; i < RT_HOOK_N; i++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", i ? ", " : "", k_suffix[i]);
    }
    return buf;
}

hs_status rt_parse_index_list(const char *spec, int limit, const char *what, int **out, int *n) {
    *out = NULL; *n = 0;
    if (!spec || strcmp(spec, "all") == 0) return HS_OK;
    int *v = NULL, cnt = 0, cap = 0;
    const char *s = spec;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b;
        if (end == s) goto bad;
        b = a;
        if (*end == '-') { s = end + 1; b = strtol(s, &end, 10); if (end == s) goto bad; }
        if (a < 0 || b < a || b >= limit) {
            hs_log_error("headscope", "%s '%s': index out of range 0..%d — use e.g. 0-%d or all", what, spec, limit - 1, limit - 1);
            free(v); return HS_EBADINPUT;
        }
        for (long x = a; x <= b; x++) {
            if (cnt == cap) { cap = cap ? cap * 2 : 16; v = hs_xrealloc(v, (size_t)cap * sizeof *v); }
            v[cnt++] = (int)x;
        }
        if (*end == ',') end++;
        else if (*end) goto bad;
        s = end;
    }
    if (cnt == 0) goto bad;
    *out = v; *n = cnt;
    return HS_OK;
bad:
    hs_log_error("headscope", "%s '%s' is not a list like 0,2-4 or all — fix the option", what, spec);
    free(v);
    return HS_EBADINPUT;
}
