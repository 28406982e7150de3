/*
 * The walk hint: the page table (layer-3 directory) the last walk went
 * through, so that sequential work on neighbouring 4 KiB pages skips three of
 * the four loads of a walk. A software paging-structure cache; it stays
 * coherent because the library is the only writer of the tables (see
 * x86pt_forget_hint for callers that break that rule).
 *
 * One word, so that resolves running concurrently on one handle can share it
 * without tearing: bits 63..37 hold va bits 47..21 (which PT), bit 36 says
 * valid, bits 35..0 the PT's frame number. A PT above 2^48 is not hinted.
 */
#ifndef X86PT_HINT_H
#define X86PT_HINT_H

#define HINT_VALID (UINT64_C(1) << 36)
#define HINT_FRAME_MASK (HINT_VALID - 1)

static inline uint64_t hint_tag(uint64_t va) { return ((va >> 21) & ((UINT64_C(1) << 27) - 1)) << 37; }

static inline bool hint_lookup(const struct x86pt *pt, uint64_t va, uint64_t *pt_dir)
{
    uint64_t h = __atomic_load_n(&pt->walk_hint, __ATOMIC_RELAXED);
    if ((h & ~HINT_FRAME_MASK) != (hint_tag(va) | HINT_VALID))
        return false;
    *pt_dir = (h & HINT_FRAME_MASK) << 12;
    return true;
}

static inline void hint_set(struct x86pt *pt, uint64_t va, uint64_t pt_dir)
{
    uint64_t frame = pt_dir >> 12;
    if (frame <= HINT_FRAME_MASK)
        __atomic_store_n(&pt->walk_hint, hint_tag(va) | HINT_VALID | frame, __ATOMIC_RELAXED);
}

static inline void hint_clear(struct x86pt *pt) { __atomic_store_n(&pt->walk_hint, 0, __ATOMIC_RELAXED); }

#endif /* X86PT_HINT_H */
