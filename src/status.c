/* Names of the status codes. */
#include "x86pt/x86pt.h"

static const char *const status_names[X86PT_STATUS_COUNT] = {
    [X86PT_OK] = "X86PT_OK: success",
    [X86PT_E_NONCANONICAL] = "X86PT_E_NONCANONICAL: virtual address is not canonical",
    [X86PT_E_MISALIGNED] = "X86PT_E_MISALIGNED: address not aligned to the page size",
    [X86PT_E_BADSIZE] = "X86PT_E_BADSIZE: size is not 4 KiB, 2 MiB or 1 GiB",
    [X86PT_E_BADFLAGS] = "X86PT_E_BADFLAGS: unknown flag bits",
    [X86PT_E_PHYSRANGE] = "X86PT_E_PHYSRANGE: physical range beyond MAXPHYADDR",
    [X86PT_E_OVERLAP] = "X86PT_E_OVERLAP: range overlaps an existing mapping",
    [X86PT_E_NOTMAPPED] = "X86PT_E_NOTMAPPED: no mapping at this address",
    [X86PT_E_NOMEM] = "X86PT_E_NOMEM: frame allocation failed, nothing changed",
    [X86PT_E_BADFRAME] = "X86PT_E_BADFRAME: allocator returned an unusable frame",
    [X86PT_E_MALFORMED] = "X86PT_E_MALFORMED: page-table image is malformed",
    [X86PT_E_INVAL] = "X86PT_E_INVAL: invalid configuration",
    [X86PT_E_STRADDLE] = "X86PT_E_STRADDLE: a mapping straddles an end of the range",
    [X86PT_E_GATHER_FULL] = "X86PT_E_GATHER_FULL: the gather has no room for the directories to free, nothing changed",
};

const char *x86pt_strerror(x86pt_status_t status)
{
    if ((unsigned)status >= X86PT_STATUS_COUNT || !status_names[status])
        return "X86PT_E_?: unknown status";
    return status_names[status];
}
