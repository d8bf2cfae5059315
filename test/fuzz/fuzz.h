/* SPDX-License-Identifier: Apache-2.0 */
/* What every fuzz target defines (libFuzzer's entry points), and the pool each input is parsed
 * in: created before, destroyed after, so a leak of the parser shows as a leak of the input. */
#ifndef QWD_FUZZ_H
#define QWD_FUZZ_H

#include <apr_general.h>
#include <apr_pools.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Initializes APR once (every target's LLVMFuzzerInitialize calls it). */
void fuzz_apr_init(void);

/* The input as a NUL-terminated copy in pool (inputs may hold NUL bytes: the copy keeps them
 * and size tells where it ends). */
char *fuzz_text(apr_pool_t *pool, const uint8_t *data, size_t size);

/* Splits *text at the first '\n' (written over): returns the part before it and leaves *text
 * after it; without a '\n' returns all of *text and leaves *text at its end. */
char *fuzz_line(char **text);

#endif
