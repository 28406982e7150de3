/*
 * The kernel's frame pool and libx86pt's memory interface over real memory
 * (spec_t/mem.rs): directories are reached through the direct map at
 * DIRECT_MAP_BASE, the used-count side table is a static array covering the pool.
 */
#include "kern.h"

#define POOL_FRAMES ((POOL_END - POOL_BASE) / X86PT_PAGE_4K)

struct x86pt kpt;
uint8_t *const direct_map = (uint8_t *)DIRECT_MAP_BASE;

static uint16_t used_counts[POOL_END / X86PT_PAGE_4K];
static uint32_t free_stack[POOL_FRAMES]; /* frame numbers */
static uint64_t free_top;
static struct spinlock pool_lock;

bool frame_alloc(uint64_t *pa)
{
    spin_lock(&pool_lock);
    bool ok = free_top > 0;
    if (ok)
        *pa = (uint64_t)free_stack[--free_top] << 12;
    spin_unlock(&pool_lock);
    return ok;
}

void frame_free(uint64_t pa)
{
    if (pa < POOL_BASE || pa >= POOL_END || (pa & 0xFFF))
        panic("frame_free(%lx): not a pool frame", pa);
    spin_lock(&pool_lock);
    free_stack[free_top++] = (uint32_t)(pa >> 12);
    spin_unlock(&pool_lock);
}

uint64_t frames_free_count(void) { return free_top; }

/* Directories an unmap empties reach this only through x86pt_gather_release,
 * after the shootdown (smp.c: kgather); the rest were never reachable. */
static void lib_free(void *ctx, x86pt_paddr_t frame)
{
    (void)ctx;
    frame_free(frame.pa);
}

static bool lib_alloc(void *ctx, x86pt_paddr_t *frame)
{
    (void)ctx;
    uint64_t pa;
    if (!frame_alloc(&pa))
        return false;
    *frame = x86pt_pa(pa);
    return true;
}

/* MAXPHYADDR from CPUID.80000008H:EAX[7:0] (SDM vol. 3A §4.1.4). */
unsigned cpu_maxphyaddr(void)
{
    uint32_t r[4];
    cpuid(0x80000008, 0, r);
    return r[0] & 0xFF;
}

/* The pool, then libx86pt's tables for the kernel: identity [0, 4 GiB) with
 * 1 GiB pages (kernel code, data, LAPIC), the direct map with 1 GiB pages,
 * no-execute. Built through the boot tables' direct map, then CR3 switches to
 * libx86pt's root and the boot tables are never used again. */
void mem_init(void)
{
    for (uint64_t pa = POOL_END; pa > POOL_BASE; pa -= X86PT_PAGE_4K)
        free_stack[free_top++] = (uint32_t)((pa - X86PT_PAGE_4K) >> 12);
    struct x86pt_mem m = {
        .alloc_frame = lib_alloc,
        .free_frame = lib_free,
        .direct_map = direct_map,
        .used_counts = used_counts,
        .used_counts_len = POOL_END / X86PT_PAGE_4K,
    };
    x86pt_status_t st = x86pt_init(&kpt, &m, cpu_maxphyaddr());
    for (uint64_t pa = 0; st == X86PT_OK && pa < IDENTITY_END; pa += X86PT_PAGE_1G) {
        st = x86pt_map(&kpt, x86pt_va(pa), x86pt_pa(pa), X86PT_PAGE_1G, X86PT_WRITABLE, NULL);
        if (st == X86PT_OK)
            st = x86pt_map(&kpt, x86pt_va(DIRECT_MAP_BASE + pa), x86pt_pa(pa), X86PT_PAGE_1G,
                           X86PT_WRITABLE | X86PT_NO_EXECUTE, NULL);
    }
    if (st != X86PT_OK)
        panic("kernel page table: %s", x86pt_strerror(st));
    user_window_init(&kpt);
    write_cr3(kpt.root.pa);
}
