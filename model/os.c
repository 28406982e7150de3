/* spec_t/os.rs: state, steps. See os.h. */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* os.rs: CoreState::holds_lock */
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
bool os_core_is_protect(enum os_core_kind k) { return k >= OS_PROTECT_WAITING && k <= OS_PROTECT_SHOOTDOWN_WAITING; }

const char *os_core_kind_name(enum os_core_kind k)
{
    static const char *const n[] = { "Idle", "MapWaiting", "MapExecuting", "UnmapWaiting",
                                     "UnmapOpExecuting", "UnmapOpDone", "UnmapShootdownWaiting",
                                     "ProtectWaiting", "ProtectOpExecuting", "ProtectOpDone",
                                     "ProtectShootdownWaiting" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

const char *os_step_name(enum os_step_kind k)
{
    static const char *const n[] = { "HW", "MapStart", "MapOpStart", "MapEnd", "UnmapStart",
                                     "UnmapOpStart", "UnmapOpEnd", "UnmapInitiateShootdown",
                                     "AckShootdownIPI", "UnmapEnd", "ViewStutter", "ProtectStart",
                                     "ProtectOpStart", "ProtectOpEnd", "ProtectInitiateShootdown",
                                     "ProtectEnd", "MapRangeStart", "UnmapRangeStart", "ProtectRangeStart",
                                     "RangeStore", "FrameReuse" };
    return (unsigned)k < OS_STEP_KIND_COUNT ? n[k] : "?";
}

int os_kernel_lock(const struct os_consts *c, const struct os_vars *s)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (os_core_holds_lock(&s->core_states[i]))
            return (int)i;
    return -1;
}

/* ---- state as a value ---------------------------------------------------------------------- */

bool os_init(const struct os_consts *c, struct os_vars *s)
{
    memset(s, 0, sizeof *s);
    if (os_ncores(c) > OS_MAX_CORES || c->ULT_no > HL_MAX_THREADS || c->pt_frames > OS_PT_FRAMES_MAX ||
        c->pt_frames < 2)
        return false;
    struct hw_pmem pt;
    uint64_t root;
    if (!hw_pmem_init(&pt, (uint64_t)c->pt_frames * HW_PAGE_SIZE))
        return false;
    if (!c->impl->init(c->impl->ctx, c, &pt, s->pt_counts, &root) || root / HW_PAGE_SIZE >= c->pt_frames) {
        hw_pmem_fini(&pt);
        return false;
    }
    bool ok = hw_init(&c->hw, &s->hw, &pt, root);
    hw_pmem_fini(&pt);
    if (!ok)
        return false;
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        if (f != root / HW_PAGE_SIZE)
            s->pt_free[f / 64] |= UINT64_C(1) << (f % 64);
    s->sound = true; /* os.rs init: every core Idle, no open request, sound */
    return true;
}

bool os_vars_copy(struct os_vars *dst, const struct os_vars *src)
{
    memcpy(dst, src, sizeof *dst);
    os_run_hold(&dst->run);
    if (!hw_vars_copy(&dst->hw, &src->hw)) {
        os_run_drop(&dst->run);
        return false;
    }
    return true;
}

void os_vars_fini(struct os_vars *s)
{
    hw_vars_fini(&s->hw);
    os_run_drop(&s->run);
}

#define mix os_mix

static uint64_t flags_bits(struct hw_flags f)
{
    return (uint64_t)f.is_writable | (uint64_t)f.is_supervisor << 1 | (uint64_t)f.disable_execute << 2;
}

static uint64_t hash_pte(uint64_t h, const struct hw_pte *p)
{
    return mix(mix(mix(h, p->frame.base), p->frame.size), flags_bits(p->flags));
}

static uint64_t hash_core(uint64_t h, const struct os_core_state *cs)
{
    h = mix(h, cs->kind);
    if (cs->kind == OS_IDLE)
        return h;
    h = mix(mix(h, cs->ULT_id), cs->vaddr);
    h = hash_pte(h, &cs->pte);
    h = mix(mix(h, flags_bits(cs->flags)), cs->result_ok);
    h = hash_pte(h, &cs->result);
    h = os_mix(os_mix(os_mix(h, (uint64_t)cs->stored | (uint64_t)cs->splits << 1 | (uint64_t)cs->flush.all << 2),
                      cs->chg_lo), cs->chg_hi);
    h = os_mix(os_mix(os_mix(os_mix(h, cs->freed), cs->flush.lo), cs->flush.hi), cs->flush.dirs_freed);
    if (!cs->range)
        return h;
    const struct os_range *r = &cs->rg;
    h = mix(mix(mix(mix(h, r->length), r->paddr), r->policy),
            (uint64_t)r->split | (uint64_t)r->will_ok << 1 | (uint64_t)r->shrinks << 3);
    return mix(mix(h, r->lo), r->hi);
}

uint64_t os_vars_hash(const struct os_vars *s)
{
    uint64_t h = hw_vars_hash(&s->hw);
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        h = hash_core(h, &s->core_states[i]);
    h = mix(mix(mix(h, s->TLB_Shootdown.vaddr), s->TLB_Shootdown.open_requests), s->TLB_Shootdown.for_protect);
    h = mix(mix(mix(h, s->TLB_Shootdown.lo), s->TLB_Shootdown.hi),
            2 + s->TLB_Shootdown.all + 4 * s->TLB_Shootdown.dirs);
    h = mix(mix(h, s->sound), s->pt_private);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX / 64; i++)
        h = mix(mix(mix(h, s->pt_free[i]), s->pt_pending[i]), s->pt_fresh[i]);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX; i++)
        if (s->pt_counts[i])
            h = mix(mix(h, i), s->pt_counts[i]);
    return mix(h, os_run_hash(&s->run)); /* the library's run: its responses and where it stands */
}

static bool core_equal(const struct os_core_state *a, const struct os_core_state *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == OS_IDLE)
        return true;
    if (a->range != b->range || (a->range && memcmp(&a->rg, &b->rg, sizeof a->rg)))
        return false;
    return a->ULT_id == b->ULT_id && a->vaddr == b->vaddr && hw_pte_equal(&a->pte, &b->pte) &&
           hl_flags_equal(a->flags, b->flags) && a->result_ok == b->result_ok &&
           hw_pte_equal(&a->result, &b->result) && a->stored == b->stored && a->splits == b->splits &&
           a->chg_lo == b->chg_lo && a->chg_hi == b->chg_hi && a->freed == b->freed &&
           !memcmp(&a->flush, &b->flush, sizeof a->flush);
}

bool os_vars_equal(const struct os_vars *a, const struct os_vars *b)
{
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        if (!core_equal(&a->core_states[i], &b->core_states[i]))
            return false;
    if (a->TLB_Shootdown.vaddr != b->TLB_Shootdown.vaddr ||
        a->TLB_Shootdown.open_requests != b->TLB_Shootdown.open_requests ||
        a->TLB_Shootdown.for_protect != b->TLB_Shootdown.for_protect || a->sound != b->sound ||
        a->pt_private != b->pt_private ||
        memcmp(a->pt_free, b->pt_free, sizeof a->pt_free) ||
        memcmp(a->pt_counts, b->pt_counts, sizeof a->pt_counts) || !os_run_equal(&a->run, &b->run) ||
        memcmp(a->pt_pending, b->pt_pending, sizeof a->pt_pending) ||
        memcmp(a->pt_fresh, b->pt_fresh, sizeof a->pt_fresh) || a->TLB_Shootdown.all != b->TLB_Shootdown.all ||
        a->TLB_Shootdown.dirs != b->TLB_Shootdown.dirs ||
        a->TLB_Shootdown.lo != b->TLB_Shootdown.lo || a->TLB_Shootdown.hi != b->TLB_Shootdown.hi)
        return false;
    return hw_vars_equal(&a->hw, &b->hw);
}

/* ---- the page-table frame pool ------------------------------------------------------------ */

bool os_pt_alloc(const struct os_consts *c, uint64_t *pool, uint64_t *frame)
{
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        if (pool[f / 64] & (UINT64_C(1) << (f % 64))) {
            pool[f / 64] &= ~(UINT64_C(1) << (f % 64));
            *frame = (uint64_t)f * HW_PAGE_SIZE;
            return true;
        }
    return false;
}

unsigned os_pt_free_count(const struct os_consts *c, const struct os_vars *s)
{
    unsigned n = 0;
    for (unsigned f = 0; f < c->pt_frames; f++)
        n += (s->pt_free[f / 64] >> (f % 64)) & 1;
    return n;
}

/* ---- interp_pt_mem lookups ----------------------------------------------------------------- */

bool os_pt_get(const struct os_consts *c, const struct os_vars *s, uint64_t vaddr, struct hw_pte *pte)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct hw_walk w;
    if (hw_pt_walk(&v, vaddr, &w) != HW_WALK_PAGE || w.base != vaddr)
        return false;
    *pte = w.pte;
    return true;
}

bool os_interp_pt_mem(const struct os_consts *c, const struct os_vars *s, struct hw_interp *out,
                      char *why, size_t len)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct hw_interp_diag d;
    if (hw_interp_pt_mem(&v, out, &d) != HW_INTERP_OK) {
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
static bool overlaps_pt_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte,
                             struct hw_mem_region vregion)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct pmem_ctx p = { pte->frame, vregion, false };
    if (!pte->frame.size)
        return false;
    hw_pt_visit(&v, pmem_visit, &p, NULL);
    return p.found;
}

static bool overlaps_existing_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte)
{
    struct hw_mem_region all = { 0, 0 };
    return overlaps_pt_pmem(c, s, pte, all);
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

bool os_tlb_entry_in_shootdown(const struct os_shootdown *sd, const struct hw_mapping *e)
{
    struct hw_mem_region a = { sd->lo, sd->hi - sd->lo }, b = { e->base, e->pte.frame.size };
    return sd->all || (a.size && hw_overlap(a, b));
}

bool os_interp_agrees(const struct hw_interp *pt, const struct hw_mapping *e, os_flags_fn in_effect, const void *ctx)
{
    uint64_t end = e->base + e->pte.frame.size;
    for (uint64_t a = e->base; a < end;) {
        const struct hw_mapping *m = hw_interp_find(pt, a);
        if (!m || m->pte.frame.base + (a - m->base) != e->pte.frame.base + (a - e->base))
            return false;
        struct hw_flags f = in_effect ? in_effect(ctx, m) : m->pte.flags;
        if (!hl_flags_le(e->pte.flags, f))
            return false;
        a = m->base + m->pte.frame.size;
    }
    return true;
}

bool os_agrees_with_pt(const struct os_consts *c, const struct os_vars *s, const struct hw_mapping *e)
{
    struct hw_pte p;
    if (os_pt_get(c, s, e->base, &p) && p.frame.base == e->pte.frame.base && p.frame.size == e->pte.frame.size)
        return hl_flags_le(e->pte.flags, p.flags);
    struct hw_interp pt = { 0 };
    if (!os_interp_pt_mem(c, s, &pt, NULL, 0))
        return false;
    bool ok = os_interp_agrees(&pt, e, NULL, NULL);
    hw_interp_fini(&pt);
    return ok;
}

/* x86pt: the OS shoots down exactly what the library's flush report asks for. */
bool os_flush_needed(const struct os_core_state *cs)
{
    return cs->flush.lo < cs->flush.hi || cs->flush.all || cs->flush.dirs_freed;
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
        if (cs->range) {
            /* MapRange: its frames; UnmapRange: the frames of the pages in its region (the
             * recorded ones once it runs), stricter than the HL spec (hlspec.h) */
            struct hw_mem_region fr = { cs->rg.paddr, cs->rg.length }, vr = { cs->rg.lo, cs->rg.hi - cs->rg.lo };
            if (os_core_is_protect(cs->kind) || !cs->rg.length)
                continue;
            if (cs->kind == OS_MAP_WAITING || cs->kind == OS_MAP_EXECUTING) {
                if (hw_overlap(cand->frame, fr))
                    return true;
            } else if (s->run.snap && cs->kind != OS_UNMAP_WAITING) {
                for (unsigned j = 0; j < s->run.snap->n; j++)
                    if (hw_overlap(cand->frame, s->run.snap->map[j].pte.frame))
                        return true;
            } else if (overlaps_pt_pmem(c, s, cand, vr)) {
                return true;
            }
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

void os_step_format(const struct os_consts *c, const struct os_step *st, char *buf, size_t len)
{
    struct hw_core k = os_core_of(c, st->core);
    switch (st->kind) {
    case OS_STEP_HW:
        switch (st->hw.kind) {
        case HW_STEP_READ_WRITE:
            snprintf(buf, len, "thread %u (core %u.%u) HW ReadWrite %s 0x%" PRIx64 "%s -> %s", st->ULT_id,
                     st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.op.kind == HW_RW_STORE ? "store" : (st->hw.op.is_exec ? "exec" : "load"),
                     st->hw.vaddr, st->hw.has_pte ? " via TLB" : " (no TLB entry)",
                     st->rw.kind == HW_RESULT_PAGEFAULT ? "page fault"
                     : st->rw.kind == HW_RESULT_OK      ? "ok"
                                                        : "value");
            break;
        case HW_STEP_TLB_FILL:
            snprintf(buf, len, "core %u.%u HW TLBFill 0x%" PRIx64 " -> frame 0x%" PRIx64, st->hw.core.NUMA_id,
                     st->hw.core.core_id, st->hw.vaddr, st->hw.pte.frame.base);
            break;
        case HW_STEP_TLB_EVICT:
            snprintf(buf, len, "core %u.%u HW TLBEvict 0x%" PRIx64, st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.vaddr);
            break;
        case HW_STEP_ACCESSED_DIRTY:
            snprintf(buf, len, "MMU HW AccessedDirty 0x%" PRIx64 "%s", st->hw.vaddr, st->hw.is_write ? " (write)" : "");
            break;
        case HW_STEP_WALK_INIT: {
            static const char *const acc[] = { "read", "write", "exec" };
            static const char *const lvl[] = { "PML4E", "PDPTE", "PDE" };
            snprintf(buf, len, "core %u.%u HW WalkInit 0x%" PRIx64 " (%s)%s%s", st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.vaddr, acc[st->hw.access % 3], st->hw.use_cache ? " from its cached " : "",
                     st->hw.use_cache ? lvl[st->hw.cache_level % 3] : "");
            break;
        }
        case HW_STEP_WALK_STEP:
        case HW_STEP_WALK_ABORT:
        case HW_STEP_WALK_TLB_FILL:
            snprintf(buf, len, "core %u.%u HW %s of walk %u", st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.kind == HW_STEP_WALK_STEP    ? "WalkStep (one entry read)"
                     : st->hw.kind == HW_STEP_WALK_ABORT ? "WalkAbort"
                                                         : "TLBFill from the completed walk",
                     st->hw.walk_index);
            break;
        case HW_STEP_CACHE_FILL:
            snprintf(buf, len, "core %u.%u HW CacheFill level %u from walk %u", st->hw.core.NUMA_id,
                     st->hw.core.core_id, st->hw.cache_level, st->hw.walk_index);
            break;
        case HW_STEP_CACHE_EVICT:
            snprintf(buf, len, "core %u.%u HW CacheEvict level %u entry %u", st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.cache_level, st->hw.cache_index);
            break;
        default:
            snprintf(buf, len, "HW ?");
        }
        return;
    case OS_STEP_MAP_START:
        snprintf(buf, len, "thread %u MapStart 0x%" PRIx64 " -> frame 0x%" PRIx64 " size 0x%" PRIx64 "%s%s%s",
                 st->ULT_id, st->vaddr, st->pte.frame.base, st->pte.frame.size,
                 st->pte.flags.is_writable ? " W" : "", st->pte.flags.is_supervisor ? " S" : " U",
                 st->pte.flags.disable_execute ? " XD" : "");
        return;
    case OS_STEP_UNMAP_START:
        snprintf(buf, len, "thread %u UnmapStart 0x%" PRIx64, st->ULT_id, st->vaddr);
        return;
    case OS_STEP_FRAME_REUSE:
        snprintf(buf, len, "kernel FrameReuse: free frame 0x%" PRIx64 " filled with 0x%" PRIx64,
                 st->reuse_pa & ~(HW_PAGE_SIZE - 1), st->reuse_value);
        return;
    case OS_STEP_PROTECT_START:
        snprintf(buf, len, "thread %u ProtectStart 0x%" PRIx64 "%s%s%s", st->ULT_id, st->vaddr,
                 st->flags.is_writable ? " W" : "", st->flags.is_supervisor ? " S" : " U",
                 st->flags.disable_execute ? " XD" : "");
        return;
    case OS_STEP_MAP_RANGE_START: {
        static const char *const pol[] = { "largest fit", "only 4K", "only 2M", "only 1G" };
        snprintf(buf, len, "thread %u MapRangeStart [0x%" PRIx64 ", 0x%" PRIx64 ") -> frame 0x%" PRIx64 " (%s)%s%s%s",
                 st->ULT_id, st->vaddr, st->vaddr + st->length, st->paddr, pol[st->policy & 3],
                 st->flags.is_writable ? " W" : "", st->flags.is_supervisor ? " S" : " U",
                 st->flags.disable_execute ? " XD" : "");
        return;
    }
    case OS_STEP_UNMAP_RANGE_START:
    case OS_STEP_PROTECT_RANGE_START:
        snprintf(buf, len, "thread %u %s [0x%" PRIx64 ", 0x%" PRIx64 ")%s%s%s (%s)", st->ULT_id, os_step_name(st->kind),
                 st->vaddr, st->vaddr + st->length,
                 st->kind == OS_STEP_UNMAP_RANGE_START ? "" : st->flags.is_writable ? " W" : " RO",
                 st->kind == OS_STEP_UNMAP_RANGE_START ? "" : st->flags.is_supervisor ? " S" : " U",
                 st->kind == OS_STEP_PROTECT_RANGE_START && st->flags.disable_execute ? " XD" : "",
                 st->split ? "split straddlers" : "straddle fails");
        return;
    default:
        break;
    }
    int n = snprintf(buf, len, "core %u.%u %s", k.NUMA_id, k.core_id, os_step_name(st->kind));
    if (n < 0 || (size_t)n >= len)
        return;
    if (st->nsilent && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ": %u accesses to unlinked directories, then", st->nsilent);
    if (st->accessed && n >= 0 && (size_t)n < len) {
        const char *sep = st->nsilent ? " " : ": ";
        if (st->access == OS_LIB_LOAD)
            n += snprintf(buf + n, len - (size_t)n, "%sload [0x%" PRIx64 "] -> 0x%" PRIx64, sep, st->write_pa,
                          st->write_value);
        else if (st->access == OS_LIB_ZERO)
            n += snprintf(buf + n, len - (size_t)n, "%szero directory 0x%" PRIx64, sep, st->write_pa);
        else if (st->wrote)
            n += snprintf(buf + n, len - (size_t)n, "%s%s [0x%" PRIx64 "] 0x%" PRIx64 " -> 0x%" PRIx64, sep,
                          st->access == OS_LIB_CAS ? "cmpxchg" : "store", st->write_pa, st->write_old, st->write_value);
        else
            n += snprintf(buf + n, len - (size_t)n, "%scmpxchg [0x%" PRIx64 "] fails", sep, st->write_pa);
    }
    if (n >= 0 && (size_t)n < len && st->nfreed)
        n += snprintf(buf + n, len - (size_t)n, ", freed %u director%s", st->nfreed, st->nfreed > 1 ? "ies" : "y");
    if (n >= 0 && (size_t)n < len &&
        (st->kind == OS_STEP_MAP_END || st->kind == OS_STEP_UNMAP_OP_START || st->kind == OS_STEP_PROTECT_OP_START ||
         st->kind == OS_STEP_UNMAP_END || st->kind == OS_STEP_PROTECT_END))
        snprintf(buf + n, len - (size_t)n, " (%s)", st->result_ok ? "Ok" : "Err");
}

static struct os_core_state *cs_of(struct os_vars *s, unsigned core) { return &s->core_states[core]; }

static bool ult_ok(const struct os_consts *c, const struct os_vars *s1, unsigned ult, char *why, size_t len)
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

/* MapStart / UnmapStart / ProtectStart: Idle -> Waiting; soundness as os.rs says. */
static enum os_step_status step_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                      struct os_vars *s2, char *why, size_t len)
{
    if (!ult_ok(c, s1, st->ULT_id, why, len))
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
        sound = !overlaps_existing_pmem(c, s1, &st->pte) && !os_overlaps_inflight_pmem(c, s1, &st->pte) &&
                !os_overlaps_inflight_vmem(c, s1, st->vaddr, st->pte.frame.size);
    } else {
        struct hw_pte p;
        if (!hl_step_Unmap_enabled(st->vaddr))
            return model_refuse(why, len, "not step_Unmap_enabled"), OS_STEP_DISABLED;
        ns.kind = st->kind == OS_STEP_UNMAP_START ? OS_UNMAP_WAITING : OS_PROTECT_WAITING;
        ns.flags = st->flags;
        sound = !os_overlaps_inflight_vmem(c, s1, st->vaddr, os_pt_get(c, s1, st->vaddr, &p) ? p.frame.size : 0);
    }
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->core_states[core] = ns;
    s2->sound = s1->sound && sound;
    return OS_STEP_OK;
}

/* Range extension (hlspec.h): MapRangeStart / UnmapRangeStart / ProtectRangeStart: Idle ->
 * the Waiting state of the operation, with its region and the contract's result fixed now
 * (hl_range_region over interp_pt_mem, the same definition the HL spec uses). */
static enum os_step_status step_range_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                            struct os_vars *s2, char *why, size_t len)
{
    static const enum hl_args_kind kinds[] = { HL_ARGS_MAP_RANGE, HL_ARGS_UNMAP_RANGE, HL_ARGS_PROTECT_RANGE };
    static const enum os_core_kind waiting[] = { OS_MAP_WAITING, OS_UNMAP_WAITING, OS_PROTECT_WAITING };
    unsigned op = (unsigned)(st->kind - OS_STEP_MAP_RANGE_START);
    if (!ult_ok(c, s1, st->ULT_id, why, len))
        return OS_STEP_DISABLED;
    struct hl_consts hc = { c->ULT_no, c->hw.phys_mem_size, c->hw.maxphyaddr };
    if (!hl_step_Range_enabled(&hc, kinds[op], st->vaddr, st->length, st->paddr, st->policy))
        return model_refuse(why, len, "not step_%s_enabled", os_step_name(st->kind)), OS_STEP_DISABLED;
    unsigned core = os_core_index(c, c->ULT2core[st->ULT_id]);
    struct os_core_state ns = { .kind = waiting[op], .ULT_id = st->ULT_id, .vaddr = st->vaddr, .range = true };
    ns.rg.length = st->length;
    if (op == 0)
        ns.rg.paddr = st->paddr, ns.rg.policy = st->policy;
    else
        ns.rg.split = st->split;
    if (op != 1)
        ns.flags = st->flags;
    struct hw_interp pt = { 0 };
    if (!os_interp_pt_mem(c, s1, &pt, why, len))
        return OS_STEP_DISABLED; /* malformed: the checker reports it elsewhere */
    hl_range_region(pt.map, pt.len, kinds[op], st->vaddr, st->length, ns.rg.split, &ns.rg.lo, &ns.rg.hi,
                    &ns.rg.will_ok);
    hw_interp_fini(&pt);
    bool sound = !os_overlaps_inflight_vmem(c, s1, ns.rg.lo, ns.rg.hi - ns.rg.lo);
    if (op == 0 && st->length) {
        struct hw_pte fr = { { st->paddr, st->length }, st->flags };
        sound = sound && !overlaps_existing_pmem(c, s1, &fr) && !os_overlaps_inflight_pmem(c, s1, &fr);
    }
    st->core = core;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->core_states[core] = ns;
    s2->sound = s1->sound && sound;
    return OS_STEP_OK;
}

/* Directories a range operation may need: map_range one per slot of each directory layer
 * that the range meets; a split at most three per end. The OS waits (the step is disabled)
 * while the pool holds fewer, and the implementation may then say NOMEM. */
static unsigned range_dirs_bound(const struct os_core_state *cs)
{
    if (!cs->rg.length)
        return 0;
    if (!(cs->kind == OS_MAP_WAITING))
        return cs->rg.split ? 6 : 0;
    uint64_t first = cs->vaddr, last = cs->vaddr + cs->rg.length - 1, n = 0;
    for (unsigned sh = 39; sh >= 21; sh -= 9)
        n += (last >> sh) - (first >> sh) + 1;
    return n > OS_PT_FRAMES_MAX ? OS_PT_FRAMES_MAX + 1 : (unsigned)n;
}

/* The snapshot of a range operation: the mappings meeting its region [lo, hi). */
static bool range_snapshot(const struct os_consts *c, const struct os_vars *s, const struct os_core_state *cs,
                           struct hw_mapping **old, unsigned *nold, char *why, size_t len)
{
    struct hw_interp pt = { 0 };
    *old = NULL;
    *nold = 0;
    if (!os_interp_pt_mem(c, s, &pt, why, len))
        return false;
    struct hw_mem_region r = { cs->rg.lo, cs->rg.hi - cs->rg.lo };
    *old = malloc((pt.len ? pt.len : 1) * sizeof **old);
    if (!*old) {
        hw_interp_fini(&pt);
        return false;
    }
    for (size_t i = 0; i < pt.len; i++) {
        struct hw_mem_region m = { pt.map[i].base, pt.map[i].pte.frame.size };
        if (r.size && hw_overlap(r, m))
            (*old)[(*nold)++] = pt.map[i];
    }
    hw_interp_fini(&pt);
    return true;
}

/* Range extension: Map/Unmap/ProtectOpStart of a range operation: takes the lock when the pool
 * holds the directories it may need, records the snapshot; the library has not run yet. */
static enum os_step_status step_range_op_start(const struct os_consts *c, const struct os_vars *s1,
                                               struct os_step *st, struct os_vars *s2, unsigned op, char *why,
                                               size_t len)
{
    static const enum os_core_kind executing[] = { OS_MAP_EXECUTING, OS_UNMAP_OP_EXECUTING, OS_PROTECT_OP_EXECUTING };
    const struct os_core_state *cs = &s1->core_states[st->core];
    unsigned bound = range_dirs_bound(cs);
    if (os_pt_free_count(c, s1) < bound)
        return model_refuse(why, len, "the pool holds fewer than the %u directories the operation may need", bound),
               OS_STEP_DISABLED;
    struct hw_mapping *old;
    unsigned nold;
    if (!range_snapshot(c, s1, cs, &old, &nold, why, len))
        return OS_STEP_NOMEM;
    if (!os_vars_copy(s2, s1)) {
        free(old);
        return OS_STEP_NOMEM;
    }
    if (!os_run_start(&s2->run, old, nold)) {
        os_vars_fini(s2);
        return OS_STEP_NOMEM;
    }
    struct os_core_state *ns = cs_of(s2, st->core);
    ns->kind = executing[op];
    ns->result_ok = st->result_ok = cs->rg.will_ok;
    if (op == OS_PT_PROTECT && cs->rg.length)
        for (unsigned i = 0; i < nold; i++) {
            struct hw_mem_region m = { old[i].base, old[i].pte.frame.size }, rr = { cs->vaddr, cs->rg.length };
            if (hw_overlap(m, rr) && !hl_flags_le(old[i].pte.flags, cs->flags))
                ns->rg.shrinks = true;
        }
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
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (cs->range)
        return step_range_op_start(c, s1, st, s2, op, why, len);
    struct hw_pte old;
    bool had = op != OS_PT_MAP && os_pt_get(c, s1, cs->vaddr, &old);
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    if (!os_run_start(&s2->run, NULL, 0)) {
        os_vars_fini(s2);
        return OS_STEP_NOMEM;
    }
    struct os_core_state *ns = cs_of(s2, st->core);
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
    if (res->nomem)
        return model_refuse(why, len, "the library ran out of directories although the pool held what it may need"),
               OS_STEP_VIOLATION;
    if (!res->ok && ns->stored)
        return model_refuse(why, len, "the library failed but changed the table"), OS_STEP_VIOLATION;
    st->result_ok = res->ok;
    st->range = cs->range;
    bool map = cs->kind == OS_MAP_EXECUTING;
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
    if (res->ok && !ns->stored)
        return model_refuse(why, len, "the library returns Ok but made no store"), OS_STEP_VIOLATION;
    if (os_core_is_unmap(cs->kind) && res->ok && res->has_reported && !hw_pte_equal(&res->reported, &cs->result))
        return model_refuse(why, len, "unmap reports a mapping that is not the one at 0x%" PRIx64, cs->vaddr),
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
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    struct os_lib_result res;
    enum os_step_status r =
        os_lib_advance(c, s2, st, st->core, cs->range ? OS_LIB_UNTIL_RETURN : OS_LIB_UNTIL_MAP_END, &res, why, len);
    if (r == OS_STEP_DISABLED)
        os_vars_fini(s2);
    if (r != OS_STEP_OK)
        return r;
    if ((r = check_result(s1, st, cs, cs_of(s2, st->core), &res, why, len)) != OS_STEP_OK)
        return r;
    os_run_drop(&s2->run);
    memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
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
    if ((r = check_result(s1, st, cs, cs_of(s2, st->core), &res, why, len)) != OS_STEP_OK)
        return r;
    cs_of(s2, st->core)->kind = from + 1; /* *OpDone */
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
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    cs_of(s2, st->core)->kind = from + 1; /* *ShootdownWaiting */
    s2->TLB_Shootdown.vaddr = cs->vaddr;
    s2->TLB_Shootdown.open_requests = (uint32_t)((UINT64_C(1) << os_ncores(c)) - 1);
    s2->TLB_Shootdown.for_protect = prot;
    s2->TLB_Shootdown.all = cs->flush.all;
    s2->TLB_Shootdown.dirs = cs->flush.dirs_freed > 0;
    s2->TLB_Shootdown.lo = cs->flush.lo;
    s2->TLB_Shootdown.hi = cs->flush.hi;
    return OS_STEP_OK;
}

/* The most pages a shootdown invalidates one by one; above, the core reloads CR3 (the ceiling
 * Linux uses, and the library's flush_all threshold, x86pt.h). */
#define OS_INVLPG_MAX_PAGES 33u

/* os.rs: step_Ack_Shootdown_IPI, as the kernel's IPI handler does it: invlpg every 4 KiB page
 * of the reported range (SDM vol. 3A 4.10.4.1: the TLB entries of the page containing the
 * address, and the paging-structure-cache entries that would translate it), or reload CR3 when
 * the report says flush_all, freed directories, or spans more than OS_INVLPG_MAX_PAGES pages;
 * then acknowledge. os.rs instead waits for TLBEvict steps to have removed vaddr; x86pt
 * removes exactly what was asked, so that a stale entry outside the report survives and the
 * invariants see it. */
static enum os_step_status step_ack(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || !(s1->TLB_Shootdown.open_requests >> st->core & 1))
        return model_refuse(why, len, "no open request for this core"), OS_STEP_DISABLED;
    const struct os_shootdown *sd = &s1->TLB_Shootdown;
    struct hw_core k = os_core_of(c, st->core);
    uint64_t pages = (sd->hi - sd->lo) / HW_PAGE_SIZE;
    struct hw_vars hw;
    enum hw_step_status r;
    if (!hw_vars_copy(&hw, &s1->hw))
        return OS_STEP_NOMEM;
    if (sd->all || sd->dirs || pages > OS_INVLPG_MAX_PAGES) {
        struct hw_vars n;
        if ((r = hw_step_FlushAll(&c->hw, &hw, k, &n)) == HW_STEP_OK)
            hw_vars_fini(&hw), hw = n;
    } else {
        r = HW_STEP_OK;
        for (uint64_t va = sd->lo; va < sd->hi && r == HW_STEP_OK; va += HW_PAGE_SIZE) {
            struct hw_vars n;
            if ((r = hw_step_Invlpg(&c->hw, &hw, k, va, &n)) == HW_STEP_OK)
                hw_vars_fini(&hw), hw = n;
        }
    }
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

/* x86pt: the rest of the kernel. A frame in the page-table pool belongs to the page allocator,
 * which may hand it to anyone, who may write anything into it: a directory freed to the pool
 * while some core may still walk into it (a cached entry, a walk in flight) shows. */
static enum os_step_status step_frame_reuse(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                            struct os_vars *s2, char *why, size_t len)
{
    uint64_t f = st->reuse_pa / HW_PAGE_SIZE;
    if (st->reuse_pa % 8 || f >= c->pt_frames || !os_bit(s1->pt_free, f))
        return model_refuse(why, len, "0x%" PRIx64 " is not in a free pool frame", st->reuse_pa), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE) /* a page of the same word */
        if (!hw_pmem_write(&s2->hw.global_pt.mem, (st->reuse_pa & ~(HW_PAGE_SIZE - 1)) + off, st->reuse_value)) {
            os_vars_fini(s2);
            return OS_STEP_NOMEM;
        }
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
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    os_run_drop(&s2->run);
    os_release_pending(s2);
    if (waited)
        memset(&s2->TLB_Shootdown, 0, sizeof s2->TLB_Shootdown);
    memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

enum os_step_status os_next_step(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                 struct os_vars *s2, struct os_delta *delta, char *why, size_t len)
{
    enum os_step_status r;
    delta->n = 0;
    st->wrote = false;
    st->accessed = false;
    st->range = false;
    st->nsilent = 0;
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
    case OS_STEP_PROTECT_RANGE_START:
        return step_range_start(c, s1, st, s2, why, len);
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
    case OS_STEP_FRAME_REUSE:
        return step_frame_reuse(c, s1, st, s2, why, len);
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
