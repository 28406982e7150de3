/*
 * The entry codec: the only place that knows bit positions (Intel SDM vol. 3A,
 * §4.5, tables 4-14 .. 4-20; spec_t/hardware.rs: PageDirectoryEntry::view).
 *
 * Layers are numbered as in the spec: 0 = PML4, 1 = PDPT, 2 = PD, 3 = PT.
 *
 *   63  62..52   51..M  M-1..12  11..9  8  7     6  5  4   3   2  1  0
 *   XD  ignored  MBZ    address  ign.   G  PS/PAT D  A  PCD PWT US RW P
 *
 * A 2 MiB / 1 GiB leaf keeps PAT in bit 12, so its address starts at bit 21 / 30.
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

static inline uint64_t page_entry_encode(uint64_t pa, unsigned layer, unsigned flags)
{
    return pa | ENTRY_P | perms_encode(flags) | (layer == PT_LEAF_LAYER ? 0 : ENTRY_PS);
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

/* Must-be-zero bits of a present entry (hardware.rs: all_mb0_bits_are_zero),
 * for a MAXPHYADDR width m. Bits m..51 everywhere; at PD and PT the spec makes
 * m..62 reserved; PS in a PML4 entry; the low address bits of a huge page. */
static inline uint64_t bits_between(unsigned lo, unsigned hi)
{
    return ((hi >= 63 ? ~UINT64_C(0) : (UINT64_C(1) << (hi + 1)) - 1)) & ~((UINT64_C(1) << lo) - 1);
}

static inline uint64_t entry_mbz_mask(uint64_t e, unsigned layer, unsigned maxphyaddr)
{
    uint64_t mask = bits_between(maxphyaddr, layer >= 2 ? 62u : 51u);
    if (layer == 0)
        mask |= ENTRY_PS;
    else if (layer == 1 && (e & ENTRY_PS))
        mask |= bits_between(13, 29);
    else if (layer == 2 && (e & ENTRY_PS))
        mask |= bits_between(13, 20);
    return mask;
}

#endif /* X86PT_ENTRY_H */
