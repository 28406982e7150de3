/*
 * kmain: console, IDT, libx86pt's tables as the live CR3, the APs, then the
 * test named on the multiboot command line ("test=<name> cpus=<n>").
 * The exit status says pass or fail; the serial log says why.
 */
#include "kern.h"

/* Multiboot information (Multiboot spec §3.3): flags, then cmdline at 16. */
struct mb_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};
#define MB_INFO_CMDLINE (1u << 2)
#define MB_BOOT_MAGIC 0x2BADB002

static const char *cmdline = "";

/* The value of "key=" in the command line, copied to buf. */
bool cmdline_get(const char *key, char *buf, size_t len)
{
    for (const char *p = cmdline; *p;) {
        while (*p == ' ')
            p++;
        const char *k = key;
        while (*k && *p == *k)
            p++, k++;
        if (!*k && *p == '=') {
            size_t n = 0;
            for (p++; *p && *p != ' ' && n + 1 < len; p++)
                buf[n++] = *p;
            buf[n] = 0;
            return true;
        }
        while (*p && *p != ' ')
            p++;
    }
    return false;
}

/* A decimal "key=<n>" of the command line, or def. */
uint64_t cmdline_num(const char *key, uint64_t def)
{
    char buf[24];
    if (!cmdline_get(key, buf, sizeof buf) || !buf[0])
        return def;
    uint64_t v = 0;
    for (const char *p = buf; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

static const struct {
    const char *name;
    bool (*run)(void);
} tests[] = {
    { "basic", test_basic },
    { "attrs", test_attrs },
    { "faults", test_faults },
    { "stress", test_stress },
    { "oracle", test_oracle },
};

void kmain(uint32_t magic, uint32_t info_pa)
{
    console_init();
    if (magic != MB_BOOT_MAGIC)
        panic("not booted by multiboot (eax %x)", magic);
    const struct mb_info *info = (const struct mb_info *)(uintptr_t)info_pa;
    if (info->flags & MB_INFO_CMDLINE)
        cmdline = (const char *)(uintptr_t)info->cmdline;
    idt_init_bsp();
    mem_init();
    lapic_init();
    char name[32] = "", cpus[8] = "1";
    cmdline_get("test", name, sizeof name);
    cmdline_get("cpus", cpus, sizeof cpus);
    unsigned want = (unsigned)(cpus[0] - '0');
    unsigned got = want > 1 ? smp_start_aps_n(want) : 1;
    kprintf("x86pt kernel: test=%s cores=%u maxphyaddr=%u root=%lx\n", name, got, kpt.maxphyaddr, kpt.root.pa);
    if (got != want)
        panic("%u cores came up, %u expected", got, want);
    irq_enable();
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (kstrcmp(name, tests[i].name) == 0) {
            bool ok = tests[i].run();
            kprintf("%s: %s\n", name, ok ? "PASS" : "FAIL");
            qemu_exit(ok ? EXIT_PASS : EXIT_FAIL);
        }
    }
    panic("unknown test '%s'", name);
}
