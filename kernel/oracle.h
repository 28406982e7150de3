/*
 * The MMU oracle's blob: random page tables and the accesses to probe in them,
 * each with the result the hardware model (model/hardware.h) predicts.
 * Written on the host by oracle-gen, loaded by QEMU at ORACLE_BLOB_PA
 * (`-device loader`), checked by the kernel (test_oracle.c). Plain C types
 * only: both sides include it.
 *
 * Layout at ORACLE_BLOB_PA: header, cases, probes, then the page-table frames
 * (page aligned). Every pointer in an entry is an absolute physical address.
 */
#ifndef KERNEL_ORACLE_H
#define KERNEL_ORACLE_H

#include <stdint.h>

#define ORACLE_MAGIC UINT64_C(0x3130656c63617230) /* "0racle01" */

/* The six accesses probed at every address. */
enum oracle_kind {
    OK_KERNEL_LOAD, OK_KERNEL_WRITE, OK_KERNEL_EXEC,
    OK_USER_LOAD, OK_USER_WRITE, OK_USER_EXEC,
    ORACLE_NKINDS
};

#define ORACLE_SUCCESS 0xFFFFu /* the access must succeed (and reach pa) */
#define ORACLE_SKIP 0xFFFEu    /* not probed (a fetch from memory we cannot fill) */

/* Kernel-owned PML4 slots the generator leaves empty: the kernel copies its own
 * entries there (identity map, user window, direct map). */
#define ORACLE_KERNEL_SLOT(i) ((i) == 0 || (i) == 255 || (i) == 256)

struct oracle_header {
    uint64_t magic;
    uint32_t maxphyaddr, ncases;
    uint32_t nprobes, reserved;
    uint64_t seed;
    uint64_t cases_off, probes_off, bytes;
};

struct oracle_case {
    uint64_t root;
    uint32_t first_probe, nprobes;
};

/*
 * err[k]: the x86 page-fault error code the model predicts for access k
 * (SDM vol. 3A §4.7), or ORACLE_SUCCESS / ORACLE_SKIP. pa: where a successful
 * access lands.
 *
 * has_alt: the spec (hardware.rs all_mb0_bits_are_zero) takes bits 52..62 of
 * PD and PT entries as must-be-zero, where the SDM (§4.5, tables 4-17..4-19)
 * ignores them (protection keys being off). alt_err / alt_pa are the model's
 * prediction for the same tables with those bits cleared, i.e. the SDM's
 * reading; a result matching alt but not err is counted as that deviation.
 */
struct oracle_probe {
    uint64_t va;
    uint64_t pa, alt_pa;
    uint16_t err[ORACLE_NKINDS];
    uint16_t alt_err[ORACLE_NKINDS];
    uint32_t has_alt, reserved;
};

#endif
