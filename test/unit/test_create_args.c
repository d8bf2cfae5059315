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

/* What a pending login keeps (qwd_otp.c): every set argument survives JSON text and back, and
 * an unset one stays unset (the defaults are the configuration's when the session starts). */
UNIT_TEST(create_args_json_round_trip)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_create_args_t args, back;
    qwd_create_args_init(&args);
    args.machine = "tiny.iso";
    args.cpu = 2;
    args.memory_mib = 512;
    args.lifetime_s = 900;
    args.oneshot = 1;
    args.video = "qxl";
    args.gpu = 1;
    args.shares = apr_array_make(f.pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(args.shares, const char *) = "ref";
    APR_ARRAY_PUSH(args.shares, const char *) = "out";
    args.scratch_gib = 3;
    args.script.text = "#!/bin/sh\necho \"hi\" $USER\n";
    args.script.url = "https://scripts.example.org/a.sh";
    args.script.name = "marker.sh";
    json_t *object = qwd_create_args_to_json(&args);
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    qwd_create_args_init(&back);
    CHECK(text && from_text(f.q, text, &back) == NULL);
    free(text);
    CHECK_STR(back.machine, "tiny.iso");
    CHECK_INT(back.cpu, 2);
    CHECK_INT(back.memory_mib, 512);
    CHECK_INT(back.lifetime_s, 900);
    CHECK_INT(back.oneshot, 1);
    CHECK_STR(back.video, "qxl");
    CHECK_INT(back.gpu, 1);
    CHECK(back.shares && back.shares->nelts == 2);
    CHECK_STR(back.shares ? APR_ARRAY_IDX(back.shares, 1, const char *) : NULL, "out");
    CHECK_INT(back.scratch_gib, 3);
    CHECK_STR(back.script.text, "#!/bin/sh\necho \"hi\" $USER\n");
    CHECK_STR(back.script.url, "https://scripts.example.org/a.sh");
    CHECK_STR(back.script.name, "marker.sh");

    qwd_create_args_init(&args);
    object = qwd_create_args_to_json(&args);
    text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    CHECK_STR(text, "{}");
    qwd_create_args_init(&back);
    back.machine = "x";
    CHECK(from_text(f.q, text, &back) != NULL); /* no machine: refused, nothing defaulted */
    free(text);
    apr_pool_destroy(f.pool);
}
