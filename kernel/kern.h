/* The test kernel's internal interfaces. */
#ifndef KERNEL_KERN_H
#define KERNEL_KERN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "x86pt/x86pt.h"

/* ---- CPU primitives ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint64_t read_cr2(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}
static inline uint64_t read_cr3(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}
static inline void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" ::"r"(v) : "memory"); }
static inline uint64_t read_cr4(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}
static inline void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory"); }
#define CR4_PGE (UINT64_C(1) << 7)
static inline void invlpg(uint64_t va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* ---- console and exit (console.c) ---- */
void console_init(void);
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* isa-debug-exit: QEMU exits with (code << 1) | 1. */
#define EXIT_PASS 0x10 /* status 33, the only passing status */
#define EXIT_FAIL 0x11 /* status 35 */
__attribute__((noreturn)) void qemu_exit(uint32_t code);
__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int kstrcmp(const char *a, const char *b);

/* ---- spinlock ---- */
struct spinlock {
    volatile uint32_t next, owner;
};
void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);

/* ---- interrupts and faults (idt.c, entry.S) ---- */
struct frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error, rip, cs, rflags, rsp, ss;
};
#define VEC_PF 14
#define VEC_USER_EXIT 0x81
#define VEC_SHOOTDOWN 0xF0
#define VEC_SPURIOUS 0xFF

/* Page-fault error code bits (SDM vol. 3A §4.7, figure 4-12). */
#define PF_P (1u << 0)
#define PF_W (1u << 1)
#define PF_U (1u << 2)
#define PF_RSVD (1u << 3)
#define PF_I (1u << 4)

/* A probe result: 0 = the access succeeded, else PROBE_FAULT | error code. */
#define PROBE_FAULT (UINT64_C(1) << 32)
uint64_t probe_load(uint64_t va, uint64_t *out);
uint64_t probe_store(uint64_t va, uint64_t value);
uint64_t probe_rmw(uint64_t va);
uint64_t probe_exec(uint64_t va);
/* Ring 3: run the user probe (kind 0 load, 1 rmw, 2 exec) on va. */
enum probe_kind { PROBE_LOAD = 0, PROBE_RMW = 1, PROBE_EXEC = 2 };
uint64_t probe_user(enum probe_kind kind, uint64_t va, uint64_t *loaded);
uint64_t probe_kernel(enum probe_kind kind, uint64_t va, uint64_t *loaded);

void idt_init_bsp(void);
void idt_load(void);
void user_window_init(struct x86pt *pt);

struct percpu {
    uint64_t last_cr2, last_err, faults;
    volatile bool exec_probe;
    volatile bool online;
    uint32_t apic_id;
};
extern struct percpu percpu[MAX_CPUS];
unsigned this_cpu(void);

/* ---- memory (mem.c) ---- */
extern struct x86pt kpt;
extern uint8_t *const direct_map;
void mem_init(void);
bool frame_alloc(uint64_t *pa);
void frame_free(uint64_t pa);
uint64_t frames_free_count(void);
static inline void *phys(uint64_t pa) { return direct_map + pa; }
unsigned cpu_maxphyaddr(void);

/* ---- SMP, the kernel lock, shootdown (smp.c) ---- */
void lapic_init(void);
void lapic_eoi(void);
unsigned smp_start_aps_n(unsigned want);
unsigned smp_cores(void);
void smp_run_on_aps(void (*fn)(unsigned cpu));
void smp_wait_aps(void);
void shootdown_handle(void);
extern volatile uint64_t shootdowns_sent;
/* Directories an unmap unlinked wait here, under the kernel lock, until the
 * shootdown that makes them unreachable from every TLB and paging-structure
 * cache is done: os_unmap_finish releases them. Pass it to every unmap. */
extern struct x86pt_gather kgather;

/* The OS operations of spec_t/os.rs over the live page table. */
x86pt_status_t os_map(uint64_t va, uint64_t pa, uint64_t size, unsigned flags);
x86pt_status_t os_unmap(uint64_t va, struct x86pt_mapping *removed);
x86pt_status_t os_protect(uint64_t va, unsigned flags);
/* The unmap split in two, to show a stale TLB entry between them: the caller
 * holds the lock between os_unmap_begin and os_unmap_finish. */
x86pt_status_t os_unmap_begin(uint64_t va, struct x86pt_flush *flush);
void os_unmap_finish(const struct x86pt_flush *flush);
void kernel_lock(void);
void kernel_unlock(void);

/* ---- command line (main.c): "test=<name> cpus=<n> ..." ---- */
bool cmdline_get(const char *key, char *buf, size_t len);
uint64_t cmdline_num(const char *key, uint64_t def);

/* ---- tests ---- */
bool test_basic(void);
bool test_attrs(void);
bool test_faults(void);
bool test_stress(void);
bool test_oracle(void);

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            kprintf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            kprintf(__VA_ARGS__);                                                                  \
            kprintf("\n");                                                                         \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

#endif
