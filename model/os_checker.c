/* The refinement checker's driver (os_refinement.h: struct os_checker): on every step it
 * checks spec_pt (spec_pt.c), refinement (hlspec next_step of the step's OSStep::interp, over
 * the states' interp: os_refinement.c), the OS invariants (os_invariant.c) and the high-level
 * invariant (hlspec.c), carrying the abstraction of the current state from one step to the
 * next so that each state is interpreted once. */
#include "os_internal.h"
#include "os_refinement_internal.h"
#include "why.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *os_check_name(enum os_check k)
{
    static const char *const n[] = { "none", "write discipline (spec_pt)", "Accessed/Dirty preservation",
                                     "refinement (hlspec next_step)", "OS invariant",
                                     "high-level invariant", "well-formed page table", "flush report",
                                     "resolve answer", "destroy", "argument check", "adopt", "iteration" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

enum os_check os_check_of_step(const struct os_step *st)
{
    switch (st->check) {
    case OS_CHECKID_AD_LOST: return OS_CHECK_AD_LOST;
    case OS_CHECKID_FLUSH_REPORT: return OS_CHECK_FLUSH_REPORT;
    case OS_CHECKID_RESOLVE: return OS_CHECK_RESOLVE;
    case OS_CHECKID_DESTROY: return OS_CHECK_DESTROY;
    case OS_CHECKID_BADCALL: return OS_CHECK_BADCALL;
    case OS_CHECKID_ADOPT: return OS_CHECK_ADOPT;
    case OS_CHECKID_ITERATE: return OS_CHECK_ITERATE;
    default: return OS_CHECK_WRITE_DISCIPLINE;
    }
}

/* ---- the driver -------------------------------------------------------------------------- */

/* Zero a checker without touching the (large) mapping array of its abstraction. */
static void checker_clear(struct os_checker *k)
{
    memset(&k->pt, 0, sizeof k->pt);
    memset(&k->pt2, 0, sizeof k->pt2);
    k->a.nmappings = 0;
    k->pt_hash = 0;
}

bool os_checker_at(struct os_checker *k, const struct os_consts *c, const struct os_vars *s, char *why, size_t len)
{
    checker_clear(k);
    k->c = c;
    k->hc.thread_no = c->ULT_no;
    k->hc.phys_mem_size = c->hw.phys_mem_size;
    k->hc.maxphyaddr = c->hw.maxphyaddr;
    if (!os_interp_pt_mem(c, s, &k->pt, why, len))
        return false;
    os_interp(c, s, &k->pt, &s->hw.mem, NULL, &k->a);
    return true;
}

bool os_checker_init(struct os_checker *k, const struct os_consts *c, const struct os_vars *s,
                     enum os_check *failed, char *why, size_t len)
{
    if (!os_checker_at(k, c, s, why, len))
        return *failed = OS_CHECK_WELL_FORMED, false;
    if (!hl_init(&k->hc, &k->a, why, len)) /* os_init_refines_hl_init */
        return *failed = OS_CHECK_REFINEMENT, false;
    if (!os_inv(c, s, &k->pt, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (!hl_inv(&k->hc, &k->a, why, len))
        return *failed = OS_CHECK_HL_INVARIANT, false;
    return true;
}

void os_checker_fini(struct os_checker *k)
{
    hw_interp_fini(&k->pt);
    hw_interp_fini(&k->pt2);
}

bool os_checker_copy(struct os_checker *dst, const struct os_checker *src)
{
    checker_clear(dst);
    dst->c = src->c;
    dst->hc = src->hc;
    hl_vars_copy(&dst->a, &src->a);
    dst->pt_hash = src->pt_hash;
    if (src->pt.len) {
        dst->pt.map = malloc(src->pt.len * sizeof *dst->pt.map);
        if (!dst->pt.map)
            return false;
        memcpy(dst->pt.map, src->pt.map, src->pt.len * sizeof *dst->pt.map);
        dst->pt.len = dst->pt.cap = src->pt.len;
    }
    return true;
}

bool os_checker_step(struct os_checker *k, const struct os_vars *s1, const struct os_vars *s2,
                     const struct os_step *st, const struct os_delta *delta, enum os_check *failed,
                     char *why, size_t len)
{
    const struct os_consts *c = k->c;
    struct os_wmem m1, m2; /* the writer's table (os_storebuf.c) */
    if (!os_wmem_get(c, s1, &m1))
        return model_refuse(why, len, "out of memory"), *failed = OS_CHECK_WELL_FORMED, false;
    if (!os_wmem_get(c, s2, &m2)) {
        os_wmem_put(&m1);
        return model_refuse(why, len, "out of memory"), *failed = OS_CHECK_WELL_FORMED, false;
    }
    bool same = hw_pmem_equal(m1.mem, m2.mem);
    os_wmem_put(&m1);
    os_wmem_put(&m2);
    const struct hw_interp *nxt = &k->pt;
    if (!same) {
        if (!os_interp_pt_mem(c, s2, &k->pt2, why, len))
            return *failed = OS_CHECK_WELL_FORMED, false;
        nxt = &k->pt2;
    }
    if (!os_check_spec_pt(k, s1, st, &k->pt, nxt, same, why, len))
        return *failed = OS_CHECK_WRITE_DISCIPLINE, false;

    struct hl_vars a2;
    struct hl_step hs;
    /* The abstraction depends on the table, the core states, the plan's snapshot and sound:
     * when none of them changed (most hardware steps), reuse s1's mappings and thread states. */
    bool reuse = same && hw_pmem_equal(&s1->hw.global_pt.mem, &s2->hw.global_pt.mem) && s1->sound == s2->sound && s1->run.snap == s2->run.snap &&
                 !memcmp(s1->core_states, s2->core_states, sizeof s1->core_states);
    if (reuse) {
        hl_vars_copy(&a2, &k->a);
        a2.mem.phys = &s2->hw.mem;
        a2.mem.n_overlay = 0;
    } else {
        os_interp(c, s2, nxt, &s2->hw.mem, NULL, &a2);
    }
    if (a2.nmappings >= HL_MAX_MAPPINGS)
        return model_refuse(why, len, "more than %u mappings: too many for the checker", HL_MAX_MAPPINGS - 1),
               *failed = OS_CHECK_WELL_FORMED, false;
    os_step_interp(c, s1, &k->a, st, &hs);
    /* the abstraction of s1, with its memory read as s2's memory plus the step's old values */
    k->a.mem.phys = &s2->hw.mem;
    k->a.mem.n_overlay = delta->n;
    for (unsigned i = 0; i < delta->n; i++) {
        k->a.mem.overlay_pa[i] = delta->pa[i];
        k->a.mem.overlay_val[i] = delta->old[i];
    }
    char hwhy[256];
    if (!hl_next_step(&k->hc, &k->a, &a2, &hs, hwhy, sizeof hwhy)) {
        char sname[160];
        hl_step_format(&hs, sname, sizeof sname);
        model_refuse(why, len, "%s: %s", sname, hwhy);
        return *failed = OS_CHECK_REFINEMENT, false;
    }
    if (!os_inv(c, s2, nxt, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (os_kernel_lock(c, s2) < 0 && (!same || os_kernel_lock(c, s1) >= 0) && !os_inv_tidy(c, s2, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (a2.sound && !(reuse && k->a.sound) && !hl_inv(&k->hc, &a2, why, len)) /* reuse: s1's held */
        return *failed = OS_CHECK_HL_INVARIANT, false;
    if (!same) {
        struct hw_interp t = k->pt;
        k->pt = k->pt2;
        k->pt2 = t;
    }
    hl_vars_copy(&k->a, &a2);
    return true;
}
