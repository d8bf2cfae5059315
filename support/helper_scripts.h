/* SPDX-License-Identifier: Apache-2.0 */
/* The admin's start-up scripts (docs/data-sessions.md): the files of scripts_dir, listed and
 * described like machines, that a start may name. */
#ifndef QWD_HELPER_SCRIPTS_H
#define QWD_HELPER_SCRIPTS_H

#include <apr_pools.h>
#include <apr_tables.h>

#define SCRIPT_DESCRIPTION_SUFFIX ".txt"

typedef struct helper_script {
    const char *name;        /* as listed and as clients name it */
    const char *path;        /* resolved, inside scripts_dir */
    const char *description; /* first line of NAME.txt (or STEM.txt), or "" */
} helper_script;

/* The scripts of scripts_dir (NULL: none), sorted by name: regular files inside it whose name
 * is acceptable (as a machine's) and does not end in .txt, of at most
 * QWD_PROTO_SCRIPT_TEXT_MAX bytes. */
apr_array_header_t *helper_scripts_scan(apr_pool_t *pool, const char *scripts_dir);

/* The text of the listed script called name, or NULL with *problem. */
const char *helper_script_text(apr_pool_t *pool, const char *scripts_dir, const char *name,
                               const char **problem);

#endif
