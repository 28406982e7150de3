/*
 * The IDT, the TSS (RSP0 for faults taken in ring 3), the page-fault handler
 * behind the probes, and the ring-3 probe.
 */
#include "kern.h"

struct percpu percpu[MAX_CPUS];

struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t ist, type;
    uint16_t off_mid;
    uint32_t off_hi, zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "64-bit IDT gate (SDM vol. 3A §7.14.1)");

struct tss {
    uint32_t reserved0;
    uint64_t rsp0, rsp1, rsp2, reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3, iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "64-bit TSS (SDM vol. 3A §9.7)");

static struct idt_gate idt[256];
static struct tss tss;
static uint8_t ring0_stack[0x4000] __attribute__((aligned(16)));
static struct {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed)) idtr = { sizeof idt - 1, (uint64_t)idt };

extern const uint64_t isr_table[];
extern const uint64_t probe_fixups[];
extern uint64_t gdt[], tss_desc[];
extern const uint8_t user_probe_code[], user_probe_code_end[];
__attribute__((noreturn)) void user_exit(uint64_t value);
uint64_t enter_user(uint64_t rip, uint64_t rsp, uint64_t arg0, uint64_t arg1);

/* Ring-3 state; only the BSP runs ring-3 code. */
static volatile bool user_active;
static uint64_t user_rax;
#define USER_CODE_VA USER_WINDOW
#define USER_STACK_VA (USER_WINDOW + X86PT_PAGE_4K)

unsigned this_cpu(void)
{
    uint32_t id = *(volatile uint32_t *)(uintptr_t)(LAPIC_PA + 0x20) >> 24;
    return id < MAX_CPUS ? id : 0;
}

static void set_gate(unsigned vec, uint64_t handler, unsigned dpl)
{
    struct idt_gate *g = &idt[vec];
    g->off_lo = (uint16_t)handler;
    g->off_mid = (uint16_t)(handler >> 16);
    g->off_hi = (uint32_t)(handler >> 32);
    g->sel = KERNEL_CS;
    g->ist = 0;
    g->type = (uint8_t)(0x8E | (dpl << 5)); /* present, 64-bit interrupt gate (IF cleared) */
    g->zero = 0;
}

void idt_load(void) { __asm__ volatile("lidt %0" ::"m"(idtr)); }

void idt_init_bsp(void)
{
    for (const uint64_t *p = isr_table; p[0] != (uint64_t)-1; p += 2)
        set_gate((unsigned)p[0], p[1], p[0] == VEC_USER_EXIT ? 3 : 0);
    idt_load();
    /* Available 64-bit TSS descriptor (type 9), SDM vol. 3A §9.2.3. */
    uint64_t base = (uint64_t)&tss, limit = sizeof tss - 1;
    tss.rsp0 = (uint64_t)(ring0_stack + sizeof ring0_stack);
    tss.iomap_base = sizeof tss;
    tss_desc[0] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (UINT64_C(0x89) << 40) |
                  (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    tss_desc[1] = base >> 32;
    __asm__ volatile("ltr %w0" ::"r"(TSS_SEL));
}

static bool probe_fixup(struct frame *f)
{
    for (const uint64_t *p = probe_fixups; p[0]; p += 2) {
        if (f->rip == p[0]) {
            f->rip = p[1];
            f->rax = PROBE_FAULT | f->error;
            return true;
        }
    }
    return false;
}

/* A fetch fault from probe_exec's call: RIP is the target itself. Return to
 * the caller through the return address on the stack, as the target's "ret"
 * would have. */
static bool exec_fixup(struct frame *f, uint64_t cr2)
{
    if (!percpu[this_cpu()].exec_probe || !(f->error & PF_I) || f->rip != cr2)
        return false;
    f->rip = *(uint64_t *)f->rsp;
    f->rsp += 8;
    f->rax = PROBE_FAULT | f->error;
    return true;
}

static void fatal(struct frame *f)
{
    panic("cpu %u: unexpected vector %lu error %lx rip %lx cr2 %lx cs %lx", this_cpu(), f->vector, f->error,
          f->rip, read_cr2(), f->cs);
}

void isr_dispatch(struct frame *f)
{
    if (f->vector == VEC_PF) {
        uint64_t cr2 = read_cr2();
        struct percpu *c = &percpu[this_cpu()];
        c->last_cr2 = cr2;
        c->last_err = f->error;
        c->faults++;
        if ((f->cs & 3) == 3 && user_active) {
            user_active = false;
            user_exit(PROBE_FAULT | f->error);
        }
        if (probe_fixup(f) || exec_fixup(f, cr2))
            return;
        fatal(f);
    }
    if (f->vector == VEC_USER_EXIT && user_active) {
        user_active = false;
        user_rax = f->rax;
        user_exit(0);
    }
    if (f->vector == VEC_SHOOTDOWN) {
        shootdown_handle();
        lapic_eoi();
        return;
    }
    if (f->vector == VEC_SPURIOUS)
        return; /* no EOI for the spurious vector (SDM vol. 3A §11.9) */
    fatal(f);
}

/* The ring-3 probe's code and stack, user-accessible, at USER_WINDOW. */
void user_window_init(struct x86pt *pt)
{
    uint64_t code, stack;
    if (!frame_alloc(&code) || !frame_alloc(&stack))
        panic("no frames for the user window");
    memset(phys(code), 0xCC, X86PT_PAGE_4K);
    memcpy(phys(code), user_probe_code, (size_t)(user_probe_code_end - user_probe_code));
    if (x86pt_map(pt, x86pt_va(USER_CODE_VA), x86pt_pa(code), X86PT_PAGE_4K, X86PT_USER, NULL) != X86PT_OK ||
        x86pt_map(pt, x86pt_va(USER_STACK_VA), x86pt_pa(stack), X86PT_PAGE_4K,
                  X86PT_USER | X86PT_WRITABLE | X86PT_NO_EXECUTE, NULL) != X86PT_OK)
        panic("cannot map the user window");
}

uint64_t probe_user(enum probe_kind kind, uint64_t va, uint64_t *loaded)
{
    uint64_t rflags;
    __asm__ volatile("pushfq; pop %0" : "=r"(rflags));
    user_active = true;
    user_rax = 0;
    uint64_t r = enter_user(USER_CODE_VA, USER_STACK_VA + X86PT_PAGE_4K, kind, va);
    user_active = false;
    /* user_exit leaves the handler without IRET: IF stays as the gate left it. */
    if (rflags & 0x200)
        irq_enable();
    if (loaded)
        *loaded = user_rax;
    return r;
}

uint64_t probe_kernel(enum probe_kind kind, uint64_t va, uint64_t *loaded)
{
    uint64_t dummy, r;
    switch (kind) {
    case PROBE_LOAD:
        return probe_load(va, loaded ? loaded : &dummy);
    case PROBE_RMW:
        return probe_rmw(va);
    default:
        percpu[this_cpu()].exec_probe = true;
        r = probe_exec(va);
        percpu[this_cpu()].exec_probe = false;
        return r;
    }
}
