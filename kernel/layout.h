/*
 * Physical and virtual layout of the test kernel (shared by C and assembly).
 *
 * Physical: firmware and the multiboot loader own low memory; the AP
 * trampoline sits at TRAMPOLINE_PA (below 1 MiB, page aligned, as a SIPI
 * vector requires); the kernel image is linked at 1 MiB; page-table frames and
 * test frames come from [POOL_BASE, POOL_END); the oracle's tables are loaded
 * at ORACLE_BLOB_PA by `-device loader`; the oracle's target frames live in
 * [SCRATCH_PA, SCRATCH_END). SeaBIOS uses the top 64 MiB of RAM (QEMU-FACTS):
 * every boot gets RAM_MB of RAM, so that stays above SCRATCH_END.
 */
#ifndef KERNEL_LAYOUT_H
#define KERNEL_LAYOUT_H

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS (0x18 | 3)
#define USER_CS (0x20 | 3)
#define TSS_SEL 0x28

#define MAX_CPUS 8
#define BOOT_STACK_SIZE 0x8000
#define AP_STACK_SIZE 0x8000

#define TRAMPOLINE_PA 0x8000
#define POOL_BASE 0x01000000   /* 16 MiB */
#define POOL_END 0x0F000000    /* 240 MiB */
#define ORACLE_BLOB_PA 0x10000000 /* 256 MiB */
#define ORACLE_BLOB_MAX 0x20000000 /* up to 768 MiB */
#define SCRATCH_PA 0x40000000  /* 1 GiB: the only 1 GiB-aligned frame in RAM besides 0 */
#define SCRATCH_END 0x60000000 /* 1.5 GiB */
#define RAM_MB 2048

/* Virtual: identity map of [0, 4 GiB) (code, data, LAPIC), libx86pt's direct
 * map of the same range in the upper half, and the window ring-3 code runs in. */
#define IDENTITY_END 0x100000000
#define DIRECT_MAP_BASE 0xFFFF800000000000 /* PML4 slot 256 */
#define USER_WINDOW 0x00007F8000000000     /* PML4 slot 255 */

#define LAPIC_PA 0xFEE00000

#endif
