/* SPDX-License-Identifier: Apache-2.0 */
/* qwdctl machines list and fetch: the machine catalogue against the machines directory, and
 * verified downloads into it (docs/machines.md). */
#ifndef QWDCTL_MACHINES_H
#define QWDCTL_MACHINES_H

#include <apr_pools.h>

typedef struct qwdctl_machines_options {
    const char *config;       /* the helper's configuration (machines_dir, catalogue, socket);
                                 NULL: HELPER_DEFAULT_CONFIG when it exists */
    const char *catalogue;    /* overrides the configuration's */
    const char *machines_dir; /* overrides the configuration's */
    const char *socket;       /* --socket */
    int json;
} qwdctl_machines_options;

/* Prints every machine of the catalogue and of the machines directory with its state:
 * installed, outdated, available or local. Returns the exit status. */
int qwdctl_machines_list(apr_pool_t *pool, const qwdctl_machines_options *options);

/* Fetches the catalogue entries names (count of them; none: every entry), each verified
 * against its sha256 before it is placed, then asks the helper to rescan. Returns the exit
 * status. */
int qwdctl_machines_fetch(apr_pool_t *pool, const qwdctl_machines_options *options,
                          const char *const *names, int count);

#endif
