/* bench_estimate.c — seconds per estimate for each spec given, the
 * iterations taken, and the peak resident memory of the process. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "dcm/dcm_api.h"
#include "io/io_spec.h"
#include "vl/vl_linalg.h"

extern void openblas_set_num_threads(int);

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    vl_init();
    openblas_set_num_threads(1);
    const int reps = 5;
    printf("%-28s %10s %10s %12s %16s\n", "model", "median s", "min s", "iterations", "F");
    for (int i = 1; i < argc; i++) {
        dcm_error err = {0, ""};
        dcm_problem *P = NULL;
        if (io_spec_load(argv[i], &P, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return err.code;
        }
        double t[16];
        int iters = 0;
        double F = 0;
        for (int r = 0; r < reps; r++) {
            struct timespec a, b;
            dcm_result *R = NULL;
            clock_gettime(CLOCK_MONOTONIC, &a);
            if (dcm_estimate(P, NULL, NULL, &R, &err)) {
                fprintf(stderr, "bench: %s\n", err.msg);
                dcm_problem_free(P);
                return err.code;
            }
            clock_gettime(CLOCK_MONOTONIC, &b);
            t[r] = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
            iters = R->iterations;
            F = R->F;
            dcm_result_free(R);
        }
        qsort(t, reps, sizeof(double), cmp);
        printf("%-28s %10.3f %10.3f %12d %16.4f\n", argv[i], t[reps / 2], t[0], iters, F);
        dcm_problem_free(P);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak resident memory: %.1f MB\n", ru.ru_maxrss / 1024.0);
    return 0;
}
