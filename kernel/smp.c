/*
 * Local APIC, AP bring-up, the kernel lock and the TLB shootdown: the OS side
 * of spec_t/os.rs. A map runs under the kernel lock; an unmap (and a protect)
 * runs under the lock, then the unmapping core sends a shootdown IPI to every
 * other core, each invalidates the address and acknowledges, and the
 * unmapping core keeps the lock until every acknowledgement is in
 * (os.rs: UnmapInitiateShootdown, AckShootdownIPI, UnmapEnd).
 */
#include "kern.h"

/* xAPIC registers at LAPIC_PA (SDM vol. 3A §11.4.1, table 11-1). */
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_ASSERT (1u << 14)
#define ICR_ALL_BUT_SELF (3u << 18) /* destination shorthand (SDM vol. 3A §11.6.1) */
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)

extern const uint8_t trampoline_start[], trampoline_end[];
extern uint32_t tramp_cr3;
extern volatile uint32_t ap_arrivals;

static unsigned ncores = 1;
static struct spinlock klock;
volatile uint64_t shootdowns_sent;

/* One gather for the kernel, guarded by the kernel lock: every unmap holds the
 * lock through its shootdown and the release, so it holds at most one unmap's
 * directories. */
static x86pt_paddr_t kgather_frames[X86PT_UNMAP_MAX_DIRS_FREED];
struct x86pt_gather kgather = {kgather_frames, X86PT_UNMAP_MAX_DIRS_FREED, 0};

static struct {
    volatile uint64_t va;
    volatile bool full;
    volatile bool global;
    volatile uint32_t pending; /* bit per core: open requests (os.rs: ShootdownVector) */
} sd;

static volatile uint32_t *lapic_reg(unsigned off) { return (volatile uint32_t *)(uintptr_t)(LAPIC_PA + off); }

void lapic_eoi(void) { *lapic_reg(LAPIC_EOI) = 0; }

/* The legacy 8259 PICs: moved off the exception vectors (BIOS leaves the
 * timer on vector 8) and masked; only LAPIC interrupts are used. */
static void pic_disable(void)
{
    static const uint8_t init[][2] = {
        { 0x20, 0x11 }, { 0xA0, 0x11 }, { 0x21, 0x20 }, { 0xA1, 0x28 },
        { 0x21, 0x04 }, { 0xA1, 0x02 }, { 0x21, 0x01 }, { 0xA1, 0x01 },
        { 0x21, 0xFF }, { 0xA1, 0xFF },
    };
    for (size_t i = 0; i < sizeof init / sizeof init[0]; i++)
        outb(init[i][0], init[i][1]);
}

void lapic_init(void)
{
    if (this_cpu() == 0)
        pic_disable();
    /* Software-enable the APIC with the spurious vector (SDM vol. 3A §11.9). */
    *lapic_reg(LAPIC_SVR) = 0x100 | VEC_SPURIOUS;
    percpu[this_cpu()].apic_id = this_cpu();
}

static void send_ipi_all_but_self(uint32_t icr)
{
    while (*lapic_reg(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING)
        cpu_relax();
    *lapic_reg(LAPIC_ICR_HI) = 0;
    *lapic_reg(LAPIC_ICR_LO) = icr | ICR_ALL_BUT_SELF;
    while (*lapic_reg(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING)
        cpu_relax();
}

static void delay(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        cpu_relax();
}

/* ---- APs ---- */
static void (*volatile ap_work)(unsigned);
static volatile uint32_t ap_work_gen, ap_work_done;

void ap_main(unsigned arrival)
{
    (void)arrival;
    idt_load();
    lapic_init();
    unsigned me = this_cpu();
    percpu[me].online = true;
    irq_enable();
    uint32_t seen = 0;
    for (;;) {
        while (__atomic_load_n(&ap_work_gen, __ATOMIC_ACQUIRE) == seen)
            cpu_relax();
        seen = ap_work_gen;
        ap_work(me);
        __atomic_fetch_add(&ap_work_done, 1, __ATOMIC_RELEASE);
    }
}

/* INIT-SIPI-SIPI to all other processors (SDM vol. 3A §9.4.4.1, the MP
 * initialization protocol), then wait for `want - 1` APs to arrive. */
unsigned smp_start_aps_n(unsigned want)
{
    memcpy((void *)(uintptr_t)TRAMPOLINE_PA, trampoline_start, (size_t)(trampoline_end - trampoline_start));
    *(volatile uint32_t *)(uintptr_t)(TRAMPOLINE_PA + ((uintptr_t)&tramp_cr3 - (uintptr_t)trampoline_start)) =
        (uint32_t)kpt.root.pa;
    send_ipi_all_but_self(ICR_INIT | ICR_ASSERT);
    delay(10000);
    for (int i = 0; i < 2; i++) {
        send_ipi_all_but_self(ICR_STARTUP | ICR_ASSERT | (TRAMPOLINE_PA >> 12));
        delay(2000);
    }
    for (unsigned long spins = 0; ap_arrivals + 1 < want && spins < 200000000ul; spins++)
        cpu_relax();
    /* Wait until every arrived AP has its IDT and LAPIC up. */
    unsigned online = 0;
    for (unsigned long spins = 0; spins < 200000000ul; spins++) {
        online = 0;
        for (unsigned c = 0; c < MAX_CPUS; c++)
            online += percpu[c].online;
        if (online == ap_arrivals)
            break;
        cpu_relax();
    }
    ncores = online + 1;
    return ncores;
}

unsigned smp_cores(void) { return ncores; }

void smp_run_on_aps(void (*fn)(unsigned cpu))
{
    ap_work = fn;
    ap_work_done = 0;
    __atomic_fetch_add(&ap_work_gen, 1, __ATOMIC_RELEASE);
}

/* Interrupts stay enabled while waiting: an AP may be shooting down. */
void smp_wait_aps(void)
{
    while (__atomic_load_n(&ap_work_done, __ATOMIC_ACQUIRE) + 1 < ncores)
        cpu_relax();
}

/* ---- the kernel lock and the shootdown ---- */

/* Interrupts stay enabled while spinning, so that a core waiting for the
 * lock still answers the holder's shootdown (else: deadlock). */
void kernel_lock(void) { spin_lock(&klock); }
void kernel_unlock(void) { spin_unlock(&klock); }

static void invalidate_local(uint64_t va, bool full, bool global)
{
    uint64_t cr4 = read_cr4();
    if (full && global && (cr4 & CR4_PGE)) { /* a global page changed: MOV to CR3 would keep it */
        write_cr4(cr4 & ~CR4_PGE);          /* all TLB entries, global ones too, and every */
        write_cr4(cr4);                     /* paging-structure cache (SDM vol. 3A §4.10.4.1) */
    } else if (full) {
        write_cr3(read_cr3()); /* all non-global TLB entries and paging-structure caches
                                  (SDM vol. 3A §4.10.4.1, MOV to CR3) */
    } else {
        invlpg(va); /* the page containing va, whatever its size, global or not (§4.10.4.1) */
    }
}

/* os.rs: AckShootdownIPI — acknowledge only after this core's TLB no longer
 * holds the address. */
void shootdown_handle(void)
{
    invalidate_local(sd.va, sd.full, sd.global);
    __atomic_fetch_and(&sd.pending, ~(1u << this_cpu()), __ATOMIC_RELEASE);
}

static uint32_t other_cores_mask(void)
{
    uint32_t m = 0;
    for (unsigned c = 0; c < MAX_CPUS; c++)
        if (percpu[c].online && c != this_cpu())
            m |= 1u << c;
    return m;
}

/* MFENCE (SDM vol. 3A §9.2.2: it waits until every earlier store is globally
 * visible). */
static inline void map_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* Caller holds the kernel lock. The IPI needs no fence before it: it is a
 * store to the xAPIC's ICR, uncacheable memory, and a store does not pass
 * earlier stores (SDM vol. 3A §9.2.2), so the page-table stores are in memory
 * before any core takes the interrupt. (In x2APIC mode the ICR is an MSR and
 * WRMSR to it is not ordered with stores: it would need an MFENCE first.) */
void os_unmap_finish(const struct x86pt_flush *flush)
{
    if (flush->length == 0)
        return;
    bool full = flush->dirs_freed > 0 || flush->flush_all;
    invalidate_local(flush->start.va, full, flush->global);
    uint32_t others = other_cores_mask();
    if (others) {
        sd.va = flush->start.va;
        sd.full = full;
        sd.global = flush->global;
        __atomic_store_n(&sd.pending, others, __ATOMIC_RELEASE);
        send_ipi_all_but_self(VEC_SHOOTDOWN);
        while (__atomic_load_n(&sd.pending, __ATOMIC_ACQUIRE))
            cpu_relax();
        shootdowns_sent++;
    }
    /* Every core has acknowledged: no walk can reach the unlinked directories. */
    x86pt_gather_release(&kpt, &kgather);
}

x86pt_status_t os_unmap_begin(uint64_t va, struct x86pt_flush *flush)
{
    return x86pt_unmap_gather(&kpt, x86pt_va(va), NULL, flush, &kgather);
}

x86pt_status_t os_map(uint64_t va, uint64_t pa, uint64_t size, unsigned flags)
{
    struct x86pt_flush flush;
    kernel_lock();
    x86pt_status_t st = x86pt_map(&kpt, x86pt_va(va), x86pt_pa(pa), size, flags, &flush);
    /* A map only fills not-present slots; not-present translations are never
     * cached (SDM vol. 3A §4.10.2.3), so flush.length is 0. The fence drains
     * this core's store buffer: the mapping is in memory, for every core's
     * walker, when os_map returns (the checker's MapEnd fence; the unlock is a
     * plain store, which does not drain). */
    map_fence();
    kernel_unlock();
    return st;
}

x86pt_status_t os_unmap(uint64_t va, struct x86pt_mapping *removed)
{
    struct x86pt_flush flush;
    kernel_lock();
    x86pt_status_t st = x86pt_unmap_gather(&kpt, x86pt_va(va), removed, &flush, &kgather);
    if (st == X86PT_OK)
        os_unmap_finish(&flush);
    kernel_unlock();
    return st;
}

/* Protect may take permissions away: the same shootdown as an unmap. */
x86pt_status_t os_protect(uint64_t va, unsigned flags)
{
    struct x86pt_flush flush;
    kernel_lock();
    x86pt_status_t st = x86pt_protect(&kpt, x86pt_va(va), flags, &flush);
    if (st == X86PT_OK)
        os_unmap_finish(&flush);
    kernel_unlock();
    return st;
}
