/*
 * Boot: multiboot (v1) entry in 32-bit protected mode, to long mode, to kmain.
 * Also the AP trampoline (real mode -> long mode in one step) and the GDT.
 *
 * Multiboot v1 hands over in 32-bit protected mode with paging off,
 * EAX = 0x2BADB002 and EBX = the information structure (Multiboot spec §3.2).
 * Long mode needs PAE paging, EFER.LME and then CR0.PG (SDM vol. 3A §10.8.5
 * "Initializing IA-32e Mode").
 */
#include "layout.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: modules page aligned, bit 1: memory info */

#define CR0_PE (1 << 0)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11) /* XD bit usable in entries (SDM vol. 3A §4.1.1) */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    mov $boot_stack_top, %esp
    mov %eax, mb_magic
    mov %ebx, mb_info

    /* Boot tables: identity map of [0, 4 GiB) with 2 MiB pages (so that no
     * 1 GiB page support is needed this early), the same PDPT also linked at
     * PML4[256] so that the direct map at DIRECT_MAP_BASE works before libx86pt's
     * own tables take over. Every entry is written, so .bss need not be zeroed. */
    mov $boot_pml4, %edi
    xor %eax, %eax
    mov $(4096 * 6 / 4), %ecx
    rep stosl
    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov %eax, boot_pml4 + 256 * 8
    mov $boot_pdpt, %edi
    mov $boot_pd, %eax
    or $3, %eax
    mov $4, %ecx
1:  mov %eax, (%edi)
    add $4096, %eax
    add $8, %edi
    loop 1b
    /* 2048 PD entries: P | RW | PS, address = i << 21 (addresses < 4 GiB). */
    mov $boot_pd, %edi
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE | CR0_WP), %eax
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $KERNEL_CS, $long_entry

    .code64
long_entry:
    mov $KERNEL_DS, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov mb_magic(%rip), %edi
    mov mb_info(%rip), %esi
    call kmain
3:  hlt
    jmp 3b

/*
 * AP trampoline, copied to TRAMPOLINE_PA (the SIPI vector is its page number,
 * SDM vol. 3A §9.4.4.1). Real mode with CS = TRAMPOLINE_PA >> 4, IP = 0.
 * Setting CR0.PE and CR0.PG together with EFER.LME goes straight to IA-32e
 * (compatibility) mode; the far jump then enters 64-bit mode.
 * The BSP fills tramp_cr3 before sending the SIPI.
 */
#define TR(x) ((x) - trampoline_start + TRAMPOLINE_PA)
    .code16
    .globl trampoline_start, trampoline_end, tramp_cr3
trampoline_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lgdtl TR(tramp_gdtr)
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    movl TR(tramp_cr3), %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE | CR0_WP), %eax
    mov %eax, %cr0
    ljmpl $KERNEL_CS, $ap_long_entry
    .align 8
tramp_gdtr:
    .word gdt_end - gdt - 1
    .long gdt
tramp_cr3:
    .long 0
trampoline_end:

    .code64
    .text
ap_long_entry:
    mov $KERNEL_DS, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    lgdt gdt_ptr(%rip) /* the 64-bit form of the pointer */
    /* A stack per AP, picked by arrival order. */
    mov $1, %eax
    lock xadd %eax, ap_arrivals(%rip)
    mov %eax, %edi
    inc %eax
    imul $AP_STACK_SIZE, %rax
    lea ap_stacks(%rip), %rsp
    add %rax, %rsp
    call ap_main
4:  hlt
    jmp 4b

    .data
    .align 16
    .globl gdt, tss_desc
/* Selectors in layout.h. The TSS descriptor is filled in by C (idt.c). */
gdt:
    .quad 0
    .quad 0x00209A0000000000 /* 0x08 kernel code: L, P, DPL 0, code */
    .quad 0x0000920000000000 /* 0x10 kernel data: P, DPL 0, writable */
    .quad 0x0000F20000000000 /* 0x18 user data: P, DPL 3, writable */
    .quad 0x0020FA0000000000 /* 0x20 user code: L, P, DPL 3 */
tss_desc:
    .quad 0, 0               /* 0x28 TSS (16 bytes in long mode) */
gdt_end:
    .align 16
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt
    .globl ap_arrivals
ap_arrivals:
    .long 0
mb_magic:
    .long 0
mb_info:
    .long 0

    .bss
    .align 4096
    .globl boot_pml4
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd: .skip 4096 * 4
    .align 16
boot_stack: .skip BOOT_STACK_SIZE
boot_stack_top:
    .globl ap_stacks
ap_stacks: .skip AP_STACK_SIZE * MAX_CPUS
