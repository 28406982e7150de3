/* The x86pt command-line tool: dispatches to one subcommand per table row. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    void (*usage)(const char *prog);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    { "dump", x86pt_dump_main, x86pt_dump_usage,
      "print the mappings of a page-table image (info tlb / info mem style, --dot, --svg)" },
    { "check", x86pt_check_main, x86pt_check_usage,
      "check the library against the Verus spec (random, exhaustive, combine, --mutants)" },
};
#define NSUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: x86pt <command> [options]\n       x86pt <command> --help\n\ncommands:\n");
    for (size_t i = 0; i < NSUBCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NSUBCOMMANDS; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "x86pt: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
