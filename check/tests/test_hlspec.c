/* The high-level spec (model/hlspec.c) against hand-written cases: each step enabled and
 * disabled, sound and unsound, and the protect extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hlspec.h"

#define K4 UINT64_C(0x1000)

static struct hw_pmem phys;
static const struct hl_consts C = { 2, 4 * K4, 40 };
static char why[256];

static int setup(void **st)
{
    (void)st;
    return hw_pmem_init(&phys, 4 * K4) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    hw_pmem_fini(&phys);
    return 0;
}

static struct hl_vars empty_state(void)
{
    struct hl_vars s;
    memset(&s, 0, sizeof s);
    s.mem.phys = &phys;
    s.sound = true;
    return s;
}

static struct hw_pte pte(uint64_t frame, uint64_t size, bool w)
{
    struct hw_pte p = { { frame, size }, { .is_writable = w } };
    return p;
}

static bool next(const struct hl_vars *a, const struct hl_vars *b, const struct hl_step *st)
{
    return hl_next_step(&C, a, b, st, why, sizeof why);
}

/* The initial state satisfies init and inv. */
static void init_state_is_init(void **st)
{
    (void)st;
    struct hl_vars s = empty_state();
    assert_true(hl_init(&C, &s, why, sizeof why));
    assert_true(hl_inv(&C, &s, why, sizeof why));
}

/* A sound MapStart only records the thread's arguments. */
static void map_start_sound(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2 = s1;
    struct hl_step step = { .kind = HL_STEP_MAP_START, .thread_id = 0, .vaddr = K4, .pte = pte(2 * K4, K4, true) };
    s2.thread_state[0] = (struct hl_args){ .kind = HL_ARGS_MAP, .vaddr = K4, .has_pte = true, .pte = step.pte };
    assert_true(next(&s1, &s2, &step));
    s2.nmappings = 1; /* changing the mappings is not allowed */
    s2.mappings[0].base = K4;
    s2.mappings[0].pte = step.pte;
    assert_false(next(&s1, &s2, &step));
}

/* MapStart is disabled for a misaligned vaddr or a size that is not a page size. */
static void map_start_disabled(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2 = s1;
    struct hl_step step = { .kind = HL_STEP_MAP_START, .vaddr = K4 + 8, .pte = pte(0, K4, true) };
    s2.thread_state[0] = (struct hl_args){ .kind = HL_ARGS_MAP, .vaddr = step.vaddr, .has_pte = true, .pte = step.pte };
    assert_false(next(&s1, &s2, &step));
    step.vaddr = K4;
    step.pte.frame.size = 2 * K4;
    s2.thread_state[0].vaddr = K4;
    s2.thread_state[0].pte = step.pte;
    assert_false(next(&s1, &s2, &step));
}

/* A MapStart whose frame overlaps a mapped frame is unsound: the state must become unsound. */
static void map_start_unsound(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2;
    s1.nmappings = 1;
    s1.mappings[0].base = 0;
    s1.mappings[0].pte = pte(0, K4, true);
    struct hl_step step = { .kind = HL_STEP_MAP_START, .thread_id = 1, .vaddr = 4 * K4, .pte = pte(0, K4, true) };
    s2 = s1;
    s2.thread_state[1] = (struct hl_args){ .kind = HL_ARGS_MAP, .vaddr = 4 * K4, .has_pte = true, .pte = step.pte };
    assert_false(next(&s1, &s2, &step));
    s2.sound = false;
    assert_true(next(&s1, &s2, &step));
}

/* MapEnd: Ok inserts the mapping; over an existing mapping the result must be Err. */
static void map_end(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2;
    s1.thread_state[0] = (struct hl_args){ .kind = HL_ARGS_MAP, .vaddr = K4, .has_pte = true, .pte = pte(2 * K4, K4, true) };
    s2 = s1;
    memset(&s2.thread_state[0], 0, sizeof s2.thread_state[0]);
    s2.nmappings = 1;
    s2.mappings[0].base = K4;
    s2.mappings[0].pte = s1.thread_state[0].pte;
    struct hl_step step = { .kind = HL_STEP_MAP_END, .thread_id = 0, .result_ok = true };
    assert_true(next(&s1, &s2, &step));
    step.result_ok = false;
    assert_false(next(&s1, &s2, &step));
    /* with a mapping already at K4: Err and nothing changes */
    s1.nmappings = 1;
    s1.mappings[0].base = K4;
    s1.mappings[0].pte = pte(3 * K4, K4, false);
    s2 = s1;
    memset(&s2.thread_state[0], 0, sizeof s2.thread_state[0]);
    assert_true(next(&s1, &s2, &step));
    step.result_ok = true;
    assert_false(next(&s1, &s2, &step));
}

/* UnmapStart removes the mapping at once; UnmapEnd then returns Ok. */
static void unmap(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2, s3;
    s1.nmappings = 1;
    s1.mappings[0].base = K4;
    s1.mappings[0].pte = pte(K4, K4, true);
    s2 = s1;
    s2.nmappings = 0;
    s2.thread_state[1] = (struct hl_args){ .kind = HL_ARGS_UNMAP, .vaddr = K4, .has_pte = true, .pte = s1.mappings[0].pte };
    struct hl_step step = { .kind = HL_STEP_UNMAP_START, .thread_id = 1, .vaddr = K4 };
    assert_true(next(&s1, &s2, &step));
    s3 = s2;
    memset(&s3.thread_state[1], 0, sizeof s3.thread_state[1]);
    struct hl_step end = { .kind = HL_STEP_UNMAP_END, .thread_id = 1, .result_ok = true };
    assert_true(next(&s2, &s3, &end));
    end.result_ok = false;
    assert_false(next(&s2, &s3, &end));
}

/* A store through a writable user mapping writes exactly one word of virtual memory. */
static void read_write_store(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2;
    s1.nmappings = 1;
    s1.mappings[0].base = 0x10000;
    s1.mappings[0].pte = pte(K4, K4, true);
    s2 = s1;
    /* s1 reads old value 0 at pa K4 + 8 through an overlay; s2 sees the stored 7 */
    assert_true(hw_pmem_write(&phys, K4 + 8, 7));
    s1.mem.n_overlay = 1;
    s1.mem.overlay_pa[0] = K4 + 8;
    s1.mem.overlay_val[0] = 0;
    struct hl_step step = { .kind = HL_STEP_READ_WRITE, .thread_id = 0, .vaddr = 0x10008, .is_store = true,
                            .new_value = 7, .rw_result = HL_RW_OK, .has_pte = true, .rw_pte = s1.mappings[0] };
    assert_true(next(&s1, &s2, &step));
    step.new_value = 8; /* the memory does not hold what was stored */
    assert_false(next(&s1, &s2, &step));
    step.new_value = 7;
    step.rw_result = HL_RW_UNDEFINED; /* a fault where the spec says Ok */
    assert_false(next(&s1, &s2, &step));
    assert_true(hw_pmem_write(&phys, K4 + 8, 0));
}

/* Extension: a less permissive pte (a stale TLB entry) may be used; a more permissive may not. */
static void read_write_stale_pte(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2;
    s1.nmappings = 1;
    s1.mappings[0].base = 0;
    s1.mappings[0].pte = pte(K4, K4, true);
    s2 = s1;
    struct hl_step step = { .kind = HL_STEP_READ_WRITE, .vaddr = 0, .is_store = true, .new_value = 1,
                            .rw_result = HL_RW_UNDEFINED, .has_pte = true, .rw_pte = s1.mappings[0] };
    step.rw_pte.pte.flags.is_writable = false;
    assert_true(next(&s1, &s2, &step));
    s1.mappings[0].pte.flags.is_writable = false;
    s2 = s1;
    step.rw_pte.pte.flags.is_writable = true;
    step.rw_result = HL_RW_OK;
    assert_false(next(&s1, &s2, &step));
}

/* A load of an address no mapping covers is Undefined and changes nothing. */
static void read_write_unmapped(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2 = s1;
    struct hl_step step = { .kind = HL_STEP_READ_WRITE, .vaddr = 0x5000, .rw_result = HL_RW_UNDEFINED };
    assert_true(next(&s1, &s2, &step));
    step.rw_result = HL_RW_VALUE;
    assert_false(next(&s1, &s2, &step));
}

/* Once unsound, any successor that stays unsound is allowed, and none that is sound. */
static void unsound_anything_goes(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2 = s1;
    s1.sound = false;
    s2.sound = false;
    s2.nmappings = 1;
    s2.mappings[0].base = 0;
    s2.mappings[0].pte = pte(0, K4, true);
    struct hl_step step = { .kind = HL_STEP_STUTTER };
    assert_true(next(&s1, &s2, &step));
    s2.sound = true;
    assert_false(next(&s1, &s2, &step));
}

/* Extension: ProtectStart grants the join of old and new permissions; ProtectEnd the new. */
static void protect(void **st)
{
    (void)st;
    struct hl_vars s1 = empty_state(), s2, s3;
    s1.nmappings = 1;
    s1.mappings[0].base = 0;
    s1.mappings[0].pte = pte(K4, K4, false);
    struct hw_flags nf = { .is_writable = true, .is_supervisor = true };
    s2 = s1;
    s2.mappings[0].pte.flags = hl_flags_join(s1.mappings[0].pte.flags, nf);
    s2.thread_state[0] = (struct hl_args){ .kind = HL_ARGS_PROTECT, .vaddr = 0, .has_pte = true, .pte = s1.mappings[0].pte, .flags = nf };
    struct hl_step step = { .kind = HL_STEP_PROTECT_START, .vaddr = 0, .flags = nf };
    assert_true(next(&s1, &s2, &step));
    s3 = s2;
    memset(&s3.thread_state[0], 0, sizeof s3.thread_state[0]);
    s3.mappings[0].pte.flags = nf;
    struct hl_step end = { .kind = HL_STEP_PROTECT_END, .result_ok = true };
    assert_true(next(&s2, &s3, &end));
    s3.mappings[0].pte.flags = s2.mappings[0].pte.flags; /* the join is not the new permissions */
    assert_false(next(&s2, &s3, &end));
}

/* inv: two mappings of overlapping frames break pmem_no_overlap. */
static void inv_pmem_overlap(void **st)
{
    (void)st;
    struct hl_vars s = empty_state();
    s.nmappings = 2;
    s.mappings[0].base = 0;
    s.mappings[0].pte = pte(K4, K4, true);
    s.mappings[1].base = K4;
    s.mappings[1].pte = pte(K4, K4, true);
    assert_false(hl_inv(&C, &s, why, sizeof why));
    assert_non_null(strstr(why, "pmem_no_overlap"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_state_is_init),   cmocka_unit_test(map_start_sound),
        cmocka_unit_test(map_start_disabled),   cmocka_unit_test(map_start_unsound),
        cmocka_unit_test(map_end),              cmocka_unit_test(unmap),
        cmocka_unit_test(read_write_store),     cmocka_unit_test(read_write_stale_pte),
        cmocka_unit_test(read_write_unmapped),  cmocka_unit_test(unsound_anything_goes),
        cmocka_unit_test(protect),              cmocka_unit_test(inv_pmem_overlap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
