/* SPDX-License-Identifier: Apache-2.0 */
/* Runs every registered unit test (each in a fresh APR pool) and prints one line per test
 * and the closing "N passed, N failed" line that CI reads. */
#include "unit.h"

#include <apr_general.h>
#include <stdlib.h>

#define UNIT_MAX_TESTS 512

static struct {
    const char *name;
    unit_test_fn fn;
} unit_tests[UNIT_MAX_TESTS];
static int unit_test_count;

void unit_register(const char *name, unit_test_fn fn)
{
    if (unit_test_count == UNIT_MAX_TESTS) {
        fprintf(stderr, "too many unit tests\n");
        abort();
    }
    unit_tests[unit_test_count].name = name;
    unit_tests[unit_test_count].fn = fn;
    unit_test_count++;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;

    apr_initialize();
    for (int i = 0; i < unit_test_count; i++) {
        int test_failed = 0;
        if (argc > 1 && !strstr(unit_tests[i].name, argv[1])) {
            continue;
        }
        unit_tests[i].fn(&test_failed);
        printf("%s %s\n", test_failed ? "FAIL" : "ok  ", unit_tests[i].name);
        if (test_failed) {
            failed++;
        }
        else {
            passed++;
        }
    }
    apr_terminate();
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
