/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of mod_qwd/qwd_secret.c: HMAC-SHA256 under the server's key, CSRF tokens bound to
 * the browser's nonce cookie, the signed identity cookie, and the key file of QwdSecretFile. */
#include "unit.h"
#include "stub.h"
#include "qwd_secret.h"

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <sys/stat.h>

/* The stub server's key is 32 bytes of 'k'; the expected values come from Python's hmac. */
#define MAC_OF_WS_ABC "c1a1663ecf272cd861a9e9a695823196b8442474aa5f17330b1163de15b6df9a"
#define NONCE "00112233445566778899aabbccddeeff"
#define CSRF_OF_NONCE "aad59f922802c244b84060a1c688b65f3d321270ebd926c41fe1d40c3e0be54b"

UNIT_TEST(secret_signs_with_hmac_sha256_of_the_server_key)
{
    stub_fixture f;
    stub_fixture_open(&f);
    CHECK_STR(qwd_secret_sign(f.q, "ws|abc"), MAC_OF_WS_ABC);
    CHECK_INT(strlen(qwd_secret_sign(f.q, "")), QWD_MAC_HEX_LEN);
    CHECK(qwd_secret_equal(MAC_OF_WS_ABC, qwd_secret_sign(f.q, "ws|abc")));
    CHECK(!qwd_secret_equal(MAC_OF_WS_ABC, qwd_secret_sign(f.q, "ws|abd")));
    CHECK(!qwd_secret_equal("", ""));
    CHECK(!qwd_secret_equal(NULL, MAC_OF_WS_ABC));
    CHECK(!qwd_secret_equal("abc", "abcd"));
    apr_pool_destroy(f.pool);
}

UNIT_TEST(secret_signs_the_same_with_the_childs_keyed_context)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_server_config_t *scfg = stub_server_config(f.s);
    apr_pool_t *child;
    const char *inputs[] = {"", "ws|abc", "link|0123456789abcdef0123456789abcdef",
                            /* over SHA-256's 64-byte block */
                            "user|6c6f6e67206e616d65206f662061206c6f6e6720757365722c2068657265."
                            "9999999999|and more"};
    const char *one_shot[sizeof inputs / sizeof inputs[0]];
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        one_shot[i] = qwd_secret_sign(f.q, inputs[i]);
    }
    CHECK(apr_pool_create(&child, f.pool) == APR_SUCCESS);
    qwd_secret_child_init(child, f.s);
    CHECK(scfg->keyed_mac != NULL);
    CHECK_STR(qwd_secret_sign(f.q, "ws|abc"), MAC_OF_WS_ABC);
    CHECK_STR(qwd_csrf_token(stub_req(f.pool, f.s, "qwd_nonce=" NONCE)), CSRF_OF_NONCE);
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        CHECK_STR(qwd_secret_sign(f.q, inputs[i]), one_shot[i]);
    }
    /* the child's pool frees it: signing goes on with the one-shot HMAC */
    apr_pool_destroy(child);
    CHECK(scfg->keyed_mac == NULL);
    CHECK_STR(qwd_secret_sign(f.q, "ws|abc"), MAC_OF_WS_ABC);
    apr_pool_destroy(f.pool);
}

UNIT_TEST(csrf_token_is_bound_to_the_browsers_nonce)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_req_t *first = f.q, *next, *other;
    const char *token = qwd_csrf_token(first), *nonce = stub_set_cookie(first, "qwd_nonce", NULL);
    /* a browser without a nonce gets one, and the token of it, once per request */
    CHECK(nonce && strlen(nonce) == 32 && strspn(nonce, "0123456789abcdef") == 32);
    CHECK_INT(strlen(token), QWD_MAC_HEX_LEN);
    CHECK(qwd_csrf_token(first) == token);
    /* its next request presents the nonce: the token is valid, altered ones are not */
    next = stub_req(f.pool, f.s, apr_pstrcat(f.pool, "lang=fr; qwd_nonce=", nonce, NULL));
    CHECK(qwd_csrf_valid(next, token));
    CHECK_STR(qwd_csrf_token(next), token);
    CHECK(stub_set_cookie(next, "qwd_nonce", NULL) == NULL);
    CHECK(!qwd_csrf_valid(next, apr_pstrcat(f.pool, token[0] == '0' ? "1" : "0", token + 1, NULL)));
    CHECK(!qwd_csrf_valid(next, ""));
    CHECK(!qwd_csrf_valid(next, NULL));
    /* another browser's token is worth nothing here */
    other = stub_req(f.pool, f.s, "qwd_nonce=" NONCE);
    CHECK_STR(qwd_csrf_token(other), CSRF_OF_NONCE);
    CHECK(!qwd_csrf_valid(next, CSRF_OF_NONCE));
    CHECK(!qwd_csrf_valid(stub_req(f.pool, f.s, NULL), token)); /* no nonce cookie */
    apr_pool_destroy(f.pool);
}

UNIT_TEST(identity_cookie_round_trips_and_refuses_tampering)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_req_t *login = f.q;
    const char *cookie, *attributes, *payload, *expired;
    char *forged;
    qwd_identity_cookie_set(login, "Ann \"<b>\"; x");
    cookie = stub_set_cookie(login, "qwd_user", &attributes);
    CHECK(cookie != NULL);
    CHECK_STR(attributes, "; Path=/qwd; Max-Age=86400; HttpOnly; SameSite=Lax");
    CHECK_STR(qwd_identity_cookie_user(
                  stub_req(f.pool, f.s, apr_pstrcat(f.pool, "qwd_user=", cookie, NULL))),
              "Ann \"<b>\"; x");
    /* another user's name with this MAC */
    forged = apr_pstrdup(f.pool, cookie);
    forged[0] = forged[0] == '4' ? '5' : '4';
    CHECK(qwd_identity_cookie_user(
              stub_req(f.pool, f.s, apr_pstrcat(f.pool, "qwd_user=", forged, NULL)))
          == NULL);
    /* a cookie signed with another key */
    memset(stub_server_config(f.s)->secret, 'x', QWD_SECRET_LEN);
    CHECK(qwd_identity_cookie_user(
              stub_req(f.pool, f.s, apr_pstrcat(f.pool, "qwd_user=", cookie, NULL)))
          == NULL);
    /* a properly signed cookie past its expiry, and one with a NUL in the name */
    payload = "616e6e.1000";
    expired =
        apr_pstrcat(f.pool, "qwd_user=", payload, ".",
                    qwd_secret_sign(login, apr_pstrcat(f.pool, "user|", payload, NULL)), NULL);
    CHECK(qwd_identity_cookie_user(stub_req(f.pool, f.s, expired)) == NULL);
    payload = "616e006e.99999999999";
    expired =
        apr_pstrcat(f.pool, "qwd_user=", payload, ".",
                    qwd_secret_sign(login, apr_pstrcat(f.pool, "user|", payload, NULL)), NULL);
    CHECK(qwd_identity_cookie_user(stub_req(f.pool, f.s, expired)) == NULL);
    CHECK(qwd_identity_cookie_user(stub_req(f.pool, f.s, "qwd_user=nodots")) == NULL);
    /* logging out clears the cookie */
    qwd_identity_cookie_set(login, NULL);
    CHECK_STR(stub_set_cookie(login, "qwd_user", &attributes), "");
    CHECK_STR(attributes, "; Path=/qwd; Max-Age=0; HttpOnly; SameSite=Lax");
    apr_pool_destroy(f.pool);
}

UNIT_TEST(secret_file_is_created_0600_and_read_back)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_server_config_t *scfg = stub_server_config(f.s);
    unsigned char first[QWD_SECRET_LEN];
    const char *dir, *path;
    apr_finfo_t info;
    apr_file_t *file;
    CHECK(apr_temp_dir_get(&dir, f.pool) == APR_SUCCESS);
    dir = apr_pstrcat(f.pool, dir, "/qwd-unit-XXXXXX", NULL);
    CHECK(mkdtemp((char *)dir) != NULL);
    path = apr_pstrcat(f.pool, dir, "/secret.key", NULL);
    scfg->secret_file = path;
    CHECK_INT(qwd_secret_post_config(f.pool, f.s), OK);
    CHECK(apr_stat(&info, path, APR_FINFO_PROT | APR_FINFO_SIZE, f.pool) == APR_SUCCESS);
    CHECK_INT(info.size, QWD_SECRET_LEN);
    CHECK_INT(info.protection, APR_FPROT_UREAD | APR_FPROT_UWRITE);
    memcpy(first, scfg->secret, QWD_SECRET_LEN);
    memset(scfg->secret, 0, QWD_SECRET_LEN);
    CHECK_INT(qwd_secret_post_config(f.pool, f.s), OK); /* a restart reads the same key */
    CHECK(memcmp(first, scfg->secret, QWD_SECRET_LEN) == 0);
    /* a file too short to be a key stops the server, naming it */
    CHECK(apr_file_open(&file, path, APR_FOPEN_WRITE | APR_FOPEN_TRUNCATE, 0, f.pool)
          == APR_SUCCESS);
    CHECK(apr_file_write_full(file, "short", 5, NULL) == APR_SUCCESS);
    apr_file_close(file);
    stub_log_clear();
    CHECK_INT(qwd_secret_post_config(f.pool, f.s), HTTP_INTERNAL_SERVER_ERROR);
    CHECK(strstr(stub_last_log(), "QWD00602") && strstr(stub_last_log(), path));
    apr_file_remove(path, f.pool);
    apr_dir_remove(dir, f.pool);
    apr_pool_destroy(f.pool);
}

UNIT_TEST(secret_without_a_file_is_one_per_process)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_server_config_t *scfg = stub_server_config(f.s);
    unsigned char first[QWD_SECRET_LEN], zero[QWD_SECRET_LEN] = {0};
    CHECK_INT(qwd_secret_post_config(f.pool, f.s), OK);
    CHECK(memcmp(scfg->secret, zero, QWD_SECRET_LEN) != 0);
    memcpy(first, scfg->secret, QWD_SECRET_LEN);
    memset(scfg->secret, 0, QWD_SECRET_LEN);
    CHECK_INT(qwd_secret_post_config(f.pool, f.s), OK); /* a graceful restart keeps it */
    CHECK(memcmp(first, scfg->secret, QWD_SECRET_LEN) == 0);
    apr_pool_destroy(f.pool);
}
