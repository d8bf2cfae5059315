/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: multipart/form-data bodies (lib/qwd_multipart.c). Input: the Content-Type header
 * value, a newline, then the body (any bytes). Every part found is read whole. */
#include "fuzz.h"
#include "qwd_multipart.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    char *text = fuzz_text(pool, data, size);
    const char *boundary = qwd_multipart_boundary(pool, fuzz_line(&text));
    apr_array_header_t *parts;
    if (boundary) {
        /* the body is the input after the first line, read in place (no NUL after it) */
        const uint8_t *newline = memchr(data, '\n', size);
        size_t offset = newline ? (size_t)(newline - data) + 1 : size;
        if (!qwd_multipart_parse(pool, boundary, (const char *)data + offset, size - offset,
                                 &parts)) {
            volatile size_t total = 0;
            for (int i = 0; i < parts->nelts; i++) {
                const qwd_multipart_part_t *part = &APR_ARRAY_IDX(parts, i, qwd_multipart_part_t);
                total += strlen(part->name) + (part->filename ? strlen(part->filename) : 0)
                         + (part->content_type ? strlen(part->content_type) : 0);
                total += (unsigned char)part->value[part->length]; /* its NUL */
            }
        }
    }
    apr_pool_destroy(pool);
    return 0;
}
