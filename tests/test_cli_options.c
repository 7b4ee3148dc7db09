/* test_cli_options.c — the option tables of dcm/cli/cli_options.h: every
 * type parsed, both spellings of a value, `--`, repeats, the messages of a
 * missing argument, a bad number and an unknown option, and a --help that
 * shows every option of the table. Runs in process (stdout and stderr are
 * captured through a temporary file). */
#include <math.h>
#include <unistd.h>

#include "dcm/cli/cli.h"
#include "dcm/cli/cli_options.h"
#include "tests/test_util.h"

/* what one parse printed, stdout and stderr together */
static char printed[16384];

/* the variables a table fills */
typedef struct {
    int flag, set, fam, seen_str;
    long num;
    double x;
    const char *str;
    const char *list[32];
    int nlist;
    const char *choice;
} vars;

static int take_choice(const cli_opt *opt, char *arg)
{
    if (strcmp(arg, "red") && strcmp(arg, "blue"))
        return -1;
    *(const char **)opt->value = arg;
    return 0;
}

static const char *const usage[] = {"FILE... [options]", "--str S [options]", NULL};

/* a table with every type (and a group heading) over v */
#define TABLE(v)                                                                                          \
    const cli_opt options[] = {                                                                           \
        CLI_GROUP("switches:"),                                                                            \
        CLI_FLAG('f', "flag", &(v).flag, "a plain switch"),                                                \
        CLI_SET_INT(0, "set-two", &(v).set, 2, "store two in the set variable"),                           \
        CLI_SET_INT(0, "set-zero", &(v).set, 0, "store zero in the set variable"),                         \
        CLI_GROUP("values:"),                                                                              \
        CLI_INT('n', "num", &(v).num, "N", 1, 100, "a whole number of widgets between one and a hundred", \
                .missing = "%o needs a count of widgets"),                                                 \
        CLI_DOUBLE(0, "prob", &(v).x, "P", "a probability strictly inside the unit interval", .min = 0.0, \
                   .max = 1.0, .bounds = CLI_BOUNDS_OPEN,                                                  \
                   .invalid = "%o must be a probability between 0 and 1 (exclusive), not '%v'"),        \
        CLI_STRING('s', "str", &(v).str, "S", "a name that may not be empty", .flags = CLI_OPT_NONEMPTY,  \
                   .seen = &(v).seen_str, .missing = "%o needs a name"),                                   \
        CLI_LIST('l', "list", (v).list, &(v).nlist, "ITEM", "an item (repeatable; kept in order)"),        \
        CLI_CALLBACK(0, "colour", &(v).choice, "red|blue", take_choice, "the colour of the widgets",       \
                     .invalid = "%o takes 'red' or 'blue'"),                                               \
        CLI_END}

/* Parse the words of `line` (split at spaces; "" stands for an empty
 * word) with the table; what was printed lands in `printed`. */
static int parse_line(vars *v, const char *line, int quiet, int *npos, char ***argv_out)
{
    static char buf[1024];
    static char *argv[64];
    snprintf(buf, sizeof buf, "%s", line);
    int argc = 0;
    argv[argc++] = "widgets";
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 63; w = strtok_r(NULL, " ", &save))
        argv[argc++] = strcmp(w, "\"\"") ? w : w + 2; /* "" -> the empty string */
    argv[argc] = NULL;
    TABLE(*v);
    const cli_command cmd = {"widgets", usage, "Count widgets.\n", "example:\n  dcm widgets a.txt\n", options,
                             quiet};
    fflush(stdout);
    fflush(stderr);
    FILE *tmp = tmpfile();
    int o1 = dup(1), o2 = dup(2);
    dup2(fileno(tmp), 1);
    dup2(fileno(tmp), 2);
    int rc = cli_options_parse(&cmd, argc, argv, npos);
    fflush(stdout);
    fflush(stderr);
    dup2(o1, 1);
    dup2(o2, 2);
    close(o1);
    close(o2);
    rewind(tmp);
    size_t n = fread(printed, 1, sizeof printed - 1, tmp);
    printed[n] = 0;
    fclose(tmp);
    if (argv_out)
        *argv_out = argv;
    return rc;
}

static void test_every_type(void)
{
    vars v;
    memset(&v, 0, sizeof v);
    int npos = -1;
    char **argv;
    int rc = parse_line(&v, "a.txt -f --set-two --num 7 --prob=0.25 -s x -l one --list=two -lthree "
                            "--colour blue b.txt - -- --num -f",
                        0, &npos, &argv);
    CU_ASSERT_EQUAL_FATAL(rc, DCM_OK);
    CU_ASSERT_STRING_EQUAL(printed, "");
    CU_ASSERT_EQUAL(v.flag, 1);
    CU_ASSERT_EQUAL(v.set, 2);
    CU_ASSERT_EQUAL(v.num, 7);
    CU_ASSERT_DOUBLE_EQUAL(v.x, 0.25, 0.0);
    CU_ASSERT_STRING_EQUAL(v.str, "x");
    CU_ASSERT_EQUAL(v.seen_str, 1);
    CU_ASSERT_EQUAL_FATAL(v.nlist, 3);
    CU_ASSERT_STRING_EQUAL(v.list[0], "one");
    CU_ASSERT_STRING_EQUAL(v.list[1], "two");
    CU_ASSERT_STRING_EQUAL(v.list[2], "three");
    CU_ASSERT_STRING_EQUAL(v.choice, "blue");
    /* positional words in order, "-" among them, and everything after "--" */
    CU_ASSERT_EQUAL_FATAL(npos, 5);
    CU_ASSERT_STRING_EQUAL(argv[0], "widgets");
    CU_ASSERT_STRING_EQUAL(argv[1], "a.txt");
    CU_ASSERT_STRING_EQUAL(argv[2], "b.txt");
    CU_ASSERT_STRING_EQUAL(argv[3], "-");
    CU_ASSERT_STRING_EQUAL(argv[4], "--num");
    CU_ASSERT_STRING_EQUAL(argv[5], "-f");
    /* the later of two values wins; a SET_INT after another */
    memset(&v, 0, sizeof v);
    CU_ASSERT_EQUAL(parse_line(&v, "--num 3 --num=4 --set-two --set-zero -s a -s b", 0, &npos, NULL), DCM_OK);
    CU_ASSERT_EQUAL(v.num, 4);
    CU_ASSERT_EQUAL(v.set, 0);
    CU_ASSERT_STRING_EQUAL(v.str, "b");
    CU_ASSERT_EQUAL(v.seen_str, 2);
    CU_ASSERT_EQUAL(npos, 0);
}

static void test_value_spellings(void)
{
    /* --x=1, --x 1, -x 1 and -x1 give the same; the separate word is taken
       whatever it looks like (a negative number, a word with '=') */
    const char *lines[] = {"--num=12", "--num 12", "-n 12", "-n12"};
    for (int k = 0; k < 4; k++) {
        vars v;
        memset(&v, 0, sizeof v);
        int npos;
        CU_ASSERT_EQUAL(parse_line(&v, lines[k], 0, &npos, NULL), DCM_OK);
        CU_ASSERT_EQUAL(v.num, 12);
        CU_ASSERT_EQUAL(npos, 0);
    }
    vars v;
    memset(&v, 0, sizeof v);
    int npos;
    CU_ASSERT_EQUAL(parse_line(&v, "-l -x=1 --list a=b --str=c=d", 0, &npos, NULL), DCM_OK);
    CU_ASSERT_EQUAL_FATAL(v.nlist, 2);
    CU_ASSERT_STRING_EQUAL(v.list[0], "-x=1");
    CU_ASSERT_STRING_EQUAL(v.list[1], "a=b");
    CU_ASSERT_STRING_EQUAL(v.str, "c=d");
}

/* rc and the message of one bad command line */
static void expect_error(const char *line, const char *message)
{
    vars v;
    memset(&v, 0, sizeof v);
    int npos;
    int rc = parse_line(&v, line, 0, &npos, NULL);
    CU_ASSERT_EQUAL(rc, DCM_ERR_USAGE);
    char want[512];
    snprintf(want, sizeof want, "dcm widgets: %s\n", message);
    if (strcmp(printed, want))
        printf("\n  '%s': printed '%s', expected '%s'\n", line, printed, want);
    CU_ASSERT_STRING_EQUAL(printed, want);
}

static void test_errors(void)
{
    /* missing argument: the option as typed */
    expect_error("a.txt --num", "--num needs a count of widgets");
    expect_error("a.txt -n", "-n needs a count of widgets");
    expect_error("--list", "--list needs a value");
    /* bad numbers: not a number, trailing junk, out of range, not finite */
    expect_error("--num 1x", "--num needs a count of widgets");
    expect_error("--num=101", "--num needs a count of widgets");
    expect_error("--num 0", "--num needs a count of widgets");
    expect_error("-n 2.5", "-n needs a count of widgets");
    expect_error("--prob 1", "--prob must be a probability between 0 and 1 (exclusive), not '1'");
    expect_error("--prob=nan", "--prob must be a probability between 0 and 1 (exclusive), not 'nan'");
    expect_error("--prob 0.5e", "--prob must be a probability between 0 and 1 (exclusive), not '0.5e'");
    /* refused values */
    expect_error("--str \"\"", "--str needs a name");
    expect_error("--str=", "--str needs a name");
    expect_error("--colour green", "--colour takes 'red' or 'blue'");
    /* unknown options, named with a pointer to the help */
    expect_error("a.txt --nope", "unknown option '--nope' (see dcm widgets --help)");
    expect_error("--nope=3", "unknown option '--nope=3' (see dcm widgets --help)");
    expect_error("-z", "unknown option '-z' (see dcm widgets --help)");
    expect_error("-fx", "unknown option '-fx' (see dcm widgets --help)");
    expect_error("--fla", "unknown option '--fla' (see dcm widgets --help)"); /* no abbreviations */
    /* a flag given a value */
    expect_error("--flag=1", "--flag takes no value");
    /* the first error stops the parse */
    expect_error("--nope --num x", "unknown option '--nope' (see dcm widgets --help)");
    /* quiet: the same status, nothing printed */
    vars v;
    memset(&v, 0, sizeof v);
    int npos;
    CU_ASSERT_EQUAL(parse_line(&v, "--nope", 1, &npos, NULL), DCM_ERR_USAGE);
    CU_ASSERT_STRING_EQUAL(printed, "");
    CU_ASSERT_EQUAL(parse_line(&v, "--help", 1, &npos, NULL), CLI_OPTIONS_HELP);
    CU_ASSERT_STRING_EQUAL(printed, "");
}

/* runs of white space as one space: the help wraps its paragraphs */
static void squeeze(const char *in, char *out, size_t size)
{
    size_t k = 0;
    int space = 0;
    for (; *in && k + 1 < size; in++) {
        if (*in == ' ' || *in == '\n') {
            space = 1;
            continue;
        }
        if (space && k > 0)
            out[k++] = ' ';
        space = 0;
        out[k++] = *in;
    }
    out[k] = 0;
}

static void test_help(void)
{
    vars v;
    memset(&v, 0, sizeof v);
    int npos;
    /* help is printed when reached, even after options and before errors */
    CU_ASSERT_EQUAL(parse_line(&v, "a.txt --num 5 --help --nope", 0, &npos, NULL), CLI_OPTIONS_HELP);
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "usage: dcm widgets FILE... [options]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "   or: dcm widgets --str S [options]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "Count widgets.\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "\nswitches:\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "\nvalues:\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "  -h, --help"));
    CU_ASSERT_PTR_NOT_NULL(strstr(printed, "example:\n  dcm widgets a.txt\n"));
    for (const char *p = printed; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        size_t len = strcspn(p, "\n");
        CU_ASSERT(len <= 79);
    }
    /* every entry of the table: its "-x, --name ARG" and its help text */
    char help[16384], text[1024];
    squeeze(printed, help, sizeof help);
    TABLE(v);
    int shown = 0;
    for (const cli_opt *o = options; o->type != CLI_OPT_END; o++) {
        if (o->type == CLI_OPT_GROUP)
            continue;
        char spec[128];
        if (o->short_name)
            snprintf(spec, sizeof spec, "-%c, --%s%s%s", o->short_name, o->long_name, o->argh ? " " : "",
                     o->argh ? o->argh : "");
        else
            snprintf(spec, sizeof spec, "--%s%s%s", o->long_name, o->argh ? " " : "", o->argh ? o->argh : "");
        squeeze(o->help, text, sizeof text);
        CU_ASSERT_PTR_NOT_NULL(strstr(help, spec));
        CU_ASSERT_PTR_NOT_NULL(strstr(help, text));
        shown++;
    }
    CU_ASSERT_EQUAL(shown, 8);
    /* --list-options: one a line, short and long */
    CU_ASSERT_EQUAL(parse_line(&v, "--list-options", 0, &npos, NULL), CLI_OPTIONS_HELP);
    CU_ASSERT_STRING_EQUAL(printed, "-f\n--flag\n--set-two\n--set-zero\n-n\n--num\n--prob\n-s\n--str\n-l\n"
                                    "--list\n--colour\n-h\n--help\n");
    /* a spec wider than the column goes on a line of its own */
    const cli_opt wide[] = {CLI_STRING(0, "a-very-long-option-name", &v.str, "SOME_FILE.tsv", "wide"),
                            CLI_FLAG(0, "x", &v.flag, "narrow"), CLI_END};
    const cli_command cmd = {"widgets", usage, NULL, NULL, wide, 0};
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    cli_options_help(&cmd, f);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(mem, "\noptions:\n      --a-very-long-option-name SOME_FILE.tsv\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(mem, "\n      --x       narrow\n"));
    free(mem);
}

int main(void)
{
    static const test_case cases[] = {
        {"every type of option, positional words, --, repeats", test_every_type},
        {"--x=1, --x 1, -x 1, -x1", test_value_spellings},
        {"missing argument, bad number, unknown option: message and exit 1", test_errors},
        {"--help shows every option of the table", test_help},
        {NULL, NULL}};
    return test_run("cli_options", cases);
}
