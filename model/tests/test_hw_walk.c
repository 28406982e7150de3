/*
 * The page walk (hardware.rs valid_pt_walk) and the interpretation (interp_pt_mem) on images
 * built by hand: one mapping of each size, flags combined along the path, MAXPHYADDR, and
 * hostile images (pointers outside memory, cycles, shared subtrees, bad cr3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "hw_image.h"

/* Directory entries carry the most permissive flags: P | RW | US. */
#define DIR(pa) ((uint64_t)(pa) | 7)
#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define PT 0x4000

/* A 4 KiB mapping through all four layers: the walk of any address in the page reaches it,
 * and valid_pt_walk holds at the page's base only. */
static void test_walk_4k(void **state)
{
    (void)state;
    struct image im = image_new(0x10000);
    uint64_t va = va_of(255, 1, 2, 3, 0);
    image_entry(&im, PML4, 255, DIR(PDPT));
    image_entry(&im, PDPT, 1, DIR(PD));
    image_entry(&im, PD, 2, DIR(PT));
    image_entry(&im, PT, 3, UINT64_C(0xabcd000) | 7);
    struct hw_pt_view pt = image_view(&im, PML4, 40);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, va + 0x123, &w), HW_WALK_PAGE);
    assert_int_equal(w.layer, 3);
    assert_int_equal(w.base, va);
    assert_int_equal(w.pte.frame.base, 0xabcd000);
    assert_int_equal(w.pte.frame.size, 4096);
    assert_true(w.pte.flags.is_writable);
    assert_false(w.pte.flags.is_supervisor || w.pte.flags.disable_execute);
    assert_int_equal(w.entry_pa[0], PML4 + 8 * 255);
    assert_int_equal(w.entry_pa[3], PT + 8 * 3);
    assert_true(hw_valid_pt_walk(&pt, va, &w.pte));
    assert_false(hw_valid_pt_walk(&pt, va + 8, &w.pte));
    struct hw_pte other = w.pte;
    other.flags.is_writable = false;
    assert_false(hw_valid_pt_walk(&pt, va, &other));
    /* Neighbours fault at the layer whose entry is Empty. */
    assert_int_equal(hw_pt_walk(&pt, va_of(255, 1, 2, 4, 0), &w), HW_WALK_FAULT);
    assert_int_equal(w.layer, 3);
    assert_int_equal(hw_pt_walk(&pt, va_of(254, 1, 2, 3, 0), &w), HW_WALK_FAULT);
    assert_int_equal(w.layer, 0);
    /* Beyond the spec's 48-bit space there is no mapping. */
    assert_int_equal(hw_pt_walk(&pt, va | HW_MAX_BASE, &w), HW_WALK_FAULT);
    image_free(&im);
}

/* 1 GiB and 2 MiB pages: the frame comes from the layer-1/2 entry, valid_pt_walk needs the
 * address aligned to the page size. */
static void test_walk_large_pages(void **state)
{
    (void)state;
    struct image im = image_new(0x10000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 3, UINT64_C(0x1c0000000) | 0x80 | 1); /* 1 GiB, read-only, sup. */
    image_entry(&im, PDPT, 4, DIR(PD));
    image_entry(&im, PD, 5, UINT64_C(0x7e00000) | 0x80 | 7);     /* 2 MiB */
    struct hw_pt_view pt = image_view(&im, PML4, 36);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, va_of(0, 3, 7, 9, 0x10), &w), HW_WALK_PAGE);
    assert_int_equal(w.layer, 1);
    assert_int_equal(w.base, va_of(0, 3, 0, 0, 0));
    assert_int_equal(w.pte.frame.base, 0x1c0000000);
    assert_int_equal(w.pte.frame.size, HW_L1_ENTRY_SIZE);
    assert_false(w.pte.flags.is_writable);
    assert_true(w.pte.flags.is_supervisor);
    assert_true(hw_valid_pt_walk(&pt, va_of(0, 3, 0, 0, 0), &w.pte));
    assert_false(hw_valid_pt_walk(&pt, va_of(0, 3, 0, 1, 0), &w.pte));
    assert_int_equal(hw_pt_walk(&pt, va_of(0, 4, 5, 511, 0xff8), &w), HW_WALK_PAGE);
    assert_int_equal(w.layer, 2);
    assert_int_equal(w.base, va_of(0, 4, 5, 0, 0));
    assert_int_equal(w.pte.frame.base, 0x7e00000);
    assert_int_equal(w.pte.frame.size, HW_L2_ENTRY_SIZE);
    assert_true(hw_valid_pt_walk(&pt, va_of(0, 4, 5, 0, 0), &w.pte));
    image_free(&im);
}

/* Flags combine along the path: a restriction at any single layer shows in the result:
 * writable = RW at every layer, supervisor = US clear at some layer, XD = XD at some layer. */
static void test_flag_combination(void **state)
{
    (void)state;
    static const uint64_t tables[4] = { PML4, PDPT, PD, PT };
    for (unsigned restricted = 0; restricted < 4; restricted++) {
        for (unsigned which = 0; which < 3; which++) {
            struct image im = image_new(0x10000);
            uint64_t next[4] = { PDPT, PD, PT, 0x99000 };
            for (unsigned l = 0; l < 4; l++) {
                uint64_t v = next[l] | 7;
                if (l == restricted) {
                    if (which == 0)
                        v &= ~HW_BIT_RW;
                    else if (which == 1)
                        v &= ~HW_BIT_US;
                    else
                        v |= HW_BIT_XD;
                }
                image_entry(&im, tables[l], 1, v);
            }
            struct hw_pt_view pt = image_view(&im, PML4, 46);
            struct hw_walk w;
            assert_int_equal(hw_pt_walk(&pt, va_of(1, 1, 1, 1, 0), &w), HW_WALK_PAGE);
            assert_int_equal(w.pte.flags.is_writable, which != 0);
            assert_int_equal(w.pte.flags.is_supervisor, which == 1);
            assert_int_equal(w.pte.flags.disable_execute, which == 2);
            image_free(&im);
        }
    }
}

/* MAXPHYADDR decides whether a frame address bit is valid: bit 40 faults at M = 40 and maps
 * at M = 46; a directory entry with a reserved bit ends the walk at its layer. */
static void test_walk_maxphyaddr(void **state)
{
    (void)state;
    struct image im = image_new(0x10000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 0, DIR(PD));
    image_entry(&im, PD, 0, DIR(PT));
    image_entry(&im, PT, 0, (UINT64_C(1) << 40) | 3);
    struct hw_walk w;
    struct hw_pt_view pt40 = image_view(&im, PML4, 40), pt46 = image_view(&im, PML4, 46);
    assert_int_equal(hw_pt_walk(&pt40, 0, &w), HW_WALK_FAULT);
    assert_int_equal(w.layer, 3);
    assert_int_equal(hw_pt_walk(&pt46, 0, &w), HW_WALK_PAGE);
    assert_int_equal(w.pte.frame.base, UINT64_C(1) << 40);
    image_entry(&im, PDPT, 0, DIR(PD) | (UINT64_C(1) << 50));
    assert_int_equal(hw_pt_walk(&pt46, 0, &w), HW_WALK_FAULT);
    assert_int_equal(w.layer, 1);
    struct hw_pt_view pt52 = image_view(&im, PML4, 52);
    /* At M = 52 bit 50 is an address bit: the PD at 2^50 + PD lies outside memory. */
    assert_int_equal(hw_pt_walk(&pt52, 0, &w), HW_WALK_OUTSIDE);
    assert_int_equal(w.layer, 2);
    image_free(&im);
}

/* The interpretation lists exactly the leaves, sorted by base, with combined flags; lookups
 * by base and by contained address agree with it. */
static void test_interp_small(void **state)
{
    (void)state;
    struct image im = image_new(0x10000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PML4, 511, DIR(PD + 0x4000)); /* a second PDPT at 0x7000 */
    image_entry(&im, PDPT, 1, 0x40000000 | 0x80 | 1);
    image_entry(&im, PDPT, 2, DIR(PD));
    image_entry(&im, PD, 0, DIR(PT));
    image_entry(&im, PD, 7, 0xe00000 | 0x80 | 3 | HW_BIT_XD);
    image_entry(&im, PT, 0, 0x5000 | 5);
    image_entry(&im, PT, 511, 0x6000 | 7 | HW_BIT_A | HW_BIT_D);
    image_entry(&im, PT, 100, 0x6000 | 0x80); /* not present: ignored */
    image_entry(&im, 0x7000, 511, 0x80000000 | 0x80 | 7 | 0x2000); /* reserved bit 13: Empty */
    struct hw_pt_view pt = image_view(&im, PML4, 40);
    struct hw_interp in = { 0 };
    struct hw_interp_diag diag;
    assert_int_equal(hw_interp_pt_mem(&pt, &in, &diag), HW_INTERP_OK);
    assert_int_equal(in.len, 4);
    assert_int_equal(in.map[0].base, va_of(0, 1, 0, 0, 0));
    assert_int_equal(in.map[0].pte.frame.size, HW_L1_ENTRY_SIZE);
    assert_int_equal(in.map[1].base, va_of(0, 2, 0, 0, 0));
    assert_int_equal(in.map[1].pte.frame.base, 0x5000);
    assert_false(in.map[1].pte.flags.is_writable);
    assert_false(in.map[1].pte.flags.is_supervisor);
    assert_int_equal(in.map[2].base, va_of(0, 2, 0, 511, 0));
    assert_int_equal(in.map[3].base, va_of(0, 2, 7, 0, 0));
    assert_true(in.map[3].pte.flags.disable_execute);
    assert_true(in.map[3].pte.flags.is_supervisor);
    for (size_t i = 0; i < in.len; i++) {
        assert_true(hw_valid_pt_walk(&pt, in.map[i].base, &in.map[i].pte));
        assert_non_null(hw_interp_get(&in, in.map[i].base));
        const struct hw_mapping *m = hw_interp_find(&in, in.map[i].base + in.map[i].pte.frame.size - 8);
        assert_ptr_equal(m, &in.map[i]);
    }
    assert_null(hw_interp_get(&in, va_of(0, 2, 0, 1, 0)));
    assert_null(hw_interp_find(&in, va_of(0, 2, 0, 1, 0)));
    assert_null(hw_interp_find(&in, va_of(0, 2, 8, 0, 0)));
    hw_interp_fini(&in);
    image_free(&im);
}

/* An empty root has an empty interpretation. */
static void test_interp_empty(void **state)
{
    (void)state;
    struct image im = image_new(0x2000);
    struct hw_pt_view pt = image_view(&im, PML4, 32);
    struct hw_interp in = { 0 };
    assert_int_equal(hw_interp_pt_mem(&pt, &in, NULL), HW_INTERP_OK);
    assert_int_equal(in.len, 0);
    hw_interp_fini(&in);
    image_free(&im);
}

static enum hw_interp_status interp_status(struct image *im, uint64_t cr3,
                                           struct hw_interp_diag *diag)
{
    struct hw_pt_view pt = image_view(im, cr3, 52);
    struct hw_interp in = { 0 };
    enum hw_interp_status st = hw_interp_pt_mem(&pt, &in, diag);
    char msg[256];
    hw_interp_diag_format(diag, msg, sizeof msg);
    assert_true(msg[0] != 0);
    hw_interp_fini(&in);
    return st;
}

/* A directory pointer outside physical memory is diagnosed with the entry that holds it; a
 * leaf frame outside memory (device memory) is fine. */
static void test_interp_outside(void **state)
{
    (void)state;
    struct image im = image_new(0x8000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 0, UINT64_C(0x4000000000) | 0x80 | 1);
    struct hw_interp_diag d;
    assert_int_equal(interp_status(&im, PML4, &d), HW_INTERP_OK);
    image_entry(&im, PDPT, 5, DIR(0x8000)); /* one frame past the end */
    assert_int_equal(interp_status(&im, PML4, &d), HW_INTERP_E_OUTSIDE);
    assert_int_equal(d.layer, 1);
    assert_int_equal(d.entry_pa, PDPT + 5 * 8);
    assert_int_equal(d.target, 0x8000);
    assert_int_equal(d.vaddr, va_of(0, 5, 0, 0, 0));
    struct hw_walk w;
    struct hw_pt_view pt = image_view(&im, PML4, 52);
    assert_int_equal(hw_pt_walk(&pt, va_of(0, 5, 0, 0, 0), &w), HW_WALK_OUTSIDE);
    assert_int_equal(w.layer, 2);
    image_free(&im);
}

/* A cycle (an entry pointing back to the root) and a shared subtree (two entries, one
 * directory) are both diagnosed as a directory reachable twice; the walk still terminates. */
static void test_interp_cycle_and_sharing(void **state)
{
    (void)state;
    struct image im = image_new(0x8000);
    image_entry(&im, PML4, 511, DIR(PML4)); /* the classic recursive slot */
    struct hw_interp_diag d;
    assert_int_equal(interp_status(&im, PML4, &d), HW_INTERP_E_SHARED);
    assert_int_equal(d.target, PML4);
    assert_int_equal(d.entry_pa, PML4 + 511 * 8);
    struct hw_pt_view pt = image_view(&im, PML4, 52);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, va_of(511, 511, 511, 511, 0), &w), HW_WALK_PAGE);
    /* PT level reads the PML4 itself as a PT: its entry 511 maps frame PML4. */
    assert_int_equal(w.pte.frame.base, PML4);

    image_entry(&im, PML4, 511, 0);
    image_entry(&im, PML4, 1, DIR(PDPT));
    image_entry(&im, PML4, 2, DIR(PDPT));
    assert_int_equal(interp_status(&im, PML4, &d), HW_INTERP_E_SHARED);
    assert_int_equal(d.entry_pa, PML4 + 2 * 8);
    assert_int_equal(d.vaddr, va_of(2, 0, 0, 0, 0));
    image_free(&im);
}

/* cr3 misaligned or outside memory: diagnosed, no read. */
static void test_interp_bad_cr3(void **state)
{
    (void)state;
    struct image im = image_new(0x2000);
    struct hw_interp_diag d;
    assert_int_equal(interp_status(&im, 0x1008, &d), HW_INTERP_E_CR3);
    assert_int_equal(interp_status(&im, 0x2000, &d), HW_INTERP_E_OUTSIDE);
    assert_true(d.at_cr3);
    struct hw_pt_view pt = image_view(&im, 0x2000, 52);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, 0, &w), HW_WALK_OUTSIDE);
    image_free(&im);
}

/* The walk reads through a frame-array memory exactly as through a flat one. */
static void test_views_agree(void **state)
{
    (void)state;
    struct image im = image_new(0x10000);
    image_entry(&im, PML4, 3, DIR(PDPT));
    image_entry(&im, PDPT, 3, DIR(PD));
    image_entry(&im, PD, 3, DIR(PT));
    for (unsigned i = 0; i < 512; i += 3)
        image_entry(&im, PT, i, (UINT64_C(0x100000) + i * 4096) | 5);
    struct hw_pmem pm;
    assert_true(hw_pmem_from_flat(&pm, im.mem, im.bytes));
    struct hw_pt_view flat = image_view(&im, PML4, 40);
    struct hw_pt_view frames = { hw_pmem_view(&pm), PML4, 40 };
    struct hw_interp a = { 0 }, b = { 0 };
    assert_int_equal(hw_interp_pt_mem(&flat, &a, NULL), HW_INTERP_OK);
    assert_int_equal(hw_interp_pt_mem(&frames, &b, NULL), HW_INTERP_OK);
    assert_int_equal(a.len, 171);
    assert_true(hw_interp_equal(&a, &b));
    hw_interp_fini(&a);
    hw_interp_fini(&b);
    hw_pmem_fini(&pm);
    image_free(&im);
}

/* Canonical addresses convert to the spec's 48-bit numbers and back; others are refused. */
static void test_canonical(void **state)
{
    (void)state;
    uint64_t v;
    assert_true(hw_vaddr_from_canonical(UINT64_C(0xffff800000001000), &v));
    assert_int_equal(v, UINT64_C(0x800000001000));
    assert_int_equal(hw_vaddr_to_canonical(v), UINT64_C(0xffff800000001000));
    assert_true(hw_vaddr_from_canonical(UINT64_C(0x7fffffffffff), &v));
    assert_int_equal(hw_vaddr_to_canonical(v), UINT64_C(0x7fffffffffff));
    assert_false(hw_vaddr_from_canonical(UINT64_C(0x800000000000), &v));
    assert_false(hw_vaddr_from_canonical(UINT64_C(0xfffe800000000000), &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_4k),
        cmocka_unit_test(test_walk_large_pages),
        cmocka_unit_test(test_flag_combination),
        cmocka_unit_test(test_walk_maxphyaddr),
        cmocka_unit_test(test_interp_small),
        cmocka_unit_test(test_interp_empty),
        cmocka_unit_test(test_interp_outside),
        cmocka_unit_test(test_interp_cycle_and_sharing),
        cmocka_unit_test(test_interp_bad_cr3),
        cmocka_unit_test(test_views_agree),
        cmocka_unit_test(test_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
