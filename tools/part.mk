# The x86pt command-line tool (build/x86pt). Subcommands append their objects to CLI_OBJS (and
# libraries to CLI_LDLIBS) in their own part.mk; the link rule expands them late
# (.SECONDEXPANSION), so the order in which part.mk files are included does not matter.
CLI_OBJS += $(BUILD)/tools/x86pt.o $(BUILD)/tools/dump.o
CLI_LDLIBS ?=
X86PT_BIN := $(BUILD)/x86pt

$(BUILD)/tools/%.o: tools/%.c $(wildcard tools/*.h) $(wildcard model/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -Imodel -c $< -o $@

.SECONDEXPANSION:
$(X86PT_BIN): $$(CLI_OBJS) $(MODEL_LIB) $(SIM_OBJS) $(CHECKED_LIB)
	$(CC) $(SAN) -o $@ $(CLI_OBJS) $(MODEL_LIB) $(SIM_OBJS) $(CHECKED_LIB) $(CLI_LDLIBS) $(LDLIBS_HOST)

all: $(X86PT_BIN)
