/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: qwd-helper's configuration file (support/helper_config.c): every key of its
 * table, then the checks the helper runs before it starts. Input: the file's bytes. */
#include "fuzz.h"
#include "helper_config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    helper_config *config = helper_config_defaults(pool);
    if (!helper_config_parse(pool, config, (const char *)data, size, "fuzz.conf")) {
        helper_config_check(pool, config);
    }
    apr_pool_destroy(pool);
    return 0;
}
