/* SPDX-License-Identifier: Apache-2.0 */
/* Small text helpers shared by the `key = value` readers (helper config, warm sidecars). */
#ifndef QWD_TEXT_H
#define QWD_TEXT_H

#include <apr_pools.h>

/* Strips blanks at both ends, in place; returns the first non-blank character. */
char *qwd_trim(char *text);

/* text with each placeholder of pairs ({placeholder, value}..., then NULL) replaced by its value,
 * in one pass: a value is never searched for placeholders again. In pool. */
const char *qwd_substitute(apr_pool_t *pool, const char *text, const char *const *pairs);

#endif
