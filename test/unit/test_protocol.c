/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the qwd-helper wire codec: request/reply/error shapes, line parsing, the size
 * limit on both encode and parse. */
#include "unit.h"

#include "qwd_protocol.h"

#include <apr_strings.h>
#include <stdlib.h>

UNIT_TEST(protocol_request_encodes_on_one_line)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    json_t *request = qwd_json_pool_bind(
        pool, qwd_proto_request("start", json_pack("{s:s}", "machine", "a\nb"), json_integer(7)));
    char *line = qwd_proto_encode(pool, request);
    CHECK_STR(line, "{\"execute\":\"start\",\"arguments\":{\"machine\":\"a\\nb\"},\"id\":7}\n");
    apr_pool_destroy(pool);
}

UNIT_TEST(protocol_reply_and_error_echo_id)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    json_t *id = qwd_json_pool_bind(pool, json_string("x1"));
    char *reply = qwd_proto_encode(
        pool, qwd_json_pool_bind(pool, qwd_proto_reply(json_pack("{s:i}", "n", 1), id)));
    CHECK_STR(reply, "{\"return\":{\"n\":1},\"id\":\"x1\"}\n");
    char *error = qwd_proto_encode(
        pool, qwd_json_pool_bind(pool, qwd_proto_error(QWD_ERR_BAD_ARGUMENT, "cpu too big",
                                                       json_pack("{s:s,s:s}", "field", "cpu",
                                                                 "code", "overridden"),
                                                       NULL)));
    CHECK_STR(error, "{\"error\":{\"field\":\"cpu\",\"code\":\"bad_argument\",\"message\":\"cpu "
                     "too big\"}}\n");
    apr_pool_destroy(pool);
}

UNIT_TEST(protocol_parse_line_accepts_object_and_crlf)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    const char *code = NULL, *message = NULL, *op = NULL;
    const char *text = "{\"execute\":\"list\",\"id\":3}\r\n";
    json_t *request = qwd_proto_parse_line(pool, text, strlen(text), &code, &message);
    CHECK(request != NULL);
    json_t *arguments, *id;
    CHECK(qwd_proto_request_parts(request, &op, &arguments, &id, &message) == NULL);
    CHECK_STR(op, "list");
    CHECK(json_is_object(arguments));
    CHECK_INT(json_integer_value(id), 3);
    apr_pool_destroy(pool);
}

UNIT_TEST(protocol_parse_line_rejects_bad_json_and_non_objects)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    const char *code = NULL, *message = NULL;
    CHECK(qwd_proto_parse_line(pool, "{nope", 5, &code, &message) == NULL);
    CHECK_STR(code, QWD_ERR_BAD_JSON);
    code = NULL;
    CHECK(qwd_proto_parse_line(pool, "[1]\n", 4, &code, &message) == NULL);
    CHECK_STR(code, QWD_ERR_BAD_JSON);
    json_t *request = qwd_proto_parse_line(pool, "{\"execute\":5}", 13, &code, &message);
    CHECK(request != NULL);
    const char *op;
    json_t *arguments, *id;
    CHECK_STR(qwd_proto_request_parts(request, &op, &arguments, &id, &message), QWD_ERR_BAD_JSON);
    request =
        qwd_proto_parse_line(pool, "{\"execute\":\"x\",\"arguments\":[]}", 30, &code, &message);
    CHECK_STR(qwd_proto_request_parts(request, &op, &arguments, &id, &message), QWD_ERR_BAD_JSON);
    apr_pool_destroy(pool);
}

UNIT_TEST(protocol_size_limit_on_parse_and_encode)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    apr_size_t big = QWD_PROTO_MAX_MESSAGE + 1;
    char *text = apr_palloc(pool, big + 1);
    memset(text, ' ', big);
    text[0] = '{';
    text[big - 1] = '}';
    text[big] = '\0';
    const char *code = NULL, *message = NULL;
    CHECK(qwd_proto_parse_line(pool, text, big, &code, &message) == NULL);
    CHECK_STR(code, QWD_ERR_TOO_LARGE);
    /* Exactly at the limit (plus its newline) is still fine. */
    text[big - 2] = '}';
    CHECK(qwd_proto_parse_line(pool, text, big - 1, &code, &message) != NULL);

    char *long_string = apr_palloc(pool, big + 1);
    memset(long_string, 'a', big);
    long_string[big] = '\0';
    json_t *message_json = qwd_json_pool_bind(pool, json_pack("{s:s}", "x", long_string));
    CHECK(qwd_proto_encode(pool, message_json) == NULL);
    apr_pool_destroy(pool);
}
