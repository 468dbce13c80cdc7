/* prompts.h — where capture prompts come from: a .txt file (one prompt per line, \n \t \\ escapes),
 * a .jsonl file ({"text": ...} or {"ids": [...]} per line), or windows sliced from a long corpus. */
#ifndef HS_PROBE_PROMPTS_H
#define HS_PROBE_PROMPTS_H
#include "runtime/common.h"
#include "runtime/tokenizer.h"

typedef struct {
    char *text;    /* owned, NUL-terminated; for ids-only prompts a display string "ids:..." */
    int *ids;      /* owned token ids, or NULL when the prompt is text still to be tokenized */
    int n_ids;
} probe_prompt;

typedef struct {
    probe_prompt *items;   /* owned */
    int n;
} probe_prompts;

/* Load prompts from PATH (.txt or .jsonl by extension). Empty lines are skipped. Errors (bad JSON,
 * invalid UTF-8, an id outside 0..vocab-1, no prompts at all) log one line with the line number and
 * return HS_EBADINPUT with *out empty. Free with probe_prompts_free. */
hs_status probe_prompts_load(const char *path, int vocab, probe_prompts *out);
/* Slice a corpus into windows of `window` tokens every `stride` tokens (tokenized without special
 * tokens; `prefix` ids, e.g. BOS, are put before each window, counting towards `window`). */
hs_status probe_prompts_corpus(const char *path, const rt_tokenizer *tok, int window, int stride,
                               const int *prefix, int n_prefix, probe_prompts *out);
void probe_prompts_free(probe_prompts *p);
#endif
