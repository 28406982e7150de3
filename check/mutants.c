/*
 * `x86pt check --mutants`: for each mutant of check/mutants.def, build the checker against a
 * library compiled with -DX86PT_MUTANT=id (make BUILD=build-mutant-id), run it on a short
 * random configuration, then on the range workload (random --ranges), then the small
 * exhaustive one, then the small range one (exhaustive --ranges), and report which check caught it. A mutant of the OS model (id >= 100: a
 * kernel protocol bug, planted by a checker option) runs the unmutated library with that
 * option.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mutant {
    int id;
    const char *name, *where, *what;
};

static const struct mutant mutants[] = {
#define X(id, name, where, what) { id, #name, where, what },
#include "mutants.def"
#undef X
};

/* Run cmd; the line after "FAILED " (the check) goes to caught. true if it printed VIOLATION. */
static bool run_caught(const char *cmd, char *caught, size_t len)
{
    FILE *f = popen(cmd, "r");
    char line[1024];
    bool violation = false;
    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "FAILED ");
        if (p && !caught[0]) {
            p += 7;
            char *colon = strstr(p, ": ");
            size_t n = colon ? (size_t)(colon - p) : strlen(p);
            snprintf(caught, len, "%.*s", (int)n, p);
        }
        if (strstr(line, "verdict: VIOLATION"))
            violation = true;
    }
    pclose(f);
    return violation;
}

/* The checker option that plants an OS-model mutant ("" for a library mutant). */
static const char *os_mutant_option(int id)
{
    switch (id) {
    case 101: return "--free-early";
    case 102: return "--no-map-fence";
    case 103: return "--no-shootdown-fence";
    default: return "";
    }
}

int check_mutants(const char *self, const struct check_config *cfg)
{
    (void)self;
    const char *make = getenv("MAKE") ? getenv("MAKE") : "make";
    unsigned n = sizeof mutants / sizeof mutants[0], caught_n = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct mutant *m = &mutants[i];
        char cmd[1024], caught[256] = "";
        int build = m->id >= 100 ? 0 : m->id; /* build-mutant-0: the library as shipped */
        const char *opt = os_mutant_option(m->id);
        snprintf(cmd, sizeof cmd,
                 "%s -s -j2 --no-print-directory LIB_EXTRA=-DX86PT_MUTANT=%d BUILD=build-mutant-%d "
                 "build-mutant-%d/check/x86pt-check >/dev/null 2>&1",
                 make, build, build, build);
        if (system(cmd) != 0) {
            printf("mutant %s: MISSED (build failed)\n", m->name);
            continue;
        }
        snprintf(cmd, sizeof cmd, "build-mutant-%d/check/x86pt-check random %s --steps %llu --seed %llu 2>&1", build,
                 opt, (unsigned long long)(cfg->steps < 200000 ? cfg->steps : 200000), (unsigned long long)cfg->seed);
        bool hit = run_caught(cmd, caught, sizeof caught);
        for (unsigned k = 0; !hit && k < 2; k++) { /* the range workload (check_config_ranges), two seeds */
            snprintf(cmd, sizeof cmd, "build-mutant-%d/check/x86pt-check random --ranges %s --steps 400000 --seed %llu 2>&1",
                     build, opt, (unsigned long long)(cfg->seed + k));
            hit = run_caught(cmd, caught, sizeof caught);
        }
        for (unsigned k = 0; !hit && k < 2; k++) { /* the small exhaustive configuration, then the range one */
            snprintf(cmd, sizeof cmd, "build-mutant-%d/check/x86pt-check exhaustive %s%s --max-states 300000 2>&1",
                     build, k ? "--ranges " : "", opt);
            hit = run_caught(cmd, caught, sizeof caught);
        }
        if (hit) {
            caught_n++;
            printf("mutant %s: caught by %s\n", m->name, caught[0] ? caught : "?");
        } else {
            printf("mutant %s: MISSED\n", m->name);
        }
        fflush(stdout);
    }
    printf("mutants: %u caught of %u\n", caught_n, n);
    return caught_n == n ? 0 : 1;
}
