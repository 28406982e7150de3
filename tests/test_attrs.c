/* Mapping attributes (issue 12): memory type, global, protection key, software
 * field, through every call that writes or reports a leaf. Expected entries are
 * spelled from Intel SDM vol. 3A §4.5 tables 4-15 (1 GiB page), 4-17 (2 MiB
 * page), 4-19 (4 KiB page) and §11.12.3 (PAT index = PAT:PCD:PWT), by hand. */
#include "fixture.h"

#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
#define K4 X86PT_PAGE_4K
#define M2 X86PT_PAGE_2M
#define G1 X86PT_PAGE_1G

static struct fx *fresh(void) { return fx_new(64ull << 20, 52, false); }

/* Every PAT index at every page size, written where the SDM says: PWT bit 3,
 * PCD bit 4, PAT bit 7 in a 4 KiB entry and bit 12 in a 2 MiB / 1 GiB entry
 * (whose bit 7 is PS). */
static void memory_type_encoding_at_every_level(void **state)
{
    (void)state;
    static const struct {
        uint64_t size;
        uint64_t pat_bit, ps;
    } levels[3] = { { K4, 0x80, 0 }, { M2, 0x1000, 0x80 }, { G1, 0x1000, 0x80 } };
    for (unsigned l = 0; l < 3; l++) {
        for (unsigned type = 0; type < 8; type++) {
            struct fx *f = fresh();
            uint64_t va = levels[l].size * 3, pa = levels[l].size;
            assert_int_equal(x86pt_map(&f->pt, VA(va), PA(pa), levels[l].size, X86PT_MEMTYPE(type), NULL), X86PT_OK);
            uint64_t want = pa | 0x1 | levels[l].ps | ((type & 1) ? 0x8 : 0) | ((type & 2) ? 0x10 : 0) |
                            ((type & 4) ? levels[l].pat_bit : 0);
            assert_int_equal(*fx_leaf_of(f, va), want);
            struct x86pt_mapping m;
            assert_int_equal(x86pt_resolve(&f->pt, VA(va + 8), &m), X86PT_OK);
            assert_int_equal(m.flags, X86PT_MEMTYPE(type));
            assert_int_equal(m.frame.pa, pa);
            fx_check_tree(f, NULL); /* directory entries stay exactly P|RW|US */
            fx_free(f);
        }
    }
}

/* Hand-encoded vectors with every attribute at once. */
static void every_attribute_hand_vectors(void **state)
{
    (void)state;
    struct fx *f = fresh();
    /* 4 KiB at 0x5000: writable, global, type 5 (PAT 1, PCD 0, PWT 1), key 9, software 0x2ad
     * (low 3 bits 101 -> bits 11..9, high 7 bits 1010101 -> bits 58..52) */
    unsigned fl4 = X86PT_WRITABLE | X86PT_GLOBAL | X86PT_MEMTYPE(5) | X86PT_PKEY(9) | X86PT_SOFTWARE(0x2ad);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), K4, fl4, NULL), X86PT_OK);
    assert_int_equal(*fx_leaf_of(f, 0x1000), 0x5000ull | 0x1 | 0x2 | 0x100 | 0x8 | 0x80 | (9ull << 59) | (5ull << 9) |
                                              (0x55ull << 52));
    /* 2 MiB at 0x400000: user, no-execute, type 6 (PAT 1, PCD 1), key 15, software 0x3ff */
    unsigned fl2 = X86PT_USER | X86PT_NO_EXECUTE | X86PT_MEMTYPE(6) | X86PT_PKEY(15) | X86PT_SOFTWARE(0x3ff);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x400000), M2, fl2, NULL), X86PT_OK);
    assert_int_equal(*fx_leaf_of(f, 0x200000), 0x400000ull | 0x1 | 0x4 | 0x80 | 0x10 | 0x1000 | (15ull << 59) |
                                                (7ull << 9) | (0x7full << 52) | (1ull << 63));
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x1abc), &m), X86PT_OK);
    assert_int_equal(m.flags, fl4);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x3fffff), &m), X86PT_OK);
    assert_int_equal(m.flags, fl2);
    assert_int_equal(X86PT_PKEY_OF(m.flags), 15);
    assert_int_equal(X86PT_SOFTWARE_OF(m.flags), 0x3ff);
    assert_int_equal(X86PT_MEMTYPE_OF(m.flags), 6);
    fx_check_tree(f, NULL);
    /* removal reports them too */
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x200000), &m, NULL), X86PT_OK);
    assert_int_equal(m.flags, fl2);
    fx_free(f);
}

/* protect sets the whole word: attributes change in one store, frame and A/D stay;
 * the report says global when the old entry was global. */
static void protect_changes_attributes(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x600000), M2, X86PT_GLOBAL | X86PT_PKEY(3), NULL), X86PT_OK);
    *fx_leaf_of(f, 0x200000) |= 0x60; /* the MMU set A and D */
    unsigned uc = X86PT_WRITABLE | X86PT_MEMTYPE(X86PT_PAT_POWER_ON_UC) | X86PT_SOFTWARE(1);
    assert_int_equal(x86pt_protect(&f->pt, VA(0x200000), uc, &fl), X86PT_OK);
    assert_int_equal(*fx_leaf_of(f, 0x200000), 0x600000ull | 0x1 | 0x2 | 0x80 | 0x60 | 0x8 | 0x10 | (1ull << 9));
    assert_int_equal(fl.start.va, 0x200000);
    assert_int_equal(fl.length, M2);
    assert_true(fl.global);
    /* no longer global: a CR3 reload drops the stale entry, the report says so */
    assert_int_equal(x86pt_protect(&f->pt, VA(0x200000), X86PT_GLOBAL, &fl), X86PT_OK);
    assert_false(fl.global);
    assert_int_equal(*fx_leaf_of(f, 0x200000), 0x600000ull | 0x1 | 0x80 | 0x60 | 0x100);
    fx_free(f);
}

/* A split keeps every bit of the huge page in each part, PAT moving from bit 12
 * to bit 7 at the 4 KiB level; the report says global. */
static void split_keeps_attributes(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    unsigned attrs = X86PT_GLOBAL | X86PT_MEMTYPE(7) | X86PT_PKEY(5) | X86PT_SOFTWARE(0x201);
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000), PA(0x40000000), G1, X86PT_WRITABLE | attrs, NULL), X86PT_OK);
    *fx_leaf_of(f, 0x40000000) |= 0x20; /* Accessed */
    /* remove one 4 KiB page in the middle: 1 GiB -> 2 MiB pages -> 4 KiB pages */
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0x40201000), K4, X86PT_STRADDLE_SPLIT, &fl), X86PT_OK);
    assert_true(fl.global);
    uint64_t attr4 = 0x8 | 0x10 | 0x80 | 0x100 | (5ull << 59) | (1ull << 9) | (0x40ull << 52);
    uint64_t attr2 = 0x8 | 0x10 | 0x1000 | 0x100 | (5ull << 59) | (1ull << 9) | (0x40ull << 52);
    assert_int_equal(*fx_leaf_of(f, 0x40200000), 0x40200000ull | 0x1 | 0x2 | 0x20 | attr4);
    assert_int_equal(*fx_leaf_of(f, 0x40202000), 0x40202000ull | 0x1 | 0x2 | 0x20 | attr4);
    assert_int_equal(*fx_leaf_of(f, 0x40400000), 0x40400000ull | 0x1 | 0x2 | 0x20 | 0x80 | attr2);
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x40202000), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_WRITABLE | attrs);
    assert_int_equal(m.size, K4);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* Range calls: map_range writes the attributes into every page; protect_range sets
 * them; unmap_range reports global only when a global page went. */
static void range_calls_carry_attributes(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    unsigned wc = X86PT_WRITABLE | X86PT_MEMTYPE(X86PT_PAT_LINUX_WC);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0x1ff000), PA(0x1ff000), M2 + 2 * K4, wc, X86PT_LARGEST_FIT, NULL),
                     X86PT_OK);
    /* 4 KiB at 0x1ff000, 2 MiB at 0x200000, 4 KiB at 0x400000: PWT alone */
    assert_int_equal(*fx_leaf_of(f, 0x1ff000), 0x1ff000ull | 0x1 | 0x2 | 0x8);
    assert_int_equal(*fx_leaf_of(f, 0x200000), 0x200000ull | 0x1 | 0x2 | 0x80 | 0x8);
    assert_int_equal(*fx_leaf_of(f, 0x400000), 0x400000ull | 0x1 | 0x2 | 0x8);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0x400000), K4, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_false(fl.global);
    unsigned wt = X86PT_GLOBAL | X86PT_MEMTYPE(X86PT_PAT_LINUX_WT);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(0x1ff000), M2 + K4, wt, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_false(fl.global); /* none was global before */
    assert_int_equal(*fx_leaf_of(f, 0x1ff000), 0x1ff000ull | 0x1 | 0x100 | 0x8 | 0x10 | 0x80);
    assert_int_equal(*fx_leaf_of(f, 0x200000), 0x200000ull | 0x1 | 0x80 | 0x100 | 0x8 | 0x10 | 0x1000);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0x1ff000), M2 + K4, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_true(fl.global);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* unmap of a global page says global; iterate reports attributes. */
struct seen {
    unsigned n;
    unsigned flags[4];
};
static bool note(void *ctx, const struct x86pt_mapping *m)
{
    struct seen *s = ctx;
    if (s->n < 4)
        s->flags[s->n] = m->flags;
    s->n++;
    return true;
}

static void unmap_and_iterate_report_attributes(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    unsigned a = X86PT_GLOBAL | X86PT_NO_EXECUTE, b = X86PT_USER | X86PT_PKEY(1) | X86PT_SOFTWARE(8);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), K4, a, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x2000), PA(0x2000), K4, b, NULL), X86PT_OK);
    struct seen s = { 0 };
    struct x86pt_visitor v = { &s, note, NULL };
    assert_int_equal(x86pt_iterate(&f->pt, VA(0), M2, &v), X86PT_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.flags[0], a);
    assert_int_equal(s.flags[1], b);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x2000), NULL, &fl), X86PT_OK);
    assert_false(fl.global);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x1000), NULL, &fl), X86PT_OK);
    assert_true(fl.global);
    assert_int_equal(fl.dirs_freed, 3);
    fx_free(f);
}

/* Unknown flag bits are refused and change nothing, at every call that takes flags. */
static void unknown_flag_bits_refused(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), K4, 0, NULL), X86PT_OK);
    struct snapshot sn = snap_take(f);
    for (unsigned bit = 22; bit < 32; bit++) {
        struct x86pt_flush fl = { .length = 7 };
        unsigned bad = 1u << bit;
        assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0), M2, bad, &fl), X86PT_E_BADFLAGS);
        assert_int_equal(fl.length, 0);
        assert_int_equal(x86pt_protect(&f->pt, VA(0x1000), bad, &fl), X86PT_E_BADFLAGS);
        assert_int_equal(x86pt_map_range(&f->pt, VA(0x200000), PA(0), M2, bad, X86PT_LARGEST_FIT, &fl),
                         X86PT_E_BADFLAGS);
        assert_int_equal(x86pt_protect_range(&f->pt, VA(0), M2, bad, X86PT_STRADDLE_FAIL, &fl), X86PT_E_BADFLAGS);
    }
    snap_assert_same(f, &sn);
    fx_free(f);
}

/* adopt takes what the SDM calls valid: software bits and keys in leaves, memory
 * types and G, bits 52..62 and PWT/PCD in directory entries; it still refuses a
 * reserved bit (MAXPHYADDR..51). */
static void adopt_accepts_sdm_valid_bits(void **state)
{
    (void)state;
    struct fx *f = fx_new(64ull << 20, 46, false);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x3000), K4, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x400000), M2, 0, NULL), X86PT_OK);
    uint64_t *pml4e = (uint64_t *)(f->s.mem + f->pt.root.pa);
    uint64_t pdpt = *pml4e & 0x000ffffffffff000ull;
    uint64_t *pdpte = (uint64_t *)(f->s.mem + pdpt);
    uint64_t pd = *pdpte & 0x000ffffffffff000ull;
    uint64_t *pde0 = (uint64_t *)(f->s.mem + pd);
    *fx_leaf_of(f, 0x1000) |= (0x7full << 52) | (0xfull << 59) | 0x100 | 0x80 | 0x18 | 0xe00; /* 4 KiB leaf */
    *fx_leaf_of(f, 0x200000) |= (0x7full << 52) | (0xfull << 59) | 0x1000;                /* 2 MiB leaf */
    *pde0 |= 0x7ffull << 52;                      /* the PDE that references the PT: 52..62 */
    *pdpte |= 0x18 | 0x100 | 0xe00 | (0x7ffull << 52); /* PWT, PCD, G (ignored here), software */
    *pml4e |= 0xe00 | (0x7ffull << 52);
    struct x86pt pt2;
    assert_int_equal(x86pt_adopt(&pt2, &f->mem, 46, f->pt.root), X86PT_OK);
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&pt2, VA(0x1000), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_GLOBAL | X86PT_MEMTYPE(7) | X86PT_PKEY(15) | X86PT_SOFTWARE(0x3ff));
    assert_int_equal(m.frame.pa, 0x3000);
    assert_int_equal(x86pt_resolve(&pt2, VA(0x200000), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_MEMTYPE(4) | X86PT_PKEY(15) | X86PT_SOFTWARE(0x3f8));
    /* the adopted table works: unmapping both frees every directory but the root */
    assert_int_equal(x86pt_unmap(&pt2, VA(0x1000), NULL, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap(&pt2, VA(0x200000), NULL, NULL), X86PT_OK);
    assert_int_equal(f->s.live, 1);
    fx_free(f);

    /* bit 51 with MAXPHYADDR 46 is reserved, in a leaf and in a directory entry */
    for (int k = 0; k < 2; k++) {
        f = fx_new(64ull << 20, 46, false);
        assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x3000), K4, 0, NULL), X86PT_OK);
        uint64_t *target = k ? (uint64_t *)(f->s.mem + f->pt.root.pa) : fx_leaf_of(f, 0x1000);
        *target |= 1ull << 51;
        struct snapshot sn = snap_take(f);
        assert_int_equal(x86pt_adopt(&pt2, &f->mem, 46, f->pt.root), X86PT_E_MALFORMED);
        snap_assert_same(f, &sn);
        fx_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_type_encoding_at_every_level),
        cmocka_unit_test(every_attribute_hand_vectors),
        cmocka_unit_test(protect_changes_attributes),
        cmocka_unit_test(split_keeps_attributes),
        cmocka_unit_test(range_calls_carry_attributes),
        cmocka_unit_test(unmap_and_iterate_report_attributes),
        cmocka_unit_test(unknown_flag_bits_refused),
        cmocka_unit_test(adopt_accepts_sdm_valid_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
