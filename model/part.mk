# The executable hardware model (model/*.c, every file: the high-level spec, OS model and
# refinement checker of issue 5 land in the same archive) and its tests and benchmark.
# The model itself includes only model/ headers; only its tests and benchmark use the library.
MODEL_SRCS := $(wildcard model/*.c)
MODEL_HW_SRCS := model/hardware.c $(wildcard model/hw_*.c)
MODEL_OBJS := $(MODEL_SRCS:model/%.c=$(BUILD)/model/%.o)
MODEL_LIB  := $(BUILD)/libmodel.a
MODEL_CFLAGS := $(HOST_CFLAGS) -Imodel

$(BUILD)/model/%.o: model/%.c $(wildcard model/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(MODEL_CFLAGS) -c $< -o $@

# The model is the judge of the library: none of its files gets an include path to the
# library's or the simulator's headers, so sharing one by accident does not compile (the
# checker plugs the library in from check/, through the model's os_pt_impl interface).
$(MODEL_OBJS): MODEL_CFLAGS := $(filter-out -Iinclude -Isim,$(HOST_CFLAGS)) -Imodel

$(MODEL_LIB): $(MODEL_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Tests: model/tests/test_*.c, each its own cmocka program.
MODEL_TEST_SRCS := $(wildcard model/tests/test_*.c)
MODEL_TESTS := $(MODEL_TEST_SRCS:model/tests/%.c=$(BUILD)/model/tests/%)
$(BUILD)/model/tests/%.o: model/tests/%.c $(wildcard model/*.h model/tests/*.h) sim/physmem.h include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(MODEL_CFLAGS) -Imodel/tests -c $< -o $@
$(BUILD)/model/tests/test_%: $(BUILD)/model/tests/test_%.o $(MODEL_LIB) $(SIM_OBJS) $(LIB)
	$(CC) $(SAN) -o $@ $^ -lcmocka $(LDLIBS_HOST)
TESTS += $(MODEL_TESTS)
# The dump test runs the x86pt binary (tools/part.mk).
$(BUILD)/model/tests/test_hw_dump.o: MODEL_CFLAGS += -DX86PT_BIN='"$(BUILD)/x86pt"'
$(BUILD)/model/tests/test_hw_dump: | $(BUILD)/x86pt

# Benchmark: walk and interp_1m.
$(BUILD)/model/bench/bench_model.o: model/bench/bench_model.c $(wildcard model/*.h) sim/physmem.h include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(MODEL_CFLAGS) -c $< -o $@
$(BUILD)/model/bench/bench_model: $(BUILD)/model/bench/bench_model.o $(MODEL_LIB) $(SIM_OBJS) $(LIB)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_HOST)
BENCH_PROGS += $(BUILD)/model/bench/bench_model

# libFuzzer target (optional, clang only): make fuzz-model
$(BUILD)/model/fuzz_interp: model/fuzz/fuzz_interp.c $(MODEL_HW_SRCS) model/tests/hw_fuzz_check.h $(wildcard model/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=fuzzer,address,undefined -Imodel -o $@ model/fuzz/fuzz_interp.c $(MODEL_HW_SRCS)
.PHONY: fuzz-model
fuzz-model: $(BUILD)/model/fuzz_interp
