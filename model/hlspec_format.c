/* Formatting of the high-level spec's steps (spec_t/hlspec.rs AbstractStep) for traces: the
 * step names and one line a step. The steps themselves are in hlspec.c. */
#include "hlspec.h"

#include <inttypes.h>
#include <stdio.h>

const char *hl_step_name(enum hl_step_kind k)
{
    static const char *const names[] = { "ReadWrite",       "MapStart",          "MapEnd",
                                         "UnmapStart",      "UnmapEnd",          "ProtectStart",
                                         "ProtectEnd",      "Stutter",           "MapRangeStart",
                                         "MapRangeEnd",     "UnmapRangeStart",   "UnmapRangeEnd",
                                         "ProtectRangeStart", "ProtectRangeEnd", "RangeStore" };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static const char *flags_str(struct hw_flags f)
{
    static const char *const s[8] = { "r-u-x", "rwu-x", "r-s-x", "rws-x",
                                      "r-u-n", "rwu-n", "r-s-n", "rws-n" };
    return s[(f.is_writable ? 1 : 0) | (f.is_supervisor ? 2 : 0) | (f.disable_execute ? 4 : 0)];
}

void hl_step_format(const struct hl_step *st, char *buf, size_t len)
{
    switch (st->kind) {
    case HL_STEP_READ_WRITE:
        snprintf(buf, len, "ReadWrite{thread %u, vaddr 0x%" PRIx64 ", %s%s, pte %s}", st->thread_id,
                 st->vaddr, st->is_store ? "store " : (st->is_exec ? "exec" : "load"),
                 st->rw_result == HL_RW_UNDEFINED ? " -> Undefined"
                 : st->rw_result == HL_RW_OK      ? " -> Ok"
                                                  : " -> Value",
                 st->has_pte ? "Some" : "None");
        break;
    case HL_STEP_MAP_START:
        snprintf(buf, len, "MapStart{thread %u, vaddr 0x%" PRIx64 ", frame 0x%" PRIx64 "+0x%" PRIx64 " %s}",
                 st->thread_id, st->vaddr, st->pte.frame.base, st->pte.frame.size,
                 flags_str(st->pte.flags));
        break;
    case HL_STEP_UNMAP_START:
        snprintf(buf, len, "UnmapStart{thread %u, vaddr 0x%" PRIx64 "}", st->thread_id, st->vaddr);
        break;
    case HL_STEP_PROTECT_START:
        snprintf(buf, len, "ProtectStart{thread %u, vaddr 0x%" PRIx64 ", %s}", st->thread_id, st->vaddr,
                 flags_str(st->flags));
        break;
    case HL_STEP_MAP_RANGE_START:
        snprintf(buf, len, "MapRangeStart{thread %u, vaddr 0x%" PRIx64 ", length 0x%" PRIx64 ", paddr 0x%" PRIx64
                 ", %s, policy %u}", st->thread_id, st->vaddr, st->length, st->paddr, flags_str(st->flags), st->policy);
        break;
    case HL_STEP_UNMAP_RANGE_START:
    case HL_STEP_PROTECT_RANGE_START:
        snprintf(buf, len, "%s{thread %u, vaddr 0x%" PRIx64 ", length 0x%" PRIx64 ", %s%s}", hl_step_name(st->kind),
                 st->thread_id, st->vaddr, st->length, st->kind == HL_STEP_PROTECT_RANGE_START ? flags_str(st->flags) : "",
                 st->split ? " split" : " fail");
        break;
    case HL_STEP_RANGE_STORE:
        snprintf(buf, len, "RangeStore{thread %u}", st->thread_id);
        break;
    case HL_STEP_MAP_END:
    case HL_STEP_UNMAP_END:
    case HL_STEP_PROTECT_END:
    case HL_STEP_MAP_RANGE_END:
    case HL_STEP_UNMAP_RANGE_END:
    case HL_STEP_PROTECT_RANGE_END:
        snprintf(buf, len, "%s{thread %u, %s}", hl_step_name(st->kind), st->thread_id,
                 st->result_ok ? "Ok" : st->nomem ? "Err(NOMEM)" : "Err");
        break;
    default:
        snprintf(buf, len, "Stutter");
    }
}
