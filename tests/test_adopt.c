/* adopt: taking over an existing image. Well-formed images come back with the
 * same mappings and rebuilt counts; malformed ones are refused unchanged. */
#include "fixture.h"

#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)

static uint64_t *slot(struct fx *f, uint64_t dir, unsigned idx) { return (uint64_t *)(f->s.mem + dir) + idx; }

/* A table with a few mappings at every size, then its counts wiped. */
static struct fx *built(void)
{
    struct fx *f = fx_new(16ull << 20, 46, false);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), X86PT_PAGE_4K, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x200000), X86PT_PAGE_2M, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0xffff800040000000ull), PA(0x40000000), X86PT_PAGE_1G, X86PT_USER, NULL),
                     X86PT_OK);
    return f;
}

static uint64_t child(struct fx *f, uint64_t dir, unsigned idx) { return *slot(f, dir, idx) & 0x000ffffffffff000ull; }

/* Adopting a well-formed image keeps every mapping and rebuilds the counts. */
static void adopt_rebuilds_counts(void **state)
{
    (void)state;
    struct fx *f = built();
    struct refmap before, after;
    refmap_init(&before);
    refmap_init(&after);
    fx_check_tree(f, &before);
    memset(f->s.counts, 0x5a, f->s.frames * sizeof *f->s.counts);
    struct x86pt pt2;
    assert_int_equal(x86pt_adopt(&pt2, &f->mem, 46, f->pt.root), X86PT_OK);
    f->pt = pt2;
    fx_check_tree(f, &after);
    assert_int_equal(after.n, before.n);
    for (size_t i = 0; i < before.n; i++) {
        assert_int_equal(after.m[i].base.va, before.m[i].base.va);
        assert_int_equal(after.m[i].frame.pa, before.m[i].frame.pa);
        assert_int_equal(after.m[i].size, before.m[i].size);
        assert_int_equal(after.m[i].flags, before.m[i].flags);
    }
    /* and the adopted table works: unmapping everything leaves the root */
    for (size_t i = 0; i < before.n; i++)
        assert_int_equal(x86pt_unmap(&f->pt, before.m[i].base, NULL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    refmap_fini(&before);
    refmap_fini(&after);
    fx_free(f);
}

/* Empty directories are unlinked and freed; not-present garbage is cleared;
 * the view does not change. */
static void adopt_prunes_empty_directories(void **state)
{
    (void)state;
    struct fx *f = built();
    uint64_t pdpt = child(f, f->pt.root.pa, 0), pd = child(f, pdpt, 0), ptab = child(f, pd, 0);
    *slot(f, ptab, 1) = 0;                /* the PT is now empty */
    *slot(f, pd, 7) = 0xdead0000ull;      /* not present, junk bits */
    struct x86pt pt2;
    uint64_t live = f->s.live;
    assert_int_equal(x86pt_adopt(&pt2, &f->mem, 46, f->pt.root), X86PT_OK);
    f->pt = pt2;
    assert_int_equal(f->s.live, live - 1);
    assert_int_equal(*slot(f, pd, 0), 0);
    assert_int_equal(*slot(f, pd, 7), 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* A refused adopt changes nothing: not the image, not the counts (which other
 * page tables share), not the handle. */
static void expect_malformed(struct fx *f)
{
    struct snapshot sn = snap_take(f);
    struct x86pt before = f->pt;
    assert_int_equal(x86pt_adopt(&f->pt, &f->mem, 46, f->pt.root), X86PT_E_MALFORMED);
    assert_memory_equal(&f->pt, &before, sizeof before);
    snap_assert_same(f, &sn);
}

/* A cycle (a PD entry pointing back at the root) is refused. */
static void adopt_refuses_cycle(void **state)
{
    (void)state;
    struct fx *f = built();
    uint64_t pdpt = child(f, f->pt.root.pa, 0);
    *slot(f, pdpt, 5) = f->pt.root.pa | 7;
    expect_malformed(f);
    fx_free(f);
}

/* A subtree reachable from two entries is refused. */
static void adopt_refuses_shared_subtree(void **state)
{
    (void)state;
    struct fx *f = built();
    uint64_t pdpt = child(f, f->pt.root.pa, 0);
    *slot(f, pdpt, 9) = *slot(f, pdpt, 0);
    expect_malformed(f);
    fx_free(f);
}

/* A pointer outside the count table (outside physical memory) is refused. */
static void adopt_refuses_pointer_out_of_range(void **state)
{
    (void)state;
    struct fx *f = built();
    *slot(f, f->pt.root.pa, 3) = (1ull << 40) | 7;
    expect_malformed(f);
    fx_free(f);
}

/* A must-be-zero bit in a present entry is refused, at every layer:
 * PS in a PML4 entry, bit 13 of a 2 MiB page, bit MAXPHYADDR of a 4 KiB page. */
static void adopt_refuses_must_be_zero_bits(void **state)
{
    (void)state;
    uint64_t bits[3] = {0x80, 1ull << 13, 1ull << 46};
    for (int k = 0; k < 3; k++) {
        struct fx *f = built();
        uint64_t pdpt = child(f, f->pt.root.pa, 0), pd = child(f, pdpt, 0), ptab = child(f, pd, 0);
        uint64_t *target = k == 0 ? slot(f, f->pt.root.pa, 0) : k == 1 ? slot(f, pd, 1) : slot(f, ptab, 1);
        *target |= bits[k];
        expect_malformed(f);
        fx_free(f);
    }
}

/* A directory without every permission is refused: the library relies on
 * restrictions living in leaves only. */
static void adopt_refuses_restrictive_directory(void **state)
{
    (void)state;
    struct fx *f = built();
    *slot(f, f->pt.root.pa, 0) &= ~2ull;
    expect_malformed(f);
    fx_free(f);
}

/* The count table is indexed by physical frame and may serve several page
 * tables; adopting one of them leaves the others' counts alone (found by an
 * adversarial review: adopt used to wipe the whole table). */
static void adopt_keeps_other_tables_counts(void **state)
{
    (void)state;
    struct fx *f = fx_new(16ull << 20, 52, false);
    struct x86pt other;
    assert_int_equal(x86pt_init(&other, &f->mem, 52), X86PT_OK);
    assert_int_equal(x86pt_map(&other, VA(0x1000), PA(0x1000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&other, VA(0x2000), PA(0x2000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    uint64_t live = f->s.live;
    assert_int_equal(x86pt_adopt(&f->pt, &f->mem, 52, f->pt.root), X86PT_OK);
    struct tree_report rep = tree_scan(&f->s, other.root.pa, 52, NULL);
    assert_null(rep.violation);
    assert_int_equal(x86pt_unmap(&other, VA(0x1000), NULL, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap(&other, VA(0x2000), NULL, NULL), X86PT_OK);
    assert_int_equal(f->s.live, live - 3); /* the other table's PDPT, PD and PT are reclaimed */
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(adopt_rebuilds_counts),
        cmocka_unit_test(adopt_prunes_empty_directories),
        cmocka_unit_test(adopt_refuses_cycle),
        cmocka_unit_test(adopt_refuses_shared_subtree),
        cmocka_unit_test(adopt_refuses_pointer_out_of_range),
        cmocka_unit_test(adopt_refuses_must_be_zero_bits),
        cmocka_unit_test(adopt_refuses_restrictive_directory),
        cmocka_unit_test(adopt_keeps_other_tables_counts),
    };
    return cmocka_run_group_tests_name("adopt", tests, NULL, NULL);
}
