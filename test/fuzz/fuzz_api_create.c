/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the JSON API's create body (POST /api/sessions) up to the checked request:
 * parsed as qwd_body_json parses it, then mod_qwd/qwd_create_args.c (member types, defaults,
 * bounds), linked against the unit tests' httpd stubs. Input: the body. */
#include "fuzz.h"
#include "qwd_create_args.h"
#include "stub.h"

#include <stdlib.h>

static server_rec *server;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    apr_pool_t *pool;
    fuzz_apr_init();
    apr_pool_create(&pool, NULL);
    server = stub_server(pool);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    json_error_t error;
    qwd_create_args_t args;
    apr_pool_create(&pool, NULL);
    qwd_req_t *q = stub_req(pool, server, NULL);
    q->api = 1;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &error);
    if (json_is_object(body) && !qwd_create_args_from_json(q, body, &args)
        && !qwd_create_args_check(q, &args)) {
        /* what qwd_session_create goes on with */
        if (!args.machine || !*args.machine || args.cpu < 1 || args.memory_mib < 1
            || args.lifetime_s < QWD_MIN_LIFETIME_S || (args.oneshot != 0 && args.oneshot != 1)) {
            abort();
        }
    }
    json_decref(body);
    apr_pool_destroy(pool);
    return 0;
}
