/* SPDX-License-Identifier: Apache-2.0 */
/* Small text helpers shared by the `key = value` readers (helper config, warm sidecars). */
#ifndef QWD_TEXT_H
#define QWD_TEXT_H

/* Strips blanks at both ends, in place; returns the first non-blank character. */
char *qwd_trim(char *text);

#endif
