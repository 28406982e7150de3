/* The directory pool of range operations (Hafnium's prepare/commit shape:
 * everything that can fail happens before the first write). */
#include "range.h"

x86pt_status_t x86pt_pool_fill(const struct x86pt *pt, struct dir_pool *pool, uint64_t n)
{
    pool->count = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t frame;
        x86pt_status_t st = x86pt_alloc_frames(pt, &frame, 1);
        if (st != X86PT_OK) {
#if X86PT_MUTANT != 21 /* mutant 21 (check/mutants.def): the frames taken so far are kept */
            x86pt_pool_drain(pt, pool);
#endif
            return st;
        }
        entry_write_unlinked(dir_at(pt, frame), 0, pool->head);
        pool->head = frame;
        pool->count++;
    }
    return X86PT_OK;
}

uint64_t x86pt_pool_take(const struct x86pt *pt, struct dir_pool *pool)
{
    uint64_t frame = pool->head;
    uint64_t *d = dir_at(pt, frame);
    pool->head = entry_load(d, 0);
    pool->count--;
    entry_write_unlinked(d, 0, 0); /* x86pt_alloc_frames zeroed the rest */
    return frame;
}

void x86pt_pool_drain(const struct x86pt *pt, struct dir_pool *pool)
{
    while (pool->count)
        pt->mem.free_frame(pt->mem.ctx, x86pt_pa(x86pt_pool_take(pt, pool)));
}
