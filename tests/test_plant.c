/* test_plant.c — the planted-circuit model does what planted.json says, measured by brute force.
 *
 * For two seeds: write the model into a mkdtemp folder, load it with rt_model_load, record every
 * head's hook_pattern and compute each property from the patterns (and the OV circuit from the
 * loaded weights) with plain loops, independent of datasets/plant.c:
 *   previous-token   mean over i >= 1 of pattern[i][i-1] on random sequences (BOS + 255/127/63 tokens)
 *   BOS sink         mean over i >= 1 of pattern[i][0] on the same sequences
 *   induction        mean over second-half i of pattern[i][i-N+1] on BOS + r + r, |r| = N = 40
 *   copying          fraction of tokens t whose row of W_E W_V^h W_O^h W_Eᵀ peaks at column t
 * Each planted head must clear its threshold, rank first among all 8 heads, and beat every filler
 * by >= 0.3. Also: the tokenizer round-trips text, greedy decoding continues a repeated sequence
 * (induction end to end through the logits), the files are byte-identical for one seed and the
 * fillers differ between seeds, and bad arguments fail with one error line.
 */
#include "testlib.h"
#include "datasets/plant.h"
#include "runtime/forward.h"
#include "runtime/intervene.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include <cjson/cJSON.h>
#include <unistd.h>

enum { NL = DS_PLANT_LAYERS, NH = DS_PLANT_HEADS, NHEADS = NL * NH, HALF = 40 };
static const char *const k_files[] = { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "planted.json" };
#define N_FILES (int)(sizeof k_files / sizeof *k_files)

/* xorshift64*: the test's own token stream, independent of the generator's */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 33) % n;
}
static int rnd_token(void) { return (int)rnd(DS_PLANT_VOCAB - 1); }   /* any token but BOS (the last id) */

/* r[0..n): random tokens (not BOS); distinct: no token twice (a repeat makes "the token after the
 * earlier occurrence" ambiguous, and a correct induction head then splits its attention). */
static void rnd_tokens(int *r, int n, bool distinct) {
    for (int i = 0; i < n; i++) {
        bool again;
        do {
            r[i] = rnd_token();
            again = false;
            for (int j = 0; distinct && j < i; j++) again |= r[j] == r[i];
        } while (again);
    }
}

static char *path_in(const char *dir, const char *name) {
    static char buf[4][1200]; static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 1200, "%.1100s/%.80s", dir, name);
    return b;
}

static bool same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool ok = hs_read_file("test", a, &x, &nx) == HS_OK && hs_read_file("test", b, &y, &ny) == HS_OK &&
              nx == ny && memcmp(x, y, nx) == 0;
    free(x); free(y);
    return ok;
}

static void remove_dir(const char *dir) {
    for (int i = 0; i < N_FILES; i++) unlink(path_in(dir, k_files[i]));
    rmdir(dir);
}

/* "L.H" -> flat index L*NH + H, or -1 */
static int head_index(const cJSON *v) {
    int l, h;
    char extra;
    if (!cJSON_IsString(v) || sscanf(v->valuestring, "%d.%d%c", &l, &h, &extra) != 2) return -1;
    return l >= 0 && l < NL && h >= 0 && h < NH ? l * NH + h : -1;
}

typedef struct {
    int prev, ind, bos, copy;         /* planted heads (flat index) */
    bool filler[NHEADS];
    int n_filler;
} roles;

static bool read_roles(const char *dir, roles *r) {
    char *text = NULL;
    size_t n = 0;
    memset(r, 0, sizeof *r);
    if (hs_read_file("test", path_in(dir, "planted.json"), &text, &n) != HS_OK) return false;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return false;
    r->prev = head_index(cJSON_GetObjectItem(j, "previous_token"));
    r->ind = head_index(cJSON_GetObjectItem(j, "induction"));
    r->bos = head_index(cJSON_GetObjectItem(j, "bos_sink"));
    r->copy = head_index(cJSON_GetObjectItem(j, "copying"));
    const cJSON *f = cJSON_GetObjectItem(j, "filler"), *e;
    cJSON_ArrayForEach(e, f) {
        int k = head_index(e);
        if (k >= 0 && !r->filler[k]) { r->filler[k] = true; r->n_filler++; }
    }
    cJSON_Delete(j);
    return r->prev >= 0 && r->ind >= 0 && r->bos >= 0 && r->copy >= 0 && r->n_filler > 0;
}

/* Run seqs through m recording every head's pattern. */
static bool record_patterns(const rt_model *m, const rt_seq *seqs, int n, rt_cache *cache) {
    rt_forward *f = rt_forward_init(m);
    rt_hook_req req = { RT_HOOK_PATTERN, NULL, 0, NULL, 0, 0, 0, rt_cache_record, cache, false };
    rt_hook_spec spec = { &req, 1 };
    bool ok = rt_forward_run(f, seqs, n, &spec, NULL) == HS_OK;
    rt_forward_free(f);
    return ok;
}

static const float *pattern(const rt_cache *c, int head, int seq, int T) {
    char name[64];
    int rows, cols;
    snprintf(name, sizeof name, "blocks.%d.attn.hook_pattern", head / NH);
    const float *p = rt_cache_get(c, name, head % NH, seq, &rows, &cols);
    return p && rows == T && cols == T ? p : NULL;
}

typedef struct { double prev[NHEADS], bos[NHEADS], ind[NHEADS], ind_rep[NHEADS], copy[NHEADS]; } scores;

static void attention_scores(const rt_model *m, scores *s) {
    /* (a) random sequences: previous-token and BOS mass */
    enum { NS = 3 };
    int lens[NS] = { DS_PLANT_CTX, 128, 64 };
    int *ids[NS];
    rt_seq seqs[NS];
    for (int q = 0; q < NS; q++) {
        ids[q] = hs_xmalloc((size_t)lens[q] * sizeof(int));
        ids[q][0] = DS_PLANT_BOS;
        for (int i = 1; i < lens[q]; i++) ids[q][i] = rnd_token();
        seqs[q] = (rt_seq){ ids[q], lens[q], NULL };
    }
    rt_cache c;
    rt_cache_init(&c);
    bool ok = record_patterns(m, seqs, NS, &c);
    for (int hd = 0; hd < NHEADS; hd++) {
        double prev = 0, bos = 0;
        int n = 0;
        for (int q = 0; ok && q < NS; q++) {
            int T = lens[q];
            const float *p = pattern(&c, hd, q, T);
            if (!p) { ok = false; break; }
            for (int i = 1; i < T; i++, n++) { prev += p[(size_t)i * T + i - 1]; bos += p[(size_t)i * T]; }
        }
        s->prev[hd] = ok ? prev / n : -1;
        s->bos[hd] = ok ? bos / n : -1;
    }
    TL_CHECK(ok, "patterns recorded for all %d heads on %d random sequences", NHEADS, NS);
    rt_cache_free(&c);
    for (int q = 0; q < NS; q++) free(ids[q]);

    /* (b) BOS + r + r, |r| = HALF: induction, on distinct-token r (unambiguous) and on r drawn
     * with replacement (the usual definition; repeats inside r cost a few percent). Query i in the
     * second half holds r[i-1-HALF]; the token after its first occurrence sits at i - HALF + 1. */
    enum { NR = 4, T = 1 + 2 * HALF };
    int rep[NR][T];
    rt_seq rseqs[NR];
    for (int kind = 0; kind < 2; kind++) {
        for (int q = 0; q < NR; q++) {
            rep[q][0] = DS_PLANT_BOS;
            rnd_tokens(&rep[q][1], HALF, kind == 0);
            memcpy(&rep[q][1 + HALF], &rep[q][1], HALF * sizeof(int));
            rseqs[q] = (rt_seq){ rep[q], T, NULL };
        }
        rt_cache_init(&c);
        ok = record_patterns(m, rseqs, NR, &c);
        for (int hd = 0; hd < NHEADS; hd++) {
            double ind = 0;
            int n = 0;
            for (int q = 0; ok && q < NR; q++) {
                const float *p = pattern(&c, hd, q, T);
                if (!p) { ok = false; break; }
                for (int i = HALF + 1; i < T; i++, n++) ind += p[(size_t)i * T + i - HALF + 1];
            }
            (kind == 0 ? s->ind : s->ind_rep)[hd] = ok ? ind / n : -1;
        }
        TL_CHECK(ok, "patterns recorded for all %d heads on %d repeated sequences (T = %d, %s tokens)", NHEADS, NR, T,
                 kind == 0 ? "distinct" : "random");
        rt_cache_free(&c);
    }
}

/* W[i][j] of a linear layer as the math writes it, y = x·W (i = input, j = output), either layout. */
static float lin_at(const rt_linear *L, int i, int j) {
    return L->in_major ? L->w[(size_t)i * L->n_out + j] : L->w[(size_t)j * L->n_in + i];
}

/* Fraction of tokens t with argmax_s (W_E W_V^h W_O^h W_Eᵀ)[t][s] == t (first maximum wins). */
static double copying_fraction(const rt_model *m, int l, int h, float *a, float *b, float *row) {
    const rt_config *c = &m->cfg;
    int V = c->vocab_size, D = c->d_model, HD = c->d_head;
    const rt_layer *ly = &m->layers[l];
    const float *E = m->tok_embed;                   /* (V, D) */
    for (int t = 0; t < V; t++)                      /* a (V, HD) = W_E W_V^h */
        for (int k = 0; k < HD; k++) {
            double acc = 0;
            for (int d = 0; d < D; d++) acc += (double)E[(size_t)t * D + d] * lin_at(&ly->qkv, d, 2 * D + h * HD + k);
            a[(size_t)t * HD + k] = (float)acc;
        }
    for (int k = 0; k < HD; k++)                     /* b (HD, V) = W_O^h W_Eᵀ */
        for (int s = 0; s < V; s++) {
            double acc = 0;
            for (int d = 0; d < D; d++) acc += (double)lin_at(&ly->o, h * HD + k, d) * E[(size_t)s * D + d];
            b[(size_t)k * V + s] = (float)acc;
        }
    int hits = 0;
    for (int t = 0; t < V; t++) {
        for (int s = 0; s < V; s++) {
            double acc = 0;
            for (int k = 0; k < HD; k++) acc += (double)a[(size_t)t * HD + k] * b[(size_t)k * V + s];
            row[s] = (float)acc;
        }
        int best = 0;
        for (int s = 1; s < V; s++) if (row[s] > row[best]) best = s;
        hits += best == t;
    }
    return (double)hits / V;
}

static void copying_scores(const rt_model *m, scores *s) {
    const rt_config *c = &m->cfg;
    float *a = hs_xmalloc((size_t)c->vocab_size * c->d_head * sizeof(float));
    float *b = hs_xmalloc((size_t)c->vocab_size * c->d_head * sizeof(float));
    float *row = hs_xmalloc((size_t)c->vocab_size * sizeof(float));
    for (int hd = 0; hd < NHEADS; hd++) s->copy[hd] = copying_fraction(m, hd / NH, hd % NH, a, b, row);
    free(a); free(b); free(row);
}

/* planted head must clear `thr`, rank first (ties allowed only when allow_tie), beat fillers by >= 0.3 */
static void check_property(const char *tag, const char *what, const double *v, int planted, const roles *r,
                           double thr, bool allow_tie) {
    int best_other = -1, best_filler = -1;
    for (int hd = 0; hd < NHEADS; hd++) {
        if (hd == planted) continue;
        if (best_other < 0 || v[hd] > v[best_other]) best_other = hd;
        if (r->filler[hd] && (best_filler < 0 || v[hd] > v[best_filler])) best_filler = hd;
    }
    TL_CHECK(v[planted] > thr, "%s: %s of %d.%d = %.4f > %.2f", tag, what, planted / NH, planted % NH, v[planted], thr);
    bool first = allow_tie ? v[planted] >= v[best_other] : v[planted] > v[best_other];
    TL_CHECK(first, "%s: %d.%d ranks first on %s (runner-up %d.%d = %.4f%s)", tag, planted / NH, planted % NH, what,
             best_other / NH, best_other % NH, v[best_other], allow_tie && v[planted] == v[best_other] ? ", tied by design" : "");
    TL_CHECK(v[planted] - v[best_filler] >= 0.3, "%s: %s beats the best filler %d.%d = %.4f by >= 0.3", tag, what,
             best_filler / NH, best_filler % NH, v[best_filler]);
}

static void check_tokenizer(const char *tag, const char *dir) {
    rt_tokenizer *t = NULL;
    if (rt_tokenizer_load_json(path_in(dir, "tokenizer.json"), &t) != HS_OK) { tl_fail("%s: tokenizer.json loads", tag); return; }
    TL_CHECK(rt_tokenizer_vocab_size(t) == DS_PLANT_VOCAB && rt_tokenizer_bos_id(t) == DS_PLANT_BOS &&
             rt_tokenizer_eos_id(t) == DS_PLANT_BOS, "%s: tokenizer vocab %d, BOS = EOS = %d", tag,
             rt_tokenizer_vocab_size(t), rt_tokenizer_bos_id(t));
    static const char *texts[] = {
        "hello world", "The cat sat on the mat, and then it ran.", "  two  spaces\tand\nnewlines \n",
        "ünïcödé → 日本語 🙂", "ids: 12345 x=3.14; it's <|endoftext|> in the middle", "abcabc",
    };
    int ok_round = 0, ok_bos = 0;
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        int *ids = NULL, n = 0;
        char *back = NULL;
        size_t len = 0;
        if (rt_tokenizer_encode(t, texts[k], strlen(texts[k]), true, &ids, &n) == HS_OK && n >= 1) {
            ok_bos += ids[0] == DS_PLANT_BOS;
            if (rt_tokenizer_decode(t, ids + 1, n - 1, &back, &len) == HS_OK)
                ok_round += len == strlen(texts[k]) && memcmp(back, texts[k], len) == 0;
        }
        free(ids); free(back);
    }
    int n_texts = (int)(sizeof texts / sizeof *texts);
    TL_CHECK(ok_bos == n_texts, "%s: encode prepends <|endoftext|> (%d/%d)", tag, ok_bos, n_texts);
    TL_CHECK(ok_round == n_texts, "%s: decode(encode(text)) == text (%d/%d)", tag, ok_round, n_texts);
    int *ids = NULL, n = 0;
    bool merged = rt_tokenizer_encode(t, " the", 4, false, &ids, &n) == HS_OK && n == 1 && ids[0] == 262;
    TL_CHECK(merged, "%s: \" the\" is one merged token (GPT-2 id 262)", tag);
    free(ids);
    rt_tokenizer_free(t);
}

/* Greedy decoding from BOS + r + r[0] must reproduce r[1..] (induction through the logits); r has
 * distinct tokens, so the continuation is unambiguous. */
static void check_greedy(const char *tag, const rt_model *m) {
    enum { T = 1 + 2 * HALF };
    int ids[T], r[HALF];
    rnd_tokens(r, HALF, true);
    ids[0] = DS_PLANT_BOS;
    for (int i = 0; i < HALF; i++) ids[1 + i] = r[i];
    ids[1 + HALF] = r[0];
    int n = 2 + HALF, V = m->cfg.vocab_size, hits = 0;
    float *logits = hs_xmalloc((size_t)V * sizeof(float));
    rt_kv_cache kv;
    rt_kv_cache_init(&kv, &m->cfg, T);
    rt_forward *f = rt_forward_init(m);
    rt_seq s = { ids, n, &kv };
    bool ok = true;
    for (int step = 1; step < HALF && ok; step++) {
        ok = rt_forward_run(f, &s, 1, NULL, logits) == HS_OK;
        int best = 0;
        for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        hits += best == r[step];
        ids[n] = best;
        s = (rt_seq){ &ids[n], 1, &kv };
        n++;
    }
    rt_forward_free(f);
    rt_kv_cache_free(&kv);
    free(logits);
    TL_CHECK(ok && hits >= (HALF - 1) * 9 / 10, "%s: greedy continuation of a repeated sequence reproduces %d/%d tokens (>= 90%%)",
             tag, hits, HALF - 1);
}

static void check_model(const char *tag, const char *dir) {
    roles r;
    scores sc, *out = &sc;
    TL_CHECK(read_roles(dir, &r), "%s: planted.json names the heads", tag);
    TL_CHECK(r.prev == 1 && r.ind == 6 && r.bos == 4 && r.copy == 7 && r.n_filler == 4 && r.filler[0] &&
             r.filler[2] && r.filler[3] && r.filler[5], "%s: roles are prev 0.1, induction 1.2, BOS 1.0, copying 1.3, fillers 0.0 0.2 0.3 1.1", tag);
    rt_model *m = NULL;
    if (rt_model_load(dir, &m) != HS_OK) { tl_fail("%s: rt_model_load", tag); return; }
    const rt_config *c = &m->cfg;
    TL_CHECK(c->arch == RT_ARCH_GPT2 && c->n_layers == NL && c->n_heads == NH && c->d_model == DS_PLANT_D &&
             c->vocab_size == DS_PLANT_VOCAB && c->n_ctx == DS_PLANT_CTX && c->tied_embeddings && c->bos_id == DS_PLANT_BOS &&
             strcmp(c->dtype, "F32") == 0, "%s: loads as gpt2 L=%d H=%d D=%d V=%d n_ctx=%d, tied, F32, bos %d", tag,
             c->n_layers, c->n_heads, c->d_model, c->vocab_size, c->n_ctx, c->bos_id);
    memset(out, 0, sizeof *out);
    attention_scores(m, out);
    copying_scores(m, out);
    printf("  %s scores   head:  prev   bos    ind    ind(r)  copy\n", tag);
    for (int hd = 0; hd < NHEADS; hd++)
        printf("  %s          %d.%d: %.4f %.4f %.4f %.4f  %.4f%s\n", tag, hd / NH, hd % NH, out->prev[hd], out->bos[hd],
               out->ind[hd], out->ind_rep[hd], out->copy[hd], r.filler[hd] ? "  (filler)" : "");
    check_property(tag, "previous-token attention", out->prev, r.prev, &r, 0.9, false);
    check_property(tag, "BOS attention mass", out->bos, r.bos, &r, 0.9, false);
    check_property(tag, "induction score", out->ind, r.ind, &r, 0.8, false);
    check_property(tag, "induction score (tokens drawn with replacement)", out->ind_rep, r.ind, &r, 0.8, false);
    /* 1.2's OV is the same copy as 1.3's (induction predicts through the tied unembedding), so both
     * score 1.0 here: 1.3 must be first, a tie with 1.2 is by design (planted.json "also_copying") */
    check_property(tag, "OV copying diagonal-argmax fraction", out->copy, r.copy, &r, 0.95, true);
    check_greedy(tag, m);
    rt_model_free(m);
    check_tokenizer(tag, dir);
}

int main(void) {
    char root[] = "/tmp/test_plant.XXXXXX";
    if (!mkdtemp(root)) { tl_fail("mkdtemp"); return tl_done(); }
    char a[1100], b[1100], a2[1100];
    snprintf(a, sizeof a, "%s/seed1", root);
    snprintf(b, sizeof b, "%s/seed2", root);
    snprintf(a2, sizeof a2, "%s/nested/seed1", root);   /* also: missing parents are created */
    TL_CHECK(ds_plant_write(a, 1) == HS_OK && ds_plant_write(b, 2) == HS_OK && ds_plant_write(a2, 1) == HS_OK,
             "ds_plant_write seeds 1, 2 and 1 again");

    int same = 0;
    for (int i = 0; i < N_FILES; i++) same += same_file(path_in(a, k_files[i]), path_in(a2, k_files[i]));
    TL_CHECK(same == N_FILES, "same seed -> byte-identical files (%d/%d)", same, N_FILES);
    TL_CHECK(!same_file(path_in(a, "model.safetensors"), path_in(b, "model.safetensors")) &&
             same_file(path_in(a, "config.json"), path_in(b, "config.json")) &&
             same_file(path_in(a, "tokenizer.json"), path_in(b, "tokenizer.json")),
             "different seed -> different weights, same config and tokenizer");
    {   /* the fillers themselves differ: 0.0's query weights */
        rt_model *ma = NULL, *mb = NULL;
        bool differ = false;
        if (rt_model_load(a, &ma) == HS_OK && rt_model_load(b, &mb) == HS_OK)
            for (int d = 0; d < DS_PLANT_D && !differ; d++)
                differ = lin_at(&ma->layers[0].qkv, d, 0) != lin_at(&mb->layers[0].qkv, d, 0);
        TL_CHECK(differ, "different seed -> different filler weights (0.0 W_Q)");
        rt_model_free(ma);
        rt_model_free(mb);
    }

    check_model("seed 1", a);
    check_model("seed 2", b);

    /* bad input: one error line each, nothing written */
    char blocker[1100], under[1200];
    snprintf(blocker, sizeof blocker, "%s/file", root);
    snprintf(under, sizeof under, "%s/model", blocker);
    printf("  (the next 3 error lines on stderr are expected)\n");
    fflush(stdout);
    FILE *bf = fopen(blocker, "w");
    if (bf) fclose(bf);
    int e0 = hs_log_error_count();
    hs_status st = ds_plant_write(under, 1);
    TL_CHECK(st == HS_EIO && hs_log_error_count() == e0 + 1, "--out below a regular file -> HS_EIO, one error line");
    e0 = hs_log_error_count();
    st = ds_plant_write(blocker, 1);
    TL_CHECK(st == HS_EIO && hs_log_error_count() == e0 + 1, "--out naming a regular file -> HS_EIO, one error line");
    e0 = hs_log_error_count();
    st = ds_plant_write(a, DS_PLANT_MAX_SEED);
    TL_CHECK(st == HS_EBADINPUT && hs_log_error_count() == e0 + 1, "seed >= 2^53 -> HS_EBADINPUT, one error line");
    unlink(blocker);

    remove_dir(a);
    remove_dir(b);
    remove_dir(a2);
    char nested[1100];
    snprintf(nested, sizeof nested, "%s/nested", root);
    rmdir(nested);
    rmdir(root);
    return tl_done();
}
