/* SPDX-License-Identifier: Apache-2.0 */
/* The helper client: lib/qwd_proto_client does the wire work; this file adds what the module
 * needs around it — retry while the helper restarts, connections reused within a request and
 * kept between requests (qwd_helper_conns.c), HTTP mapping. */
#include "qwd_helper_client.h"
#include "qwd_helper_conns.h"
#include "qwd_proto_client.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

/* A start makes a qcow2 overlay and execs QEMU: allow it time; every other op is quick. */
#define CALL_TIMEOUT_MS 30000
/* ECONNREFUSED/ENOENT mean the helper is (re)starting: retry after 50, 100, 200, 400 ms. */
#define CONNECT_RETRIES 4
#define CONNECT_FIRST_DELAY_MS 50

static const char *error_text(json_t *error, const char *key)
{
    const char *text = error ? json_string_value(json_object_get(error, key)) : NULL;
    return text ? text : "";
}

static qwd_error_t *unavailable(qwd_req_t *q, apr_status_t rv, json_t *error)
{
    qwd_error_t *e = qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(00101), "helper_unavailable",
                             "The virtual machine service is not available right now; "
                             "please try again in a minute.");
    e->rv = rv;
    e->detail = apr_psprintf(q->r->pool, "qwd-helper at %s: %s %s",
                             q->cfg->helper_socket ? q->cfg->helper_socket : "(unset)",
                             error_text(error, "code"), error_text(error, "message"));
    return e;
}

/* At the end of the request a healthy connection goes back to the child's cache. */
static apr_status_t give_back(void *data)
{
    qwd_req_t *q = data;
    if (q->helper) {
        qwd_helper_conns_give_back(q->cfg->helper_socket, q->helper, q->helper_pool);
        q->helper = NULL;
        q->helper_pool = NULL;
    }
    return APR_SUCCESS;
}

/* A failed call closed the client: its pool goes too. */
static void drop_connection(qwd_req_t *q)
{
    if (q->helper_pool) {
        apr_pool_destroy(q->helper_pool);
    }
    q->helper = NULL;
    q->helper_pool = NULL;
}

/* A kept connection (*reused set) or a new one, in its own unmanaged pool. */
static qwd_error_t *connect_helper(qwd_req_t *q, int *reused)
{
    apr_interval_time_t delay = apr_time_from_msec(CONNECT_FIRST_DELAY_MS);
    json_t *error = NULL;
    apr_status_t rv;
    int attempt;

    if (!q->cfg->helper_socket) {
        qwd_error_t *e = unavailable(q, 0, NULL);
        e->logno = QWDLOGNO(00102);
        e->detail = "QwdHelperSocket is not set for this location";
        return e;
    }
    if (!q->helper_cleanup) {
        apr_pool_cleanup_register(q->r->pool, q, give_back, apr_pool_cleanup_null);
        q->helper_cleanup = 1;
    }
    q->helper = qwd_helper_conns_take(q->cfg->helper_socket, &q->helper_pool);
    *reused = q->helper != NULL;
    if (q->helper) {
        return NULL;
    }
    for (attempt = 0;; attempt++) {
        if (apr_pool_create_unmanaged_ex(&q->helper_pool, NULL, NULL) != APR_SUCCESS) {
            q->helper_pool = NULL;
            return unavailable(q, APR_ENOMEM, NULL);
        }
        rv = qwd_proto_client_connect(q->helper_pool, q->cfg->helper_socket, CALL_TIMEOUT_MS,
                                      &q->helper, &error);
        if (rv == APR_SUCCESS) {
            return NULL;
        }
        /* error lives in the connection's pool: word the failure before it goes */
        qwd_error_t *e = unavailable(q, rv, error);
        drop_connection(q);
        if (attempt >= CONNECT_RETRIES
            || !(APR_STATUS_IS_ECONNREFUSED(rv) || APR_STATUS_IS_ENOENT(rv))) {
            return e;
        }
        apr_sleep(delay);
        delay *= 2;
    }
}

static qwd_error_t *map_helper_error(qwd_req_t *q, const char *op, json_t *error)
{
    const char *code = error_text(error, "code");
    const char *message = error_text(error, "message");
    request_rec *r = q->r;
    qwd_error_t *e;

    if (!strcmp(code, QWD_ERR_LIMIT_REACHED)) {
        e = qwd_err(q, HTTP_TOO_MANY_REQUESTS, QWDLOGNO(00103), "limit_reached",
                    "The server is full (%s); please try again later.", error_text(error, "limit"));
        e->limit = apr_pstrcat(r->pool, "helper:", error_text(error, "limit"), NULL);
    }
    else if (!strcmp(code, QWD_ERR_BAD_ARGUMENT)) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00104), "bad_field", "Invalid value: %s",
                    message);
        e->field = *error_text(error, "field") ? error_text(error, "field") : NULL;
    }
    else if (!strcmp(code, QWD_ERR_UNKNOWN_MACHINE)) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00105), "bad_field", "There is no such machine.");
        e->field = "machine";
    }
    else if (!strcmp(code, QWD_ERR_UNUSABLE_MACHINE)) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03501), "bad_field",
                    "This machine cannot be started now.");
        e->field = "machine";
    }
    else if (!strcmp(code, QWD_ERR_NOT_FOUND)) {
        e = qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(00106), "not_found", "There is no such session.");
    }
    else if (!strcmp(code, QWD_ERR_START_FAILED)) {
        e = qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, QWDLOGNO(00107), "start_failed",
                    "The virtual machine could not be started.");
    }
    else if (!strcmp(code, QWD_ERR_EXTEND_FAILED)) {
        e = qwd_err(q, HTTP_CONFLICT, QWDLOGNO(00109), "extend_failed",
                    "The session could not be extended: %s", message);
    }
    else if (!strcmp(code, QWD_ERR_NO_SPACE)) {
        e = qwd_err(q, HTTP_INSUFFICIENT_STORAGE, QWDLOGNO(03900), "no_space",
                    "The server has no disk space left for a new desktop; please try again "
                    "later.");
    }
    else {
        e = qwd_err(q, HTTP_BAD_GATEWAY, QWDLOGNO(00108), "helper_error",
                    "The virtual machine service failed; please try again.");
    }
    e->detail = apr_psprintf(r->pool, "helper %s: %s: %s %s", op, code, message,
                             error_text(error, "reason"));
    return e;
}

/* Whether op only reads: such a request may be sent again on a fresh connection when the kept
 * one turns out closed. One that changes something (start, stop, share, unshare, extend, ...)
 * is not, as the helper may have done it before the connection broke. */
static int only_reads(const char *op)
{
    static const char *const readers[] = {QWD_OP_STATUS, QWD_OP_LIST,      QWD_OP_MACHINES,
                                          QWD_OP_LOAD,   QWD_OP_WARM_LIST, QWD_OP_METRICS,
                                          QWD_OP_EVENTS, QWD_OP_USAGE,     QWD_OP_MONITOR};
    for (size_t i = 0; i < sizeof readers / sizeof *readers; i++) {
        if (!strcmp(op, readers[i])) {
            return 1;
        }
    }
    return 0;
}

qwd_error_t *qwd_helper_call(qwd_req_t *q, const char *op, json_t *arguments, json_t **result)
{
    int may_repeat = only_reads(op);
    json_t *error = NULL;
    qwd_error_t *e;
    apr_status_t rv;
    int tries;

    qwd_json_pool_bind(q->r->pool, arguments ? arguments : (arguments = json_object()));
    for (tries = 0;; tries++) {
        int reused = q->helper != NULL;
        if (!q->helper && (e = connect_helper(q, &reused))) {
            return e;
        }
        rv = qwd_proto_client_call(q->helper, q->r->pool, op, arguments, result, &error);
        if (rv == APR_SUCCESS) {
            return NULL;
        }
        if (rv == QWD_PROTO_HELPER_ERROR) {
            return map_helper_error(q, op, error);
        }
        drop_connection(q); /* the client closed itself */
        /* a reused connection may have been closed by a helper restart or its idle timeout */
        if (!(reused && may_repeat && tries == 0)) {
            return unavailable(q, rv, error);
        }
    }
}
