/* cli_options.h — declarative command-line options, after git's
 * parse-options: a command declares its options once, in a table, and the
 * same table drives the parser and the --help text.
 *
 * Contract
 * - A table is an array of cli_opt ending with an entry of type
 *   CLI_OPT_END (all zero). Entries hold pointers to the command's own
 *   variables, so tables are built on the stack of the command: no global
 *   mutable state.
 * - Syntax accepted: `--name VALUE`, `--name=VALUE`, `-x VALUE`, `-xVALUE`
 *   (short option with an argument), flags `--name` / `-x`; `--` ends the
 *   options (every later word is positional); a word that does not start
 *   with '-', or is "-" itself, is positional. The separate-word form
 *   takes the next word whatever it is (so `--sphere -44,0,0,8` works).
 *   `-h`/`--help` prints the help (on stdout) when it is reached; the
 *   hidden `--list-options` prints every option the command accepts, one a
 *   line (for shell completion and for the tests that check --help).
 *   Both print nothing when cmd->quiet.
 * - Words are processed left to right, and the first error stops: its
 *   message is printed as "dcm CMD: ..." on stderr (nothing when
 *   cmd->quiet) and the parse returns DCM_ERR_USAGE. An unknown option is
 *   named with a pointer to `dcm CMD --help`.
 * - Messages: `missing` (no argument) and `invalid` (a value the option
 *   refuses) are templates where %o is the option as typed (e.g. "-o" or
 *   "--output") and %v the value. Without `invalid`, `missing` is used for
 *   both; without either, a default that states the expected value.
 * - Numbers are strict (cli_parse_int, cli_parse_double): the whole word
 *   must be a finite number, within the bounds when given.
 * - Positional words are moved, in order, to argv[1..*npos] (argv[0], the
 *   command's name, stays); the strings themselves are not copied.
 */
#ifndef DCM_CLI_OPTIONS_H
#define DCM_CLI_OPTIONS_H

#include <stdio.h>

typedef enum {
    CLI_OPT_END = 0,  /* ends the table */
    CLI_OPT_GROUP,    /* a heading in --help; `help` is its text (e.g. "region (one of):") */
    CLI_OPT_FLAG,     /* int *value = 1 */
    CLI_OPT_SET_INT,  /* int *value = set_to (e.g. --ffx and --rfx on one variable) */
    CLI_OPT_INT,      /* long *value, bounds [min, max] (always checked) */
    CLI_OPT_DOUBLE,   /* double *value, bounds as `bounds` says */
    CLI_OPT_STRING,   /* const char **value (the last one given wins) */
    CLI_OPT_LIST,     /* repeatable: const char **value array with room for argc, int *count */
    CLI_OPT_CALLBACK  /* cb(opt, arg): 0 accepted, else the `invalid` message */
} cli_opt_type;

/* bounds of CLI_OPT_DOUBLE */
enum {
    CLI_BOUNDS_NONE = 0, /* any finite number */
    CLI_BOUNDS_CLOSED,   /* min <= x <= max */
    CLI_BOUNDS_OPEN      /* min < x < max (max = INFINITY: just x > min) */
};

/* flags */
enum {
    CLI_OPT_NONEMPTY = 1 /* STRING/LIST: an empty value is refused */
};

typedef struct cli_opt {
    cli_opt_type type;
    char short_name;       /* 'o' for -o; 0: none */
    const char *long_name; /* "output" for --output; NULL: none */
    void *value;           /* see the types */
    const char *argh;      /* the argument's name in --help ("FILE", "N") */
    const char *help;      /* one paragraph; wrapped in --help ('\n' forces a break) */
    int set_to;            /* CLI_OPT_SET_INT */
    double min, max;       /* CLI_OPT_INT, CLI_OPT_DOUBLE */
    int bounds;            /* CLI_OPT_DOUBLE: CLI_BOUNDS_* */
    int flags;             /* CLI_OPT_NONEMPTY */
    int *count;            /* CLI_OPT_LIST: entries filled in value */
    int *seen;             /* optional: incremented each time the option is given */
    int (*cb)(const struct cli_opt *opt, char *arg);
    const char *missing;   /* message templates, see the contract */
    const char *invalid;
} cli_opt;

/* Table entries, in the manner of git's OPT_* macros: the common fields by
 * position, then any others by name (e.g. .missing = "...", .seen = &n).
 *   CLI_STRING('o', "output", &out, "FILE", "result file (required)",
 *              .missing = "%o needs a file name"),  */
#define CLI_GROUP(heading) {.type = CLI_OPT_GROUP, .help = (heading)}
#define CLI_FLAG(s, l, v, h, ...) \
    {.type = CLI_OPT_FLAG, .short_name = (s), .long_name = (l), .value = (v), .help = (h), __VA_ARGS__}
#define CLI_SET_INT(s, l, v, n, h, ...)                                                              \
    {.type = CLI_OPT_SET_INT, .short_name = (s), .long_name = (l), .value = (v), .set_to = (n), .help = (h), \
     __VA_ARGS__}
#define CLI_INT(s, l, v, a, lo, hi, h, ...)                                                           \
    {.type = CLI_OPT_INT, .short_name = (s), .long_name = (l), .value = (v), .argh = (a), .min = (lo), \
     .max = (hi), .help = (h), __VA_ARGS__}
#define CLI_DOUBLE(s, l, v, a, h, ...)                                                                   \
    {.type = CLI_OPT_DOUBLE, .short_name = (s), .long_name = (l), .value = (v), .argh = (a), .help = (h), \
     __VA_ARGS__}
#define CLI_STRING(s, l, v, a, h, ...)                                                                   \
    {.type = CLI_OPT_STRING, .short_name = (s), .long_name = (l), .value = (v), .argh = (a), .help = (h), \
     __VA_ARGS__}
#define CLI_LIST(s, l, v, n, a, h, ...)                                                                \
    {.type = CLI_OPT_LIST, .short_name = (s), .long_name = (l), .value = (v), .count = (n), .argh = (a), \
     .help = (h), __VA_ARGS__}
#define CLI_CALLBACK(s, l, v, a, f, h, ...)                                                        \
    {.type = CLI_OPT_CALLBACK, .short_name = (s), .long_name = (l), .value = (v), .argh = (a), \
     .cb = (f), .help = (h), __VA_ARGS__}
#define CLI_END {.type = CLI_OPT_END}

typedef struct {
    const char *name;         /* "estimate" */
    const char *const *usage; /* NULL-terminated: the words after "dcm NAME", one line each */
    const char *description;  /* printed as is, between usage and options */
    const char *footer;       /* printed as is after the options (notes, exit status, examples) */
    const cli_opt *options;   /* the table */
    int quiet;                /* print nothing, neither errors nor help (an MPI rank other than 0) */
} cli_command;

/* What cli_options_parse returns besides DCM_OK / DCM_ERR_USAGE: the help
 * (or the option list) was printed, the command should exit 0. */
#define CLI_OPTIONS_HELP (-1)

/* Parse argv[1..argc-1] against cmd->options (see the contract). Returns
 * DCM_OK (positional words in argv[1..*npos]), CLI_OPTIONS_HELP, or
 * DCM_ERR_USAGE after printing why. */
int cli_options_parse(const cli_command *cmd, int argc, char **argv, int *npos);

/* The --help text: usage lines, description, the option table (group
 * headings, "-x, --name ARG" and the wrapped help), "-h, --help", footer. */
void cli_options_help(const cli_command *cmd, FILE *f);

/* Every option of the table, one a line: "-x" and "--name" forms, then
 * "-h" and "--help". */
void cli_options_list(const cli_command *cmd, FILE *f);

#endif
