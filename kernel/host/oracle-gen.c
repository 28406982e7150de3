/*
 * oracle-gen: random page tables for the MMU oracle, with the hardware model's
 * prediction for every probed access (see kernel/oracle.h).
 *
 *   oracle-gen <maxphyaddr> <seed> <out.bin> [cases] [probes-per-case]
 *
 * Each case is a whole 4-level tree under its own root. Entries are drawn at
 * random: not-present garbage, pointers to fresh directories or to a directory
 * already used elsewhere in the case (a shared subtree, always at the same
 * layer), 4 KiB / 2 MiB / 1 GiB leaves; every flag bit random (RW, US, XD,
 * PWT, PCD, A, D, G, PAT, the ignored bits); and one must-be-zero bit of the
 * layer (hardware.rs all_mb0_bits_are_zero, read as the SDM's tables: bits
 * M..51, PS of a PML4E, the low address bits of a huge page) planted in about
 * one entry in six; bits 52..62 are random everywhere (ignored with CR4.PKE = 0).
 * Leaves point into the kernel's scratch RAM (so the kernel can check where an
 * access landed) or far above RAM (no memory there).
 *
 * The model answers the walk (hw_pt_walk: leaf, combined flags, or the layer
 * of the invalid entry); the access rules on top are the SDM's (vol. 3A §4.6
 * with CR0.WP = 1, EFER.NXE = 1, CR4.SMEP = CR4.SMAP = CR4.PKE = 0), the same
 * as hardware.rs step_ReadWrite for user accesses.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hardware.h"
#include "layout.h"
#include "oracle.h"

#define PF_P 1u
#define PF_W 2u
#define PF_U 4u
#define PF_RSVD 8u
#define PF_I 16u

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng * UINT64_C(0x2545F4914F6CDD1D);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static bool chance(unsigned percent) { return below(100) < percent; }
static uint64_t bits(unsigned lo, unsigned hi) { return (~UINT64_C(0) >> (63 - hi)) & (~UINT64_C(0) << lo); }

static unsigned M;                /* MAXPHYADDR */
static uint8_t *mem;              /* guest-physical [0, mem_bytes): flat, as the model views it */
static uint64_t mem_bytes;
static uint64_t next_frame;       /* next free table frame (pa) */
static uint8_t *frame_layer;      /* per blob frame: layer + 1 (0 = not a table) */

#define MAX_CASE_DIRS 24
struct dirinfo {
    uint64_t pa;
    unsigned layer;
};
static struct dirinfo case_dirs[MAX_CASE_DIRS];
static unsigned ncase_dirs;

/* Addresses to probe in the current case. */
#define MAX_VAS 4096
static uint64_t vas[MAX_VAS];
static unsigned nvas;

static uint64_t *entry_at(uint64_t pa) { return (uint64_t *)(void *)(mem + pa); }

static uint64_t new_dir(unsigned layer)
{
    uint64_t pa = next_frame;
    next_frame += HW_PAGE_SIZE;
    if (next_frame > ORACLE_BLOB_PA + ORACLE_BLOB_MAX) {
        fprintf(stderr, "oracle-gen: blob too large\n");
        exit(1);
    }
    frame_layer[(pa - ORACLE_BLOB_PA) / HW_PAGE_SIZE] = (uint8_t)(layer + 1);
    if (ncase_dirs < MAX_CASE_DIRS)
        case_dirs[ncase_dirs++] = (struct dirinfo){ pa, layer };
    return pa;
}

static void add_va(uint64_t spec_va)
{
    if (nvas < MAX_VAS)
        vas[nvas++] = spec_va & ~UINT64_C(7) & (HW_MAX_BASE - 1);
}

/* The flag bits an entry may carry without being invalid (any value). */
static uint64_t random_flags(unsigned layer, bool page)
{
    uint64_t e = rnd() & (HW_BIT_RW | HW_BIT_US | HW_BIT_PWT | HW_BIT_PCD | HW_BIT_A | HW_BIT_D | HW_BIT_G |
                          bits(9, 11));
    if (chance(50))
        e |= HW_BIT_XD;
    if (page && layer == 3 && chance(50))
        e |= HW_BIT_PS; /* PAT of a 4 KiB page */
    if (page && layer < 3 && chance(50))
        e |= HW_BIT_PAT_LARGE;
    if (layer < 2 && chance(30))
        e |= rnd() & bits(52, 62); /* ignored at PML4 / PDPT, for the SDM and the spec alike */
    /* Mostly permissive, so that deeper levels are reached and probed. */
    if (chance(60))
        e |= HW_BIT_RW;
    if (chance(60))
        e |= HW_BIT_US;
    return e;
}

/* One must-be-zero bit of this kind of entry (hardware.rs all_mb0_bits_are_zero). */
static uint64_t random_mbz_bit(unsigned layer, bool page)
{
    uint64_t choices[64];
    unsigned n = 0;
    for (unsigned b = M; b <= 51; b++)
        choices[n++] = UINT64_C(1) << b;
    if (layer == 0)
        choices[n++] = HW_BIT_PS;
    if (page && layer == 1)
        for (unsigned b = 13; b <= 29; b++)
            choices[n++] = UINT64_C(1) << b;
    if (page && layer == 2)
        for (unsigned b = 13; b <= 20; b++)
            choices[n++] = UINT64_C(1) << b;
    return n ? choices[below(n)] : 0;
}

/* A leaf frame: in scratch RAM (checked), or far above RAM (nothing there). */
static uint64_t leaf_frame(unsigned layer)
{
    uint64_t size = hw_entry_size(layer);
    if (chance(80) || M <= 36) {
        if (layer == 1)
            return SCRATCH_PA; /* the one 1 GiB-aligned frame over scratch */
        return SCRATCH_PA + below((SCRATCH_END - SCRATCH_PA) / size) * size;
    }
    uint64_t lo = UINT64_C(1) << (M - 1); /* far above any RAM or PCI window */
    return lo + below(lo / size) * size;
}

static void gen_dir(uint64_t dir, unsigned layer, uint64_t prefix, unsigned depth);

/* Addresses under a directory reached through a new path: its non-empty slots. */
static void add_vas_under(uint64_t dir, unsigned layer, uint64_t prefix)
{
    for (unsigned i = 0; i < HW_NUM_ENTRIES; i++)
        if (*entry_at(dir + 8 * i) && chance(50))
            add_va(prefix + i * hw_entry_size(layer) + below(hw_entry_size(layer)));
}

static void gen_entry(uint64_t dir, unsigned layer, unsigned idx, uint64_t prefix, unsigned depth)
{
    uint64_t size = hw_entry_size(layer), va = prefix + idx * size;
    uint64_t *slot = entry_at(dir + 8 * idx);
    unsigned pick = (unsigned)below(100);
    if (pick < 12) { /* not present: every other bit is free (no reserved bits, SDM §4.5) */
        *slot = rnd() & ~HW_BIT_P;
        add_va(va + below(size));
        return;
    }
    bool page = layer == 3 || (layer > 0 && pick >= 55);
    uint64_t e = random_flags(layer, page) | HW_BIT_P;
    if (page) {
        e |= leaf_frame(layer) | (layer < 3 ? HW_BIT_PS : 0);
        /* Offsets in a 1 GiB page at 1 GiB stay within scratch. */
        add_va(va + below(layer == 1 ? (SCRATCH_END - SCRATCH_PA) : size));
        add_va(va + below(size));
    } else {
        e &= ~HW_BIT_PS;
        uint64_t child = 0;
        /* A shared subtree: a directory of the next layer already in this case. */
        if (chance(25)) {
            for (unsigned i = 0; i < ncase_dirs && !child; i++)
                if (case_dirs[i].layer == layer + 1 && chance(50))
                    child = case_dirs[i].pa;
        }
        if (child) {
            e |= child;
            add_vas_under(child, layer + 1, va);
        } else if (depth > 0 && ncase_dirs < MAX_CASE_DIRS) {
            child = new_dir(layer + 1);
            e |= child;
            gen_dir(child, layer + 1, va, depth - 1);
        } else {
            e |= new_dir(layer + 1); /* empty directory */
            add_va(va + below(size));
        }
    }
    if (chance(16))
        e |= random_mbz_bit(layer, page);
    *slot = e;
}

static void gen_dir(uint64_t dir, unsigned layer, uint64_t prefix, unsigned depth)
{
    unsigned n = 1 + (unsigned)below(layer == 0 ? 4 : 5);
    for (unsigned k = 0; k < n; k++) {
        unsigned idx = (unsigned)below(HW_NUM_ENTRIES);
        if (layer == 0 && ORACLE_KERNEL_SLOT(idx))
            continue;
        if (*entry_at(dir + 8 * idx))
            continue;
        gen_entry(dir, layer, idx, prefix, depth);
    }
}

/* The SDM's reading of the same tables: bits 52..62 of PD / PT entries cleared. */
static uint8_t *sdm_mem;
static void make_sdm_view(uint64_t from, uint64_t to)
{
    memcpy(sdm_mem + from, mem + from, to - from);
    for (uint64_t pa = from; pa < to; pa += HW_PAGE_SIZE) {
        unsigned layer = frame_layer[(pa - ORACLE_BLOB_PA) / HW_PAGE_SIZE];
        if (layer < 3) /* layer + 1: PD is 3, PT is 4 */
            continue;
        uint64_t *d = (uint64_t *)(void *)(sdm_mem + pa);
        for (unsigned i = 0; i < HW_NUM_ENTRIES; i++)
            if (d[i] & HW_BIT_P)
                d[i] &= ~bits(52, 62);
    }
}

/* The model's prediction for the six accesses at spec_va. */
static void predict(const uint8_t *m, uint64_t cr3, uint64_t spec_va, uint16_t err[ORACLE_NKINDS], uint64_t *pa)
{
    struct hw_pt_view view = { hw_mem_view_flat(m, mem_bytes), cr3, M };
    struct hw_walk w;
    enum hw_walk_status st = hw_pt_walk(&view, spec_va, &w);
    if (st == HW_WALK_OUTSIDE) {
        fprintf(stderr, "oracle-gen: walk left memory at %#llx\n", (unsigned long long)spec_va);
        exit(1);
    }
    uint64_t raw = 0;
    if (st == HW_WALK_FAULT)
        raw = *(const uint64_t *)(const void *)(m + w.entry_pa[w.layer]);
    *pa = st == HW_WALK_PAGE ? w.pte.frame.base + (spec_va - w.base) : 0;
    for (unsigned k = 0; k < ORACLE_NKINDS; k++) {
        bool user = k >= OK_USER_LOAD, write = k % 3 == 1, exec = k % 3 == 2;
        unsigned code = (write ? PF_W : 0) | (user ? PF_U : 0) | (exec ? PF_I : 0);
        if (st == HW_WALK_FAULT) {
            /* An invalid entry: not present, or present with a reserved bit. */
            err[k] = (uint16_t)(code | ((raw & HW_BIT_P) ? PF_P | PF_RSVD : 0));
            continue;
        }
        const struct hw_flags *f = &w.pte.flags;
        bool denied = (user && f->is_supervisor) || (write && !f->is_writable) || (exec && f->disable_execute);
        err[k] = denied ? (uint16_t)(code | PF_P) : ORACLE_SUCCESS;
    }
}

/* A fetch runs whatever is at pa: only where the kernel can put code (scratch). */
static bool pa_fillable(uint64_t pa) { return pa >= SCRATCH_PA && pa + 8 <= SCRATCH_END; }

static void mask_exec(uint16_t err[ORACLE_NKINDS], uint64_t pa)
{
    for (unsigned k = OK_KERNEL_EXEC; k < ORACLE_NKINDS; k += 3)
        if (err[k] == ORACLE_SUCCESS && !pa_fillable(pa))
            err[k] = ORACLE_SKIP;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <maxphyaddr> <seed> <out.bin> [cases] [probes-per-case]\n", argv[0]);
        return 2;
    }
    M = (unsigned)atoi(argv[1]);
    rng = strtoull(argv[2], NULL, 0) * UINT64_C(0x9E3779B97F4A7C15) + 1;
    unsigned ncases = argc > 4 ? (unsigned)atoi(argv[4]) : 400;
    unsigned per_case = argc > 5 ? (unsigned)atoi(argv[5]) : 24;
    if (M < HW_MAXPHYADDR_WIDTH_MIN || M > HW_MAXPHYADDR_WIDTH_MAX || !ncases || !per_case) {
        fprintf(stderr, "oracle-gen: bad arguments\n");
        return 2;
    }
    mem_bytes = ORACLE_BLOB_PA + ORACLE_BLOB_MAX;
    mem = calloc(1, mem_bytes);
    sdm_mem = calloc(1, mem_bytes);
    frame_layer = calloc(ORACLE_BLOB_MAX / HW_PAGE_SIZE, 1);
    struct oracle_case *cases = calloc(ncases, sizeof *cases);
    struct oracle_probe *probes = calloc((size_t)ncases * per_case, sizeof *probes);
    if (!mem || !sdm_mem || !frame_layer || !cases || !probes)
        return 1;

    /* Header, cases and probes first; tables after them, page aligned. */
    uint64_t meta = sizeof(struct oracle_header) + ncases * sizeof *cases + (uint64_t)ncases * per_case * sizeof *probes;
    next_frame = ORACLE_BLOB_PA + ((meta + HW_PAGE_SIZE - 1) & ~(HW_PAGE_SIZE - 1));
    uint64_t tables_start = next_frame;
    unsigned np = 0;
    for (unsigned c = 0; c < ncases; c++) {
        ncase_dirs = 0;
        nvas = 0;
        uint64_t root = new_dir(0);
        gen_dir(root, 0, 0, 3);
        cases[c].root = root;
        cases[c].first_probe = np;
        /* Some addresses anywhere in the non-kernel half-spaces, mostly unmapped. */
        for (int i = 0; i < 2; i++) {
            uint64_t slot;
            do
                slot = below(HW_NUM_ENTRIES);
            while (ORACLE_KERNEL_SLOT(slot));
            add_va(slot * hw_entry_size(0) + below(hw_entry_size(0)));
        }
        for (unsigned i = 0; i < per_case; i++) {
            struct oracle_probe *p = &probes[np++];
            uint64_t spec_va = vas[below(nvas)];
            p->va = hw_vaddr_to_canonical(spec_va);
            predict(mem, root, spec_va, p->err, &p->pa);
            mask_exec(p->err, p->pa);
        }
        cases[c].nprobes = per_case;
        make_sdm_view(tables_start, next_frame);
        for (unsigned i = cases[c].first_probe; i < np; i++) {
            struct oracle_probe *p = &probes[i];
            uint64_t spec_va;
            hw_vaddr_from_canonical(p->va, &spec_va);
            predict(sdm_mem, root, spec_va, p->alt_err, &p->alt_pa);
            mask_exec(p->alt_err, p->alt_pa);
            p->has_alt = memcmp(p->err, p->alt_err, sizeof p->err) != 0 || p->pa != p->alt_pa;
        }
        tables_start = next_frame;
    }

    struct oracle_header h = {
        .magic = ORACLE_MAGIC,
        .maxphyaddr = M,
        .ncases = ncases,
        .nprobes = np,
        .seed = strtoull(argv[2], NULL, 0),
        .cases_off = sizeof h,
        .probes_off = sizeof h + ncases * sizeof *cases,
        .bytes = next_frame - ORACLE_BLOB_PA,
    };
    uint8_t *blob = mem + ORACLE_BLOB_PA;
    memcpy(blob, &h, sizeof h);
    memcpy(blob + h.cases_off, cases, ncases * sizeof *cases);
    memcpy(blob + h.probes_off, probes, (size_t)np * sizeof *probes);
    FILE *out = fopen(argv[3], "wb");
    if (!out || fwrite(blob, 1, h.bytes, out) != h.bytes || fclose(out) != 0) {
        perror(argv[3]);
        return 1;
    }
    unsigned alts = 0;
    for (unsigned i = 0; i < np; i++)
        alts += probes[i].has_alt;
    printf("oracle-gen: phys-bits=%u seed=%llu cases=%u probes=%u (%u where spec and SDM differ) tables=%llu KiB\n",
           M, (unsigned long long)h.seed, ncases, np, alts,
           (unsigned long long)((h.bytes - h.cases_off) / 1024));
    return 0;
}
