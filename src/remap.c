/* remap: point an existing mapping at another frame (copy-on-write break,
 * page migration) in one locked store, so that no walk ever sees the page
 * unmapped and the old entry's last Accessed/Dirty bits reach the caller. */
#include "ptmem.h"

/* The checks that need the page found by the walk, in map's order: alignment
 * before range, so a frame that is both misaligned and too high is
 * X86PT_E_MISALIGNED whichever call refuses it. */
static x86pt_status_t check_frame(const struct x86pt *pt, uint64_t pa, uint64_t size)
{
    if (pa & (size - 1))
        return X86PT_E_MISALIGNED;
    if (!frames_addressable(pt, pa, size))
        return X86PT_E_PHYSRANGE;
    return X86PT_OK;
}

x86pt_status_t x86pt_remap(struct x86pt *pt, x86pt_vaddr_t vaddr, x86pt_paddr_t paddr, unsigned flags,
                           struct x86pt_mapping *old, struct x86pt_flush *flush)
{
    struct walk w;
    flush_none(flush);
    if (flags & ~(unsigned)X86PT_FLAGS_ALL)
        return X86PT_E_BADFLAGS;
    x86pt_status_t st = find_mapping(pt, vaddr.va, &w);
    if (st != X86PT_OK)
        return st;
    uint64_t size = layer_size(w.layer);
    if ((st = check_frame(pt, paddr.pa, size)) != X86PT_OK)
        return st;
    uint64_t dir = w.dirs[w.layer], fresh = page_entry_encode(paddr.pa, w.layer, flags);
    unsigned idx = w.idx[w.layer];
    /* A plain store would drop a Dirty bit the MMU sets after our walk read the
     * entry: the caller would then not copy back or write out what the old frame
     * received. The exchange returns the entry exactly as it was replaced. */
#if X86PT_MUTANT == 33 /* mutant 33 (check/mutants.def): clear, then write (two stores) */
    uint64_t last = w.entry;
    entry_store(pt, dir, dir_at(pt, dir), idx, 0);
    entry_store(pt, dir, dir_at(pt, dir), idx, fresh);
#elif X86PT_MUTANT == 34 /* mutant 34 (check/mutants.def): the old Dirty bit survives into the new entry */
    uint64_t last = entry_rmw(pt, dir, idx, w.entry, ~ENTRY_D, fresh);
#else
    uint64_t last = entry_rmw(pt, dir, idx, w.entry, ~UINT64_C(0), fresh);
#endif
    if (old)
        *old = mapping_of(vaddr.va, last, w.layer, w.flags);
    if (flush) {
        flush->start = vaddr;
        flush->length = size;
        /* The old translation is the one cores may still hold: if it was global, a
         * CR3 reload would keep it. */
        flush->global = (last & ENTRY_G) != 0;
    }
    return X86PT_OK;
}
