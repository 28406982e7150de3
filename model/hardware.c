/*
 * The hardware state machine: hardware.rs HWConstants, HWVariables, init, step_ReadWrite,
 * step_PTMemOp, step_TLBFill, step_TLBEvict, next_step. Each step is a function of the old
 * state: it checks the step's enabling condition first (nothing is built when it fails), then
 * builds the new state as a copy (O(frames) pointer copies) and changes what the step changes.
 */
#include "hw_codec.h"

#include <stdlib.h>
#include <string.h>

bool hw_valid_core(const struct hw_consts *c, struct hw_core core)
{
    /* valid_core: valid_NUMA_id && valid_core_id */
    return core.NUMA_id < c->NUMA_no && core.core_id < c->core_no;
}

struct hw_tlb *hw_core_tlb(const struct hw_consts *c, struct hw_vars *s, struct hw_core core)
{
    return &s->tlbs[core.NUMA_id * c->core_no + core.core_id];
}

const struct hw_tlb *hw_core_tlb_const(const struct hw_consts *c, const struct hw_vars *s,
                                       struct hw_core core)
{
    return &s->tlbs[core.NUMA_id * c->core_no + core.core_id];
}

struct hw_pt_view hw_vars_pt_view(const struct hw_consts *c, const struct hw_vars *s)
{
    struct hw_pt_view v = { hw_pmem_view(&s->global_pt.mem), s->global_pt.cr3, c->maxphyaddr };
    return v;
}

static bool mmu_consts_valid(const struct hw_consts *c)
{
    /* A PS cache is filled from walks and used by them: it needs walks. */
    return c->mmu_walks <= HW_MMU_MAX_WALKS && c->mmu_pscache <= HW_PSCACHE_MAX &&
           c->mmu_sbuf <= HW_SBUF_MAX && (!c->mmu_pscache || c->mmu_walks);
}

static bool mmu_enabled(const struct hw_consts *c)
{
    return c->mmu_walks || c->mmu_pscache || c->mmu_sbuf;
}

/* hardware.rs: init (and NUMA_init): every core of every node has an empty TLB; rl3.rs init:
 * no walks, empty caches and store buffers. */
bool hw_init(const struct hw_consts *c, struct hw_vars *s, const struct hw_pmem *pt_mem,
             uint64_t cr3)
{
    memset(s, 0, sizeof *s);
    if (!c->NUMA_no || !c->core_no || c->phys_mem_size % HW_WORD_SIZE ||
        c->maxphyaddr < HW_MAXPHYADDR_WIDTH_MIN || c->maxphyaddr > HW_MAXPHYADDR_WIDTH_MAX ||
        !mmu_consts_valid(c))
        return false;
    s->ntlbs = c->NUMA_no * c->core_no;
    s->tlbs = calloc(s->ntlbs, sizeof *s->tlbs);
    s->global_pt.cr3 = cr3;
    if (mmu_enabled(c) && !(s->mmu = calloc(s->ntlbs, sizeof *s->mmu))) {
        hw_vars_fini(s);
        return false;
    }
    if (!s->tlbs || !hw_pmem_init(&s->mem, c->phys_mem_size) ||
        !hw_pmem_copy(&s->global_pt.mem, pt_mem)) {
        hw_vars_fini(s);
        return false;
    }
    return true;
}

void hw_vars_fini(struct hw_vars *s)
{
    hw_pmem_fini(&s->mem);
    hw_pmem_fini(&s->global_pt.mem);
    if (s->tlbs)
        for (unsigned i = 0; i < s->ntlbs; i++)
            hw_tlb_fini(&s->tlbs[i]);
    free(s->tlbs);
    free(s->mmu);
    memset(s, 0, sizeof *s);
}

bool hw_vars_copy(struct hw_vars *dst, const struct hw_vars *src)
{
    memset(dst, 0, sizeof *dst);
    dst->ntlbs = src->ntlbs;
    dst->global_pt.cr3 = src->global_pt.cr3;
    dst->tlbs = calloc(src->ntlbs ? src->ntlbs : 1, sizeof *dst->tlbs);
    bool ok = dst->tlbs && hw_pmem_copy(&dst->mem, &src->mem) &&
              hw_pmem_copy(&dst->global_pt.mem, &src->global_pt.mem);
    for (unsigned i = 0; ok && i < src->ntlbs; i++)
        ok = hw_tlb_copy(&dst->tlbs[i], &src->tlbs[i]);
    if (ok && src->mmu) {
        /* Fixed-size per-core arrays: one flat copy. */
        dst->mmu = malloc(src->ntlbs * sizeof *dst->mmu);
        ok = dst->mmu != NULL;
        if (ok)
            memcpy(dst->mmu, src->mmu, src->ntlbs * sizeof *dst->mmu);
    }
    if (!ok)
        hw_vars_fini(dst);
    return ok;
}

uint64_t hw_vars_hash(const struct hw_vars *s)
{
    return hw_vars_hash_perm(s, NULL);
}

uint64_t hw_vars_hash_perm(const struct hw_vars *s, const unsigned *perm)
{
    uint64_t h = hw_pmem_hash(&s->mem) * 31 + hw_pmem_hash(&s->global_pt.mem);
    h = h * 31 + s->global_pt.cr3;
    for (unsigned i = 0; i < s->ntlbs; i++)
        h = h * UINT64_C(0x100000001b3) + hw_tlb_hash(&s->tlbs[perm ? perm[i] : i]);
    /* Only cores with something in flight count, so a state without any hashes as it did
     * before the rl3 state existed (and a NULL mmu hashes like an all-empty one). */
    for (unsigned i = 0; s->mmu && i < s->ntlbs; i++)
        if (!hw_mmu_core_is_empty(&s->mmu[perm ? perm[i] : i]))
            h = h * UINT64_C(0x100000001b3) + (hw_mmu_core_hash(&s->mmu[perm ? perm[i] : i]) ^ i);
    return h;
}

/* The rl3 state of core i: a NULL mmu stands for all-empty cores. */
static const struct hw_mmu_core *mmu_at(const struct hw_vars *s, unsigned i)
{
    static const struct hw_mmu_core empty;
    return s->mmu ? &s->mmu[i] : &empty;
}

bool hw_vars_equal(const struct hw_vars *a, const struct hw_vars *b)
{
    if (a->ntlbs != b->ntlbs || a->global_pt.cr3 != b->global_pt.cr3 ||
        !hw_pmem_equal(&a->mem, &b->mem) || !hw_pmem_equal(&a->global_pt.mem, &b->global_pt.mem))
        return false;
    for (unsigned i = 0; i < a->ntlbs; i++)
        if (!hw_tlb_equal(&a->tlbs[i], &b->tlbs[i]))
            return false;
    for (unsigned i = 0; (a->mmu || b->mmu) && i < a->ntlbs; i++)
        if (!hw_mmu_core_equal(mmu_at(a, i), mmu_at(b, i)))
            return false;
    return true;
}

/* step_ReadWrite with pte = Some((base, pte)): the access goes through a cached translation. */
static enum hw_step_status read_write_cached(const struct hw_consts *c, const struct hw_vars *s1,
                                             struct hw_core core, uint64_t vaddr,
                                             struct hw_rw_op op, const struct hw_mapping *e,
                                             struct hw_vars *s2, struct hw_rw_result *result)
{
    const struct hw_pte *cached = hw_tlb_get(hw_core_tlb_const(c, s1, core), e->base);
    if (!cached || !hw_pte_equal(cached, &e->pte))
        return HW_STEP_E_NOT_IN_TLB;
    if (!hw_between(vaddr, e->base, e->base + e->pte.frame.size))
        return HW_STEP_E_NOT_COVERED;
    uint64_t paddr = e->pte.frame.base + (vaddr - e->base);
    /* pmem_idx < s1.mem.len(): the word lies in physical memory. */
    bool in_mem = paddr / HW_WORD_SIZE < c->phys_mem_size / HW_WORD_SIZE;
    bool user_ok = !e->pte.flags.is_supervisor;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    result->paddr = paddr;
    result->value = 0;
    if (op.kind == HW_RW_STORE) {
        if (in_mem && user_ok && e->pte.flags.is_writable) {
            if (!hw_pmem_write(&s2->mem, paddr, op.new_value)) {
                hw_vars_fini(s2);
                return HW_STEP_E_NOMEM;
            }
            result->kind = HW_RESULT_OK;
        } else {
            result->kind = HW_RESULT_PAGEFAULT;
        }
    } else if (in_mem && user_ok && (!op.is_exec || !e->pte.flags.disable_execute)) {
        result->kind = HW_RESULT_VALUE;
        result->value = hw_pmem_read(&s1->mem, paddr);
    } else {
        result->kind = HW_RESULT_PAGEFAULT;
    }
    return HW_STEP_OK;
}

/* hardware.rs: step_ReadWrite */
enum hw_step_status hw_step_ReadWrite(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, uint64_t vaddr, struct hw_rw_op op,
                                      const struct hw_mapping *tlb_entry, struct hw_vars *s2,
                                      struct hw_rw_result *result)
{
    if (!hw_aligned(vaddr, 8))
        return HW_STEP_E_MISALIGNED;
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (tlb_entry)
        return read_write_cached(c, s1, core, vaddr, op, tlb_entry, s2, result);
    /* None: no mapping of interp_pt_mem(global_pt) contains vaddr. The walk of vaddr reaches
     * a page exactly when such a mapping exists (see hw_interp.c). */
    struct hw_pt_view pt = hw_vars_pt_view(c, s1);
    struct hw_walk w;
    enum hw_walk_status ws = hw_pt_walk(&pt, vaddr, &w);
    if (ws == HW_WALK_PAGE)
        return HW_STEP_E_MAPPED;
    if (ws == HW_WALK_OUTSIDE)
        return HW_STEP_E_OUTSIDE;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    result->kind = HW_RESULT_PAGEFAULT;
    result->value = 0;
    result->paddr = 0;
    return HW_STEP_OK;
}

/* hardware.rs: step_PTMemOp. The spec lets the page table change arbitrarily (mem and TLBs
 * stay); x86pt's OS writes it one word at a time, so the step is one word store. */
enum hw_step_status hw_step_PTMemOp(const struct hw_consts *c, const struct hw_vars *s1,
                                    uint64_t pa, uint64_t value, struct hw_vars *s2)
{
    (void)c;
    if (!hw_aligned(pa, HW_WORD_SIZE))
        return HW_STEP_E_MISALIGNED;
    if (pa >= hw_pmem_bytes(&s1->global_pt.mem))
        return HW_STEP_E_OUTSIDE;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    if (!hw_pmem_write(&s2->global_pt.mem, pa, value)) {
        hw_vars_fini(s2);
        return HW_STEP_E_NOMEM;
    }
    return HW_STEP_OK;
}

/* hardware.rs: step_TLBFill. interp_pt_mem(global_pt).contains_pair(vaddr, pte) is
 * vaddr < MAX_BASE && valid_pt_walk(global_pt, vaddr, pte): one walk, no interpretation. */
enum hw_step_status hw_step_TLBFill(const struct hw_consts *c, const struct hw_vars *s1,
                                    struct hw_core core, uint64_t vaddr, const struct hw_pte *pte,
                                    struct hw_vars *s2)
{
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    struct hw_pt_view pt = hw_vars_pt_view(c, s1);
    if (vaddr >= HW_MAX_BASE || !hw_valid_pt_walk(&pt, vaddr, pte))
        return HW_STEP_E_NOT_MAPPED;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    if (!hw_tlb_insert(hw_core_tlb(c, s2, core), vaddr, pte)) {
        hw_vars_fini(s2);
        return HW_STEP_E_NOMEM;
    }
    return HW_STEP_OK;
}

/* hardware.rs: step_TLBEvict (also what invlpg of vaddr's page does to one entry). */
enum hw_step_status hw_step_TLBEvict(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, uint64_t vaddr, struct hw_vars *s2)
{
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (!hw_tlb_get(hw_core_tlb_const(c, s1, core), vaddr))
        return HW_STEP_E_NOT_IN_TLB;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    hw_tlb_remove(hw_core_tlb(c, s2, core), vaddr);
    return HW_STEP_OK;
}

/* The old word of a locked op (taken: st == HW_STEP_OK) as the step's result. */
static enum hw_step_status value_result(enum hw_step_status st, const uint64_t *old,
                                        struct hw_rw_result *result)
{
    if (st == HW_STEP_OK) {
        result->kind = HW_RESULT_VALUE;
        result->value = *old;
        result->paddr = 0;
    }
    return st;
}

/* rl3.rs next_step for the rl3 steps (model/hw_mmu_*.c). */
static enum hw_step_status next_mmu_step(const struct hw_consts *c, const struct hw_vars *s1,
                                         const struct hw_step *st, struct hw_vars *s2,
                                         struct hw_rw_result *result)
{
    struct hw_pscache_ref ref = { st->cache_level, st->cache_index };
    uint64_t old = 0;
    switch (st->kind) {
    case HW_STEP_WALK_INIT:
        return hw_step_WalkInit(c, s1, st->core, st->vaddr, st->access,
                                st->use_cache ? &ref : NULL, s2);
    case HW_STEP_WALK_STEP: return hw_step_WalkStep(c, s1, st->core, st->walk_index, s2);
    case HW_STEP_WALK_ABORT: return hw_step_WalkAbort(c, s1, st->core, st->walk_index, s2);
    case HW_STEP_WALK_TLB_FILL: return hw_step_WalkTLBFill(c, s1, st->core, st->walk_index, s2);
    case HW_STEP_CACHE_FILL:
        return hw_step_CacheFill(c, s1, st->core, st->walk_index, st->cache_level, s2);
    case HW_STEP_CACHE_EVICT: return hw_step_CacheEvict(c, s1, st->core, ref, s2);
    case HW_STEP_INVLPG: return hw_step_Invlpg(c, s1, st->core, st->vaddr, s2);
    case HW_STEP_FLUSH_ALL: return hw_step_FlushAll(c, s1, st->core, s2);
    case HW_STEP_FLUSH_GLOBAL: return hw_step_FlushGlobal(c, s1, st->core, s2);
    case HW_STEP_PT_STORE:
        return hw_step_PTStore(c, s1, st->core, st->pt_write_pa, st->pt_write_value, s2);
    case HW_STEP_PT_CAS:
        /* &old, not old: value_result must read it after the step has stored it. */
        return value_result(hw_step_PTCas(c, s1, st->core, st->pt_write_pa, st->pt_expected,
                                          st->pt_write_value, s2, &old), &old, result);
    case HW_STEP_PT_XCHG:
        return value_result(hw_step_PTXchg(c, s1, st->core, st->pt_write_pa,
                                           st->pt_write_value, s2, &old), &old, result);
    case HW_STEP_WRITEBACK: return hw_step_Writeback(c, s1, st->core, s2);
    case HW_STEP_FENCE: return hw_step_Fence(c, s1, st->core, s2);
    default: return HW_STEP_E_KIND;
    }
}

/* hardware.rs: next_step */
enum hw_step_status hw_next_step(const struct hw_consts *c, const struct hw_vars *s1,
                                 const struct hw_step *step, struct hw_vars *s2,
                                 struct hw_rw_result *result)
{
    struct hw_rw_result scratch;
    switch (step->kind) {
    case HW_STEP_READ_WRITE:
        return hw_step_ReadWrite(c, s1, step->core, step->vaddr, step->op,
                                 step->has_pte ? &step->tlb_entry : NULL, s2,
                                 result ? result : &scratch);
    case HW_STEP_PT_MEM_OP:
        return hw_step_PTMemOp(c, s1, step->pt_write_pa, step->pt_write_value, s2);
    case HW_STEP_TLB_FILL:
        return hw_step_TLBFill(c, s1, step->core, step->vaddr, &step->pte, s2);
    case HW_STEP_TLB_EVICT:
        return hw_step_TLBEvict(c, s1, step->core, step->vaddr, s2);
    case HW_STEP_ACCESSED_DIRTY:
        return hw_step_AccessedDirty(c, s1, step->vaddr, step->is_write, s2);
    default:
        return next_mmu_step(c, s1, step, s2, result ? result : &scratch);
    }
}

const char *hw_step_status_str(enum hw_step_status st)
{
    switch (st) {
    case HW_STEP_OK: return "ok";
    case HW_STEP_E_CORE: return "not a valid core";
    case HW_STEP_E_MISALIGNED: return "address not 8-byte aligned";
    case HW_STEP_E_NOT_IN_TLB: return "pair not in the core's TLB";
    case HW_STEP_E_NOT_COVERED: return "vaddr not inside the TLB entry's range";
    case HW_STEP_E_MAPPED: return "a mapping contains vaddr (None not allowed)";
    case HW_STEP_E_NOT_MAPPED: return "(vaddr, pte) not in interp_pt_mem";
    case HW_STEP_E_OUTSIDE: return "address outside physical memory";
    case HW_STEP_E_NOMEM: return "out of host memory";
    case HW_STEP_E_KIND: return "unknown step kind";
    case HW_STEP_E_DISABLED: return "this hardware feature is off (hw_consts mmu_*)";
    case HW_STEP_E_VADDR: return "vaddr not 8-byte aligned or beyond MAX_BASE";
    case HW_STEP_E_FULL: return "the core's walks, cache level or store buffer is full";
    case HW_STEP_E_NO_WALK: return "no in-flight walk at that index";
    case HW_STEP_E_WALK_STATE: return "the walk is not in the state this step needs";
    case HW_STEP_E_NO_CACHE_ENTRY: return "no matching paging-structure-cache entry";
    case HW_STEP_E_SBUF_NOT_EMPTY: return "the core's store buffer is not empty";
    case HW_STEP_E_SBUF_EMPTY: return "the core's store buffer is empty";
    }
    return "unknown step status";
}
