/* SPDX-License-Identifier: Apache-2.0 */
/* The per-request context every route works with, and the failure record that flows back up
 * to qwd_fail() — the one place that turns a failure into status + log line + page or JSON. */
#ifndef QWD_REQUEST_H
#define QWD_REQUEST_H

#include <httpd.h>
#include <jansson.h>

#include "qwd_config.h"
#include "qwd_logno.h"

struct qwd_proto_client;

typedef struct qwd_req {
    request_rec *r;
    qwd_dir_config_t *cfg;
    const char *base;  /* the URL path of the Location, without trailing slash: "/qwd" */
    const char *route; /* the path below it: "", "/", "/sessions", "/api/..." */
    int api;           /* answer in JSON (routes under /api) */
    const char *user;  /* the authenticated user, NULL until known */
    int is_admin;
    struct qwd_proto_client *helper; /* connected (or taken from the child's cache) on first
                                        use, given back to the cache with r->pool */
    apr_pool_t *helper_pool;         /* the connection's own pool */
    int helper_cleanup;              /* the give-back cleanup is registered */
    apr_table_t *fields;             /* the parsed request body (forms), NULL until read */
} qwd_req_t;

typedef struct qwd_error {
    int status;        /* HTTP status */
    const char *logno; /* QWDLOGNO(n): "QWDnnnnn: " (docs/log-numbers.md) */
    int level;         /* APLOG_* level of the log line */
    apr_status_t rv;
    const char *code;    /* stable code for the API: bad_field, limit_reached, ... */
    const char *message; /* shown to the user; never says which credential was wrong */
    const char *detail;  /* only in the log */
    const char *field;   /* the bad field, for 400 */
    const char *limit;   /* the directive of the limit reached, for 429 */
} qwd_error_t;

/* A failure with a formatted user-facing message. The log level follows the status: 5xx →
 * error, 401/403 → warning, other 4xx → info (a client's mistake is not a server problem). */
qwd_error_t *qwd_err(qwd_req_t *q, int status, const char *logno, const char *code, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* Logs e and sends it as the route's kind of answer (HTML page or JSON). Returns OK (the body
 * is sent with r->status = e->status), for the handler to return. */
int qwd_fail(qwd_req_t *q, qwd_error_t *e);

#endif
