/* test_counts.c — the test runner's closing line is honest: a test that
 * skips (no ../shared) is counted as skipped, never as passed.
 *
 * It runs scripts/run_tests.sh on the model tests (fast; five of them
 * need SPM's reference files) twice: with DCM_SHARED pointing at an empty
 * folder, and as configured. */
#include "tests/test_util.h"

/* Runs the runner on the model tests with DCM_SHARED=shared; fills the
 * numbers of its closing line. Returns 0 when that line was found. */
static int run_counts(const char *shared, int *passed, int *failed, int *skipped)
{
    const char *bin = "build/san/tests/test_models";
    if (access(bin, X_OK) != 0)
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "DCM_SHARED='%s' sh scripts/run_tests.sh %s 2>&1 | tail -n 3", shared,
             bin);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    int found = -1;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "tests: %d passed, %d failed, %d skipped", passed, failed, skipped) == 3)
            found = 0;
    pclose(p);
    return found;
}

static void test_skipped_are_not_passed(void)
{
    char empty[] = "/tmp/dcm-counts-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(empty) != NULL);
    int p0 = -1, f0 = -1, s0 = -1;
    CU_ASSERT_FATAL(run_counts(empty, &p0, &f0, &s0) == 0);
    rmdir(empty);
    /* test_models has six tests; five read SPM's reference files */
    CU_ASSERT_EQUAL(f0, 0);
    CU_ASSERT_EQUAL(s0, 5);
    CU_ASSERT_EQUAL(p0, 1);

    char ref[4096];
    if (!test_shared_path("reference/attention/spm_attention_fwd.json", ref, sizeof ref))
        return;
    int p1 = -1, f1 = -1, s1 = -1;
    CU_ASSERT_FATAL(run_counts(test_shared_dir(), &p1, &f1, &s1) == 0);
    CU_ASSERT_EQUAL(f1, 0);
    CU_ASSERT_EQUAL(s1, 0);
    CU_ASSERT_EQUAL(p1, 6);
}

int main(void)
{
    static const test_case cases[] = {
        {"the runner counts skipped tests as skipped, not passed", test_skipped_are_not_passed},
        {NULL, NULL}};
    return test_run("counts", cases);
}
