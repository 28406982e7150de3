/*
 * The entry codec of the hardware model (private to model/hw_*.c): the only place that knows
 * where the bits of a paging-structure entry are. hardware.rs: PageDirectoryEntry::view,
 * all_mb0_bits_are_zero; SDM vol. 3A 4.5, tables 4-14 (PML4E), 4-15/4-16 (PDPTE: 1 GiB page /
 * directory), 4-17/4-18 (PDE: 2 MiB page / table), 4-19 (PTE).
 *
 * static inline so that the walk and the interpretation decode without calls.
 */
#ifndef X86PT_MODEL_HW_CODEC_H
#define X86PT_MODEL_HW_CODEC_H

#include "hardware.h"

/* definitions_t.rs: bitmask_inc!(low, high) = bits low..high inclusive. */
static inline uint64_t hw_bitmask_inc(unsigned low, unsigned high)
{
    return (~UINT64_C(0) >> (63 - high)) & (~UINT64_C(0) << low);
}

/* hardware.rs: all_mb0_bits_are_zero, with the SDM's rows (vol. 3A 4.5, tables 4-14..4-19):
 *   layer 0 (PML4E):          51:M (beyond MAXPHYADDR), 7 (PS is reserved in a PML4E)
 *   layer 1, PS (1 GiB page): 51:M, 29:13 (address bits below 1 GiB alignment; 12 is PAT)
 *   layer 1, directory:       51:M, 7 (x86pt checks PS before calling: never set here)
 *   layer 2, PS (2 MiB page): 51:M, 20:13
 *   layer 2, directory:       51:M, 7
 *   layer 3 (PTE):            51:M
 * The spec also takes bits 52..62 as must-be-zero at layers 2 and 3, where the SDM makes them
 * ignored (58..52) and protection keys (62..59) in a page, ignored in a directory entry;
 * x86pt extends the spec to the SDM there (issue 12: kernels keep software bits and keys in
 * leaves), as QEMU does (QEMU-FACTS.md). A non-present entry has no reserved bits.
 * (hw_bitmask_inc(52, 51) is 0: M = 52 leaves no address bit reserved.) */
static inline bool hw_codec_mb0_ok(uint64_t v, unsigned layer, unsigned m)
{
    if (!(v & HW_BIT_P))
        return true;
    uint64_t beyond = m < 52 ? hw_bitmask_inc(m, 51) : 0;
    switch (layer) {
    case 0:
        return !(v & beyond) && !(v & HW_BIT_PS);
    case 1:
        if (v & HW_BIT_PS)
            return !(v & beyond) && !(v & hw_bitmask_inc(13, 29));
        return !(v & beyond) && !(v & HW_BIT_PS);
    case 2:
        if (v & HW_BIT_PS)
            return !(v & beyond) && !(v & hw_bitmask_inc(13, 20));
        return !(v & beyond) && !(v & HW_BIT_PS);
    default:
        return !(v & beyond);
    }
}

/* Does a present, valid entry at this layer map a page (rather than point to a directory)? */
static inline bool hw_codec_is_page(uint64_t v, unsigned layer)
{
    return layer == 3 || (layer != 0 && (v & HW_BIT_PS));
}

/* hardware.rs: MASK_ADDR / MASK_L1_PG_ADDR / MASK_L2_PG_ADDR / MASK_L3_PG_ADDR. */
static inline uint64_t hw_codec_addr(uint64_t v, unsigned layer, bool page, unsigned m)
{
    unsigned low = 12;
    if (page && layer == 1)
        low = 30;
    else if (page && layer == 2)
        low = 21;
    return v & hw_bitmask_inc(low, m - 1);
}

/* hardware.rs: PageDirectoryEntry::view */
static inline struct hw_pde hw_codec_view(uint64_t v, unsigned layer, unsigned m)
{
    struct hw_pde d = { .kind = HW_PDE_EMPTY };
    if (!(v & HW_BIT_P) || !hw_codec_mb0_ok(v, layer, m))
        return d;
    bool page = hw_codec_is_page(v, layer);
    d.kind = page ? HW_PDE_PAGE : HW_PDE_DIRECTORY;
    d.addr = hw_codec_addr(v, layer, page, m);
    d.flag_P = true;
    d.flag_RW = v & HW_BIT_RW;
    d.flag_US = v & HW_BIT_US;
    d.flag_PWT = v & HW_BIT_PWT;
    d.flag_PCD = v & HW_BIT_PCD;
    d.flag_A = v & HW_BIT_A;
    d.flag_XD = v & HW_BIT_XD;
    if (page) {
        d.flag_D = v & HW_BIT_D;
        d.flag_G = v & HW_BIT_G;
        /* MASK_L3_PG_FLAG_PAT is bit 7 (where PS is elsewhere); MASK_PG_FLAG_PAT bit 12. */
        d.flag_PAT = layer == 3 ? (v & HW_BIT_PS) : (v & HW_BIT_PAT_LARGE);
        d.pkey = (uint8_t)((v >> 59) & 15);
        d.software = (uint16_t)(((v >> 9) & 7) | ((v >> 52) & 0x7f) << 3);
    }
    return d;
}

/* x86pt's extension: the attributes a page's leaf entry gives its translation (SDM vol. 3A
 * 11.12.3: the memory type is the PAT entry PAT:PCD:PWT of the leaf; the directories' PWT/PCD
 * only type the accesses to the next paging structure, 4.9.2). */
static inline void hw_codec_leaf_attrs(const struct hw_pde *d, struct hw_flags *f)
{
    f->pat_index = (uint8_t)((d->flag_PAT ? 4 : 0) | (d->flag_PCD ? 2 : 0) | (d->flag_PWT ? 1 : 0));
    f->global = d->flag_G;
    f->pkey = d->pkey;
    f->software = d->software;
    f->attrs_either = false;
}

/* hardware.rs: l0_bits! .. l3_bits!: the 9-bit index of vaddr at a layer. */
static inline unsigned hw_codec_index(uint64_t vaddr, unsigned layer)
{
    return (unsigned)((vaddr >> (39 - 9 * layer)) & 511);
}

#endif /* X86PT_MODEL_HW_CODEC_H */
