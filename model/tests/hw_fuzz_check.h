/* The property the fuzzers check on one arbitrary image (used by test_hw_fuzz and by the
 * libFuzzer target model/fuzz/fuzz_interp.c): the decoder, walk and interpretation never crash
 * or loop, and when the interpretation succeeds it agrees with the walk both ways. Returns
 * false on a disagreement (the caller reports it). */
#ifndef X86PT_MODEL_TESTS_HW_FUZZ_CHECK_H
#define X86PT_MODEL_TESTS_HW_FUZZ_CHECK_H

#include <stdio.h>

#include "hardware.h"

static bool stop_after_three(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                             const struct hw_pde *pde, const struct hw_pte *combined)
{
    (void)layer, (void)entry_pa, (void)vaddr, (void)pde, (void)combined;
    return ++*(unsigned *)ctx < 3;
}

/* probes: virtual addresses to walk (any values). */
static inline bool fuzz_check_image(const struct hw_pt_view *pt, const uint64_t *probes,
                                    size_t nprobes)
{
    struct hw_interp in = { 0 };
    struct hw_interp_diag d;
    char msg[256];
    enum hw_interp_status st = hw_interp_pt_mem(pt, &in, &d);
    hw_interp_diag_format(&d, msg, sizeof msg);
    unsigned count = 0;
    hw_pt_visit(pt, stop_after_three, &count, NULL);
    bool ok = true;
    for (size_t i = 0; i + 1 < in.len; i++) /* sorted, disjoint */
        if (in.map[i].base + in.map[i].pte.frame.size > in.map[i + 1].base)
            ok = false;
    for (size_t i = 0; i < in.len && ok; i++)
        if (st == HW_INTERP_OK && !hw_valid_pt_walk(pt, in.map[i].base, &in.map[i].pte))
            ok = false;
    for (size_t i = 0; i < nprobes && ok; i++) {
        struct hw_walk w;
        enum hw_walk_status ws = hw_pt_walk(pt, probes[i], &w);
        if (st != HW_INTERP_OK)
            continue;
        const struct hw_mapping *m = hw_interp_find(&in, probes[i]);
        if (ws == HW_WALK_OUTSIDE)
            ok = false; /* the interpretation entered every reachable directory */
        else if ((ws == HW_WALK_PAGE) != (m != NULL))
            ok = false;
        else if (m && (m->base != w.base || !hw_pte_equal(&m->pte, &w.pte)))
            ok = false;
    }
    hw_interp_fini(&in);
    return ok;
}

#endif
