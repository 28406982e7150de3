/* The checker as a program of its own (build/check/x86pt-check), so that the mutant runner can
 * build and run it against a mutated library; `x86pt check` is the same code. */
#include "check.h"

int main(int argc, char **argv) { return check_main(argc, argv); }
