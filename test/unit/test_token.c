/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of session ids and websockify tokens: shape, alphabet, uniqueness, validation. */
#include "unit.h"

#include "qwd_token.h"

UNIT_TEST(token_has_22_base64url_chars_and_differs)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    char *first, *second;
    CHECK(qwd_token_new(pool, &first) == APR_SUCCESS);
    CHECK(qwd_token_new(pool, &second) == APR_SUCCESS);
    CHECK_INT(strlen(first), 22);
    CHECK(qwd_token_is_valid(first));
    CHECK(strcmp(first, second) != 0);
    apr_pool_destroy(pool);
}

UNIT_TEST(session_id_has_32_lowercase_hex)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    char *id;
    CHECK(qwd_session_id_new(pool, &id) == APR_SUCCESS);
    CHECK_INT(strlen(id), 32);
    CHECK(qwd_session_id_is_valid(id));
    CHECK(!qwd_session_id_is_valid("0123456789ABCDEF0123456789abcdef"));
    CHECK(!qwd_session_id_is_valid("../3456789abcdef0123456789abcdef"));
    CHECK(!qwd_session_id_is_valid("0123"));
    CHECK(!qwd_session_id_is_valid(NULL));
    apr_pool_destroy(pool);
}

UNIT_TEST(share_id_has_16_lowercase_hex)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    char *id, *other;
    CHECK(qwd_share_id_new(pool, &id) == APR_SUCCESS);
    CHECK(qwd_share_id_new(pool, &other) == APR_SUCCESS);
    CHECK_INT(strlen(id), 16);
    CHECK(qwd_share_id_is_valid(id));
    CHECK(strcmp(id, other) != 0);
    CHECK(!qwd_share_id_is_valid("0123456789ABCDEF"));
    CHECK(!qwd_share_id_is_valid("../456789abcdef0"));
    CHECK(!qwd_share_id_is_valid("0123456789abcdef0"));
    CHECK(!qwd_share_id_is_valid(NULL));
    apr_pool_destroy(pool);
}

UNIT_TEST(token_validation_rejects_other_shapes)
{
    CHECK(qwd_token_is_valid("AAAAAAAAAAAAAAAAAAAA-_"));
    CHECK(!qwd_token_is_valid("AAAAAAAAAAAAAAAAAAAA+/"));
    CHECK(!qwd_token_is_valid("AAAAAAAAAAAAAAAAAAAAA"));
    CHECK(!qwd_token_is_valid("AAAAAAAAAAAAAAAAAAAA:x"));
}

UNIT_TEST(base64url_matches_rfc4648_vectors)
{
    char out[16];
    qwd_base64url_encode(out, (const unsigned char *)"f", 1);
    CHECK_STR(out, "Zg");
    qwd_base64url_encode(out, (const unsigned char *)"fo", 2);
    CHECK_STR(out, "Zm8");
    qwd_base64url_encode(out, (const unsigned char *)"foobar", 6);
    CHECK_STR(out, "Zm9vYmFy");
    qwd_base64url_encode(out, (const unsigned char *)"\xfb\xff", 2);
    CHECK_STR(out, "-_8");
}
