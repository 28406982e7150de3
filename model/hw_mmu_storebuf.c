/*
 * TSO store buffers for page-table memory: mmu-verimm/rl3.rs step_Write, step_Writeback,
 * step_Read (read_from_mem_tso / core_mem), step_Barrier, after "A Better x86 Memory Model:
 * x86-TSO" as rl3 is.
 *
 * A core's page-table store enters its FIFO buffer; the core's own loads and walks see its
 * newest buffered value for an address, every other core sees memory only; Writeback moves
 * the oldest store to memory. Locked read-modify-writes (CMPXCHG, XCHG) and fences act on
 * memory and are enabled only with an empty buffer, as rl3's Barrier and Invlpg are. On
 * hardware they drain the buffer themselves; refusing instead and leaving the drain to
 * Writeback steps is at least as hostile, since other cores may act between those steps.
 * With mmu_sbuf = 0 every core's buffer stays empty and a store goes straight to memory.
 */
#include "hw_codec.h"

#include <string.h>

/* The checks every page-table word access makes. */
static enum hw_step_status pt_word_checks(const struct hw_consts *c, const struct hw_vars *s,
                                          struct hw_core core, uint64_t pa)
{
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (!hw_aligned(pa, HW_WORD_SIZE))
        return HW_STEP_E_MISALIGNED;
    if (pa >= hw_pmem_bytes(&s->global_pt.mem))
        return HW_STEP_E_OUTSIDE;
    return HW_STEP_OK;
}

static unsigned sbuf_len(const struct hw_consts *c, const struct hw_vars *s,
                         struct hw_core core)
{
    const struct hw_mmu_core *m = hw_core_mmu_const(c, s, core);
    return m ? m->nsbuf : 0;
}

/* rl3.rs: core_mem(core).read(addr), the value read_from_mem_tso starts from. */
uint64_t hw_pt_load(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core,
                    uint64_t pa)
{
    if (pt_word_checks(c, s, core, pa) != HW_STEP_OK)
        return 0;
    const struct hw_mmu_core *m = hw_core_mmu_const(c, s, core);
    for (unsigned i = m ? m->nsbuf : 0; i-- > 0;)
        if (m->sbuf[i].pa == pa)
            return m->sbuf[i].value;
    return hw_pmem_read(&s->global_pt.mem, pa);
}

/* s2 = s1 with the word at pa of page-table memory set to value. */
static enum hw_step_status store_to_memory(const struct hw_vars *s1, uint64_t pa,
                                           uint64_t value, struct hw_vars *s2)
{
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    if (!hw_pmem_write(&s2->global_pt.mem, pa, value)) {
        hw_vars_fini(s2);
        return HW_STEP_E_NOMEM;
    }
    return HW_STEP_OK;
}

/* rl3.rs: step_Write. A full buffer refuses the store (hardware stalls the store until an
 * entry drains: the same behaviours, through a Writeback step first). */
enum hw_step_status hw_step_PTStore(const struct hw_consts *c, const struct hw_vars *s1,
                                    struct hw_core core, uint64_t pa, uint64_t value,
                                    struct hw_vars *s2)
{
    enum hw_step_status st = pt_word_checks(c, s1, core, pa);
    if (st != HW_STEP_OK)
        return st;
    if (!c->mmu_sbuf || !s1->mmu)
        return store_to_memory(s1, pa, value, s2);
    struct hw_mmu_core m = *hw_core_mmu_const(c, s1, core);
    if (m.nsbuf >= c->mmu_sbuf)
        return HW_STEP_E_FULL;
    m.sbuf[m.nsbuf].pa = pa;
    m.sbuf[m.nsbuf].value = value;
    m.nsbuf++;
    return hw_mmu_commit(c, s1, core, &m, s2);
}

/* The common part of the locked operations: checks, empty buffer, the old word. */
static enum hw_step_status locked_checks(const struct hw_consts *c, const struct hw_vars *s1,
                                         struct hw_core core, uint64_t pa, uint64_t *old)
{
    enum hw_step_status st = pt_word_checks(c, s1, core, pa);
    if (st != HW_STEP_OK)
        return st;
    if (sbuf_len(c, s1, core))
        return HW_STEP_E_SBUF_NOT_EMPTY;
    *old = hw_pmem_read(&s1->global_pt.mem, pa);
    return HW_STEP_OK;
}

/* LOCK CMPXCHG: atomically on memory, old word out, desired in only if old == expected (a
 * failed compare is still a step: the instruction ran). */
enum hw_step_status hw_step_PTCas(const struct hw_consts *c, const struct hw_vars *s1,
                                  struct hw_core core, uint64_t pa, uint64_t expected,
                                  uint64_t desired, struct hw_vars *s2, uint64_t *observed)
{
    uint64_t old;
    enum hw_step_status st = locked_checks(c, s1, core, pa, &old);
    if (st != HW_STEP_OK)
        return st;
    st = store_to_memory(s1, pa, old == expected ? desired : old, s2);
    if (st == HW_STEP_OK)
        *observed = old;
    return st;
}

/* XCHG with memory (always locked on x86). */
enum hw_step_status hw_step_PTXchg(const struct hw_consts *c, const struct hw_vars *s1,
                                   struct hw_core core, uint64_t pa, uint64_t value,
                                   struct hw_vars *s2, uint64_t *old)
{
    uint64_t was;
    enum hw_step_status st = locked_checks(c, s1, core, pa, &was);
    if (st != HW_STEP_OK)
        return st;
    st = store_to_memory(s1, pa, value, s2);
    if (st == HW_STEP_OK)
        *old = was;
    return st;
}

/* rl3.rs: step_Writeback */
enum hw_step_status hw_step_Writeback(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, struct hw_vars *s2)
{
    if (!c->mmu_sbuf || !s1->mmu)
        return HW_STEP_E_DISABLED;
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    struct hw_mmu_core m = *hw_core_mmu_const(c, s1, core);
    if (!m.nsbuf)
        return HW_STEP_E_SBUF_EMPTY;
    struct hw_sbuf_entry oldest = m.sbuf[0];
    memmove(&m.sbuf[0], &m.sbuf[1], (m.nsbuf - 1u) * sizeof m.sbuf[0]);
    m.nsbuf--;
    memset(&m.sbuf[m.nsbuf], 0, sizeof m.sbuf[0]);
    enum hw_step_status st = hw_mmu_commit(c, s1, core, &m, s2);
    if (st == HW_STEP_OK && !hw_pmem_write(&s2->global_pt.mem, oldest.pa, oldest.value)) {
        hw_vars_fini(s2);
        return HW_STEP_E_NOMEM;
    }
    return st;
}

/* rl3.rs: step_Barrier: enabled only when the core's store buffer is empty. */
enum hw_step_status hw_step_Fence(const struct hw_consts *c, const struct hw_vars *s1,
                                  struct hw_core core, struct hw_vars *s2)
{
    if (!hw_valid_core(c, core))
        return HW_STEP_E_CORE;
    if (sbuf_len(c, s1, core))
        return HW_STEP_E_SBUF_NOT_EMPTY;
    return hw_vars_copy(s2, s1) ? HW_STEP_OK : HW_STEP_E_NOMEM;
}
