/*
 * Entry decoding (hardware.rs PageDirectoryEntry::view, all_mb0_bits_are_zero) against vectors
 * derived by hand from the SDM vol. 3A 4.5, tables 4-14 .. 4-20 (4-level paging):
 *
 *   PML4E   : 0 P, 1 R/W, 2 U/S, 3 PWT, 4 PCD, 5 A, 6 ign, 7 PS (reserved, must be 0), 8-11 ign,
 *             12..M-1 address of PDPT, M..51 reserved, 52-62 ign, 63 XD
 *   PDPTE 1G: 0-5 as above, 6 D, 7 PS=1, 8 G, 9-11 ign, 12 PAT, 13-29 reserved,
 *             30..M-1 frame, M..51 reserved, 52-58 ign, 59-62 protection key, 63 XD
 *   PDPTE dir: as PML4E but bit 7 = PS = 0
 *   PDE 2M  : as PDPTE 1G with 13-20 reserved, 21..M-1 frame
 *   PDE dir : as PML4E
 *   PTE     : 0-6 as 1G page, 7 PAT, 8 G, 12..M-1 frame, M..51 reserved, 52-58 ign, 59-62 key
 * The spec (hardware.rs) reserves bits 52..62 at layers 2 and 3 too; x86pt's model follows the
 * SDM there (issue 12: software bits and protection keys) and these tests pin that choice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hardware.h"

static const unsigned widths[] = { 32, 36, 40, 46, 52 };
#define NWIDTHS (sizeof widths / sizeof widths[0])

/* Literal vectors: a present PML4E decodes to a Directory with every flag. */
static void test_pml4e_literal(void **state)
{
    (void)state;
    /* 0x8000_0000_1234_5027: XD, address 0x12345000, A, US, RW, P. */
    struct hw_pde d = hw_pde_view(UINT64_C(0x8000000012345027), 0, 40);
    assert_int_equal(d.kind, HW_PDE_DIRECTORY);
    assert_int_equal(d.addr, 0x12345000);
    assert_true(d.flag_P && d.flag_RW && d.flag_US && d.flag_A && d.flag_XD);
    assert_false(d.flag_PWT || d.flag_PCD || d.flag_D || d.flag_G || d.flag_PAT);
    /* Bits 6, 8-11 and 52-62 of a PML4E are ignored. */
    d = hw_pde_view(UINT64_C(0x7ff0000012345f41), 0, 40);
    assert_int_equal(d.kind, HW_PDE_DIRECTORY);
    assert_int_equal(d.addr, 0x12345000);
    assert_false(d.flag_RW || d.flag_US || d.flag_A || d.flag_XD);
}

/* A PML4E with PS (bit 7) set has a reserved bit set: Empty. */
static void test_pml4e_ps_is_reserved(void **state)
{
    (void)state;
    assert_int_equal(hw_pde_view(0x1000 | 0x80 | 1, 0, 52).kind, HW_PDE_EMPTY);
    assert_false(hw_all_mb0_bits_are_zero(0x1000 | 0x80 | 1, 0, 52));
}

/* A 1 GiB page: frame from bits 30..M-1, PAT from bit 12, D, G. */
static void test_pdpte_1g_literal(void **state)
{
    (void)state;
    /* frame 0x40000000, PAT, G, PS, D, A, PCD, PWT, P (read-only, supervisor). */
    struct hw_pde d = hw_pde_view(UINT64_C(0x40001000 | 0x100 | 0x80 | 0x40 | 0x20 | 0x18 | 1), 1,
                                  36);
    assert_int_equal(d.kind, HW_PDE_PAGE);
    assert_int_equal(d.addr, 0x40000000);
    assert_true(d.flag_PAT && d.flag_G && d.flag_D && d.flag_A && d.flag_PCD && d.flag_PWT);
    assert_false(d.flag_RW || d.flag_US || d.flag_XD);
}

/* A 2 MiB page: frame from bits 21..M-1, PAT from bit 12. */
static void test_pde_2m_literal(void **state)
{
    (void)state;
    struct hw_pde d = hw_pde_view(UINT64_C(0x80000000ffe00000) | 0x1000 | 0x80 | 7, 2, 32);
    assert_int_equal(d.kind, HW_PDE_PAGE);
    assert_int_equal(d.addr, 0xffe00000);
    assert_true(d.flag_PAT && d.flag_RW && d.flag_US && d.flag_XD);
}

/* A 4 KiB page: PAT is bit 7 (the PS position), G bit 8. */
static void test_pte_literal(void **state)
{
    (void)state;
    struct hw_pde d = hw_pde_view(UINT64_C(0xfffffffff000) | 0x180 | 3, 3, 52);
    assert_int_equal(d.kind, HW_PDE_PAGE);
    assert_int_equal(d.addr, UINT64_C(0xfffffffff000));
    assert_true(d.flag_PAT && d.flag_G && d.flag_RW);
    assert_false(d.flag_US);
}

/* PD and PDPT entries with PS clear are directories; D/G/PAT are not directory flags. */
static void test_directory_entries(void **state)
{
    (void)state;
    for (unsigned layer = 0; layer < 3; layer++) {
        struct hw_pde d = hw_pde_view(0x5000 | 0x140 | 7, layer, 32);
        assert_int_equal(d.kind, HW_PDE_DIRECTORY);
        assert_int_equal(d.addr, 0x5000);
        assert_false(d.flag_D || d.flag_G || d.flag_PAT);
    }
}

/* A non-present entry is Empty whatever its other bits, and has no reserved bits. */
static void test_not_present(void **state)
{
    (void)state;
    for (unsigned layer = 0; layer < 4; layer++) {
        assert_int_equal(hw_pde_view(~UINT64_C(1), layer, 32).kind, HW_PDE_EMPTY);
        assert_true(hw_all_mb0_bits_are_zero(~UINT64_C(1), layer, 32));
        assert_int_equal(hw_pde_view(0, layer, 52).kind, HW_PDE_EMPTY);
    }
}

/* The four entry formats, by (layer, PS). */
enum format { F_PML4E, F_PDPTE_1G, F_PDPTE_DIR, F_PDE_2M, F_PDE_DIR, F_PTE };

/* What bit b is in a format, for width m (from the table at the top of this file). */
enum bit_class { B_FLAG, B_ADDR, B_RESERVED, B_IGNORED };

static enum bit_class classify(enum format f, unsigned b, unsigned m)
{
    bool page = f == F_PDPTE_1G || f == F_PDE_2M || f == F_PTE;
    unsigned addr_low = f == F_PDPTE_1G ? 30 : f == F_PDE_2M ? 21 : 12;
    unsigned reserved_top = 51;
    if (b <= 5 || b == 63)
        return B_FLAG;  /* P RW US PWT PCD A, XD */
    if (b == 6 || b == 8)
        return page ? B_FLAG : B_IGNORED;  /* D, G */
    if (b == 7) /* PAT in a PTE; PS (the format itself) at layers 1, 2; reserved in a PML4E */
        return f == F_PML4E ? B_RESERVED : B_FLAG;
    if (b == 12 && (f == F_PDPTE_1G || f == F_PDE_2M))
        return B_FLAG;  /* PAT of a large page */
    if (f == F_PDPTE_1G && b >= 13 && b <= 29)
        return B_RESERVED;
    if (f == F_PDE_2M && b >= 13 && b <= 20)
        return B_RESERVED;
    if (b >= addr_low && b < m)
        return B_ADDR;
    if (b >= m && b <= reserved_top)
        return B_RESERVED;
    return B_IGNORED;  /* 9-11, 52..62 (keys and software bits are decoded, see test_leaf_attributes) */
}

static unsigned format_layer(enum format f)
{
    static const unsigned layer[] = { 0, 1, 1, 2, 2, 3 };
    return layer[f];
}

static uint64_t format_base(enum format f)
{
    /* P plus PS where the format needs it. */
    return (f == F_PDPTE_1G || f == F_PDE_2M) ? 0x81 : 1;
}

/* Every bit of every format at every width: a reserved bit makes the entry Empty and fails
 * all_mb0_bits_are_zero; an address bit lands in addr; any other bit keeps the entry valid. */
static void test_every_bit_every_width(void **state)
{
    (void)state;
    for (unsigned wi = 0; wi < NWIDTHS; wi++) {
        unsigned m = widths[wi];
        for (enum format f = F_PML4E; f <= F_PTE; f++) {
            unsigned layer = format_layer(f);
            enum hw_pde_kind kind =
                (f == F_PDPTE_1G || f == F_PDE_2M || f == F_PTE) ? HW_PDE_PAGE : HW_PDE_DIRECTORY;
            for (unsigned b = 1; b < 64; b++) {
                uint64_t base = format_base(f), bit = UINT64_C(1) << b;
                if (bit & base)
                    continue;
                uint64_t v = base | bit;
                struct hw_pde d = hw_pde_view(v, layer, m);
                switch (classify(f, b, m)) {
                case B_RESERVED:
                    assert_false(hw_all_mb0_bits_are_zero(v, layer, m));
                    assert_int_equal(d.kind, HW_PDE_EMPTY);
                    break;
                case B_ADDR:
                    assert_true(hw_all_mb0_bits_are_zero(v, layer, m));
                    assert_int_equal(d.kind, kind);
                    assert_int_equal(d.addr, bit);
                    break;
                case B_FLAG:
                case B_IGNORED:
                    if (f == F_PDPTE_DIR || f == F_PDE_DIR)
                        if (b == 7)
                            break; /* PS: turns the entry into a page; tested above */
                    assert_true(hw_all_mb0_bits_are_zero(v, layer, m));
                    assert_int_equal(d.kind, kind);
                    assert_int_equal(d.addr, 0);
                    break;
                }
            }
        }
    }
}

/* Literal reserved-bit vectors: the boundary bits M-1 (address) and M (reserved). */
static void test_maxphyaddr_boundaries(void **state)
{
    (void)state;
    /* M = 36: bit 35 is an address bit, bit 36 reserved. */
    assert_int_equal(hw_pde_view(UINT64_C(0x800000001), 3, 36).addr, UINT64_C(0x800000000));
    assert_int_equal(hw_pde_view(UINT64_C(0x1000000001), 3, 36).kind, HW_PDE_EMPTY);
    /* M = 46: bit 46 reserved in a PML4E, 45 allowed. */
    assert_int_equal(hw_pde_view(UINT64_C(0x400000000001), 0, 46).kind, HW_PDE_EMPTY);
    assert_int_equal(hw_pde_view(UINT64_C(0x200000000001), 0, 46).kind, HW_PDE_DIRECTORY);
    /* M = 52: bit 51 is an address bit at every layer, bits 52..62 never reserved. */
    assert_int_equal(hw_pde_view(UINT64_C(0x8000000000001), 1, 52).addr, UINT64_C(0x8000000000000));
    assert_int_equal(hw_pde_view(UINT64_C(0x10000000000001), 1, 52).kind, HW_PDE_DIRECTORY);
    assert_int_equal(hw_pde_view(UINT64_C(0x10000000000001), 2, 52).kind, HW_PDE_DIRECTORY);
    assert_int_equal(hw_pde_view(UINT64_C(0x4000000000000001), 3, 52).kind, HW_PDE_PAGE);
    /* 1 GiB page with bit 29 (reserved) / 2 MiB page with bit 20 (reserved) / bit 13. */
    assert_int_equal(hw_pde_view(0x20000081, 1, 40).kind, HW_PDE_EMPTY);
    assert_int_equal(hw_pde_view(0x100081, 2, 40).kind, HW_PDE_EMPTY);
    assert_int_equal(hw_pde_view(0x2081, 2, 40).kind, HW_PDE_EMPTY);
    assert_int_equal(hw_pde_view(0x200081, 2, 40).addr, 0x200000);
}

/* The leaf attributes x86pt's model decodes (issue 12), hand vectors: PAT index = PAT:PCD:PWT
 * (SDM 11.12.3) with PAT at bit 7 of a PTE and bit 12 of a PDE/PDPTE page; G bit 8; key bits
 * 62..59 (SDM 4.6.2); software field bits 11..9 (low 3) and 58..52 (high 7). */
static void test_leaf_attributes(void **state)
{
    (void)state;
    /* PTE: PAT (bit 7) + PWT -> index 5; G; key 9; software 0x2ad = 1010101 101 */
    struct hw_pde d = hw_pde_view(UINT64_C(0x4d50000000005a89) | 0x100, 3, 46);
    assert_int_equal(d.kind, HW_PDE_PAGE);
    assert_int_equal(d.addr, 0x5000);
    assert_true(d.flag_PAT && d.flag_PWT && !d.flag_PCD && d.flag_G);
    assert_int_equal(d.pkey, 9);
    assert_int_equal(d.software, 0x2ad);
    /* PDE 2 MiB page: bit 12 is PAT, bit 7 is PS; PCD -> index 6; key 15; software 0x3ff */
    d = hw_pde_view(UINT64_C(0xfff0000000401e91), 2, 46);
    assert_int_equal(d.kind, HW_PDE_PAGE);
    assert_int_equal(d.addr, 0x400000);
    assert_true(d.flag_PAT && d.flag_PCD && !d.flag_PWT && !d.flag_G && d.flag_XD);
    assert_int_equal(d.pkey, 15);
    assert_int_equal(d.software, 0x3ff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pml4e_literal),
        cmocka_unit_test(test_pml4e_ps_is_reserved),
        cmocka_unit_test(test_pdpte_1g_literal),
        cmocka_unit_test(test_pde_2m_literal),
        cmocka_unit_test(test_pte_literal),
        cmocka_unit_test(test_directory_entries),
        cmocka_unit_test(test_not_present),
        cmocka_unit_test(test_every_bit_every_width),
        cmocka_unit_test(test_maxphyaddr_boundaries),
        cmocka_unit_test(test_leaf_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
