/* Formatting of the OS model's steps and core states (spec_t/os.rs CoreState, OSStep) for
 * traces: one line a step. The steps themselves are in os.c. */
#include "os.h"

#include <inttypes.h>
#include <stdio.h>

const char *os_core_kind_name(enum os_core_kind k)
{
    static const char *const n[] = { "Idle", "MapWaiting", "MapExecuting", "UnmapWaiting",
                                     "UnmapOpExecuting", "UnmapOpDone", "UnmapShootdownWaiting",
                                     "ProtectWaiting", "ProtectOpExecuting", "ProtectOpDone",
                                     "ProtectShootdownWaiting" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

const char *os_step_name(enum os_step_kind k)
{
    static const char *const n[] = { "HW", "MapStart", "MapOpStart", "MapEnd", "UnmapStart",
                                     "UnmapOpStart", "UnmapOpEnd", "UnmapInitiateShootdown",
                                     "AckShootdownIPI", "UnmapEnd", "ViewStutter", "ProtectStart",
                                     "ProtectOpStart", "ProtectOpEnd", "ProtectInitiateShootdown",
                                     "ProtectEnd", "MapRangeStart", "UnmapRangeStart", "ProtectRangeStart",
                                     "RangeStore", "FrameReuse", "Resolve", "DestroyProbe", "BadCall",
                                     "AdoptProbe", "Iterate" };
    return (unsigned)k < OS_STEP_KIND_COUNT ? n[k] : "?";
}

void os_step_format(const struct os_consts *c, const struct os_step *st, char *buf, size_t len)
{
    struct hw_core k = os_core_of(c, st->core);
    switch (st->kind) {
    case OS_STEP_HW:
        switch (st->hw.kind) {
        case HW_STEP_READ_WRITE:
            snprintf(buf, len, "thread %u (core %u.%u) HW ReadWrite %s 0x%" PRIx64 "%s -> %s", st->ULT_id,
                     st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.op.kind == HW_RW_STORE ? "store" : (st->hw.op.is_exec ? "exec" : "load"),
                     st->hw.vaddr, st->hw.has_pte ? " via TLB" : " (no TLB entry)",
                     st->rw.kind == HW_RESULT_PAGEFAULT ? "page fault"
                     : st->rw.kind == HW_RESULT_OK      ? "ok"
                                                        : "value");
            break;
        case HW_STEP_TLB_FILL:
            snprintf(buf, len, "core %u.%u HW TLBFill 0x%" PRIx64 " -> frame 0x%" PRIx64, st->hw.core.NUMA_id,
                     st->hw.core.core_id, st->hw.vaddr, st->hw.pte.frame.base);
            break;
        case HW_STEP_TLB_EVICT:
            snprintf(buf, len, "core %u.%u HW TLBEvict 0x%" PRIx64, st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.vaddr);
            break;
        case HW_STEP_ACCESSED_DIRTY:
            snprintf(buf, len, "MMU HW AccessedDirty 0x%" PRIx64 "%s", st->hw.vaddr, st->hw.is_write ? " (write)" : "");
            break;
        case HW_STEP_WALK_INIT: {
            static const char *const acc[] = { "read", "write", "exec" };
            static const char *const lvl[] = { "PML4E", "PDPTE", "PDE" };
            snprintf(buf, len, "core %u.%u HW WalkInit 0x%" PRIx64 " (%s)%s%s", st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.vaddr, acc[st->hw.access % 3], st->hw.use_cache ? " from its cached " : "",
                     st->hw.use_cache ? lvl[st->hw.cache_level % 3] : "");
            break;
        }
        case HW_STEP_WALK_STEP:
        case HW_STEP_WALK_ABORT:
        case HW_STEP_WALK_TLB_FILL:
            snprintf(buf, len, "core %u.%u HW %s of walk %u", st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.kind == HW_STEP_WALK_STEP    ? "WalkStep (one entry read)"
                     : st->hw.kind == HW_STEP_WALK_ABORT ? "WalkAbort"
                                                         : "TLBFill from the completed walk",
                     st->hw.walk_index);
            break;
        case HW_STEP_CACHE_FILL:
            snprintf(buf, len, "core %u.%u HW CacheFill level %u from walk %u", st->hw.core.NUMA_id,
                     st->hw.core.core_id, st->hw.cache_level, st->hw.walk_index);
            break;
        case HW_STEP_CACHE_EVICT:
            snprintf(buf, len, "core %u.%u HW CacheEvict level %u entry %u", st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.cache_level, st->hw.cache_index);
            break;
        case HW_STEP_WRITEBACK:
            snprintf(buf, len, "core %u.%u HW Writeback: [0x%" PRIx64 "] 0x%" PRIx64 " -> 0x%" PRIx64
                     " leaves the store buffer for memory", st->hw.core.NUMA_id, st->hw.core.core_id, st->write_pa,
                     st->write_old, st->write_value);
            break;
        default:
            snprintf(buf, len, "HW ?");
        }
        return;
    case OS_STEP_MAP_START:
        snprintf(buf, len, "thread %u MapStart 0x%" PRIx64 " -> frame 0x%" PRIx64 " size 0x%" PRIx64 "%s%s%s",
                 st->ULT_id, st->vaddr, st->pte.frame.base, st->pte.frame.size,
                 st->pte.flags.is_writable ? " W" : "", st->pte.flags.is_supervisor ? " S" : " U",
                 st->pte.flags.disable_execute ? " XD" : "");
        return;
    case OS_STEP_UNMAP_START:
        snprintf(buf, len, "thread %u UnmapStart 0x%" PRIx64, st->ULT_id, st->vaddr);
        return;
    case OS_STEP_ITERATE:
        snprintf(buf, len, "thread %u Iterate [0x%" PRIx64 ", 0x%" PRIx64 ") -> %u mappings", st->ULT_id, st->vaddr,
                 st->vaddr + st->length, st->nlisted);
        return;
    case OS_STEP_RESOLVE:
        if (st->result_ok)
            snprintf(buf, len, "thread %u Resolve 0x%" PRIx64 " -> 0x%" PRIx64 " -> frame 0x%" PRIx64 " size 0x%" PRIx64,
                     st->ULT_id, st->vaddr, st->resolved.base, st->resolved.pte.frame.base,
                     st->resolved.pte.frame.size);
        else
            snprintf(buf, len, "thread %u Resolve 0x%" PRIx64 " -> not mapped", st->ULT_id, st->vaddr);
        return;
    case OS_STEP_BAD_CALL: {
        static const char *const ops[] = { "map", "unmap", "protect", "init", "resolve", "destroy", "adopt" };
        const struct os_pt_request *b = &st->bad;
        int n = snprintf(buf, len, "thread %u BadCall x86pt_%s%s(0x%" PRIx64, st->ULT_id, ops[b->op % 6],
                         b->range ? "_range" : "", b->vaddr);
        if (n >= 0 && (size_t)n < len && b->op == OS_PT_MAP)
            n += snprintf(buf + n, len - (size_t)n, ", pa 0x%" PRIx64, b->range ? b->paddr : b->pte.frame.base);
        if (n >= 0 && (size_t)n < len && (b->range || b->op == OS_PT_MAP))
            n += snprintf(buf + n, len - (size_t)n, ", %s 0x%" PRIx64, b->range ? "length" : "size",
                          b->range ? b->length : b->pte.frame.size);
        if (n >= 0 && (size_t)n < len)
            snprintf(buf + n, len - (size_t)n, "%s) -> %s", b->bad_flag ? ", an unknown flag bit" : "",
                     os_pt_error_name(st->bad_got));
        return;
    }
    case OS_STEP_DESTROY_PROBE:
        snprintf(buf, len, "kernel DestroyProbe: x86pt_destroy on a copy of the table gives back %u directories",
                 st->nfreed);
        return;
    case OS_STEP_ADOPT_PROBE:
        snprintf(buf, len, "kernel AdoptProbe: x86pt_adopt on a copy of the table, %s, gives back %u directories",
                 os_adopt_image_name((enum os_adopt_image)st->adopt_image), st->nfreed);
        return;
    case OS_STEP_FRAME_REUSE:
        snprintf(buf, len, "kernel FrameReuse: free frame 0x%" PRIx64 " filled with 0x%" PRIx64,
                 st->reuse_pa & ~(HW_PAGE_SIZE - 1), st->reuse_value);
        return;
    case OS_STEP_PROTECT_START:
        if (st->ad_clear) {
            snprintf(buf, len, "thread %u ProtectStart 0x%" PRIx64 " as x86pt_test_and_clear_ad of %s%s", st->ULT_id,
                     st->vaddr, st->ad_clear & OS_AD_ACCESSED ? "A" : "", st->ad_clear & OS_AD_DIRTY ? "D" : "");
            return;
        }
        snprintf(buf, len, "thread %u ProtectStart 0x%" PRIx64 "%s%s%s", st->ULT_id, st->vaddr,
                 st->flags.is_writable ? " W" : "", st->flags.is_supervisor ? " S" : " U",
                 st->flags.disable_execute ? " XD" : "");
        return;
    case OS_STEP_MAP_RANGE_START: {
        static const char *const pol[] = { "largest fit", "only 4K", "only 2M", "only 1G" };
        snprintf(buf, len, "thread %u MapRangeStart [0x%" PRIx64 ", 0x%" PRIx64 ") -> frame 0x%" PRIx64 " (%s)%s%s%s",
                 st->ULT_id, st->vaddr, st->vaddr + st->length, st->paddr, pol[st->policy & 3],
                 st->flags.is_writable ? " W" : "", st->flags.is_supervisor ? " S" : " U",
                 st->flags.disable_execute ? " XD" : "");
        return;
    }
    case OS_STEP_UNMAP_RANGE_START:
    case OS_STEP_PROTECT_RANGE_START:
    {
        int n = snprintf(buf, len, "thread %u %s [0x%" PRIx64 ", 0x%" PRIx64 ")%s%s%s (%s)", st->ULT_id,
                         os_step_name(st->kind), st->vaddr, st->vaddr + st->length,
                         st->kind == OS_STEP_UNMAP_RANGE_START ? "" : st->flags.is_writable ? " W" : " RO",
                         st->kind == OS_STEP_UNMAP_RANGE_START ? "" : st->flags.is_supervisor ? " S" : " U",
                         st->kind == OS_STEP_PROTECT_RANGE_START && st->flags.disable_execute ? " XD" : "",
                         st->split ? "split straddlers" : "straddle fails");
        if (st->fail_alloc && n >= 0 && (size_t)n < len)
            snprintf(buf + n, len - (size_t)n, ", the allocator will refuse directory %u of the split", st->fail_alloc);
        return;
    }
    default:
        break;
    }
    int n = snprintf(buf, len, "core %u.%u %s", k.NUMA_id, k.core_id, os_step_name(st->kind));
    if (n < 0 || (size_t)n >= len)
        return;
    if (st->nsilent && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ": %u accesses to unlinked directories, then", st->nsilent);
    if (st->accessed && n >= 0 && (size_t)n < len) {
        const char *sep = st->nsilent ? " " : ": ";
        if (st->access == OS_LIB_LOAD)
            n += snprintf(buf + n, len - (size_t)n, "%sload [0x%" PRIx64 "] -> 0x%" PRIx64, sep, st->write_pa,
                          st->write_value);
        else if (st->access == OS_LIB_ZERO)
            n += snprintf(buf + n, len - (size_t)n, "%szero directory 0x%" PRIx64, sep, st->write_pa);
        else if (st->wrote || st->access == OS_LIB_STORE)
            n += snprintf(buf + n, len - (size_t)n, "%s%s [0x%" PRIx64 "] 0x%" PRIx64 " -> 0x%" PRIx64 "%s", sep,
                          st->access == OS_LIB_CAS ? "cmpxchg" : "store", st->write_pa, st->write_old, st->write_value,
                          st->buffered ? " (into the store buffer)" : "");
        else
            n += snprintf(buf + n, len - (size_t)n, "%scmpxchg [0x%" PRIx64 "] fails", sep, st->write_pa);
    }
    if (n >= 0 && (size_t)n < len && st->alloc_failed)
        n += snprintf(buf + n, len - (size_t)n, ", the allocator refuses allocation %u", st->fail_alloc);
    if (n >= 0 && (size_t)n < len && st->nfreed)
        n += snprintf(buf + n, len - (size_t)n, ", freed %u director%s", st->nfreed, st->nfreed > 1 ? "ies" : "y");
    if (n >= 0 && (size_t)n < len &&
        (st->kind == OS_STEP_MAP_END || st->kind == OS_STEP_UNMAP_OP_START || st->kind == OS_STEP_PROTECT_OP_START ||
         st->kind == OS_STEP_UNMAP_END || st->kind == OS_STEP_PROTECT_END))
        snprintf(buf + n, len - (size_t)n, " (%s)", st->result_ok ? "Ok" : st->nomem ? "Err: X86PT_E_NOMEM" : "Err");
}
