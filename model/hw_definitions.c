/* definitions_t.rs: the parts the hardware model needs (overlap, PageTableEntry equality) and
 * the conversion between canonical x86-64 addresses and the spec's 48-bit numbers. */
#include "hardware.h"

/* definitions_t.rs: overlap */
bool hw_overlap(struct hw_mem_region r1, struct hw_mem_region r2)
{
    if (r1.base <= r2.base)
        return r1.base == r2.base || r2.base < r1.base + r1.size;
    return r1.base < r2.base + r2.size;
}

bool hw_attrs_equal(struct hw_flags a, struct hw_flags b)
{
    return a.pat_index == b.pat_index && a.global == b.global && a.pkey == b.pkey && a.software == b.software &&
           a.attrs_either == b.attrs_either;
}

uint64_t hw_flags_bits(struct hw_flags f)
{
    return (uint64_t)f.is_writable | (uint64_t)f.is_supervisor << 1 | (uint64_t)f.disable_execute << 2 |
           (uint64_t)f.pat_index << 3 | (uint64_t)f.global << 6 | (uint64_t)f.pkey << 7 | (uint64_t)f.software << 11 |
           (uint64_t)f.attrs_either << 21;
}

bool hw_pte_equal(const struct hw_pte *a, const struct hw_pte *b)
{
    return a->frame.base == b->frame.base && a->frame.size == b->frame.size &&
           a->flags.is_writable == b->flags.is_writable &&
           a->flags.is_supervisor == b->flags.is_supervisor &&
           a->flags.disable_execute == b->flags.disable_execute && hw_attrs_equal(a->flags, b->flags);
}

/* SDM 3.3.7.1: a canonical address has bits 63..47 all equal. The spec's virtual addresses
 * are the low 48 bits (MAX_BASE = 2^48). */
bool hw_vaddr_from_canonical(uint64_t va, uint64_t *spec_vaddr)
{
    uint64_t top = va >> 47;
    if (top != 0 && top != (UINT64_C(1) << 17) - 1)
        return false;
    *spec_vaddr = va & (HW_MAX_BASE - 1);
    return true;
}

uint64_t hw_vaddr_to_canonical(uint64_t spec_vaddr)
{
    return (spec_vaddr & (HW_MAX_BASE >> 1)) ? spec_vaddr | ~(HW_MAX_BASE - 1) : spec_vaddr;
}
