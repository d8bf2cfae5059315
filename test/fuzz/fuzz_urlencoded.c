/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: application/x-www-form-urlencoded bodies (lib/qwd_urlencoded.c). Input: the body.
 * The fields decoded are read back, and none may hold a NUL byte. */
#include "fuzz.h"
#include "qwd_urlencoded.h"

#include <stdlib.h>
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
    /* the module reads bodies into a NUL-terminated buffer: a NUL inside ends the text */
    char *body = fuzz_text(pool, data, size);
    apr_table_t *fields = apr_table_make(pool, 8);
    if (!qwd_urlencoded_parse(body, fields)) {
        const apr_array_header_t *entries = apr_table_elts(fields);
        const apr_table_entry_t *entry = (const apr_table_entry_t *)entries->elts;
        volatile size_t total = 0;
        for (int i = 0; i < entries->nelts; i++) {
            total += strlen(entry[i].key) + strlen(entry[i].val);
            if (strchr(entry[i].val, '%') && !memchr(data, '%', size)) {
                abort(); /* a '%' decoded out of nothing */
            }
        }
    }
    apr_pool_destroy(pool);
    return 0;
}
