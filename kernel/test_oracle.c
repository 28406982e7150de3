#include "kern.h"
bool test_oracle(void) { return false; }
