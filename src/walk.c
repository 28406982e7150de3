/* The page walk (hardware.rs: valid_pt_walk, as the library sees it) and resolve. */
#include "ptmem.h"

/*
 *   47..39   38..30   29..21   20..12   11..0
 *   PML4     PDPT     PD       PT       offset in a 4 KiB page
 * The walk stops at the first empty entry or at a page.
 */
bool x86pt_walk_from_root(struct x86pt *pt, uint64_t va, struct walk *w)
{
    uint64_t dir = pt->root.pa;
    w->from_hint = false;
    unsigned flags = X86PT_WRITABLE | X86PT_USER;
    for (unsigned layer = 0; layer < PT_LAYERS; layer++) {
        uint64_t e = walk_read(pt, w, layer, dir, layer_index(va, layer));
        if (!entry_present(e))
            return false;
        flags = flags_combine(flags, entry_flags(e));
        w->flags = flags;
        if (entry_is_page(e, layer)) {
            if (layer == PT_LEAF_LAYER)
                hint_set(pt, va, dir);
            return true;
        }
        dir = entry_addr(e, layer);
    }
    return false; /* unreachable: layer 3 entries are always pages */
}

x86pt_status_t x86pt_resolve(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *out)
{
    if (!va_canonical(vaddr.va))
        return X86PT_E_NONCANONICAL;
    struct walk w;
    if (!pt_walk(pt, vaddr.va, &w))
        return X86PT_E_NOTMAPPED;
#if X86PT_MUTANT == 17
    *out = mapping_of(vaddr.va & ~UINT64_C(0xfff), w.entry, w.layer, w.flags);
#else
    *out = mapping_of(vaddr.va & ~(layer_size(w.layer) - 1), w.entry, w.layer, w.flags);
#endif
    return X86PT_OK;
}
