/* SPDX-License-Identifier: Apache-2.0 */
/* Brute-force protection: failed logins counted per user and per client address in SQLite
 * (shared by every worker process); past QwdLoginThrottle, logins answer 429 for a while. */
#ifndef QWD_THROTTLE_H
#define QWD_THROTTLE_H

#include "qwd_request.h"
#include "qwd_store.h"

/* Before any password is checked: a 429 error (with Retry-After) when user or the client's
 * address has too many recent failures, even if the password would be right; else NULL. */
qwd_error_t *qwd_throttle_check(qwd_req_t *q, qwd_store_t *store, const char *user);
/* Counts a failed login of user from the client's address. */
void qwd_throttle_failed(qwd_req_t *q, qwd_store_t *store, const char *user);
/* A successful login forgets the user's failures (not the address'). */
void qwd_throttle_succeeded(qwd_req_t *q, qwd_store_t *store, const char *user);

#endif
