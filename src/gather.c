/* Releasing deferred frees (x86pt.h: x86pt_gather_release). */
#include "gather.h"

void x86pt_gather_release(struct x86pt *pt, struct x86pt_gather *gather)
{
    if (!gather || !gather_valid(gather))
        return;
    for (unsigned i = 0; i < gather->count; i++)
        pt->mem.free_frame(pt->mem.ctx, gather->frames[i]);
    gather->count = 0;
}
