/* SPDX-License-Identifier: Apache-2.0 */
/* A small blocking client of qwd-helper, shared by qwdctl and mod_qwd: connect (greeting +
 * hello), then one call at a time, each with a deadline. Short reads and oversize replies are
 * handled here so callers only see whole JSON replies. */
#ifndef QWD_PROTO_CLIENT_H
#define QWD_PROTO_CLIENT_H

#include <apr_errno.h>
#include <apr_pools.h>
#include <jansson.h>

/* Returned by qwd_proto_client_call when the helper answered with an error reply (the error
 * object is in *error): the connection is still usable unless the code says otherwise. */
#define QWD_PROTO_HELPER_ERROR (APR_OS_START_USERERR + 1)

typedef struct qwd_proto_client qwd_proto_client;

/* Connects to the helper's Unix socket at socket_path, reads the greeting and says hello with
 * QWD_PROTO_VERSION. Every later read/write of this client must finish within timeout_ms
 * (≤ 0: 10 s). The socket is closed when pool is cleared (or by qwd_proto_client_close).
 *
 * Returns APR_SUCCESS and sets *client, or a failure status and sets *error (bound to pool) to
 * {"code": C, "message": M} where C is:
 *   "unreachable" - the socket could not be connected; the status is the connect() errno as
 *                   an apr_status_t, so APR_STATUS_IS_ECONNREFUSED / APR_STATUS_IS_ENOENT tell
 *                   a helper that is (re)starting, worth a short retry;
 *   "timeout"     - no greeting or hello reply in time (status APR_TIMEUP);
 *   "protocol"    - the peer does not speak this protocol (status APR_EGENERAL);
 *   a helper code - "forbidden", "bad_version"... (status QWD_PROTO_HELPER_ERROR). */
apr_status_t qwd_proto_client_connect(apr_pool_t *pool, const char *socket_path, int timeout_ms,
                                      qwd_proto_client **client, json_t **error);

/* Sends {"execute": op, "arguments": arguments} (arguments borrowed; NULL → {}) and waits for
 * the reply to it. Result and error objects are bound to pool (a per-call pool, e.g. the
 * request's).
 *   APR_SUCCESS             → *result = the "return" object;
 *   QWD_PROTO_HELPER_ERROR  → *error = the helper's error object {code, message, ...};
 *   anything else           → *error = {"code": "unreachable"|"timeout"|"protocol", message};
 *                             the connection is closed and the client cannot be used again. */
apr_status_t qwd_proto_client_call(qwd_proto_client *client, apr_pool_t *pool, const char *op,
                                   json_t *arguments, json_t **result, json_t **error);

/* The helper's greeting object ({"version", "server", "capabilities"}), owned by the client. */
json_t *qwd_proto_client_greeting(qwd_proto_client *client);

/* Whether an idle connection can take another call: open, nothing unread, and no EOF or data
 * waiting on its socket (a helper that timed it out or restarted closed it). */
int qwd_proto_client_idle_ok(qwd_proto_client *client);

/* Closes the connection now (also done by the pool cleanup). */
void qwd_proto_client_close(qwd_proto_client *client);

/* The socket path to use: explicit if not NULL, else $QWD_HELPER_SOCKET, else the compiled-in
 * default QWD_PROTO_DEFAULT_SOCKET. */
const char *qwd_proto_client_socket_path(const char *explicit_path);

#endif
