/* SPDX-License-Identifier: Apache-2.0 */
/* A parser for multipart/form-data request bodies (RFC 7578): pure C + APR, no httpd, so the
 * module can accept browser uploads and curl -F, and the unit tests can feed it anything. */
#ifndef QWD_MULTIPART_H
#define QWD_MULTIPART_H

#include <apr_pools.h>
#include <apr_tables.h>

/* One part of the body. value points into a pool copy of the body and is NUL-terminated (a
 * binary value may hold NULs: use length). */
typedef struct {
    const char *name;         /* the form field's name (Content-Disposition name=) */
    const char *filename;     /* NULL unless the part is a file upload */
    const char *content_type; /* NULL when the part has no Content-Type */
    const char *value;
    apr_size_t length;
} qwd_multipart_part_t;

/* The boundary parameter of a Content-Type header value (multipart/form-data; boundary=...),
 * allocated in pool. Returns NULL when the type is not multipart/form-data or has no valid
 * boundary (1-70 characters, RFC 2046). */
const char *qwd_multipart_boundary(apr_pool_t *pool, const char *content_type);

/* Parses body (length bytes) into *parts, an array of qwd_multipart_part_t. Returns NULL on
 * success, else a short reason (allocated in pool or static) and leaves *parts NULL. */
const char *qwd_multipart_parse(apr_pool_t *pool, const char *boundary, const char *body,
                                apr_size_t length, apr_array_header_t **parts);

#endif
