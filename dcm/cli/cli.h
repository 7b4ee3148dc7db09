/* cli.h — what the subcommands of the `dcm` program share.
 *
 * Contract
 * - Every subcommand is `int cmd_NAME(int argc, char **argv)` in its own
 *   file dcm/cmd_NAME.c; argv[0] is the subcommand's name. It returns the
 *   process exit status: DCM_OK, DCM_ERR_USAGE (bad command line),
 *   DCM_ERR_INPUT (bad input files), DCM_ERR_NUMERIC (the model diverged
 *   or the inversion failed), DCM_ERR_SYSTEM (cannot write, no memory).
 * - Messages go to stderr as "dcm NAME: ..."; results to stdout or files.
 * - Options are declared in one table per command (dcm/cli/cli_options.h),
 *   which drives both the parser and the command's --help.
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
int cmd_loo(int argc, char **argv);
int cmd_batch(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_bids(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_review(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_evidence(int argc, char **argv);
/* dcm compare --evidence METHOD: the sampled log evidence of each result
 * beside F (cmd_evidence.c); adds "evidence" to o when as_json. */
struct json_t;
int cli_compare_evidence(const char **files, int k, const char *method, int as_json, struct json_t *o);

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

/* ---- the output discipline: one plan per command, checked before any work ----
 *
 * A command lists its inputs (files it reads: specs, tables, results,
 * images, and through cli_plan_spec every file a spec names: timeseries,
 * events, confounds, inputs_microtime, VOI files) and its outputs (files it
 * will write, and folders it will write into), then calls cli_plan_check
 * once, before reading or computing anything. The check refuses:
 * - an input that exists but is not a regular file (exit 2): a FIFO would
 *   hang the reader, a device never end;
 * - an output that exists and is not a regular file (exit 4): -o /dev/null,
 *   a FIFO or a folder is never replaced;
 * - an output that is one of the inputs, compared by device and inode, so
 *   "./spec.json", a hard link or a symbolic link count (exit 2);
 * - two outputs that are the same file (exit 1);
 * - an output whose folder does not exist or cannot be written (exit 4:
 *   tested by creating and removing a file there, so read-only file
 *   systems and permissions count);
 * - an output folder of the command's own that holds any input, at any
 *   depth (exit 2): `batch -o` pointed at the study folder would write
 *   results among the specs.
 * Messages are "dcm CMD: ..." on stderr and name the option and the file.
 * The plan owns copies of the strings; cli_plan_free releases them. */
typedef struct {
    char *path;
    const char *what;   /* e.g. "-o", "--mat", "the spec" (static strings) */
    int kind;           /* internal */
} cli_plan_file;

typedef struct {
    const char *cmd;
    cli_plan_file *f;
    int n, cap;
    int oom;
    int quiet;        /* set: cli_plan_check prints nothing, err says why */
    dcm_error err;    /* the refusal (after cli_plan_check) */
} cli_plan;

void cli_plan_init(cli_plan *p, const char *cmd);
void cli_plan_free(cli_plan *p);
/* An input file (may not exist yet: the reader reports that). */
void cli_plan_input(cli_plan *p, const char *path, const char *what);
/* An input folder (e.g. a batch folder that is read): outputs may be in it. */
void cli_plan_input_dir(cli_plan *p, const char *path, const char *what);
/* A spec and the data files it names (a .mat DCM: just the file). */
void cli_plan_spec(cli_plan *p, const char *spec_path);
/* A spec read for its design only (simulate): the spec, its events and
 * inputs_microtime; its timeseries may be the very output. */
void cli_plan_spec_design(cli_plan *p, const char *spec_path);
/* A batch folder that is read (OUTDIR/<subject>/<model>.json and
 * OUTDIR/summary.tsv): each result in it is an input. */
void cli_plan_batchdir(cli_plan *p, const char *outdir);
/* An output file. */
void cli_plan_output(cli_plan *p, const char *path, const char *what);
/* A folder the command writes into (created if missing). */
void cli_plan_output_dir(cli_plan *p, const char *path, const char *what);
/* The same for a folder of the command's own, which must not hold any of
 * its inputs (dcm batch's OUTDIR). */
void cli_plan_output_dir_own(cli_plan *p, const char *path, const char *what);
/* DCM_OK, or the exit status after printing why. */
int cli_plan_check(cli_plan *p);

#endif
