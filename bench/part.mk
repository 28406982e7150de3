# The library's benchmark (`make bench`).
$(BUILD)/bench/%.o: bench/%.c sim/physmem.h include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@
$(BUILD)/bench/bench_lib: $(BUILD)/bench/bench_lib.o $(SIM_OBJS) $(LIB)
	$(CC) -o $@ $^ $(LDLIBS_HOST)
BENCH_PROGS += $(BUILD)/bench/bench_lib
