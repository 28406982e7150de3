/*
 * Interrupt entry stubs, the probing accesses, and entry to / exit from ring 3.
 */
#include "layout.h"

/* Vectors that push an error code (SDM vol. 3A §7.15, table 7-1... "Exception
 * and Interrupt Reference"): 8, 10-14, 17, 21, 29, 30. The others get a 0. */
.macro STUB vec
    .align 16
isr_\vec:
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    push $0
    .endif
    push $\vec
    jmp isr_common
.endm

    .text
    .globl isr_table
isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call isr_dispatch
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp /* vector and error code */
    iretq

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    STUB \v
    .endr
    STUB 0x81
    STUB 0xF0
    STUB 0xFF

    .section .rodata
    .align 8
isr_table: /* (vector, stub) pairs, ended by vector -1 */
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad \v, isr_\v
    .endr
    .quad 0x81, isr_0x81
    .quad 0xF0, isr_0xF0
    .quad 0xFF, isr_0xFF
    .quad -1, 0

/*
 * Probes: one access that may fault. The page-fault handler finds the faulting
 * RIP in probe_fixups, stores (1 << 32) | error code in RAX and resumes at the
 * fixup, which returns it. Success returns 0.
 */
    .text
    .globl probe_load, probe_store, probe_rmw, probe_exec
/* uint64_t probe_load(uint64_t va, uint64_t *out) */
probe_load:
.Lload: mov (%rdi), %rax
    mov %rax, (%rsi)
    xor %eax, %eax
.Lload_fix:
    ret
/* uint64_t probe_store(uint64_t va, uint64_t value) */
probe_store:
.Lstore: mov %rsi, (%rdi)
    xor %eax, %eax
.Lstore_fix:
    ret
/* uint64_t probe_rmw(uint64_t va): a write access that keeps the value
 * (a locked OR of 0 is a read-modify-write, checked as a write). */
probe_rmw:
.Lrmw: lock orq $0, (%rdi)
    xor %eax, %eax
.Lrmw_fix:
    ret
/* uint64_t probe_exec(uint64_t va): calls va, which must hold
 * "xor %eax,%eax; ret". A fetch fault has RIP = va; the handler then returns
 * to our caller through the return address the call pushed (exec_probe). */
probe_exec:
    call *%rdi
    ret

    .section .rodata
    .align 8
    .globl probe_fixups
probe_fixups:
    .quad .Lload, .Lload_fix
    .quad .Lstore, .Lstore_fix
    .quad .Lrmw, .Lrmw_fix
    .quad 0, 0

/*
 * Ring 3. enter_user(rip, rsp, arg0, arg1) saves the callee-saved registers and
 * the kernel stack, and IRETs to CPL 3 with interrupts off (IF = 0) — the
 * test code only runs accesses. It returns when user_exit(value) is called
 * from a handler (on the TSS's RSP0 stack), with that value.
 */
    .text
    .globl enter_user, user_exit
enter_user:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, saved_kernel_rsp(%rip)
    push $USER_DS
    push %rsi
    push $0x2          /* RFLAGS: reserved bit 1 only */
    push $USER_CS
    push %rdi
    mov %rdx, %rdi
    mov %rcx, %rsi
    xor %eax, %eax
    xor %ebx, %ebx
    xor %ebp, %ebp
    iretq
user_exit:
    mov saved_kernel_rsp(%rip), %rsp
    mov %rdi, %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret

/* The ring-3 probe, copied to a user page: rdi = kind (0 load, 1 rmw,
 * 2 exec), rsi = va. Ends with int $0x81 (a DPL-3 gate) to come back. */
    .globl user_probe_code, user_probe_code_end
user_probe_code:
    cmp $1, %rdi
    je 1f
    cmp $2, %rdi
    je 2f
    mov (%rsi), %rax
    int $0x81
1:  lock orq $0, (%rsi)
    int $0x81
2:  call *%rsi
    int $0x81
user_probe_code_end:

    .bss
    .align 8
saved_kernel_rsp: .quad 0
