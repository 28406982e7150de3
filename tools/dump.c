/*
 * x86pt dump: what the MMU sees in a page-table image, judged by the hardware model.
 *
 *   x86pt dump --cr3 ADDR [--maxphyaddr N] [--tlb] [--mem] [--dot FILE] [--svg FILE] IMAGE
 *
 * IMAGE is a raw physical-memory file (byte i = physical address i). Prints, like QEMU's
 * monitor: `info tlb` lines, one per mapping (virtual, physical, size, flags), and `info mem`
 * lines, mappings merged into ranges of contiguous virtual addresses with the same
 * permissions. --dot writes a Graphviz picture of the directory tree ("-" = stdout), --svg
 * renders one through `dot`. A malformed or hostile image (a directory outside the file, a
 * directory reachable twice, a misaligned cr3) gets a one-line diagnostic and exit status 2;
 * bad arguments or I/O errors exit 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "hardware.h"

enum { EXIT_USAGE = 1, EXIT_MALFORMED = 2 };

struct dump_opts {
    const char *image;
    uint64_t cr3;
    bool have_cr3;
    unsigned maxphyaddr;
    bool tlb, mem;
    const char *dot, *svg;
};

void x86pt_dump_usage(const char *prog)
{
    printf("usage: %s dump --cr3 ADDR [--maxphyaddr N] [--tlb] [--mem] [--dot FILE] [--svg FILE] IMAGE\n"
           "  IMAGE           raw physical memory (byte i = physical address i)\n"
           "  --cr3 ADDR      physical address of the PML4 (low 12 bits, PCD/PWT, ignored)\n"
           "  --maxphyaddr N  physical-address width, 32..52 (default 52)\n"
           "  --tlb, --mem    print only the per-mapping (info tlb) or merged (info mem) lines\n"
           "  --dot FILE      write the directory tree as Graphviz (- = stdout)\n"
           "  --svg FILE      render the tree to SVG with dot(1)\n"
           "exit status: 0 ok, 1 usage or I/O error, 2 malformed image\n", prog);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "x86pt dump: %s%s%s\n(see x86pt dump --help)\n", msg, arg ? ": " : "",
            arg ? arg : "");
    return EXIT_USAGE;
}

/* Returns 0, or an exit status (-1: --help printed). */
static int parse_args(int argc, char **argv, struct dump_opts *o)
{
    memset(o, 0, sizeof *o);
    o->maxphyaddr = HW_MAXPHYADDR_WIDTH_MAX;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        uint64_t v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            x86pt_dump_usage("x86pt");
            return -1;
        } else if (!strcmp(a, "--tlb")) {
            o->tlb = true;
        } else if (!strcmp(a, "--mem")) {
            o->mem = true;
        } else if (!strcmp(a, "--cr3") && has_value) {
            if (!parse_u64(argv[++i], &o->cr3))
                return usage_error("bad cr3", argv[i]);
            o->have_cr3 = true;
        } else if (!strcmp(a, "--maxphyaddr") && has_value) {
            if (!parse_u64(argv[++i], &v) || v < HW_MAXPHYADDR_WIDTH_MIN ||
                v > HW_MAXPHYADDR_WIDTH_MAX)
                return usage_error("MAXPHYADDR must be 32..52", argv[i]);
            o->maxphyaddr = (unsigned)v;
        } else if (!strcmp(a, "--dot") && has_value) {
            o->dot = argv[++i];
        } else if (!strcmp(a, "--svg") && has_value) {
            o->svg = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option or missing value", a);
        } else if (!o->image) {
            o->image = a;
        } else {
            return usage_error("more than one image", a);
        }
    }
    if (!o->image)
        return usage_error("no image file", NULL);
    if (!o->have_cr3)
        return usage_error("--cr3 is required", NULL);
    if (!o->tlb && !o->mem)
        o->tlb = o->mem = true;
    return 0;
}

/* The whole file, zero-padded to whole frames. */
static uint8_t *read_image(const char *path, uint64_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "x86pt dump: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, len = 0, n;
    uint8_t *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    bool failed = !buf || ferror(f);
    fclose(f);
    size_t padded = (len + HW_PAGE_SIZE - 1) / HW_PAGE_SIZE * HW_PAGE_SIZE;
    if (!failed && padded > cap) {
        uint8_t *bigger = realloc(buf, padded);
        failed = !bigger;
        buf = bigger ? bigger : buf;
    }
    if (failed) {
        fprintf(stderr, "x86pt dump: %s: cannot read (%s)\n", path, strerror(errno));
        free(buf);
        return NULL;
    }
    memset(buf + len, 0, padded - len);
    *bytes = padded;
    return buf;
}

/* info tlb: "vaddr: paddr size XUGPDACTW-style flags" for one mapping. The letters are QEMU's
 * (X no-execute, G global, P large page, D dirty, A accessed, C cache disable, T write-through,
 * U user, W writable); X, U, W are combined along the walk, the rest are the leaf's. Beyond
 * QEMU's line, and only where not 0: the PAT index (PAT:PCD:PWT, SDM vol. 3A 11.12.3), the
 * protection key and the software field (bits 11..9 low, 58..52 high). */
struct tlb_ctx {
    FILE *out;
};

static bool print_tlb_line(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                           const struct hw_pde *d, const struct hw_pte *p)
{
    struct tlb_ctx *t = ctx;
    static const char *const sizes[] = { "512G", "1G", "2M", "4K" };
    (void)entry_pa;
    if (d->kind != HW_PDE_PAGE)
        return true;
    fprintf(t->out, "%016" PRIx64 ": %016" PRIx64 " %-2s %c%c%c%c%c%c%c%c%c",
            hw_vaddr_to_canonical(vaddr), p->frame.base, sizes[layer],
            p->flags.disable_execute ? 'X' : '-', d->flag_G ? 'G' : '-',
            layer < 3 ? 'P' : '-', d->flag_D ? 'D' : '-', d->flag_A ? 'A' : '-',
            d->flag_PCD ? 'C' : '-', d->flag_PWT ? 'T' : '-',
            p->flags.is_supervisor ? '-' : 'U', p->flags.is_writable ? 'W' : '-');
    if (p->flags.pat_index)
        fprintf(t->out, " pat=%u", p->flags.pat_index);
    if (p->flags.pkey)
        fprintf(t->out, " pkey=%u", p->flags.pkey);
    if (p->flags.software)
        fprintf(t->out, " sw=0x%x", p->flags.software);
    fputc('\n', t->out);
    return true;
}

/* info mem: "start-end size urwx" with adjacent mappings of equal permissions merged. */
static void print_mem_lines(FILE *out, const struct hw_interp *in)
{
    for (size_t i = 0; i < in->len;) {
        const struct hw_mapping *first = &in->map[i];
        uint64_t end = first->base + first->pte.frame.size;
        size_t j = i + 1;
        while (j < in->len && in->map[j].base == end &&
               in->map[j].pte.flags.is_writable == first->pte.flags.is_writable &&
               in->map[j].pte.flags.is_supervisor == first->pte.flags.is_supervisor &&
               in->map[j].pte.flags.disable_execute == first->pte.flags.disable_execute)
            end += in->map[j++].pte.frame.size;
        /* Canonical form of the last byte, +1, so that a range ending at 2^47 prints as
         * 0000800000000000 and one ending at 2^48 as 0000000000000000 (QEMU does the same). */
        fprintf(out, "%016" PRIx64 "-%016" PRIx64 " %016" PRIx64 " %c%c%c%c\n",
                hw_vaddr_to_canonical(first->base), hw_vaddr_to_canonical(end - 1) + 1,
                end - first->base, first->pte.flags.is_supervisor ? '-' : 'u', 'r',
                first->pte.flags.is_writable ? 'w' : '-',
                first->pte.flags.disable_execute ? '-' : 'x');
        i = j;
    }
}

/* --dot: one node per directory, labelled with its layer, address and first virtual address;
 * leaves are counted per directory, not drawn (a table of 1 M pages would be unreadable). */
struct dot_ctx {
    FILE *out;
    uint64_t dir[HW_NUM_LAYERS];   /* the directory whose entries are being visited, per layer */
    unsigned pages[HW_NUM_LAYERS]; /* pages counted in it so far */
};

static const char *const layer_names[] = { "PML4", "PDPT", "PD", "PT" };

static void dot_flush_pages(struct dot_ctx *d, unsigned layer)
{
    if (d->pages[layer])
        fprintf(d->out, "  p%" PRIx64 " [shape=note,label=\"%u pages\"];\n"
                        "  d%" PRIx64 " -> p%" PRIx64 ";\n",
                d->dir[layer], d->pages[layer], d->dir[layer], d->dir[layer]);
    d->pages[layer] = 0;
}

/* The visit is depth-first in address order, so at each layer the entries of one directory
 * come before those of the next: a change of directory at a layer closes the previous one. */
static bool dot_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                      const struct hw_pde *pde, const struct hw_pte *p)
{
    struct dot_ctx *d = ctx;
    (void)p;
    uint64_t dir = entry_pa & ~(HW_PAGE_SIZE - 1);
    if (dir != d->dir[layer]) {
        dot_flush_pages(d, layer);
        d->dir[layer] = dir;
    }
    if (pde->kind == HW_PDE_PAGE) {
        d->pages[layer]++;
        return true;
    }
    fprintf(d->out, "  d%" PRIx64 " [label=\"%s\\n%#" PRIx64 "\\nva %016" PRIx64 "\"];\n",
            pde->addr, layer_names[layer + 1], pde->addr, hw_vaddr_to_canonical(vaddr));
    fprintf(d->out, "  d%" PRIx64 " -> d%" PRIx64 " [label=\"%u\"];\n", dir, pde->addr,
            (unsigned)((entry_pa % HW_PAGE_SIZE) / HW_WORD_SIZE));
    return true;
}

static int write_dot(FILE *out, const struct hw_pt_view *pt)
{
    struct dot_ctx d = { .out = out };
    fprintf(out, "digraph x86pt {\n  node [shape=box,fontname=monospace];\n");
    fprintf(out, "  d%" PRIx64 " [label=\"PML4\\n%#" PRIx64 "\"];\n", pt->cr3, pt->cr3);
    enum hw_interp_status st = hw_pt_visit(pt, dot_visit, &d, NULL);
    for (unsigned l = 0; l < HW_NUM_LAYERS; l++)
        dot_flush_pages(&d, l);
    fprintf(out, "}\n");
    return st == HW_INTERP_OK ? 0 : EXIT_MALFORMED;
}

static int write_dot_file(const char *path, const struct hw_pt_view *pt)
{
    if (!strcmp(path, "-"))
        return write_dot(stdout, pt);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "x86pt dump: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    int r = write_dot(f, pt);
    if (fclose(f)) {
        fprintf(stderr, "x86pt dump: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    return r;
}

/* --svg: the dot text into a temporary file, then `dot -Tsvg TMP -o FILE` (no shell). */
static int write_svg(const char *path, const struct hw_pt_view *pt)
{
    char tmp[] = "/tmp/x86pt-dump-XXXXXX";
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "x86pt dump: cannot create a temporary file: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    int r = write_dot(f, pt);
    fclose(f);
    pid_t pid = r ? -1 : fork();
    if (pid == 0) {
        execlp("dot", "dot", "-Tsvg", tmp, "-o", path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    unlink(tmp);
    if (r)
        return r;
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "x86pt dump: --svg needs Graphviz's dot%s\n",
                WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (not installed)"
                                                                  : " (it failed)");
        return EXIT_USAGE;
    }
    return 0;
}

static int dump(const struct dump_opts *o, const struct hw_pt_view *pt)
{
    struct hw_interp in = { 0 };
    struct hw_interp_diag diag;
    enum hw_interp_status st = hw_interp_pt_mem(pt, &in, &diag);
    if (st != HW_INTERP_OK) {
        char msg[256];
        hw_interp_diag_format(&diag, msg, sizeof msg);
        fprintf(stderr, "x86pt dump: %s: malformed page table: %s\n", o->image, msg);
        hw_interp_fini(&in);
        return st == HW_INTERP_E_NOMEM ? EXIT_USAGE : EXIT_MALFORMED;
    }
    if (o->tlb) {
        struct tlb_ctx t = { stdout };
        hw_pt_visit(pt, print_tlb_line, &t, NULL);
    }
    if (o->mem)
        print_mem_lines(stdout, &in);
    hw_interp_fini(&in);
    int r = 0;
    if (o->dot)
        r = write_dot_file(o->dot, pt);
    if (!r && o->svg)
        r = write_svg(o->svg, pt);
    return r;
}

int x86pt_dump_main(int argc, char **argv)
{
    struct dump_opts o;
    int r = parse_args(argc, argv, &o);
    if (r)
        return r < 0 ? 0 : r;
    if (o.cr3 >> o.maxphyaddr) {
        fprintf(stderr, "x86pt dump: cr3 %#" PRIx64 " is beyond MAXPHYADDR %u\n", o.cr3,
                o.maxphyaddr);
        return EXIT_MALFORMED;
    }
    uint64_t bytes;
    uint8_t *image = read_image(o.image, &bytes);
    if (!image)
        return EXIT_USAGE;
    /* CR3 bits 11:0 are PCID or PWT/PCD (SDM 4.5, table 4-12), not part of the address. */
    struct hw_pt_view pt = { hw_mem_view_flat(image, bytes), o.cr3 & ~(HW_PAGE_SIZE - 1),
                             o.maxphyaddr };
    r = dump(&o, &pt);
    free(image);
    fflush(stdout);
    return r;
}
