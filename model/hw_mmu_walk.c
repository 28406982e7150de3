/*
 * Non-atomic page walks: mmu-verimm/rl3.rs Walk, step_WalkInit, step_CacheUse, step_WalkStep,
 * step_WalkAbort, step_TLBFill; SDM vol. 3A 4.5 (the walk), 4.8 (Accessed/Dirty), 4.10.3.2
 * (using the paging-structure caches).
 *
 * A walk reads one entry per step, from the memory of that moment (through the walking core's
 * own store buffer, rl3 read_from_mem_tso), so entries read before and after concurrent
 * writes combine: the filled translation may be one that no single memory state ever held.
 *
 * Deliberately more hostile than rl3:
 *   - rl3 reads the leaf and fills the TLB in one step (TLBFill takes walk_next); here a walk
 *     first completes (WalkStep reads the leaf) and fills the TLB in a later step, so the leaf
 *     it fills may be arbitrarily old;
 *   - rl3's CacheUse re-inserts a cached walk of the same vaddr; here a cached entry serves any
 *     address whose bits match its key (SDM 4.10.3.2), like real hardware;
 *   - rl3 models A/D only as arbitrary flips of bits 5/6 in the values read; here they are
 *     real locked writes to memory at the moments the SDM allows (see walk_set_accessed and
 *     walk_set_dirty), which the OS's own read-modify-writes must survive.
 */
#include "hw_codec.h"

/* The entry a walk reads next: its physical address. */
static uint64_t walk_entry_pa(const struct hw_mmu_walk *w)
{
    return hw_mmu_walk_entry_pa(w, w->next);
}

uint64_t hw_mmu_walk_entry_pa(const struct hw_mmu_walk *w, unsigned layer)
{
    return w->table[layer] + (uint64_t)hw_codec_index(w->vaddr, layer) * HW_WORD_SIZE;
}

/* valid_pt_walk's combination of rights, one entry further. */
static uint8_t combine_rights(uint8_t rights, uint64_t entry)
{
    if (!(entry & HW_BIT_RW))
        rights &= (uint8_t)~HW_RIGHT_W;
    if (!(entry & HW_BIT_US))
        rights &= (uint8_t)~HW_RIGHT_U;
    if (entry & HW_BIT_XD)
        rights |= HW_RIGHT_XD;
    return rights;
}

/* rl3.rs walk_next for a present, valid entry: record it and descend or complete. */
static void walk_advance(struct hw_mmu_walk *w, uint64_t entry, unsigned maxphyaddr)
{
    unsigned layer = w->next;
    bool page = hw_codec_is_page(entry, layer);
    /* A and D as read are dropped: nothing uses them (the result takes frame and rights), and
     * two walks that differ only in having read an entry before or after the MMU set its A bit
     * are one state (the exhaustive mode's lazy walks rely on reads commuting with A/D sets) */
    w->entry[layer] = entry & ~(HW_BIT_A | HW_BIT_D);
    w->rights[layer + 1] = combine_rights(w->rights[layer], entry);
    w->next = (uint8_t)(layer + 1);
    if (page)
        w->complete = true;
    else
        w->table[layer + 1] = hw_codec_addr(entry, layer, false, maxphyaddr);
}

/* The core's in-flight walk at index, after the common checks of WalkStep, WalkAbort,
 * TLBFill and CacheFill. */
static enum hw_step_status walk_at(const struct hw_consts *c, const struct hw_vars *s1,
                                   struct hw_core core, unsigned index,
                                   const struct hw_mmu_walk **w)
{
    if (!c->mmu_walks || !s1->mmu)  /* a state built without walks has no room for them */
        return HW_STEP_E_DISABLED;
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    const struct hw_mmu_core *m = hw_core_mmu_const(c, s1, core);
    if (index >= m->nwalks)
        return HW_STEP_E_NO_WALK;
    *w = &m->walks[index];
    return HW_STEP_OK;
}

/* rl3.rs step_CacheUse: the walk starts after the cached entry (SDM 4.10.3.2: "If the
 * processor has a PDE-cache entry for a linear address, it may use that entry ..."). */
static enum hw_step_status walk_from_cache(const struct hw_consts *c, const struct hw_vars *s1,
                                           struct hw_core core,
                                           const struct hw_pscache_ref *ref,
                                           struct hw_mmu_walk *w)
{
    if (!c->mmu_pscache || !s1->mmu)
        return HW_STEP_E_DISABLED;
    const struct hw_mmu_core *m = hw_core_mmu_const(c, s1, core);
    if (ref->level >= HW_PSCACHE_LEVELS || ref->index >= m->npscache[ref->level])
        return HW_STEP_E_NO_CACHE_ENTRY;
    const struct hw_pscache_entry *e = &m->pscache[ref->level][ref->index];
    if (e->key != hw_pscache_key(w->vaddr, ref->level))
        return HW_STEP_E_NO_CACHE_ENTRY;
    w->from = w->next = (uint8_t)(ref->level + 1);
    w->table[w->from] = e->table;
    w->rights[w->from] = e->rights;
    return HW_STEP_OK;
}

/* rl3.rs: step_WalkInit (cache == NULL) and step_CacheUse. rl3 asks vaddr to be 8-byte
 * aligned and below MAX_BASE, and nothing else: walks are speculative, for any address and
 * access, at any time. */
enum hw_step_status hw_step_WalkInit(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, uint64_t vaddr, enum hw_access access,
                                     const struct hw_pscache_ref *cache, struct hw_vars *s2)
{
    if (!c->mmu_walks || !s1->mmu)  /* a state built without walks has no room for them */
        return HW_STEP_E_DISABLED;
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (!hw_aligned(vaddr, HW_WORD_SIZE) || vaddr >= HW_MAX_BASE || access > HW_ACCESS_EXEC)
        return HW_STEP_E_VADDR;
    struct hw_mmu_walk w = { .vaddr = vaddr, .access = (uint8_t)access };
    w.table[0] = s1->global_pt.cr3;
    w.rights[0] = HW_RIGHTS_TOP;
    enum hw_step_status st = cache ? walk_from_cache(c, s1, core, cache, &w) : HW_STEP_OK;
    if (st != HW_STEP_OK)
        return st;
    struct hw_mmu_core m = *hw_core_mmu_const(c, s1, core);
    if (!hw_mmu_walk_insert(&m, &w, c->mmu_walks))
        return HW_STEP_E_FULL;
    return hw_mmu_commit(c, s1, core, &m, s2);
}

/* SDM 4.8: "Whenever the processor uses a paging-structure entry as part of linear-address
 * translation, it sets the accessed flag in that entry (if it is not already set)." The walk
 * used `seen` (present); the update is a locked OR on memory, so it lands on whatever present
 * entry memory holds now (possibly a newer one than the walk saw, or one this core's store
 * buffer is about to overwrite). More hostile than the SDM: A is also set in a present entry
 * that faults on a reserved bit (the SDM does not promise it is not). */
static bool walk_set_accessed(struct hw_vars *s2, uint64_t pa, uint64_t seen)
{
    uint64_t now = hw_pmem_read(&s2->global_pt.mem, pa);
    if (!(seen & HW_BIT_P) || !(now & HW_BIT_P) || (now & HW_BIT_A))
        return true;
    return hw_pmem_write(&s2->global_pt.mem, pa, now | HW_BIT_A);
}

/* rl3.rs: step_WalkStep (and the faulting end of a walk, which rl3 leaves to MemOpNoTr: a
 * walk that reads an Empty entry, i.e. P clear or a must-be-zero bit set, ends with no fill). */
enum hw_step_status hw_step_WalkStep(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, unsigned walk_index,
                                     struct hw_vars *s2)
{
    const struct hw_mmu_walk *w1;
    enum hw_step_status st = walk_at(c, s1, core, walk_index, &w1);
    if (st != HW_STEP_OK)
        return st;
    if (w1->complete)
        return HW_STEP_E_WALK_STATE;
    uint64_t pa = walk_entry_pa(w1);
    if (pa >= hw_pmem_bytes(&s1->global_pt.mem))
        return HW_STEP_E_OUTSIDE;
    uint64_t entry = hw_pt_load(c, s1, core, pa);
    struct hw_mmu_walk w = *w1;
    struct hw_mmu_core m = *hw_core_mmu_const(c, s1, core);
    hw_mmu_walk_remove(&m, walk_index);
    if ((entry & HW_BIT_P) && hw_codec_mb0_ok(entry, w.next, c->maxphyaddr)) {
        walk_advance(&w, entry, c->maxphyaddr);
        hw_mmu_walk_insert(&m, &w, c->mmu_walks); /* cannot fail: one walk was removed */
    }
    st = hw_mmu_commit(c, s1, core, &m, s2);
    if (st == HW_STEP_OK && !walk_set_accessed(s2, pa, entry)) {
        hw_vars_fini(s2);
        return HW_STEP_E_NOMEM;
    }
    return st;
}

/* rl3.rs: step_WalkAbort */
enum hw_step_status hw_step_WalkAbort(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, unsigned walk_index,
                                      struct hw_vars *s2)
{
    const struct hw_mmu_walk *w;
    enum hw_step_status st = walk_at(c, s1, core, walk_index, &w);
    if (st != HW_STEP_OK)
        return st;
    struct hw_mmu_core m = *hw_core_mmu_const(c, s1, core);
    hw_mmu_walk_remove(&m, walk_index);
    return hw_mmu_commit(c, s1, core, &m, s2);
}

/* The (base, pte) a completed walk found, as it saw the entries (rl3.rs Walk::result). */
struct hw_mapping hw_mmu_walk_result(const struct hw_mmu_walk *w, unsigned maxphyaddr)
{
    unsigned leaf = w->next - 1u;
    uint64_t size = hw_entry_size(leaf);
    uint8_t rights = w->rights[w->next];
    struct hw_mapping r = { .base = w->vaddr & ~(size - 1) };
    r.pte.frame.base = hw_codec_addr(w->entry[leaf], leaf, true, maxphyaddr);
    r.pte.frame.size = size;
    r.pte.flags.is_writable = rights & HW_RIGHT_W;
    r.pte.flags.is_supervisor = !(rights & HW_RIGHT_U);
    r.pte.flags.disable_execute = rights & HW_RIGHT_XD;
    struct hw_pde d = hw_codec_view(w->entry[leaf], leaf, maxphyaddr);
    hw_codec_leaf_attrs(&d, &r.pte.flags);
    return r;
}

/* SDM 4.8: "Whenever there is a write to a linear address, the processor sets the dirty flag
 * (if it is not already set) in the paging-structure entry that identifies the final physical
 * address for the linear address." Chosen: D is set by a locked RMW when the write's
 * translation is filled, and only if the leaf in memory at that moment still identifies that
 * frame (present, valid, a page at the same layer, same frame address): an entry that no
 * longer identifies the frame is not "the entry that identifies the final physical address",
 * and setting D in a remapped entry would mark a page that was never written. RW is not
 * checked (the SDM notes D may be set while another processor clears R/W, and a supervisor
 * write with CR0.WP = 0 writes read-only pages), matching hw_step_AccessedDirty. */
static bool walk_set_dirty(const struct hw_consts *c, struct hw_vars *s2,
                           const struct hw_mmu_walk *w, uint64_t frame)
{
    unsigned leaf = w->next - 1u;
    uint64_t pa = w->table[leaf] + (uint64_t)hw_codec_index(w->vaddr, leaf) * HW_WORD_SIZE;
    uint64_t now = hw_pmem_read(&s2->global_pt.mem, pa);
    bool same_leaf = (now & HW_BIT_P) && hw_codec_mb0_ok(now, leaf, c->maxphyaddr) &&
                     hw_codec_is_page(now, leaf) &&
                     hw_codec_addr(now, leaf, true, c->maxphyaddr) == frame;
    if (!same_leaf || (now & HW_BIT_D))
        return true;
    return hw_pmem_write(&s2->global_pt.mem, pa, now | HW_BIT_D);
}

/* rl3.rs: step_TLBFill, from a walk that has read its leaf. The walk is removed and the TLB
 * gets (base, pte) as the walk saw it. */
enum hw_step_status hw_step_WalkTLBFill(const struct hw_consts *c, const struct hw_vars *s1,
                                        struct hw_core core, unsigned walk_index,
                                        struct hw_vars *s2)
{
    const struct hw_mmu_walk *w1;
    enum hw_step_status st = walk_at(c, s1, core, walk_index, &w1);
    if (st != HW_STEP_OK)
        return st;
    if (!w1->complete)
        return HW_STEP_E_WALK_STATE;
    struct hw_mmu_walk w = *w1;
    struct hw_mapping r = hw_mmu_walk_result(&w, c->maxphyaddr);
    struct hw_mmu_core m = *hw_core_mmu_const(c, s1, core);
    hw_mmu_walk_remove(&m, walk_index);
    st = hw_mmu_commit(c, s1, core, &m, s2);
    if (st != HW_STEP_OK)
        return st;
    if (!hw_tlb_insert(hw_core_tlb(c, s2, core), r.base, &r.pte) ||
        (w.access == HW_ACCESS_WRITE && !walk_set_dirty(c, s2, &w, r.pte.frame.base))) {
        hw_vars_fini(s2);
        return HW_STEP_E_NOMEM;
    }
    return HW_STEP_OK;
}

/* Would a walk of vaddr from CR3 on core, started now, read directory entries at layers
 * 0..level that all have A set already and lead to `table` with `rights`? (A search reduction
 * asks: then that walk, or a cache fill from it, changes nothing in memory and reproduces
 * the cached entry or walk prefix exactly.) */
bool hw_mmu_path_current(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core, uint64_t vaddr,
                         unsigned level, uint64_t table, uint8_t rights)
{
    struct hw_mmu_walk w = { .vaddr = vaddr, .access = HW_ACCESS_WRITE };
    w.table[0] = s->global_pt.cr3;
    w.rights[0] = HW_RIGHTS_TOP;
    for (unsigned l = 0; l <= level && l < HW_NUM_LAYERS - 1; l++) {
        uint64_t pa = walk_entry_pa(&w);
        if (pa >= hw_pmem_bytes(&s->global_pt.mem))
            return false;
        uint64_t entry = hw_pt_load(c, s, core, pa);
        if (!(entry & HW_BIT_P) || !(entry & HW_BIT_A) || !hw_codec_mb0_ok(entry, l, c->maxphyaddr) ||
            hw_codec_is_page(entry, l))
            return false;
        walk_advance(&w, entry, c->maxphyaddr);
    }
    return w.table[level + 1] == table && w.rights[level + 1] == rights;
}

/* Would a write walk of e's base from CR3 on core, started now and filled into the TLB, give
 * e exactly and set no A or D bit in memory (walk_set_accessed, walk_set_dirty)? Then the TLB
 * entry is one such a walk replays at any time, changing nothing else. ignore_ad: the same
 * question with A and D set aside (a test compares states so). */
bool hw_mmu_tlb_current(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core,
                        const struct hw_mapping *e, bool ignore_ad)
{
    struct hw_mmu_walk w = { .vaddr = e->base, .access = HW_ACCESS_WRITE };
    w.table[0] = s->global_pt.cr3;
    w.rights[0] = HW_RIGHTS_TOP;
    for (unsigned l = 0; l < HW_NUM_LAYERS; l++) {
        uint64_t pa = walk_entry_pa(&w);
        if (pa >= hw_pmem_bytes(&s->global_pt.mem))
            return false;
        uint64_t entry = hw_pt_load(c, s, core, pa), now = hw_pmem_read(&s->global_pt.mem, pa);
        if (!(entry & HW_BIT_P) || !hw_codec_mb0_ok(entry, l, c->maxphyaddr))
            return false;
        if (!ignore_ad && (now & HW_BIT_P) && !(now & HW_BIT_A))
            return false;
        walk_advance(&w, entry, c->maxphyaddr);
        if (!w.complete)
            continue;
        struct hw_mapping r = hw_mmu_walk_result(&w, c->maxphyaddr);
        if (r.base != e->base || !hw_pte_equal(&r.pte, &e->pte))
            return false;
        bool same_leaf = (now & HW_BIT_P) && hw_codec_mb0_ok(now, l, c->maxphyaddr) && hw_codec_is_page(now, l) &&
                         hw_codec_addr(now, l, true, c->maxphyaddr) == r.pte.frame.base;
        return ignore_ad || !same_leaf || (now & HW_BIT_D);
    }
    return false;
}
