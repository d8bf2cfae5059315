/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal unit-test framework for libqwd's pure code: tests register themselves at load
 * time, unit_main.c runs them all and closes with "N passed, N failed". */
#ifndef QWD_UNIT_H
#define QWD_UNIT_H

#include <stdio.h>
#include <string.h>

typedef void (*unit_test_fn)(int *failed);
void unit_register(const char *name, unit_test_fn fn);

#define UNIT_TEST(name)                                            \
    static void name(int *unit_failed_);                           \
    __attribute__((constructor)) static void register_##name(void) \
    {                                                              \
        unit_register(#name, name);                                \
    }                                                              \
    static void name(int *unit_failed_)

#define CHECK(expr)                                                                    \
    do {                                                                               \
        if (!(expr)) {                                                                 \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #expr); \
            *unit_failed_ = 1;                                                         \
        }                                                                              \
    } while (0)

#define CHECK_STR(actual, expected)                                                         \
    do {                                                                                    \
        const char *a_ = (actual), *e_ = (expected);                                        \
        if ((a_ == NULL) != (e_ == NULL) || (a_ && strcmp(a_, e_) != 0)) {                  \
            fprintf(stderr, "  %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    #actual, a_ ? a_ : "(null)", e_ ? e_ : "(null)");                       \
            *unit_failed_ = 1;                                                              \
        }                                                                                   \
    } while (0)

#define CHECK_INT(actual, expected)                                                              \
    do {                                                                                         \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                          \
        if (a_ != e_) {                                                                          \
            fprintf(stderr, "  %s:%d: %s is %lld, expected %lld\n", __FILE__, __LINE__, #actual, \
                    a_, e_);                                                                     \
            *unit_failed_ = 1;                                                                   \
        }                                                                                        \
    } while (0)

#endif
