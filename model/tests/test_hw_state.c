/*
 * The hardware state machine (hardware.rs init, step_ReadWrite, step_PTMemOp, step_TLBFill,
 * step_TLBEvict) and x86pt's Accessed/Dirty step, plus the memory values under them:
 * copy-on-write, hash and equality. Every refused step is tested to build nothing and leave the
 * old state alone.
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
#define PT 0x4000
#define DIR(pa) ((uint64_t)(pa) | 7)
#define VA_RW va_of(0, 0, 0, 1, 0)   /* user, writable -> data frame 0x2000 */
#define VA_RO va_of(0, 0, 0, 2, 0)   /* user, read-only, no-exec -> 0x3000 */
#define VA_SUP va_of(0, 0, 0, 3, 0)  /* supervisor -> 0x1000 */
#define VA_FAR va_of(0, 0, 0, 4, 0)  /* user, writable, frame beyond data memory */

static const struct hw_consts C = { .NUMA_no = 2, .core_no = 2, .phys_mem_size = 0x4000,
                                    .maxphyaddr = 40 };
static const struct hw_core CORE = { 1, 0 };

static struct hw_vars make_state(void)
{
    struct image im = image_new(0x8000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 0, DIR(PD));
    image_entry(&im, PD, 0, DIR(PT));
    image_entry(&im, PT, 1, 0x2000 | 7);
    image_entry(&im, PT, 2, 0x3000 | 5 | HW_BIT_XD);
    image_entry(&im, PT, 3, 0x1000 | 3);
    image_entry(&im, PT, 4, 0x100000 | 7);
    struct hw_pmem pm;
    assert_true(hw_pmem_from_flat(&pm, im.mem, im.bytes));
    struct hw_vars s;
    assert_true(hw_init(&C, &s, &pm, PML4));
    hw_pmem_fini(&pm);
    image_free(&im);
    return s;
}

static struct hw_mapping tlb_pair(const struct hw_vars *s, uint64_t va)
{
    struct hw_pt_view pt = hw_vars_pt_view(&C, s);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, va, &w), HW_WALK_PAGE);
    struct hw_mapping m = { w.base, w.pte };
    return m;
}

/* Fill the core's TLB with va's mapping. */
static struct hw_vars filled(struct hw_vars *s, uint64_t va)
{
    struct hw_mapping m = tlb_pair(s, va);
    struct hw_vars s2;
    assert_int_equal(hw_step_TLBFill(&C, s, CORE, m.base, &m.pte, &s2), HW_STEP_OK);
    hw_vars_fini(s);
    return s2;
}

/* init: every TLB empty, data memory zero. */
static void test_init(void **state)
{
    (void)state;
    struct hw_vars s = make_state();
    assert_int_equal(s.ntlbs, 4);
    for (unsigned i = 0; i < s.ntlbs; i++)
        assert_int_equal(s.tlbs[i].len, 0);
    assert_int_equal(hw_pmem_read(&s.mem, 0x2000), 0);
    struct hw_consts bad = C;
    bad.core_no = 0;
    struct hw_vars t;
    assert_false(hw_init(&bad, &t, &s.global_pt.mem, PML4));
    hw_vars_fini(&s);
}

/* TLBFill takes only pairs of the current interpretation, into one core's TLB. */
static void test_tlb_fill(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), s2;
    struct hw_mapping m = tlb_pair(&s, VA_RW);
    struct hw_pte wrong = m.pte;
    wrong.flags.is_supervisor = true;
    assert_int_equal(hw_step_TLBFill(&C, &s, CORE, m.base, &wrong, &s2), HW_STEP_E_NOT_MAPPED);
    assert_int_equal(hw_step_TLBFill(&C, &s, CORE, m.base + 8, &m.pte, &s2),
                     HW_STEP_E_NOT_MAPPED);
    struct hw_core bad = { 2, 0 };
    assert_int_equal(hw_step_TLBFill(&C, &s, bad, m.base, &m.pte, &s2), HW_STEP_E_CORE);
    assert_int_equal(hw_step_TLBFill(&C, &s, CORE, m.base, &m.pte, &s2), HW_STEP_OK);
    assert_non_null(hw_tlb_get(hw_core_tlb_const(&C, &s2, CORE), m.base));
    assert_null(hw_tlb_get(hw_core_tlb_const(&C, &s, CORE), m.base)); /* s1 unchanged */
    struct hw_core other = { 0, 1 };
    assert_null(hw_tlb_get(hw_core_tlb_const(&C, &s2, other), m.base));
    assert_false(hw_vars_equal(&s, &s2));
    hw_vars_fini(&s2);
    hw_vars_fini(&s);
}

/* TLBEvict removes a base in the domain; evicting an absent base is not a step. */
static void test_tlb_evict(void **state)
{
    (void)state;
    struct hw_vars s0 = make_state(), s = make_state(), s2;
    s = filled(&s, VA_RW);
    assert_int_equal(hw_step_TLBEvict(&C, &s, CORE, VA_RO, &s2), HW_STEP_E_NOT_IN_TLB);
    assert_int_equal(hw_step_TLBEvict(&C, &s, CORE, VA_RW, &s2), HW_STEP_OK);
    assert_true(hw_vars_equal(&s2, &s0));
    assert_int_equal(hw_vars_hash(&s2), hw_vars_hash(&s0));
    hw_vars_fini(&s2);
    hw_vars_fini(&s);
    hw_vars_fini(&s0);
}

/* ReadWrite through a TLB entry: stores to a writable user page change mem; loads return it;
 * read-only, supervisor, no-exec and out-of-memory accesses page-fault with mem unchanged. */
static void test_read_write_cached(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), s2, s3;
    s = filled(&s, VA_RW);
    s = filled(&s, VA_RO);
    s = filled(&s, VA_SUP);
    s = filled(&s, VA_FAR);
    struct hw_mapping rw = tlb_pair(&s, VA_RW), ro = tlb_pair(&s, VA_RO),
                      sup = tlb_pair(&s, VA_SUP), far = tlb_pair(&s, VA_FAR);
    struct hw_rw_op store = { HW_RW_STORE, false, 42 }, load = { HW_RW_LOAD, false, 0 },
                    exec = { HW_RW_LOAD, true, 0 };
    struct hw_rw_result r;
    assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, VA_RW + 0x18, store, &rw, &s2, &r), HW_STEP_OK);
    assert_int_equal(r.kind, HW_RESULT_OK);
    assert_int_equal(r.paddr, 0x2018);
    assert_int_equal(hw_pmem_read(&s2.mem, 0x2018), 42);
    assert_int_equal(hw_pmem_read(&s.mem, 0x2018), 0);
    assert_int_equal(hw_step_ReadWrite(&C, &s2, CORE, VA_RW + 0x18, load, &rw, &s3, &r), HW_STEP_OK);
    assert_int_equal(r.kind, HW_RESULT_VALUE);
    assert_int_equal(r.value, 42);
    assert_true(hw_vars_equal(&s2, &s3));
    hw_vars_fini(&s3);
    hw_vars_fini(&s2);
    /* Faults: each leaves mem as it was. */
    struct { const struct hw_mapping *m; struct hw_rw_op op; enum hw_rw_result_kind want; } cases[] = {
        { &ro, store, HW_RESULT_PAGEFAULT },  { &ro, load, HW_RESULT_VALUE },
        { &ro, exec, HW_RESULT_PAGEFAULT },   { &rw, exec, HW_RESULT_VALUE },
        { &sup, load, HW_RESULT_PAGEFAULT },  { &sup, store, HW_RESULT_PAGEFAULT },
        { &far, load, HW_RESULT_PAGEFAULT },  { &far, store, HW_RESULT_PAGEFAULT },
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, cases[i].m->base, cases[i].op,
                                           cases[i].m, &s2, &r), HW_STEP_OK);
        assert_int_equal(r.kind, cases[i].want);
        assert_true(hw_vars_equal(&s, &s2));
        hw_vars_fini(&s2);
    }
    hw_vars_fini(&s);
}

/* ReadWrite's enabling conditions: aligned, valid core, the pair in this core's TLB, vaddr in
 * its range; None only when no mapping contains vaddr. */
static void test_read_write_refused(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), s2;
    struct hw_mapping rw = tlb_pair(&s, VA_RW);
    struct hw_rw_op load = { HW_RW_LOAD, false, 0 };
    struct hw_rw_result r;
    s2.ntlbs = 12345;  /* sentinel: untouched on refusal */
    assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, VA_RW, load, &rw, &s2, &r),
                     HW_STEP_E_NOT_IN_TLB);
    s = filled(&s, VA_RW);
    assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, VA_RW + 4, load, &rw, &s2, &r),
                     HW_STEP_E_MISALIGNED);
    assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, VA_RW + 4096, load, &rw, &s2, &r),
                     HW_STEP_E_NOT_COVERED);
    struct hw_core bad = { 0, 2 };
    assert_int_equal(hw_step_ReadWrite(&C, &s, bad, VA_RW, load, &rw, &s2, &r), HW_STEP_E_CORE);
    struct hw_core other = { 0, 0 };
    assert_int_equal(hw_step_ReadWrite(&C, &s, other, VA_RW, load, &rw, &s2, &r),
                     HW_STEP_E_NOT_IN_TLB);
    assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, VA_RO, load, NULL, &s2, &r),
                     HW_STEP_E_MAPPED);
    assert_int_equal(s2.ntlbs, 12345);
    assert_int_equal(hw_step_ReadWrite(&C, &s, CORE, va_of(0, 0, 0, 9, 0), load, NULL, &s2, &r),
                     HW_STEP_OK);
    assert_int_equal(r.kind, HW_RESULT_PAGEFAULT);
    assert_true(hw_vars_equal(&s, &s2));
    hw_vars_fini(&s2);
    hw_vars_fini(&s);
}

/* PTMemOp changes the page table only; a stale TLB entry survives it (the OS must evict). */
static void test_pt_mem_op(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), s2, s3;
    s = filled(&s, VA_RW);
    assert_int_equal(hw_step_PTMemOp(&C, &s, PT + 8, 0, &s2), HW_STEP_OK);
    assert_int_equal(hw_step_PTMemOp(&C, &s, PT + 4, 0, &s3), HW_STEP_E_MISALIGNED);
    assert_int_equal(hw_step_PTMemOp(&C, &s, 0x8000, 0, &s3), HW_STEP_E_OUTSIDE);
    struct hw_pt_view pt = hw_vars_pt_view(&C, &s2);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, VA_RW, &w), HW_WALK_FAULT);
    assert_non_null(hw_tlb_get(hw_core_tlb_const(&C, &s2, CORE), VA_RW));
    assert_true(hw_pmem_equal(&s.mem, &s2.mem));
    /* TLBFill of the removed mapping is no longer allowed. */
    struct hw_mapping m = tlb_pair(&s, VA_RW);
    assert_int_equal(hw_step_TLBFill(&C, &s2, CORE, m.base, &m.pte, &s3), HW_STEP_E_NOT_MAPPED);
    hw_vars_fini(&s2);
    hw_vars_fini(&s);
}

/* The A/D step sets A in all four entries of the walk and D in the leaf on a write only; the
 * interpretation is unchanged. */
static void test_accessed_dirty(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), s2, s3;
    struct hw_pt_view pt = hw_vars_pt_view(&C, &s);
    struct hw_interp before = { 0 }, after = { 0 };
    assert_int_equal(hw_interp_pt_mem(&pt, &before, NULL), HW_INTERP_OK);
    assert_int_equal(hw_step_AccessedDirty(&C, &s, VA_RO + 8, false, &s2), HW_STEP_OK);
    static const uint64_t entries[] = { PML4, PDPT, PD, PT + 16 };
    for (unsigned i = 0; i < 4; i++)
        assert_true(hw_pmem_read(&s2.global_pt.mem, entries[i]) & HW_BIT_A);
    assert_false(hw_pmem_read(&s2.global_pt.mem, PT + 16) & HW_BIT_D);
    assert_int_equal(hw_step_AccessedDirty(&C, &s2, VA_RO, true, &s3), HW_STEP_OK);
    assert_true(hw_pmem_read(&s3.global_pt.mem, PT + 16) & HW_BIT_D);
    assert_false(hw_pmem_read(&s3.global_pt.mem, PD) & HW_BIT_D);
    struct hw_pt_view pt3 = hw_vars_pt_view(&C, &s3);
    assert_int_equal(hw_interp_pt_mem(&pt3, &after, NULL), HW_INTERP_OK);
    assert_true(hw_interp_equal(&before, &after));
    struct hw_vars s4;
    assert_int_equal(hw_step_AccessedDirty(&C, &s, va_of(0, 0, 0, 9, 0), true, &s4),
                     HW_STEP_E_NOT_MAPPED);
    hw_interp_fini(&before);
    hw_interp_fini(&after);
    hw_vars_fini(&s3);
    hw_vars_fini(&s2);
    hw_vars_fini(&s);
}

/* next_step dispatches to the step functions. */
static void test_next_step(void **state)
{
    (void)state;
    struct hw_vars s = make_state(), s2;
    struct hw_mapping m = tlb_pair(&s, VA_RW);
    struct hw_step st = { .kind = HW_STEP_TLB_FILL, .core = CORE, .vaddr = m.base, .pte = m.pte };
    assert_int_equal(hw_next_step(&C, &s, &st, &s2, NULL), HW_STEP_OK);
    hw_vars_fini(&s2);
    st.kind = HW_STEP_TLB_EVICT;
    assert_int_equal(hw_next_step(&C, &s, &st, &s2, NULL), HW_STEP_E_NOT_IN_TLB);
    st.kind = (enum hw_step_kind)99;
    assert_int_equal(hw_next_step(&C, &s, &st, &s2, NULL), HW_STEP_E_KIND);
    for (int k = HW_STEP_OK; k <= HW_STEP_E_KIND; k++)
        assert_non_null(hw_step_status_str((enum hw_step_status)k));
    hw_vars_fini(&s);
}

/* Memory values: a copy shares frames until written; writing a copy leaves the original;
 * writing back the old value restores equality and the hash; a frame written back to zero
 * equals a never-written (NULL) frame. */
static void test_pmem_values(void **state)
{
    (void)state;
    struct hw_pmem a, b;
    assert_true(hw_pmem_init(&a, 5 * 4096));
    assert_true(hw_pmem_write(&a, 0x1008, 7));
    assert_true(hw_pmem_copy(&b, &a));
    assert_ptr_equal(a.frames[1], b.frames[1]);
    assert_true(hw_pmem_equal(&a, &b));
    uint64_t h = hw_pmem_hash(&a);
    assert_true(hw_pmem_write(&b, 0x1008, 8));
    assert_int_equal(hw_pmem_read(&a, 0x1008), 7);
    assert_int_equal(hw_pmem_read(&b, 0x1008), 8);
    assert_false(hw_pmem_equal(&a, &b));
    assert_int_not_equal(hw_pmem_hash(&b), h);
    assert_true(hw_pmem_write(&b, 0x1008, 7));
    assert_true(hw_pmem_equal(&a, &b));
    assert_int_equal(hw_pmem_hash(&b), h);
    assert_true(hw_pmem_write(&b, 0x3ff8, 1));
    assert_true(hw_pmem_write(&b, 0x3ff8, 0));
    assert_true(hw_pmem_equal(&a, &b));
    assert_int_equal(hw_pmem_hash(&b), h);
    /* The same content reached by different histories hashes the same. */
    struct hw_pmem c;
    assert_true(hw_pmem_init(&c, 5 * 4096));
    assert_true(hw_pmem_write(&c, 0x1000, 1));
    assert_true(hw_pmem_write(&c, 0x1008, 7));
    assert_true(hw_pmem_write(&c, 0x1000, 0));
    assert_true(hw_pmem_equal(&a, &c));
    assert_int_equal(hw_pmem_hash(&c), h);
    uint8_t flat[5 * 4096];
    hw_pmem_to_flat(&c, flat);
    struct hw_pmem d;
    assert_true(hw_pmem_from_flat(&d, flat, sizeof flat));
    assert_true(hw_pmem_equal(&c, &d));
    assert_int_equal(hw_pmem_hash(&d), h);
    hw_pmem_fini(&a);
    hw_pmem_fini(&b);
    hw_pmem_fini(&c);
    hw_pmem_fini(&d);
}

/* A TLB is a map: insert replaces, entries stay sorted, remove of an absent base fails. */
static void test_tlb_map(void **state)
{
    (void)state;
    struct hw_tlb t = { 0 }, u = { 0 };
    struct hw_pte p = { { 0x1000, 4096 }, { .is_writable = true } }, q = p;
    q.flags.is_writable = false;
    for (uint64_t b = 10; b > 0; b--)
        assert_true(hw_tlb_insert(&t, b * 4096, &p));
    for (uint64_t b = 1; b <= 10; b++)
        assert_true(hw_tlb_insert(&u, b * 4096, &p));
    assert_true(hw_tlb_equal(&t, &u));
    assert_int_equal(hw_tlb_hash(&t), hw_tlb_hash(&u));
    assert_true(hw_tlb_insert(&t, 4096, &q));
    assert_int_equal(t.len, 10);
    assert_false(hw_tlb_equal(&t, &u));
    assert_true(hw_tlb_remove(&t, 4096));
    assert_false(hw_tlb_remove(&t, 4096));
    for (uint32_t i = 1; i < t.len; i++)
        assert_true(t.entries[i - 1].base < t.entries[i].base);
    hw_tlb_fini(&t);
    hw_tlb_fini(&u);
}

/* Interning: two memories built apart with one equal page end up sharing that page (and
 * only that one), keep their values and hashes, and a write to one afterwards changes only it. */
static void test_pmem_intern(void **state)
{
    (void)state;
    struct hw_pmem a, b;
    struct hw_frame_set set = { 0 };
    assert_true(hw_pmem_init(&a, 3 * HW_PAGE_SIZE) && hw_pmem_init(&b, 3 * HW_PAGE_SIZE));
    assert_true(hw_pmem_write(&a, 0x1008, 7) && hw_pmem_write(&b, 0x1008, 7)); /* equal page 1 */
    assert_true(hw_pmem_write(&a, 0x2000, 1) && hw_pmem_write(&b, 0x2000, 2)); /* unequal page 2 */
    uint64_t ha = hw_pmem_hash(&a), hb = hw_pmem_hash(&b);
    assert_true(a.frames[1] != b.frames[1]);
    assert_true(hw_pmem_intern(&a, &set) && hw_pmem_intern(&b, &set));
    assert_true(a.frames[1] == b.frames[1]);
    assert_true(a.frames[2] != b.frames[2]);
    assert_null(a.frames[0]);
    assert_int_equal(set.len, 3);
    assert_int_equal(hw_pmem_hash(&a), ha);
    assert_int_equal(hw_pmem_hash(&b), hb);
    assert_int_equal(hw_pmem_read(&b, 0x1008), 7);
    assert_int_equal(hw_pmem_read(&b, 0x2000), 2);
    assert_true(hw_pmem_write(&a, 0x1008, 9));
    assert_int_equal(hw_pmem_read(&a, 0x1008), 9);
    assert_int_equal(hw_pmem_read(&b, 0x1008), 7);
    hw_pmem_fini(&a);
    hw_pmem_fini(&b);
    hw_frame_set_fini(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pmem_intern),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_tlb_fill),
        cmocka_unit_test(test_tlb_evict),
        cmocka_unit_test(test_read_write_cached),
        cmocka_unit_test(test_read_write_refused),
        cmocka_unit_test(test_pt_mem_op),
        cmocka_unit_test(test_accessed_dirty),
        cmocka_unit_test(test_next_step),
        cmocka_unit_test(test_pmem_values),
        cmocka_unit_test(test_tlb_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
