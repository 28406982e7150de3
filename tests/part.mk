# The library's own tests and benchmark.
TEST_SUPPORT := $(BUILD)/tests/refmap.o $(BUILD)/tests/tree.o
$(BUILD)/tests/%.o: tests/%.c $(wildcard tests/*.h) sim/physmem.h include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Itests -c $< -o $@
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(TEST_SUPPORT) $(SIM_OBJS) $(LIB)
	$(CC) $(SAN) -o $@ $^ -lcmocka $(LDLIBS_HOST)
TESTS += $(BUILD)/tests/test_ops $(BUILD)/tests/test_random $(BUILD)/tests/test_oom $(BUILD)/tests/test_range $(BUILD)/tests/test_adopt
