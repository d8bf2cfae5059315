/* SPDX-License-Identifier: Apache-2.0 */
/* Reads an image file of a machines directory the way the helper attaches it: its format from
 * its name and bytes, and every file its header makes QEMU open, which must stay in the
 * directory. Shared by the helper's machine scan and qwdctl's catalogue fetch. */
#ifndef QWD_IMAGE_FILE_H
#define QWD_IMAGE_FILE_H

#include <apr_pools.h>

/* Longest chain of backing files (or VMDK parents) followed. */
#define QWD_IMAGE_CHAIN_MAX 16

typedef struct qwd_image_inspection {
    const char *content_format; /* what its bytes are (qwd_image_format) */
    const char *format;         /* what it is attached as; NULL when refused */
    apr_uint64_t virtual_size;  /* from its header, 0 when it does not say */
    const char *problem;        /* why it is refused, or NULL */
} qwd_image_inspection;

/* Inspects the file path (absolute, symlinks resolved) of the machine called name in the
 * directory real_dir (absolute, resolved): its name states its format (qwd_image_name_format),
 * its bytes must agree (qwd_image_attach_format), and each file its header refers to (a backing
 * file, recursively; a data file, extents) must be a regular file inside real_dir, named
 * without a protocol prefix. Fills *out (strings in pool); returns 0, or -1 when path cannot be
 * read at all (out->problem says why). */
int qwd_image_inspect(apr_pool_t *pool, const char *real_dir, const char *name, const char *path,
                      qwd_image_inspection *out);

#endif
