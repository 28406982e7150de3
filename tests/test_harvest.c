/* Accessed/Dirty harvesting (resolve and unmap report the bits, test-and-clear) and
 * iteration, against hand-set entry bits (Intel SDM vol. 3A §4.8: A is bit 5, D bit 6
 * of the entry that maps the page) and hand-listed mappings. */
#include "fixture.h"

#define MB16 (16ull << 20)
#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
#define BIT_A 0x20ull
#define BIT_D 0x40ull

static struct fx *fresh(void) { return fx_new(MB16, 52, false); }

/* resolve reports the leaf's A and D as the MMU left them; none after a fresh map. */
static void resolve_reports_accessed_dirty(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_mapping m;
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x400000), X86PT_PAGE_2M, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x234567), &m), X86PT_OK);
    assert_int_equal(m.ad, 0);
    *fx_leaf_of(f, 0x200000) |= BIT_A;
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x200000), &m), X86PT_OK);
    assert_int_equal(m.ad, X86PT_ACCESSED);
    *fx_leaf_of(f, 0x200000) |= BIT_D;
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x3fffff), &m), X86PT_OK);
    assert_int_equal(m.ad, X86PT_ACCESSED | X86PT_DIRTY);
    fx_free(f);
}

/* unmap with a removed record reports the bits the entry held when it was cleared. */
static void unmap_reports_final_accessed_dirty(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_mapping m;
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), X86PT_PAGE_4K, X86PT_WRITABLE, NULL), X86PT_OK);
    *fx_leaf_of(f, 0x1000) |= BIT_A | BIT_D;
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x1000), &m, NULL), X86PT_OK);
    assert_int_equal(m.ad, X86PT_ACCESSED | X86PT_DIRTY);
    assert_int_equal(m.frame.pa, 0x5000);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x1000), &m, NULL), X86PT_OK);
    assert_int_equal(m.ad, 0);
    fx_free(f);
}

/* Clearing D keeps A and every other bit, says D was set, and asks for the page's
 * invalidation; clearing A alone says it may be skipped; clearing a clear bit writes
 * nothing and asks for nothing. */
static void test_and_clear_keeps_the_rest(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    unsigned was;
    uint64_t va = 0x00007f0000400000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x40000000), X86PT_PAGE_2M,
                               X86PT_WRITABLE | X86PT_USER | X86PT_NO_EXECUTE, NULL),
                     X86PT_OK);
    uint64_t *leaf = fx_leaf_of(f, va);
    *leaf |= BIT_A | BIT_D;
    uint64_t before = *leaf;
    assert_int_equal(before, 0x8000000040000087ull | BIT_A | BIT_D); /* XD, frame, PS, US RW P */
    assert_int_equal(x86pt_test_and_clear_ad(&f->pt, VA(va), X86PT_DIRTY, &was, &fl), X86PT_OK);
    assert_int_equal(was, X86PT_ACCESSED | X86PT_DIRTY);
    assert_int_equal(*leaf, before & ~BIT_D);
    assert_int_equal(fl.start.va, va);
    assert_int_equal(fl.length, X86PT_PAGE_2M);
    assert_false(fl.accessed_only);
    assert_int_equal(fl.dirs_freed, 0);
    assert_int_equal(x86pt_test_and_clear_ad(&f->pt, VA(va), X86PT_DIRTY, &was, &fl), X86PT_OK);
    assert_int_equal(was, X86PT_ACCESSED);
    assert_int_equal(fl.length, 0);
    assert_int_equal(x86pt_test_and_clear_ad(&f->pt, VA(va), X86PT_ACCESSED | X86PT_DIRTY, &was, &fl), X86PT_OK);
    assert_int_equal(was, X86PT_ACCESSED);
    assert_int_equal(*leaf, before & ~(BIT_A | BIT_D));
    assert_int_equal(fl.length, X86PT_PAGE_2M);
    assert_true(fl.accessed_only);
    assert_int_equal(x86pt_test_and_clear_ad(&f->pt, VA(va), 0, &was, &fl), X86PT_OK);
    assert_int_equal(was, 0);
    assert_int_equal(fl.length, 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* Bad arguments: an error and nothing written. */
static void test_and_clear_rejects_bad_arguments(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x200000), X86PT_PAGE_2M, X86PT_WRITABLE, NULL), X86PT_OK);
    *fx_leaf_of(f, 0x200000) |= BIT_A | BIT_D;
    static const struct {
        uint64_t va;
        unsigned bits;
        x86pt_status_t want;
    } bad[] = {
        { 0x200000, 4, X86PT_E_BADFLAGS },                       /* not an A/D bit */
        { 0x201000, X86PT_DIRTY, X86PT_E_NOTMAPPED },            /* inside the 2 MiB page */
        { 0x600000, X86PT_DIRTY, X86PT_E_NOTMAPPED },            /* nothing there */
        { 0x200008, X86PT_DIRTY, X86PT_E_MISALIGNED },
        { 0x0000800000000000ull, X86PT_DIRTY, X86PT_E_NONCANONICAL },
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct x86pt_flush fl = { .length = 99 };
        unsigned was = 99;
        struct snapshot sn = snap_take(f);
        assert_int_equal(x86pt_test_and_clear_ad(&f->pt, VA(bad[i].va), bad[i].bits, &was, &fl), bad[i].want);
        assert_int_equal(fl.length, 0);
        assert_int_equal(was, 99);
        snap_assert_same(f, &sn); /* and frees it */
    }
    fx_free(f);
}

/* What a visitor saw. */
struct seen {
    struct x86pt_mapping m[16];
    unsigned n, ndirs, stop_after;
    uint64_t dir_base[16];
    unsigned dir_layer[16];
};

static bool see_mapping(void *ctx, const struct x86pt_mapping *m)
{
    struct seen *s = ctx;
    assert_true(s->n < 16);
    s->m[s->n++] = *m;
    return s->n != s->stop_after;
}

static bool see_directory(void *ctx, x86pt_vaddr_t base, unsigned layer, x86pt_paddr_t pa)
{
    struct seen *s = ctx;
    (void)pa;
    assert_true(s->ndirs < 16);
    s->dir_base[s->ndirs] = base.va;
    s->dir_layer[s->ndirs++] = layer;
    return true;
}

static void expect(const struct x86pt_mapping *m, uint64_t base, uint64_t frame, uint64_t size, unsigned flags,
                   unsigned ad)
{
    assert_int_equal(m->base.va, base);
    assert_int_equal(m->frame.pa, frame);
    assert_int_equal(m->size, size);
    assert_int_equal(m->flags, flags);
    assert_int_equal(m->ad, ad);
}

/* Every mapping meeting the range, in address order, a straddling huge page whole; the
 * directories on the way before what they map; the high half in canonical form. */
static void iterate_visits_in_address_order(void **state)
{
    (void)state;
    struct fx *f = fresh();
    const unsigned w = X86PT_WRITABLE, u = X86PT_USER, nx = X86PT_NO_EXECUTE;
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000), PA(0x40000000), X86PT_PAGE_1G, w, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x600000), X86PT_PAGE_2M, u, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x5000), PA(0x9000), X86PT_PAGE_4K, w | nx, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x8000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0xffff800000003000ull), PA(0x3000), X86PT_PAGE_4K, w, NULL), X86PT_OK);
    *fx_leaf_of(f, 0x5000) |= BIT_A | BIT_D;
    struct seen s = { .stop_after = 99 };
    struct x86pt_visitor v = { &s, see_mapping, see_directory };
    /* [0x2000, 0x40001000): 0x1000 lies before it; the 1 GiB page straddles its end */
    assert_int_equal(x86pt_iterate(&f->pt, VA(0x2000), 0x40001000 - 0x2000, &v), X86PT_OK);
    assert_int_equal(s.n, 3);
    expect(&s.m[0], 0x5000, 0x9000, X86PT_PAGE_4K, w | nx, X86PT_ACCESSED | X86PT_DIRTY);
    expect(&s.m[1], 0x200000, 0x600000, X86PT_PAGE_2M, u, 0);
    expect(&s.m[2], 0x40000000, 0x40000000, X86PT_PAGE_1G, w, 0);
    assert_int_equal(s.ndirs, 3); /* the PDPT and PD at 0, the page table at 0 */
    assert_int_equal(s.dir_base[0], 0);
    assert_int_equal(s.dir_layer[0], 1);
    assert_int_equal(s.dir_layer[1], 2);
    assert_int_equal(s.dir_layer[2], 3);
    /* the high half */
    memset(&s, 0, sizeof s);
    s.stop_after = 99;
    assert_int_equal(x86pt_iterate(&f->pt, VA(0xffff800000000000ull), 0x10000, &v), X86PT_OK);
    assert_int_equal(s.n, 1);
    expect(&s.m[0], 0xffff800000003000ull, 0x3000, X86PT_PAGE_4K, w, 0);
    assert_int_equal(s.dir_base[0], 0xffff800000000000ull);
    /* a callback that says stop */
    memset(&s, 0, sizeof s);
    s.stop_after = 2;
    assert_int_equal(x86pt_iterate(&f->pt, VA(0), 0x80000000, &v), X86PT_OK);
    assert_int_equal(s.n, 2);
    expect(&s.m[0], 0x1000, 0x8000, X86PT_PAGE_4K, 0, 0);
    expect(&s.m[1], 0x5000, 0x9000, X86PT_PAGE_4K, w | nx, X86PT_ACCESSED | X86PT_DIRTY);
    /* an empty range sees nothing; bad ranges are refused */
    memset(&s, 0, sizeof s);
    assert_int_equal(x86pt_iterate(&f->pt, VA(0x1000), 0, &v), X86PT_OK);
    assert_int_equal(x86pt_iterate(&f->pt, VA(0x1001), 0x1000, &v), X86PT_E_MISALIGNED);
    assert_int_equal(x86pt_iterate(&f->pt, VA(0x00007ffffffff000ull), 0x2000, &v), X86PT_E_NONCANONICAL);
    assert_int_equal(x86pt_iterate(&f->pt, VA(0x0000800000000000ull), 0x1000, &v), X86PT_E_NONCANONICAL);
    struct x86pt_visitor none = { &s, NULL, NULL };
    assert_int_equal(x86pt_iterate(&f->pt, VA(0), 0x1000, &none), X86PT_E_INVAL);
    assert_int_equal(s.n + s.ndirs, 0);
    fx_free(f);
}

/* Iteration agrees with resolve at every mapped page of a random table. */
static void iterate_agrees_with_resolve(void **state)
{
    (void)state;
    struct fx *f = fresh();
    uint64_t seed = 12345;
    for (unsigned i = 0; i < 200; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t va = (seed >> 20) % 4096 * X86PT_PAGE_4K + ((seed >> 40) % 4) * X86PT_PAGE_1G;
        x86pt_map(&f->pt, VA(va), PA(va % MB16), X86PT_PAGE_4K, (unsigned)(seed >> 8) % 8, NULL);
    }
    struct seen s;
    struct x86pt_visitor v = { &s, see_mapping, NULL };
    unsigned total = 0;
    for (uint64_t va = 0; va < 4 * X86PT_PAGE_1G; va += 0x4000) { /* four pages per call */
        memset(&s, 0, sizeof s);
        s.stop_after = 99;
        assert_int_equal(x86pt_iterate(&f->pt, VA(va), 0x4000, &v), X86PT_OK);
        for (unsigned k = 0; k < s.n; k++) {
            struct x86pt_mapping r;
            assert_int_equal(x86pt_resolve(&f->pt, s.m[k].base, &r), X86PT_OK);
            expect(&s.m[k], r.base.va, r.frame.pa, r.size, r.flags, r.ad);
            assert_true(k == 0 || s.m[k].base.va > s.m[k - 1].base.va);
        }
        for (uint64_t p = va; p < va + 0x4000; p += X86PT_PAGE_4K) {
            struct x86pt_mapping r;
            bool listed = false;
            for (unsigned k = 0; k < s.n; k++)
                listed |= s.m[k].base.va == p;
            assert_int_equal(x86pt_resolve(&f->pt, VA(p), &r) == X86PT_OK, listed);
        }
        total += s.n;
    }
    assert_true(total > 150);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolve_reports_accessed_dirty),    cmocka_unit_test(unmap_reports_final_accessed_dirty),
        cmocka_unit_test(test_and_clear_keeps_the_rest),     cmocka_unit_test(test_and_clear_rejects_bad_arguments),
        cmocka_unit_test(iterate_visits_in_address_order),   cmocka_unit_test(iterate_agrees_with_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
