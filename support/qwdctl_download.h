/* SPDX-License-Identifier: Apache-2.0 */
/* One download of qwdctl machines fetch: HTTP(S) into a partial file that a later run resumes,
 * its sha256 computed on the way, a progress line on stderr. */
#ifndef QWDCTL_DOWNLOAD_H
#define QWDCTL_DOWNLOAD_H

#include <apr_pools.h>

#include "qwd_catalogue.h"

typedef struct qwdctl_download {
    const char *url;
    const char *path;  /* the partial file: created, or resumed after the bytes it has */
    const char *label; /* names it on the progress line */
    /* Filled by qwdctl_download_run: */
    char sha256[QWD_SHA256_HEX_LENGTH + 1]; /* of the whole file */
    apr_off_t kept;                         /* bytes that were there and were kept (resumed) */
    apr_off_t size;                         /* the file's size at the end */
} qwdctl_download;

/* Downloads url into path. A partial file is resumed with a Range request; a server that
 * answers with the whole file (200) gets it written anew. Returns NULL, or why it failed (in
 * pool): the partial file stays, for the next run to resume. */
const char *qwdctl_download_run(apr_pool_t *pool, qwdctl_download *download);

/* The sha256 of the file at path into hex; NULL or why not (in pool). */
const char *qwdctl_sha256_file(apr_pool_t *pool, const char *path,
                               char hex[QWD_SHA256_HEX_LENGTH + 1]);

#endif
