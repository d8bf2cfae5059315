/* SPDX-License-Identifier: Apache-2.0 */
/* The signing key of a server and what it signs: CSRF tokens bound to a per-browser nonce
 * cookie, and the identity cookie that lets a browser see "its" sessions. HMAC-SHA256 of
 * libcrypto, compared in constant time (CRYPTO_memcmp). */
#ifndef QWD_SECRET_H
#define QWD_SECRET_H

#include "qwd_request.h"

/* post_config (parent, before forking): loads or creates every server's key. Returns OK or
 * HTTP_INTERNAL_SERVER_ERROR after logging why. */
int qwd_secret_post_config(apr_pool_t *pconf, server_rec *main_server);
/* child_init: every server's keyed HMAC, freed with pchild (without one, each MAC is made by
 * libcrypto's one-shot HMAC, ~5 times slower). */
void qwd_secret_child_init(apr_pool_t *pchild, server_rec *main_server);

/* The CSRF token of this browser (sets the nonce cookie when the browser has none yet). */
const char *qwd_csrf_token(qwd_req_t *q);
/* Whether token is this browser's CSRF token. */
int qwd_csrf_valid(qwd_req_t *q, const char *token);

/* Sets the signed identity cookie for user (QwdCookieLifetime), or clears it when user is
 * NULL. */
void qwd_identity_cookie_set(qwd_req_t *q, const char *user);
/* The user of a valid, unexpired identity cookie, or NULL. */
const char *qwd_identity_cookie_user(qwd_req_t *q);

/* The length of a MAC in hex: HMAC-SHA256, 32 bytes. */
#define QWD_MAC_HEX_LEN 64

/* HMAC of data under the server's key, QWD_MAC_HEX_LEN hex digits (websocket tickets:
 * qwd_ticket.c). */
const char *qwd_secret_sign(qwd_req_t *q, const char *data);
/* Whether two secrets are equal, in time independent of where they differ. */
int qwd_secret_equal(const char *a, const char *b);

#endif
