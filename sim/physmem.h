/*
 * Simulated physical memory for hosted use (tests, benchmarks, model glue, the
 * checker): a bounded, page-aligned block standing for physical addresses
 * [0, bytes), a LIFO free list of frames (what a kernel's page allocator looks
 * like), fault injection (fail the N-th allocation), and leak accounting.
 */
#ifndef X86PT_SIM_PHYSMEM_H
#define X86PT_SIM_PHYSMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "x86pt/x86pt.h"

struct sim_phys {
    uint8_t *mem;          /* host address of physical address 0 */
    void *map_base;        /* the host mapping behind mem */
    uint64_t bytes;
    uint64_t frames;
    uint16_t *counts;      /* the library's side table, one per frame */
    uint64_t *free_stack;  /* frame numbers; top of stack is handed out next */
    uint64_t free_top;
    uint8_t *owned;        /* 1 while a frame is allocated */
    uint64_t live;         /* frames allocated and not yet freed */
    uint64_t allocs;       /* successful allocations so far */
    uint64_t alloc_calls;  /* calls to alloc, failed ones included */
    uint64_t fail_at;      /* alloc call number (alloc_calls after it) that fails; 0 = never */
    bool scribble;         /* fill allocated frames with 0xA5 to catch missing zeroing */
    bool trust_frees;      /* skip the zero check on free (benchmarks) */
    uint64_t bad_frees;    /* frees of frames not allocated, or not zeroed */
};

/* bytes: multiple of 4 KiB. Frames [0, reserved) are never handed out, so that
 * users can place their own data there. Returns false if out of host memory. */
bool sim_phys_init(struct sim_phys *s, uint64_t bytes, uint64_t reserved);
void sim_phys_fini(struct sim_phys *s);

/* The memory interface over this memory: direct-mapped (the fast path)... */
struct x86pt_mem sim_phys_mem(struct sim_phys *s);
/* ... or through the phys_to_virt callback. */
struct x86pt_mem sim_phys_mem_translated(struct sim_phys *s);

/* Make the n-th alloc call from now fail (1 = the next one); 0 = never. */
void sim_phys_fail_nth(struct sim_phys *s, uint64_t n);

static inline void *sim_phys_ptr(const struct sim_phys *s, uint64_t pa) { return s->mem + pa; }

#endif /* X86PT_SIM_PHYSMEM_H */
