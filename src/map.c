/*
 * map: prepare (walk, check overlap, allocate every missing directory), then
 * commit (zero and link the directories top-down, then the one write that adds
 * the mapping). Only prepare can fail, and it writes nothing
 * (impl_u/spec_pt.rs: a map is (Read | ViewStutter)* Write).
 */
#include "ptmem.h"

static x86pt_status_t check_map_args(const struct x86pt *pt, uint64_t va, uint64_t pa, uint64_t size,
                                     unsigned flags, unsigned *target)
{
    x86pt_status_t st = check_vaddr(va);
    if (st != X86PT_OK)
        return st;
    if ((st = layer_for_size(size, target)) != X86PT_OK)
        return st;
    if ((va | pa) & (size - 1))
        return X86PT_E_MISALIGNED;
    if (flags & ~(unsigned)X86PT_FLAGS_ALL)
        return X86PT_E_BADFLAGS;
    if (!frames_addressable(pt, pa, size))
        return X86PT_E_PHYSRANGE;
    return X86PT_OK;
}

/* Walk towards the target layer. Returns the deepest existing directory on the
 * path and its layer; fails if a page already covers va or the target slot is
 * taken (a linked directory always maps something: reclaim sees to that). */
static x86pt_status_t find_free_slot(const struct x86pt *pt, uint64_t va, unsigned target, uint64_t *dir_out,
                                     unsigned *layer_out)
{
    uint64_t dir = pt->root.pa;
    unsigned layer = 0;
    for (;; layer++) {
        uint64_t e = entry_load(dir_at(pt, dir), layer_index(va, layer));
        if (!entry_present(e))
            break;
        if (layer == target)
            return X86PT_E_OVERLAP;
#if X86PT_MUTANT != 5 /* mutant 5: a huge page on the path is taken for a directory */
        if (entry_is_page(e, layer))
            return X86PT_E_OVERLAP;
#endif
        dir = entry_addr(e, layer);
    }
    *dir_out = dir;
    *layer_out = layer;
    return X86PT_OK;
}

static void free_frames(const struct x86pt *pt, const uint64_t *frames, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        pt->mem.free_frame(pt->mem.ctx, x86pt_pa(frames[i]));
}

/* Allocate n directory frames, all or none, each zeroed (so that whatever
 * happens next, a frame goes back to the allocator zeroed). A frame the library
 * cannot address goes back untouched. */
x86pt_status_t x86pt_alloc_frames(const struct x86pt *pt, uint64_t *frames, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        x86pt_paddr_t f;
        if (!pt->mem.alloc_frame(pt->mem.ctx, &f)) {
#if X86PT_MUTANT != 22 /* mutant 22 (check/mutants.def): the frames taken so far are kept */
            free_frames(pt, frames, i);
#endif
            return X86PT_E_NOMEM;
        }
        if (!frame_usable(pt, f.pa)) {
            pt->mem.free_frame(pt->mem.ctx, f);
            free_frames(pt, frames, i);
            return X86PT_E_BADFRAME;
        }
#if X86PT_MUTANT != 1 /* mutant 1 (check/mutants.def): zeroed only after linking */
        dir_zero(dir_at(pt, f.pa));
#endif
        *used_count(pt, f.pa) = 0;
        frames[i] = f.pa;
    }
    return X86PT_OK;
}

/* Link a fresh (zeroed) directory below slot idx of dir: the MMU's view does
 * not change. Returns the new directory. */
uint64_t x86pt_link_new_dir(const struct x86pt *pt, uint64_t dir, unsigned idx, uint64_t fresh)
{
#if X86PT_MUTANT == 8 /* mutant 8: directory linked without RW */
    entry_store(pt, dir, dir_at(pt, dir), idx, dir_entry_encode(fresh) & ~ENTRY_RW);
#else
    entry_store(pt, dir, dir_at(pt, dir), idx, dir_entry_encode(fresh));
#endif
#if X86PT_MUTANT == 1 /* mutant 1: zeroed after the link */
    dir_zero(dir_at(pt, fresh));
#endif
    *used_count(pt, dir) += 1;
    return fresh;
}

/* The fast path: the hint names the page table of va, only its slot to check. */
static inline x86pt_status_t map_into_known_table(struct x86pt *pt, uint64_t dir, uint64_t va, uint64_t pa,
                                                  unsigned flags)
{
    uint64_t *d = dir_at(pt, dir);
    unsigned idx = layer_index(va, PT_LEAF_LAYER);
    if (entry_present(entry_load(d, idx)))
        return X86PT_E_OVERLAP;
#if X86PT_MUTANT == 6 /* mutant 6 on the fast path too */
    entry_store(pt, dir, d, idx, page_entry_encode(pa, PT_LEAF_LAYER, flags) | ENTRY_PS);
#else
    entry_store(pt, dir, d, idx, page_entry_encode(pa, PT_LEAF_LAYER, flags));
#endif
    *used_count(pt, dir) += 1;
    return X86PT_OK;
}

/* The general path: walk, check, allocate what is missing, commit. Kept out of
 * line so that the fast path saves no registers it does not use. */
static __attribute__((noinline)) x86pt_status_t map_walking(struct x86pt *pt, uint64_t va, uint64_t pa,
                                                             unsigned target, unsigned flags)
{
    unsigned layer;
    uint64_t dir, fresh[PT_LAYERS - 1];
    x86pt_status_t st = find_free_slot(pt, va, target, &dir, &layer);
    if (st == X86PT_OK)
        st = x86pt_alloc_frames(pt, fresh, target - layer);
    if (st != X86PT_OK)
        return st;

    for (unsigned i = 0; layer < target; layer++, i++)
        dir = x86pt_link_new_dir(pt, dir, layer_index(va, layer), fresh[i]);
#if X86PT_MUTANT == 3 /* mutant 3: the leaf's slot at the 2 MiB level computed with shift 20 */
    entry_store(pt, dir, dir_at(pt, dir), target == 2 ? (unsigned)(va >> 20) & 511u : layer_index(va, target),
                page_entry_encode(pa, target, flags));
#elif X86PT_MUTANT == 6 /* mutant 6: bit 7 (PAT at this level) set in a 4 KiB entry */
    entry_store(pt, dir, dir_at(pt, dir), layer_index(va, target),
                page_entry_encode(pa, target, flags) | (target == PT_LEAF_LAYER ? ENTRY_PS : 0));
#else
    entry_store(pt, dir, dir_at(pt, dir), layer_index(va, target), page_entry_encode(pa, target, flags));
#endif
    *used_count(pt, dir) += 1;
    if (target == PT_LEAF_LAYER)
        hint_set(pt, va, dir);
    return X86PT_OK;
}

x86pt_status_t x86pt_map(struct x86pt *pt, x86pt_vaddr_t vaddr, x86pt_paddr_t paddr, uint64_t size,
                         unsigned flags, struct x86pt_flush *flush)
{
    unsigned target;
    uint64_t dir;
    /* A not-present entry is never cached in a TLB: nothing to invalidate. */
    flush_none(flush);
    x86pt_status_t st = check_map_args(pt, vaddr.va, paddr.pa, size, flags, &target);
    if (st != X86PT_OK)
        return st;
    if (target == PT_LEAF_LAYER && hint_lookup(pt, vaddr.va, &dir))
        return map_into_known_table(pt, dir, vaddr.va, paddr.pa, flags);
    return map_walking(pt, vaddr.va, paddr.pa, target, flags);
}
