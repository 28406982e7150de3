/* libx86pt as the OS model's page-table component, access by access. See ptlib.h. */
#include "ptlib.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define PTLIB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PTLIB_ASAN 1
#endif
#endif
#ifdef PTLIB_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#include "x86pt/x86pt.h"

/* The library built with X86PT_CHECKED never dereferences a pointer into page-table memory:
 * every access goes through src/checked.h. Its phys_to_virt hands out addresses in a range no
 * host memory occupies, so that a direct access that slipped past the accessors faults at once
 * instead of going unseen. */
#define FAKE_BASE (UINT64_C(1) << 46)
#define STACK_SIZE (256u * 1024u)

struct ptlib {
    struct os_pt_impl impl;
    unsigned frames;
    uint64_t root;
    /* the coroutine the library runs on */
    void *lib_sp, *drv_sp;
    void *stack;
    bool started;
    /* what it runs: the request and the private state it started from */
    struct os_pt_request rq;
    uint16_t counts0[OS_PT_FRAMES_MAX];
    uint64_t private0;
    unsigned maxphyaddr, pt_frames;
    /* where it stands */
    uint16_t counts[OS_PT_FRAMES_MAX]; /* the library's own copy */
    unsigned at;                       /* index of the pending action */
    unsigned consumed;                 /* responses given */
    uint64_t phash;                    /* the prefix hash of the responses given */
    struct os_lib_action pending;
    struct os_lib_result result;       /* pending == RETURN */
    uint64_t response;
    char bad[200];
};

/* The coroutine whose library is running (only one runs at a time on a thread). */
static _Thread_local struct ptlib *running;

/* ---- the coroutine: a stack switch of the callee-saved registers (System V x86-64) ----------
 * ucontext's swapcontext also saves the signal mask, a system call per switch: it cost 80 % of
 * the checker's time. */
void ptlib_switch(void **save_sp, void *next_sp);
__asm__(".text\n"
        ".globl ptlib_switch\n"
        ".type ptlib_switch, @function\n"
        "ptlib_switch:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n"
        ".size ptlib_switch, .-ptlib_switch\n");

static void switch_to(void **save_sp, void *next_sp, const void *next_bottom, size_t next_size)
{
#ifdef PTLIB_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, next_bottom, next_size);
    ptlib_switch(save_sp, next_sp);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)next_bottom, (void)next_size;
    ptlib_switch(save_sp, next_sp);
#endif
}

/* ---- the accessors of the checked build (src/checked.h) ------------------------------------ */

static uint64_t pa_of(const void *p) { return (uint64_t)(uintptr_t)p - FAKE_BASE; }

/* The driver's stack is the thread's: its bounds for the sanitizer's fiber switch. */
static _Thread_local const void *driver_bottom;
static _Thread_local size_t driver_size;

static void to_driver(struct ptlib *p) { switch_to(&p->lib_sp, p->drv_sp, driver_bottom, driver_size); }

static uint64_t act(enum os_lib_kind kind, uint64_t pa, uint64_t value, uint64_t expected)
{
    struct ptlib *p = running;
    p->pending.kind = kind;
    p->pending.pa = pa;
    p->pending.value = value;
    p->pending.expected = expected;
    to_driver(p);
    return p->response;
}

uint64_t x86pt_checked_load(const uint64_t *slot) { return act(OS_LIB_LOAD, pa_of(slot), 0, 0); }
void x86pt_checked_store(uint64_t *slot, uint64_t value) { act(OS_LIB_STORE, pa_of(slot), value, 0); }
void x86pt_checked_zero(uint64_t *dir) { act(OS_LIB_ZERO, pa_of(dir), 0, 0); }

bool x86pt_checked_cas(uint64_t *slot, uint64_t *expected, uint64_t desired)
{
    uint64_t seen = act(OS_LIB_CAS, pa_of(slot), desired, *expected);
    if (seen == *expected)
        return true;
    *expected = seen;
    return false;
}

static bool cb_alloc(void *ctx, x86pt_paddr_t *frame)
{
    (void)ctx;
    uint64_t f = act(OS_LIB_ALLOC, 0, 0, 0);
    if (f == OS_LIB_ALLOC_FAILED)
        return false;
    frame->pa = f;
    return true;
}

static void cb_free(void *ctx, x86pt_paddr_t frame)
{
    (void)ctx;
    act(OS_LIB_FREE, frame.pa, 0, 0);
}

static void *cb_phys_to_virt(void *ctx, x86pt_paddr_t pa)
{
    (void)ctx;
    return (void *)(uintptr_t)(FAKE_BASE + pa.pa);
}

/* ---- one operation, on the coroutine ---------------------------------------------------------- */

static unsigned to_lib_flags(struct hw_flags f)
{
    return (f.is_writable ? X86PT_WRITABLE : 0u) | (f.is_supervisor ? 0u : X86PT_USER) |
           (f.disable_execute ? X86PT_NO_EXECUTE : 0u) | (f.global ? X86PT_GLOBAL : 0u) | X86PT_MEMTYPE(f.pat_index) |
           X86PT_PKEY(f.pkey) | X86PT_SOFTWARE(f.software);
}

/* The request's flags; a refused call's unknown flag is the bit above X86PT_FLAGS_ALL. */
static unsigned request_flags(const struct os_pt_request *rq, struct hw_flags f)
{
    return to_lib_flags(f) | (rq->bad_flag ? (unsigned)X86PT_FLAGS_ALL + 1u : 0u);
}

static struct hw_flags from_lib_flags(unsigned f)
{
    struct hw_flags h = { .is_writable = (f & X86PT_WRITABLE) != 0,
                          .is_supervisor = (f & X86PT_USER) == 0,
                          .disable_execute = (f & X86PT_NO_EXECUTE) != 0,
                          .pat_index = (uint8_t)X86PT_MEMTYPE_OF(f),
                          .global = (f & X86PT_GLOBAL) != 0,
                          .pkey = (uint8_t)X86PT_PKEY_OF(f),
                          .software = (uint16_t)X86PT_SOFTWARE_OF(f) };
    return h;
}

static unsigned from_lib_ad(unsigned ad)
{
    return (ad & X86PT_ACCESSED ? OS_AD_ACCESSED : 0u) | (ad & X86PT_DIRTY ? OS_AD_DIRTY : 0u);
}

/* A mapping the library reported, in the model's terms: its pte and A/D bits. */
static void from_lib_mapping(const struct x86pt_mapping *m, struct hw_pte *pte, unsigned *ad)
{
    pte->frame.base = m->frame.pa;
    pte->frame.size = m->size;
    pte->flags = from_lib_flags(m->flags);
    *ad = from_lib_ad(m->ad);
}

/* x86pt_iterate's visitor: counts every mapping, keeps the first OS_LISTED_MAX. */
static bool list_mapping(void *ctx, const struct x86pt_mapping *m)
{
    struct os_lib_result *r = ctx;
    if (r->nlisted < OS_LISTED_MAX) {
        struct hw_mapping *l = &r->listed[r->nlisted];
        if (!hw_vaddr_from_canonical(m->base.va, &l->base))
            l->base = UINT64_MAX;
        from_lib_mapping(m, &l->pte, &r->listed_ad[r->nlisted]);
    }
    r->nlisted++;
    return true;
}

static struct x86pt handle(struct ptlib *p)
{
    struct x86pt pt;
    memset(&pt, 0, sizeof pt);
    pt.mem.ctx = p;
    pt.mem.alloc_frame = cb_alloc;
    pt.mem.free_frame = cb_free;
    pt.mem.phys_to_virt = cb_phys_to_virt;
    pt.mem.used_counts = p->counts;
    pt.mem.used_counts_len = p->pt_frames;
    pt.root = x86pt_pa(p->root);
    pt.maxphyaddr = p->maxphyaddr;
    pt.phys_limit = UINT64_C(1) << p->maxphyaddr;
    pt.walk_hint = p->private0;
    return pt;
}

/* The contract's argument errors in the model's terms (os.h enum os_pt_error). */
static enum os_pt_error model_error(x86pt_status_t st)
{
    switch (st) {
    case X86PT_OK: return OS_ERR_NONE;
    case X86PT_E_NONCANONICAL: return OS_ERR_NONCANONICAL;
    case X86PT_E_MISALIGNED: return OS_ERR_MISALIGNED;
    case X86PT_E_BADSIZE: return OS_ERR_BADSIZE;
    case X86PT_E_BADFLAGS: return OS_ERR_BADFLAGS;
    case X86PT_E_PHYSRANGE: return OS_ERR_PHYSRANGE;
    case X86PT_E_MALFORMED: return OS_ERR_MALFORMED;
    default: return OS_ERR_OTHER;
    }
}

static void refuse(struct ptlib *p, const char *fn, x86pt_status_t st)
{
    if (p->rq.raw) /* a refused call: the model judges its status */
        return;
    snprintf(p->bad, sizeof p->bad, "x86pt_%s returned %s", fn, x86pt_strerror(st));
}

static void report(struct ptlib *p, const struct x86pt_flush *flush)
{
    struct os_flush *f = &p->result.flush;
    uint64_t start;
    memset(f, 0, sizeof *f);
    f->all = flush->flush_all;
    f->global = flush->global;
    f->dirs_freed = flush->dirs_freed;
    if (!flush->length)
        return;
    if (!hw_vaddr_from_canonical(flush->start.va, &start))
        snprintf(p->bad, sizeof p->bad, "the flush report starts at a non-canonical address");
    f->lo = start;
    f->hi = start + flush->length;
}

/* The kernel's gather (issue 12): unmaps hand it the directories they free, and the model
 * holds those until the shootdown is over (os_lib.c give_frame). */
struct kernel_gather {
    struct x86pt_gather g;
    x86pt_paddr_t frames[OS_PT_FRAMES_MAX];
};

static struct x86pt_gather *gather_start(struct kernel_gather *k)
{
    x86pt_gather_init(&k->g, k->frames, OS_PT_FRAMES_MAX);
    return &k->g;
}

static void gather_report(struct ptlib *p, const struct kernel_gather *k)
{
    for (unsigned i = 0; i < k->g.count; i++) {
        uint64_t f = k->frames[i].pa / X86PT_PAGE_4K;
        if (k->frames[i].pa % X86PT_PAGE_4K || f >= OS_PT_FRAMES_MAX) {
            snprintf(p->bad, sizeof p->bad, "the gather holds 0x%" PRIx64 ", not a page-table frame", k->frames[i].pa);
            return;
        }
        p->result.gathered[f / 64] |= UINT64_C(1) << (f % 64);
    }
}

static void run_range(struct ptlib *p, struct x86pt *pt, x86pt_vaddr_t va, struct x86pt_flush *flush)
{
    static const enum x86pt_page_policy pol[] = { X86PT_LARGEST_FIT, X86PT_ONLY_4K, X86PT_ONLY_2M, X86PT_ONLY_1G };
    const struct os_pt_request *rq = &p->rq;
    enum x86pt_straddle sm = rq->split ? X86PT_STRADDLE_SPLIT : X86PT_STRADDLE_FAIL;
    x86pt_status_t st, err = X86PT_E_STRADDLE;
    const char *fn = "unmap_range";
    if (rq->op == OS_PT_MAP) {
        st = x86pt_map_range(pt, va, x86pt_pa(rq->paddr), rq->length, request_flags(rq, rq->flags), pol[rq->policy & 3],
                             flush);
        err = X86PT_E_OVERLAP;
        fn = "map_range";
    } else if (rq->op == OS_PT_UNMAP) {
        struct kernel_gather k;
        st = x86pt_unmap_range_gather(pt, va, rq->length, sm, flush, gather_start(&k));
        gather_report(p, &k);
    } else {
        st = x86pt_protect_range(pt, va, rq->length, request_flags(rq, rq->flags), sm, flush);
        fn = "protect_range";
    }
    p->result.ok = st == X86PT_OK;
    p->result.nomem = st == X86PT_E_NOMEM;
    p->result.error = model_error(st);
    if (st != X86PT_OK && st != err && st != X86PT_E_NOMEM)
        refuse(p, fn, st);
}

static void run_request(struct ptlib *p)
{
    struct x86pt pt = handle(p);
    struct x86pt_flush flush;
    memset(&flush, 0, sizeof flush);
    const struct os_pt_request *rq = &p->rq;
    x86pt_vaddr_t va = x86pt_va(rq->raw ? rq->vaddr : hw_vaddr_to_canonical(rq->vaddr));
    x86pt_status_t st;
    memset(&p->result, 0, sizeof p->result);
    if (rq->op == OS_PT_INIT) {
        struct x86pt_mem mem = pt.mem;
        st = x86pt_init(&pt, &mem, p->maxphyaddr);
        p->result.ok = st == X86PT_OK;
        p->root = pt.root.pa;
    } else if (rq->op == OS_PT_DESTROY) {
        x86pt_destroy(&pt);
        p->result.ok = true;
    } else if (rq->op == OS_PT_ADOPT) {
        struct x86pt adopted = pt;
        struct x86pt_mem mem = pt.mem;
        st = x86pt_adopt(&adopted, &mem, p->maxphyaddr, x86pt_pa(p->root));
        p->result.ok = st == X86PT_OK;
        p->result.error = model_error(st);
        if (st != X86PT_OK && st != X86PT_E_MALFORMED)
            refuse(p, "adopt", st);
    } else if (rq->op == OS_PT_ITERATE) {
        struct x86pt_visitor v = { &p->result, list_mapping, NULL };
        st = x86pt_iterate(&pt, va, rq->length, &v);
        p->result.ok = st == X86PT_OK;
        p->result.error = model_error(st);
        if (st != X86PT_OK)
            refuse(p, "iterate", st);
    } else if (rq->op == OS_PT_RESOLVE) {
        struct x86pt_mapping m;
        st = x86pt_resolve(&pt, va, &m);
        p->result.ok = st == X86PT_OK;
        p->result.error = model_error(st);
        if (st != X86PT_OK && st != X86PT_E_NOTMAPPED)
            refuse(p, "resolve", st);
        if (st == X86PT_OK) {
            p->result.has_reported = hw_vaddr_from_canonical(m.base.va, &p->result.reported_base);
            from_lib_mapping(&m, &p->result.reported, &p->result.reported_ad);
        }
    } else if (rq->range) {
        run_range(p, &pt, va, &flush);
    } else if (rq->op == OS_PT_MAP) {
        st = x86pt_map(&pt, va, x86pt_pa(rq->pte.frame.base), rq->pte.frame.size, request_flags(rq, rq->pte.flags), &flush);
        p->result.ok = st == X86PT_OK;
        p->result.nomem = st == X86PT_E_NOMEM; /* the model says whether the allocator refused it */
        p->result.error = model_error(st);
        if (st != X86PT_OK && st != X86PT_E_OVERLAP && st != X86PT_E_NOMEM)
            refuse(p, "map", st);
    } else if (rq->op == OS_PT_UNMAP) {
        /* with a removed record (the entry cleared by a locked exchange, its A/D reported) at
         * addresses whose bit 12 is clear, without (a plain store) where it is set: both judged */
        struct x86pt_mapping removed;
        bool record = !(rq->vaddr & X86PT_PAGE_4K);
        struct kernel_gather k;
        st = x86pt_unmap_gather(&pt, va, record ? &removed : NULL, &flush, rq->gather ? gather_start(&k) : NULL);
        if (rq->gather)
            gather_report(p, &k);
        p->result.ok = st == X86PT_OK;
        p->result.error = model_error(st);
        if (st != X86PT_OK && st != X86PT_E_NOTMAPPED)
            refuse(p, "unmap", st);
        uint64_t b;
        if (st == X86PT_OK && record && hw_vaddr_from_canonical(removed.base.va, &b) && b == rq->vaddr) {
            p->result.has_reported = true;
            from_lib_mapping(&removed, &p->result.reported, &p->result.reported_ad);
        }
    } else if (rq->ad_clear) { /* the A/D extension: judged as a protect to the flags it has */
        unsigned was = 0;
        st = x86pt_test_and_clear_ad(&pt, va, rq->ad_clear, &was, &flush);
        p->result.ok = st == X86PT_OK;
        p->result.error = model_error(st);
        if (st != X86PT_OK && st != X86PT_E_NOTMAPPED)
            refuse(p, "test_and_clear_ad", st);
        p->result.has_reported = st == X86PT_OK;
        p->result.reported_ad = (was & X86PT_ACCESSED ? OS_AD_ACCESSED : 0u) | (was & X86PT_DIRTY ? OS_AD_DIRTY : 0u);
    } else {
        st = x86pt_protect(&pt, va, request_flags(rq, rq->flags), &flush);
        p->result.ok = st == X86PT_OK;
        p->result.error = model_error(st);
        if (st != X86PT_OK && st != X86PT_E_NOTMAPPED)
            refuse(p, "protect", st);
    }
    report(p, &flush);
    p->result.private_state = pt.walk_hint;
    memcpy(p->result.counts, p->counts, sizeof p->counts);
}

static void coroutine_main(void)
{
#ifdef PTLIB_ASAN
    __sanitizer_finish_switch_fiber(NULL, &driver_bottom, &driver_size);
#endif
    struct ptlib *p = running;
    run_request(p);
    p->pending.kind = OS_LIB_RETURN;
    to_driver(p);
    abort(); /* a returned operation is never resumed */
}

static void resume(struct ptlib *p)
{
    struct ptlib *outer = running;
    running = p;
    switch_to(&p->drv_sp, p->lib_sp, p->stack, STACK_SIZE);
    running = outer;
}

/* Start the operation afresh; it runs to its first action. */
static void restart(struct ptlib *p, const struct os_consts *c, const struct os_pt_request *rq,
                    const uint16_t *counts0, uint64_t private0, uint64_t phash0)
{
    p->rq = *rq;
    memcpy(p->counts0, counts0, sizeof p->counts0);
    memcpy(p->counts, counts0, sizeof p->counts);
    p->private0 = private0;
    p->maxphyaddr = c->hw.maxphyaddr;
    p->pt_frames = c->pt_frames;
    p->at = 0;
    p->consumed = 0;
    p->phash = phash0;
    p->bad[0] = 0;
    /* a fresh stack whose first switch "returns" into coroutine_main, with the alignment of a
     * function entry (rsp + 8 a multiple of 16); six zeroed callee-saved registers below */
    uintptr_t top = ((uintptr_t)p->stack + STACK_SIZE) & ~(uintptr_t)15;
    void **sp = (void **)top;
#ifdef PTLIB_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p->stack, STACK_SIZE); /* frames of an abandoned run */
#endif
    *--sp = NULL;                                 /* coroutine_main's return address: none */
    *--sp = (void *)(uintptr_t)coroutine_main;
    for (int i = 0; i < 6; i++)
        *--sp = NULL;
    p->lib_sp = sp;
    p->started = true;
    resume(p);
}

static bool has_response(enum os_lib_kind k) { return k == OS_LIB_LOAD || k == OS_LIB_CAS || k == OS_LIB_ALLOC; }

/* The running coroutine continues the run iff it runs the same operation from the same state
 * and the responses it was given are a prefix of the run's. */
static bool continues(const struct ptlib *p, const struct os_pt_request *rq, const uint16_t *counts0,
                      uint64_t private0, const struct os_run_buf *run, unsigned done)
{
    return p->started && p->at <= done && p->consumed <= run->nresp && run->phash[p->consumed] == p->phash &&
           p->private0 == private0 && !memcmp(&p->rq, rq, sizeof *rq) &&
           !memcmp(p->counts0, counts0, sizeof p->counts0);
}

static bool impl_next(void *ctx, const struct os_consts *c, const struct os_pt_request *rq, const uint16_t *counts0,
                      uint64_t private0, const struct os_run_buf *run, unsigned done, struct os_lib_action *a,
                      struct os_lib_result *res, char *why, size_t len)
{
    struct ptlib *p = ctx;
    if (!continues(p, rq, counts0, private0, run, done))
        restart(p, c, rq, counts0, private0, run->phash[0]);
    while (p->at < done) {
        if (p->pending.kind == OS_LIB_RETURN)
            return snprintf(why, len, "the model asks for action %u of an operation that returned after %u", done,
                            p->at), false;
        if (has_response(p->pending.kind)) {
            if (p->consumed >= run->nresp)
                return snprintf(why, len, "the run holds no response for action %u", p->at), false;
            p->response = run->resp[p->consumed++];
            p->phash = run->phash[p->consumed];
        }
        resume(p);
        p->at++;
    }
    if (p->bad[0])
        return snprintf(why, len, "%s", p->bad), false;
    *a = p->pending;
    if (a->kind == OS_LIB_RETURN)
        *res = p->result;
    return true;
}

/* ---- init: x86pt_init on the coroutine, its actions served straight from the memory ------- */

static bool serve_init_action(struct ptlib *p, const struct os_consts *c, struct hw_pmem *ptm, uint64_t *next_free)
{
    const struct os_lib_action *a = &p->pending;
    if (a->kind != OS_LIB_ALLOC && (a->pa % 8 || a->pa >= hw_pmem_bytes(ptm)))
        return false;
    switch (a->kind) {
    case OS_LIB_ALLOC:
        if (*next_free >= (uint64_t)c->pt_frames * HW_PAGE_SIZE)
            return false;
        p->response = *next_free;
        *next_free += HW_PAGE_SIZE;
        return true;
    case OS_LIB_LOAD:
        p->response = hw_pmem_read(ptm, a->pa);
        return true;
    case OS_LIB_STORE:
        return hw_pmem_write(ptm, a->pa, a->value);
    case OS_LIB_ZERO:
        for (uint64_t off = 0; off < HW_PAGE_SIZE; off += 8)
            if (!hw_pmem_write(ptm, a->pa + off, 0))
                return false;
        return true;
    default:
        return false; /* init frees nothing and needs no compare-exchange */
    }
}

static bool impl_init(void *ctx, const struct os_consts *c, struct hw_pmem *ptm, uint16_t *counts, uint64_t *root)
{
    struct ptlib *p = ctx;
    uint64_t next_free = (uint64_t)c->pt_reserved * HW_PAGE_SIZE;
    struct os_pt_request init = { .op = OS_PT_INIT };
    restart(p, c, &init, counts, 0, 0);
    while (p->pending.kind != OS_LIB_RETURN) {
        if (!serve_init_action(p, c, ptm, &next_free))
            return p->started = false, false;
        resume(p);
    }
    p->started = false; /* never continued: the model's runs start afresh */
    if (!p->result.ok || p->bad[0])
        return false;
    memcpy(counts, p->result.counts, sizeof p->result.counts);
    *root = p->root;
    return true;
}

struct ptlib *ptlib_new(unsigned pt_frames, uint64_t seed)
{
    (void)seed;
    struct ptlib *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->frames = pt_frames;
    p->stack = malloc(STACK_SIZE);
    p->impl.ctx = p;
    p->impl.next = impl_next;
    p->impl.init = impl_init;
    if (!p->stack) {
        ptlib_free(p);
        return NULL;
    }
    return p;
}

void ptlib_free(struct ptlib *p)
{
    if (!p)
        return;
    free(p->stack);
    free(p);
}

const struct os_pt_impl *ptlib_impl(struct ptlib *p) { return &p->impl; }
