/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lib/qwd_multipart: boundaries, fields, uploads, and bodies that are cut,
 * malformed or hostile. */
#include "unit.h"
#include "qwd_multipart.h"

#include <apr_general.h>

static apr_pool_t *new_pool(void)
{
    apr_pool_t *pool;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return pool;
}

static const qwd_multipart_part_t *part_at(apr_array_header_t *parts, int i)
{
    return &APR_ARRAY_IDX(parts, i, qwd_multipart_part_t);
}

UNIT_TEST(multipart_boundary_from_content_type)
{
    apr_pool_t *pool = new_pool();
    CHECK_STR(qwd_multipart_boundary(pool, "multipart/form-data; boundary=abc123"), "abc123");
    CHECK_STR(
        qwd_multipart_boundary(pool, "Multipart/Form-Data; charset=utf-8; boundary=\"a b:c\""),
        "a b:c");
    CHECK(qwd_multipart_boundary(pool, "application/x-www-form-urlencoded") == NULL);
    CHECK(qwd_multipart_boundary(pool, "multipart/form-data") == NULL);
    CHECK(qwd_multipart_boundary(pool, "multipart/form-data; boundary=") == NULL);
    CHECK(qwd_multipart_boundary(pool, "multipart/form-dataX; boundary=a") == NULL);
    CHECK(qwd_multipart_boundary(pool, NULL) == NULL);
    /* 71 characters: longer than RFC 2046 allows */
    CHECK(qwd_multipart_boundary(
              pool, "multipart/form-data; boundary="
                    "12345678901234567890123456789012345678901234567890123456789012345678901")
          == NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(multipart_fields_as_curl_sends_them)
{
    apr_pool_t *pool = new_pool();
    apr_array_header_t *parts;
    const char body[] = "--XyZ\r\n"
                        "Content-Disposition: form-data; name=\"user\"\r\n\r\n"
                        "alice\r\n"
                        "--XyZ\r\n"
                        "Content-Disposition: form-data; name=\"machine\"\r\n\r\n"
                        "tiny.qcow2\r\n"
                        "--XyZ\r\n"
                        "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
                        "\r\n"
                        "--XyZ--\r\n";
    CHECK(qwd_multipart_parse(pool, "XyZ", body, sizeof(body) - 1, &parts) == NULL);
    CHECK(parts != NULL);
    if (parts) {
        CHECK_INT(parts->nelts, 3);
        CHECK_STR(part_at(parts, 0)->name, "user");
        CHECK_STR(part_at(parts, 0)->value, "alice");
        CHECK(part_at(parts, 0)->filename == NULL);
        CHECK_STR(part_at(parts, 1)->name, "machine");
        CHECK_STR(part_at(parts, 1)->value, "tiny.qcow2");
        CHECK_STR(part_at(parts, 2)->value, "");
        CHECK_INT(part_at(parts, 2)->length, 0);
    }
    apr_pool_destroy(pool);
}

UNIT_TEST(multipart_upload_with_crlf_and_nul_inside)
{
    apr_pool_t *pool = new_pool();
    apr_array_header_t *parts;
    const char body[] = "preamble to ignore\r\n"
                        "--b\r\n"
                        "Content-Disposition: form-data; name=\"file\"; filename=\"a\\\"b.txt\"\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n"
                        "line1\r\n--not-the-boundary\r\n\0end\r\n"
                        "--b--";
    CHECK(qwd_multipart_parse(pool, "b", body, sizeof(body) - 1, &parts) == NULL);
    if (parts) {
        CHECK_INT(parts->nelts, 1);
        CHECK_STR(part_at(parts, 0)->name, "file");
        CHECK_STR(part_at(parts, 0)->filename, "a\"b.txt");
        CHECK_STR(part_at(parts, 0)->content_type, "application/octet-stream");
        CHECK_INT(part_at(parts, 0)->length, 31);
        CHECK(memcmp(part_at(parts, 0)->value, "line1\r\n--not-the-boundary\r\n\0end", 31) == 0);
    }
    apr_pool_destroy(pool);
}

UNIT_TEST(multipart_name_is_not_filename)
{
    apr_pool_t *pool = new_pool();
    apr_array_header_t *parts;
    const char body[] = "--b\r\n"
                        "Content-Disposition: form-data; filename=\"x\"; name=\"real\"\r\n\r\n"
                        "v\r\n--b--\r\n";
    CHECK(qwd_multipart_parse(pool, "b", body, sizeof(body) - 1, &parts) == NULL);
    if (parts) {
        CHECK_STR(part_at(parts, 0)->name, "real");
        CHECK_STR(part_at(parts, 0)->filename, "x");
    }
    apr_pool_destroy(pool);
}

UNIT_TEST(multipart_rejects_malformed_bodies)
{
    apr_pool_t *pool = new_pool();
    apr_array_header_t *parts = (apr_array_header_t *)1;
    const char *cut = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue";
    const char *no_headers_end = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n";
    const char *no_name = "--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--";
    const char *not_form = "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--b--";
    const char *no_colon = "--b\r\nbroken header\r\n\r\nv\r\n--b--";
    const char *other_boundary =
        "--c\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--c--";
    CHECK(qwd_multipart_parse(pool, "b", cut, strlen(cut), &parts) != NULL);
    CHECK(parts == NULL);
    CHECK(qwd_multipart_parse(pool, "b", no_headers_end, strlen(no_headers_end), &parts) != NULL);
    CHECK(qwd_multipart_parse(pool, "b", no_name, strlen(no_name), &parts) != NULL);
    CHECK(qwd_multipart_parse(pool, "b", not_form, strlen(not_form), &parts) != NULL);
    CHECK(qwd_multipart_parse(pool, "b", no_colon, strlen(no_colon), &parts) != NULL);
    CHECK(qwd_multipart_parse(pool, "b", other_boundary, strlen(other_boundary), &parts) != NULL);
    CHECK(qwd_multipart_parse(pool, "b", "", 0, &parts) != NULL);
    CHECK(qwd_multipart_parse(pool, "", "--\r\n", 4, &parts) != NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(multipart_empty_form)
{
    apr_pool_t *pool = new_pool();
    apr_array_header_t *parts;
    CHECK(qwd_multipart_parse(pool, "b", "--b--\r\n", 7, &parts) == NULL);
    CHECK(parts != NULL && parts->nelts == 0);
    apr_pool_destroy(pool);
}
