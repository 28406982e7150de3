/* protect: rewrite the permissions of one page entry in place — one write,
 * address and every other bit kept (Accessed/Dirty included). */
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
    entry_store_perms(pt, w.dirs[w.layer], w.idx[w.layer], perms_encode(flags) | (w.entry & ENTRY_PERMS));
#else
    entry_store_perms(pt, w.dirs[w.layer], w.idx[w.layer], perms_encode(flags));
#endif
    if (flush) {
        flush->start = vaddr;
        flush->length = layer_size(w.layer);
    }
    return X86PT_OK;
}
