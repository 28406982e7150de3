/* x86pt's extension of the OS model: Iterate (x86pt_iterate, issue 12). A thread whose core is
 * Idle iterates over [vaddr, vaddr + length) while no operation holds the kernel lock (it reads
 * as resolve does). The library must visit exactly the mappings of interp_pt_mem that meet the
 * range, in address order, each with its frame, size, permissions and the Accessed/Dirty bits
 * its entry holds; it may only load; the table is unchanged: a Stutter. */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>

/* The A/D bits of the entry that maps base. */
static unsigned leaf_ad(const struct os_consts *c, const struct os_vars *s, uint64_t base)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct hw_walk w;
    if (hw_pt_walk(&v, base, &w) != HW_WALK_PAGE)
        return 0;
    return os_entry_ad(hw_pmem_read(&s->hw.global_pt.mem, w.entry_pa[w.layer]));
}

static enum os_step_status refuse(struct os_vars *s2, struct os_step *st, char *why, size_t len, const char *fmt,
                                  uint64_t a, uint64_t b)
{
    os_vars_fini(s2);
    st->check = OS_CHECKID_ITERATE;
    return model_refuse(why, len, fmt, a, b), OS_STEP_VIOLATION;
}

enum os_step_status os_step_iterate(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (!os_reader_ready(c, s1, st, why, len))
        return OS_STEP_DISABLED;
    struct hw_interp pt = { 0 };
    if (!os_interp_pt_mem(c, s1, &pt, why, len))
        return OS_STEP_DISABLED; /* malformed: the checker reports it elsewhere */
    if (!os_vars_copy(s2, s1)) {
        hw_interp_fini(&pt);
        return OS_STEP_NOMEM;
    }
    struct os_pt_request rq = { .op = OS_PT_ITERATE, .vaddr = st->vaddr, .length = st->length };
    struct os_lib_result res;
    enum os_step_status r = os_lib_call_readonly(c, s2, &rq, &res, why, len);
    if (r != OS_STEP_OK) {
        hw_interp_fini(&pt);
        os_vars_fini(s2);
        return r;
    }
    st->result_ok = res.ok;
    st->nlisted = res.nlisted;
    unsigned n = 0; /* the table's mappings meeting the range, in address order (interp is sorted) */
    for (size_t i = 0; i < pt.len; i++) {
        const struct hw_mapping *m = &pt.map[i];
        if (m->base >= st->vaddr + st->length || m->base + m->pte.frame.size <= st->vaddr)
            continue;
        if (n < res.nlisted && n < OS_LISTED_MAX) {
            const struct hw_mapping *got = &res.listed[n];
            unsigned ad = leaf_ad(c, s1, m->base);
            if (got->base != m->base || !hw_pte_equal(&got->pte, &m->pte) || res.listed_ad[n] != ad) {
                hw_interp_fini(&pt);
                return refuse(s2, st, why, len,
                              "iteration: its mapping at 0x%" PRIx64 " is not the table's mapping at 0x%" PRIx64
                              " (frame, size, permissions or Accessed/Dirty differ)",
                              got->base, m->base);
            }
        }
        n++;
    }
    hw_interp_fini(&pt);
    if (!res.ok)
        return refuse(s2, st, why, len, "iteration over [0x%" PRIx64 ", +0x%" PRIx64 ") failed", st->vaddr, st->length);
    if (res.nlisted != n)
        return refuse(s2, st, why, len, "iteration visited %" PRIu64 " mappings, the table has %" PRIu64 " in its range",
                      res.nlisted, n);
    s2->pt_private = res.private_state;
    return OS_STEP_OK;
}
