# The library's own tests and benchmark.
TEST_SUPPORT := $(BUILD)/tests/refmap.o $(BUILD)/tests/tree.o
$(BUILD)/tests/%.o: tests/%.c $(wildcard tests/*.h) sim/physmem.h include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Itests -c $< -o $@
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(TEST_SUPPORT) $(SIM_OBJS) $(LIB)
	$(CC) $(SAN) -o $@ $^ -lcmocka $(LDLIBS_HOST)
TESTS += $(BUILD)/tests/test_ops $(BUILD)/tests/test_harvest $(BUILD)/tests/test_remap $(BUILD)/tests/test_attrs $(BUILD)/tests/test_gather $(BUILD)/tests/test_random $(BUILD)/tests/test_oom $(BUILD)/tests/test_range $(BUILD)/tests/test_adopt $(BUILD)/tests/test_edges

# libFuzzer over programs of library calls (clang): make fuzz-lib FUZZ_SECONDS=60
FUZZ_SECONDS ?= 60
$(BUILD)/fuzz/fuzz_ops: tests/fuzz_ops.c tests/refmap.c tests/tree.c sim/physmem.c $(LIB_SRCS) $(wildcard src/*.h tests/*.h)
	@mkdir -p $(dir $@)
	clang -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isim -Itests -D_GNU_SOURCE \
	    -o $@ tests/fuzz_ops.c tests/refmap.c tests/tree.c sim/physmem.c $(LIB_SRCS)
.PHONY: fuzz-lib
fuzz-lib: $(BUILD)/fuzz/fuzz_ops
	@mkdir -p $(BUILD)/fuzz/corpus
	./$(BUILD)/fuzz/fuzz_ops -max_total_time=$(FUZZ_SECONDS) -max_len=512 $(BUILD)/fuzz/corpus
