/* The model's one way to say why a step, an invariant or a check refuses:
 * format into the caller's buffer (if any) and return false. */
#ifndef X86PT_MODEL_WHY_H
#define X86PT_MODEL_WHY_H

#include <stdbool.h>
#include <stddef.h>

bool model_refuse(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
