# The test kernel: freestanding x86-64, booted by QEMU (multiboot), linking the
# same build/libx86pt.a as everyone else. `make test` boots each kernel test.
KERNEL_CC     ?= $(CC)
KERNEL_CFLAGS := -std=c11 $(WARN) -O2 -g -Iinclude -Ikernel -ffreestanding -fno-stack-protector \
                 -mno-red-zone -mgeneral-regs-only -fno-pic -fno-pie -mcmodel=small \
                 -fno-asynchronous-unwind-tables -nostdlib
KERNEL_SRCS   := $(wildcard kernel/*.c) $(wildcard kernel/*.S)
KERNEL_OBJS   := $(patsubst kernel/%,$(BUILD)/kernel/%.o,$(KERNEL_SRCS))
KERNEL_ELF    := $(BUILD)/kernel/x86pt-kernel.elf
KERNEL_IMG    := $(BUILD)/kernel/x86pt-kernel.elf32

$(BUILD)/kernel/%.c.o: kernel/%.c $(wildcard kernel/*.h) include/x86pt/x86pt.h
	@mkdir -p $(dir $@)
	$(KERNEL_CC) $(KERNEL_CFLAGS) -c $< -o $@

$(BUILD)/kernel/%.S.o: kernel/%.S kernel/layout.h
	@mkdir -p $(dir $@)
	$(KERNEL_CC) $(KERNEL_CFLAGS) -c $< -o $@

$(KERNEL_ELF): $(KERNEL_OBJS) $(LIB) kernel/kernel.ld
	$(KERNEL_CC) -nostdlib -static -no-pie -Wl,-T,kernel/kernel.ld -Wl,--build-id=none \
	    -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -o $@ $(KERNEL_OBJS) $(LIB) -lgcc

# QEMU's multiboot loader takes only 32-bit ELF (QEMU-FACTS).
$(KERNEL_IMG): $(KERNEL_ELF)
	objcopy -O elf32-i386 $< $@

# The runner, with the images it boots as prerequisites.
$(BUILD)/kernel/run-tests: kernel/run-tests.sh $(KERNEL_IMG) $(KERNEL_ORACLE_DEPS)
	cp kernel/run-tests.sh $@ && chmod +x $@

.PHONY: kernel
kernel: $(KERNEL_IMG)
TESTS += $(BUILD)/kernel/run-tests
