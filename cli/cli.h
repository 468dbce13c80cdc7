/* cli.h — what the headscope subcommands share: argument helpers, model loading, exit codes.
 * Exit status: 0 ok, 1 analysis found nothing / failed a check, 2 bad input (one error line). */
#ifndef HS_CLI_H
#define HS_CLI_H
#include "runtime/common.h"
#include "runtime/gpu.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_BADINPUT = 2 };

/* Each command: argc/argv start at the command name. Returns the exit status. */
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_plant(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_view(int argc, char **argv);
/* Weight-only analysis passes: argv[0] is the pass name; each parses its own options. */
int cmd_analyze_maps(int argc, char **argv);
int cmd_analyze_svd(int argc, char **argv);
int cmd_analyze_composition(int argc, char **argv);
int cmd_analyze_spectra(int argc, char **argv);

/* True if argv[i] is --help/-h. */
bool cli_is_help(const char *a);
/* For an option that takes a value: returns argv[*i+1] and advances *i, or logs
 * "headscope: OPTION needs a value — usage: ..." and returns NULL. */
const char *cli_value(int argc, char **argv, int *i, const char *cmd);
/* Strict number parsing for option values; log one line and return false on garbage. */
bool cli_parse_int(const char *s, const char *opt, long lo, long hi, long *out);
bool cli_parse_float(const char *s, const char *opt, double lo, double hi, double *out);
/* Unknown option / extra argument: one line, returns CLI_BADINPUT. */
int cli_unknown(const char *cmd, const char *arg);

/* --device and --dtype of trace/generate: device_arg (cpu, cuda, cuda:N), dtype_arg (NULL: bf16 on
 * the GPU); a non-fp32 dtype on the CPU and a missing GPU are refused. One line and false on error. */
bool cli_parse_device_dtype(const char *device_arg, const char *dtype_arg, bool *cuda, int *device, rt_gpu_dtype *dt);
/* Load the model at `path` and, when want_tok, its tokenizer (override path or the one beside it).
 * On failure the error line is already printed; returns false and leaves *m, *tok NULL. */
bool cli_load(const char *path, const char *tok_override, bool want_tok, rt_model **m, rt_tokenizer **tok);
/* Apply --n-ctx: raise/lower the context of a RoPE model (positions past training are extrapolation).
 * Learned-position models (gpt2) cannot go past their table: one error line, false. */
bool cli_set_n_ctx(rt_model *m, long n_ctx);
/* Parse a comma-separated id list like "1,2,3" (or separate argv words) into a heap array. */
bool cli_parse_ids(const char *s, int **ids, int *n);
/* JSON-escape s (len bytes) to f as a quoted string. */
void cli_json_string(FILE *f, const char *s, size_t len);
#endif
