/* SPDX-License-Identifier: Apache-2.0 */
/* mod_qwd's side of the helper protocol (docs/protocol.md): one connection per request, taken
 * from the child's idle connections or opened on first use with mod_cgid-style retries while
 * the helper (re)starts, and the helper's error codes mapped to HTTP failures. */
#ifndef QWD_HELPER_CLIENT_H
#define QWD_HELPER_CLIENT_H

#include "qwd_request.h"

/* Calls op with arguments (stolen; NULL → {}). On success *result is the "return" object,
 * bound to r->pool. On failure returns the mapped error: helper unreachable → 503, its
 * limit_reached → 429, bad_argument/unknown_machine → 400, not_found → 404, else 5xx. The
 * helper's own error code is in e->code ("helper_unavailable" when unreachable). */
qwd_error_t *qwd_helper_call(qwd_req_t *q, const char *op, json_t *arguments, json_t **result);

#endif
