/* SPDX-License-Identifier: Apache-2.0 */
/* A parser for application/x-www-form-urlencoded request bodies: pure C + APR, no httpd, so the
 * fuzz target (test/fuzz/fuzz_urlencoded.c) and the module share one decoder. */
#ifndef QWD_URLENCODED_H
#define QWD_URLENCODED_H

#include <apr_tables.h>

/* Decodes one urlencoded name or value in place ('+' is a space, %XX a byte). Returns NULL, or
 * why text is not correctly encoded: a '%' without two hex digits, or %00 (a NUL byte is no
 * text), as httpd's ap_unescape_urlencoded refuses them. */
const char *qwd_urlencoded_decode(char *text);

/* Splits body (NUL-terminated, written over) at '&' into name=value pairs, decodes both and
 * keeps the first value of each name in fields (pointing into body). Empty pairs are skipped;
 * a name without '=' has the empty value. Returns NULL, or why the body is malformed. */
const char *qwd_urlencoded_parse(char *body, apr_table_t *fields);

#endif
