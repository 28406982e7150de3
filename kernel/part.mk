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

# The oracle's generator: a host program over the hardware model (model/,
# built by model/part.mk, which is included after this file: hence the
# literal archive name).
KERNEL_ORACLE_GEN := $(BUILD)/kernel/oracle-gen
$(BUILD)/kernel/host/oracle-gen.o: kernel/host/oracle-gen.c kernel/oracle.h kernel/layout.h $(wildcard model/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Iinclude -Isim,$(HOST_CFLAGS)) -Imodel -Ikernel -c $< -o $@
$(KERNEL_ORACLE_GEN): $(BUILD)/kernel/host/oracle-gen.o $(BUILD)/libmodel.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_HOST)

# The runner, with the images it boots as prerequisites.
$(BUILD)/kernel/run-tests: kernel/run-tests.sh $(KERNEL_IMG) $(KERNEL_ORACLE_GEN)
	cp kernel/run-tests.sh $@ && chmod +x $@

.PHONY: kernel
kernel: $(KERNEL_IMG)
# Boots QEMU: run once by `make test`, not again under clang or sanitizers.
SYSTEM_TESTS += $(BUILD)/kernel/run-tests
