# dcm — dynamic causal modelling for fMRI.
#   make            build bin/dcm, lib/libdcm.a and lib/libdcm.so (the library only)
#   make install    bin/dcm, lib/libdcm.{so,a}, include/dcm/*.h, lib/pkgconfig/dcm.pc
#                   under PREFIX (default /usr/local; DESTDIR is honoured); make uninstall
#   make setup      install the Debian packages we need (prints the apt line when not root)
#   make demo       set up, build, simulate the bundled attention-design data, fit, compare
#   make test       build the tests with AddressSanitizer + UBSan and run them (and the Python package's)
#   make test-python the Python package (python/) in a venv under build/, and its pytest tests
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
# LIB_LDLIBS is what the library needs (libdcm.so's NEEDED, dcm.pc's
# Libs.private). cairo and fontconfig are not linked either:
# dcm/report/report_cairo.c loads them when the first figure is drawn
# (report_cairo.h says why); the tests that read PNGs link them (TEST_LDLIBS).
# matio is not linked: io/io_matio.c loads it on first use (dlopen), so a
# process that never touches a .mat file does not map HDF5 and its network
# and crypto libraries (io_matio.h says why). Its soname is the one found here.
MATIO_SONAME := $(shell objdump -p "$$($(CC) -print-file-name=libmatio.so)" 2>/dev/null | awk '/SONAME/ {print $$2}')
MATIO_DEF = -DIO_MATIO_SONAME='"$(or $(MATIO_SONAME),libmatio.so.11)"'
LIB_LDLIBS = -ljansson -lnifti2 -lznz -lz -lfftw3 -lgsl -lopenblas -lm -lpthread -ldl
LDLIBS  = $(LIB_LDLIBS)
# bin/dcm links Debian's threaded OpenBLAS archive when it is there (package
# libopenblas-pthread-dev, which libopenblas-dev pulls in): resolving the
# shared library's ~12,000 symbol relocations and faulting in its pages cost
# ~4 ms at every start (~5 % of an attention fit as a process, measured on
# the development machine). The same code, the same numbers; the shared
# library, the tests and the MPI flavour keep -lopenblas. The threaded
# variant only: the serial one is not safe for concurrent calls (batch).
OPENBLAS_A := $(wildcard /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-pthread/libopenblas.a)
CLI_LDLIBS = $(if $(OPENBLAS_A),$(subst -lopenblas,$(OPENBLAS_A) -lgfortran,$(LIB_LDLIBS)),$(LIB_LDLIBS))
TEST_LDLIBS = $(LDLIBS) -lcairo -lfontconfig -lmatio -lcunit
# only io_matio.c needs the soname
$(B)/rel/io/io_matio.o $(B)/san/io/io_matio.o $(B)/fuzz/obj/io/io_matio.o: INCS += $(MATIO_DEF)

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

.PHONY: all setup demo test test-python bench bench-group valgrind clean check-deps install uninstall
all: bin/dcm lib/libdcm.a lib/libdcm.so

setup:
	@sh scripts/setup.sh

# -fPIC: the same objects make lib/libdcm.a, lib/libdcm.so and bin/dcm, so
# the shared library computes exactly what the command does (and the
# archive can go into a shared object of the caller's). The stamp rebuilds
# objects of a tree built before -fPIC was used.
$(B)/rel/.fpic:
	@mkdir -p $(dir $@)
	@touch $@

$(B)/rel/%.o: %.c $(LIB_HDR) $(B)/rel/.fpic
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(B)/san/%.o: %.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -c $< -o $@

lib/libdcm.a: $(REL_OBJ)
	@mkdir -p lib
	rm -f $@
	ar rcs $@ $^

# ---- the shared library ----
# lib/libdcm.so.VERSION, soname libdcm.so.MAJOR, with the two usual links.
# It exports exactly the functions the public headers declare: the version
# script is generated from include/dcm/*.h (preprocessed, so comments do not
# count), everything else (io_, vl_, model_, internal dcm_ helpers) is
# local. The headers are the one list of what is public; a function added to
# them is exported without a second list to keep in step.
VERSION := $(shell sed -n 's/^\#define DCM_VERSION_STRING "\([0-9.]*\)".*/\1/p' dcm/dcm_api.h)
SO_MAJOR = $(firstword $(subst ., ,$(VERSION)))
SO_NAME = libdcm.so.$(SO_MAJOR)
SO_FILE = libdcm.so.$(VERSION)
PUBLIC_HDR = $(wildcard include/dcm/*.h)

$(B)/rel/libdcm.map: $(PUBLIC_HDR)
	@mkdir -p $(dir $@)
	@{ echo '{'; echo '  global:'; \
	   $(CC) -E -P -Iinclude include/dcm/dcm.h | grep -o '\bdcm_[a-z0-9_]*[[:space:]]*(' | \
	       tr -d ' \t(' | sort -u | sed 's/^/    /; s/$$/;/'; \
	   echo '  local: *;'; echo '};'; } > $@.tmp
	@grep -q 'dcm_version;' $@.tmp || { echo "$@: no public function found in include/dcm/dcm.h" >&2; rm -f $@.tmp; exit 1; }
	@mv $@.tmp $@

# --no-undefined: the library must not lean on the report or the command;
# --as-needed: NEEDED lists only what it uses (not libmpi under MPI=1).
lib/$(SO_FILE): $(REL_OBJ) $(B)/rel/libdcm.map
	@test -n "$(VERSION)" || { echo "Makefile: no DCM_VERSION_STRING \"X.Y.Z\" in dcm/dcm_api.h" >&2; exit 1; }
	@mkdir -p lib
	$(CC) -shared $(CFLAGS) -Wl,-soname,$(SO_NAME) -Wl,--version-script=$(B)/rel/libdcm.map \
	    -Wl,--no-undefined -Wl,--as-needed -o $@ $(REL_OBJ) $(LIB_LDLIBS)

lib/libdcm.so: lib/$(SO_FILE)
	ln -sf $(SO_FILE) lib/$(SO_NAME)
	ln -sf $(SO_NAME) $@

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
	$(CC) $(CFLAGS) -o $@ $^ $(CLI_LDLIBS)

$(B)/san/bin/dcm: $(B)/san/dcm/cli/main.o $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/san/tests/%: tests/%.c tests/test_util.h $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -o $@ $< $(B)/san/libdcm.a $(TEST_LDLIBS)

# The allocation-failure test wraps the library's malloc/calloc/realloc/
# strdup (libc's strdup allocates inside libc, out of --wrap's reach) to
# fail the Nth call; the counter lives in the test program.
$(B)/san/tests/test_alloc_fail: tests/test_alloc_fail.c tests/test_util.h fuzz/fuzz_targets.h $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -o $@ $< $(B)/san/libdcm.a $(TEST_LDLIBS) \
	    -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup

# The install test runs `make install` on this tree (with DCM_MAKE_ARGS, so
# it installs the flavour this make built) and builds a program against the
# installed library; it finds the tree from any directory.
$(B)/san/tests/test_install: tests/test_install.c tests/test_util.h $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -DTEST_SOURCE_DIR='"$(CURDIR)"' -o $@ $< \
	    $(B)/san/libdcm.a $(TEST_LDLIBS)

# Tests run the sanitized library and CLI; each prints CUnit's summary and
# the runner adds one closing line "tests: N passed, N failed, N skipped".
# The layering check (scripts/layers.sh) runs first.
test: $(TEST_BINS) $(B)/san/bin/dcm bin/dcm lib/libdcm.so $(if $(HAVE_MPICC),bin/dcm-mpi)
	@sh scripts/layers.sh
	@DCM_MAKE_ARGS='B=$(B) $(if $(MPI),MPI=$(MPI))' DCM_BIN=$(CURDIR)/$(B)/san/bin/dcm DCM_RELEASE_BIN=$(CURDIR)/bin/dcm DCM_MPI_BIN=$(CURDIR)/bin/dcm-mpi sh scripts/run_tests.sh $(TEST_BINS)
	@DCM_RELEASE_BIN=$(CURDIR)/bin/dcm sh scripts/test_python.sh $(B)

# the Python package's tests alone (MANUAL chapter 18): a venv in $(B)/pyvenv, pytest
test-python: all
	@DCM_RELEASE_BIN=$(CURDIR)/bin/dcm sh scripts/test_python.sh $(B)

demo: setup all
	@sh scripts/demo.sh

bin/dcm-bench: $(B)/rel/bench/bench_estimate.o lib/libdcm.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: all bin/dcm-bench
	@sh scripts/bench.sh
	@if [ -x $(B)/pyvenv/bin/python ]; then $(B)/pyvenv/bin/python python/bench_threads.py; \
	 else echo "bench: no $(B)/pyvenv (make test-python makes it): Python thread timing skipped"; fi

bench-group: all
	@sh scripts/bench_group.sh

valgrind: all
	@sh scripts/valgrind.sh

clean:
	rm -rf $(B) bin lib demo_out

# ---- make install PREFIX=DIR (default /usr/local), DESTDIR for staging ----
# bin/dcm, the library (shared and static), the public headers and
# dcm.pc, whose paths are PREFIX's (DESTDIR is only where files land).
# After installing into a system directory run ldconfig; elsewhere set
# LD_LIBRARY_PATH or link with -Wl,-rpath (MANUAL section 11).
PREFIX ?= /usr/local
bindir ?= $(PREFIX)/bin
libdir ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
pkgconfigdir ?= $(libdir)/pkgconfig
INSTALL ?= install
D = $(DESTDIR)

install: bin/dcm lib/libdcm.a lib/libdcm.so
	@case "$(PREFIX)" in /*) ;; *) echo "make install: PREFIX must be an absolute path (got '$(PREFIX)')" >&2; exit 1 ;; esac
	$(INSTALL) -d "$(D)$(bindir)" "$(D)$(libdir)" "$(D)$(includedir)/dcm" "$(D)$(pkgconfigdir)"
	$(INSTALL) -m 755 bin/dcm "$(D)$(bindir)/dcm"
	$(INSTALL) -m 755 lib/$(SO_FILE) "$(D)$(libdir)/$(SO_FILE)"
	ln -sf $(SO_FILE) "$(D)$(libdir)/$(SO_NAME)"
	ln -sf $(SO_NAME) "$(D)$(libdir)/libdcm.so"
	$(INSTALL) -m 644 lib/libdcm.a "$(D)$(libdir)/libdcm.a"
	$(INSTALL) -m 644 $(PUBLIC_HDR) "$(D)$(includedir)/dcm/"
	@printf '%s\n' 'prefix=$(PREFIX)' 'exec_prefix=$${prefix}' \
	    'libdir=$(patsubst $(PREFIX)/%,$${exec_prefix}/%,$(libdir))' \
	    'includedir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(includedir))' '' \
	    'Name: dcm' 'Description: Dynamic causal modelling for fMRI (SPM12 DCM in C)' \
	    'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -ldcm' \
	    'Libs.private: $(LIB_LDLIBS)' > "$(D)$(pkgconfigdir)/dcm.pc.tmp"
	mv "$(D)$(pkgconfigdir)/dcm.pc.tmp" "$(D)$(pkgconfigdir)/dcm.pc"
	@echo "installed under $(D)$(PREFIX)"

uninstall:
	rm -f "$(D)$(bindir)/dcm" "$(D)$(libdir)/$(SO_FILE)" "$(D)$(libdir)/$(SO_NAME)" \
	    "$(D)$(libdir)/libdcm.so" "$(D)$(libdir)/libdcm.a" "$(D)$(pkgconfigdir)/dcm.pc"
	rm -f $(PUBLIC_HDR:include/dcm/%="$(D)$(includedir)/dcm/%")
	-rmdir "$(D)$(includedir)/dcm" 2>/dev/null || true

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
	$(FUZZ_CC) $(STD) $(INCS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS) -lmatio || \
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
