/*
 * x86pt's extension of os.rs: TSO store buffers at the OS level (the hardware's buffers are
 * hw_mmu_storebuf.c, after rl3.rs).
 *
 * The page table the OS model judges is the writer's: page-table memory with the store buffer
 * of the core that writes the table applied (rl3.rs writer_mem). Only the lock holder stores
 * to the table, and a core takes the kernel lock with a locked instruction that must see the
 * holder's release store, which sits behind the holder's page-table stores in its FIFO
 * (SDM vol. 3A §9.2.2: stores are not reordered with other stores; locked instructions have a
 * total order). So at most one core ever has buffered page-table stores, and the lock is free
 * to take only once they are in memory: os_sbuf_lock_free.
 *
 * The library's loads read its own core's buffer first; its stores enter the buffer; its
 * locked compare-exchange and its zeroing of a reachable directory wait for an empty buffer
 * (os_lib.c). Every other core's walks read memory only, so they see the table as it was
 * before the buffered stores: the refinement, the invariants and the Writeback step's
 * Accessed/Dirty check (a plain store that leaves the buffer after the MMU set A or D in
 * memory loses them) judge what that allows.
 *
 * The barriers of the OS protocol (README, "Store buffers"): a map's end is a fence (its
 * mapping is in memory when it returns: hlspec says it is mapped for every thread), and the
 * shootdown IPI is ordered after the page-table stores (kernel/smp.c sends it with a store to
 * the xAPIC's ICR, uncacheable memory, which cannot pass earlier stores). The planted OS bugs
 * no_map_fence and no_shootdown_fence leave each out.
 */
#include "os_internal.h"
#include "why.h"

int os_sbuf_writer(const struct os_consts *c, const struct os_vars *s)
{
    if (!c->hw.mmu_sbuf || !s->hw.mmu)
        return -1;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, os_core_of(c, i));
        if (m && m->nsbuf)
            return (int)i;
    }
    return -1;
}

unsigned os_sbuf_len(const struct os_consts *c, const struct os_vars *s, unsigned core)
{
    if (!c->hw.mmu_sbuf || !s->hw.mmu || core >= os_ncores(c))
        return 0;
    const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, os_core_of(c, core));
    return m ? m->nsbuf : 0;
}

bool os_wmem_get(const struct os_consts *c, const struct os_vars *s, struct os_wmem *w)
{
    int k = os_sbuf_writer(c, s);
    w->mem = &s->hw.global_pt.mem;
    w->owned = false;
    if (k < 0)
        return true;
    if (!hw_pmem_copy(&w->own, &s->hw.global_pt.mem))
        return false;
    w->owned = true;
    w->mem = &w->own;
    const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, os_core_of(c, (unsigned)k));
    for (unsigned i = 0; i < m->nsbuf; i++) /* oldest first: the newest store to an entry wins */
        if (!hw_pmem_write(&w->own, m->sbuf[i].pa, m->sbuf[i].value)) {
            os_wmem_put(w);
            return false;
        }
    return true;
}

void os_wmem_put(struct os_wmem *w)
{
    if (w->owned)
        hw_pmem_fini(&w->own);
    w->owned = false;
    w->mem = NULL;
}

struct hw_pt_view os_wmem_view(const struct os_consts *c, const struct os_vars *s, const struct os_wmem *w)
{
    struct hw_pt_view v = { hw_pmem_view(w->mem), s->hw.global_pt.cr3, c->hw.maxphyaddr };
    return v;
}

bool os_sbuf_lock_free(const struct os_consts *c, const struct os_vars *s, char *why, size_t len)
{
    int k = os_sbuf_writer(c, s);
    if (k < 0)
        return true;
    return model_refuse(why, len, "core %d's page-table stores, and the unlock behind them, are still in its store "
                        "buffer", k);
}

bool os_sbuf_drained(const struct os_consts *c, const struct os_vars *s, unsigned core, const char *barrier,
                     char *why, size_t len)
{
    unsigned n = os_sbuf_len(c, s, core);
    return !n || model_refuse(why, len, "%s waits for core %u's store buffer to drain (%u store%s)", barrier, core, n,
                              n > 1 ? "s" : "");
}
