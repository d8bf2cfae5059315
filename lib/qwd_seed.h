/* SPDX-License-Identifier: Apache-2.0 */
/* The NoCloud seed of a cold session (docs/data-sessions.md): a small ISO 9660 image labelled
 * "cidata" holding user-data and meta-data, which cloud-init, cloudbase-init and the tiny test
 * VM read at boot. Built in memory by a pure function: no guestfs, no mkisofs. */
#ifndef QWD_SEED_H
#define QWD_SEED_H

#include <apr_pools.h>

/* The volume label NoCloud looks for, and the names of its two files. */
#define QWD_SEED_LABEL "cidata"
#define QWD_SEED_USER_DATA "user-data"
#define QWD_SEED_META_DATA "meta-data"
/* The seed's file in a session's directory. */
#define QWD_SESSION_SEED "seed.iso"

#define QWD_ISO_SECTOR 2048

/* One file of the image: name (up to 30 of A-Z 0-9 _ - . in any case; stored upper-case with
 * ";1", which Linux lists lower-case without the version), contents. */
typedef struct qwd_iso_file {
    const char *name;
    const char *data;
    apr_size_t length;
} qwd_iso_file;

/* An ISO 9660 image (level 1 layout, one root directory) of count files labelled label (up to
 * 32 characters), in pool. Files are sorted by name as the standard asks. Returns NULL and sets
 * *image and *size, or a reason (a bad name, too many or too large files). */
const char *qwd_iso_build(apr_pool_t *pool, const char *label, const qwd_iso_file *files, int count,
                          unsigned char **image, apr_size_t *size);

/* The NoCloud seed of session id: meta-data naming the instance qwd-ID (so cloud-init runs
 * user-data once for this session) and user_data. */
const char *qwd_seed_build(apr_pool_t *pool, const char *session_id, const char *user_data,
                           unsigned char **image, apr_size_t *size);

#endif
