/* Remap in place (issue 12): a mapping's frame and flags replaced in one locked
 * exchange. Expected entries are spelled from Intel SDM vol. 3A §4.5 tables 4-15
 * (1 GiB page), 4-17 (2 MiB page), 4-19 (4 KiB page), §4.8 (A bit 5, D bit 6) and
 * §11.12.3 (PAT index = PAT:PCD:PWT; PAT at bit 7 of a 4 KiB entry, bit 12 of a
 * huge one), by hand. */
#include "fixture.h"

#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
#define K4 X86PT_PAGE_4K
#define M2 X86PT_PAGE_2M
#define G1 X86PT_PAGE_1G

/* Entry bits, SDM vol. 3A table 4-19 and friends. */
#define E_P 0x1ull
#define E_RW 0x2ull
#define E_US 0x4ull
#define E_PWT 0x8ull
#define E_PCD 0x10ull
#define E_A 0x20ull
#define E_D 0x40ull
#define E_PS 0x80ull       /* 2 MiB / 1 GiB: page size */
#define E_PAT4K 0x80ull    /* 4 KiB: PAT */
#define E_G 0x100ull
#define E_PATHUGE 0x1000ull
#define E_XD (1ull << 63)

static struct fx *fresh(unsigned width, bool translated) { return fx_new(64ull << 20, width, translated); }

static uint64_t pa_of(struct fx *f, const uint64_t *entry) { return (uint64_t)((const uint8_t *)entry - f->s.mem); }

static void expect_mapping(const struct x86pt_mapping *m, uint64_t base, uint64_t frame, uint64_t size,
                           unsigned flags, unsigned ad)
{
    assert_int_equal(m->base.va, base);
    assert_int_equal(m->frame.pa, frame);
    assert_int_equal(m->size, size);
    assert_int_equal(m->flags, flags);
    assert_int_equal(m->ad, ad);
}

static void expect_flush(const struct x86pt_flush *fl, uint64_t start, uint64_t length, bool global)
{
    assert_int_equal(fl->start.va, start);
    assert_int_equal(fl->length, length);
    assert_int_equal(fl->global, global);
    assert_int_equal(fl->dirs_freed, 0);
    assert_false(fl->flush_all);
    assert_false(fl->accessed_only);
}

/* What the library told observe_write, and what an "MMU" does behind its back:
 * set bits in the leaf when the leaf's page table is translated for the n-th
 * time (phys_to_virt of a translated fixture). */
static struct {
    unsigned stores;
    uint64_t store_pa, store_value;
    unsigned translations;
    uint64_t watch_dir;        /* the page table holding the leaf */
    unsigned watch_seen, watch_at;
    uint64_t *leaf, mmu_sets;
} spy;

static void spy_write(void *ctx, x86pt_paddr_t pa, uint64_t value)
{
    (void)ctx;
    spy.stores++;
    spy.store_pa = pa.pa;
    spy.store_value = value;
}

static void *spy_translate(void *ctx, x86pt_paddr_t pa)
{
    struct sim_phys *s = ctx;
    spy.translations++;
    if (pa.pa == spy.watch_dir && ++spy.watch_seen == spy.watch_at)
        *spy.leaf |= spy.mmu_sets;
    return s->mem + pa.pa;
}

static void spy_reset(void) { memset(&spy, 0, sizeof spy); }

/* 4 KiB: frame and every attribute replaced; the old entry's A/D, frame, flags
 * reported; the new entry starts with A and D clear; global reported from the
 * old entry; resolve sees the new frame. */
static void remap_4k_hand_vectors(void **state)
{
    (void)state;
    struct fx *f = fresh(52, false);
    struct x86pt_flush fl;
    struct x86pt_mapping old, m;
    const unsigned before = X86PT_WRITABLE | X86PT_NO_EXECUTE | X86PT_GLOBAL;
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), K4, before, NULL), X86PT_OK);
    uint64_t *leaf = fx_leaf_of(f, 0x1000);
    assert_int_equal(*leaf, E_XD | 0x5000 | E_G | E_RW | E_P);
    *leaf |= E_A | E_D; /* the MMU read and wrote the page */
    /* user, type 5 (PAT 1, PCD 0, PWT 1), key 2, software 9 (low bits 001 -> bit 9,
     * high bits 0000001 -> bit 52) */
    const unsigned after = X86PT_USER | X86PT_MEMTYPE(5) | X86PT_PKEY(2) | X86PT_SOFTWARE(9);
    assert_int_equal(x86pt_remap(&f->pt, VA(0x1000), PA(0x9000), after, &old, &fl), X86PT_OK);
    assert_int_equal(*leaf, (2ull << 59) | (1ull << 52) | 0x9000 | (1ull << 9) | E_PAT4K | E_PWT | E_US | E_P);
    assert_int_equal(*leaf, 0x101000000000928dull);
    expect_mapping(&old, 0x1000, 0x5000, K4, before, X86PT_ACCESSED | X86PT_DIRTY);
    expect_flush(&fl, 0x1000, K4, true);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x1abc), &m), X86PT_OK);
    expect_mapping(&m, 0x1000, 0x9000, K4, after, 0);
    assert_int_equal(fx_check_tree(f, NULL), 4); /* PML4, PDPT, PD, PT: the tree is untouched */
    fx_free(f);
}

/* 2 MiB: PS stays, PAT goes to bit 12; three remaps in a row, each reporting what
 * the previous one wrote (A/D clear, since nothing touched the new frame), and
 * global only when the entry replaced was global. */
static void remap_2m_hand_vectors(void **state)
{
    (void)state;
    struct fx *f = fresh(52, false);
    struct x86pt_flush fl;
    struct x86pt_mapping old, m;
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x400000), M2, X86PT_USER, NULL), X86PT_OK);
    uint64_t *leaf = fx_leaf_of(f, 0x200000);
    assert_int_equal(*leaf, 0x400000 | E_PS | E_US | E_P);
    *leaf |= E_A;
    /* writable, type 4: PAT alone, at bit 12 */
    const unsigned wc = X86PT_WRITABLE | X86PT_MEMTYPE(4);
    assert_int_equal(x86pt_remap(&f->pt, VA(0x200000), PA(0xa00000), wc, &old, &fl), X86PT_OK);
    assert_int_equal(*leaf, 0xa00000 | E_PATHUGE | E_PS | E_RW | E_P);
    assert_int_equal(*leaf, 0xa01083ull);
    expect_mapping(&old, 0x200000, 0x400000, M2, X86PT_USER, X86PT_ACCESSED);
    expect_flush(&fl, 0x200000, M2, false);
    /* global, no-execute, type 3 (PCD 1, PWT 1) */
    const unsigned g = X86PT_GLOBAL | X86PT_NO_EXECUTE | X86PT_MEMTYPE(3);
    assert_int_equal(x86pt_remap(&f->pt, VA(0x200000), PA(0x600000), g, &old, &fl), X86PT_OK);
    assert_int_equal(*leaf, E_XD | 0x600000 | E_G | E_PS | E_PCD | E_PWT | E_P);
    expect_mapping(&old, 0x200000, 0xa00000, M2, wc, 0);
    expect_flush(&fl, 0x200000, M2, false);
    /* back to plain: the old entry was global, so is the report */
    assert_int_equal(x86pt_remap(&f->pt, VA(0x200000), PA(0x400000), 0, &old, &fl), X86PT_OK);
    assert_int_equal(*leaf, 0x400000 | E_PS | E_P);
    expect_mapping(&old, 0x200000, 0x600000, M2, g, 0);
    expect_flush(&fl, 0x200000, M2, true);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x3fffff), &m), X86PT_OK);
    expect_mapping(&m, 0x200000, 0x400000, M2, 0, 0);
    assert_int_equal(fx_check_tree(f, NULL), 3); /* PML4, PDPT, PD */
    fx_free(f);
}

/* 1 GiB: D alone set by hand is reported, the new entry carries key, software
 * field (all seven high bits) and type 6 (PAT 1 at bit 12, PCD 1). */
static void remap_1g_hand_vectors(void **state)
{
    (void)state;
    struct fx *f = fresh(52, false);
    struct x86pt_flush fl;
    struct x86pt_mapping old, m;
    const unsigned before = X86PT_NO_EXECUTE | X86PT_GLOBAL | X86PT_MEMTYPE(3);
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000), PA(0xc0000000), G1, before, NULL), X86PT_OK);
    uint64_t *leaf = fx_leaf_of(f, 0x40000000);
    assert_int_equal(*leaf, 0x80000000c0000199ull); /* XD, frame 3 GiB, G, PS, PCD, PWT, P */
    *leaf |= E_D;
    const unsigned after =
        X86PT_WRITABLE | X86PT_USER | X86PT_MEMTYPE(6) | X86PT_SOFTWARE(0x3f8) | X86PT_PKEY(15);
    assert_int_equal(x86pt_remap(&f->pt, VA(0x40000000), PA(0x100000000), after, &old, &fl), X86PT_OK);
    assert_int_equal(*leaf, (15ull << 59) | (0x7full << 52) | 0x100000000ull | E_PATHUGE | E_PS | E_PCD | E_US |
                                E_RW | E_P);
    assert_int_equal(*leaf, 0x7ff0000100001097ull);
    expect_mapping(&old, 0x40000000, 0xc0000000, G1, before, X86PT_DIRTY);
    expect_flush(&fl, 0x40000000, G1, true);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x7fffffff), &m), X86PT_OK);
    expect_mapping(&m, 0x40000000, 0x100000000ull, G1, after, 0);
    assert_int_equal(fx_check_tree(f, NULL), 2); /* PML4, PDPT */
    fx_free(f);
}

/* old and flush may be NULL. */
static void remap_without_record_or_report(void **state)
{
    (void)state;
    struct fx *f = fresh(52, false);
    assert_int_equal(x86pt_map(&f->pt, VA(0xffff800000003000ull), PA(0x3000), K4, X86PT_WRITABLE, NULL), X86PT_OK);
    *fx_leaf_of(f, 0xffff800000003000ull) |= E_A | E_D;
    assert_int_equal(x86pt_remap(&f->pt, VA(0xffff800000003000ull), PA(0x4000), X86PT_WRITABLE, NULL, NULL), X86PT_OK);
    assert_int_equal(*fx_leaf_of(f, 0xffff800000003000ull), 0x4000 | E_RW | E_P);
    fx_free(f);
}

/* Every refusal: the right code, memory and counts bit-for-bit unchanged, the
 * flush report zeroed, *old untouched. The order of the checks: flags, then the
 * virtual address, then the walk, then the frame against the page found (its
 * alignment before its range). MAXPHYADDR 40, so that a 1 GiB page can reach it. */
static void remap_refusals_change_nothing(void **state)
{
    (void)state;
    struct fx *f = fresh(40, false);
    const uint64_t top = 1ull << 40;
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), K4, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x400000), M2, X86PT_USER | X86PT_GLOBAL, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000), PA(0x80000000), G1, X86PT_NO_EXECUTE, NULL), X86PT_OK);
    *fx_leaf_of(f, 0x1000) |= E_A | E_D;
    *fx_leaf_of(f, 0x40000000) |= E_D;
    static const struct {
        uint64_t va, pa;
        unsigned flags;
        x86pt_status_t want;
    } bad[] = {
        { 0x1000, 0x9000, 1u << 22, X86PT_E_BADFLAGS },                     /* above the software field */
        { 0x1000, 0x9000, 0x80000000u, X86PT_E_BADFLAGS },
        { 0x0000800000000000ull, 0x9008, 1u << 22, X86PT_E_BADFLAGS },      /* flags come first */
        { 0x0000800000000000ull, 0x9000, 0, X86PT_E_NONCANONICAL },
        { 0xffff7ffffffff000ull, 0x9000, 0, X86PT_E_NONCANONICAL },         /* bit 47 differs from 63..48 */
        { 0x0000800000000008ull, 0x9000, 0, X86PT_E_NONCANONICAL },         /* canonical before aligned */
        { 0x1008, 0x9000, 0, X86PT_E_MISALIGNED },
        { 0x2000, 0x9000, 0, X86PT_E_NOTMAPPED },                           /* nothing there */
        { 0x201000, 0x400000, 0, X86PT_E_NOTMAPPED },                       /* inside the 2 MiB page */
        { 0x40200000, 0x80000000, 0, X86PT_E_NOTMAPPED },                   /* inside the 1 GiB page */
        { 0x2000, 0x9008, 0, X86PT_E_NOTMAPPED },                           /* the walk before the frame */
        { 0x1000, 0x9800, 0, X86PT_E_MISALIGNED },
        { 0x200000, 0x401000, 0, X86PT_E_MISALIGNED },                      /* 4 KiB-aligned, page 2 MiB */
        { 0x40000000, 0x40200000, 0, X86PT_E_MISALIGNED },                  /* 2 MiB-aligned, page 1 GiB */
        { 0x1000, top, 0, X86PT_E_PHYSRANGE },
        { 0x200000, top, 0, X86PT_E_PHYSRANGE },
        { 0x40000000, top, 0, X86PT_E_PHYSRANGE },
        { 0x40000000, 1ull << 51, 0, X86PT_E_PHYSRANGE },
        { 0x1000, 0xfffffffffffff000ull, 0, X86PT_E_PHYSRANGE },            /* pa + size wraps */
        { 0x40000000, top + 0x200000, 0, X86PT_E_MISALIGNED },              /* alignment before range */
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct x86pt_flush fl = { VA(0x1234), 99, 7, true, true, true };
        struct x86pt_mapping old, untouched;
        memset(&old, 0xa5, sizeof old);
        memcpy(&untouched, &old, sizeof old);
        struct snapshot sn = snap_take(f);
        assert_int_equal(x86pt_remap(&f->pt, VA(bad[i].va), PA(bad[i].pa), bad[i].flags, &old, &fl), bad[i].want);
        assert_int_equal(fl.start.va, 0);
        assert_int_equal(fl.length, 0);
        assert_int_equal(fl.dirs_freed, 0);
        assert_false(fl.flush_all);
        assert_false(fl.global);
        assert_false(fl.accessed_only);
        assert_memory_equal(&old, &untouched, sizeof old);
        snap_assert_same(f, &sn); /* and frees it */
    }
    /* the last frame below MAXPHYADDR is fine at every size */
    struct x86pt_mapping old;
    assert_int_equal(x86pt_remap(&f->pt, VA(0x1000), PA(top - K4), 0, &old, NULL), X86PT_OK);
    expect_mapping(&old, 0x1000, 0x5000, K4, X86PT_WRITABLE, X86PT_ACCESSED | X86PT_DIRTY);
    assert_int_equal(*fx_leaf_of(f, 0x1000), 0xfffffff000ull | E_P);
    assert_int_equal(x86pt_remap(&f->pt, VA(0x200000), PA(top - M2), 0, &old, NULL), X86PT_OK);
    assert_int_equal(*fx_leaf_of(f, 0x200000), 0xffffe00000ull | E_PS | E_P);
    assert_int_equal(x86pt_remap(&f->pt, VA(0x40000000), PA(top - G1), 0, &old, NULL), X86PT_OK);
    expect_mapping(&old, 0x40000000, 0x80000000, G1, X86PT_NO_EXECUTE, X86PT_DIRTY);
    assert_int_equal(*fx_leaf_of(f, 0x40000000), 0xffc0000000ull | E_PS | E_P);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* Right after a map, the handle's walk hint names the page table: a remap of
 * its neighbour walks from there (two translations of the page table: the slot
 * read and the exchange, none of the directories above) and is as right. */
static void remap_through_the_walk_hint(void **state)
{
    (void)state;
    struct fx *f = fresh(52, true);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), K4, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x2000), PA(0x6000), K4, X86PT_WRITABLE, NULL), X86PT_OK);
    uint64_t *leaf = fx_leaf_of(f, 0x2000);
    *leaf |= E_A;
    spy_reset();
    f->pt.mem.phys_to_virt = spy_translate;
    struct x86pt_mapping old, m;
    struct x86pt_flush fl;
    assert_int_equal(x86pt_remap(&f->pt, VA(0x2000), PA(0x7000), X86PT_NO_EXECUTE, &old, &fl), X86PT_OK);
    assert_int_equal(spy.translations, 2);
    assert_int_equal(*leaf, E_XD | 0x7000 | E_P);
    assert_int_equal(*fx_leaf_of(f, 0x1000), 0x5000 | E_RW | E_P); /* the neighbour is untouched */
    expect_mapping(&old, 0x2000, 0x6000, K4, X86PT_WRITABLE, X86PT_ACCESSED);
    expect_flush(&fl, 0x2000, K4, false);
    /* the hint still holds, for the other page too */
    spy_reset();
    assert_int_equal(x86pt_remap(&f->pt, VA(0x1000), PA(0x8000), X86PT_USER, &old, NULL), X86PT_OK);
    assert_int_equal(spy.translations, 2);
    expect_mapping(&old, 0x1000, 0x5000, K4, X86PT_WRITABLE, 0);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x2fff), &m), X86PT_OK);
    expect_mapping(&m, 0x2000, 0x7000, K4, X86PT_NO_EXECUTE, 0);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x1000), &m), X86PT_OK);
    expect_mapping(&m, 0x1000, 0x8000, K4, X86PT_USER, 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* The MMU sets A and D after the walk has read the entry and before the
 * remap's store (on the second translation of the page table, the first being
 * the walk's read): the exchange returns them; the new entry has neither. */
static void accessed_dirty_set_after_the_walk_reach_the_caller(void **state)
{
    (void)state;
    static const struct {
        uint64_t va, size;
        unsigned depth; /* layer of the leaf */
    } cases[] = { { 0x5000, K4, 3 }, { 0x600000, M2, 2 }, { 0x80000000, G1, 1 } };
    for (unsigned c = 0; c < 3; c++) {
        struct fx *f = fresh(52, true);
        uint64_t va = cases[c].va, size = cases[c].size;
        assert_int_equal(x86pt_map(&f->pt, VA(va), PA(size), size, X86PT_WRITABLE, NULL), X86PT_OK);
        x86pt_forget_hint(&f->pt); /* a whole walk from the root, whatever the size */
        uint64_t *leaf = fx_leaf_of(f, va);
        spy_reset();
        spy.leaf = leaf;
        spy.watch_dir = pa_of(f, leaf) & ~0xfffull;
        spy.watch_at = 2;
        spy.mmu_sets = E_A | E_D;
        f->pt.mem.phys_to_virt = spy_translate;
        struct x86pt_mapping old;
        assert_int_equal(x86pt_remap(&f->pt, VA(va), PA(2 * size), X86PT_WRITABLE, &old, NULL), X86PT_OK);
        assert_true(spy.watch_seen >= 2); /* the MMU did get its turn */
        expect_mapping(&old, va, size, size, X86PT_WRITABLE, X86PT_ACCESSED | X86PT_DIRTY);
        assert_int_equal(*leaf, 2 * size | (size == K4 ? 0 : E_PS) | E_RW | E_P);
        fx_free(f);
    }
}

/* observe_write hears of exactly one store, at the leaf's physical address,
 * with the new entry: there is never an empty entry in between. */
static void one_store_reported(void **state)
{
    (void)state;
    struct fx *f = fresh(52, false);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x5000), K4, X86PT_WRITABLE | X86PT_GLOBAL, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x40200000), PA(0x200000), M2, X86PT_USER, NULL), X86PT_OK);
    *fx_leaf_of(f, 0x1000) |= E_A | E_D;
    *fx_leaf_of(f, 0x40200000) |= E_D;
    f->pt.mem.observe_write = spy_write;
    spy_reset();
    assert_int_equal(x86pt_remap(&f->pt, VA(0x1000), PA(0x6000), X86PT_WRITABLE, NULL, NULL), X86PT_OK);
    assert_int_equal(spy.stores, 1);
    assert_int_equal(spy.store_pa, pa_of(f, fx_leaf_of(f, 0x1000)));
    assert_int_equal(spy.store_value, 0x6000 | E_RW | E_P);
    spy_reset();
    assert_int_equal(x86pt_remap(&f->pt, VA(0x40200000), PA(0x800000), X86PT_MEMTYPE(1), NULL, NULL), X86PT_OK);
    assert_int_equal(spy.stores, 1);
    assert_int_equal(spy.store_pa, pa_of(f, fx_leaf_of(f, 0x40200000)));
    assert_int_equal(spy.store_value, 0x800000 | E_PS | E_PWT | E_P);
    /* a refusal stores nothing */
    spy_reset();
    assert_int_equal(x86pt_remap(&f->pt, VA(0x40200000), PA(0x801000), 0, NULL, NULL), X86PT_E_MISALIGNED);
    assert_int_equal(spy.stores, 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(remap_4k_hand_vectors),
        cmocka_unit_test(remap_2m_hand_vectors),
        cmocka_unit_test(remap_1g_hand_vectors),
        cmocka_unit_test(remap_without_record_or_report),
        cmocka_unit_test(remap_refusals_change_nothing),
        cmocka_unit_test(remap_through_the_walk_hint),
        cmocka_unit_test(accessed_dirty_set_after_the_walk_reach_the_caller),
        cmocka_unit_test(one_store_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
