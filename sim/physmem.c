/* Simulated physical memory: see physmem.h. */
#include "physmem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_ALIGN (2ull << 20)

bool sim_phys_init(struct sim_phys *s, uint64_t bytes, uint64_t reserved)
{
    memset(s, 0, sizeof *s);
    s->bytes = bytes;
    s->frames = bytes / X86PT_PAGE_4K;
    /* 2 MiB-aligned and backed by huge pages where the host allows, as a
     * kernel's direct map is: otherwise host TLB misses dominate every
     * random-order measurement. */
    uint8_t *m = mmap(NULL, bytes + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    s->map_base = m;
    s->mem = (uint8_t *)(((uintptr_t)m + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    madvise(s->mem, bytes, MADV_HUGEPAGE);
    s->counts = calloc(s->frames, sizeof *s->counts);
    s->free_stack = malloc(s->frames * sizeof *s->free_stack);
    s->owned = calloc(s->frames, 1);
    if (!s->counts || !s->free_stack || !s->owned) {
        sim_phys_fini(s);
        return false;
    }
    /* Lowest frames on top, so allocation goes upwards from `reserved`. */
    for (uint64_t f = s->frames; f > reserved; f--)
        s->free_stack[s->free_top++] = f - 1;
    return true;
}

void sim_phys_fini(struct sim_phys *s)
{
    if (s->map_base)
        munmap(s->map_base, s->bytes + HUGE_ALIGN);
    free(s->counts);
    free(s->free_stack);
    free(s->owned);
    memset(s, 0, sizeof *s);
}

void sim_phys_fail_nth(struct sim_phys *s, uint64_t n)
{
    s->fail_at = n ? s->alloc_calls + n : 0;
}

static bool sim_alloc(void *ctx, x86pt_paddr_t *frame)
{
    struct sim_phys *s = ctx;
    s->alloc_calls++;
    if (s->fail_at && s->alloc_calls == s->fail_at)
        return false;
    if (s->free_top == 0)
        return false;
    uint64_t f = s->free_stack[--s->free_top];
    s->owned[f] = 1;
    s->live++;
    s->allocs++;
    if (s->scribble)
        memset(s->mem + f * X86PT_PAGE_4K, 0xA5, X86PT_PAGE_4K);
    frame->pa = f * X86PT_PAGE_4K;
    return true;
}

static bool frame_is_zero(const struct sim_phys *s, uint64_t f)
{
    const uint64_t *w = (const uint64_t *)(s->mem + f * X86PT_PAGE_4K);
    for (unsigned i = 0; i < 512; i++)
        if (w[i])
            return false;
    return true;
}

static void sim_free(void *ctx, x86pt_paddr_t frame)
{
    struct sim_phys *s = ctx;
    uint64_t f = frame.pa / X86PT_PAGE_4K;
    if (frame.pa % X86PT_PAGE_4K || f >= s->frames || !s->owned[f]) {
        s->bad_frees++;
        return;
    }
    /* The library promises zeroed frames back. */
    if (!s->trust_frees && !frame_is_zero(s, f))
        s->bad_frees++;
    s->owned[f] = 0;
    s->live--;
    s->free_stack[s->free_top++] = f;
}

static void *sim_phys_to_virt(void *ctx, x86pt_paddr_t pa)
{
    struct sim_phys *s = ctx;
    return s->mem + pa.pa;
}

struct x86pt_mem sim_phys_mem(struct sim_phys *s)
{
    struct x86pt_mem m = {
        .ctx = s,
        .alloc_frame = sim_alloc,
        .free_frame = sim_free,
        .phys_to_virt = NULL,
        .direct_map = s->mem,
        .used_counts = s->counts,
        .used_counts_len = s->frames,
        .observe_write = NULL,
    };
    return m;
}

struct x86pt_mem sim_phys_mem_translated(struct sim_phys *s)
{
    struct x86pt_mem m = sim_phys_mem(s);
    m.direct_map = NULL;
    m.phys_to_virt = sim_phys_to_virt;
    return m;
}
