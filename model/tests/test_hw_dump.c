/*
 * `x86pt dump` end to end: the binary (X86PT_BIN) run on image files written here. A good image
 * prints its info tlb / info mem lines; every malformed or hostile image and every bad argument
 * gets a message and a non-zero exit status, never a signal.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw_image.h"

#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define PT 0x4000
#define DIR(pa) ((uint64_t)(pa) | 7)

static char image_path[64], out_path[64];

static void write_image(const struct image *im, uint64_t bytes)
{
    FILE *f = fopen(image_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(im->mem, 1, bytes, f), bytes);
    fclose(f);
}

/* Run `x86pt dump ARGS` with the output in out_path; returns the exit status (fails on a
 * signal). */
static int run(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s dump %s >%s 2>&1", X86PT_BIN, args, out_path);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static char *output(void)
{
    static char buf[1 << 16];
    FILE *f = fopen(out_path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static struct image good_image(void)
{
    struct image im = image_new(0x6000);
    image_entry(&im, PML4, 0, DIR(PDPT));
    image_entry(&im, PML4, 256, DIR(0x5000));
    image_entry(&im, PDPT, 0, DIR(PD));
    image_entry(&im, PD, 1, DIR(PT));
    image_entry(&im, PT, 0, 0x100000 | 7 | HW_BIT_A);
    image_entry(&im, PT, 1, 0x200000 | 7);
    image_entry(&im, PT, 2, 0x300000 | 5 | HW_BIT_XD);
    /* PAT (bit 7) + PCD: PAT index 6; key 9 (bits 62..59); software 0x2ad (bits 11..9 = 101,
     * bits 58..52 = 1010101) */
    image_entry(&im, PT, 3, 0x400000 | 5 | 0x80 | HW_BIT_PCD | UINT64_C(0x4d50000000000a00));
    image_entry(&im, 0x5000, 1, 0x40000000 | 0x80 | 3 | HW_BIT_G);
    return im;
}

static int setup(void **state)
{
    (void)state;
    snprintf(image_path, sizeof image_path, "/tmp/x86pt-test-img-%d", (int)getpid());
    snprintf(out_path, sizeof out_path, "/tmp/x86pt-test-out-%d", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(image_path);
    unlink(out_path);
    return 0;
}

/* A good image: one info tlb line per mapping, merged info mem ranges, exit 0. */
static void test_dump_good(void **state)
{
    (void)state;
    struct image im = good_image();
    write_image(&im, im.bytes);
    char args[256];
    snprintf(args, sizeof args, "--cr3 0x1018 --maxphyaddr 40 %s", image_path);
    assert_int_equal(run(args), 0);
    const char *out = output();
    assert_non_null(strstr(out, "0000000000200000: 0000000000100000 4K ----A--UW\n"));
    assert_non_null(strstr(out, "0000000000202000: 0000000000300000 4K X------U-\n"));
    assert_non_null(strstr(out, "0000000000203000: 0000000000400000 4K -----C-U- pat=6 pkey=9 sw=0x2ad\n"));
    assert_non_null(strstr(out, "ffff800040000000: 0000000040000000 1G -GP-----W\n"));
    assert_non_null(strstr(out, "0000000000200000-0000000000202000 0000000000002000 urwx\n"));
    assert_non_null(strstr(out, "0000000000202000-0000000000203000 0000000000001000 ur--\n"));
    assert_non_null(strstr(out, "0000000000203000-0000000000204000 0000000000001000 ur-x\n"));
    assert_non_null(strstr(out, "ffff800040000000-ffff800080000000 0000000040000000 -rwx\n"));
    snprintf(args, sizeof args, "--cr3 0x1000 --mem --dot - %s", image_path);
    assert_int_equal(run(args), 0);
    out = output();
    assert_null(strstr(out, " 4K "));
    assert_non_null(strstr(out, "digraph x86pt"));
    assert_non_null(strstr(out, "4 pages"));
    image_free(&im);
}

/* --svg renders through dot when it is installed. */
static void test_dump_svg(void **state)
{
    (void)state;
    if (system("command -v dot >/dev/null 2>&1") != 0)
        skip();
    struct image im = good_image();
    write_image(&im, im.bytes);
    char args[256], svg[80];
    snprintf(svg, sizeof svg, "%s.svg", out_path);
    snprintf(args, sizeof args, "--cr3 0x1000 --svg %s %s", svg, image_path);
    assert_int_equal(run(args), 0);
    FILE *f = fopen(svg, "r");
    assert_non_null(f);
    char head[256] = { 0 };
    assert_true(fread(head, 1, sizeof head - 1, f) > 0);
    fclose(f);
    unlink(svg);
    assert_non_null(strstr(head, "<svg") ? head : strstr(head, "<?xml"));
    image_free(&im);
}

/* Hostile images: exit 2 with a diagnostic naming the problem. */
static void test_dump_hostile(void **state)
{
    (void)state;
    char args[256];
    struct image im = good_image();
    image_entry(&im, PD, 7, DIR(0x100000)); /* directory past the end of the file */
    write_image(&im, im.bytes);
    snprintf(args, sizeof args, "--cr3 0x1000 %s", image_path);
    assert_int_equal(run(args), 2);
    assert_non_null(strstr(output(), "outside physical memory"));

    image_entry(&im, PD, 7, DIR(PML4)); /* cycle */
    write_image(&im, im.bytes);
    assert_int_equal(run(args), 2);
    assert_non_null(strstr(output(), "already reachable"));

    image_entry(&im, PD, 7, 0);
    write_image(&im, 100); /* truncated: the PML4 at 0x1000 is not in the file */
    assert_int_equal(run(args), 2);
    assert_non_null(strstr(output(), "outside physical memory"));

    write_image(&im, 0); /* empty file */
    assert_int_equal(run(args), 2);
    snprintf(args, sizeof args, "--cr3 0x10000000000 --maxphyaddr 40 %s", image_path);
    assert_int_equal(run(args), 2);
    image_free(&im);
}

/* Bad arguments and missing files: exit 1 with a message. */
static void test_dump_bad_args(void **state)
{
    (void)state;
    struct image im = good_image();
    write_image(&im, im.bytes);
    char args[256];
    assert_int_equal(run("--cr3 0x1000 /nonexistent/image"), 1);
    assert_non_null(strstr(output(), "No such file"));
    snprintf(args, sizeof args, "%s", image_path);
    assert_int_equal(run(args), 1);
    assert_non_null(strstr(output(), "--cr3"));
    snprintf(args, sizeof args, "--cr3 0x1000 --maxphyaddr 60 %s", image_path);
    assert_int_equal(run(args), 1);
    snprintf(args, sizeof args, "--cr3 zz %s", image_path);
    assert_int_equal(run(args), 1);
    snprintf(args, sizeof args, "--cr3 0x1000 --bogus %s", image_path);
    assert_int_equal(run(args), 1);
    assert_int_equal(run("--help"), 0);
    assert_non_null(strstr(output(), "usage"));
    image_free(&im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_good),
        cmocka_unit_test(test_dump_svg),
        cmocka_unit_test(test_dump_hostile),
        cmocka_unit_test(test_dump_bad_args),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
