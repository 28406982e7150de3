/* Entry decoding: hardware.rs PageDirectoryEntry::view and all_mb0_bits_are_zero (the bit
 * layout itself is in hw_codec.h). */
#include "hw_codec.h"

#include <assert.h>

static void check_args(unsigned layer, unsigned maxphyaddr)
{
    /* Contract (hardware.rs: `recommends self.layer@ <= 3`, axiom_max_phyaddr_width_facts). */
    assert(layer < HW_NUM_LAYERS);
    assert(maxphyaddr >= HW_MAXPHYADDR_WIDTH_MIN && maxphyaddr <= HW_MAXPHYADDR_WIDTH_MAX);
    (void)layer;
    (void)maxphyaddr;
}

bool hw_all_mb0_bits_are_zero(uint64_t entry, unsigned layer, unsigned maxphyaddr)
{
    check_args(layer, maxphyaddr);
    return hw_codec_mb0_ok(entry, layer, maxphyaddr);
}

struct hw_pde hw_pde_view(uint64_t entry, unsigned layer, unsigned maxphyaddr)
{
    check_args(layer, maxphyaddr);
    return hw_codec_view(entry, layer, maxphyaddr);
}
