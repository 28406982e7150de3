/*
 * Paging-structure caches and their invalidation: mmu-verimm/rl3.rs step_CacheFill,
 * step_CacheEvict, step_Invlpg; SDM vol. 3A 4.10.3 (paging-structure caches) and 4.10.4.1
 * (operations that invalidate TLBs and paging-structure caches).
 *
 * A core has a PML4E cache (level 0, keyed by vaddr bits 47:39), a PDPTE cache (level 1, bits
 * 47:30) and a PDE cache (level 2, bits 47:21). An entry holds the physical address of the
 * next table and the rights combined so far; a walk may start from a matching entry
 * (hw_step_WalkInit with a cache ref) and so skip the upper levels, even after they changed
 * in memory (SDM 4.10.3.1: "the processor may retain it unmodified even if software
 * subsequently modifies the corresponding PML4E in memory").
 */
#include "hw_codec.h"

/* Does the walk hold the directory entry of `level` it read itself (not one inherited from a
 * cache entry), and so the next table's address? */
static bool walk_read_directory(const struct hw_mmu_walk *w, unsigned level)
{
    bool read = w->from <= level && level < w->next;
    bool is_leaf = w->complete && level == w->next - 1u;
    return level < HW_PSCACHE_LEVELS && read && !is_leaf;
}

/* rl3.rs: step_CacheFill. SDM 4.10.3.1: the processor creates a cache entry only from a
 * present entry without reserved bits, whose A it has set: exactly the directory entries a
 * walk reads (hw_step_WalkStep sets A as it reads). Chosen: an entry is filled from an
 * in-flight walk's directory entries, at any time while the walk is in flight (rl3 fills a
 * whole in-flight walk any time), as the walk saw them; memory may have changed since, which
 * is more hostile than filling only at the moment of the read and what rl3 allows too. */
enum hw_step_status hw_step_CacheFill(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, unsigned walk_index, unsigned level,
                                      struct hw_vars *s2)
{
    if (!c->mmu_pscache || !s1->mmu)
        return HW_STEP_E_DISABLED;
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    const struct hw_mmu_core *m1 = hw_core_mmu_const(c, s1, core);
    if (walk_index >= m1->nwalks)
        return HW_STEP_E_NO_WALK;
    const struct hw_mmu_walk *w = &m1->walks[walk_index];
    if (!walk_read_directory(w, level))
        return HW_STEP_E_WALK_STATE;
    struct hw_pscache_entry e = { hw_pscache_key(w->vaddr, level), w->table[level + 1],
                                  w->rights[level + 1] };
    struct hw_mmu_core m = *m1;
    if (!hw_pscache_insert(&m, level, &e, c->mmu_pscache))
        return HW_STEP_E_FULL;
    return hw_mmu_commit(c, s1, core, &m, s2);
}

/* rl3.rs: step_CacheEvict (any entry, any time; also how a full cache makes room). */
enum hw_step_status hw_step_CacheEvict(const struct hw_consts *c, const struct hw_vars *s1,
                                       struct hw_core core, struct hw_pscache_ref entry,
                                       struct hw_vars *s2)
{
    if (!c->mmu_pscache || !s1->mmu)
        return HW_STEP_E_DISABLED;
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    const struct hw_mmu_core *m1 = hw_core_mmu_const(c, s1, core);
    if (entry.level >= HW_PSCACHE_LEVELS || entry.index >= m1->npscache[entry.level])
        return HW_STEP_E_NO_CACHE_ENTRY;
    struct hw_mmu_core m = *m1;
    hw_pscache_remove(&m, entry.level, entry.index);
    return hw_mmu_commit(c, s1, core, &m, s2);
}

/* Remove from the TLB every entry whose range contains vaddr. */
static void tlb_remove_containing(struct hw_tlb *t, uint64_t vaddr)
{
    for (uint32_t i = t->len; i-- > 0;) {
        const struct hw_mapping *e = &t->entries[i];
        if (hw_between(vaddr, e->base, e->base + e->pte.frame.size))
            hw_tlb_remove(t, e->base);
    }
}

/* The minimum INVLPG guarantees for the caches and walks of one core (see hw_step_Invlpg). */
static void mmu_invalidate_vaddr(struct hw_mmu_core *m, uint64_t vaddr)
{
    for (unsigned l = 0; l < HW_PSCACHE_LEVELS; l++)
        for (unsigned i = m->npscache[l]; i-- > 0;)
            if (m->pscache[l][i].key == hw_pscache_key(vaddr, l))
                hw_pscache_remove(m, l, i);
    for (unsigned i = m->nwalks; i-- > 0;)
        if (hw_pscache_key(m->walks[i].vaddr, 0) == hw_pscache_key(vaddr, 0))
            hw_mmu_walk_remove(m, i);
}

static bool sbuf_empty(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core)
{
    const struct hw_mmu_core *m = hw_core_mmu_const(c, s, core);
    return !m || !m->nsbuf;
}

/* rl3.rs: step_Invlpg. Like rl3, INVLPG is serializing: it needs the core's store buffer empty
 * (refused otherwise; draining is left to Writeback steps, between which other cores may act).
 *
 * Which paging-structure-cache entries go: Intel SDM 4.10.4.1 says "INVLPG also invalidates
 * all entries in all paging-structure caches associated with the current PCID, regardless of
 * the linear addresses to which they correspond" (and rl3 requires the whole cache empty).
 * AMD's APM (EFER.TCE, Translation Cache Extension) gives the same with TCE = 0, but with
 * TCE = 1 INVLPG removes "the target PTE and only those upper-level entries that lead to the
 * target PTE in the page table hierarchy, leaving unrelated upper-level entries intact"
 * (Linux enables TCE since 6.14). The model does the latter: it removes only the PML4E-,
 * PDPTE- and PDE-cache entries whose key matches vaddr. That is the hostile choice: a library
 * that relies on one INVLPG flushing the cached upper levels of other addresses is wrong on
 * AMD with TCE, and the checker will show it.
 *
 * In-flight walks: rl3 requires none (the instruction waits for them). Here the walks that
 * share vaddr's PML4 slot are dropped: they hold (or will read) entries that translate vaddr,
 * like the cache entries removed, and only they can produce a translation containing vaddr (a
 * page is at most 1 GiB). Walks in other PML4 slots survive, consistently with the surviving
 * cache entries of other addresses. A walk that would have filled first is covered by the
 * interleaving that fills it before the Invlpg step. */
enum hw_step_status hw_step_Invlpg(const struct hw_consts *c, const struct hw_vars *s1,
                                   struct hw_core core, uint64_t vaddr, struct hw_vars *s2)
{
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (!sbuf_empty(c, s1, core))
        return HW_STEP_E_SBUF_NOT_EMPTY;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    tlb_remove_containing(hw_core_tlb(c, s2, core), vaddr);
    struct hw_mmu_core *m = hw_core_mmu(c, s2, core);
    if (m && vaddr < HW_MAX_BASE)
        mmu_invalidate_vaddr(m, vaddr);
    return HW_STEP_OK;
}

/* MOV to CR3 with the same value (keep_global) or a MOV to CR4 that toggles PGE. SDM 4.10.4.1:
 * the first "invalidates all TLB entries associated with PCID 000H except those for global
 * pages", the second "all TLB entries (including global entries)"; both "all paging-structure
 * caches". Both are serializing: the store buffer must be empty (as for Invlpg). In-flight
 * walks go with the caches (their partial state is such a cache). The model runs with
 * CR4.PGE = 1: a TLB entry of a page whose leaf has G (x86pt's extension of PageTableEntry)
 * survives a CR3 reload. */
static enum hw_step_status flush_tlb(const struct hw_consts *c, const struct hw_vars *s1, struct hw_core core,
                                     bool keep_global, struct hw_vars *s2)
{
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (!sbuf_empty(c, s1, core))
        return HW_STEP_E_SBUF_NOT_EMPTY;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    struct hw_tlb *t = hw_core_tlb(c, s2, core);
    if (keep_global) {
        for (uint32_t e = t->len; e-- > 0;)
            if (!t->entries[e].pte.flags.global)
                hw_tlb_remove(t, t->entries[e].base);
    } else {
        hw_tlb_fini(t);
    }
    struct hw_mmu_core *m = hw_core_mmu(c, s2, core);
    if (m) {
        struct hw_mmu_core empty = { .nwalks = 0 };
        *m = empty; /* the store buffer is empty already */
    }
    return HW_STEP_OK;
}

enum hw_step_status hw_step_FlushAll(const struct hw_consts *c, const struct hw_vars *s1, struct hw_core core,
                                     struct hw_vars *s2)
{
    return flush_tlb(c, s1, core, true, s2);
}

enum hw_step_status hw_step_FlushGlobal(const struct hw_consts *c, const struct hw_vars *s1, struct hw_core core,
                                        struct hw_vars *s2)
{
    return flush_tlb(c, s1, core, false, s2);
}
