/* SPDX-License-Identifier: Apache-2.0 */
/* Host folders (docs/data-sessions.md): the admin's share definitions (helper key `share`),
 * which machines get which, and the one place a session's folder is found: its path template
 * expanded for the session's user and checked to lie below share_root, symlinks resolved. */
#ifndef QWD_HELPER_SHARES_H
#define QWD_HELPER_SHARES_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "qwd_argv.h"

/* Placeholders of a share's path template. */
#define SHARE_USER "@USER@"
#define SHARE_SESSION "@SESSION@"

/* One `share = NAME key=value...` line. */
typedef struct helper_share {
    const char *name;           /* what clients choose and see */
    const char *path_template;  /* absolute, below share_root, with @USER@ / @SESSION@ */
    const char *tag;            /* the 9p mount tag */
    int readonly;               /* mode=ro (the default) or rw */
    const char *security_model; /* security=, default mapped-xattr */
    const char *mount_point;    /* mount=, where the guest mounts it; default /mnt/TAG */
    const char *machines;       /* machines=, comma-separated shell patterns; default * */
    int optional;               /* optional=yes: offered, attached only when a start asks */
} helper_share;

/* Parses the text of one `share` line into *share (strings in pool). Returns NULL or a problem
 * naming what is wrong. */
const char *helper_share_parse(apr_pool_t *pool, const char *text, helper_share *share);

/* Parses every line of lines (strings) into an array of helper_share, checking that names and
 * tags are unique and that every template lies below root (required when there is a share).
 * Returns NULL or a problem. */
const char *helper_shares_parse(apr_pool_t *pool, const apr_array_header_t *lines, const char *root,
                                apr_array_header_t **shares);

/* The shares (helper_share *) of machine, in the configuration's order. */
apr_array_header_t *helper_shares_of(apr_pool_t *pool, const apr_array_header_t *shares,
                                     const char *machine);

/* The devices of a machine's shares (qwd_vm_share, each on placeholder, e.g. an empty
 * directory): what its profile, and so its warm image, has. */
const qwd_vm_share *helper_shares_devices(apr_pool_t *pool, const apr_array_header_t *of_machine,
                                          const char *placeholder);

/* Gives profile (of its machine) the devices of the machine's shares among shares (the helper's
 * helper_share array), each on placeholder: every VM of the profile has them, a session then
 * points each to its folder. */
void helper_shares_profile(apr_pool_t *pool, const apr_array_header_t *shares,
                           const char *placeholder, qwd_vm_profile *profile);

/* The folder of share for a session of user: the template expanded (each value one path
 * component: not empty, no '/', not "." or ".."), then resolved (symlinks followed) and
 * required to be a directory strictly below root, itself resolved. When the template's last
 * component has @SESSION@, that folder is made first (0700) if its parent lies below root.
 * Returns the resolved path,
 * or NULL with *problem (for the client: no host path in it) and *detail (for the log). */
const char *helper_share_folder(apr_pool_t *pool, const helper_share *share, const char *root,
                                const char *user, const char *session, const char **problem,
                                const char **detail);

#endif
