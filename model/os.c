/*
 * spec_t/os.rs: the OS state machine's steps and os_next_step (os.h sets them out). The
 * single operations of x86pt's PROTECT extension share every body with unmap (the same states,
 * one kind further), so they stay here, each marked; the RANGE extension's own steps are in
 * os_range.c, x86pt's shootdown by flush report and FrameReuse in os_shootdown.c, the
 * library's accesses in os_lib.c. Plumbing: os_state.c (init, copy, hash, equality, the frame
 * pool), os_format.c (names and trace lines).
 */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* os.rs: CoreState::holds_lock */
bool os_core_may_allocate(const struct os_core_state *cs)
{
    return cs->kind == OS_MAP_EXECUTING && !cs->stored;
}

bool os_core_holds_lock(const struct os_core_state *cs)
{
    switch (cs->kind) {
    case OS_IDLE:
    case OS_MAP_WAITING:
    case OS_UNMAP_WAITING:
    case OS_PROTECT_WAITING:
        return false;
    default:
        return true;
    }
}

bool os_core_is_unmap(enum os_core_kind k) { return k >= OS_UNMAP_WAITING && k <= OS_UNMAP_SHOOTDOWN_WAITING; }
/* protect extension: its states, one kind after unmap's */
bool os_core_is_protect(enum os_core_kind k) { return k >= OS_PROTECT_WAITING && k <= OS_PROTECT_SHOOTDOWN_WAITING; }

int os_kernel_lock(const struct os_consts *c, const struct os_vars *s)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (os_core_holds_lock(&s->core_states[i]))
            return (int)i;
    return -1;
}

/* ---- interp_pt_mem lookups ----------------------------------------------------------------- */

/* (x86pt: the page table is the writer's, its store buffer applied: os_storebuf.c) */
bool os_pt_get(const struct os_consts *c, const struct os_vars *s, uint64_t vaddr, struct hw_pte *pte)
{
    struct os_wmem m;
    if (!os_wmem_get(c, s, &m))
        return false;
    struct hw_pt_view v = os_wmem_view(c, s, &m);
    struct hw_walk w;
    bool found = hw_pt_walk(&v, vaddr, &w) == HW_WALK_PAGE && w.base == vaddr;
    os_wmem_put(&m);
    if (found)
        *pte = w.pte;
    return found;
}

bool os_interp_pt_mem(const struct os_consts *c, const struct os_vars *s, struct hw_interp *out,
                      char *why, size_t len)
{
    struct os_wmem m;
    if (!os_wmem_get(c, s, &m))
        return model_refuse(why, len, "out of memory");
    struct hw_pt_view v = os_wmem_view(c, s, &m);
    struct hw_interp_diag d;
    enum hw_interp_status r = hw_interp_pt_mem(&v, out, &d);
    os_wmem_put(&m);
    if (r != HW_INTERP_OK) {
        char msg[200];
        hw_interp_diag_format(&d, msg, sizeof msg);
        return model_refuse(why, len, "page table malformed: %s", msg);
    }
    return true;
}

/* definitions_t.rs: candidate_mapping_overlaps_existing_pmem(interp_pt_mem(global_pt), pte),
 * without building the interpretation. */
struct pmem_ctx {
    struct hw_mem_region frame;
    struct hw_mem_region vregion; /* size 0: every page */
    bool found;
};

static bool pmem_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                       const struct hw_pde *pde, const struct hw_pte *combined)
{
    struct pmem_ctx *p = ctx;
    struct hw_mem_region v = { vaddr, combined->frame.size };
    (void)layer, (void)entry_pa;
    if (pde->kind == HW_PDE_PAGE && hw_overlap(p->frame, combined->frame) &&
        (!p->vregion.size || hw_overlap(p->vregion, v)))
        p->found = true;
    return !p->found;
}

/* ... of the pages that intersect vregion (size 0: of every page) */
bool os_overlaps_pt_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte,
                         struct hw_mem_region vregion)
{
    struct pmem_ctx p = { pte->frame, vregion, false };
    struct os_wmem m;
    if (!pte->frame.size || !os_wmem_get(c, s, &m))
        return false;
    struct hw_pt_view v = os_wmem_view(c, s, &m);
    hw_pt_visit(&v, pmem_visit, &p, NULL);
    os_wmem_put(&m);
    return p.found;
}

bool os_overlaps_existing_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte)
{
    struct hw_mem_region all = { 0, 0 };
    return os_overlaps_pt_pmem(c, s, pte, all);
}

/* os.rs: CoreState::vmem_pte_size */
uint64_t os_core_vmem_size(const struct os_consts *c, const struct os_vars *s, const struct os_core_state *cs)
{
    struct hw_pte p;
    switch (cs->kind) {
    case OS_MAP_WAITING:
    case OS_MAP_EXECUTING:
        return cs->pte.frame.size;
    case OS_UNMAP_WAITING:
    case OS_PROTECT_WAITING:
        return os_pt_get(c, s, cs->vaddr, &p) ? p.frame.size : 0;
    case OS_IDLE:
        return 0;
    default:
        return cs->result_ok ? cs->result.frame.size : 0;
    }
}

struct hw_mem_region os_core_vregion(const struct os_consts *c, const struct os_vars *s,
                                     const struct os_core_state *cs)
{
    struct hw_mem_region r = { cs->vaddr, 0 };
    if (cs->range) {
        r.base = cs->rg.lo;
        r.size = cs->rg.hi - cs->rg.lo;
    } else {
        r.size = os_core_vmem_size(c, s, cs);
    }
    return r;
}

/* os.rs: candidate_mapping_overlaps_inflight_vmem (a Protect state counts like an Unmap; a
 * range operation by its region) */
bool os_overlaps_inflight_vmem(const struct os_consts *c, const struct os_vars *s, uint64_t base, uint64_t size)
{
    struct hw_mem_region cand = { base, size };
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (cs->kind == OS_IDLE)
            continue;
        if (hw_overlap(os_core_vregion(c, s, cs), cand))
            return true;
    }
    return false;
}

/* os.rs: candidate_mapping_overlaps_inflight_pmem (a Protect's frame stays mapped) */
bool os_overlaps_inflight_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *cand)
{
    struct hw_pte p;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (cs->range) { /* range extension: os_range.c */
            if (os_range_overlaps_inflight_pmem(c, s, cs, cand))
                return true;
            continue;
        }
        switch (cs->kind) {
        case OS_MAP_WAITING:
        case OS_MAP_EXECUTING:
            if (hw_overlap(cand->frame, cs->pte.frame))
                return true;
            break;
        case OS_UNMAP_WAITING:
            if (os_pt_get(c, s, cs->vaddr, &p) && hw_overlap(cand->frame, p.frame))
                return true;
            break;
        case OS_UNMAP_OP_EXECUTING:
        case OS_UNMAP_OP_DONE:
        case OS_UNMAP_SHOOTDOWN_WAITING:
            if (cs->result_ok && hw_overlap(cand->frame, cs->result.frame))
                return true;
            break;
        default:
            break;
        }
    }
    return false;
}

/* ---- steps ------------------------------------------------------------------------------- */

/* A valid thread whose core is Idle (the start of a thread's operation). */
bool os_ult_ok(const struct os_consts *c, const struct os_vars *s1, unsigned ult, char *why, size_t len)
{
    if (ult >= c->ULT_no)
        return model_refuse(why, len, "thread %u not valid", ult);
    if (s1->core_states[os_core_index(c, c->ULT2core[ult])].kind != OS_IDLE)
        return model_refuse(why, len, "thread %u's core is not Idle", ult);
    return true;
}

static enum os_step_status step_HW(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                   struct os_vars *s2, struct os_delta *d, char *why, size_t len)
{
    struct hw_step *h = &st->hw;
    switch (h->kind) { /* what the hardware does of its own accord; the rest is software's */
    case HW_STEP_READ_WRITE:
    case HW_STEP_TLB_FILL:
    case HW_STEP_TLB_EVICT:
    case HW_STEP_ACCESSED_DIRTY:
    case HW_STEP_WALK_INIT:
    case HW_STEP_WALK_STEP:
    case HW_STEP_WALK_ABORT:
    case HW_STEP_WALK_TLB_FILL:
    case HW_STEP_CACHE_FILL:
    case HW_STEP_CACHE_EVICT:
    case HW_STEP_WRITEBACK: /* the oldest buffered store reaches memory (os_storebuf.c) */
        break;
    default:
        return model_refuse(why, len, "%s is software's, not a HW step", "this step"), OS_STEP_DISABLED;
    }
    if (h->kind == HW_STEP_READ_WRITE) {
        /* step_HW: the thread's core is Idle; x86pt: it uses its own core's TLB */
        if (st->ULT_id >= c->ULT_no)
            return model_refuse(why, len, "thread not valid"), OS_STEP_DISABLED;
        h->core = c->ULT2core[st->ULT_id];
        if (s1->core_states[os_core_index(c, h->core)].kind != OS_IDLE)
            return model_refuse(why, len, "thread %u's core is not Idle", st->ULT_id), OS_STEP_DISABLED;
    }
    st->core = os_core_index(c, h->core);
    if (h->kind == HW_STEP_WRITEBACK && !os_lib_writeback_ok(c, s1, st, why, len))
        return OS_STEP_VIOLATION;
    memcpy(s2, s1, sizeof *s2);
    os_run_hold(&s2->run); /* hw_next_step makes s2->hw; s2 shares the run */
    enum hw_step_status r = hw_next_step(&c->hw, &s1->hw, h, &s2->hw, &st->rw);
    if (r != HW_STEP_OK)
        os_run_drop(&s2->run);
    if (r == HW_STEP_E_NOMEM)
        return OS_STEP_NOMEM;
    if (r != HW_STEP_OK)
        return model_refuse(why, len, "%s", hw_step_status_str(r)), OS_STEP_DISABLED;
    if (h->kind == HW_STEP_READ_WRITE && h->op.kind == HW_RW_STORE && st->rw.kind == HW_RESULT_OK) {
        d->n = 1;
        d->pa[0] = st->rw.paddr;
        d->old[0] = hw_pmem_read(&s1->hw.mem, st->rw.paddr);
    }
    return OS_STEP_OK;
}

/* MapStart / UnmapStart / ProtectStart (protect: like UnmapStart): Idle -> Waiting; soundness as
 * os.rs says. */
static enum os_step_status step_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                      struct os_vars *s2, char *why, size_t len)
{
    if (!os_ult_ok(c, s1, st->ULT_id, why, len))
        return OS_STEP_DISABLED;
    unsigned core = os_core_index(c, c->ULT2core[st->ULT_id]);
    struct hl_consts hc = { c->ULT_no, c->hw.phys_mem_size, c->hw.maxphyaddr };
    struct os_core_state ns = { .ULT_id = st->ULT_id, .vaddr = st->vaddr };
    bool sound;
    st->core = core;
    if (st->kind == OS_STEP_MAP_START) {
        /* step_Map_enabled (incl. alloc_available_pages() >= 3) */
        if (!hl_step_Map_enabled(&hc, st->vaddr, &st->pte) || os_pt_free_count(c, s1) < 3)
            return model_refuse(why, len, "not step_Map_enabled"), OS_STEP_DISABLED;
        ns.kind = OS_MAP_WAITING;
        ns.pte = st->pte;
        /* step_Map_sound */
        sound = !os_overlaps_existing_pmem(c, s1, &st->pte) && !os_overlaps_inflight_pmem(c, s1, &st->pte) &&
                !os_overlaps_inflight_vmem(c, s1, st->vaddr, st->pte.frame.size);
    } else {
        struct hw_pte p;
        if (!hl_step_Unmap_enabled(st->vaddr))
            return model_refuse(why, len, "not step_Unmap_enabled"), OS_STEP_DISABLED;
        ns.kind = st->kind == OS_STEP_UNMAP_START ? OS_UNMAP_WAITING : OS_PROTECT_WAITING;
        ns.flags = st->flags;
        ns.ad_clear = st->kind == OS_STEP_PROTECT_START ? st->ad_clear & 3u : 0;
        sound = !os_overlaps_inflight_vmem(c, s1, st->vaddr, os_pt_get(c, s1, st->vaddr, &p) ? p.frame.size : 0);
    }
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->core_states[core] = ns;
    s2->sound = s1->sound && sound;
    return OS_STEP_OK;
}

/* MapOpStart / UnmapOpStart / ProtectOpStart: take the lock; the library starts (its first
 * action is a step of its own). An unmap's or protect's result is fixed now, as spec_pt's
 * step_Unmap_Start says: Ok(interp_pt_mem[vaddr]) if vaddr is mapped, else Err. */
static enum os_step_status step_op_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                         struct os_vars *s2, char *why, size_t len)
{
    static const enum os_core_kind waiting[] = { OS_MAP_WAITING, OS_UNMAP_WAITING, OS_PROTECT_WAITING };
    static const enum os_core_kind executing[] = { OS_MAP_EXECUTING, OS_UNMAP_OP_EXECUTING, OS_PROTECT_OP_EXECUTING };
    enum os_pt_op op = st->kind == OS_STEP_MAP_OP_START ? OS_PT_MAP
                       : st->kind == OS_STEP_UNMAP_OP_START ? OS_PT_UNMAP : OS_PT_PROTECT;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != waiting[op])
        return model_refuse(why, len, "core is not %s", os_core_kind_name(waiting[op])), OS_STEP_DISABLED;
    if (os_kernel_lock(c, s1) >= 0)
        return model_refuse(why, len, "kernel lock is held"), OS_STEP_DISABLED;
    if (!os_sbuf_lock_free(c, s1, why, len))
        return OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (cs->range) /* range extension: os_range.c */
        return os_step_range_op_start(c, s1, st, s2, op, why, len);
    struct hw_pte old;
    bool had = op != OS_PT_MAP && os_pt_get(c, s1, cs->vaddr, &old);
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    if (!os_run_start(&s2->run, NULL, 0)) {
        os_vars_fini(s2);
        return OS_STEP_NOMEM;
    }
    struct os_core_state *ns = os_cs_of(s2, st->core);
    ns->kind = executing[op];
    ns->result_ok = st->result_ok = had;
    if (had)
        ns->result = old;
    return OS_STEP_OK;
}

static bool executing(enum os_core_kind k)
{
    return k == OS_MAP_EXECUTING || k == OS_UNMAP_OP_EXECUTING || k == OS_PROTECT_OP_EXECUTING;
}

/* ViewStutter (a single operation) / RangeStore (a range operation): the library's next access
 * to the table, a load, store or compare-exchange (os_lib.c). */
static enum os_step_status step_lib_access(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                           struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c))
        return OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (!executing(cs->kind) || !s1->run.buf || cs->range != (st->kind == OS_STEP_RANGE_STORE))
        return model_refuse(why, len, "no access of the library to make"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    struct os_lib_result res;
    enum os_step_status r = os_lib_advance(c, s2, st, st->core, OS_LIB_UNTIL_ACCESS, &res, why, len);
    if (r == OS_STEP_DISABLED)
        os_vars_fini(s2);
    return r;
}

/* The library returned: its result must be the one the contract names (a range: fixed at
 * Start; an unmap/protect: at OpStart; a map: spec_pt's step_Map_End, judged with the view). */
static enum os_step_status check_result(const struct os_vars *s1, struct os_step *st, const struct os_core_state *cs,
                                        const struct os_core_state *ns, const struct os_lib_result *res, char *why,
                                        size_t len)
{
    if (res->nomem && !ns->alloc_failed)
        return model_refuse(why, len, "the library ran out of directories although the pool held what it may need"),
               OS_STEP_VIOLATION;
    if (cs->range && cs->rg.fail_alloc && !ns->alloc_failed)
        return model_refuse(why, len, "the allocator was to refuse directory %u of the split, but the library asked "
                            "for only %u", cs->rg.fail_alloc, ns->rg.allocs),
               OS_STEP_VIOLATION;
    if (!res->ok && ns->stored)
        return model_refuse(why, len, "the library failed but changed the table"), OS_STEP_VIOLATION;
    st->result_ok = res->ok;
    st->range = cs->range;
    bool map = cs->kind == OS_MAP_EXECUTING;
    /* x86pt's extension: X86PT_E_NOMEM, once the allocator refused a frame, is an Err that
     * changed nothing (no store, every frame given back: os_inv_tidy) */
    if (res->nomem && (map || cs->range))
        return st->nomem = true, OS_STEP_OK;
    if (res->nomem)
        return model_refuse(why, len, "an unmap or protect returned X86PT_E_NOMEM"), OS_STEP_VIOLATION;
    if (ns->alloc_failed)
        return model_refuse(why, len, "the allocator refused the library a frame, yet it returns %s",
                            res->ok ? "Ok" : "another error than X86PT_E_NOMEM"), OS_STEP_VIOLATION;
    if (cs->range) {
        /* (in an unsound state another operation may have changed the region since Start) */
        if (s1->sound && res->ok != cs->rg.will_ok)
            return model_refuse(why, len, "the library returns %s but the contract says %s", res->ok ? "Ok" : "Err",
                                cs->rg.will_ok ? "Ok" : "Err"), OS_STEP_VIOLATION;
        return OS_STEP_OK;
    }
    if (map)
        return OS_STEP_OK;
    if (res->ok != cs->result_ok)
        return model_refuse(why, len, "the library returns %s but 0x%" PRIx64 " is %smapped", res->ok ? "Ok" : "Err",
                            cs->vaddr, cs->result_ok ? "" : "not "), OS_STEP_VIOLATION;
    if (res->ok && !ns->stored && !cs->ad_clear) /* a test-and-clear of clear bits stores nothing */
        return model_refuse(why, len, "the library returns Ok but made no store"), OS_STEP_VIOLATION;
    /* the A/D extension: test-and-clear's `was` is the entry's bits at its store (os_lib.c); with
     * no store, the asked bits were clear */
    if (cs->ad_clear && res->ok && ns->stored && res->reported_ad != ns->removed_ad)
        return st->check = OS_CHECKID_AD_LOST,
               model_refuse(why, len, "test-and-clear reports Accessed/Dirty 0x%x, but the entry held 0x%x when it "
                            "cleared them", res->reported_ad, ns->removed_ad), OS_STEP_VIOLATION;
    if (cs->ad_clear && res->ok && !ns->stored && (res->reported_ad & cs->ad_clear))
        return st->check = OS_CHECKID_AD_LOST,
               model_refuse(why, len, "test-and-clear reports 0x%x set of the asked 0x%x but cleared nothing",
                            res->reported_ad, cs->ad_clear), OS_STEP_VIOLATION;
    if (os_core_is_unmap(cs->kind) && res->ok && res->has_reported && !hw_pte_equal(&res->reported, &cs->result))
        return model_refuse(why, len, "unmap reports a mapping that is not the one at 0x%" PRIx64, cs->vaddr),
               OS_STEP_VIOLATION;
    if (os_core_is_unmap(cs->kind) && res->ok && res->has_reported && res->reported_ad != ns->removed_ad)
        return model_refuse(why, len, "unmap reports Accessed/Dirty 0x%x, but the entry held 0x%x when it was removed",
                            res->reported_ad, ns->removed_ad),
               OS_STEP_VIOLATION;
    return OS_STEP_OK;
}

/* os.rs: step_Map_End: a single map's last store (the one that adds the mapping) and its
 * return; a range map's return. */
static enum os_step_status step_map_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != OS_MAP_EXECUTING)
        return model_refuse(why, len, "core is not MapExecuting"), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (!c->no_map_fence && !os_sbuf_drained(c, s1, st->core, "MapEnd's fence", why, len))
        return OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    struct os_lib_result res;
    enum os_step_status r =
        os_lib_advance(c, s2, st, st->core, cs->range ? OS_LIB_UNTIL_RETURN : OS_LIB_UNTIL_MAP_END, &res, why, len);
    if (r == OS_STEP_DISABLED)
        os_vars_fini(s2);
    if (r != OS_STEP_OK)
        return r;
    if ((r = check_result(s1, st, cs, os_cs_of(s2, st->core), &res, why, len)) != OS_STEP_OK)
        return r;
    os_run_drop(&s2->run);
    memset(os_cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

/* Unmap/ProtectOpEnd: the library returns -> *OpDone, with its flush report. */
static enum os_step_status step_op_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                       struct os_vars *s2, char *why, size_t len)
{
    enum os_core_kind from = st->kind == OS_STEP_UNMAP_OP_END ? OS_UNMAP_OP_EXECUTING : OS_PROTECT_OP_EXECUTING;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != from)
        return model_refuse(why, len, "core is not %s", os_core_kind_name(from)), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    struct os_lib_result res;
    enum os_step_status r = os_lib_advance(c, s2, st, st->core, OS_LIB_UNTIL_RETURN, &res, why, len);
    if (r == OS_STEP_DISABLED)
        os_vars_fini(s2);
    if (r != OS_STEP_OK)
        return r;
    if ((r = check_result(s1, st, cs, os_cs_of(s2, st->core), &res, why, len)) != OS_STEP_OK)
        return r;
    os_cs_of(s2, st->core)->kind = from + 1; /* *OpDone */
    if (st->nomem) /* a range's split refused (hlspec.h: nomem): an Err at End */
        os_cs_of(s2, st->core)->result_ok = false;
    return OS_STEP_OK;
}

/* Unmap/ProtectInitiateShootdown: when the library's flush report asks for anything, every
 * core must invalidate exactly the reported range (os.rs sends the unmapped vaddr). */
static enum os_step_status step_initiate_shootdown(const struct os_consts *c, const struct os_vars *s1,
                                                   struct os_step *st, struct os_vars *s2, char *why, size_t len)
{
    bool prot = st->kind == OS_STEP_PROTECT_INITIATE_SHOOTDOWN;
    enum os_core_kind from = prot ? OS_PROTECT_OP_DONE : OS_UNMAP_OP_DONE;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != from)
        return model_refuse(why, len, "core is not %s", os_core_kind_name(from)), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (!os_flush_needed(cs))
        return model_refuse(why, len, "the flush report asks for nothing"), OS_STEP_DISABLED;
    if (!c->no_shootdown_fence && !os_sbuf_drained(c, s1, st->core, "the shootdown IPI", why, len))
        return OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    os_cs_of(s2, st->core)->kind = from + 1; /* *ShootdownWaiting */
    s2->TLB_Shootdown.vaddr = cs->vaddr;
    s2->TLB_Shootdown.open_requests = (uint32_t)((UINT64_C(1) << os_ncores(c)) - 1);
    s2->TLB_Shootdown.for_protect = prot;
    s2->TLB_Shootdown.all = cs->flush.all;
    s2->TLB_Shootdown.dirs = cs->flush.dirs_freed > 0;
    s2->TLB_Shootdown.global = cs->flush.global;
    s2->TLB_Shootdown.lo = cs->flush.lo;
    s2->TLB_Shootdown.hi = cs->flush.hi;
    return OS_STEP_OK;
}

/* os.rs: step_Ack_Shootdown_IPI, as the kernel's IPI handler does it: invlpg every 4 KiB page
 * of the reported range, or reload CR3 (os_shootdown.c: os_shootdown_invalidate); then
 * acknowledge. os.rs instead waits for TLBEvict steps to have removed vaddr; x86pt
 * removes exactly what was asked, so that a stale entry outside the report survives and the
 * invariants see it. */
static enum os_step_status step_ack(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || !(s1->TLB_Shootdown.open_requests >> st->core & 1))
        return model_refuse(why, len, "no open request for this core"), OS_STEP_DISABLED;
    struct hw_vars hw;
    enum hw_step_status r;
    if (!hw_vars_copy(&hw, &s1->hw))
        return OS_STEP_NOMEM;
    r = os_shootdown_invalidate(c, &s1->TLB_Shootdown, os_core_of(c, st->core), &hw);
    if (r != HW_STEP_OK) {
        hw_vars_fini(&hw);
        if (r == HW_STEP_E_NOMEM)
            return OS_STEP_NOMEM;
        return model_refuse(why, len, "invalidation refused: %s", hw_step_status_str(r)), OS_STEP_DISABLED;
    }
    memcpy(s2, s1, sizeof *s2);
    os_run_hold(&s2->run);
    s2->hw = hw;
    s2->TLB_Shootdown.open_requests &= ~(UINT32_C(1) << st->core);
    return OS_STEP_OK;
}

/* os.rs: step_Unmap_End (+ ProtectEnd, the range ends): the shootdown is complete (or none was
 * asked for); the directories the operation freed go back to the pool now. */
static enum os_step_status step_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c))
        return OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    bool unmap = st->kind == OS_STEP_UNMAP_END;
    if (unmap ? !os_core_is_unmap(cs->kind) : !os_core_is_protect(cs->kind))
        return model_refuse(why, len, "not this operation's end"), OS_STEP_DISABLED;
    bool waited = cs->kind == OS_UNMAP_SHOOTDOWN_WAITING || cs->kind == OS_PROTECT_SHOOTDOWN_WAITING;
    bool ok = waited ? !s1->TLB_Shootdown.open_requests
                     : (cs->kind == OS_UNMAP_OP_DONE || cs->kind == OS_PROTECT_OP_DONE) && !os_flush_needed(cs);
    if (!ok)
        return model_refuse(why, len, "not ready to end"), OS_STEP_DISABLED;
    st->result_ok = cs->result_ok;
    st->range = cs->range;
    st->nomem = cs->alloc_failed;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    os_run_drop(&s2->run);
    os_release_pending(s2);
    if (waited)
        memset(&s2->TLB_Shootdown, 0, sizeof s2->TLB_Shootdown);
    memset(os_cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

bool os_reader_ready(const struct os_consts *c, const struct os_vars *s1, struct os_step *st, char *why, size_t len)
{
    if (!os_ult_ok(c, s1, st->ULT_id, why, len))
        return false;
    if (os_kernel_lock(c, s1) >= 0 || s1->run.buf || !os_sbuf_lock_free(c, s1, why, len))
        return model_refuse(why, len, "an operation holds the kernel lock"), false;
    st->core = os_core_index(c, c->ULT2core[st->ULT_id]);
    return true;
}

/* x86pt's extension: Resolve (x86pt_resolve) by a thread whose core is Idle while no operation
 * holds the kernel lock (resolves run concurrently with each other, not with a writer). The
 * library's answer must be the mapping of interp_pt_mem that contains vaddr (every mapping is
 * effective: nothing is in flight), or none; the table is unchanged; a Stutter. */
static enum os_step_status step_resolve(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    if (!os_reader_ready(c, s1, st, why, len))
        return OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    struct os_pt_request rq = { .op = OS_PT_RESOLVE, .vaddr = st->vaddr };
    struct os_lib_result res;
    enum os_step_status r = os_lib_call_readonly(c, s2, &rq, &res, why, len);
    if (r != OS_STEP_OK) {
        os_vars_fini(s2);
        return r;
    }
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s1->hw);
    struct hw_walk w;
    bool mapped = hw_pt_walk(&v, st->vaddr, &w) == HW_WALK_PAGE;
    st->result_ok = res.ok;
    st->resolved.base = res.reported_base;
    st->resolved.pte = res.reported;
    unsigned ad = mapped ? os_entry_ad(hw_pmem_read(&s1->hw.global_pt.mem, w.entry_pa[w.layer])) : 0;
    if (mapped && res.ok && res.has_reported && res.reported_base == w.base && hw_pte_equal(&res.reported, &w.pte) &&
        res.reported_ad != ad) {
        os_vars_fini(s2);
        st->check = OS_CHECKID_RESOLVE;
        return model_refuse(why, len, "resolve 0x%" PRIx64 " reports Accessed/Dirty 0x%x, the entry holds 0x%x",
                            st->vaddr, res.reported_ad, ad),
               OS_STEP_VIOLATION;
    }
    if (res.ok != mapped || (mapped && (!res.has_reported || res.reported_base != w.base ||
                                        !hw_pte_equal(&res.reported, &w.pte)))) {
        os_vars_fini(s2);
        st->check = OS_CHECKID_RESOLVE;
        if (!mapped)
            return model_refuse(why, len, "resolve 0x%" PRIx64 " finds a mapping where the table has none", st->vaddr),
                   OS_STEP_VIOLATION;
        return model_refuse(why, len, "resolve 0x%" PRIx64 " %s, but the table maps it in [0x%" PRIx64 ", 0x%" PRIx64
                            ") to frame 0x%" PRIx64 "%s%s%s", st->vaddr,
                            res.ok ? "answers another mapping" : "finds nothing", w.base, w.base + w.pte.frame.size,
                            w.pte.frame.base, w.pte.flags.is_writable ? " W" : "",
                            w.pte.flags.is_supervisor ? " S" : " U", w.pte.flags.disable_execute ? " XD" : ""),
               OS_STEP_VIOLATION;
    }
    s2->pt_private = res.private_state; /* the walk hint */
    return OS_STEP_OK;
}

bool os_table_idle(const struct os_consts *c, const struct os_vars *s)
{
    return os_kernel_lock(c, s) < 0 && !s->run.buf && os_sbuf_writer(c, s) < 0;
}

/* x86pt's extension: a probe of x86pt_destroy while no operation holds the lock. It runs on a
 * copy of the state, which is then dropped (destroy kills the table): the step itself is a
 * Stutter; os_lib_destroy judges what destroy did. */
static enum os_step_status step_destroy_probe(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                              struct os_vars *s2, char *why, size_t len)
{
    if (!os_table_idle(c, s1))
        return model_refuse(why, len, "an operation holds the kernel lock"), OS_STEP_DISABLED;
    struct os_vars scratch;
    if (!os_vars_copy(&scratch, s1))
        return OS_STEP_NOMEM;
    unsigned n = 0;
    enum os_step_status r = os_lib_destroy(c, &scratch, &n, why, len);
    os_vars_fini(&scratch);
    st->nfreed = n;
    if (r == OS_STEP_VIOLATION)
        st->check = OS_CHECKID_DESTROY;
    if (r != OS_STEP_OK)
        return r;
    return os_vars_copy(s2, s1) ? OS_STEP_OK : OS_STEP_NOMEM;
}

enum os_step_status os_next_step(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                 struct os_vars *s2, struct os_delta *delta, char *why, size_t len)
{
    enum os_step_status r;
    delta->n = 0;
    st->wrote = false;
    st->buffered = false;
    st->accessed = false;
    st->range = false;
    st->nsilent = 0;
    st->nallocs = 0;
    st->alloc_failed = false;
    st->nomem = false;
    st->nfreed = 0;
    st->check = OS_CHECKID_WRITE_DISCIPLINE;
    switch (st->kind) {
    case OS_STEP_HW:
        return step_HW(c, s1, st, s2, delta, why, len);
    case OS_STEP_MAP_START:
    case OS_STEP_UNMAP_START:
    case OS_STEP_PROTECT_START:
        return step_start(c, s1, st, s2, why, len);
    case OS_STEP_MAP_RANGE_START:
    case OS_STEP_UNMAP_RANGE_START:
    case OS_STEP_PROTECT_RANGE_START: /* range extension: os_range.c */
        return os_step_range_start(c, s1, st, s2, why, len);
    case OS_STEP_RANGE_STORE:
    case OS_STEP_VIEW_STUTTER:
        r = step_lib_access(c, s1, st, s2, why, len);
        break;
    case OS_STEP_MAP_OP_START:
    case OS_STEP_UNMAP_OP_START:
    case OS_STEP_PROTECT_OP_START:
        r = step_op_start(c, s1, st, s2, why, len);
        break;
    case OS_STEP_MAP_END:
        r = step_map_end(c, s1, st, s2, why, len);
        break;
    case OS_STEP_UNMAP_OP_END:
    case OS_STEP_PROTECT_OP_END:
        r = step_op_end(c, s1, st, s2, why, len);
        break;
    case OS_STEP_UNMAP_INITIATE_SHOOTDOWN:
    case OS_STEP_PROTECT_INITIATE_SHOOTDOWN:
        return step_initiate_shootdown(c, s1, st, s2, why, len);
    case OS_STEP_ACK_SHOOTDOWN_IPI:
        return step_ack(c, s1, st, s2, why, len);
    case OS_STEP_RESOLVE:
        return step_resolve(c, s1, st, s2, why, len);
    case OS_STEP_DESTROY_PROBE:
        return step_destroy_probe(c, s1, st, s2, why, len);
    case OS_STEP_ADOPT_PROBE:
        return os_step_adopt_probe(c, s1, st, s2, why, len);
    case OS_STEP_ITERATE: /* x86pt: os_iterate.c */
        return os_step_iterate(c, s1, st, s2, why, len);
    case OS_STEP_BAD_CALL: /* x86pt: os_badcall.c */
        return os_step_bad_call(c, s1, st, s2, why, len);
    case OS_STEP_FRAME_REUSE: /* x86pt: os_shootdown.c */
        return os_step_frame_reuse(c, s1, st, s2, why, len);
    case OS_STEP_UNMAP_END:
    case OS_STEP_PROTECT_END:
        return step_end(c, s1, st, s2, why, len);
    default:
        return model_refuse(why, len, "unknown step"), OS_STEP_DISABLED;
    }
    /* the steps that copied s1 before failing must not leak */
    if (r == OS_STEP_VIOLATION || r == OS_STEP_NOMEM)
        os_vars_fini(s2);
    return r;
}
