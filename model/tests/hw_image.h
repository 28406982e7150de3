/* Hand-built page-table images for the model's tests: a flat zeroed buffer standing for
 * physical memory [0, bytes), entries written by physical address. */
#ifndef X86PT_MODEL_TESTS_HW_IMAGE_H
#define X86PT_MODEL_TESTS_HW_IMAGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hardware.h"

struct image {
    uint8_t *mem;
    uint64_t bytes;
};

static inline struct image image_new(uint64_t bytes)
{
    struct image im = { aligned_alloc(4096, bytes), bytes };
    memset(im.mem, 0, bytes);
    return im;
}

static inline void image_free(struct image *im) { free(im->mem); }

static inline void image_set(struct image *im, uint64_t pa, uint64_t v)
{
    memcpy(im->mem + pa, &v, 8);
}

/* Entry `idx` of the table at frame pa. */
static inline void image_entry(struct image *im, uint64_t table, unsigned idx, uint64_t v)
{
    image_set(im, table + 8 * (uint64_t)idx, v);
}

static inline struct hw_pt_view image_view(const struct image *im, uint64_t cr3, unsigned m)
{
    struct hw_pt_view v = { hw_mem_view_flat(im->mem, im->bytes), cr3, m };
    return v;
}

/* vaddr from the four indices (and an offset). */
static inline uint64_t va_of(unsigned i0, unsigned i1, unsigned i2, unsigned i3, uint64_t off)
{
    return (uint64_t)i0 << 39 | (uint64_t)i1 << 30 | (uint64_t)i2 << 21 | (uint64_t)i3 << 12 | off;
}

#endif
