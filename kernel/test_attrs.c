/*
 * Mapping attributes on the live page table (issue 12): the LAPIC's registers
 * read through an uncached mapping the library made, and a global page made,
 * used across CR3 reloads with CR4.PGE on, and taken away again through the
 * flush report (which must say `global`, so that the shootdown does not rely
 * on a CR3 reload).
 *
 * What QEMU cannot show: TCG gives memory types no effect, and its MOV to CR3
 * drops global TLB entries too (target/i386 flushes the whole TLB), so a stale
 * global entry surviving a CR3 reload cannot be provoked here; the checker's
 * model has that behaviour (README, "the hostile hardware").
 */
#include "kern.h"

#define VA_BASE UINT64_C(0x0000140000000000) /* PML4 slot 40, used only here */
#define LAPIC_ID 0x20
#define LAPIC_VERSION 0x30

static uint32_t reg(uint64_t base, unsigned off) { return *(volatile uint32_t *)(uintptr_t)(base + off); }

/* The LAPIC page mapped UC (power-on PAT index 3: PCD|PWT), its registers read
 * through it as through the kernel's identity map. */
static bool test_mmio_uncached(void)
{
    uint64_t va = VA_BASE;
    unsigned flags = X86PT_WRITABLE | X86PT_NO_EXECUTE | X86PT_MEMTYPE(X86PT_PAT_POWER_ON_UC);
    CHECK(os_map(va, LAPIC_PA, X86PT_PAGE_4K, flags) == X86PT_OK, "map the LAPIC uncached");
    struct x86pt_mapping m;
    CHECK(x86pt_resolve(&kpt, x86pt_va(va), &m) == X86PT_OK && m.flags == flags && m.frame.pa == LAPIC_PA,
          "resolve: flags %x frame %lx", m.flags, m.frame.pa);
    CHECK(reg(va, LAPIC_ID) == reg(LAPIC_PA, LAPIC_ID), "LAPIC ID %x through the mapping, %x identity",
          reg(va, LAPIC_ID), reg(LAPIC_PA, LAPIC_ID));
    CHECK(reg(va, LAPIC_VERSION) == reg(LAPIC_PA, LAPIC_VERSION) && (reg(va, LAPIC_VERSION) & 0xff) != 0,
          "LAPIC version %x", reg(va, LAPIC_VERSION));
    CHECK(os_unmap(va, &m) == X86PT_OK && m.flags == flags, "unmap: flags %x", m.flags);
    return true;
}

/* A global page with CR4.PGE on: it translates across CR3 reloads; its unmap
 * reports global (and the kernel's shootdown then toggles PGE when it flushes
 * everything); afterwards it faults. A non-global page's unmap does not. */
static bool test_global_page(void)
{
    uint64_t va = VA_BASE + X86PT_PAGE_1G, frame, v;
    CHECK(frame_alloc(&frame), "frame");
    *(uint64_t *)phys(frame) = 0x600d600d;
    uint64_t cr4 = read_cr4();
    write_cr4(cr4 | CR4_PGE);
    CHECK(os_map(va, frame, X86PT_PAGE_4K, X86PT_GLOBAL | X86PT_NO_EXECUTE) == X86PT_OK, "map global");
    CHECK(probe_load(va, &v) == 0 && v == 0x600d600d, "read global %lx", v);
    write_cr3(read_cr3());
    CHECK(probe_load(va, &v) == 0 && v == 0x600d600d, "read global after CR3 reload %lx", v);
    struct x86pt_mapping m;
    CHECK(x86pt_resolve(&kpt, x86pt_va(va), &m) == X86PT_OK && m.flags == (X86PT_GLOBAL | X86PT_NO_EXECUTE),
          "resolve: flags %x", m.flags);

    struct x86pt_flush fl;
    kernel_lock();
    x86pt_status_t st = os_unmap_begin(va, &fl); /* directories held in the gather until the finish */
    CHECK(st == X86PT_OK && fl.global && fl.dirs_freed == 3, "unmap: %d global %d dirs %u", st, fl.global,
          fl.dirs_freed);
    os_unmap_finish(&fl); /* dirs freed: a full flush, which must include globals */
    kernel_unlock();
    CHECK(probe_load(va, &v) == (PROBE_FAULT | 0), "global page still readable after its unmap");

    CHECK(os_map(va, frame, X86PT_PAGE_4K, X86PT_NO_EXECUTE) == X86PT_OK, "map non-global");
    kernel_lock();
    st = os_unmap_begin(va, &fl);
    CHECK(st == X86PT_OK && !fl.global, "unmap non-global: %d global %d", st, fl.global);
    os_unmap_finish(&fl);
    kernel_unlock();
    write_cr4(cr4);
    frame_free(frame);
    return true;
}

bool test_attrs(void)
{
    return test_mmio_uncached() && test_global_page();
}
