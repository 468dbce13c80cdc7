/* context.h — what every analysis pass starts from: a run in a store, its model (through the
 * runtime), and a JSON report with the fields every report shares (docs/reports.md).
 *
 * Passes read prompts, tokens and statistics through the store's typed API and recompute
 * activations they need through the runtime's hooks (the weights must match the run's sha256),
 * so a capture can stay small (statistics only) and still feed every pass.
 */
#ifndef HS_AN_CONTEXT_H
#define HS_AN_CONTEXT_H
#include "runtime/model.h"
#include "store/store.h"
#include <cjson/cJSON.h>

typedef struct {
    const char *db_path;
    store_db *db;             /* owned */
    store_run_info run;       /* owned */
    rt_model *m;              /* owned */
    rt_tokenizer *tok;        /* owned, may be NULL */
    char sha256[65];
    double t0;                /* wall clock at open, for the report's timing */
} an_ctx;

/* Open db_path (read-write: reports are stored in it), pick run_id (0 = the latest run) and load
 * its model (model_override replaces the stored path; the weights' sha256 must match the run's).
 * One error line and non-OK on failure; *ctx is then closed. */
hs_status an_ctx_open(const char *db_path, int64_t run_id, const char *model_override, an_ctx *ctx);
/* Weight-only passes (maps, svd, composition, spectra): load the model at model_path with no run
 * and no database (ctx->db stays NULL); their reports go to --out or stdout. */
hs_status an_ctx_open_model(const char *model_path, an_ctx *ctx);
void an_ctx_close(an_ctx *ctx);

/* The report skeleton: schema_version, headscope_version, pass, model, run (only when the context
 * has one), params (takes ownership of params). The caller adds "heads", "summary" and pass-specific members. */
cJSON *an_report_begin(const an_ctx *ctx, const char *pass, cJSON *params);
/* Add timing, store the report in the run's reports table (when the context has a run) and write
 * it to out_path atomically (tmp + rename) — or to stdout when there is neither a run nor out_path.
 * Consumes root. */
hs_status an_report_finish(an_ctx *ctx, cJSON *root, const char *out_path);

/* A per-head row {"layer": l, "head": h, "name": "l.h", "metrics": {}}; returns the metrics object. */
cJSON *an_report_head(cJSON *heads_array, int layer, int head);
/* A ranked list [{"head": "l.h", "score": s}, ...] of the top n of scores (L*H, NaN skipped). */
cJSON *an_rank(const double *scores, int L, int H, int n);
/* Wall-clock seconds (monotonic). */
double an_now(void);
#endif
