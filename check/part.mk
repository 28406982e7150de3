# The refinement checker (issue 5): `x86pt check`, its tests and benchmark. The model's
# files (model/hlspec*.c, os*.c, spec_pt*.c, os_refinement*.c) are in $(MODEL_LIB).
CHECK_SRCS := check/config.c check/ptlib.c check/random.c check/exhaustive.c check/mutants.c check/cli.c
CHECK_OBJS := $(CHECK_SRCS:check/%.c=$(BUILD)/check/%.o)
CHECK_CFLAGS := $(HOST_CFLAGS) -Imodel -Icheck

$(BUILD)/check/%.o: check/%.c $(wildcard check/*.h check/*.def model/*.h) include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(CHECK_CFLAGS) -c $< -o $@

# (model/part.mk is read after this file: name its archive directly)
CHECK_LIBS = $(BUILD)/libmodel.a $(SIM_OBJS) $(CHECKED_LIB)
$(BUILD)/check/x86pt-check: $(BUILD)/check/check_tool.o $(CHECK_OBJS) $(BUILD)/libmodel.a $(SIM_OBJS) $(CHECKED_LIB)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_HOST)

CLI_OBJS += $(CHECK_OBJS)

# Tests: check/tests/test_*.c (cmocka).
CHECK_TEST_SRCS := $(wildcard check/tests/test_*.c)
CHECK_TESTS := $(CHECK_TEST_SRCS:check/tests/%.c=$(BUILD)/check/tests/%)
$(BUILD)/check/tests/%.o: check/tests/%.c $(wildcard check/*.h model/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CHECK_CFLAGS) -c $< -o $@
$(BUILD)/check/tests/test_%: $(BUILD)/check/tests/test_%.o $(CHECK_OBJS) $(BUILD)/libmodel.a $(SIM_OBJS) $(CHECKED_LIB)
	$(CC) $(SAN) -o $@ $^ -lcmocka $(LDLIBS_HOST)
TESTS += $(CHECK_TESTS)

# Benchmark: check_step, check_exhaustive_small.
$(BUILD)/check/bench_check: $(BUILD)/check/bench_check.o $(CHECK_OBJS) $(BUILD)/libmodel.a $(SIM_OBJS) $(CHECKED_LIB)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_HOST)
BENCH_PROGS += $(BUILD)/check/bench_check

# The mutant run (builds build-mutant-N/ for each mutant): make check-mutants
.PHONY: check-mutants
check-mutants: $(BUILD)/check/x86pt-check
	./$(BUILD)/check/x86pt-check --mutants

# The mutant run as a test of its own. Run once, with the default compiler: each mutant is a
# build of its own with the default compiler anyway, whatever suite asks for it.
$(BUILD)/check/tests/test_mutants: check/tests/test_mutants.sh $(BUILD)/check/x86pt-check
	@mkdir -p $(dir $@)
	cp $< $@
	chmod +x $@
SYSTEM_TESTS += $(BUILD)/check/tests/test_mutants
