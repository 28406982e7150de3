/*
 * Paging-structure caches (rl3.rs CacheFill, CacheUse, CacheEvict; SDM 4.10.3) and their
 * invalidation by INVLPG and a CR3 reload (SDM 4.10.4.1). Expected values by hand.
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
#define PD2 0x6000
#define PT2 0x7000
#define DIR(pa) ((uint64_t)(pa) | 7)
#define VA va_of(0, 0, 0, 1, 0)     /* 0x1000 -> 0x100000 */
#define VA2 va_of(0, 0, 0, 2, 0)    /* 0x2000 -> 0x101000, same PT as VA */
#define VB va_of(0, 1, 0, 0, 0)     /* 0x40000000 -> 0x400000, other PDPTE */
#define VC va_of(1, 0, 0, 0, 0)     /* other PML4E (unmapped) */

static const struct hw_consts C = { .NUMA_no = 1, .core_no = 2, .phys_mem_size = 0x4000,
                                    .maxphyaddr = 40, .mmu_walks = 2, .mmu_pscache = 4,
                                    .mmu_sbuf = 4 };
static const struct hw_core CORE0 = { 0, 0 };

static struct hw_vars make_state(const struct hw_consts *c)
{
    struct image im = image_new(0x8000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PDPT, 0, DIR(PD));
    image_entry(&im, PD, 0, DIR(PT));
    image_entry(&im, PT, 1, 0x100000 | 7);
    image_entry(&im, PT, 2, 0x101000 | 7);
    image_entry(&im, PDPT, 1, DIR(PD2));
    image_entry(&im, PD2, 0, DIR(PT2));
    image_entry(&im, PT2, 0, 0x400000 | 7);
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

static const struct hw_mmu_core *core0(const struct hw_vars *s)
{
    return hw_core_mmu_const(&C, s, CORE0);
}

/* Walk va on core 0 through its three directories, cache each of them, drop the walk. */
static void cache_path(struct hw_vars *s, uint64_t va)
{
    struct hw_vars n;
    advance(s, &n, hw_step_WalkInit(&C, s, CORE0, va, HW_ACCESS_READ, NULL, &n));
    for (unsigned i = 0; i < 3; i++)
        advance(s, &n, hw_step_WalkStep(&C, s, CORE0, 0, &n));
    for (unsigned level = 0; level < 3; level++)
        advance(s, &n, hw_step_CacheFill(&C, s, CORE0, 0, level, &n));
    advance(s, &n, hw_step_WalkAbort(&C, s, CORE0, 0, &n));
}

static void assert_entry(const struct hw_pscache_entry *e, uint64_t key, uint64_t table)
{
    assert_int_equal(e->key, key);
    assert_int_equal(e->table, table);
    assert_int_equal(e->rights, HW_RIGHT_W | HW_RIGHT_U);
}

/* CacheFill records, per level, the key bits of the address and the next table. */
static void test_cache_fill_entries(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C);
    cache_path(&s, VB);
    const struct hw_mmu_core *m = core0(&s);
    assert_int_equal(m->npscache[0], 1);
    assert_int_equal(m->npscache[1], 1);
    assert_int_equal(m->npscache[2], 1);
    assert_entry(&m->pscache[0][0], 0, PDPT);  /* bits 47:39 of 0x40000000 */
    assert_entry(&m->pscache[1][0], 1, PD2);   /* bits 47:30 */
    assert_entry(&m->pscache[2][0], 512, PT2); /* bits 47:21 */
    hw_vars_fini(&s);
}

/* A PDE-cache entry lets a later walk of another address in the same 2 MiB skip the upper
 * levels, so it reaches a PT whose PDE has been cleared and fills a translation the page
 * table no longer has. */
static void test_cache_use_reaches_unlinked_table(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    cache_path(&s, VA);
    advance(&s, &n, hw_step_PTMemOp(&C, &s, PD, 0, &n));
    struct hw_pscache_ref pde = { 2, 0 };
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VA2, HW_ACCESS_READ, &pde, &n));
    assert_int_equal(core0(&s)->walks[0].from, 3);
    advance(&s, &n, hw_step_WalkStep(&C, &s, CORE0, 0, &n));
    advance(&s, &n, hw_step_WalkTLBFill(&C, &s, CORE0, 0, &n));
    const struct hw_pte *got = hw_tlb_get(hw_core_tlb_const(&C, &s, CORE0), VA2);
    assert_non_null(got);
    assert_int_equal(got->frame.base, 0x101000);
    struct hw_pt_view pt = hw_vars_pt_view(&C, &s);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&pt, VA2, &w), HW_WALK_FAULT);
    hw_vars_fini(&s);
}

/* CacheUse needs an entry whose key matches the address. */
static void test_cache_use_needs_matching_key(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n, before;
    cache_path(&s, VA);
    assert_true(hw_vars_copy(&before, &s));
    struct hw_pscache_ref pde = { 2, 0 }, missing = { 2, 1 }, bad_level = { 3, 0 };
    n.ntlbs = 12345;
    assert_int_equal(hw_step_WalkInit(&C, &s, CORE0, VB, HW_ACCESS_READ, &pde, &n),
                     HW_STEP_E_NO_CACHE_ENTRY);
    assert_int_equal(hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, &missing, &n),
                     HW_STEP_E_NO_CACHE_ENTRY);
    assert_int_equal(hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, &bad_level, &n),
                     HW_STEP_E_NO_CACHE_ENTRY);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

/* CacheFill takes only directory entries the walk read itself: not unread levels, not the
 * leaf. */
static void test_cache_fill_needs_read_directory(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n, before;
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    advance(&s, &n, hw_step_WalkStep(&C, &s, CORE0, 0, &n));
    assert_true(hw_vars_copy(&before, &s));
    n.ntlbs = 12345;
    assert_int_equal(hw_step_CacheFill(&C, &s, CORE0, 0, 1, &n), HW_STEP_E_WALK_STATE);
    assert_int_equal(hw_step_CacheFill(&C, &s, CORE0, 0, 3, &n), HW_STEP_E_WALK_STATE);
    assert_int_equal(hw_step_CacheFill(&C, &s, CORE0, 1, 0, &n), HW_STEP_E_NO_WALK);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    hw_vars_fini(&before);
    advance(&s, &n, hw_step_CacheFill(&C, &s, CORE0, 0, 0, &n));
    hw_vars_fini(&s);
}

/* A full cache level refuses a new entry until CacheEvict makes room. */
static void test_cache_bound_and_evict(void **state)
{
    (void)state;
    struct hw_consts one = C;
    one.mmu_pscache = 1;
    struct hw_vars s = make_state(&one), n;
    advance(&s, &n, hw_step_WalkInit(&one, &s, CORE0, VA, HW_ACCESS_READ, NULL, &n));
    advance(&s, &n, hw_step_WalkInit(&one, &s, CORE0, VB, HW_ACCESS_READ, NULL, &n));
    for (unsigned i = 0; i < 2; i++) {
        advance(&s, &n, hw_step_WalkStep(&one, &s, CORE0, 0, &n));
        advance(&s, &n, hw_step_WalkStep(&one, &s, CORE0, 1, &n));
    }
    advance(&s, &n, hw_step_CacheFill(&one, &s, CORE0, 0, 1, &n));
    struct hw_vars before;
    assert_true(hw_vars_copy(&before, &s));
    n.ntlbs = 12345;
    assert_int_equal(hw_step_CacheFill(&one, &s, CORE0, 1, 1, &n), HW_STEP_E_FULL);
    struct hw_pscache_ref first = { 1, 0 }, none = { 1, 1 };
    assert_int_equal(hw_step_CacheEvict(&one, &s, CORE0, none, &n), HW_STEP_E_NO_CACHE_ENTRY);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    hw_vars_fini(&before);
    advance(&s, &n, hw_step_CacheEvict(&one, &s, CORE0, first, &n));
    advance(&s, &n, hw_step_CacheFill(&one, &s, CORE0, 1, 1, &n));
    assert_int_equal(hw_core_mmu_const(&one, &s, CORE0)->npscache[1], 1);
    hw_vars_fini(&s);
}

/* INVLPG of VA removes VA's TLB entry and the PS-cache entries keyed by VA's bits (including
 * the PML4E entry VB shares), but keeps VB's PDPTE and PDE entries and VB's TLB entry. */
static void test_invlpg_removes_only_entries_for_the_address(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    cache_path(&s, VA);
    cache_path(&s, VB);
    struct hw_pte pa = { { 0x100000, 0x1000 }, { .is_writable = true } };
    struct hw_pte pb = { { 0x400000, 0x1000 }, { .is_writable = true } };
    advance(&s, &n, hw_step_TLBFill(&C, &s, CORE0, VA, &pa, &n));
    advance(&s, &n, hw_step_TLBFill(&C, &s, CORE0, VB, &pb, &n));
    advance(&s, &n, hw_step_Invlpg(&C, &s, CORE0, VA + 0x10, &n));
    const struct hw_mmu_core *m = core0(&s);
    assert_int_equal(m->npscache[0], 0);
    assert_int_equal(m->npscache[1], 1);
    assert_entry(&m->pscache[1][0], 1, PD2);
    assert_int_equal(m->npscache[2], 1);
    assert_entry(&m->pscache[2][0], 512, PT2);
    const struct hw_tlb *t = hw_core_tlb_const(&C, &s, CORE0);
    assert_null(hw_tlb_get(t, VA));
    assert_non_null(hw_tlb_get(t, VB));
    hw_vars_fini(&s);
}

/* INVLPG removes a 2 MiB TLB entry when the address lies anywhere inside it. */
static void test_invlpg_removes_containing_huge_entry(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    struct hw_pte huge = { { 0x600000, 0x200000 }, { .is_writable = true } };
    hw_tlb_insert(&s.tlbs[0], 0x200000, &huge);  /* as a fill would have put it */
    advance(&s, &n, hw_step_Invlpg(&C, &s, CORE0, 0x3ff000, &n));
    assert_int_equal(hw_core_tlb_const(&C, &s, CORE0)->len, 0);
    hw_vars_fini(&s);
}

/* INVLPG drops the in-flight walks in the address's PML4 slot and keeps the others. */
static void test_invlpg_drops_walks_of_the_slot(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VB, HW_ACCESS_READ, NULL, &n));
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VC, HW_ACCESS_READ, NULL, &n));
    advance(&s, &n, hw_step_Invlpg(&C, &s, CORE0, VA, &n));
    assert_int_equal(core0(&s)->nwalks, 1);
    assert_int_equal(core0(&s)->walks[0].vaddr, VC);
    hw_vars_fini(&s);
}

/* A CR3 reload empties the core's TLB, all its PS-cache levels and its walks; another core's
 * state stays. */
static void test_cr3_reload_removes_all(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n;
    cache_path(&s, VA);
    cache_path(&s, VB);
    struct hw_pte pa = { { 0x100000, 0x1000 }, { .is_writable = true } };
    struct hw_core core1 = { 0, 1 };
    advance(&s, &n, hw_step_TLBFill(&C, &s, CORE0, VA, &pa, &n));
    advance(&s, &n, hw_step_TLBFill(&C, &s, core1, VA, &pa, &n));
    advance(&s, &n, hw_step_WalkInit(&C, &s, CORE0, VC, HW_ACCESS_READ, NULL, &n));
    advance(&s, &n, hw_step_FlushAll(&C, &s, CORE0, &n));
    const struct hw_mmu_core *m = core0(&s);
    assert_int_equal(m->nwalks, 0);
    for (unsigned l = 0; l < 3; l++)
        assert_int_equal(m->npscache[l], 0);
    assert_int_equal(hw_core_tlb_const(&C, &s, CORE0)->len, 0);
    assert_int_equal(hw_core_tlb_const(&C, &s, core1)->len, 1);
    hw_vars_fini(&s);
}

/* INVLPG and a CR3 reload are serializing: refused while the core has buffered stores, and
 * the refused step builds nothing. */
static void test_invalidation_needs_empty_store_buffer(void **state)
{
    (void)state;
    struct hw_vars s = make_state(&C), n, before;
    advance(&s, &n, hw_step_PTStore(&C, &s, CORE0, PT + 8, 0, &n));
    assert_true(hw_vars_copy(&before, &s));
    n.ntlbs = 12345;
    assert_int_equal(hw_step_Invlpg(&C, &s, CORE0, VA, &n), HW_STEP_E_SBUF_NOT_EMPTY);
    assert_int_equal(hw_step_FlushAll(&C, &s, CORE0, &n), HW_STEP_E_SBUF_NOT_EMPTY);
    struct hw_core bad = { 1, 0 };
    assert_int_equal(hw_step_Invlpg(&C, &s, bad, VA, &n), HW_STEP_E_CORE);
    assert_int_equal(hw_step_FlushAll(&C, &s, bad, &n), HW_STEP_E_CORE);
    assert_int_equal(n.ntlbs, 12345);
    assert_true(hw_vars_equal(&s, &before));
    struct hw_core core1 = { 0, 1 };
    advance(&s, &n, hw_step_Invlpg(&C, &s, core1, VA, &n)); /* another core's buffer is empty */
    hw_vars_fini(&before);
    hw_vars_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_fill_entries),
        cmocka_unit_test(test_cache_use_reaches_unlinked_table),
        cmocka_unit_test(test_cache_use_needs_matching_key),
        cmocka_unit_test(test_cache_fill_needs_read_directory),
        cmocka_unit_test(test_cache_bound_and_evict),
        cmocka_unit_test(test_invlpg_removes_only_entries_for_the_address),
        cmocka_unit_test(test_invlpg_removes_containing_huge_entry),
        cmocka_unit_test(test_invlpg_drops_walks_of_the_slot),
        cmocka_unit_test(test_cr3_reload_removes_all),
        cmocka_unit_test(test_invalidation_needs_empty_store_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
