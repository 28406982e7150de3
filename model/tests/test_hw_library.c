/*
 * The library judged by the model: after random library operations (map, unmap, protect, with
 * all three page sizes and all flag combinations, both halves of the canonical space), the
 * model's interpretation of the library's tables equals the mappings the test made, and
 * x86pt_resolve agrees with the model's walk. Then the model's Accessed/Dirty step sets A and
 * D bits at random: the interpretation does not change, and the library keeps working on the
 * tables (protect, unmap everything, destroy) with no leaked or dirty frame.
 *
 * The model only sees the bytes of physical memory and cr3, as the MMU does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hardware.h"
#include "physmem.h"
#include "x86pt/x86pt.h"

static uint64_t rng;
static uint64_t rnd(void)
{
    uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* What the test mapped: spec-space base -> pte, unsorted. */
struct shadow {
    struct hw_mapping *m;
    size_t n, cap;
};

static void shadow_add(struct shadow *s, uint64_t base, struct hw_pte pte)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->m = realloc(s->m, s->cap * sizeof *s->m);
        assert_non_null(s->m);
    }
    s->m[s->n].base = base;
    s->m[s->n].pte = pte;
    s->n++;
}

static int by_base(const void *a, const void *b)
{
    const struct hw_mapping *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

static struct hw_flags model_flags(unsigned lib_flags)
{
    struct hw_flags f = {
        .is_writable = lib_flags & X86PT_WRITABLE,
        .is_supervisor = !(lib_flags & X86PT_USER),
        .disable_execute = lib_flags & X86PT_NO_EXECUTE,
    };
    return f;
}

struct world {
    struct sim_phys s;
    struct x86pt_mem mem;
    struct x86pt pt;
    unsigned width;
    struct shadow sh;
};

static struct hw_pt_view world_view(const struct world *w)
{
    struct hw_pt_view v = { hw_mem_view_flat(w->s.mem, w->s.bytes), x86pt_root(&w->pt).pa,
                            w->width };
    return v;
}

static uint64_t random_size(void)
{
    static const uint64_t sizes[] = { HW_L3_ENTRY_SIZE, HW_L3_ENTRY_SIZE, HW_L3_ENTRY_SIZE,
                                      HW_L2_ENTRY_SIZE, HW_L1_ENTRY_SIZE };
    return sizes[rnd() % 5];
}

/* Crowded slots so that directories are shared, filled and reclaimed. */
static uint64_t random_spec_vaddr(uint64_t size)
{
    static const uint64_t l0[] = { 0, 1, 255, 256, 511 };
    uint64_t va = l0[rnd() % 5] << 39 | (rnd() % 3) << 30 | (rnd() % 4) << 21 | (rnd() % 8) << 12;
    return va & ~(size - 1);
}

static void random_map(struct world *w)
{
    uint64_t size = random_size();
    uint64_t va = random_spec_vaddr(size);
    uint64_t pa = (rnd() % ((UINT64_C(1) << w->width) / size)) * size;
    unsigned flags = (unsigned)(rnd() % 8);
    x86pt_status_t st = x86pt_map(&w->pt, x86pt_va(hw_vaddr_to_canonical(va)), x86pt_pa(pa), size,
                                  flags, NULL);
    if (st != X86PT_OK) {
        assert_int_equal(st, X86PT_E_OVERLAP);
        return;
    }
    struct hw_pte pte = { { pa, size }, model_flags(flags) };
    shadow_add(&w->sh, va, pte);
}

static void random_unmap_or_protect(struct world *w)
{
    if (!w->sh.n)
        return;
    size_t i = rnd() % w->sh.n;
    uint64_t cva = hw_vaddr_to_canonical(w->sh.m[i].base);
    if (rnd() % 2) {
        assert_int_equal(x86pt_unmap(&w->pt, x86pt_va(cva), NULL, NULL), X86PT_OK);
        w->sh.m[i] = w->sh.m[--w->sh.n];
    } else {
        unsigned flags = (unsigned)(rnd() % 8);
        assert_int_equal(x86pt_protect(&w->pt, x86pt_va(cva), flags, NULL), X86PT_OK);
        w->sh.m[i].pte.flags = model_flags(flags);
    }
}

/* The model's interpretation of the library's tables is exactly the shadow. */
static void judge(struct world *w)
{
    struct hw_pt_view pt = world_view(w);
    struct hw_interp in = { 0 };
    struct hw_interp_diag d;
    if (hw_interp_pt_mem(&pt, &in, &d) != HW_INTERP_OK) {
        char msg[256];
        hw_interp_diag_format(&d, msg, sizeof msg);
        fail_msg("library table rejected by the model: %s", msg);
    }
    if (w->sh.n)
        qsort(w->sh.m, w->sh.n, sizeof *w->sh.m, by_base);
    assert_int_equal(in.len, w->sh.n);
    for (size_t i = 0; i < in.len; i++) {
        assert_int_equal(in.map[i].base, w->sh.m[i].base);
        assert_true(hw_pte_equal(&in.map[i].pte, &w->sh.m[i].pte));
    }
    hw_interp_fini(&in);
}

/* x86pt_resolve agrees with the model's walk, mapped or not. */
static void judge_resolve(struct world *w, unsigned samples)
{
    struct hw_pt_view pt = world_view(w);
    for (unsigned k = 0; k < samples; k++) {
        uint64_t va = random_spec_vaddr(HW_L3_ENTRY_SIZE) | (rnd() % 512) * 8;
        if (w->sh.n && rnd() % 2) {
            const struct hw_mapping *m = &w->sh.m[rnd() % w->sh.n];
            va = m->base + (rnd() % m->pte.frame.size & ~UINT64_C(7));
        }
        struct hw_walk hw;
        struct x86pt_mapping lib;
        enum hw_walk_status ws = hw_pt_walk(&pt, va, &hw);
        x86pt_status_t st = x86pt_resolve(&w->pt, x86pt_va(hw_vaddr_to_canonical(va)), &lib);
        if (ws != HW_WALK_PAGE) {
            assert_int_equal(ws, HW_WALK_FAULT);
            assert_int_equal(st, X86PT_E_NOTMAPPED);
            continue;
        }
        assert_int_equal(st, X86PT_OK);
        assert_int_equal(lib.base.va, hw_vaddr_to_canonical(hw.base));
        assert_int_equal(lib.frame.pa, hw.pte.frame.base);
        assert_int_equal(lib.size, hw.pte.frame.size);
        struct hw_flags f = model_flags(lib.flags);
        assert_int_equal(f.is_writable, hw.pte.flags.is_writable);
        assert_int_equal(f.is_supervisor, hw.pte.flags.is_supervisor);
        assert_int_equal(f.disable_execute, hw.pte.flags.disable_execute);
    }
}

static void world_init(struct world *w, unsigned width)
{
    memset(w, 0, sizeof *w);
    assert_true(sim_phys_init(&w->s, 16 << 20, 1));
    w->s.scribble = true;
    w->mem = sim_phys_mem(&w->s);
    w->width = width;
    assert_int_equal(x86pt_init(&w->pt, &w->mem, width), X86PT_OK);
}

static void world_fini(struct world *w)
{
    x86pt_destroy(&w->pt);
    assert_int_equal(w->s.live, 0);
    assert_int_equal(w->s.bad_frees, 0);
    sim_phys_fini(&w->s);
    free(w->sh.m);
}

/* Random operations, judged after every step for a while, then at intervals. */
static void test_library_judged(void **state)
{
    (void)state;
    static const unsigned widths[] = { 32, 36, 40, 46, 52 };
    for (unsigned wi = 0; wi < 5; wi++) {
        struct world w;
        rng = 1000 + wi;
        world_init(&w, widths[wi]);
        for (unsigned op = 0; op < 6000; op++) {
            if (rnd() % 3)
                random_map(&w);
            else
                random_unmap_or_protect(&w);
            if (op < 300 || op % 100 == 0) {
                judge(&w);
                judge_resolve(&w, 16);
            }
        }
        judge(&w);
        printf("width %u: %zu mappings judged at the end\n", widths[wi], w.sh.n);
        world_fini(&w);
    }
}

/* The model's A/D step on a hw_vars built from the library's memory, written back. */
static void random_accessed_dirty(struct world *w, unsigned steps)
{
    struct hw_consts c = { .NUMA_no = 1, .core_no = 1, .phys_mem_size = 4096,
                           .maxphyaddr = w->width };
    struct hw_pmem pm;
    struct hw_vars s;
    assert_true(hw_pmem_from_flat(&pm, w->s.mem, w->s.bytes));
    assert_true(hw_init(&c, &s, &pm, x86pt_root(&w->pt).pa));
    hw_pmem_fini(&pm);
    for (unsigned k = 0; k < steps && w->sh.n; k++) {
        const struct hw_mapping *m = &w->sh.m[rnd() % w->sh.n];
        struct hw_vars s2;
        uint64_t va = m->base + (rnd() % m->pte.frame.size & ~UINT64_C(7));
        assert_int_equal(hw_step_AccessedDirty(&c, &s, va, rnd() % 2, &s2), HW_STEP_OK);
        hw_vars_fini(&s);
        s = s2;
    }
    hw_pmem_to_flat(&s.global_pt.mem, w->s.mem);
    hw_vars_fini(&s);
}

/* A and D bits never change the interpretation, and the library works on top of them. */
static void test_accessed_dirty_ignored(void **state)
{
    (void)state;
    struct world w;
    rng = 77;
    world_init(&w, 40);
    for (unsigned round = 0; round < 20; round++) {
        for (unsigned op = 0; op < 200; op++)
            if (rnd() % 3)
                random_map(&w);
            else
                random_unmap_or_protect(&w);
        judge(&w);
        random_accessed_dirty(&w, 100);
        judge(&w);  /* same mappings as before the A/D writes */
        judge_resolve(&w, 64);
    }
    /* Unmap everything: every directory is reclaimed despite its A bits. */
    while (w.sh.n) {
        uint64_t cva = hw_vaddr_to_canonical(w.sh.m[w.sh.n - 1].base);
        assert_int_equal(x86pt_unmap(&w.pt, x86pt_va(cva), NULL, NULL), X86PT_OK);
        w.sh.n--;
        if (w.sh.n % 64 == 0) {
            random_accessed_dirty(&w, 20);
            judge(&w);
        }
    }
    judge(&w);
    assert_int_equal(w.s.live, 1); /* the root only */
    world_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_judged),
        cmocka_unit_test(test_accessed_dirty_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
