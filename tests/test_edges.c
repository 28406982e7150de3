/* Edge cases found by an adversarial review of src/: the walk hint across
 * frees, splits and recycled frames; ranges at the ends of the address space;
 * MAXPHYADDR limits; split flags and flush reports; allocation failure in the
 * range paths; odd adopted images; the observe_write record. */
#include "fixture.h"

#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
#define K4 X86PT_PAGE_4K
#define M2 X86PT_PAGE_2M
#define G1 X86PT_PAGE_1G
#define ADDR_MASK 0x000ffffffffff000ull

static uint64_t *slot(struct fx *f, uint64_t dir, unsigned idx) { return (uint64_t *)(f->s.mem + dir) + idx; }
static uint64_t child(struct fx *f, uint64_t dir, unsigned idx) { return *slot(f, dir, idx) & ADDR_MASK; }

/* The directory at depth `depth` on the walk to va (0 = root). */
static uint64_t dir_for(struct fx *f, uint64_t va, unsigned depth)
{
    static const unsigned shift[4] = {39, 30, 21, 12};
    uint64_t dir = f->pt.root.pa;
    for (unsigned l = 0; l < depth; l++)
        dir = child(f, dir, (unsigned)(va >> shift[l]) & 511);
    return dir;
}

static uint64_t *leaf_slot(struct fx *f, uint64_t va, unsigned depth)
{
    static const unsigned shift[4] = {39, 30, 21, 12};
    return slot(f, dir_for(f, va, depth), (unsigned)(va >> shift[depth]) & 511);
}

static void expect_resolves(struct fx *f, uint64_t va, uint64_t pa, uint64_t size, unsigned flags)
{
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(va), &m), X86PT_OK);
    assert_int_equal(m.size, size);
    assert_int_equal(m.base.va, va & ~(size - 1));
    assert_int_equal(m.frame.pa + (va & (size - 1)), pa);
    assert_int_equal(m.flags, flags);
}

static void expect_unmapped(struct fx *f, uint64_t va)
{
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(va), &m), X86PT_E_NOTMAPPED);
}

/* A fixture whose allocator hands out physical frame 0 first (the root there). */
static struct fx *fx_root_at_zero(uint64_t bytes)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_true(sim_phys_init(&f->s, bytes, 0));
    f->s.scribble = true;
    f->mem = sim_phys_mem(&f->s);
    f->width = 52;
    assert_int_equal(x86pt_init(&f->pt, &f->mem, 52), X86PT_OK);
    assert_int_equal(f->pt.root.pa, 0);
    return f;
}

/* ---------------------------------------------------------------- walk hint */

/* After unmap_range frees the page table the hint names, a 2 MiB page mapped
 * in its place is what map, resolve, unmap and protect see. */
static void hint_forgotten_when_unmap_range_frees_its_table(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    uint64_t va = 0x40000000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x5000), K4, 0, NULL), X86PT_OK);
    expect_resolves(f, va, 0x5000, K4, 0); /* the hint now names the PT */
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(va), K4, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_int_equal(fl.dirs_freed, 3);
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x200000), M2, X86PT_WRITABLE, NULL), X86PT_OK);
    expect_resolves(f, va + K4, 0x200000 + K4, M2, X86PT_WRITABLE);
    assert_int_equal(x86pt_map(&f->pt, VA(va + K4), PA(0x1000), K4, 0, NULL), X86PT_E_OVERLAP);
    assert_int_equal(x86pt_unmap(&f->pt, VA(va + K4), NULL, NULL), X86PT_E_NOTMAPPED);
    assert_int_equal(x86pt_protect(&f->pt, VA(va + K4), 0, NULL), X86PT_E_NOTMAPPED);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* The frame of a freed page table, recycled (LIFO allocator) as the page table
 * of another 2 MiB region, is never mistaken for the old one. */
static void hint_survives_recycled_frame_for_other_tag(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    uint64_t a = 0x200000ull, b = 0x400000ull; /* same PD, different PTs */
    assert_int_equal(x86pt_map(&f->pt, VA(a + 7 * K4), PA(0x7000), K4, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(b), PA(0x9000), K4, 0, NULL), X86PT_OK);
    uint64_t pt_a = dir_for(f, a, 3);
    expect_resolves(f, a + 7 * K4, 0x7000, K4, 0);
    assert_int_equal(x86pt_unmap(&f->pt, VA(a + 7 * K4), NULL, NULL), X86PT_OK); /* PT a freed */
    assert_int_equal(x86pt_unmap(&f->pt, VA(b), NULL, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x600000), PA(0xb000), K4, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(b + 3 * K4), PA(0xc000), K4, 0, NULL), X86PT_OK);
    (void)pt_a;
    /* whatever frames were recycled, nothing appears at a */
    for (uint64_t o = 0; o < M2; o += K4)
        expect_unmapped(f, a + o);
    assert_int_equal(x86pt_map(&f->pt, VA(a + 3 * K4), PA(0xd000), K4, 0, NULL), X86PT_OK);
    expect_resolves(f, b + 3 * K4, 0xc000, K4, 0);
    expect_resolves(f, a + 3 * K4, 0xd000, K4, 0);
    expect_resolves(f, 0x600000, 0xb000, K4, 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* A split creates a page table where a 2 MiB page was; the hint then works
 * with it: maps into the hole, unmaps the rest page by page, reclaims it. */
static void hint_works_on_split_tables(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    uint64_t va = 0x7fffffe00000ull; /* the last 2 MiB of the lower half */
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x400000), M2, X86PT_USER, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(va + 5 * K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    expect_unmapped(f, va + 5 * K4);
    assert_int_equal(x86pt_map(&f->pt, VA(va + 5 * K4), PA(0x1000), K4, 0, NULL), X86PT_OK);
    expect_resolves(f, va + 5 * K4, 0x1000, K4, 0);
    for (uint64_t o = 0; o < M2; o += K4)
        assert_int_equal(x86pt_unmap(&f->pt, VA(va + o), NULL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* After adopt frees an empty page table, the adopting handle does not walk
 * into it (its hint starts empty even if the struct held an old one). */
static void hint_reset_by_adopt(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), K4, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x200000), M2, 0, NULL), X86PT_OK);
    expect_resolves(f, 0x1000, 0x1000, K4, 0);
    *leaf_slot(f, 0x1000, 3) = 0; /* edited behind the library's back: the PT is empty */
    assert_int_equal(x86pt_adopt(&f->pt, &f->mem, 52, f->pt.root), X86PT_OK);
    assert_int_equal(f->s.live, 3);
    /* the freed PT is handed out again for another region */
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000ull), PA(0x3000), K4, 0, NULL), X86PT_OK);
    expect_unmapped(f, 0x1000);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x4000), K4, 0, NULL), X86PT_OK);
    expect_resolves(f, 0x1000, 0x4000, K4, 0);
    expect_resolves(f, 0x40000000ull, 0x3000, K4, 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* ------------------------------------------------ physical address 0, edges */

/* With the root at physical 0, every range operation (splits included) and
 * its reclaim works and leaves a tidy tree. */
static void root_at_zero_range_ops(void **state)
{
    (void)state;
    struct fx *f = fx_root_at_zero(16ull << 20);
    uint64_t top = 0xffffffffc0000000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(top), PA(G1), G1, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), 3 * M2 + K4, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(top + M2 + K4), K4, 0, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    expect_resolves(f, top + M2 + K4, G1 + M2 + K4, K4, 0);
    expect_resolves(f, top + M2 + 2 * K4, G1 + M2 + 2 * K4, K4, X86PT_WRITABLE);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(K4), 3 * M2 - K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    expect_resolves(f, 0, 0, K4, 0);
    expect_resolves(f, 3 * M2, 3 * M2, K4, 0);
    fx_check_tree(f, NULL);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0), 4 * M2, X86PT_STRADDLE_FAIL, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(top), G1, X86PT_STRADDLE_FAIL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* Ranges ending at 2^64 (root slot 511) split, protect and unmap; one byte
 * more wraps and is refused without change. */
static void ranges_at_top_of_upper_half(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    uint64_t top = 0xffffffffc0000000ull;
    struct x86pt_flush fl;
    assert_int_equal(x86pt_map(&f->pt, VA(top), PA(5 * G1), G1, X86PT_WRITABLE, NULL), X86PT_OK);
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0xfffffffffffff000ull), 2 * K4, X86PT_STRADDLE_SPLIT, &fl),
                     X86PT_E_NONCANONICAL);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(top), G1 + K4, 0, X86PT_STRADDLE_SPLIT, &fl),
                     X86PT_E_NONCANONICAL);
    assert_int_equal(fl.length, 0);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0xfffffffffffff000ull), PA(0), 2 * K4, 0, X86PT_LARGEST_FIT, NULL),
                     X86PT_E_NONCANONICAL);
    snap_assert_same(f, &sn);
    /* protect the last page only: splits to 2M, then to 4K */
    assert_int_equal(x86pt_protect_range(&f->pt, VA(0xfffffffffffff000ull), K4, X86PT_NO_EXECUTE,
                                         X86PT_STRADDLE_SPLIT, &fl),
                     X86PT_OK);
    assert_int_equal(fl.start.va, top);
    assert_int_equal(fl.length, G1);
    assert_true(fl.flush_all);
    expect_resolves(f, 0xffffffffffffffffull, 5 * G1 + G1 - 1, K4, X86PT_NO_EXECUTE);
    expect_resolves(f, 0xffffffffffffe000ull, 5 * G1 + G1 - 2 * K4, K4, X86PT_WRITABLE);
    expect_resolves(f, top, 5 * G1, M2, X86PT_WRITABLE);
    /* unmap the last 2 MiB + 4 KiB */
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0xffffffffffdff000ull), M2 + K4, X86PT_STRADDLE_SPLIT, &fl),
                     X86PT_OK);
    assert_int_equal(fl.start.va, 0xffffffffffc00000ull); /* the 2M page split at the lower end */
    assert_int_equal(fl.length, 2 * M2);
    assert_int_equal(fl.dirs_freed, 1); /* the last page table */
    expect_unmapped(f, 0xffffffffffffffffull);
    expect_unmapped(f, 0xffffffffffdff000ull);
    expect_resolves(f, 0xffffffffffdfe000ull, 5 * G1 + G1 - M2 - 2 * K4, K4, X86PT_WRITABLE);
    fx_check_tree(f, NULL);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0xffff800000000000ull), 1ull << 47, X86PT_STRADDLE_FAIL, &fl),
                     X86PT_OK);
    assert_int_equal(fl.start.va, 0xffff800000000000ull);
    assert_int_equal(fl.length, 1ull << 47);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* The lower half ends at 2^47: a range up to it works, one page more (into
 * the canonical hole) is refused, as is a range from the hole. */
static void ranges_at_the_canonical_hole(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    uint64_t end = 1ull << 47;
    assert_int_equal(x86pt_map_range(&f->pt, VA(end - M2 - K4), PA(M2 - K4), M2 + K4, 0, X86PT_LARGEST_FIT, NULL),
                     X86PT_OK);
    expect_resolves(f, end - 1, 2 * M2 - 1, M2, 0);
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(end - K4), 2 * K4, X86PT_STRADDLE_SPLIT, NULL),
                     X86PT_E_NONCANONICAL);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(end), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_E_NONCANONICAL);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(end - K4), (1ull << 48), 0, X86PT_STRADDLE_SPLIT, NULL),
                     X86PT_E_NONCANONICAL);
    assert_int_equal(x86pt_map_range(&f->pt, VA(end - K4), PA(0), 2 * K4, 0, X86PT_LARGEST_FIT, NULL),
                     X86PT_E_NONCANONICAL);
    /* a length that wraps past 2^64 back to a canonical lower address */
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0x1000), 0xfffffffffffff000ull, X86PT_STRADDLE_SPLIT, NULL),
                     X86PT_E_NONCANONICAL);
    snap_assert_same(f, &sn);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(end - K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    expect_resolves(f, end - 2 * K4, 2 * M2 - 2 * K4, K4, 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* At MAXPHYADDR 32 a 1 GiB page ending exactly at 4 GiB maps (alone and in a
 * range), splits keep its top frames, one page beyond is PHYSRANGE. */
static void maxphyaddr_32_top_frames(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 32, true);
    uint64_t lim = 1ull << 32;
    assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(lim - G1), G1, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map_range(&f->pt, VA(4 * G1), PA(lim - G1), G1, 0, X86PT_ONLY_1G, NULL), X86PT_OK);
    assert_int_equal(x86pt_map_range(&f->pt, VA(8 * G1), PA(lim - G1 - K4), G1 + K4, 0, X86PT_LARGEST_FIT, NULL),
                     X86PT_OK);
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_map(&f->pt, VA(2 * G1), PA(lim), K4, 0, NULL), X86PT_E_PHYSRANGE);
    assert_int_equal(x86pt_map_range(&f->pt, VA(2 * G1), PA(lim - G1), G1 + K4, 0, X86PT_LARGEST_FIT, NULL),
                     X86PT_E_PHYSRANGE);
    assert_int_equal(x86pt_map_range(&f->pt, VA(2 * G1), PA(lim - K4), 2 * K4, 0, X86PT_LARGEST_FIT, NULL),
                     X86PT_E_PHYSRANGE);
    snap_assert_same(f, &sn);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(2 * G1 - K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    expect_resolves(f, 2 * G1 - 2 * K4, lim - 2 * K4, K4, 0);
    expect_unmapped(f, 2 * G1 - K4);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* ---------------------------------------------------------------- splitting */

/* A split keeps every attribute the hardware reads: G, PWT, PCD, A, D, XD,
 * US, RW in every part, and PAT moves from bit 12 to bit 7 only in 4 KiB
 * parts (at 2 MiB it stays in bit 12); no part gains a bit. */
static void split_keeps_memory_type_and_global(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 46, false);
    uint64_t va = 3 * G1, pa = 9 * G1;
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(pa), G1, X86PT_USER | X86PT_NO_EXECUTE, NULL), X86PT_OK);
    uint64_t attrs = 0x100 | 0x10 | 0x8 | 0x40 | 0x20 | 0x1000; /* G PCD PWT D A PAT */
    *leaf_slot(f, va, 1) |= attrs;
    x86pt_forget_hint(&f->pt);
    /* protect sets the whole flag word: the page keeps its attributes when they are passed */
    assert_int_equal(x86pt_protect_range(&f->pt, VA(va + M2 + K4), K4,
                                         X86PT_USER | X86PT_NO_EXECUTE | X86PT_GLOBAL | X86PT_MEMTYPE(7),
                                         X86PT_STRADDLE_SPLIT, NULL),
                     X86PT_OK);
    uint64_t pd = dir_for(f, va, 2);
    for (unsigned j = 0; j < 512; j++) {
        if (j == 1)
            continue;
        assert_int_equal(*slot(f, pd, j), (pa + j * M2) | 0x80 | 0x7c | 0x100 | 0x1000 | 0x4 | 0x1 | (1ull << 63));
    }
    uint64_t ptab = child(f, pd, 1);
    for (unsigned j = 0; j < 512; j++)
        assert_int_equal(*slot(f, ptab, j), (pa + M2 + j * K4) | 0x80 | 0x100 | 0x7d | (1ull << 63));
    fx_free(f);
}

/* Every split page at both ends is inside the flush report, even when the two
 * ends lie in different huge pages of different sizes and the range itself is
 * small. */
static void flush_covers_splits_at_both_ends(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    struct x86pt_flush fl;
    uint64_t base = 0xffff900000000000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(base), PA(0), G1, 0, NULL), X86PT_OK);        /* [base, +1G) */
    assert_int_equal(x86pt_map(&f->pt, VA(base + G1), PA(M2), M2, 0, NULL), X86PT_OK); /* [+1G, +1G+2M) */
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(base + G1 - K4), 2 * K4, X86PT_STRADDLE_SPLIT, &fl), X86PT_OK);
    assert_int_equal(fl.start.va, base);
    assert_int_equal(fl.length, G1 + M2);
    assert_true(fl.flush_all);
    assert_int_equal(fl.dirs_freed, 0);
    expect_resolves(f, base + G1 - 2 * K4, G1 - 2 * K4, K4, 0);
    expect_resolves(f, base + G1 + K4, M2 + K4, K4, 0);
    expect_resolves(f, base, 0, M2, 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* A range in the middle of one 1 GiB page needs exactly three directories
 * (a PD and two PTs) and takes no more: the pool is spent exactly. */
static void split_cost_is_exact(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(G1), G1, 0, NULL), X86PT_OK);
    uint64_t calls = f->s.alloc_calls, live = f->s.live;
    assert_int_equal(x86pt_protect_range(&f->pt, VA(G1 + M2 - K4), 2 * K4, X86PT_WRITABLE, X86PT_STRADDLE_SPLIT,
                                         NULL),
                     X86PT_OK);
    assert_int_equal(f->s.alloc_calls - calls, 3);
    assert_int_equal(f->s.live - live, 3);
    /* both ends in one 2 MiB part: a PD and one PT */
    assert_int_equal(x86pt_map(&f->pt, VA(4 * G1), PA(G1), G1, 0, NULL), X86PT_OK);
    calls = f->s.alloc_calls;
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(4 * G1 + 5 * M2 + K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    assert_int_equal(f->s.alloc_calls - calls, 2);
    /* an end on a 2 MiB boundary of the 1 GiB page: a PD only */
    assert_int_equal(x86pt_map(&f->pt, VA(7 * G1), PA(G1), G1, 0, NULL), X86PT_OK);
    calls = f->s.alloc_calls;
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(7 * G1 + 4 * M2), G1 - 4 * M2, X86PT_STRADDLE_SPLIT, NULL),
                     X86PT_OK);
    assert_int_equal(f->s.alloc_calls - calls, 1);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* ------------------------------------------------------- allocation failure */

/* unmap_range and protect_range with splits at both ends: a failure at each
 * allocation changes nothing and leaks nothing; then the call succeeds. */
static void range_splits_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    for (int op = 0; op < 2; op++) {
        struct fx *f = fx_new(16ull << 20, 52, op == 1);
        assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(G1), G1, 0, NULL), X86PT_OK);
        assert_int_equal(x86pt_map(&f->pt, VA(2 * G1), PA(G1), G1, 0, NULL), X86PT_OK);
        uint64_t from = 2 * G1 - M2 - K4, len = 2 * M2 + 2 * K4; /* both 1G pages straddle, and 2M parts */
        for (uint64_t n = 1;; n++) {
            struct snapshot sn = snap_take(f);
            struct x86pt_flush fl;
            sim_phys_fail_nth(&f->s, n);
            x86pt_status_t st =
                op == 0 ? x86pt_unmap_range(&f->pt, VA(from), len, X86PT_STRADDLE_SPLIT, &fl)
                        : x86pt_protect_range(&f->pt, VA(from), len, X86PT_WRITABLE, X86PT_STRADDLE_SPLIT, &fl);
            sim_phys_fail_nth(&f->s, 0);
            if (st == X86PT_OK) {
                free(sn.mem);
                free(sn.counts);
                assert_int_equal(n, 5); /* a PD and a PT per 1 GiB page, then the 5th call succeeds */
                break;
            }
            assert_int_equal(st, X86PT_E_NOMEM);
            assert_int_equal(fl.length, 0);
            snap_assert_same(f, &sn);
            assert_int_equal(f->s.bad_frees, 0);
        }
        fx_check_tree(f, NULL);
        fx_free(f);
    }
}

/* An allocator handing a frame the library cannot use in the middle of a
 * range's pool: BADFRAME, every frame given back, nothing changed. */
static struct sim_phys *badframe_sim;
static unsigned badframe_after;
static bool badframe_alloc(void *ctx, x86pt_paddr_t *frame)
{
    (void)ctx;
    if (badframe_after-- == 0) {
        frame->pa = badframe_sim->bytes + 5 * K4; /* outside the count table */
        return true;
    }
    struct x86pt_mem m = sim_phys_mem(badframe_sim);
    return m.alloc_frame(badframe_sim, frame);
}
static uint64_t badframe_returned;
static void badframe_free(void *ctx, x86pt_paddr_t frame)
{
    if (frame.pa >= badframe_sim->bytes) {
        badframe_returned++;
        return;
    }
    struct x86pt_mem m = sim_phys_mem(badframe_sim);
    m.free_frame(ctx, frame);
}

static void range_pool_badframe_changes_nothing(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    badframe_sim = &f->s;
    assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(G1), G1, 0, NULL), X86PT_OK);
    f->pt.mem.alloc_frame = badframe_alloc;
    f->pt.mem.free_frame = badframe_free;
    for (unsigned k = 0; k < 3; k++) {
        struct snapshot sn = snap_take(f);
        badframe_after = k;
        badframe_returned = 0;
        assert_int_equal(x86pt_unmap_range(&f->pt, VA(G1 + M2 - K4), 2 * K4, X86PT_STRADDLE_SPLIT, NULL),
                         X86PT_E_BADFRAME);
        assert_int_equal(badframe_returned, 1);
        snap_assert_same(f, &sn);
        assert_int_equal(f->s.bad_frees, 0);
        struct snapshot sn2 = snap_take(f);
        badframe_after = k;
        assert_int_equal(x86pt_map_range(&f->pt, VA(8 * G1 + M2 - K4), PA(0), 2 * K4, 0, X86PT_LARGEST_FIT, NULL),
                         k < 3 ? X86PT_E_BADFRAME : X86PT_OK);
        snap_assert_same(f, &sn2);
    }
    badframe_after = ~0u;
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(G1 + M2 - K4), 2 * K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* ------------------------------------------------------------------- adopt */

/* An image with huge pages at both ends of the address space, leaves with
 * G/PAT/PWT/PCD/A/D and ignored bits, directory entries with A, and
 * not-present garbage, adopts; its huge pages then split correctly. */
static void adopt_odd_image_then_split(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 40, false);
    uint64_t top = 0xffffffffc0000000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(0), PA(0), G1, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(top), PA((1ull << 40) - G1), G1, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0xffff800000200000ull), PA(0x400000), M2, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x7ffffffff000ull), PA((1ull << 40) - K4), K4, 0, NULL), X86PT_OK);
    *leaf_slot(f, 0, 1) |= 0x1000 | 0x100 | 0x60 | 0xe00 | (0x7full << 52); /* PAT G D A, ignored 9..11, 52..58 */
    *leaf_slot(f, 0x7ffffffff000ull, 3) |= 0x80 | 0x18 | 0x100;                /* PAT PWT PCD G */
    *slot(f, f->pt.root.pa, 0) |= 0x20;                                        /* A on a directory */
    *slot(f, f->pt.root.pa, 17) = 0xfffffffffffffffeull;                       /* not present garbage */
    *slot(f, dir_for(f, top, 1), 3) = 0x1234000ull;                            /* not present */
    memset(f->s.counts, 0x77, f->s.frames * sizeof *f->s.counts);
    struct x86pt pt2;
    assert_int_equal(x86pt_adopt(&pt2, &f->mem, 40, f->pt.root), X86PT_OK);
    f->pt = pt2;
    assert_int_equal(*slot(f, f->pt.root.pa, 17), 0);
    assert_int_equal(*slot(f, dir_for(f, top, 1), 3), 0);
    expect_resolves(f, 0x7ffffffff123ull, (1ull << 40) - K4 + 0x123, K4, X86PT_GLOBAL | X86PT_MEMTYPE(7));
    assert_int_equal(x86pt_protect_range(&f->pt, VA(top + G1 - K4), K4, 0, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    expect_resolves(f, top + G1 - K4, (1ull << 40) - K4, K4, 0);
    expect_resolves(f, top + G1 - 2 * K4, (1ull << 40) - 2 * K4, K4, X86PT_WRITABLE);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(M2 + K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    /* the 2M part keeps PAT in bit 12, G, A, D and the software bits; the 4K part has PAT in bit 7 */
    uint64_t soft = 0xe00 | (0x7full << 52);
    uint64_t e2 = *leaf_slot(f, 0, 2);
    assert_int_equal(e2 & 0xfff00000001fffffull, 0x1000 | 0x100 | 0x80 | 0x60 | 0x1 | soft);
    uint64_t e3 = *leaf_slot(f, M2, 3);
    assert_int_equal(e3, M2 | 0x100 | 0x80 | 0x60 | 0x1 | soft);
    expect_unmapped(f, M2 + K4);
    fx_free(f);
}

/* adopt with the root at physical 0 and a directory at physical 0 deeper
 * down are both plain directories. */
static void adopt_root_at_zero(void **state)
{
    (void)state;
    struct fx *f = fx_root_at_zero(16ull << 20);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), K4, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0xffff800000000000ull), PA(0), G1, 0, NULL), X86PT_OK);
    struct x86pt pt2;
    assert_int_equal(x86pt_adopt(&pt2, &f->mem, 52, x86pt_pa(0)), X86PT_OK);
    f->pt = pt2;
    fx_check_tree(f, NULL);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0), 1ull << 47, X86PT_STRADDLE_FAIL, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0xffff800000000000ull), NULL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* ----------------------------------------------------------- observe_write */

/* A log of reported stores, replayed on a copy of memory taken before the
 * call: every frame the library owns afterwards must read the same (frames
 * allocated during the call start zeroed, as the header says of alloc). */
static struct {
    uint64_t *pa, *v;
    size_t n, cap;
} wlog;

static void wlog_add(void *ctx, x86pt_paddr_t pa, uint64_t v)
{
    (void)ctx;
    if (wlog.n == wlog.cap) {
        wlog.cap = wlog.cap ? 2 * wlog.cap : 4096;
        wlog.pa = realloc(wlog.pa, wlog.cap * sizeof *wlog.pa);
        wlog.v = realloc(wlog.v, wlog.cap * sizeof *wlog.v);
        assert_non_null(wlog.pa);
        assert_non_null(wlog.v);
    }
    wlog.pa[wlog.n] = pa.pa;
    wlog.v[wlog.n++] = v;
}

struct replay {
    uint8_t *mem;
    uint8_t *owned;
};

static struct replay replay_begin(struct fx *f)
{
    struct replay r = {malloc(f->s.bytes), malloc(f->s.frames)};
    assert_non_null(r.mem);
    assert_non_null(r.owned);
    memcpy(r.mem, f->s.mem, f->s.bytes);
    memcpy(r.owned, f->s.owned, f->s.frames);
    wlog.n = 0;
    f->pt.mem.observe_write = wlog_add;
    return r;
}

/* Returns the number of frames whose replay differs. */
static unsigned replay_mismatches(struct fx *f, struct replay *r)
{
    for (uint64_t fr = 0; fr < f->s.frames; fr++)
        if (!r->owned[fr] && f->s.owned[fr])
            memset(r->mem + fr * K4, 0, K4);
    for (size_t i = 0; i < wlog.n; i++)
        memcpy(r->mem + wlog.pa[i], &wlog.v[i], 8);
    unsigned bad = 0;
    for (uint64_t fr = 0; fr < f->s.frames; fr++)
        if (f->s.owned[fr] && memcmp(r->mem + fr * K4, f->s.mem + fr * K4, K4) != 0) {
            bad++;
            if (getenv("REPLAY_TRACE"))
                for (unsigned w = 0; w < 512; w++) {
                    uint64_t a, b;
                    memcpy(&a, r->mem + fr * K4 + 8 * w, 8);
                    memcpy(&b, f->s.mem + fr * K4 + 8 * w, 8);
                    if (a != b) {
                        print_message("frame %#llx word %u replay %#llx real %#llx\n", (unsigned long long)fr * K4, w,
                                      (unsigned long long)a, (unsigned long long)b);
                        break;
                    }
                }
        }
    free(r->mem);
    free(r->owned);
    f->pt.mem.observe_write = NULL;
    return bad;
}

/* map_range, unmap_range (with reclaim) and protect_range without splits,
 * and adopt's normalisation, report every store they make. */
static void observe_write_covers_range_ops_and_adopt(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    struct replay r = replay_begin(f);
    assert_int_equal(x86pt_map_range(&f->pt, VA(G1 - M2 - K4), PA(M2 - K4), G1 + 2 * M2 + 2 * K4, X86PT_WRITABLE,
                                     X86PT_LARGEST_FIT, NULL),
                     X86PT_OK);
    assert_int_equal(replay_mismatches(f, &r), 0);
    *leaf_slot(f, G1 - M2 + 5 * K4, 3) |= 0x60; /* the MMU sets A/D: protect's CAS keeps them */
    r = replay_begin(f);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(G1 - M2 - K4), G1 + 2 * M2 + 2 * K4, X86PT_NO_EXECUTE,
                                         X86PT_STRADDLE_FAIL, NULL),
                     X86PT_OK);
    assert_int_equal(replay_mismatches(f, &r), 0);
    r = replay_begin(f);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(G1 - M2 - K4), 2 * M2 + K4, X86PT_STRADDLE_FAIL, NULL), X86PT_OK);
    assert_int_equal(replay_mismatches(f, &r), 0);
    *slot(f, f->pt.root.pa, 9) = 0x5550000ull; /* not-present garbage */
    assert_int_equal(x86pt_map(&f->pt, VA(600 * G1 + K4), PA(0), K4, 0, NULL), X86PT_OK);
    *leaf_slot(f, 600 * G1 + K4, 3) = 0; /* a PT (and its PD, PDPT) emptied behind the library's back */
    uint64_t live = f->s.live;
    r = replay_begin(f);
    struct x86pt_mem observed = f->mem;
    observed.observe_write = wlog_add;
    assert_int_equal(x86pt_adopt(&f->pt, &observed, 52, f->pt.root), X86PT_OK);
    assert_int_equal(f->s.live, live - 3);
    assert_int_equal(replay_mismatches(f, &r), 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hint_forgotten_when_unmap_range_frees_its_table),
        cmocka_unit_test(hint_survives_recycled_frame_for_other_tag),
        cmocka_unit_test(hint_works_on_split_tables),
        cmocka_unit_test(hint_reset_by_adopt),
        cmocka_unit_test(root_at_zero_range_ops),
        cmocka_unit_test(ranges_at_top_of_upper_half),
        cmocka_unit_test(ranges_at_the_canonical_hole),
        cmocka_unit_test(maxphyaddr_32_top_frames),
        cmocka_unit_test(split_keeps_memory_type_and_global),
        cmocka_unit_test(flush_covers_splits_at_both_ends),
        cmocka_unit_test(split_cost_is_exact),
        cmocka_unit_test(range_splits_fail_cleanly_at_every_allocation),
        cmocka_unit_test(range_pool_badframe_changes_nothing),
        cmocka_unit_test(adopt_odd_image_then_split),
        cmocka_unit_test(adopt_root_at_zero),
        cmocka_unit_test(observe_write_covers_range_ops_and_adopt),
    };
    return cmocka_run_group_tests_name("edges", tests, NULL, NULL);
}
