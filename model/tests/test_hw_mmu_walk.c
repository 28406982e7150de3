/*
 * Non-atomic walks (rl3.rs WalkInit, WalkStep, WalkAbort, TLBFill) and the Accessed/Dirty
 * updates they make (SDM 4.8). Expected values are derived by hand from the image below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hw_image.h"

#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define PT_A 0x4000
#define PT_B 0x5000
#define DIR(pa) ((uint64_t)(pa) | 7)
#define FRAME_X 0x100000   /* PT_A[1] */
#define FRAME_Y 0x200000   /* PT_B[1] */
#define FRAME_Z 0x300000   /* written into PT_A[1] while a walk is in flight */
#define VA va_of(0, 0, 0, 1, 0)        /* = 0x1000 */
#define VA_EMPTY va_of(0, 0, 0, 7, 0)  /* PT_A[7] = 0 */
#define VA_RSVD va_of(0, 0, 0, 8, 0)   /* PT_A[8] has a must-be-zero bit set */
#define BIT45 (UINT64_C(1) << 45)      /* beyond MAXPHYADDR 40: must be zero */

static const struct hw_consts C = { .NUMA_no = 1, .core_no = 2, .phys_mem_size = 0x4000,
                                    .maxphyaddr = 40, .mmu_walks = 2, .mmu_pscache = 4,
                                    .mmu_sbuf = 4 };
static const struct hw_core CORE0 = { 0, 0 };

static struct hw_vars make_state(void)
{
    struct image im = image_new(0x8000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 0, DIR(PD));
    image_entry(&im, PD, 0, DIR(PT_A));
    image_entry(&im, PT_A, 1, FRAME_X | 7);
    image_entry(&im, PT_A, 8, FRAME_X | 7 | BIT45);
    image_entry(&im, PT_B, 1, FRAME_Y | 7);
    struct hw_pmem pm;
    assert_true(hw_pmem_from_flat(&pm, im.mem, im.bytes));
    struct hw_vars s;
    assert_true(hw_init(&C, &s, &pm, PML4));
    hw_pmem_fini(&pm);
    image_free(&im);
    return s;
}

/* A step that must be taken: *s becomes the new state *n. */
static void advance(struct hw_vars *s, struct hw_vars *n, enum hw_step_status st)
{
    assert_int_equal(st, HW_STEP_OK);
    hw_vars_fini(s);
    *s = *n;
}

static uint64_t pt_word(const struct hw_vars *s, uint64_t pa)
{
    return hw_pmem_read(&s->global_pt.mem, pa);
}

static const struct hw_mmu_core *core0(const struct hw_vars *s)
{
    return hw_core_mmu_const(&C, s, CORE0);
}

/* Start a walk of va on core 0 (it becomes walk 0: the only one) and take `steps` steps. */
static void walk(struct hw_vars *s, uint64_t va, enum hw_access access, unsigned steps)
{
    struct hw_vars n;
    advance(s, &n, hw_step_WalkInit(&C, s, CORE0, va, access, NULL, &n));
    for (unsigned i = 0; i < steps; i++)
        advance(s, &n, hw_step_WalkStep(&C, s, CORE0, 0, &n));
}

/* The frame an atomic walk of va finds in s (0 if it faults). */
static uint64_t atomic_frame(const struct hw_vars *s, uint64_t va)
{
    struct hw_pt_view pt = hw_vars_pt_view(&C, s);
    struct hw_walk w;
    return hw_pt_walk(&pt, va, &w) == HW_WALK_PAGE ? w.pte.frame.base : 0;
}

/* A walk that reads PD before a relink and PT_A after PT_A is reused fills a translation
 * (VA -> Z) that no memory state ever held (they map VA to X, Y, Y). */
static void test_interleaved_walk_fills_impossible_translation(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n, s1, s2;
    uint64_t before = atomic_frame(&s, VA);
    walk(&s, VA, HW_ACCESS_READ, 3);  /* PML4E, PDPTE, PDE (-> PT_A) read */
    advance(&s, &n, hw_step_PTMemOp(&C, &s, PD, DIR(PT_B), &n));
    assert_true(hw_vars_copy(&s1, &s));
    advance(&s, &n, hw_step_PTMemOp(&C, &s, PT_A + 8, FRAME_Z | 7, &n));
    assert_true(hw_vars_copy(&s2, &s));
    advance(&s, &n, hw_step_WalkStep(&C, &s, CORE0, 0, &n));
    assert_true(core0(&s)->walks[0].complete);
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    const struct hw_pte *got = hw_tlb_get(hw_core_tlb_const(&C, &s, CORE0), 0x1000);
    assert_non_null(got);
    assert_int_equal(got->frame.base, FRAME_Z);
    assert_int_equal(got->frame.size, 0x1000);
    assert_true(got->flags.is_writable);
    assert_false(got->flags.is_supervisor);
    assert_int_equal(core0(&s)->nwalks, 0);
    assert_int_equal(before, FRAME_X);
    assert_int_equal(atomic_frame(&s1, VA), FRAME_Y);
    assert_int_equal(atomic_frame(&s2, VA), FRAME_Y);
    hw_vars_fini(&s1);
    hw_vars_fini(&s2);
    hw_vars_fini(&s);
}

/* Each WalkStep sets A in exactly the entry it read, one level at a time. */
static void test_accessed_set_at_each_step(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n;
    static const uint64_t pa[4] = { PML4, PDPT, PD, PT_A + 8 };
    static const uint64_t with_a[4] = { 0x2027, 0x3027, 0x4027, 0x100027 };
    static const uint64_t without_a[4] = { 0x2007, 0x3007, 0x4007, 0x100007 };
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    for (unsigned step = 0; step < 4; step++) {
        advance(&s, &n, hw_step_WalkStep(&C, &s, CORE0, 0, &n));
        for (unsigned l = 0; l < 4; l++)
            assert_int_equal(pt_word(&s, pa[l]), l <= step ? with_a[l] : without_a[l]);
    }
    hw_vars_fini(&s);
}

/* A walk that meets an empty PTE sets A in the three directories it used, leaves the empty
 * entry zero, and ends without filling anything. */
static void test_faulting_walk_sets_accessed_above_the_fault(void **state)
{
    (void)state;
    struct hw_vars s = make_state();
    walk(&s, VA_EMPTY, HW_ACCESS_WRITE, 4);
    assert_int_equal(pt_word(&s, PML4), 0x2027);
    assert_int_equal(pt_word(&s, PDPT), 0x3027);
    assert_int_equal(pt_word(&s, PD), 0x4027);
    assert_int_equal(pt_word(&s, PT_A + 7 * 8), 0);
    assert_int_equal(core0(&s)->nwalks, 0);
    assert_int_equal(hw_core_tlb_const(&C, &s, CORE0)->len, 0);
    hw_vars_fini(&s);
}

/* A present PTE with a must-be-zero bit ends the walk with no fill, and (the documented
 * hostile choice) gets A set. */
static void test_reserved_bit_fault_sets_accessed(void **state)
{
    (void)state;
    struct hw_vars s = make_state();
    walk(&s, VA_RSVD, HW_ACCESS_READ, 4);
    assert_int_equal(pt_word(&s, PT_A + 8 * 8), FRAME_X | 0x27 | BIT45);
    assert_int_equal(core0(&s)->nwalks, 0);
    assert_int_equal(hw_core_tlb_const(&C, &s, CORE0)->len, 0);
    hw_vars_fini(&s);
}

/* D appears in the leaf only when a write walk fills the TLB: not for reads or fetches, and
 * not merely when the write walk completes. */
static void test_dirty_only_on_write_fill(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n;
    walk(&s, VA, HW_ACCESS_READ, 4);
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    walk(&s, VA, HW_ACCESS_EXEC, 4);
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    assert_int_equal(pt_word(&s, PT_A + 8), 0x100027);
    walk(&s, VA, HW_ACCESS_WRITE, 4);
    assert_int_equal(pt_word(&s, PT_A + 8), 0x100027);
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    assert_int_equal(pt_word(&s, PT_A + 8), 0x100067);
    assert_int_equal(pt_word(&s, PD), 0x4027); /* no D in directories */
    hw_vars_fini(&s);
}

/* If the leaf is remapped between completion and fill, the write's fill sets no D in the new
 * entry, and the TLB still gets the frame the walk saw. */
static void test_no_dirty_in_a_remapped_leaf(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n;
    walk(&s, VA, HW_ACCESS_WRITE, 4);
    advance(&s, &n, hw_step_PTMemOp(&C, &s, PT_A + 8, FRAME_Y | 7, &n));
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    assert_int_equal(pt_word(&s, PT_A + 8), FRAME_Y | 7);
    const struct hw_pte *got = hw_tlb_get(hw_core_tlb_const(&C, &s, CORE0), 0x1000);
    assert_non_null(got);
    assert_int_equal(got->frame.base, FRAME_X);
    hw_vars_fini(&s);
}

/* A 2 MiB leaf completes at the PD: base rounded to 2 MiB, rights combined (the PDE clears
 * RW and sets XD), and D lands in the PDE. */
static void test_huge_page_walk(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n;
    uint64_t pde = 0x600000 | HW_BIT_PS | HW_BIT_P | HW_BIT_US | HW_BIT_XD;
    advance(&s, &n, hw_step_PTMemOp(&C, &s, PD + 8, pde, &n));
    walk(&s, va_of(0, 0, 1, 5, 0x18), HW_ACCESS_WRITE, 3);
    assert_true(core0(&s)->walks[0].complete);
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    const struct hw_pte *got = hw_tlb_get(hw_core_tlb_const(&C, &s, CORE0), 0x200000);
    assert_non_null(got);
    assert_int_equal(got->frame.base, 0x600000);
    assert_int_equal(got->frame.size, 0x200000);
    assert_false(got->flags.is_writable);
    assert_false(got->flags.is_supervisor);
    assert_true(got->flags.disable_execute);
    assert_int_equal(pt_word(&s, PD + 8), pde | HW_BIT_A | HW_BIT_D);
    hw_vars_fini(&s);
}

/* WalkAbort drops a walk and nothing else; the bound of two walks per core refuses a third;
 * a duplicate start is the same set. */
static void test_abort_and_bound(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n, before;
    assert_true(hw_vars_copy(&before, &s));
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    assert_int_equal(core0(&s)->nwalks, 1);
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VA_EMPTY, HW_ACCESS_READ, NULL, &n));
    n.ntlbs = 12345;
    assert_int_equal(hw_step_WalkInit(&C, &s, CORE0, VA_RSVD, HW_ACCESS_READ, NULL, &n),
                     HW_STEP_E_FULL);
    assert_int_equal(n.ntlbs, 12345);
    advance(&s, &n, hw_step_WalkAbort(&C, &s, CORE0, 1, &n));
    advance(&s, &n, hw_step_WalkAbort(&C, &s, CORE0, 0, &n));
    assert_true(hw_vars_equal(&s, &before));
    assert_int_equal(hw_vars_hash(&s), hw_vars_hash(&before));
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

/* Every refused walk step builds nothing and leaves the old state as it was. */
static void test_refused_walk_steps_leave_state(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n, before;
    walk(&s, VA, HW_ACCESS_READ, 2);
    assert_true(hw_vars_copy(&before, &s));
    struct hw_core bad = { 0, 2 };
    n.ntlbs = 12345;  /* sentinel: a refused step does not write *s2 */
    struct { enum hw_step_status got, want; } cases[] = {
        { hw_step_WalkInit(&C, &s, bad, VA, HW_ACCESS_READ, NULL, &n), HW_STEP_E_CORE },
        { hw_step_WalkInit(&C, &s, CORE0, VA + 4, HW_ACCESS_READ, NULL, &n), HW_STEP_E_VADDR },
        { hw_step_WalkInit(&C, &s, CORE0, HW_MAX_BASE, HW_ACCESS_READ, NULL, &n),
          HW_STEP_E_VADDR },
        { hw_step_WalkStep(&C, &s, CORE0, 1, &n), HW_STEP_E_NO_WALK },
        { hw_step_WalkAbort(&C, &s, CORE0, 1, &n), HW_STEP_E_NO_WALK },
        { hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n), HW_STEP_E_WALK_STATE },
        { hw_step_WalkTLBFill(&C, &s, bad, 0, &n), HW_STEP_E_CORE },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(cases[i].got, cases[i].want);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    /* A completed walk cannot step again. */
    struct hw_vars t;
    advance(&s, &t, hw_step_WalkStep(&C, &s, CORE0, 0, &t));
    advance(&s, &t, hw_step_WalkStep(&C, &s, CORE0, 0, &t));
    hw_vars_fini(&before);
    assert_true(hw_vars_copy(&before, &s));
    assert_int_equal(hw_step_WalkStep(&C, &s, CORE0, 0, &n), HW_STEP_E_WALK_STATE);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

/* A walk that descends into a table outside page-table memory is refused at that step. */
static void test_walk_outside_memory(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), n;
    advance(&s, &n, hw_step_PTMemOp(&C, &s, PD, DIR(0x40000000), &n));
    walk(&s, VA, HW_ACCESS_READ, 3);
    n.ntlbs = 12345;
    assert_int_equal(hw_step_WalkStep(&C, &s, CORE0, 0, &n), HW_STEP_E_OUTSIDE);
    assert_int_equal(n.ntlbs, 12345);
    hw_vars_fini(&s);
}

/* Walks form a set: two states that started the same walks in different orders are equal
 * and hash the same. */
static void test_walks_are_a_set(void **state)
{
    (void)state;
    struct hw_vars a = make_state(), b = make_state(), n;
    advance(&a, &n, hw_step_WalkInit(&C, &a, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    advance(&a, &n, hw_step_WalkInit(&C, &a, CORE0, VA_EMPTY, HW_ACCESS_WRITE, NULL, &n));
    advance(&b, &n, hw_step_WalkInit(&C, &b, CORE0, VA_EMPTY, HW_ACCESS_WRITE, NULL, &n));
    advance(&b, &n, hw_step_WalkInit(&C, &b, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    assert_true(hw_vars_equal(&a, &b));
    assert_int_equal(hw_vars_hash(&a), hw_vars_hash(&b));
    hw_vars_fini(&a);
    hw_vars_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaved_walk_fills_impossible_translation),
        cmocka_unit_test(test_accessed_set_at_each_step),
        cmocka_unit_test(test_faulting_walk_sets_accessed_above_the_fault),
        cmocka_unit_test(test_reserved_bit_fault_sets_accessed),
        cmocka_unit_test(test_dirty_only_on_write_fill),
        cmocka_unit_test(test_no_dirty_in_a_remapped_leaf),
        cmocka_unit_test(test_huge_page_walk),
        cmocka_unit_test(test_abort_and_bound),
        cmocka_unit_test(test_refused_walk_steps_leave_state),
        cmocka_unit_test(test_walk_outside_memory),
        cmocka_unit_test(test_walks_are_a_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
