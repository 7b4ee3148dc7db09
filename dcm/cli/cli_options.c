/* cli_options.c — one option table per command drives both the parser and
 * the --help text (see cli_options.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"

/* help lines are wrapped to this width; the help column is at most HELP_COL */
#define HELP_WIDTH 79
#define HELP_COL 26

static int takes_arg(const cli_opt *o)
{
    return o->type == CLI_OPT_INT || o->type == CLI_OPT_DOUBLE || o->type == CLI_OPT_STRING ||
           o->type == CLI_OPT_LIST || o->type == CLI_OPT_CALLBACK;
}

static int is_option(const cli_opt *o)
{
    return o->type != CLI_OPT_END && o->type != CLI_OPT_GROUP;
}

static const cli_opt *find_long(const cli_opt *t, const char *name, size_t len)
{
    for (; t->type != CLI_OPT_END; t++)
        if (is_option(t) && t->long_name && strlen(t->long_name) == len && !strncmp(t->long_name, name, len))
            return t;
    return NULL;
}

static const cli_opt *find_short(const cli_opt *t, char c)
{
    for (; t->type != CLI_OPT_END; t++)
        if (is_option(t) && t->short_name && t->short_name == c)
            return t;
    return NULL;
}

/* tmpl with %o -> typed and %v -> value (inserted literally) */
static void expand(char *buf, size_t size, const char *tmpl, const char *typed, const char *value)
{
    size_t k = 0;
    for (const char *p = tmpl; *p && k + 1 < size; p++) {
        const char *ins = NULL;
        if (p[0] == '%' && p[1] == 'o')
            ins = typed;
        else if (p[0] == '%' && p[1] == 'v')
            ins = value ? value : "";
        if (ins) {
            for (; *ins && k + 1 < size; ins++)
                buf[k++] = *ins;
            p++;
        } else {
            buf[k++] = *p;
        }
    }
    buf[k] = 0;
}

static int fail_msg(const cli_command *c, const char *tmpl, const char *typed, const char *value)
{
    if (c->quiet)
        return DCM_ERR_USAGE;
    char msg[1024];
    expand(msg, sizeof msg, tmpl, typed, value);
    return cli_fail(c->name, DCM_ERR_USAGE, "%s", msg);
}

static int fail_missing(const cli_command *c, const cli_opt *o, const char *typed)
{
    return fail_msg(c, o->missing ? o->missing : "%o needs a value", typed, NULL);
}

/* the default message for a refused value, stating what is expected */
static int fail_invalid(const cli_command *c, const cli_opt *o, const char *typed, const char *value)
{
    if (o->invalid || o->missing)
        return fail_msg(c, o->invalid ? o->invalid : o->missing, typed, value);
    char tmpl[256];
    if (o->type == CLI_OPT_INT)
        snprintf(tmpl, sizeof tmpl, "%%o needs a whole number from %.0f to %.0f, not '%%v'", o->min, o->max);
    else if (o->type == CLI_OPT_DOUBLE && o->bounds == CLI_BOUNDS_CLOSED)
        snprintf(tmpl, sizeof tmpl, "%%o needs a number from %g to %g, not '%%v'", o->min, o->max);
    else if (o->type == CLI_OPT_DOUBLE && o->bounds == CLI_BOUNDS_OPEN && isinf(o->max))
        snprintf(tmpl, sizeof tmpl, "%%o needs a number greater than %g, not '%%v'", o->min);
    else if (o->type == CLI_OPT_DOUBLE && o->bounds == CLI_BOUNDS_OPEN)
        snprintf(tmpl, sizeof tmpl, "%%o needs a number between %g and %g (exclusive), not '%%v'", o->min,
                 o->max);
    else if (o->type == CLI_OPT_DOUBLE)
        snprintf(tmpl, sizeof tmpl, "%%o needs a number, not '%%v'");
    else
        snprintf(tmpl, sizeof tmpl, "%%o does not take '%%v'");
    return fail_msg(c, tmpl, typed, value);
}

/* Store one value; DCM_OK or the exit status after the message. */
static int apply(const cli_command *c, const cli_opt *o, const char *typed, char *val)
{
    if ((o->flags & CLI_OPT_NONEMPTY) && val && !val[0])
        return fail_missing(c, o, typed);
    switch (o->type) {
    case CLI_OPT_FLAG:
        *(int *)o->value = 1;
        break;
    case CLI_OPT_SET_INT:
        *(int *)o->value = o->set_to;
        break;
    case CLI_OPT_INT: {
        long x;
        if (cli_parse_int(val, (long)o->min, (long)o->max, &x))
            return fail_invalid(c, o, typed, val);
        *(long *)o->value = x;
        break;
    }
    case CLI_OPT_DOUBLE: {
        double x;
        int bad = cli_parse_double(val, &x) != 0;
        if (!bad && o->bounds == CLI_BOUNDS_CLOSED)
            bad = !(x >= o->min && x <= o->max);
        else if (!bad && o->bounds == CLI_BOUNDS_OPEN)
            bad = !(x > o->min && x < o->max);
        if (bad)
            return fail_invalid(c, o, typed, val);
        *(double *)o->value = x;
        break;
    }
    case CLI_OPT_STRING:
        *(const char **)o->value = val;
        break;
    case CLI_OPT_LIST:
        ((const char **)o->value)[(*o->count)++] = val;
        break;
    case CLI_OPT_CALLBACK:
        if (o->cb(o, val))
            return fail_invalid(c, o, typed, val);
        break;
    default:
        break;
    }
    if (o->seen)
        (*o->seen)++;
    return DCM_OK;
}

static int unknown(const cli_command *c, const char *word)
{
    if (c->quiet)
        return DCM_ERR_USAGE;
    return cli_fail(c->name, DCM_ERR_USAGE, "unknown option '%s' (see dcm %s --help)", word, c->name);
}

int cli_options_parse(const cli_command *c, int argc, char **argv, int *npos)
{
    int n = 0, only_positional = 0;
    *npos = 0;
    /* positional words move down to argv[1 + n]; n + 1 <= i, so no word
       not yet read is overwritten */
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_positional || a[0] != '-' || !a[1]) {
            argv[1 + n++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_positional = 1;
            continue;
        }
        if (cli_is_help(a)) {
            if (!c->quiet)
                cli_options_help(c, stdout);
            return CLI_OPTIONS_HELP;
        }
        if (!strcmp(a, "--list-options")) {
            if (!c->quiet)
                cli_options_list(c, stdout);
            return CLI_OPTIONS_HELP;
        }
        const cli_opt *o;
        char *val = NULL;
        char typed[128];
        if (a[1] == '-') {
            const char *name = a + 2;
            char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            if (!(o = find_long(c->options, name, len)))
                return unknown(c, a);
            snprintf(typed, sizeof typed, "--%s", o->long_name);
            if (eq)
                val = eq + 1;
        } else {
            if (!(o = find_short(c->options, a[1])))
                return unknown(c, a);
            if (a[2] && !takes_arg(o))
                return unknown(c, a);   /* no bundling of short flags */
            snprintf(typed, sizeof typed, "-%c", a[1]);
            if (a[2])
                val = a + 2;
        }
        if (!takes_arg(o)) {
            if (val)
                return fail_msg(c, "%o takes no value", typed, NULL);
        } else if (!val) {
            if (i + 1 >= argc)
                return fail_missing(c, o, typed);
            val = argv[++i];
        }
        int rc = apply(c, o, typed, val);
        if (rc)
            return rc;
    }
    if (1 + n < argc)
        argv[1 + n] = NULL;
    *npos = n;
    return DCM_OK;
}

/* ---- help ---- */

/* "-o, --output FILE" (long-only options aligned under the long names) */
static void spec_of(const cli_opt *o, char *buf, size_t size)
{
    const char *argh = takes_arg(o) ? (o->argh ? o->argh : "VALUE") : NULL;
    if (o->long_name)
        snprintf(buf, size, "%c%c%s--%s%s%s", o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
                 o->short_name ? ", " : "  ", o->long_name, argh ? " " : "", argh ? argh : "");
    else
        snprintf(buf, size, "-%c%s%s", o->short_name, argh ? " " : "", argh ? argh : "");
}

/* text wrapped to HELP_WIDTH, every line after the first indented by col;
 * the first line starts at column `at` */
static void wrap(FILE *f, const char *text, int col, int at)
{
    const char *p = text;
    int x = at;
    int line_empty = 1;
    while (*p) {
        if (*p == '\n') {
            fprintf(f, "\n%*s", col, "");
            x = col;
            line_empty = 1;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t w = strcspn(p, " \n");
        if (!line_empty && x + 1 + (int)w > HELP_WIDTH) {
            fprintf(f, "\n%*s", col, "");
            x = col;
            line_empty = 1;
        }
        if (!line_empty) {
            fputc(' ', f);
            x++;
        }
        fwrite(p, 1, w, f);
        x += (int)w;
        line_empty = 0;
        p += w;
    }
    fputc('\n', f);
}

static void print_option(FILE *f, const char *spec, const char *help, int col)
{
    int len = fprintf(f, "  %s", spec);
    if (len + 2 > col) {
        fprintf(f, "\n%*s", col, "");
        len = col;
    } else {
        fprintf(f, "%*s", col - len, "");
        len = col;
    }
    wrap(f, help ? help : "", col, len);
}

void cli_options_help(const cli_command *c, FILE *f)
{
    for (int k = 0; c->usage && c->usage[k]; k++)
        fprintf(f, "%s dcm %s %s\n", k ? "   or:" : "usage:", c->name, c->usage[k]);
    if (c->description)
        fprintf(f, "\n%s", c->description);
    /* the help column: after the longest spec, within HELP_COL */
    int col = 16;
    char spec[256];
    for (const cli_opt *o = c->options; o && o->type != CLI_OPT_END; o++) {
        if (!is_option(o))
            continue;
        spec_of(o, spec, sizeof spec);
        int w = 2 + (int)strlen(spec) + 2;
        if (w > col && w <= HELP_COL)
            col = w;
    }
    if (!c->options || c->options[0].type != CLI_OPT_GROUP)
        fprintf(f, "\noptions:\n");
    for (const cli_opt *o = c->options; o && o->type != CLI_OPT_END; o++) {
        if (o->type == CLI_OPT_GROUP) {
            fprintf(f, "\n%s\n", o->help);
            continue;
        }
        spec_of(o, spec, sizeof spec);
        print_option(f, spec, o->help, col);
    }
    print_option(f, "-h, --help", "this help", col);
    if (c->footer)
        fprintf(f, "\n%s", c->footer);
}

void cli_options_list(const cli_command *c, FILE *f)
{
    for (const cli_opt *o = c->options; o && o->type != CLI_OPT_END; o++) {
        if (!is_option(o))
            continue;
        if (o->short_name)
            fprintf(f, "-%c\n", o->short_name);
        if (o->long_name)
            fprintf(f, "--%s\n", o->long_name);
    }
    fprintf(f, "-h\n--help\n");
}
