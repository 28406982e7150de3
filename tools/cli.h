/* Subcommands of the x86pt command-line tool; each is a main() of its own. */
#ifndef X86PT_TOOLS_CLI_H
#define X86PT_TOOLS_CLI_H

/* x86pt dump: print the mappings of a page-table image (tools/dump.c). */
int x86pt_dump_main(int argc, char **argv);
void x86pt_dump_usage(const char *prog);

/* x86pt check: the refinement checker (check/cli.c). */
int x86pt_check_main(int argc, char **argv);
void x86pt_check_usage(const char *prog);

#endif
