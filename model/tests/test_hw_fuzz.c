/*
 * Randomized robustness of the decoder, walk and interpretation on hostile images: tens of
 * thousands of random memories (random entries, pointers inside and outside memory, cycles,
 * shared subtrees, reserved bits, random cr3 and MAXPHYADDR) never crash or hang, and whenever
 * the interpretation succeeds it agrees with the walk (hw_fuzz_check.h). An alarm turns a hang
 * into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw_fuzz_check.h"
#include "hw_image.h"

static uint64_t rng;
static uint64_t rnd(void)
{
    uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

#define FRAMES 24

/* An entry that is often meaningful: present, pointing to a frame of memory (sometimes a fresh
 * one, to grow trees; sometimes any, to make sharing and cycles; sometimes past the end), with
 * random flags, PS and now and then a reserved or high bit. */
static uint64_t random_entry(unsigned *next_fresh, bool tree)
{
    unsigned kind = (unsigned)(rnd() % 16);
    if (tree && (kind >= 10 || kind == 0)) /* tree-shaped: rarely shared, outside or junk */
        kind = rnd() % 64 ? 4 : kind;
    if (tree && kind >= 4 && kind < 10 && *next_fresh >= FRAMES)
        return (rnd() % 4096) << 21 | 0x80 | 1 | (rnd() & 6); /* a 2 MiB page or a PT entry */
    if (kind == 0)
        return rnd();  /* anything */
    if (kind < 4)
        return 0;
    uint64_t frame;
    if (kind < 10 && *next_fresh < FRAMES)
        frame = (*next_fresh)++;
    else if (kind < 14)
        frame = rnd() % FRAMES;
    else
        frame = FRAMES + rnd() % 4096;  /* outside memory */
    uint64_t v = frame << 12 | 1 | (rnd() & 0x16e);  /* P + random RW US PWT PCD A D */
    if (rnd() % 4 == 0)
        v |= HW_BIT_PS;
    if (rnd() % 4 == 0)
        v |= HW_BIT_XD;
    if (rnd() % 16 == 0)
        v |= UINT64_C(1) << (12 + rnd() % 51);  /* maybe reserved, maybe address */
    return v;
}

static void fill_image(struct image *im)
{
    memset(im->mem, 0, im->bytes);
    unsigned next_fresh = 1;
    bool tree = rnd() % 2;
    unsigned filled = (unsigned)(rnd() % 64) + 1;
    for (unsigned k = 0; k < filled * 8; k++) {
        unsigned f = (unsigned)(rnd() % (next_fresh < FRAMES ? next_fresh : FRAMES));
        image_entry(im, (uint64_t)f << 12, (unsigned)(rnd() % 512), random_entry(&next_fresh, tree));
    }
}

static uint64_t random_probe(const struct image *im)
{
    /* Half: a vaddr made of indices that the image's own entries use. */
    if (rnd() % 2) {
        uint64_t va = 0;
        for (unsigned l = 0; l < 4; l++) {
            const uint64_t *w = (const uint64_t *)(const void *)im->mem;
            unsigned idx = (unsigned)(rnd() % 512);
            for (unsigned t = 0; t < 16; t++) {
                unsigned cand = (unsigned)(rnd() % (FRAMES * 512));
                if (w[cand]) {
                    idx = cand % 512;
                    break;
                }
            }
            va |= (uint64_t)idx << (39 - 9 * l);
        }
        return va | (rnd() % 4096 & ~UINT64_C(7));
    }
    return rnd() % 8 ? rnd() % HW_MAX_BASE : rnd();
}

/* 100,000 random images at random widths: no crash, no hang, walk and interp agree. */
static void test_random_images(void **state)
{
    (void)state;
    static const unsigned widths[] = { 32, 36, 40, 46, 52 };
    struct image im = image_new(FRAMES * 4096);
    unsigned ok_images = 0;
    alarm(50);
    for (unsigned n = 0; n < 100000; n++) {
        rng = UINT64_C(0x5eed) + n;
        fill_image(&im);
        uint64_t cr3 = rnd() % 64 ? 0 : (rnd() % 2 ? rnd() : (FRAMES + 1) << 12);
        struct hw_pt_view pt = image_view(&im, cr3, widths[rnd() % 5]);
        uint64_t probes[64];
        for (unsigned i = 0; i < 64; i++)
            probes[i] = random_probe(&im);
        if (!fuzz_check_image(&pt, probes, 64))
            fail_msg("walk and interp disagree on image %u (seed %#llx)", n,
                     (unsigned long long)(UINT64_C(0x5eed) + n));
        struct hw_interp in = { 0 };
        ok_images += hw_interp_pt_mem(&pt, &in, NULL) == HW_INTERP_OK;
        hw_interp_fini(&in);
    }
    alarm(0);
    printf("100000 random images, %u with a well-formed tree\n", ok_images);
    image_free(&im);
}

/* A fully shared image (every entry of every frame points to frame 0) is refused at once
 * instead of being expanded 512^3 times. */
static void test_fully_shared_image(void **state)
{
    (void)state;
    struct image im = image_new(4096);
    for (unsigned i = 0; i < 512; i++)
        image_entry(&im, 0, i, 7);
    struct hw_pt_view pt = image_view(&im, 0, 40);
    struct hw_interp in = { 0 };
    alarm(5);
    assert_int_equal(hw_interp_pt_mem(&pt, &in, NULL), HW_INTERP_E_SHARED);
    alarm(0);
    assert_int_equal(in.len, 0);
    hw_interp_fini(&in);
    image_free(&im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_images),
        cmocka_unit_test(test_fully_shared_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
