/* Accessed/Dirty harvesting: test-and-clear on one page's entry, for page
 * reclaim (A: was the page used?) and writeback (D: was it written?). */
#include "ptmem.h"

#define AD_BITS (X86PT_ACCESSED | X86PT_DIRTY)

static uint64_t ad_entry_bits(unsigned bits)
{
    return (bits & X86PT_ACCESSED ? ENTRY_A : 0) | (bits & X86PT_DIRTY ? ENTRY_D : 0);
}

x86pt_status_t x86pt_test_and_clear_ad(struct x86pt *pt, x86pt_vaddr_t vaddr, unsigned bits, unsigned *was,
                                       struct x86pt_flush *flush)
{
    struct walk w;
    flush_none(flush);
    if (bits & ~(unsigned)AD_BITS)
        return X86PT_E_BADFLAGS;
    x86pt_status_t st = find_mapping(pt, vaddr.va, &w);
    if (st != X86PT_OK)
        return st;
    uint64_t clear = ad_entry_bits(bits), old = w.entry;
    /* Nothing to write when the bits are clear already; once set they stay set
     * until we clear them (the MMU only ever sets them, and calls are serialized). */
#if X86PT_MUTANT == 35 /* mutant 35 (check/mutants.def): a plain store of the value loaded first */
    if (old & clear)
        entry_store(pt, w.dirs[w.layer], dir_at(pt, w.dirs[w.layer]), w.idx[w.layer], old & ~clear);
#else
    if (old & clear)
        old = entry_rmw(pt, w.dirs[w.layer], w.idx[w.layer], old, clear, 0);
#endif
    uint64_t cleared = old & clear;
    if (was)
        *was = entry_ad(old);
#if X86PT_MUTANT == 36 /* mutant 36 (check/mutants.def): clearing Dirty reports nothing to invalidate */
    if (cleared & ENTRY_D)
        flush = NULL;
#endif
    if (cleared && flush) {
        flush->start = vaddr;
        flush->length = layer_size(w.layer);
        flush->accessed_only = !(cleared & ENTRY_D);
    }
    return X86PT_OK;
}
