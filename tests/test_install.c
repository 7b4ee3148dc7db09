/* test_install.c — the installed library is one a C program can link.
 *
 * Runs `make install PREFIX=<tmp>` on this source tree, then, against the
 * installed tree only: the files and links are in place; libdcm.so exports
 * exactly the functions of the public header (all dcm_) and needs no
 * cairo; the header compiles as C++; MANUAL section 11's example, built
 * with `pkg-config --cflags --libs dcm`, gives the command's free energy
 * on the bundled attention design to 1e-9; a program using every accessor
 * reads the numbers and names of the command's result JSON; the static
 * archive links with `pkg-config --static`; DESTDIR stages and `make
 * uninstall` removes what install put there.
 *
 * The source tree is $DCM_SOURCE_DIR, else the one this test was built
 * from (TEST_SOURCE_DIR, set by the Makefile), so it runs from any
 * directory; $DCM_MAKE_ARGS (set by make test) is passed to its makes. Needs make, cc and pkg-config (scripts/setup.sh), and g++
 * for the C++ check (skipped with a message without it). */
#include "tests/test_util.h"

#ifndef TEST_SOURCE_DIR
#define TEST_SOURCE_DIR "."
#endif

static char src[2048];      /* the source tree */
static char tmp[2048];      /* everything this test writes */
static char prefix[2300];   /* tmp/prefix: the installed tree */
static char data[2300];     /* tmp/data: the attention design and its fits */
static int install_state;   /* 0 not tried, 1 installed, -1 failed */
static char out[1 << 16];

/* Sub-makes must not see the make that runs the tests (its jobserver). */
#define MAKE_ENV "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory"

static int file_exists(const char *dir, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Variables for the sub-makes (make test passes B and MPI: the install
 * must not rebuild the command in another flavour). */
static const char *make_args(void)
{
    const char *a = getenv("DCM_MAKE_ARGS");
    return a ? a : "";
}

/* The pkg-config query against the installed tree, e.g. "--cflags --libs". */
static void pkg_config(const char *what, char *buf, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH='%s/lib/pkgconfig' pkg-config %s dcm", prefix, what);
    if (test_shell(cmd, buf, len) != 0) {
        printf("\n  %s failed: %s", cmd, buf);
        buf[0] = 0;
    }
    buf[strcspn(buf, "\n")] = 0;
}

/* Install once into tmp/prefix and simulate the bundled design into
 * tmp/data (with the installed command); 1 when all went well. */
static int installed(void)
{
    if (install_state)
        return install_state > 0;
    install_state = -1;
    const char *env = getenv("DCM_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", env && *env ? env : TEST_SOURCE_DIR);
    if (!file_exists(src, "include/dcm/dcm.h") || !file_exists(src, "Makefile")) {
        printf("\n  %s is not the dcm source tree (set DCM_SOURCE_DIR)", src);
        return 0;
    }
    snprintf(tmp, sizeof tmp, "/tmp/dcm-install-XXXXXX");
    if (!mkdtemp(tmp))
        return 0;
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    snprintf(data, sizeof data, "%s/data", tmp);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, MAKE_ENV " -s -C '%s' install PREFIX='%s' %s", src, prefix, make_args());
    int rc = test_shell(cmd, out, sizeof out);
    if (rc != 0) {
        printf("\n  %s exited with %d:\n%s", cmd, rc, out);
        return 0;
    }
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && cd '%s/datasets/attention_design' && cp fwd.json events.tsv truth.json '%s'/ && "
             "'%s/bin/dcm' simulate '%s/fwd.json' --params '%s/truth.json' --snr 2 --seed 1 "
             "-o '%s/timeseries.tsv' && '%s/bin/dcm' estimate -q '%s/fwd.json' -o '%s/cli.json'",
             data, src, data, prefix, data, data, data, prefix, data, data);
    rc = test_shell(cmd, out, sizeof out);
    if (rc != 0) {
        printf("\n  preparing the data failed (%d):\n%s", rc, out);
        return 0;
    }
    install_state = 1;
    return 1;
}

static double cli_free_energy(void)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/cli.json", data);
    json_t *j = test_load_json(p);
    double F = j ? json_number_value(json_object_get(j, "free_energy")) : NAN;
    json_decref(j);
    return F;
}

/* Compile tmp/NAME.c (text given) with the installed tree's pkg-config
 * flags (pkg is the query, e.g. "--cflags --libs"; extra goes before it,
 * and when extra names the archive, -ldcm is taken off the query's flags);
 * 0 on success. */
static int build(const char *name, const char *text, const char *extra, const char *pkg)
{
    char path[4096], flags[4096], cmd[16384];
    snprintf(path, sizeof path, "%s/%s.c", tmp, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    pkg_config(pkg, flags, sizeof flags);
    char *l;
    if (strstr(extra, "libdcm.a") && (l = strstr(flags, "-ldcm ")))
        memmove(l, l + 6, strlen(l + 6) + 1);
    snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror -o '%s/%s' '%s' %s %s", tmp, name,
             path, extra, flags);
    int rc = test_shell(cmd, out, sizeof out);
    if (rc != 0)
        printf("\n  %s exited with %d:\n%s", cmd, rc, out);
    return rc;
}

/* Run tmp/NAME ARGS with the installed lib/ on the loader's path. */
static int run(const char *name, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH='%s/lib' '%s/%s' %s", prefix, tmp, name, args);
    return test_shell(cmd, out, sizeof out);
}

static void test_files_installed(void)
{
    CU_ASSERT_FATAL(installed());
    static const char *files[] = {"bin/dcm", "lib/libdcm.so", "lib/libdcm.so.0", "lib/libdcm.a",
                                  "include/dcm/dcm.h", "lib/pkgconfig/dcm.pc", NULL};
    for (const char **f = files; *f; f++)
        if (!file_exists(prefix, *f)) {
            printf("\n  %s/%s missing", prefix, *f);
            CU_FAIL("an installed file is missing");
        }
    /* libdcm.so -> libdcm.so.0 -> libdcm.so.0.x.y, the soname libdcm.so.0 */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s/lib' && readlink libdcm.so && readlink libdcm.so.0 && "
             "readelf -d libdcm.so | grep SONAME", prefix);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "libdcm.so.0\nlibdcm.so.0."));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "[libdcm.so.0]"));
    /* only public headers: those of include/dcm, none of the layers' */
    snprintf(cmd, sizeof cmd, "cd '%s/include/dcm' && for h in *; do test -f '%s/include/dcm/'\"$h\" "
             "|| echo \"not public: $h\"; done; ls | wc -l", prefix, src);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "not public"));
    CU_ASSERT(atoi(out) >= 1);
    /* the .pc names the prefix and the static dependencies */
    char pc[4096];
    pkg_config("--variable=prefix", pc, sizeof pc);
    CU_ASSERT_STRING_EQUAL(pc, prefix);
    pkg_config("--static --libs", pc, sizeof pc);
    CU_ASSERT_PTR_NOT_NULL(strstr(pc, "-ldcm"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pc, "-lgsl"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pc, "-lopenblas"));
    CU_ASSERT_PTR_NULL(strstr(pc, "cairo"));
}

/* Function names declared by the installed header (comments stripped by
 * the preprocessor), sorted, one per line. */
static void declared_functions(char *buf, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "echo '#include <dcm/dcm.h>' | cc -E -P -I'%s/include' -x c - | "
             "grep -o '\\bdcm_[a-z0-9_]*[[:space:]]*(' | tr -d ' \\t(' | sort -u", prefix);
    CU_ASSERT_EQUAL(test_shell(cmd, buf, len), 0);
}

static void test_exports_public_api_only(void)
{
    CU_ASSERT_FATAL(installed());
    char cmd[4096], declared[8192];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s/lib/libdcm.so' | awk '{print $NF}' | sort -u",
             prefix);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    int count = 0, bad = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        count++;
        if (strncmp(line, "dcm_", 4) != 0) {
            printf("\n  exported but not public: %s", line);
            bad++;
        }
    }
    printf("\n  libdcm.so exports %d symbols", count);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(count >= 6);
    /* exactly the header's functions: none missing, none extra */
    snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s/lib/libdcm.so' | awk '{print $NF}' | sort -u",
             prefix);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    declared_functions(declared, sizeof declared);
    if (strcmp(out, declared) != 0)
        printf("\n  exported:\n%s\n  declared in dcm/dcm.h:\n%s", out, declared);
    CU_ASSERT_STRING_EQUAL(out, declared);
    /* the layers stay inside: no command, engine, model or file symbols,
     * nor the library's internal dcm_ helpers */
    static const char *hidden[] = {"main", "cmd_estimate", "cli_parse", "io_spec_load", "vl_nlsi",
                                   "dcm_error_set", "dcm_predict", "dcm_error_from_vl", NULL};
    for (const char **h = hidden; *h; h++) {
        char pat[128];
        snprintf(pat, sizeof pat, "\n%s\n", *h);
        static char lines[sizeof out + 2];
        snprintf(lines, sizeof lines, "\n%s", out);
        CU_ASSERT_PTR_NULL(strstr(lines, pat));
    }
}

static void test_no_cairo_needed(void)
{
    CU_ASSERT_FATAL(installed());
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "readelf -d '%s/lib/libdcm.so' | grep NEEDED", prefix);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "libgsl"));
    CU_ASSERT_PTR_NULL(strstr(out, "cairo"));
    CU_ASSERT_PTR_NULL(strstr(out, "fontconfig"));
    CU_ASSERT_PTR_NULL(strstr(out, "libmpi"));
}

static void test_header_is_cxx_safe(void)
{
    CU_ASSERT_FATAL(installed());
    if (test_shell("command -v g++", out, sizeof out) != 0) {
        test_skip("g++ is not installed (scripts/setup.sh's build-essential brings it): the header's "
                  "C++ check did not run");
        return;
    }
    char flags[4096], cmd[8192];
    pkg_config("--cflags", flags, sizeof flags);
    /* a declaration the C++ compiler must resolve with C linkage */
    snprintf(cmd, sizeof cmd, "printf '#include <dcm/dcm.h>\\nint main() { dcm_error e; "
             "dcm_problem *P = nullptr; return dcm_problem_load(\"x\", &P, &e) + "
             "(dcm_version() != nullptr); }\\n' | g++ -std=c++11 -Wall -Wextra -Werror %s "
             "-fsyntax-only -x c++ -", flags);
    int rc = test_shell(cmd, out, sizeof out);
    if (rc != 0)
        printf("\n  %s:\n%s", cmd, out);
    CU_ASSERT_EQUAL(rc, 0);
}

/* The first ```c block of MANUAL.md's section 11. */
static int manual_example(char *buf, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "awk '/^## 11\\./ {s = 1; next} /^## / {s = 0} "
             "s && /^```c$/ && !done {c = 1; next} c && /^```$/ {c = 0; done = 1} c' '%s/MANUAL.md'",
             src);
    return test_shell(cmd, buf, len) == 0 && strstr(buf, "dcm_estimate") ? 0 : -1;
}

static void test_manual_example_matches_cli(void)
{
    CU_ASSERT_FATAL(installed());
    static char text[1 << 14];
    CU_ASSERT_EQUAL_FATAL(manual_example(text, sizeof text), 0);
    CU_ASSERT_EQUAL_FATAL(build("example", text, "", "--cflags --libs"), 0);
    char args[4096];
    snprintf(args, sizeof args, "'%s/fwd.json'", data);
    int rc = run("example", args);
    if (rc != 0)
        printf("\n  example exited with %d:\n%s", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    const char *line = strstr(out, "free energy: ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    double F = strtod(line + strlen("free energy: "), NULL), Fcli = cli_free_energy();
    printf("\n  free energy: linked program %.10f, dcm estimate %.10f, |dF| = %.3g", F, Fcli,
           fabs(F - Fcli));
    CU_ASSERT(isfinite(F) && F < 0);
    CU_ASSERT(fabs(F - Fcli) <= 1e-9);
    /* it was linked against the shared library */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "LD_LIBRARY_PATH='%s/lib' ldd '%s/example'", prefix, tmp);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "libdcm.so.0 => "));
    /* a missing spec: the error code of the command and a message naming it */
    rc = run("example", "/nonexistent/spec.json");
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "/nonexistent/spec.json"));
}

/* Uses every accessor; prints what the test compares with the command's
 * result JSON. */
static const char accessor_program[] =
    "#include <dcm/dcm.h>\n"
    "#include <stdio.h>\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    (void)argc;\n"
    "    dcm_error err;\n"
    "    dcm_problem *P = NULL;\n"
    "    dcm_result *R = NULL;\n"
    "    dcm_library_init();\n"
    "    if (dcm_problem_load(argv[1], &P, &err) || dcm_estimate(P, NULL, NULL, &R, &err)) {\n"
    "        fprintf(stderr, \"%s\\n\", err.msg);\n"
    "        return err.code;\n"
    "    }\n"
    "    printf(\"version %s\\n\", dcm_version());\n"
    "    printf(\"F %.17g\\n\", dcm_result_free_energy(R));\n"
    "    printf(\"sizes %d %d %d %d %d %d\\n\", dcm_problem_regions(P), dcm_problem_inputs(P),\n"
    "           dcm_problem_scans(P), dcm_problem_parameters(P), dcm_result_parameters(R),\n"
    "           dcm_result_regions(R));\n"
    "    for (int i = 0; i < dcm_problem_regions(P); i++)\n"
    "        printf(\"region %s %.17g\\n\", dcm_problem_region_name(P, i),\n"
    "               dcm_result_noise_log_precision(R, i));\n"
    "    for (int j = 0; j < dcm_problem_inputs(P); j++)\n"
    "        printf(\"input %s\\n\", dcm_problem_input_name(P, j));\n"
    "    char name[16];\n"
    "    for (int k = 0; k < dcm_result_parameters(R); k++) {\n"
    "        char whole[256];\n"
    "        int len = dcm_problem_parameter_name(P, k, name, sizeof name);\n"
    "        dcm_problem_parameter_name(P, k, whole, sizeof whole);\n"
    "        printf(\"p %d %.17g %.17g %.17g %.17g %.17g %.17g %d %s\\n\", k,\n"
    "               dcm_result_prior_mean(R, k), dcm_result_prior_sd(R, k),\n"
    "               dcm_result_posterior_mean(R, k), dcm_result_posterior_sd(R, k),\n"
    "               dcm_result_posterior_cov(R, k, 0), dcm_result_posterior_probability(R, k),\n"
    "               len, whole);\n"
    "    }\n"
    "    printf(\"fit %d %d %.17g %d\\n\", dcm_result_iterations(R), dcm_result_converged(R),\n"
    "           dcm_result_seconds(R), dcm_result_warning_count(R));\n"
    "    printf(\"out of range %d %g %d %d\\n\", dcm_problem_parameter_name(P, -1, name, sizeof name),\n"
    "           dcm_result_posterior_mean(R, dcm_result_parameters(R)),\n"
    "           dcm_problem_region_name(P, 99) == NULL, dcm_result_warning(R, -1) == NULL);\n"
    "    printf(\"save %d\\n\", dcm_result_save(R, P, argv[2], &err));\n"
    "    int rc = dcm_result_save(R, P, \"/nonexistent-dir/r.json\", &err);\n"
    "    printf(\"save-bad %d %s\\n\", rc, err.msg);\n"
    "    dcm_result_free(R);\n"
    "    dcm_problem_free(P);\n"
    "    return 0;\n"
    "}\n";

/* JSON value of parameter `name` in a result's block object (e.g.
 * "posterior_mean"), following the layout of the result file. */
static double block_value(json_t *blk, json_t *regions, json_t *inputs, const char *name)
{
    char a[64], b[64], c[64];
    size_t n = json_array_size(regions), m = json_array_size(inputs);
    int ia = -1, ib = -1, ic = -1;
    /* index of s in arr */
#define INDEX_OF(arr, s, k, cnt)                                                                   \
    for (size_t q = 0; q < cnt; q++)                                                               \
        if (!strcmp(json_string_value(json_array_get(arr, q)), s))                                 \
            k = (int)q;
    if (sscanf(name, "A:%63[^-]->%63s", a, b) == 2) {
        INDEX_OF(regions, a, ia, n) INDEX_OF(regions, b, ib, n)
        return json_number_value(json_array_get(json_array_get(json_object_get(blk, "A"), ib), ia));
    }
    if (sscanf(name, "B:%63[^:]:%63[^-]->%63s", c, a, b) == 3) {
        INDEX_OF(regions, a, ia, n) INDEX_OF(regions, b, ib, n)
        json_t *Bi = json_object_get(json_object_get(blk, "B"), c);
        return json_number_value(json_array_get(json_array_get(Bi, ib), ia));
    }
    if (sscanf(name, "C:%63[^-]->%63s", c, b) == 2) {
        INDEX_OF(inputs, c, ic, m) INDEX_OF(regions, b, ib, n)
        return json_number_value(json_array_get(json_array_get(json_object_get(blk, "C"), ib), ic));
    }
    if (sscanf(name, "transit:%63s", a) == 1) {
        INDEX_OF(regions, a, ia, n)
        return json_number_value(json_array_get(json_object_get(blk, "transit"), ia));
    }
#undef INDEX_OF
    json_t *v = json_object_get(blk, name);   /* decay, epsilon */
    if (json_is_array(v))
        v = json_array_get(v, 0);
    return v ? json_number_value(v) : NAN;
}

static void test_accessors_match_result_json(void)
{
    CU_ASSERT_FATAL(installed());
    CU_ASSERT_EQUAL_FATAL(build("accessors", accessor_program, "", "--cflags --libs"), 0);
    char args[4096];
    snprintf(args, sizeof args, "'%s/fwd.json' '%s/lib.json'", data, data);
    int rc = run("accessors", args);
    if (rc != 0)
        printf("\n  accessors exited with %d:\n%s", rc, out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/cli.json", data);
    json_t *cli = test_load_json(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
    json_t *regions = json_object_get(cli, "regions"), *inputs = json_object_get(cli, "inputs");
    json_t *pm = json_object_get(cli, "posterior_mean"), *vec = json_object_get(cli, "vector");
    json_t *cov = json_object_get(vec, "posterior_cov");
    int np = (int)json_array_size(json_object_get(vec, "posterior_mean"));
    CU_ASSERT_EQUAL(np, 50);   /* 3 regions, 3 inputs, bilinear */

    int n = -1, m = -1, v = -1, npP = -1, npR = -1, nR = -1, params = 0, names_ok = 0;
    int nregion = 0, ninput = 0, it = -1, conv = -1, nwarn = -1;
    double maxdiff = 0.0, secs = -1, F = NAN;
    char *save = NULL;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[256];
        int k, len;
        double pE, psd, Ep, sd, c0, Pp, x;
        if (sscanf(line, "sizes %d %d %d %d %d %d", &n, &m, &v, &npP, &npR, &nR) == 6)
            continue;
        if (sscanf(line, "F %lf", &x) == 1) {
            F = x;
            continue;
        }
        if (sscanf(line, "region %255s %lf", name, &x) == 2) {
            CU_ASSERT_STRING_EQUAL(name, json_string_value(json_array_get(regions, nregion)));
            double eh = json_number_value(json_array_get(json_object_get(cli, "noise_log_precision"),
                                                         nregion));
            maxdiff = fmax(maxdiff, fabs(x - eh));
            nregion++;
        } else if (sscanf(line, "input %255s", name) == 1) {
            CU_ASSERT_STRING_EQUAL(name, json_string_value(json_array_get(inputs, ninput)));
            ninput++;
        } else if (sscanf(line, "p %d %lf %lf %lf %lf %lf %lf %d %255s", &k, &pE, &psd, &Ep, &sd, &c0,
                          &Pp, &len, name) == 9) {
            /* the name finds the same number in the named blocks */
            double byname = block_value(pm, regions, inputs, name);
            if (fabs(byname - Ep) <= 1e-12)
                names_ok++;
            else
                printf("\n  %s: library %.17g, result JSON by name %.17g", name, Ep, byname);
            CU_ASSERT_EQUAL(len, (int)strlen(name));
            json_t *row = json_array_get(cov, (size_t)k);
            maxdiff = fmax(maxdiff, fabs(sd - sqrt(json_number_value(json_array_get(row, (size_t)k)))));
            maxdiff = fmax(maxdiff, fabs(c0 - json_number_value(json_array_get(row, 0))));
            maxdiff = fmax(maxdiff, fabs(pE - json_number_value(json_array_get(
                                                  json_object_get(vec, "prior_mean"), (size_t)k))));
            double pv = json_number_value(json_array_get(json_object_get(vec, "prior_var"), (size_t)k));
            maxdiff = fmax(maxdiff, fabs(psd - sqrt(pv)));
            CU_ASSERT(pv > 0 ? (Pp >= 0 && Pp <= 1) : isnan(Pp));
            if (k == 1)
                CU_ASSERT_STRING_EQUAL(name, "A:V1->V5");
            if (k == np - 1)
                CU_ASSERT_STRING_EQUAL(name, "epsilon");
            params++;
        } else if (sscanf(line, "fit %d %d %lf %d", &it, &conv, &secs, &nwarn) == 4) {
            continue;
        } else if (!strncmp(line, "out of range ", 13)) {
            CU_ASSERT_STRING_EQUAL(line, "out of range -1 nan 1 1");
        } else if (!strncmp(line, "save", 4)) {
            save = line;
            if (!strncmp(line, "save-bad ", 9)) {
                CU_ASSERT(atoi(line + 9) == 4);   /* DCM_ERR_SYSTEM */
                CU_ASSERT_PTR_NOT_NULL(strstr(line, "/nonexistent-dir/r.json"));
            } else {
                CU_ASSERT_STRING_EQUAL(line, "save 0");
            }
        }
    }
    CU_ASSERT_PTR_NOT_NULL(save);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(m, 3);
    CU_ASSERT_EQUAL(v, 360);
    CU_ASSERT_EQUAL(npP, np);
    CU_ASSERT_EQUAL(npR, np);
    CU_ASSERT_EQUAL(nR, 3);
    CU_ASSERT_EQUAL(nregion, 3);
    CU_ASSERT_EQUAL(ninput, 3);
    CU_ASSERT_EQUAL(params, np);
    CU_ASSERT_EQUAL(names_ok, np);
    CU_ASSERT_EQUAL(it, (int)json_integer_value(json_object_get(cli, "iterations")));
    CU_ASSERT_EQUAL(conv, json_is_true(json_object_get(cli, "converged")) ? 1 : 0);
    CU_ASSERT_EQUAL(nwarn, (int)json_array_size(json_object_get(cli, "warnings")));
    CU_ASSERT(secs > 0 && secs < 60);
    double Fcli = json_number_value(json_object_get(cli, "free_energy"));
    printf("\n  free energy to 17 digits: linked program %.17g, dcm estimate %.17g, |dF| = %.3g", F,
           Fcli, fabs(F - Fcli));
    CU_ASSERT(fabs(F - Fcli) <= 1e-9);
    printf("\n  accessors vs the command's result JSON: max |difference| %.3g", maxdiff);
    CU_ASSERT(maxdiff <= 1e-9);

    /* dcm_result_save wrote the command's file: same free energy and posterior */
    snprintf(p, sizeof p, "%s/lib.json", data);
    json_t *lib = test_load_json(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lib);
    CU_ASSERT(fabs(json_number_value(json_object_get(lib, "free_energy")) -
                   json_number_value(json_object_get(cli, "free_energy"))) <= 1e-9);
    json_t *a = json_object_get(json_object_get(lib, "vector"), "posterior_mean");
    json_t *b = json_object_get(vec, "posterior_mean");
    CU_ASSERT_EQUAL((int)json_array_size(a), np);
    for (int k = 0; k < np; k++)
        CU_ASSERT(fabs(json_number_value(json_array_get(a, k)) -
                       json_number_value(json_array_get(b, k))) <= 1e-9);
    CU_ASSERT(test_no_temp_files(data));
    json_decref(lib);
    json_decref(cli);
}

static void test_static_archive_links(void)
{
    CU_ASSERT_FATAL(installed());
    static char text[1 << 14];
    CU_ASSERT_EQUAL_FATAL(manual_example(text, sizeof text), 0);
    /* the archive itself, then the static dependencies dcm.pc lists */
    char archive[4096];
    snprintf(archive, sizeof archive, "'%s/lib/libdcm.a'", prefix);
    CU_ASSERT_EQUAL_FATAL(build("example_static", text, archive, "--cflags --static --libs-only-l"), 0);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "ldd '%s/example_static'; '%s/example_static' '%s/fwd.json'", tmp, tmp, data);
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NULL(strstr(out, "libdcm.so"));
    CU_ASSERT_PTR_NULL(strstr(out, "cairo"));
    const char *line = strstr(out, "free energy: ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    CU_ASSERT(fabs(strtod(line + 13, NULL) - cli_free_energy()) <= 1e-9);
}

static void test_destdir_and_uninstall(void)
{
    CU_ASSERT_FATAL(installed());
    char stage[4096], cmd[8192];
    snprintf(stage, sizeof stage, "%s/stage", tmp);
    snprintf(cmd, sizeof cmd, MAKE_ENV " -s -C '%s' install DESTDIR='%s' PREFIX=/opt/dcm %s", src, stage,
             make_args());
    CU_ASSERT_EQUAL_FATAL(test_shell(cmd, out, sizeof out), 0);
    char root[4300];
    snprintf(root, sizeof root, "%s/opt/dcm", stage);
    CU_ASSERT(file_exists(root, "bin/dcm"));
    CU_ASSERT(file_exists(root, "lib/libdcm.so"));
    CU_ASSERT(file_exists(root, "include/dcm/dcm.h"));
    /* the .pc names where the files will be, not the staging folder */
    snprintf(cmd, sizeof cmd, "grep '^prefix=' '%s/lib/pkgconfig/dcm.pc'", root);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "prefix=/opt/dcm\n");
    /* uninstall leaves no file behind */
    snprintf(cmd, sizeof cmd, MAKE_ENV " -s -C '%s' uninstall DESTDIR='%s' PREFIX=/opt/dcm %s && "
             "find '%s' \\( -type f -o -type l \\) | wc -l", src, stage, make_args(), stage);
    CU_ASSERT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_EQUAL(atoi(out), 0);
    /* a relative PREFIX would write a .pc that points nowhere: refused */
    snprintf(cmd, sizeof cmd, MAKE_ENV " -s -C '%s' install DESTDIR='%s' PREFIX=relative/dir %s", src, stage,
             make_args());
    CU_ASSERT_NOT_EQUAL(test_shell(cmd, out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "PREFIX must be an absolute path"));
    CU_ASSERT_FALSE(file_exists(stage, "relative"));
}

int main(void)
{
    static const test_case cases[] = {
        {"make install puts bin, lib, headers and dcm.pc in place", test_files_installed},
        {"libdcm.so exports exactly the public header's functions", test_exports_public_api_only},
        {"libdcm.so does not need cairo", test_no_cairo_needed},
        {"the public header compiles as C++", test_header_is_cxx_safe},
        {"MANUAL 11's example, built with pkg-config, gives the command's F", test_manual_example_matches_cli},
        {"every accessor agrees with the command's result JSON", test_accessors_match_result_json},
        {"the static archive links with pkg-config --static", test_static_archive_links},
        {"DESTDIR stages the install and uninstall removes it", test_destdir_and_uninstall},
        {NULL, NULL}};
    int rc = test_run("install", cases);
    if (tmp[0] && rc == 0)
        test_remove_dir(tmp);
    else if (tmp[0])
        printf("kept %s for inspection\n", tmp);
    return rc;
}
