/* Allocation failure injected at every allocation point of many operations:
 * each failing call returns X86PT_E_NOMEM with the table unchanged and no frame
 * leaked, and the same call succeeds once memory is there. */
#include "fixture.h"

static uint64_t rng = 77;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Map with the allocator failing at call 1, 2, ... until the map succeeds. */
static unsigned map_under_every_failure(struct fx *f, uint64_t va, uint64_t size)
{
    unsigned failures = 0;
    uint64_t live_before = f->s.live;
    for (uint64_t n = 1;; n++) {
        struct snapshot sn = snap_take(f);
        sim_phys_fail_nth(&f->s, n);
        x86pt_status_t st = x86pt_map(&f->pt, x86pt_va(va), x86pt_pa(0x40000000), size, X86PT_WRITABLE, NULL);
        sim_phys_fail_nth(&f->s, 0);
        if (st == X86PT_OK) {
            free(sn.mem);
            free(sn.counts);
            break;
        }
        assert_int_equal(st, X86PT_E_NOMEM);
        snap_assert_same(f, &sn);
        failures++;
    }
    fx_check_tree(f, NULL);
    /* one failure point per directory the map needed */
    assert_int_equal(failures, f->s.live - live_before);
    return failures;
}

/* A 4 KiB map into an empty table needs 3 directories: 3 failure points. */
static void first_map_fails_cleanly_at_each_of_three_points(void **state)
{
    (void)state;
    struct fx *f = fx_new(8ull << 20, 52, false);
    assert_int_equal(map_under_every_failure(f, 0x1000, X86PT_PAGE_4K), 3);
    assert_int_equal(f->s.live, 4);
    fx_free(f);
}

/* Random maps of all sizes over a growing table: every failure point of every
 * one of them leaves the view unchanged and leaks nothing. */
static void random_maps_fail_cleanly_everywhere(void **state)
{
    (void)state;
    struct fx *f = fx_new(8ull << 20, 52, false);
    unsigned total = 0, maps = 0;
    for (unsigned i = 0; i < 300; i++) {
        uint64_t size = (uint64_t[]){X86PT_PAGE_4K, X86PT_PAGE_2M, X86PT_PAGE_1G}[rnd() % 3];
        uint64_t va = ((rnd() % 8) << 39 | (rnd() % 8) << 30 | (rnd() % 8) << 21 | (rnd() % 8) << 12) & ~(size - 1);
        struct x86pt_mapping m;
        if (x86pt_resolve(&f->pt, x86pt_va(va), &m) == X86PT_OK)
            continue;
        struct x86pt_flush fl;
        if (x86pt_map(&f->pt, x86pt_va(va), x86pt_pa(0), size, 0, &fl) == X86PT_E_OVERLAP)
            continue;
        assert_int_equal(x86pt_unmap(&f->pt, x86pt_va(va), NULL, NULL), X86PT_OK);
        total += map_under_every_failure(f, va, size);
        maps++;
    }
    print_message("%u maps, %u injected failures\n", maps, total);
    assert_true(maps > 100);
    fx_free(f);
}

/* An unmap_range with a gather that must split: the 1 GiB page at 1 GiB straddles
 * the end of [1 GiB - 8 KiB, 1 GiB + 4 KiB), so it becomes a PD and its first
 * 2 MiB a PT (2 allocations), while the PT of the two pages below 1 GiB and its
 * PD empty (2 directories to gather). A refused allocation at either point
 * leaves table and gather as they were; a gather short of room is refused before
 * the first allocation, even one that would fail. */
static void range_unmap_with_gather_fails_cleanly(void **state)
{
    (void)state;
    struct fx *f = fx_new(8ull << 20, 52, false);
    uint64_t g1 = X86PT_PAGE_1G, from = g1 - 2 * X86PT_PAGE_4K, len = 3 * X86PT_PAGE_4K;
    assert_int_equal(x86pt_map(&f->pt, x86pt_va(g1), x86pt_pa(g1), g1, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map_range(&f->pt, x86pt_va(from), x86pt_pa(0), 2 * X86PT_PAGE_4K, 0, X86PT_ONLY_4K, NULL),
                     X86PT_OK);
    x86pt_paddr_t storage[2] = {x86pt_pa(0x7000), x86pt_pa(0x9000)};
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 1);
    struct snapshot sn = snap_take(f);
    uint64_t calls = f->s.alloc_calls;
    sim_phys_fail_nth(&f->s, 1);
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, x86pt_va(from), len, X86PT_STRADDLE_SPLIT, NULL, &g),
                     X86PT_E_GATHER_FULL);
    sim_phys_fail_nth(&f->s, 0);
    assert_int_equal(f->s.alloc_calls, calls);
    snap_assert_same(f, &sn);
    g.capacity = 2;
    for (uint64_t n = 1; n <= 2; n++) {
        sn = snap_take(f);
        sim_phys_fail_nth(&f->s, n);
        assert_int_equal(x86pt_unmap_range_gather(&f->pt, x86pt_va(from), len, X86PT_STRADDLE_SPLIT, NULL, &g),
                         X86PT_E_NOMEM);
        sim_phys_fail_nth(&f->s, 0);
        snap_assert_same(f, &sn);
        assert_int_equal(g.count, 0);
        assert_int_equal(storage[0].pa, 0x7000);
        assert_int_equal(storage[1].pa, 0x9000);
    }
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, x86pt_va(from), len, X86PT_STRADDLE_SPLIT, &fl, &g), X86PT_OK);
    assert_int_equal(g.count, 2);
    assert_int_equal(fl.dirs_freed, 2);
    x86pt_gather_release(&f->pt, &g);
    /* root, PDPT, the split's PD and PT */
    assert_int_equal(fx_check_tree(f, NULL), 4);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_map_fails_cleanly_at_each_of_three_points),
        cmocka_unit_test(random_maps_fail_cleanly_everywhere),
        cmocka_unit_test(range_unmap_with_gather_fails_cleanly),
    };
    return cmocka_run_group_tests_name("allocation failure", tests, NULL, NULL);
}
