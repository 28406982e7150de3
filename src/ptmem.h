/*
 * Access to page-table memory through the caller's interface (spec_t/mem.rs):
 * directories by physical address, single-copy-atomic entry loads and stores,
 * and the side table of used-entry counts.
 */
#ifndef X86PT_PTMEM_H
#define X86PT_PTMEM_H

#include "entry.h"

static inline uint64_t *dir_at(const struct x86pt *pt, uint64_t pa)
{
    if (pt->mem.direct_map)
        return (uint64_t *)(void *)(pt->mem.direct_map + pa);
    return (uint64_t *)pt->mem.phys_to_virt(pt->mem.ctx, x86pt_pa(pa));
}

/* Other cores' MMUs read entries concurrently: an entry is loaded and stored as
 * one 8-byte access. Release order makes a directory's zeroing visible before
 * the store that links it (free on x86: a plain mov the compiler keeps in place).
 * Every access to page-table memory goes through the five accessors below; the
 * checker's build (X86PT_CHECKED, checked.h) turns each into a step of its model. */
#ifdef X86PT_CHECKED
#include "checked.h"
#endif

static inline uint64_t entry_load(const uint64_t *dir, unsigned idx)
{
#ifdef X86PT_CHECKED
    return x86pt_checked_load(&dir[idx]);
#else
    return __atomic_load_n(&dir[idx], __ATOMIC_RELAXED);
#endif
}

/* A store nobody is told about: into a directory no walk can reach yet (a
 * split's new directory, the free list of a range's directory pool). */
static inline void entry_write_unlinked(uint64_t *dir, unsigned idx, uint64_t value)
{
#ifdef X86PT_CHECKED
    x86pt_checked_store(&dir[idx], value);
#else
    dir[idx] = value;
#endif
}

/* lock cmpxchg on one entry (see entry_cas users for why). */
static inline bool entry_cas(uint64_t *slot, uint64_t *expected, uint64_t desired)
{
#ifdef X86PT_CHECKED
    return x86pt_checked_cas(slot, expected, desired);
#else
    return __atomic_compare_exchange_n(slot, expected, desired, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
#endif
}

static inline void dir_zero(uint64_t *dir)
{
#ifdef X86PT_CHECKED
    x86pt_checked_zero(dir);
#else
    __builtin_memset(dir, 0, X86PT_PAGE_4K);
#endif
}

static inline void entry_store(const struct x86pt *pt, uint64_t dir_pa, uint64_t *dir, unsigned idx,
                               uint64_t value)
{
#ifdef X86PT_CHECKED
    x86pt_checked_store(&dir[idx], value);
#else
    __atomic_store_n(&dir[idx], value, __ATOMIC_RELEASE);
#endif
    if (pt->mem.observe_write)
        pt->mem.observe_write(pt->mem.ctx, x86pt_pa(dir_pa + 8u * idx), value);
}

/* Clear the bits `clear` of slot idx of dir_pa and set `set`, in one locked
 * read-modify-write (a compare-exchange loop from `old`, the value last seen),
 * so that an Accessed/Dirty bit the MMU sets meanwhile is kept; returns the
 * value replaced. */
static inline uint64_t entry_rmw(const struct x86pt *pt, uint64_t dir_pa, unsigned idx, uint64_t old, uint64_t clear,
                                 uint64_t set)
{
    uint64_t *slot = &dir_at(pt, dir_pa)[idx];
    while (!entry_cas(slot, &old, (old & ~clear) | set))
        ;
    if (pt->mem.observe_write)
        pt->mem.observe_write(pt->mem.ctx, x86pt_pa(dir_pa + 8u * idx), (old & ~clear) | set);
    return old;
}

/* Replace the permission and attribute bits of a present leaf at this layer in
 * one store, keeping the frame and the Accessed/Dirty bits (a Dirty bit the MMU
 * sets between our load and our store too); returns the value replaced. */
static inline uint64_t entry_store_flags(const struct x86pt *pt, uint64_t dir_pa, unsigned idx, unsigned layer,
                                         unsigned flags)
{
    uint64_t old = entry_load(dir_at(pt, dir_pa), idx);
#if X86PT_MUTANT == 14 /* mutant 14 (check/mutants.def): a plain load and store, no compare-exchange */
    entry_store(pt, dir_pa, dir_at(pt, dir_pa), idx, (old & ~leaf_flag_bits(layer)) | leaf_flags_encode(flags, layer));
    return old;
#endif
    return entry_rmw(pt, dir_pa, idx, old, leaf_flag_bits(layer), leaf_flags_encode(flags, layer));
}

/* The Accessed/Dirty bits of an entry, as x86pt_ad_bit. */
static inline unsigned entry_ad(uint64_t e)
{
    return (e & ENTRY_A ? (unsigned)X86PT_ACCESSED : 0u) | (e & ENTRY_D ? (unsigned)X86PT_DIRTY : 0u);
}

/* The mapping leaf e of this layer makes at base (canonical), with the permissions
 * combined above and in it (perms) and the leaf's attributes and A/D bits. */
static inline struct x86pt_mapping mapping_of(uint64_t base, uint64_t e, unsigned layer, unsigned perms)
{
    struct x86pt_mapping m = { x86pt_va(base), x86pt_pa(entry_addr(e, layer)), layer_size(layer),
                               perms | entry_attrs(e, layer), entry_ad(e) };
    return m;
}

static inline uint16_t *used_count(const struct x86pt *pt, uint64_t dir_pa)
{
    return &pt->mem.used_counts[dir_pa >> 12];
}

/* A frame the library may use as a directory: aligned, addressable by entries
 * under this MAXPHYADDR, and covered by the count table. */
static inline bool frame_usable(const struct x86pt *pt, uint64_t pa)
{
    return (pa & (X86PT_PAGE_4K - 1)) == 0 && pa < pt->phys_limit &&
           (pa >> 12) < pt->mem.used_counts_len;
}

/* [pa, pa + size) lies below 2^MAXPHYADDR (written so that pa + size cannot overflow). */
static inline bool frames_addressable(const struct x86pt *pt, uint64_t pa, uint64_t size)
{
    return pa < pt->phys_limit && size <= pt->phys_limit - pa;
}

static inline bool va_canonical(uint64_t va)
{
#if X86PT_MUTANT == 19 /* mutant 19: bits 63..48 only, bit 47 forgotten */
    return (va >> 48) == 0 || (va >> 48) == 0xffff;
#else
    return (uint64_t)((int64_t)(va << 16) >> 16) == va;
#endif
}

static inline void flush_none(struct x86pt_flush *flush)
{
    if (flush) {
        flush->start = x86pt_va(0);
        flush->length = 0;
        flush->dirs_freed = 0;
        flush->flush_all = false;
        flush->global = false;
        flush->accessed_only = false;
    }
}

/* The walk down to the entry that maps va, if any (one generic walker for
 * unmap, protect and resolve). dirs[l] / idx[l] name the slot read at layer l;
 * after a walk that started from the hint only dirs[3] / idx[3] are known. */
struct walk {
    uint64_t dirs[PT_LAYERS];
    unsigned idx[PT_LAYERS];
    unsigned layer;     /* layer of the last slot read */
    uint64_t entry;     /* its value */
    unsigned flags;     /* permissions combined down to it (attributes: entry_attrs) */
    bool from_hint;
};

#include "hint.h"

/* Read slot idx of dir at this layer into the walk as its last step. */
static inline uint64_t walk_read(const struct x86pt *pt, struct walk *w, unsigned layer, uint64_t dir, unsigned idx)
{
    uint64_t e = entry_load(dir_at(pt, dir), idx);
    w->dirs[layer] = dir;
    w->idx[layer] = idx;
    w->layer = layer;
    w->entry = e;
    return e;
}

/* true if the walk ends in a page mapping at w->layer; always from the root,
 * filling every dirs[] on the way (walk.c). */
bool x86pt_walk_from_root(struct x86pt *pt, uint64_t va, struct walk *w);

/* The same, but from the hint when it names the page table of va. The flags
 * of the directories above are then known without reading them: the library
 * only ever links directories with every permission. */
static inline bool pt_walk(struct x86pt *pt, uint64_t va, struct walk *w)
{
    uint64_t dir;
    if (!hint_lookup(pt, va, &dir))
        return x86pt_walk_from_root(pt, va, w);
    uint64_t e = walk_read(pt, w, PT_LEAF_LAYER, dir, layer_index(va, PT_LEAF_LAYER));
    w->flags = entry_flags(e);
    w->from_hint = true;
    return entry_present(e);
}

/* Allocate n zeroed directory frames, all or none (map.c). */
x86pt_status_t x86pt_alloc_frames(const struct x86pt *pt, uint64_t *frames, unsigned n);
/* Link the zeroed directory fresh below slot idx of dir; returns fresh (map.c). */
uint64_t x86pt_link_new_dir(const struct x86pt *pt, uint64_t dir, unsigned idx, uint64_t fresh);
static inline x86pt_status_t check_vaddr(uint64_t va)
{
    if (!va_canonical(va))
        return X86PT_E_NONCANONICAL;
    if (va & (X86PT_PAGE_4K - 1))
        return X86PT_E_MISALIGNED;
    return X86PT_OK;
}

static inline x86pt_status_t layer_for_size(uint64_t size, unsigned *layer)
{
    switch (size) {
    case X86PT_PAGE_4K: *layer = 3; return X86PT_OK;
    case X86PT_PAGE_2M: *layer = 2; return X86PT_OK;
    case X86PT_PAGE_1G: *layer = 1; return X86PT_OK;
    default: return X86PT_E_BADSIZE;
    }
}

/* The walk to the page that starts exactly at va (unmap, protect). */
static inline x86pt_status_t find_mapping(struct x86pt *pt, uint64_t va, struct walk *w)
{
    x86pt_status_t st = check_vaddr(va);
    if (st != X86PT_OK)
        return st;
    if (!pt_walk(pt, va, w) || (va & (layer_size(w->layer) - 1)) != 0)
        return X86PT_E_NOTMAPPED;
    return X86PT_OK;
}

#endif /* X86PT_PTMEM_H */
