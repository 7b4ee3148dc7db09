/* bench_estimate.c — seconds per estimate for each spec given (median and
 * minimum over the repetitions), the iterations taken, F, and the peak
 * resident memory of the process (run one spec per process for a
 * per-model figure). "cpu s" is the median processor time of one fit (the
 * process's, single-threaded BLAS): on a shared machine the wall time
 * also counts the other processes' turns.
 *   dcm-bench [--reps R] [--threads T] SPEC...   (T: estimate -j, default 1)
 *   dcm-bench --csd-sim N T TR SEED OUT.tsv   resting-state BOLD of the
 *       N-region test network (bench/bench_csd_sim.h) written as a TSV */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_csd_sim.h"
#include "dcm/dcm_api.h"
#include "io/io_spec.h"
#include "vl/vl_linalg.h"

extern void openblas_set_num_threads(int);

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int csd_sim(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: dcm-bench --csd-sim N T TR SEED OUT.tsv\n");
        return 1;
    }
    int n = atoi(argv[2]), T = atoi(argv[3]);
    double TR = atof(argv[4]);
    unsigned long long seed = strtoull(argv[5], NULL, 10);
    if (n < 1 || n > 64 || T < 16 || !(TR > 0)) {
        fprintf(stderr, "dcm-bench --csd-sim: need 1 <= N <= 64, T >= 16, TR > 0\n");
        return 1;
    }
    double *A = malloc(sizeof(double) * n * n), *Y = malloc(sizeof(double) * n * T);
    FILE *f = NULL;
    int rc = 4;
    if (!A || !Y)
        goto done;
    bench_csd_sim_network(n, A);
    if (bench_csd_sim(n, T, TR, A, NULL, seed, Y)) {
        fprintf(stderr, "dcm-bench --csd-sim: simulation failed\n");
        rc = 3;
        goto done;
    }
    if (!(f = fopen(argv[6], "w"))) {
        perror(argv[6]);
        goto done;
    }
    for (int i = 0; i < n; i++)
        fprintf(f, "R%d%c", i + 1, i + 1 < n ? '\t' : '\n');
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            fprintf(f, "%.17g%c", Y[t + (size_t)T * i], i + 1 < n ? '\t' : '\n');
    rc = fclose(f) ? 4 : 0;
done:
    free(A);
    free(Y);
    return rc;
}

int main(int argc, char **argv)
{
    vl_init();
    openblas_set_num_threads(1);
    if (argc > 1 && !strcmp(argv[1], "--csd-sim"))
        return csd_sim(argc, argv);
    int reps = 5, first = 1, threads = 1;
    while (argc > first + 1 && (!strcmp(argv[first], "--reps") || !strcmp(argv[first], "--threads"))) {
        int *dst = !strcmp(argv[first], "--reps") ? &reps : &threads;
        *dst = atoi(argv[first + 1]);
        if (*dst < 1 || *dst > 64) {
            fprintf(stderr, "dcm-bench: %s takes 1..64\n", argv[first]);
            return 1;
        }
        first += 2;
    }
    for (int i = first; i < argc; i++) {
        dcm_error err = {0, ""};
        dcm_problem *P = NULL;
        if (io_spec_load(argv[i], &P, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return err.code;
        }
        P->threads = threads;
        double t[64], c[64];
        int iters = 0;
        double F = 0;
        for (int r = 0; r < reps; r++) {
            struct timespec a, b, ca, cb;
            dcm_result *R = NULL;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
            clock_gettime(CLOCK_MONOTONIC, &a);
            if (dcm_estimate(P, NULL, NULL, &R, &err)) {
                fprintf(stderr, "bench: %s\n", err.msg);
                dcm_problem_free(P);
                return err.code;
            }
            clock_gettime(CLOCK_MONOTONIC, &b);
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
            t[r] = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
            c[r] = (cb.tv_sec - ca.tv_sec) + 1e-9 * (cb.tv_nsec - ca.tv_nsec);
            iters = R->iterations;
            F = R->F;
            dcm_result_free(R);
        }
        qsort(t, reps, sizeof(double), cmp);
        qsort(c, reps, sizeof(double), cmp);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("%-26s %5d %9.3f %9.3f %9.3f %10d %14.4f %8.1f\n", argv[i], reps, t[reps / 2], t[0],
               c[reps / 2], iters, F, ru.ru_maxrss / 1024.0);
        dcm_problem_free(P);
    }
    return 0;
}
