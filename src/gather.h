/*
 * Where the directories an unmap empties go: straight to free_frame, or, with a
 * caller's gather, into it until the caller's shootdown is done (x86pt.h).
 */
#ifndef X86PT_GATHER_H
#define X86PT_GATHER_H

#include "ptmem.h"

/* A gather the library can append to. */
static inline bool gather_valid(const struct x86pt_gather *g)
{
    return !g || (g->count <= g->capacity && (g->frames || g->capacity == 0));
}

static inline bool gather_has_room(const struct x86pt_gather *g, uint64_t dirs)
{
    return !g || dirs <= g->capacity - g->count;
}

/* dir is zero and unlinked. Every call checked gather_has_room for all it frees
 * before its first store, so the gather cannot overflow here; if a wrong count
 * ever made it, freeing early is the lesser harm than writing past the
 * caller's array. */
static inline void dir_retire(const struct x86pt *pt, struct x86pt_gather *g, uint64_t dir)
{
#if X86PT_MUTANT == 37 /* mutant 37 (check/mutants.def): the gather is bypassed, the frame freed at once */
    g = 0;
#endif
    if (g && g->count < g->capacity)
        g->frames[g->count++] = x86pt_pa(dir);
    else
        pt->mem.free_frame(pt->mem.ctx, x86pt_pa(dir));
}

#endif /* X86PT_GATHER_H */
