/* protect: rewrite the permissions and attributes of one page entry in place —
 * one write, address and Accessed/Dirty kept. */
#include "ptmem.h"

x86pt_status_t x86pt_protect(struct x86pt *pt, x86pt_vaddr_t vaddr, unsigned flags, struct x86pt_flush *flush)
{
    struct walk w;
    flush_none(flush);
    if (flags & ~(unsigned)X86PT_FLAGS_ALL)
        return X86PT_E_BADFLAGS;
    x86pt_status_t st = find_mapping(pt, vaddr.va, &w);
    if (st != X86PT_OK)
        return st;
#if X86PT_MUTANT == 4 /* mutant 4: new permissions ORed into the old ones */
    flags |= entry_flags(w.entry);
#endif
    uint64_t old = entry_store_flags(pt, w.dirs[w.layer], w.idx[w.layer], w.layer, flags);
    if (flush) {
        flush->start = vaddr;
        flush->length = layer_size(w.layer);
#if X86PT_MUTANT == 32 /* mutant 32 (check/mutants.def): a global page's change is not reported as global */
        old &= ~ENTRY_G;
#endif
        flush->global = (old & ENTRY_G) != 0;
    }
    return X86PT_OK;
}
