/*
 * TSO store buffers for page-table memory (rl3.rs Write, Writeback, Read, Barrier), locked
 * operations, the rl3 steps through hw_next_step, and the hardware.rs machine unchanged when
 * every mmu_* constant is 0. Expected values by hand.
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
#define LEAF (PT + 8)               /* PT[1], the PTE of VA */
#define DIR(pa) ((uint64_t)(pa) | 7)
#define VA va_of(0, 0, 0, 1, 0)     /* 0x1000 */
#define OLD_PTE (0x100000 | 7)
#define NEW_PTE (0x200000 | 7)

static const struct hw_consts C = { .NUMA_no = 1, .core_no = 2, .phys_mem_size = 0x4000,
                                    .maxphyaddr = 40, .mmu_walks = 2, .mmu_pscache = 4,
                                    .mmu_sbuf = 4 };
static const struct hw_consts OFF = { .NUMA_no = 1, .core_no = 2, .phys_mem_size = 0x4000,
                                      .maxphyaddr = 40 };
static const struct hw_core CORE0 = { 0, 0 }, CORE1 = { 0, 1 };

static struct hw_vars make_state(const struct hw_consts *c)
{
    struct image im = image_new(0x8000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 0, DIR(PD));
    image_entry(&im, PD, 0, DIR(PT));
    image_entry(&im, PT, 1, OLD_PTE);
    struct hw_pmem pm;
    assert_true(hw_pmem_from_flat(&pm, im.mem, im.bytes));
    struct hw_vars s;
    assert_true(hw_init(c, &s, &pm, PML4));
    hw_pmem_fini(&pm);
    image_free(&im);
    return s;
}

static void advance(struct hw_vars *s, struct hw_vars *n, enum hw_step_status st)
{
    assert_int_equal(st, HW_STEP_OK);
    hw_vars_fini(s);
    *s = *n;
}

static uint64_t mem_word(const struct hw_vars *s, uint64_t pa)
{
    return hw_pmem_read(&s->global_pt.mem, pa);
}

/* A full walk of VA on `core` and its fill; the frame the core's TLB then has for VA. */
static uint64_t walk_and_fill(struct hw_vars *s, struct hw_core core)
{
    struct hw_vars n;
    advance(s, &n, hw_step_WalkInit(&C, s, core, VA, HW_ACCESS_READ, NULL, &n));
    for (unsigned i = 0; i < 4; i++)
        advance(s, &n, hw_step_WalkStep(&C, s, core, 0, &n));
    advance(s, &n, hw_step_WalkTLBFill(&C, s, core, 0, &n));
    return hw_tlb_get(hw_core_tlb_const(&C, s, core), VA)->frame.base;
}

/* A buffered store is seen by its own core's loads and walks, not by another core's, until
 * Writeback puts it in memory. */
static void test_buffered_store_visible_to_own_core_only(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, LEAF, NEW_PTE, &n));
    assert_int_equal(hw_pt_load(&C, &s, CORE0, LEAF), NEW_PTE);
    assert_int_equal(hw_pt_load(&C, &s, CORE1, LEAF), OLD_PTE);
    assert_int_equal(mem_word(&s, LEAF), OLD_PTE);
    assert_int_equal(walk_and_fill(&s, CORE0), 0x200000);
    assert_int_equal(walk_and_fill(&s, CORE1), 0x100000);
    advance(&s, &n, hw_step_Writeback(&C, &s, CORE0, &n));
    assert_int_equal(mem_word(&s, LEAF), NEW_PTE);
    assert_int_equal(hw_pt_load(&C, &s, CORE1, LEAF), NEW_PTE);
    advance(&s, &n, hw_step_Invlpg(&C, &s, CORE1, VA, &n));
    assert_int_equal(walk_and_fill(&s, CORE1), 0x200000);
    hw_vars_fini(&s);
}

/* The A bit a walk sets goes to memory under the core's buffered store, which then
 * overwrites it on Writeback (the walk saw the buffered value, memory held the old one). */
static void test_accessed_lands_in_memory_under_the_buffer(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, LEAF, NEW_PTE, &n));
    walk_and_fill(&s, CORE0);
    assert_int_equal(mem_word(&s, LEAF), OLD_PTE | HW_BIT_A);
    advance(&s, &n, hw_step_Writeback(&C, &s, CORE0, &n));
    assert_int_equal(mem_word(&s, LEAF), NEW_PTE);
    hw_vars_fini(&s);
}

/* The buffer is a FIFO: the core sees its newest store, memory receives the oldest first. */
static void test_store_buffer_is_fifo(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, LEAF, 1, &n));
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, PD + 8, 5, &n));
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, LEAF, 2, &n));
    assert_int_equal(hw_pt_load(&C, &s, CORE0, LEAF), 2);
    advance(&s, &n, hw_step_Writeback(&C, &s, CORE0, &n));
    assert_int_equal(mem_word(&s, LEAF), 1);
    assert_int_equal(mem_word(&s, PD + 8), 0);
    assert_int_equal(hw_pt_load(&C, &s, CORE0, LEAF), 2);
    advance(&s, &n, hw_step_Writeback(&C, &s, CORE0, &n));
    assert_int_equal(mem_word(&s, PD + 8), 5);
    advance(&s, &n, hw_step_Writeback(&C, &s, CORE0, &n));
    assert_int_equal(mem_word(&s, LEAF), 2);
    struct hw_vars before;
    assert_true(hw_vars_copy(&before, &s));
    n.ntlbs = 12345;
    assert_int_equal(hw_step_Writeback(&C, &s, CORE0, &n), HW_STEP_E_SBUF_EMPTY);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

/* CAS and XCHG are refused while the core's buffer holds stores (the refused step builds
 * nothing and s1 stays), and act on memory once it is drained. */
static void test_locked_ops_need_empty_buffer(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n, before;
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, PD + 8, 9, &n));
    assert_true(hw_vars_copy(&before, &s));
    uint64_t observed = 77;
    n.ntlbs = 12345;
    assert_int_equal(hw_step_PTCas(&C, &s, CORE0, LEAF, OLD_PTE, 0, &n, &observed),
                     HW_STEP_E_SBUF_NOT_EMPTY);
    assert_int_equal(hw_step_PTXchg(&C, &s, CORE0, LEAF, 0, &n, &observed),
                     HW_STEP_E_SBUF_NOT_EMPTY);
    assert_int_equal(hw_step_Fence(&C, &s, CORE0, &n), HW_STEP_E_SBUF_NOT_EMPTY);
    assert_int_equal(n.ntlbs, 12345);
    assert_int_equal(observed, 77);
    assert_true(hw_vars_equal(&s, &before));
    /* Another core's locked op is not held up by core 0's buffer. */
    advance(&s, &n, hw_step_PTCas(&C, &s, CORE1, LEAF, OLD_PTE, NEW_PTE, &n, &observed));
    assert_int_equal(observed, OLD_PTE);
    assert_int_equal(mem_word(&s, LEAF), NEW_PTE);
    advance(&s, &n, hw_step_Writeback(&C, &s, CORE0, &n));
    advance(&s, &n, hw_step_Fence(&C, &s, CORE0, &n));
    advance(&s, &n, hw_step_PTXchg(&C, &s, CORE0, LEAF, 0, &n, &observed));
    assert_int_equal(observed, NEW_PTE);
    assert_int_equal(mem_word(&s, LEAF), 0);
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

/* A CAS that expects the entry as software wrote it fails once a walk has set A in it. */
static void test_cas_fails_after_hardware_sets_accessed(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    walk_and_fill(&s, CORE1);
    uint64_t observed = 0;
    advance(&s, &n, hw_step_PTCas(&C, &s, CORE0, LEAF, OLD_PTE, 0, &n, &observed));
    assert_int_equal(observed, OLD_PTE | HW_BIT_A);
    assert_int_equal(mem_word(&s, LEAF), OLD_PTE | HW_BIT_A);
    hw_vars_fini(&s);
}

/* A full buffer refuses a store; bad core, alignment and range are refused too, building
 * nothing. */
static void test_refused_stores(void **state)
{
    (void)state;
    struct hw_consts one = C;
    one.mmu_sbuf = 1;
    struct hw_vars s = make_state(&one), n, before;
    advance(&s, &n, hw_step_PTStore(&one, &s, CORE0, LEAF, 1, &n));
    assert_true(hw_vars_copy(&before, &s));
    struct hw_core bad = { 0, 2 };
    uint64_t observed = 0;
    n.ntlbs = 12345;
    assert_int_equal(hw_step_PTStore(&one, &s, CORE0, LEAF, 2, &n), HW_STEP_E_FULL);
    assert_int_equal(hw_step_PTStore(&one, &s, bad, LEAF, 2, &n), HW_STEP_E_CORE);
    assert_int_equal(hw_step_PTStore(&one, &s, CORE1, LEAF + 4, 2, &n), HW_STEP_E_MISALIGNED);
    assert_int_equal(hw_step_PTStore(&one, &s, CORE1, 0x8000, 2, &n), HW_STEP_E_OUTSIDE);
    assert_int_equal(hw_step_PTCas(&one, &s, CORE1, 0x8000, 0, 1, &n, &observed),
                     HW_STEP_E_OUTSIDE);
    assert_int_equal(hw_step_Writeback(&one, &s, bad, &n), HW_STEP_E_CORE);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    assert_int_equal(hw_pt_load(&one, &s, CORE0, LEAF + 4), 0);
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

/* With every mmu_* constant 0 there is no rl3 state, its steps are disabled, a page-table
 * store goes straight to memory and the locked ops and Fence still work. */
static void test_features_off(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&OFF), n, before;
    assert_null(s.mmu);
    assert_true(hw_vars_copy(&before, &s));
    struct hw_pscache_ref ref = { 0, 0 };
    n.ntlbs = 12345;
    assert_int_equal(hw_step_WalkInit(&OFF, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n),
                     HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_WalkStep(&OFF, &s, CORE0, 0, &n), HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_WalkAbort(&OFF, &s, CORE0, 0, &n), HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_WalkTLBFill(&OFF, &s, CORE0, 0, &n), HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_CacheFill(&OFF, &s, CORE0, 0, 0, &n), HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_CacheEvict(&OFF, &s, CORE0, ref, &n), HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_Writeback(&OFF, &s, CORE0, &n), HW_STEP_E_DISABLED);
    /* Constants that ask for more than the state was built with are refused, not trusted. */
    assert_int_equal(hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n),
                     HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_CacheEvict(&C, &s, CORE0, ref, &n), HW_STEP_E_DISABLED);
    assert_int_equal(hw_step_Writeback(&C, &s, CORE0, &n), HW_STEP_E_DISABLED);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    hw_vars_fini(&before);
    advance(&s, &n, hw_step_PTStore(&OFF, &s, CORE0, LEAF, NEW_PTE, &n));
    assert_int_equal(mem_word(&s, LEAF), NEW_PTE);
    assert_int_equal(hw_pt_load(&OFF, &s, CORE1, LEAF), NEW_PTE);
    advance(&s, &n, hw_step_Fence(&OFF, &s, CORE0, &n));
    advance(&s, &n, hw_step_FlushAll(&OFF, &s, CORE0, &n));
    assert_null(s.mmu);
    hw_vars_fini(&s);
}

/* A state with the features on but nothing in flight equals and hashes like the same state
 * with them off; states equal before a hardware.rs step are equal after it. */
static void test_off_and_idle_states_compare_as_before(void **state)
{
    (void)state;
    struct hw_vars off = make_state(&OFF), off2 = make_state(&OFF), on = make_state(&C), n;
    assert_true(hw_vars_equal(&off, &off2));
    assert_true(hw_vars_equal(&off, &on));
    assert_true(hw_vars_equal(&on, &off));
    assert_int_equal(hw_vars_hash(&off), hw_vars_hash(&on));
    struct hw_pte pte = { { 0x100000, 0x1000 }, { .is_writable = true } };
    advance(&off, &n, hw_step_TLBFill(&OFF, &off, CORE0, VA, &pte, &n));
    advance(&off2, &n, hw_step_TLBFill(&OFF, &off2, CORE0, VA, &pte, &n));
    advance(&on, &n, hw_step_TLBFill(&C, &on, CORE0, VA, &pte, &n));
    assert_true(hw_vars_equal(&off, &off2));
    assert_int_equal(hw_vars_hash(&off), hw_vars_hash(&off2));
    assert_true(hw_vars_equal(&off, &on));
    assert_int_equal(hw_vars_hash(&off), hw_vars_hash(&on));
    advance(&on, &n, hw_step_PTStore(&C, &on, CORE0, LEAF, 0, &n));
    assert_false(hw_vars_equal(&off, &on));
    assert_false(hw_vars_equal(&on, &off));
    assert_int_not_equal(hw_vars_hash(&off), hw_vars_hash(&on));
    hw_vars_fini(&off);
    hw_vars_fini(&off2);
    hw_vars_fini(&on);
}

/* hw_init refuses bounds above the compiled maxima and a PS cache without walks. */
static void test_init_checks_mmu_bounds(void **state)
{
    (void)state;
    struct hw_consts bad[3] = { C, C, C };
    bad[0].mmu_walks = HW_MMU_MAX_WALKS + 1;
    bad[1].mmu_sbuf = HW_SBUF_MAX + 1;
    bad[2].mmu_walks = 0;  /* mmu_pscache stays 4 */
    struct hw_pmem pm;
    assert_true(hw_pmem_init(&pm, 0x8000));
    for (unsigned i = 0; i < 3; i++) {
        struct hw_vars s;
        assert_false(hw_init(&bad[i], &s, &pm, PML4));
    }
    hw_pmem_fini(&pm);
}

/* hw_next_step reaches the rl3 steps; CAS reports the old word as the result value. */
static void test_next_step_dispatches_rl3_steps(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    struct hw_step st = { .kind = HW_STEP_WALK_INIT, .core = CORE0, .vaddr = VA,
                          .access = HW_ACCESS_WRITE };
    advance(&s, &n, hw_next_step(&C, &s, &st, &n, NULL));
    assert_int_equal(hw_core_mmu_const(&C, &s, CORE0)->walks[0].access, HW_ACCESS_WRITE);
    struct hw_step walk_step = { .kind = HW_STEP_WALK_STEP, .core = CORE0, .walk_index = 0 };
    advance(&s, &n, hw_next_step(&C, &s, &walk_step, &n, NULL));
    struct hw_step fill = { .kind = HW_STEP_CACHE_FILL, .core = CORE0, .cache_level = 0 };
    advance(&s, &n, hw_next_step(&C, &s, &fill, &n, NULL));
    struct hw_step use = { .kind = HW_STEP_WALK_INIT, .core = CORE1, .vaddr = VA,
                           .use_cache = true };
    assert_int_equal(hw_next_step(&C, &s, &use, &n, NULL), HW_STEP_E_NO_CACHE_ENTRY);
    struct hw_step cas = { .kind = HW_STEP_PT_CAS, .core = CORE1, .pt_write_pa = LEAF,
                           .pt_expected = OLD_PTE, .pt_write_value = 0 };
    struct hw_rw_result r = { 0 };
    advance(&s, &n, hw_next_step(&C, &s, &cas, &n, &r));
    assert_int_equal(r.kind, HW_RESULT_VALUE);
    assert_int_equal(r.value, OLD_PTE);
    struct hw_step evict = { .kind = HW_STEP_CACHE_EVICT, .core = CORE0 };
    advance(&s, &n, hw_next_step(&C, &s, &evict, &n, NULL));
    assert_int_equal(hw_core_mmu_const(&C, &s, CORE0)->npscache[0], 0);
    for (int k = HW_STEP_E_DISABLED; k <= HW_STEP_E_SBUF_EMPTY; k++)
        assert_string_not_equal(hw_step_status_str((enum hw_step_status)k),
                                "unknown step status");
    hw_vars_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffered_store_visible_to_own_core_only),
        cmocka_unit_test(test_accessed_lands_in_memory_under_the_buffer),
        cmocka_unit_test(test_store_buffer_is_fifo),
        cmocka_unit_test(test_locked_ops_need_empty_buffer),
        cmocka_unit_test(test_cas_fails_after_hardware_sets_accessed),
        cmocka_unit_test(test_refused_stores),
        cmocka_unit_test(test_features_off),
        cmocka_unit_test(test_off_and_idle_states_compare_as_before),
        cmocka_unit_test(test_init_checks_mmu_bounds),
        cmocka_unit_test(test_next_step_dispatches_rl3_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
