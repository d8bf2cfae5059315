/* SPDX-License-Identifier: Apache-2.0 */
/* Keys, CSRF tokens and identity cookies. The key comes from QwdSecretFile (created 0600 when
 * missing: survives any restart) or, without it, is random per parent process: generated in
 * post_config and kept in the process pool, so graceful restarts and every worker share it. */
#include "qwd_secret.h"
#include "qwd_logno.h"

#include <apr_escape.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <util_cookies.h>

APLOG_USE_MODULE(qwd);

#define NONCE_COOKIE "qwd_nonce"
#define USER_COOKIE "qwd_user"
#define PROCESS_KEY "qwd-process-secret"
/* The per-browser nonce the CSRF tokens are bound to: random bytes, sent as hex. */
#define NONCE_BYTES 16
#define NONCE_COOKIE_MAX_AGE (10 * 365 * 86400)

/* HMAC-SHA256 of data with the keyed MAC: a copy of it (no fetch of the algorithm, no hashing
 * of the key). Returns the digest's length, 0 when libcrypto fails. */
static unsigned int keyed_mac(EVP_MAC_CTX *keyed, const char *data, unsigned char *digest)
{
    EVP_MAC_CTX *mac = EVP_MAC_CTX_dup(keyed);
    size_t len = 0;
    int ok = mac && EVP_MAC_update(mac, (const unsigned char *)data, strlen(data))
             && EVP_MAC_final(mac, digest, &len, EVP_MAX_MD_SIZE);
    EVP_MAC_CTX_free(mac);
    return ok ? (unsigned int)len : 0;
}

/* HMAC-SHA256 of data under the server's key, in hex; "" (which matches nothing) in the
 * unlikely case libcrypto fails. */
static const char *sign(qwd_req_t *q, const char *data)
{
    qwd_server_config_t *scfg = ap_get_module_config(q->r->server->module_config, &qwd_module);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (scfg->keyed_mac) {
        digest_len = keyed_mac(scfg->keyed_mac, data, digest);
    }
    else if (!HMAC(EVP_sha256(), scfg->secret, sizeof(scfg->secret), (const unsigned char *)data,
                   strlen(data), digest, &digest_len)) {
        digest_len = 0;
    }
    if (digest_len * 2 != QWD_MAC_HEX_LEN) {
        return "";
    }
    return apr_pescape_hex(q->r->pool, digest, digest_len, 0);
}

static apr_status_t free_keyed_mac(void *data)
{
    qwd_server_config_t *scfg = data;
    EVP_MAC_CTX_free(scfg->keyed_mac);
    scfg->keyed_mac = NULL;
    return APR_SUCCESS;
}

void qwd_secret_child_init(apr_pool_t *pchild, server_rec *main_server)
{
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    char digest_name[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                           OSSL_PARAM_construct_end()};
    for (server_rec *s = main_server; hmac && s; s = s->next) {
        qwd_server_config_t *scfg = ap_get_module_config(s->module_config, &qwd_module);
        EVP_MAC_CTX *keyed;
        if (!scfg->has_secret || scfg->keyed_mac) {
            continue; /* no key yet, or a record met before (servers that share one) */
        }
        keyed = EVP_MAC_CTX_new(hmac);
        if (keyed && EVP_MAC_init(keyed, scfg->secret, sizeof(scfg->secret), params)) {
            scfg->keyed_mac = keyed;
            apr_pool_cleanup_register(pchild, scfg, free_keyed_mac, apr_pool_cleanup_null);
        }
        else {
            EVP_MAC_CTX_free(keyed); /* this server's MACs are made by the one-shot HMAC */
        }
    }
    EVP_MAC_free(hmac); /* each context holds its own reference */
}

/* Compares in time independent of where the strings differ; an empty one matches nothing. */
static int same_secret(const char *a, const char *b)
{
    apr_size_t len = strlen(a);
    return len && len == strlen(b) && CRYPTO_memcmp(a, b, len) == 0;
}

static apr_status_t read_or_create_secret_file(apr_pool_t *pool, const char *path,
                                               unsigned char *secret, const char **why)
{
    apr_file_t *file;
    apr_size_t got = QWD_SECRET_LEN;
    apr_status_t rv = apr_file_open(&file, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read_full(file, secret, QWD_SECRET_LEN, &got);
        apr_file_close(file);
        *why = "cannot read 32 bytes from it";
        return rv;
    }
    if (!APR_STATUS_IS_ENOENT(rv)) {
        *why = "cannot open it";
        return rv;
    }
    /* APR_FOPEN_EXCL: two servers starting at once never overwrite each other's key */
    rv = apr_generate_random_bytes(secret, QWD_SECRET_LEN);
    if (rv == APR_SUCCESS) {
        rv = apr_file_open(&file, path,
                           APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL | APR_FOPEN_BINARY,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE, pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(file, secret, QWD_SECRET_LEN, NULL);
        if (rv == APR_SUCCESS) {
            rv = apr_file_close(file);
        }
        else {
            apr_file_close(file);
        }
    }
    *why = "cannot create it";
    return rv;
}

int qwd_secret_post_config(apr_pool_t *pconf, server_rec *main_server)
{
    apr_pool_t *process_pool = main_server->process->pool;
    unsigned char *process_secret = NULL;
    server_rec *s;

    apr_pool_userdata_get((void **)&process_secret, PROCESS_KEY, process_pool);
    if (!process_secret) {
        process_secret = apr_palloc(process_pool, QWD_SECRET_LEN);
        if (apr_generate_random_bytes(process_secret, QWD_SECRET_LEN) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, main_server,
                         QWDLOGNO(00601) "cannot generate a random key");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_pool_userdata_set(process_secret, PROCESS_KEY, apr_pool_cleanup_null, process_pool);
    }
    for (s = main_server; s; s = s->next) {
        qwd_server_config_t *scfg = ap_get_module_config(s->module_config, &qwd_module);
        if (scfg->secret_file) {
            const char *why = "";
            apr_status_t rv =
                read_or_create_secret_file(pconf, scfg->secret_file, scfg->secret, &why);
            if (rv != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, QWDLOGNO(00602) "QwdSecretFile %s: %s",
                             scfg->secret_file, why);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        else {
            memcpy(scfg->secret, process_secret, QWD_SECRET_LEN);
        }
        scfg->has_secret = 1;
    }
    return OK;
}

static void set_cookie(qwd_req_t *q, const char *name, const char *value, int max_age)
{
    /* err_headers_out: the cookie is sent with error pages too */
    apr_table_addn(q->r->err_headers_out, "Set-Cookie",
                   apr_psprintf(q->r->pool, "%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s",
                                name, value, *q->base ? q->base : "/", max_age,
                                ap_http_scheme(q->r)[4] == 's' ? "; Secure" : ""));
}

static const char *read_cookie(qwd_req_t *q, const char *name)
{
    const char *value = NULL;
    if (ap_cookie_read(q->r, name, &value, 0) != APR_SUCCESS || !value || !*value) {
        return NULL;
    }
    return value;
}

/* A page with a Stop button per session asks for the token once per row: sign once. */
#define CSRF_TOKEN_NOTE "qwd-csrf-token"

const char *qwd_csrf_token(qwd_req_t *q)
{
    const char *token = apr_table_get(q->r->notes, CSRF_TOKEN_NOTE);
    if (token) {
        return token;
    }
    const char *nonce = apr_table_get(q->r->notes, NONCE_COOKIE);
    if (!nonce) {
        nonce = read_cookie(q, NONCE_COOKIE);
    }
    if (!nonce || strlen(nonce) != 2 * NONCE_BYTES
        || strspn(nonce, "0123456789abcdef") != 2 * NONCE_BYTES) {
        unsigned char bytes[NONCE_BYTES];
        apr_generate_random_bytes(bytes, sizeof(bytes));
        nonce = apr_pescape_hex(q->r->pool, bytes, sizeof(bytes), 0);
        set_cookie(q, NONCE_COOKIE, nonce, NONCE_COOKIE_MAX_AGE);
    }
    apr_table_setn(q->r->notes, NONCE_COOKIE, nonce);
    token = sign(q, apr_pstrcat(q->r->pool, "csrf|", nonce, NULL));
    apr_table_setn(q->r->notes, CSRF_TOKEN_NOTE, token);
    return token;
}

int qwd_csrf_valid(qwd_req_t *q, const char *token)
{
    const char *nonce = read_cookie(q, NONCE_COOKIE);
    if (!nonce || !token) {
        return 0;
    }
    return same_secret(sign(q, apr_pstrcat(q->r->pool, "csrf|", nonce, NULL)), token);
}

void qwd_identity_cookie_set(qwd_req_t *q, const char *user)
{
    int lifetime = qwd_cfg_cookie_lifetime(q->cfg);
    const char *user_hex, *expires, *payload;
    if (!user) {
        set_cookie(q, USER_COOKIE, "", 0);
        return;
    }
    /* hex keeps any user name (quotes, ';', markup) a valid cookie value */
    user_hex = apr_pescape_hex(q->r->pool, user, strlen(user), 0);
    expires = apr_psprintf(q->r->pool, "%" APR_TIME_T_FMT, apr_time_sec(apr_time_now()) + lifetime);
    payload = apr_pstrcat(q->r->pool, user_hex, ".", expires, NULL);
    set_cookie(q, USER_COOKIE,
               apr_pstrcat(q->r->pool, payload, ".",
                           sign(q, apr_pstrcat(q->r->pool, "user|", payload, NULL)), NULL),
               lifetime);
}

const char *qwd_identity_cookie_user(qwd_req_t *q)
{
    const char *cookie = read_cookie(q, USER_COOKIE);
    const char *last_dot, *first_dot;
    char *payload, *user_hex, *user;
    const void *user_bytes;
    apr_size_t user_len;
    if (!cookie || !(last_dot = strrchr(cookie, '.')) || !(first_dot = strchr(cookie, '.'))
        || first_dot == last_dot) {
        return NULL;
    }
    payload = apr_pstrmemdup(q->r->pool, cookie, last_dot - cookie);
    if (!same_secret(sign(q, apr_pstrcat(q->r->pool, "user|", payload, NULL)), last_dot + 1)) {
        return NULL;
    }
    if (apr_atoi64(first_dot + 1) < apr_time_sec(apr_time_now())) {
        return NULL;
    }
    user_hex = apr_pstrmemdup(q->r->pool, cookie, first_dot - cookie);
    if (!*user_hex || strlen(user_hex) % 2
        || !(user_bytes = apr_punescape_hex(q->r->pool, user_hex, 0, &user_len))) {
        return NULL;
    }
    user = apr_pstrmemdup(q->r->pool, user_bytes, user_len);
    return strlen(user) == user_len ? user : NULL; /* a name is text: no NUL inside */
}

const char *qwd_secret_sign(qwd_req_t *q, const char *data)
{
    return sign(q, data);
}

int qwd_secret_equal(const char *a, const char *b)
{
    return a && b && same_secret(a, b);
}
