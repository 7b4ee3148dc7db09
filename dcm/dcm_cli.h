/* dcm_cli.h — what the subcommands of the `dcm` program share.
 *
 * Contract
 * - Every subcommand is `int cmd_NAME(int argc, char **argv)` in its own
 *   file dcm/cmd_NAME.c; argv[0] is the subcommand's name. It returns the
 *   process exit status: DCM_OK, DCM_ERR_USAGE (bad command line),
 *   DCM_ERR_INPUT (bad input files), DCM_ERR_NUMERIC (the model diverged
 *   or the inversion failed), DCM_ERR_SYSTEM (cannot write, no memory).
 * - Messages go to stderr as "dcm NAME: ..."; results to stdout or files.
 */
#ifndef DCM_CLI_H
#define DCM_CLI_H

#include "dcm/dcm_api.h"

int cmd_estimate(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_reduce(int argc, char **argv);
int cmd_average(int argc, char **argv);
int cmd_peb(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_review(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* Print "dcm CMD: message" and return code. */
int cli_fail(const char *cmd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print a dcm_error as "dcm CMD: message" and return its code. */
int cli_report(const char *cmd, const dcm_error *err);

/* Strict number parsing: the whole string must be a finite number. */
int cli_parse_double(const char *s, double *out);
int cli_parse_int(const char *s, long min, long max, long *out);

/* A JSON array of n numbers. */
struct json_t;
struct json_t *cli_json_vec(const double *x, int n);

/* Print the JSON object o on stdout when `print`, and write it to
 * out_path (atomically) when not NULL. Returns an exit status. */
int cli_emit_json(const char *cmd, struct json_t *o, int print, const char *out_path);

/* True when arg is -h or --help. */
int cli_is_help(const char *arg);

#endif
