/* The page walk: hardware.rs read_entry and valid_pt_walk. One generic loop over the layers
 * (levels as data): read the entry, decode it, combine its flags, descend or stop. Bounded by
 * the four layers, so it terminates on any memory image. */
#include "hw_codec.h"

/* hardware.rs: read_entry */
bool hw_read_entry(const struct hw_pt_view *pt, uint64_t dir_addr, unsigned layer, unsigned idx,
                   struct hw_pde *out)
{
    uint64_t v;
    if (!hw_mem_view_read(&pt->mem, dir_addr + (uint64_t)idx * HW_WORD_SIZE, &v) ||
        dir_addr % HW_PAGE_SIZE || idx >= HW_NUM_ENTRIES) {
        out->kind = HW_PDE_EMPTY;
        return false;
    }
    *out = hw_codec_view(v, layer, pt->maxphyaddr);
    return true;
}

enum hw_walk_status hw_pt_walk(const struct hw_pt_view *pt, uint64_t vaddr, struct hw_walk *out)
{
    /* Flags combined along the path (valid_pt_walk): writable = RW at every level,
     * supervisor = US clear at some level, disable_execute = XD at some level. */
    bool writable = true, user = true, xd = false;
    uint64_t dir = pt->cr3;
    out->status = HW_WALK_FAULT;
    out->layer = 0;
    if (vaddr >= HW_MAX_BASE) /* outside interp_pt_mem's domain */
        return HW_WALK_FAULT;
    for (unsigned layer = 0; layer < HW_NUM_LAYERS; layer++) {
        uint64_t pa = dir + (uint64_t)hw_codec_index(vaddr, layer) * HW_WORD_SIZE;
        uint64_t v;
        out->layer = layer;
        out->entry_pa[layer] = pa;
        if (dir % HW_PAGE_SIZE || !hw_mem_view_read(&pt->mem, pa, &v))
            return out->status = HW_WALK_OUTSIDE;
        if (!(v & HW_BIT_P) || !hw_codec_mb0_ok(v, layer, pt->maxphyaddr))
            return out->status = HW_WALK_FAULT;
        writable = writable && (v & HW_BIT_RW);
        user = user && (v & HW_BIT_US);
        xd = xd || (v & HW_BIT_XD);
        bool page = hw_codec_is_page(v, layer);
        uint64_t addr = hw_codec_addr(v, layer, page, pt->maxphyaddr);
        if (page) {
            uint64_t size = hw_entry_size(layer);
            out->base = vaddr & ~(size - 1);
            out->pte.frame.base = addr;
            out->pte.frame.size = size;
            out->pte.flags.is_writable = writable;
            out->pte.flags.is_supervisor = !user;
            out->pte.flags.disable_execute = xd;
            struct hw_pde d = hw_codec_view(v, layer, pt->maxphyaddr);
            hw_codec_leaf_attrs(&d, &out->pte.flags);
            return out->status = HW_WALK_PAGE;
        }
        dir = addr;
    }
    /* Unreachable: layer 3 entries are always pages. */
    return out->status = HW_WALK_FAULT;
}

/* hardware.rs: valid_pt_walk */
bool hw_valid_pt_walk(const struct hw_pt_view *pt, uint64_t addr, const struct hw_pte *pte)
{
    struct hw_walk w;
    if (hw_pt_walk(pt, addr, &w) != HW_WALK_PAGE)
        return false;
    return hw_aligned(addr, w.pte.frame.size) && hw_pte_equal(&w.pte, pte);
}
