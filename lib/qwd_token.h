/* SPDX-License-Identifier: Apache-2.0 */
/* Secrets and identifiers for sessions: websockify tokens (128 bits, base64url, 22 chars) and
 * session ids (128 bits, 32 lowercase hex), both from the system CSPRNG. */
#ifndef QWD_TOKEN_H
#define QWD_TOKEN_H

#include <apr_errno.h>
#include <apr_pools.h>

#define QWD_TOKEN_LEN 22
#define QWD_SESSION_ID_LEN 32

/* A fresh random token / session id in pool (NUL-terminated). */
apr_status_t qwd_token_new(apr_pool_t *pool, char **token);
apr_status_t qwd_session_id_new(apr_pool_t *pool, char **session_id);

/* Whether text has exactly the shape of a token / session id (safe as a file name). */
int qwd_token_is_valid(const char *text);
int qwd_session_id_is_valid(const char *text);

/* Encodes len bytes as unpadded base64url into out (room for 4*len/3+3 bytes). Exposed for
 * the unit tests. */
void qwd_base64url_encode(char *out, const unsigned char *bytes, apr_size_t len);

#endif
