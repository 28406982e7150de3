/* Life cycle of a page table: init (one zeroed root, spec_pt.rs: init), adopt
 * (take over an existing image, validated), destroy. */
#include "ptmem.h"

static x86pt_status_t setup(struct x86pt *pt, const struct x86pt_mem *mem, unsigned maxphyaddr)
{
    if (maxphyaddr == 0)
        maxphyaddr = X86PT_MAXPHYADDR_MAX;
    if (!mem || maxphyaddr < X86PT_MAXPHYADDR_MIN || maxphyaddr > X86PT_MAXPHYADDR_MAX ||
        !mem->alloc_frame || !mem->free_frame || (!mem->direct_map && !mem->phys_to_virt) ||
        !mem->used_counts)
        return X86PT_E_INVAL;
    pt->mem = *mem;
    pt->maxphyaddr = maxphyaddr;
    pt->phys_limit = UINT64_C(1) << maxphyaddr;
    pt->root = x86pt_pa(0);
    pt->walk_hint = 0;
    return X86PT_OK;
}

x86pt_status_t x86pt_init(struct x86pt *pt, const struct x86pt_mem *mem, unsigned maxphyaddr)
{
    uint64_t root;
    x86pt_status_t st = setup(pt, mem, maxphyaddr);
    if (st == X86PT_OK)
        st = x86pt_alloc_frames(pt, &root, 1);
    if (st != X86PT_OK)
        return st;
    pt->root = x86pt_pa(root);
    return X86PT_OK;
}

/* The count table serves every page table over this memory, so adopt may not
 * wipe it: it marks the directories it visits with a bit no real count (at
 * most 512) ever has, and takes the marks off again (unmark_dir) if it fails. */
#define COUNT_VISITED UINT16_C(0x8000)

static bool visited(const struct x86pt *pt, uint64_t dir)
{
    return frame_usable(pt, dir) && (*used_count(pt, dir) & COUNT_VISITED);
}

/* Pass 1 of adopt: writes no entry. A directory reached twice (a cycle or a
 * shared subtree) is found by its mark. Recursion is bounded by the 4 layers. */
static x86pt_status_t validate_dir(const struct x86pt *pt, uint64_t dir, unsigned layer)
{
    if (!frame_usable(pt, dir) || visited(pt, dir))
        return X86PT_E_MALFORMED;
    *used_count(pt, dir) |= COUNT_VISITED;
    const uint64_t *d = dir_at(pt, dir);
    for (unsigned i = 0; i < PT_ENTRIES; i++) {
        uint64_t e = entry_load(d, i);
        if (!entry_present(e))
            continue;
#if X86PT_MUTANT != 24 /* mutant 24: must-be-zero bits go unchecked */
        if (e & entry_mbz_mask(e, layer, pt->maxphyaddr))
            return X86PT_E_MALFORMED;
#endif
        if (entry_is_page(e, layer))
            continue;
        /* The library relies on directories granting everything (spec GUIDE). */
#if X86PT_MUTANT == 25 /* mutant 25: a directory entry without RW passes */
        if ((e & (ENTRY_P | ENTRY_US | ENTRY_XD)) != (ENTRY_P | ENTRY_US))
#else
        if ((e & (ENTRY_DIR_BITS | ENTRY_XD)) != ENTRY_DIR_BITS)
#endif
            return X86PT_E_MALFORMED;
        x86pt_status_t st = validate_dir(pt, entry_addr(e, layer), layer + 1);
        if (st != X86PT_OK)
            return st;
    }
    return X86PT_OK;
}

/* Undo pass 1's marks after a failure. It meets the marked directories in the
 * order pass 1 did and unmarks each on first meeting, so it ends. */
static void unmark_dir(const struct x86pt *pt, uint64_t dir, unsigned layer)
{
    *used_count(pt, dir) &= (uint16_t)~COUNT_VISITED;
    const uint64_t *d = dir_at(pt, dir);
    for (unsigned i = 0; i < PT_ENTRIES; i++) {
        uint64_t e = entry_load(d, i);
        if (entry_present(e) && !entry_is_page(e, layer) && visited(pt, entry_addr(e, layer)))
            unmark_dir(pt, entry_addr(e, layer), layer + 1);
    }
}

/* Pass 2: view-preserving writes only. Clears not-present garbage, unlinks and
 * frees directories that map nothing, and sets the counts (which takes the
 * marks off). Returns true if dir ends up empty. */
static bool normalize_dir(const struct x86pt *pt, uint64_t dir, unsigned layer)
{
    uint64_t *d = dir_at(pt, dir);
    uint16_t used = 0;
    for (unsigned i = 0; i < PT_ENTRIES; i++) {
        uint64_t e = entry_load(d, i);
        if (e == 0)
            continue;
        if (entry_present(e) && !entry_is_page(e, layer) && normalize_dir(pt, entry_addr(e, layer), layer + 1)) {
#if X86PT_MUTANT != 27 /* mutant 27: an empty directory is freed but stays linked */
            entry_store(pt, dir, d, i, 0);
#endif
            pt->mem.free_frame(pt->mem.ctx, x86pt_pa(entry_addr(e, layer)));
        } else if (!entry_present(e)) {
#if X86PT_MUTANT != 26 /* mutant 26: not-present garbage stays */
            entry_store(pt, dir, d, i, 0);
#endif
        } else {
            used++;
        }
    }
    *used_count(pt, dir) = used;
    return used == 0;
}

/* Built in a local handle: a refused adopt leaves *pt as it was. */
x86pt_status_t x86pt_adopt(struct x86pt *pt, const struct x86pt_mem *mem, unsigned maxphyaddr, x86pt_paddr_t root)
{
    struct x86pt fresh;
    x86pt_status_t st = setup(&fresh, mem, maxphyaddr);
    if (st != X86PT_OK)
        return st;
    if ((st = validate_dir(&fresh, root.pa, 0)) != X86PT_OK) {
        if (visited(&fresh, root.pa))
            unmark_dir(&fresh, root.pa, 0);
        return st;
    }
    fresh.root = root;
    normalize_dir(&fresh, root.pa, 0);
    *pt = fresh;
    return X86PT_OK;
}

/* Post-order: children first, then the directory itself, zeroed before it goes
 * back to the allocator. Recursion is bounded by the 4 layers. */
static void destroy_dir(const struct x86pt *pt, uint64_t dir, unsigned layer)
{
    uint64_t *d = dir_at(pt, dir);
    for (unsigned i = 0; i < PT_ENTRIES; i++) {
        uint64_t e = entry_load(d, i);
        if (entry_present(e) && !entry_is_page(e, layer))
            destroy_dir(pt, entry_addr(e, layer), layer + 1);
    }
#if X86PT_MUTANT == 18 /* mutant 18: the root goes back unzeroed */
    if (layer)
#endif
    dir_zero(d);
    *used_count(pt, dir) = 0;
    pt->mem.free_frame(pt->mem.ctx, x86pt_pa(dir));
}

void x86pt_destroy(struct x86pt *pt)
{
    destroy_dir(pt, pt->root.pa, 0);
    pt->root = x86pt_pa(0);
    x86pt_forget_hint(pt);
}
