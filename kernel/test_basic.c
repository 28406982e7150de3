/*
 * map / unmap / resolve / protect on the live page table (CR3 = libx86pt's
 * root), checked by real accesses through the MMU: aliases of one frame see
 * each other's writes, an unmapped page faults at once (the local TLB entry is
 * gone), 2 MiB and 1 GiB pages translate, directories are reclaimed, after the
 * shootdown.
 */
#include "kern.h"

#define VA_BASE UINT64_C(0x0000100000000000) /* PML4 slot 32, used only here */

static bool expect_fault(uint64_t r, uint64_t va, uint32_t err)
{
    CHECK(r == (PROBE_FAULT | err), "va %lx: probe gave %lx, expected fault %x", va, r, err);
    CHECK(percpu[this_cpu()].last_cr2 == va, "CR2 %lx, expected %lx", percpu[this_cpu()].last_cr2, va);
    return true;
}

/* Writes through one mapping are read through an alias of the same frame,
 * and through the direct map. */
static bool test_alias(uint64_t frame)
{
    uint64_t a = VA_BASE, b = VA_BASE + 0x7000, v;
    CHECK(os_map(a, frame, X86PT_PAGE_4K, X86PT_WRITABLE | X86PT_NO_EXECUTE) == X86PT_OK, "map a");
    CHECK(os_map(b, frame, X86PT_PAGE_4K, X86PT_WRITABLE) == X86PT_OK, "map b");
    CHECK(probe_store(a + 0x18, 0x1122334455667788) == 0, "store through a");
    CHECK(probe_load(b + 0x18, &v) == 0 && v == 0x1122334455667788, "alias b reads %lx", v);
    CHECK(probe_store(b + 0x20, 0xabcdef) == 0, "store through b");
    CHECK(probe_load(a + 0x20, &v) == 0 && v == 0xabcdef, "alias a reads %lx", v);
    CHECK(*(uint64_t *)phys(frame + 0x20) == 0xabcdef, "direct map disagrees");

    struct x86pt_mapping m;
    CHECK(x86pt_resolve(&kpt, x86pt_va(a + 0x123), &m) == X86PT_OK, "resolve a");
    CHECK(m.base.va == a && m.frame.pa == frame && m.size == X86PT_PAGE_4K &&
              m.flags == (X86PT_WRITABLE | X86PT_NO_EXECUTE),
          "resolve a: base %lx frame %lx size %lx flags %x", m.base.va, m.frame.pa, m.size, m.flags);
    CHECK(os_map(a, frame, X86PT_PAGE_4K, 0) == X86PT_E_OVERLAP, "double map must fail");
    return true;
}

/* protect takes write away (the local TLB entry too) and gives it back. */
static bool test_protect(void)
{
    uint64_t a = VA_BASE, v;
    CHECK(os_protect(a, X86PT_NO_EXECUTE) == X86PT_OK, "protect ro");
    CHECK(probe_load(a + 0x18, &v) == 0 && v == 0x1122334455667788, "read after protect");
    if (!expect_fault(probe_store(a + 0x18, 1), a + 0x18, PF_P | PF_W))
        return false;
    CHECK(os_protect(a, X86PT_WRITABLE) == X86PT_OK, "protect rw");
    CHECK(probe_store(a + 0x18, 2) == 0, "store after protect rw");
    return true;
}

/* After unmap returns the old translation is gone, the alias still works. */
static bool test_unmap(uint64_t frame)
{
    uint64_t a = VA_BASE, b = VA_BASE + 0x7000, v;
    struct x86pt_mapping m;
    CHECK(probe_load(a, &v) == 0, "warm the TLB");
    CHECK(os_unmap(a, &m) == X86PT_OK && m.frame.pa == frame, "unmap a");
    if (!expect_fault(probe_load(a + 8, &v), a + 8, 0))
        return false;
    if (!expect_fault(probe_store(a + 8, 0), a + 8, PF_W))
        return false;
    CHECK(probe_load(b + 0x20, &v) == 0 && v == 0xabcdef, "alias survives");
    CHECK(os_unmap(a, NULL) == X86PT_E_NOTMAPPED, "second unmap");
    CHECK(x86pt_resolve(&kpt, x86pt_va(a), &m) == X86PT_E_NOTMAPPED, "resolve after unmap");
    CHECK(os_unmap(b, NULL) == X86PT_OK, "unmap b");
    CHECK(os_unmap(0x0000800000000000, NULL) == X86PT_E_NONCANONICAL, "noncanonical");
    return true;
}

/* Huge pages over the scratch RAM: a 1 GiB page at 1 GiB and a 2 MiB page
 * inside it, aliases of each other. */
static bool test_huge(void)
{
    uint64_t g = VA_BASE + X86PT_PAGE_1G * 4, t = VA_BASE + X86PT_PAGE_1G * 8 + X86PT_PAGE_2M * 3, v;
    uint64_t off = X86PT_PAGE_2M * 5;
    CHECK(os_map(g, SCRATCH_PA, X86PT_PAGE_1G, X86PT_WRITABLE) == X86PT_OK, "map 1G");
    CHECK(os_map(t, SCRATCH_PA + off, X86PT_PAGE_2M, X86PT_WRITABLE) == X86PT_OK, "map 2M");
    for (uint64_t o = 0; o < X86PT_PAGE_2M; o += 0x41000) {
        CHECK(probe_store(t + o, 0x5a5a0000 + o) == 0, "store 2M+%lx", o);
        CHECK(probe_load(g + off + o, &v) == 0 && v == 0x5a5a0000 + o, "1G alias at %lx reads %lx", o, v);
    }
    CHECK(os_map(g + X86PT_PAGE_2M, SCRATCH_PA, X86PT_PAGE_2M, 0) == X86PT_E_OVERLAP, "map inside 1G");
    CHECK(os_unmap(g + X86PT_PAGE_2M, NULL) == X86PT_E_NOTMAPPED, "unmap inside 1G");
    CHECK(os_unmap(g, NULL) == X86PT_OK && os_unmap(t, NULL) == X86PT_OK, "unmap huge");
    return expect_fault(probe_load(t, &v), t, 0);
}

/* The directories an unmap empties wait in the kernel's gather, still owned,
 * until the shootdown is done; then all three (PT, PD, PDPT of a PML4 slot of
 * their own) return to the pool. */
static bool test_deferred_free(uint64_t frame)
{
    uint64_t va = VA_BASE + X86PT_PAGE_1G * 512 * 2; /* PML4 slot 34: nothing else there */
    struct x86pt_flush fl;
    CHECK(os_map(va, frame, X86PT_PAGE_4K, X86PT_NO_EXECUTE) == X86PT_OK, "map in a fresh PML4 slot");
    uint64_t free_mapped = frames_free_count();
    kernel_lock();
    CHECK(os_unmap_begin(va, &fl) == X86PT_OK, "unmap begin");
    uint64_t free_before_shootdown = frames_free_count(), gathered = kgather.count;
    os_unmap_finish(&fl);
    uint64_t free_after = frames_free_count(), left = kgather.count;
    kernel_unlock();
    CHECK(fl.dirs_freed == 3 && gathered == 3, "unmap freed %u directories, gathered %lu", fl.dirs_freed, gathered);
    CHECK(free_before_shootdown == free_mapped, "directories back in the pool before the shootdown");
    CHECK(free_after == free_mapped + 3 && left == 0, "after the shootdown: %lu free (%lu before), %lu gathered",
          free_after, free_mapped, left);
    return true;
}

bool test_basic(void)
{
    uint64_t frame, free0 = frames_free_count();
    CHECK(read_cr3() == kpt.root.pa, "CR3 is not libx86pt's root");
    CHECK(frame_alloc(&frame), "no frame");
    if (!test_alias(frame) || !test_protect() || !test_unmap(frame) || !test_huge() || !test_deferred_free(frame))
        return false;
    frame_free(frame);
    /* Every directory the tests needed was reclaimed on the last unmap. */
    CHECK(frames_free_count() == free0, "frames: %lu free, %lu before", frames_free_count(), free0);
    kprintf("basic: alias, protect, unmap, 2M/1G pages, reclaim and frees deferred to the shootdown checked on "
            "the live tables\n");
    return true;
}
