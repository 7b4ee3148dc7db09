# dcm — dynamic causal modelling for fMRI.
#   make            build bin/dcm and lib/libdcm.a
#   make setup      install the Debian packages we need (prints the apt line when not root)
#   make demo       set up, build, simulate the bundled attention-design data, fit, compare
#   make test       build the tests with AddressSanitizer + UBSan and run them
#   make bench      time the fwd/bwd attention models (needs ../shared)
#   make valgrind   run `dcm estimate` on the demo under valgrind's leak checker

CC      ?= cc
B       ?= build
OPT     ?= -O2
WARN    = -Wall -Wextra -Werror
STD     = -std=c11 -D_POSIX_C_SOURCE=200809L
INCS    = -I. -I/usr/include/nifti
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(STD) $(WARN) $(INCS) $(CFLAGS)
# GSL is linked against OpenBLAS rather than its reference CBLAS: -lopenblas
# is named on the link line, so its cblas_* symbols come before libgslcblas's.
LDLIBS  = -ljansson -lmatio -lnifti2 -lznz -lz -lfftw3 -lgsl -lopenblas -lm -lpthread

LIB_SRC = $(wildcard models/*.c vl/*.c io/*.c) $(filter-out dcm/main.c,$(wildcard dcm/*.c))
TEST_SRC = $(wildcard tests/test_*.c)

REL_OBJ = $(LIB_SRC:%.c=$(B)/rel/%.o)
SAN_OBJ = $(LIB_SRC:%.c=$(B)/san/%.o)
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TEST_BINS = $(TEST_SRC:tests/%.c=$(B)/san/tests/%)

.PHONY: all setup demo test bench valgrind clean check-deps
all: bin/dcm lib/libdcm.a

setup:
	@sh scripts/setup.sh

$(B)/rel/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/san/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	@$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -c $< -o $@

lib/libdcm.a: $(REL_OBJ)
	@mkdir -p lib
	rm -f $@
	ar rcs $@ $^

$(B)/san/libdcm.a: $(SAN_OBJ)
	rm -f $@
	ar rcs $@ $^

bin/dcm: $(B)/rel/dcm/main.o lib/libdcm.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/san/bin/dcm: $(B)/san/dcm/main.o $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/san/tests/%: tests/%.c tests/test_util.h $(B)/san/libdcm.a
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(INCS) $(SAN_FLAGS) -o $@ $< $(B)/san/libdcm.a $(LDLIBS) -lcunit

# Tests run the sanitized library and CLI; each prints CUnit's summary and
# the runner adds one closing line "tests: N passed, N failed, N skipped".
test: $(TEST_BINS) $(B)/san/bin/dcm bin/dcm
	@DCM_BIN=$(CURDIR)/$(B)/san/bin/dcm DCM_RELEASE_BIN=$(CURDIR)/bin/dcm sh scripts/run_tests.sh $(TEST_BINS)

demo: setup all
	@sh scripts/demo.sh

bin/dcm-bench: $(B)/rel/bench/bench_estimate.o lib/libdcm.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: all bin/dcm-bench
	@sh scripts/bench.sh

valgrind: all
	@sh scripts/valgrind.sh

clean:
	rm -rf $(B) bin lib demo_out
