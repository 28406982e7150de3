/*
 * The entry codec: the only place that knows bit positions (Intel SDM vol. 3A,
 * §4.5, tables 4-14 .. 4-20; spec_t/hardware.rs: PageDirectoryEntry::view).
 *
 * Layers are numbered as in the spec: 0 = PML4, 1 = PDPT, 2 = PD, 3 = PT.
 *
 *   63  62..59  58..52  51..M  M-1..12  11..9  8  7     6  5  4   3   2  1  0
 *   XD  PK      soft.   MBZ    address  soft.  G  PS/PAT D  A  PCD PWT US RW P
 *
 * A 2 MiB / 1 GiB leaf keeps PAT in bit 12, so its address starts at bit 21 / 30.
 * In a directory entry bits 62..52 and 11..8 are ignored, and the library writes
 * its directory entries as P|RW|US.
 */
#ifndef X86PT_ENTRY_H
#define X86PT_ENTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "x86pt/x86pt.h"

#define PT_LAYERS 4u
#define PT_ENTRIES 512u
#define PT_LEAF_LAYER 3u

#define ENTRY_P (UINT64_C(1) << 0)
#define ENTRY_RW (UINT64_C(1) << 1)
#define ENTRY_US (UINT64_C(1) << 2)
#define ENTRY_PWT (UINT64_C(1) << 3)
#define ENTRY_PCD (UINT64_C(1) << 4)
#define ENTRY_A (UINT64_C(1) << 5)
#define ENTRY_D (UINT64_C(1) << 6)
#define ENTRY_PS (UINT64_C(1) << 7)   /* layers 1 and 2; bit 7 is PAT at layer 3 */
#define ENTRY_G (UINT64_C(1) << 8)
#define ENTRY_HUGE_PAT (UINT64_C(1) << 12) /* PAT of a 2 MiB / 1 GiB page */
#define ENTRY_XD (UINT64_C(1) << 63)
#define ENTRY_PERMS (ENTRY_RW | ENTRY_US | ENTRY_XD)
#define ENTRY_SOFT_LOW_SHIFT 9u   /* software field bits 2..0 -> entry bits 11..9 */
#define ENTRY_SOFT_HIGH_SHIFT 52u /* software field bits 9..3 -> entry bits 58..52 */
#define ENTRY_PKEY_SHIFT 59u
#define ENTRY_SOFT_BITS ((UINT64_C(7) << ENTRY_SOFT_LOW_SHIFT) | (UINT64_C(0x7f) << ENTRY_SOFT_HIGH_SHIFT))
#define ENTRY_PKEY_BITS (UINT64_C(15) << ENTRY_PKEY_SHIFT)
/* Directories are most permissive; restrictions live in the leaf (spec GUIDE). */
#define ENTRY_DIR_BITS (ENTRY_P | ENTRY_RW | ENTRY_US)

_Static_assert(X86PT_PAGE_1G == UINT64_C(1) << 30, "1 GiB page");

/* Bits of the virtual address translated below an entry of this layer:
 * 39 (512 GiB), 30 (1 GiB), 21 (2 MiB), 12 (4 KiB). */
static inline unsigned layer_shift(unsigned layer) { return 39u - 9u * layer; }

static inline uint64_t layer_size(unsigned layer) { return UINT64_C(1) << layer_shift(layer); }

static inline unsigned layer_index(uint64_t va, unsigned layer)
{
    return (unsigned)(va >> layer_shift(layer)) & (PT_ENTRIES - 1u);
}

static inline bool entry_present(uint64_t e) { return (e & ENTRY_P) != 0; }

/* For a present entry: does it map a page (rather than point to a directory)? */
static inline bool entry_is_page(uint64_t e, unsigned layer)
{
    return layer == PT_LEAF_LAYER || (layer != 0 && (e & ENTRY_PS) != 0);
}

/* Mask of address bits an entry of this kind holds, below bit 52. */
static inline uint64_t entry_addr_mask(uint64_t e, unsigned layer)
{
    unsigned low = entry_is_page(e, layer) ? layer_shift(layer) : 12u;
    return ((UINT64_C(1) << 52) - 1) & ~((UINT64_C(1) << low) - 1);
}

static inline uint64_t entry_addr(uint64_t e, unsigned layer) { return e & entry_addr_mask(e, layer); }

static inline uint64_t dir_entry_encode(uint64_t dir_pa) { return dir_pa | ENTRY_DIR_BITS; }

/* x86pt's flag bits are laid out so that writable and user shift straight onto
 * RW and US, and no_execute onto XD: the codec has no branches. */
_Static_assert(X86PT_WRITABLE << 1 == ENTRY_RW && X86PT_USER << 1 == ENTRY_US, "flag layout");
_Static_assert((uint64_t)X86PT_NO_EXECUTE << 61 == ENTRY_XD, "flag layout");

static inline uint64_t perms_encode(unsigned flags)
{
    return ((uint64_t)(flags & (X86PT_WRITABLE | X86PT_USER)) << 1) | ((uint64_t)(flags & X86PT_NO_EXECUTE) << 61);
}

/* The PAT bit of a page at this layer (SDM vol. 3A 4.5, tables 4-15, 4-17, 4-19). */
static inline uint64_t entry_pat_bit(unsigned layer) { return layer == PT_LEAF_LAYER ? ENTRY_PS : ENTRY_HUGE_PAT; }

/* Every bit of a leaf that x86pt's flags describe: permissions and attributes. */
static inline uint64_t leaf_flag_bits(unsigned layer)
{
    return ENTRY_PERMS | ENTRY_PWT | ENTRY_PCD | entry_pat_bit(layer) | ENTRY_G | ENTRY_SOFT_BITS | ENTRY_PKEY_BITS;
}

/* The attribute bits of a leaf at this layer (x86pt.h: memory type as PAT:PCD:PWT). */
static inline uint64_t attrs_encode(unsigned flags, unsigned layer)
{
    unsigned type = X86PT_MEMTYPE_OF(flags), soft = X86PT_SOFTWARE_OF(flags);
#if X86PT_MUTANT == 31 /* mutant 31 (check/mutants.def): PAT at bit 7 at every level */
    uint64_t pat = (type & 4u) ? ENTRY_PS : 0;
    (void)layer;
#else
    uint64_t pat = (type & 4u) ? entry_pat_bit(layer) : 0;
#endif
    return ((type & 1u) ? ENTRY_PWT : 0) | ((type & 2u) ? ENTRY_PCD : 0) | pat | ((flags & X86PT_GLOBAL) ? ENTRY_G : 0) |
           ((uint64_t)(soft & 7u) << ENTRY_SOFT_LOW_SHIFT) | ((uint64_t)(soft >> 3) << ENTRY_SOFT_HIGH_SHIFT) |
           ((uint64_t)X86PT_PKEY_OF(flags) << ENTRY_PKEY_SHIFT);
}

/* The attributes of a leaf at this layer, in x86pt flag form. */
static inline unsigned entry_attrs(uint64_t e, unsigned layer)
{
    unsigned type = ((e & ENTRY_PWT) ? 1u : 0u) | ((e & ENTRY_PCD) ? 2u : 0u) | ((e & entry_pat_bit(layer)) ? 4u : 0u);
    unsigned soft = (unsigned)((e >> ENTRY_SOFT_LOW_SHIFT) & 7u) | (unsigned)((e >> ENTRY_SOFT_HIGH_SHIFT) & 0x7fu) << 3;
    return X86PT_MEMTYPE(type) | ((e & ENTRY_G) ? (unsigned)X86PT_GLOBAL : 0u) | X86PT_SOFTWARE(soft) |
           X86PT_PKEY((unsigned)(e >> ENTRY_PKEY_SHIFT) & 15u);
}

/* A leaf's permission and attribute bits for flags at this layer. */
static inline uint64_t leaf_flags_encode(unsigned flags, unsigned layer)
{
    return perms_encode(flags) | attrs_encode(flags, layer);
}

static inline uint64_t page_entry_encode(uint64_t pa, unsigned layer, unsigned flags)
{
    return pa | ENTRY_P | leaf_flags_encode(flags, layer) | (layer == PT_LEAF_LAYER ? 0 : ENTRY_PS);
}

/* The permissions one entry contributes, in x86pt flag form (XD as no_execute). */
static inline unsigned entry_flags(uint64_t e)
{
    return (unsigned)((e >> 1) & (X86PT_WRITABLE | X86PT_USER)) | (unsigned)((e >> 61) & X86PT_NO_EXECUTE);
}

/* Flags combined along a walk (hardware.rs: valid_pt_walk): writable and user
 * only if every level says so, no_execute if any level does. */
static inline unsigned flags_combine(unsigned along, unsigned here)
{
    unsigned both = along & here & (X86PT_WRITABLE | X86PT_USER);
    return both | ((along | here) & X86PT_NO_EXECUTE);
}

/* Must-be-zero bits of a present entry (SDM vol. 3A 4.5, tables 4-14..4-19),
 * for a MAXPHYADDR width m: bits m..51; PS in a PML4 entry; the low address bits
 * of a huge page. The spec (hardware.rs: all_mb0_bits_are_zero) also reserves
 * bits 52..62 of PD and PT entries, which the SDM makes software bits and keys;
 * x86pt follows the SDM there (issue 12), and so does its model. */
static inline uint64_t bits_between(unsigned lo, unsigned hi)
{
    return ((hi >= 63 ? ~UINT64_C(0) : (UINT64_C(1) << (hi + 1)) - 1)) & ~((UINT64_C(1) << lo) - 1);
}

static inline uint64_t entry_mbz_mask(uint64_t e, unsigned layer, unsigned maxphyaddr)
{
    uint64_t mask = bits_between(maxphyaddr, 51u);
    if (layer == 0)
        mask |= ENTRY_PS;
    else if (layer == 1 && (e & ENTRY_PS))
        mask |= bits_between(13, 29);
    else if (layer == 2 && (e & ENTRY_PS))
        mask |= bits_between(13, 20);
    return mask;
}

#endif /* X86PT_ENTRY_H */
