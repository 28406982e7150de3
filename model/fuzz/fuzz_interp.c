/* libFuzzer target (make fuzz-model; clang only): the input is a physical-memory image; its
 * first byte picks MAXPHYADDR and its next two the cr3 frame; the property is
 * fuzz_check_image's (no crash, no hang, interp and walk agree). */
#include <stdlib.h>
#include <string.h>

#include "../tests/hw_fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned width = 32 + data[0] % 21;
    uint64_t cr3 = (uint64_t)(data[1] | data[2] << 8) % 64 * 4096;
    data += 3;
    size -= 3;
    size_t bytes = (size + 4095) / 4096 * 4096;
    uint8_t *mem = calloc(1, bytes ? bytes : 4096);
    if (!mem)
        return 0;
    memcpy(mem, data, size);
    struct hw_pt_view pt = { hw_mem_view_flat(mem, bytes), cr3, width };
    uint64_t probes[32];
    for (unsigned i = 0; i < 32; i++)
        probes[i] = i < size / 8 ? ((const uint64_t *)(const void *)mem)[i] : i * 0x1234567000;
    if (!fuzz_check_image(&pt, probes, 32))
        abort();
    free(mem);
    return 0;
}
