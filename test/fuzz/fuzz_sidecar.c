/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: a machine's warm sidecar (lib/qwd_warm.c), the key = value file an admin puts
 * beside an image. Input: the file's text. A parsed profile must make a usable key. */
#include "fuzz.h"
#include "qwd_warm.h"

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
    /* what the helper starts from (helper_warm.c): the sidecar only overrides */
    qwd_warm_sidecar sidecar = {.ready_delay_s = -1, .cpu = 1, .memory_mib = 1024, .video = "std"};
    apr_pool_create(&pool, NULL);
    if (!qwd_warm_sidecar_parse(pool, fuzz_text(pool, data, size), &sidecar)) {
        volatile size_t total = sidecar.ready_serial ? strlen(sidecar.ready_serial) : 0;
        (void)total;
        const char *key =
            qwd_warm_key(pool, "machine", sidecar.cpu, sidecar.memory_mib, sidecar.video);
        if (!key || strchr(key, '/')) {
            abort(); /* the key names a directory: never a path */
        }
    }
    apr_pool_destroy(pool);
    return 0;
}
