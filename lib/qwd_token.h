/* SPDX-License-Identifier: Apache-2.0 */
/* Secrets and identifiers for sessions: websockify tokens (128 bits, base64url, 22 chars),
 * session ids (128 bits, 32 lowercase hex) and share ids (64 bits, 16 lowercase hex), all from
 * the system CSPRNG. */
#ifndef QWD_TOKEN_H
#define QWD_TOKEN_H

#include <apr_errno.h>
#include <apr_pools.h>

#define QWD_TOKEN_LEN 22
#define QWD_SESSION_ID_LEN 32
#define QWD_SHARE_ID_LEN 16

/* A fresh random token / session id in pool (NUL-terminated). */
apr_status_t qwd_token_new(apr_pool_t *pool, char **token);
apr_status_t qwd_session_id_new(apr_pool_t *pool, char **session_id);
apr_status_t qwd_share_id_new(apr_pool_t *pool, char **share_id);

/* Whether text has exactly the shape of a token / session id (safe as a file name). */
int qwd_token_is_valid(const char *text);
int qwd_session_id_is_valid(const char *text);
int qwd_share_id_is_valid(const char *text);

/* Encodes len bytes as unpadded base64url into out (room for 4*len/3+3 bytes). Exposed for
 * the unit tests. */
void qwd_base64url_encode(char *out, const unsigned char *bytes, apr_size_t len);

#endif
