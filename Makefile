# dcm — dynamic causal modelling for fMRI.
#   make            build bin/dcm and lib/libdcm.a
#   make setup      install the Debian packages we need (prints the apt line when not root)
#   make demo       set up, build, simulate the bundled attention-design data, fit, compare
#   make test       build the tests with AddressSanitizer + UBSan and run them
#   make bench      time the fwd/bwd attention models (needs ../shared)
#   make valgrind   run `dcm estimate` on the demo under valgrind's leak checker
#   make bench-group time `dcm batch` on 40 simulated subjects x 4 models, -j 1 vs -j 2
#   make fuzz       libFuzzer harnesses, FUZZ_TIME s each (clang + libclang-rt-14-dev; see the fuzz section)
#   make MPI=1      bin/dcm built with mpicc: `mpirun -np K bin/dcm batch ...` (also: make bin/dcm-mpi)

CC      ?= cc
B       ?= build
OPT     ?= -O2
WARN    = -Wall -Wextra -Werror
STD     = -std=c11 -D_POSIX_C_SOURCE=200809L
INCS    = -I. -Iinclude -I/usr/include/nifti -I/usr/include/cairo
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(STD) $(WARN) $(INCS) $(CFLAGS)
# MPI=1: bin/dcm is built with mpicc and -DDCM_WITH_MPI so that `mpirun -np K
# bin/dcm batch ...` spreads a batch over K ranks. Only dcm/cli/cmd_batch.c
# differs between the two flavours; a stamp file recompiles it (and relinks)
# when the flavour changes. bin/dcm-mpi is the MPI flavour whatever MPI= says.
MPICC  ?= mpicc
HAVE_MPICC := $(shell command -v $(MPICC) 2>/dev/null)
ifeq ($(MPI),1)
ifeq ($(HAVE_MPICC),)
$(error MPI=1 needs $(MPICC): run scripts/setup.sh (it installs libopenmpi-dev openmpi-bin))
endif
CC     := $(MPICC)
ALL_CFLAGS += -DDCM_WITH_MPI
BATCH_FLAVOUR = mpi
else
BATCH_FLAVOUR = plain
endif
# GSL is linked against OpenBLAS rather than its reference CBLAS: -lopenblas
# is named on the link line, so its cblas_* symbols come before libgslcblas's.
LDLIBS  = -ljansson -lmatio -lnifti2 -lznz -lz -lfftw3 -lgsl -lopenblas -lcairo -lfontconfig -lm -lpthread

# The layers (docs/ARCHITECTURE.md): the library (core, engine, models,
# files, API) is lib/libdcm.a; reporting (cairo) and the command line are
# archives of their own that only bin/dcm and the tests link.
LIB_SRC = $(wildcard dcm/core/*.c vl/*.c models/*.c io/*.c dcm/*.c)
REPORT_SRC = $(wildcard dcm/report/*.c)
CLI_SRC = $(filter-out dcm/cli/main.c,$(wildcard dcm/cli/*.c))
ALL_SRC = $(LIB_SRC) $(REPORT_SRC) $(CLI_SRC)
TEST_SRC = $(wildcard tests/test_*.c)
# headers of the library (fuzz/fuzz_targets.h is the tests' and harnesses' only)
LIB_HDR = $(filter-out fuzz/%,$(wildcard */*.h */*/*.h include/dcm/*.h))

REL_OBJ = $(LIB_SRC:%.c=$(B)/rel/%.o)
REL_CLI_OBJ = $(REPORT_SRC:%.c=$(B)/rel/%.o) $(CLI_SRC:%.c=$(B)/rel/%.o)
SAN_OBJ = $(ALL_SRC:%.c=$(B)/san/%.o)
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TEST_BINS = $(TEST_SRC:tests/%.c=$(B)/san/tests/%)

.PHONY: all setup demo test bench bench-group valgrind clean check-deps
all: bin/dcm lib/libdcm.a

setup:
	@sh scripts/setup.sh

$(B)/rel/%.o: %.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/san/%.o: %.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -c $< -o $@

lib/libdcm.a: $(REL_OBJ)
	@mkdir -p lib
	rm -f $@
	ar rcs $@ $^

$(B)/rel/libdcm_cli.a: $(REL_CLI_OBJ)
	rm -f $@
	ar rcs $@ $^

# the sanitized build: library, report and command line in one archive
$(B)/san/libdcm.a: $(SAN_OBJ)
	rm -f $@
	ar rcs $@ $^

$(B)/rel/dcm/cli/cmd_batch.o: $(B)/rel/.batch-$(BATCH_FLAVOUR)
$(B)/rel/.batch-$(BATCH_FLAVOUR):
	@mkdir -p $(dir $@)
	@rm -f $(B)/rel/.batch-*
	@touch $@

$(B)/mpi/dcm/cli/cmd_batch.o: dcm/cli/cmd_batch.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	@echo "  MPICC   $<"
	@$(MPICC) $(STD) $(WARN) $(INCS) $(CFLAGS) -DDCM_WITH_MPI -c $< -o $@

bin/dcm-mpi: $(B)/mpi/dcm/cli/cmd_batch.o $(B)/rel/dcm/cli/main.o $(filter-out $(B)/rel/dcm/cli/cmd_batch.o,$(REL_CLI_OBJ)) lib/libdcm.a
	@mkdir -p bin
	$(MPICC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bin/dcm: $(B)/rel/dcm/cli/main.o $(B)/rel/libdcm_cli.a lib/libdcm.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/san/bin/dcm: $(B)/san/dcm/cli/main.o $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/san/tests/%: tests/%.c tests/test_util.h $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -o $@ $< $(B)/san/libdcm.a $(LDLIBS) -lcunit

# The allocation-failure test wraps the library's malloc/calloc/realloc/
# strdup (libc's strdup allocates inside libc, out of --wrap's reach) to
# fail the Nth call; the counter lives in the test program.
$(B)/san/tests/test_alloc_fail: tests/test_alloc_fail.c tests/test_util.h fuzz/fuzz_targets.h $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -o $@ $< $(B)/san/libdcm.a $(LDLIBS) -lcunit \
	    -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup

# Tests run the sanitized library and CLI; each prints CUnit's summary and
# the runner adds one closing line "tests: N passed, N failed, N skipped".
test: $(TEST_BINS) $(B)/san/bin/dcm bin/dcm $(if $(HAVE_MPICC),bin/dcm-mpi)
	@DCM_BIN=$(CURDIR)/$(B)/san/bin/dcm DCM_RELEASE_BIN=$(CURDIR)/bin/dcm DCM_MPI_BIN=$(CURDIR)/bin/dcm-mpi sh scripts/run_tests.sh $(TEST_BINS)

demo: setup all
	@sh scripts/demo.sh

bin/dcm-bench: $(B)/rel/bench/bench_estimate.o lib/libdcm.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: all bin/dcm-bench
	@sh scripts/bench.sh

bench-group: all
	@sh scripts/bench_group.sh

valgrind: all
	@sh scripts/valgrind.sh

clean:
	rm -rf $(B) bin lib demo_out

# ---- fuzzing: `make fuzz` (clang's libFuzzer; `make test` does not need clang) ----
# Harnesses in fuzz/ run FUZZ_TIME seconds each, starting from
# fuzz/seeds/TARGET: the NIfTI header path, the TSV reader, the JSON spec
# reader, `extract` on a tiny generated image + atlas (eigenvariate,
# LAPACK), the result-JSON loaders (compare/average/peb/reduce/report),
# SPM's .mat reader, the batch manifest and the PEB design (through
# `dcm peb` on a two-subject batch folder, so PEB's numerics run). A crash
# stops the run and leaves its input as $(B)/fuzz/crash-TARGET-*: fix it
# and keep the input in fuzz/regressions/ (named TARGET-*), which
# tests/test_fuzz_regressions.c replays under `make test`.
# The whole library is compiled again with clang's instrumentation into
# $(B)/fuzz/obj (warnings not fatal there: clang's set differs from gcc's).
# Debian 12: apt-get install -y clang libclang-rt-14-dev (libFuzzer's runtime).
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_SAN   = -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJ   = $(ALL_SRC:%.c=$(B)/fuzz/obj/%.o)
FUZZ_NAMES = nifti tsv spec extract result mat manifest design
FUZZ_NEED  = make fuzz needs clang with libFuzzer: apt-get install -y clang libclang-rt-14-dev

.PHONY: fuzz fuzz-build
$(B)/fuzz/obj/%.o: %.c $(LIB_HDR)
	@command -v $(FUZZ_CC) >/dev/null || { echo "$(FUZZ_NEED)" >&2; exit 1; }
	@mkdir -p $(dir $@)
	@echo "  CC fuzz $<"
	@$(FUZZ_CC) $(STD) -Wall -Wextra $(INCS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_targets.h $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(STD) $(INCS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS) || \
	    { echo "$(FUZZ_NEED)" >&2; exit 1; }

fuzz-build: $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

$(B)/san/tests/test_fuzz_regressions: fuzz/fuzz_targets.h

# -close_fd_mask=3: the commands' own messages are not wanted in the log
# (libFuzzer keeps a copy of stderr for its and the sanitizers' reports).
fuzz: fuzz-build
	@for t in $(FUZZ_NAMES); do \
	    mkdir -p $(B)/fuzz/corpus-$$t; \
	    echo "fuzz: $$t for $(FUZZ_TIME) s"; \
	    $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_TIME) -rss_limit_mb=2048 -max_len=65536 \
	        -timeout=10 -close_fd_mask=3 -print_final_stats=1 -artifact_prefix=$(B)/fuzz/crash-$$t- \
	        $(B)/fuzz/corpus-$$t fuzz/seeds/$$t 2>$(B)/fuzz/$$t.log || \
	        { tail -n 60 $(B)/fuzz/$$t.log; echo "fuzz: $$t found a crash (see $(B)/fuzz/crash-$$t-*)"; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' $(B)/fuzz/$$t.log; \
	done
