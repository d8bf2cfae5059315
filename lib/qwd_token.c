/* SPDX-License-Identifier: Apache-2.0 */
/* Random websockify tokens and session ids. The randomness comes from getrandom() via
 * apr_generate_random_bytes, so a token cannot be guessed from earlier ones. */
#include "qwd_token.h"

#include <apr_general.h>
#include <string.h>

#define RANDOM_BYTES 16 /* 128 bits */

static const char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void qwd_base64url_encode(char *out, const unsigned char *bytes, apr_size_t len)
{
    apr_size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)bytes[i] << 16 | (unsigned)bytes[i + 1] << 8 | bytes[i + 2];
        *out++ = base64url_alphabet[v >> 18 & 63];
        *out++ = base64url_alphabet[v >> 12 & 63];
        *out++ = base64url_alphabet[v >> 6 & 63];
        *out++ = base64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)bytes[i] << 16;
        *out++ = base64url_alphabet[v >> 18 & 63];
        *out++ = base64url_alphabet[v >> 12 & 63];
    }
    else if (len - i == 2) {
        unsigned v = (unsigned)bytes[i] << 16 | (unsigned)bytes[i + 1] << 8;
        *out++ = base64url_alphabet[v >> 18 & 63];
        *out++ = base64url_alphabet[v >> 12 & 63];
        *out++ = base64url_alphabet[v >> 6 & 63];
    }
    *out = '\0';
}

apr_status_t qwd_token_new(apr_pool_t *pool, char **token)
{
    unsigned char bytes[RANDOM_BYTES];
    apr_status_t rv = apr_generate_random_bytes(bytes, sizeof bytes);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *token = apr_palloc(pool, QWD_TOKEN_LEN + 1);
    qwd_base64url_encode(*token, bytes, sizeof bytes);
    return APR_SUCCESS;
}

/* len lowercase hex digits of fresh random bytes, in pool. */
static apr_status_t random_hex(apr_pool_t *pool, int len, char **out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[RANDOM_BYTES];
    apr_status_t rv = apr_generate_random_bytes(bytes, (apr_size_t)len / 2);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    char *id = apr_palloc(pool, (apr_size_t)len + 1);
    for (int i = 0; i < len / 2; i++) {
        id[2 * i] = hex[bytes[i] >> 4];
        id[2 * i + 1] = hex[bytes[i] & 15];
    }
    id[len] = '\0';
    *out = id;
    return APR_SUCCESS;
}

apr_status_t qwd_session_id_new(apr_pool_t *pool, char **session_id)
{
    return random_hex(pool, QWD_SESSION_ID_LEN, session_id);
}

apr_status_t qwd_share_id_new(apr_pool_t *pool, char **share_id)
{
    return random_hex(pool, QWD_SHARE_ID_LEN, share_id);
}

/* Whether text is exactly len characters, all from allowed. */
static int is_made_of(const char *text, apr_size_t len, const char *allowed)
{
    return text && strlen(text) == len && strspn(text, allowed) == len;
}

int qwd_token_is_valid(const char *text)
{
    return is_made_of(text, QWD_TOKEN_LEN, base64url_alphabet);
}

int qwd_session_id_is_valid(const char *text)
{
    return is_made_of(text, QWD_SESSION_ID_LEN, "0123456789abcdef");
}

int qwd_share_id_is_valid(const char *text)
{
    return is_made_of(text, QWD_SHARE_ID_LEN, "0123456789abcdef");
}
