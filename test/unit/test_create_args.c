/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of mod_qwd/qwd_create_args.c: the API's JSON member types, the configured defaults
 * and the bounds, each refusal naming its field. */
#include "unit.h"
#include "stub.h"
#include "qwd_create_args.h"
#include "qwd_protocol.h"

static qwd_error_t *from_text(qwd_req_t *q, const char *text, qwd_create_args_t *args)
{
    /* bound to the request's pool, as qwd_body_json binds it: args point into it */
    json_t *body = qwd_json_pool_bind(q->r->pool, json_loads(text, 0, NULL));
    qwd_error_t *e = qwd_create_args_from_json(q, body, args);
    if (!e) {
        e = qwd_create_args_check(q, args);
    }
    return e;
}

UNIT_TEST(create_args_defaults_and_types)
{
    stub_fixture f;
    stub_fixture_open(&f);
    f.q->api = 1;
    qwd_create_args_t args;
    CHECK(from_text(f.q, "{\"machine\":\"tiny\"}", &args) == NULL);
    CHECK_STR(args.machine, "tiny");
    CHECK_INT(args.cpu, 1);
    CHECK_INT(args.memory_mib, 1024);
    CHECK_INT(args.lifetime_s, 3600);
    CHECK_INT(args.oneshot, 0);
    const char *wrong[][2] = {{"{\"machine\":5}", "machine"},
                              {"{\"machine\":\"t\",\"oneshot\":1}", "oneshot"},
                              {"{\"machine\":\"t\",\"cpu\":\"1\"}", "cpu"},
                              {"{\"machine\":\"t\",\"memory_mib\":1.5}", "memory_mib"},
                              {"{\"machine\":\"t\",\"lifetime_s\":-1}", "lifetime_s"},
                              {"{\"machine\":\"t\",\"cpu\":99}", "cpu"},
                              {"{\"machine\":\"t\",\"memory_mib\":1}", "memory_mib"},
                              {"{\"machine\":\"t\",\"lifetime_s\":59}", "lifetime_s"},
                              {"{\"machine\":\"\"}", "machine"},
                              {"{}", "machine"}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        qwd_error_t *e = from_text(f.q, wrong[i][0], &args);
        CHECK(e && e->status == 400);
        CHECK_STR(e ? e->field : NULL, wrong[i][1]);
    }
    apr_pool_destroy(f.pool);
}
