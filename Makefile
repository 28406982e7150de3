# x86pt build. Each part keeps its rules in its own fragment (*.mk) and adds to
# TESTS (test programs run by `make test`), BENCH_PROGS and CLI_OBJS.
CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
WARN    := -Wall -Wextra -Werror
CFLAGS_COMMON := -std=c11 $(WARN) $(OPT) -g $(SAN) -Iinclude
# The library: freestanding, no libc, no global state.
LIB_CFLAGS  := $(CFLAGS_COMMON) -ffreestanding -fno-stack-protector -mno-red-zone -mgeneral-regs-only $(LIB_EXTRA)
HOST_CFLAGS := $(CFLAGS_COMMON) -D_GNU_SOURCE -Isim
LDLIBS_HOST := $(SAN) -lm -pthread

.PHONY: all test test-hosted test-all same-run-both-compilers check-main bench clean lib check-freestanding
.SECONDARY:
all: lib

LIB_SRCS := $(wildcard src/*.c)
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/src/%.o)
LIB      := $(BUILD)/libx86pt.a

$(BUILD)/src/%.o: src/%.c $(wildcard src/*.h) include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

lib: $(LIB)

# The checker's build of the same sources (src/checked.h): every page-table access is a call
# into the checker, which runs it as a step of its model. Never shipped.
CHECKED_LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/src-checked/%.o)
CHECKED_LIB      := $(BUILD)/libx86pt-checked.a
$(BUILD)/src-checked/%.o: src/%.c $(wildcard src/*.h) include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -DX86PT_CHECKED -c $< -o $@
$(CHECKED_LIB): $(CHECKED_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The archive may need nothing beyond what a freestanding compiler itself emits,
# and holds no global state.
check-freestanding: $(LIB)
	@nm -u $(LIB) | awk 'NF==2 {print $$2}' | sort -u > $(BUILD)/lib-undefined.txt; \
	nm --defined-only $(LIB) | awk 'NF==3 {print $$3}' | sort -u > $(BUILD)/lib-defined.txt; \
	needs=$$(comm -23 $(BUILD)/lib-undefined.txt $(BUILD)/lib-defined.txt | tr '\n' ' '); \
	extra=$$(echo $$needs | tr ' ' '\n' | grep -v -x -E 'memset|memcpy|' || true); \
	if [ -n "$$extra" ]; then echo "libx86pt needs symbols beyond memset/memcpy: $$extra"; exit 1; fi; \
	echo "check-freestanding: libx86pt.a needs only: $${needs:-nothing}"; \
	state=0; for size in $$(objdump -h $(LIB) | awk '$$2 ~ /^\.(data|bss)/ && $$2 !~ /^\.data\.rel\.ro/ {print $$3}'); do \
	    state=$$((state + 0x$$size)); done; \
	if [ "$$state" != 0 ]; then echo "libx86pt has $$state bytes of writable global state"; exit 1; fi; \
	echo "check-freestanding: no writable global state (.data + .bss = 0 bytes)"

# Hosted simulated physical memory (tests, model glue, checker).
SIM_OBJS := $(patsubst sim/%.c,$(BUILD)/sim/%.o,$(wildcard sim/*.c))
$(BUILD)/sim/%.o: sim/%.c $(wildcard sim/*.h) include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

# TESTS: hosted test programs (also run under sanitizers and with clang).
# SYSTEM_TESTS: programs that boot QEMU, or rebuild the tree themselves (the mutants); run
# once, by `make test`.
TESTS :=
SYSTEM_TESTS :=
BENCH_PROGS :=
CLI_OBJS :=

include $(wildcard */part.mk)

test: test-hosted $(SYSTEM_TESTS)
	@set -e; for t in $(SYSTEM_TESTS); do echo "== $$t"; ./$$t; done

# A sanitized library needs its runtime: the freestanding check is for real builds.
test-hosted: $(if $(SAN),,check-freestanding) $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; ./$$t; done

# Everything CI runs: the full suite with the default compiler, the hosted
# suite built with clang, and again under AddressSanitizer + UBSan.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
test-all:
	$(MAKE) test
	$(MAKE) test-hosted CC=clang BUILD=build-clang
	$(MAKE) test-hosted SAN="$(SAN_FLAGS)" BUILD=build-san
	$(MAKE) same-run-both-compilers
	@echo "test-all: gcc suite, clang suite and sanitizer suite passed; a seed replays the same run under both compilers"

# A seed names one run whatever compiler built the checker: the two builds' shard lines
# (every counter of the run) must agree but for the time taken.
same-run-both-compilers:
	$(MAKE) build/x86pt
	$(MAKE) CC=clang BUILD=build-clang build-clang/x86pt
	@set -e; for b in build build-clang; do \
	  ./$$b/x86pt check --ranges --seed 5 --steps 50000 | grep '^shard:' | sed 's/ seconds=.*//' > $$b/replay.txt; done; \
	  cmp build/replay.txt build-clang/replay.txt && echo "same run: gcc and clang builds agree on seed 5"


# The main job: the refinement checker on its default configuration, then on
# its range-operation workload.
check-main: $(BUILD)/x86pt
	./$(BUILD)/x86pt check
	./$(BUILD)/x86pt check random --ranges

bench: $(BENCH_PROGS)
	@set -e; for b in $(BENCH_PROGS); do ./$$b; done

clean:
	rm -rf build build-*
