/* SPDX-License-Identifier: Apache-2.0 */
/* The machine catalogue (docs/machines.md): the images qwdctl machines fetch may download, each
 * with its URL, its sha256, its description, its arch and its sidecar settings. Pure: parsing
 * and checking; downloading is qwdctl's. */
#ifndef QWD_CATALOGUE_H
#define QWD_CATALOGUE_H

#include <apr_pools.h>
#include <apr_tables.h>

#define QWD_SHA256_HEX_LENGTH 64

typedef struct qwd_catalogue_entry {
    const char *name;        /* the image's file name in the machines directory */
    const char *url;         /* http:// or https:// */
    const char *sha256;      /* 64 lowercase hex digits */
    const char *description; /* written to NAME.txt; NULL: none */
    const char *arch;        /* NULL: x86_64 */
    const char *sidecar;     /* NAME.warm's text (arch and warm settings); NULL: none */
    int line;                /* the line of its [NAME] */
} qwd_catalogue_entry;

/* Parses a catalogue: "[NAME]" sections of "key = value" lines (url and sha256 required;
 * description, arch, and any key of a machine's NAME.warm sidecar), '#' comment lines and blank
 * lines. NAME must be a machine name (a plain file name with an image extension: nothing that
 * leaves the machines directory). Returns NULL and sets *entries (qwd_catalogue_entry, in file
 * order), or the first problem as "line N: ..." (in pool). */
const char *qwd_catalogue_parse(apr_pool_t *pool, const char *text, apr_array_header_t **entries);

/* The entry called name, or NULL. */
const qwd_catalogue_entry *qwd_catalogue_find(const apr_array_header_t *entries, const char *name);

/* Whether text is 64 hex digits (either case). */
int qwd_sha256_hex_is_valid(const char *text);

#endif
