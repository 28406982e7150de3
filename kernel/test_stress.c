#include "kern.h"
bool test_stress(void) { return false; }
