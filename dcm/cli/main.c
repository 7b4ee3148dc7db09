/* main.c — the `dcm` command: dispatch to one subcommand per file. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/cli/cli.h"


typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"estimate", cmd_estimate, "fit a DCM to data (variational Laplace, as SPM12)"},
    {"simulate", cmd_simulate, "generate BOLD data from known parameters"},
    {"compare", cmd_compare, "compare models: fixed and random effects, families"},
    {"reduce", cmd_reduce, "Bayesian model reduction: switch parameters off without refitting"},
    {"average", cmd_average, "Bayesian model averaging of parameters"},
    {"peb", cmd_peb, "group analysis: parametric empirical Bayes over subjects"},
    {"loo", cmd_loo, "leave-one-out cross-validation of a PEB group model (spm_dcm_loo)"},
    {"batch", cmd_batch, "estimate every subject x model of a manifest in parallel"},
    {"extract", cmd_extract, "regional time series from 4D NIfTI images"},
    {"bids", cmd_bids, "BIDS App: fit DCMs over fMRIPrep derivatives, then group BMS and PEB"},
    {"report", cmd_report, "self-contained HTML report of results"},
    {"review", cmd_review, "terminal summary of a result"},
    {"check", cmd_check, "fit diagnostics and warnings of results (SPM's thresholds)"},
    {"evidence", cmd_evidence, "sampled log evidence of a result, to check its free energy F"},
    {NULL, NULL, NULL}};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dcm COMMAND [ARGS]\n"
            "\n"
            "Dynamic causal modelling for fMRI, with SPM12's model and numbers.\n"
            "\n"
            "commands:\n");
    for (const command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f,
            "\n"
            "'dcm COMMAND --help' shows a command's options and an example.\n"
            "exit status: 0 success, 1 usage error, 2 input error, 3 numerical failure,\n"
            "             4 system error (cannot write, out of memory)\n");
}

/* SIGINT/SIGTERM/SIGHUP/SIGQUIT end the process on the main thread only.
 * io_atomic holds these signals back in the thread that puts a file in
 * place (link + rename), and dcm_batch_run holds them in its pool until
 * no worker is doing so; but a signal sent to the process may be handed
 * to any thread that does not block it — OpenBLAS starts its own before
 * main — and would end the process in that instant, leaving a temporary
 * name behind. Forwarded to the main thread, it waits until the main
 * thread lets it through, then acts as it would have (default action).
 * The thread id is written once, before any handler can run. */
static pthread_t main_thread;

static void on_fatal_signal(int sig)
{
    if (!pthread_equal(pthread_self(), main_thread)) {
        pthread_kill(main_thread, sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);   /* pending until this handler returns: then the default action */
}

static void install_signal_forwarding(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    main_thread = pthread_self();
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN)
            continue;   /* ignored (nohup, a background job): leave it so */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

int main(int argc, char **argv)
{
    install_signal_forwarding();
    dcm_library_init();   /* GSL handler off, one OpenBLAS thread */
    if (argc < 2) {
        usage(stderr);
        return DCM_ERR_USAGE;
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        if (argc > 2) {
            for (const command *c = commands; c->name; c++)
                if (strcmp(argv[2], c->name) == 0) {
                    char *args[] = {argv[2], "--help", NULL};
                    return c->fn(2, args);
                }
        }
        usage(stdout);
        return DCM_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dcm %s\n", dcm_version());
        return DCM_OK;
    }
    for (const command *c = commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "dcm: '%s' is not a command\n\n", argv[1]);
    usage(stderr);
    return DCM_ERR_USAGE;
}
