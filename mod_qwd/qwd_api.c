/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON API: GET /api/machines, GET|POST /api/sessions, GET|DELETE /api/sessions/ID,
 * GET|POST /api/sessions/ID/shares, DELETE /api/sessions/ID/shares/SHARE.
 * Answers are JSON objects; failures go through qwd_fail as {"error": CODE, "message": ...}. */
#include "qwd_api.h"
#include "qwd_audit.h"
#include "qwd_auth.h"
#include "qwd_body.h"
#include "qwd_links.h"
#include "qwd_protocol.h"
#include "qwd_route.h"
#include "qwd_session.h"
#include "qwd_share.h"

#include <apr_strings.h>
#include <http_protocol.h>

/* Below /api: /sessions/ID names one session. */
#define SESSION_ROUTE_PREFIX "/sessions/"

static int send_json(qwd_req_t *q, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    q->r->status = status;
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(q->r, "application/json");
    ap_rprintf(q->r, "%s\n", text ? text : "{}");
    free(text);
    return OK;
}

static json_t *session_json(qwd_req_t *q, const qwd_row_t *row)
{
    int live = qwd_session_is_live(row);
    json_t *object =
        json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:s, s:I, s:I}", "id", row->id, "owner",
                  row->owner, "machine", row->machine, "cpu", row->cpu, "memory_mib",
                  row->memory_mib, "oneshot", row->oneshot, "state", row->state, "created",
                  (json_int_t)row->created, "expires", (json_int_t)row->expires);
    if (live && row->helper_id) {
        const char *viewer = qwd_session_link(q, row);
        const char *ws = qwd_session_websocket_url(q, row);
        /* with tickets websockify's token stays between the module and websockify; without,
         * it is known while the helper answers */
        if (!qwd_links_use_tickets(q) && row->token) {
            json_object_set_new(object, "token", json_string(row->token));
        }
        json_object_set_new(object, "viewer_url", viewer ? json_string(viewer) : json_null());
        json_object_set_new(object, "websocket_url", ws ? json_string(ws) : json_null());
    }
    if (row->boot) {
        json_object_set_new(object, "boot", json_string(row->boot));
    }
    if (live) {
        /* who is watching (the helper's word, after a reconcile) and when nobody watching
         * stops it */
        json_object_set_new(object, "viewers",
                            row->viewers ? json_deep_copy(row->viewers) : json_array());
        json_object_set_new(object, "idle_stop_at",
                            row->idle_stop_at ? json_integer(row->idle_stop_at) : json_null());
        if (row->oneshot) {
            json_object_set_new(object, "opened", json_boolean(row->opened));
        }
    }
    if (live && row->queued_reason) {
        json_object_set_new(object, "queued_reason", json_string(row->queued_reason));
    }
    if (live && row->node) {
        json_object_set_new(object, "node", json_string(row->node));
    }
    if (!live) {
        json_object_set_new(object, "ended", json_integer(row->ended));
        json_object_set_new(object, "ended_reason",
                            row->ended_reason ? json_string(row->ended_reason) : json_null());
    }
    return object;
}

static int create(qwd_req_t *q)
{
    qwd_create_args_t args;
    qwd_store_t *store;
    qwd_row_t *row;
    json_t *body;
    qwd_error_t *e;

    qwd_create_args_init(&args);
    if ((e = qwd_body_json(q, &body)) || (e = qwd_create_args_from_json(q, body, &args))
        || (e = qwd_store_open(q, &store)) || (e = qwd_session_create(q, store, &args, &row))) {
        return qwd_fail(q, e);
    }
    apr_table_setn(q->r->headers_out, "Location",
                   apr_pstrcat(q->r->pool, q->r->uri, "/", row->id, NULL));
    return send_json(q, HTTP_CREATED, session_json(q, row));
}

static int list(qwd_req_t *q)
{
    apr_array_header_t *rows;
    qwd_store_t *store;
    qwd_error_t *e;
    json_t *sessions;
    int helper_down, i;
    /* admins see everyone's sessions with ?all=1 */
    int all = q->is_admin && q->r->args && strstr(q->r->args, "all=1");

    if ((e = qwd_store_open(q, &store))
        || (e = qwd_session_list(q, store, all ? NULL : q->user, &rows, &helper_down))) {
        return qwd_fail(q, e);
    }
    sessions = json_array();
    for (i = 0; i < rows->nelts; i++) {
        json_array_append_new(sessions, session_json(q, APR_ARRAY_IDX(rows, i, qwd_row_t *)));
    }
    return send_json(q, HTTP_OK,
                     json_pack("{s:o, s:b}", "sessions", sessions, "helper_down", helper_down));
}

/* What the reconcile of rows learnt of row's session from the helper and is not stored: its
 * boot, its websockify token, why it waits in a cluster's queue, its node, its viewers. */
static void reconciled(apr_array_header_t *rows, qwd_row_t *row)
{
    int i;
    for (i = 0; i < rows->nelts; i++) {
        const qwd_row_t *known = APR_ARRAY_IDX(rows, i, qwd_row_t *);
        if (!strcmp(known->id, row->id)) {
            row->boot = known->boot;
            row->token = known->token;
            row->viewers = known->viewers;
            row->idle_stop_at = known->idle_stop_at;
            row->opened = known->opened;
            row->queued_reason = known->queued_reason;
            row->node = known->node;
        }
    }
}

static int method_not_allowed(qwd_req_t *q, const char *allowed)
{
    apr_table_setn(q->r->err_headers_out, "Allow", allowed);
    return qwd_fail(q, qwd_err(q, HTTP_METHOD_NOT_ALLOWED, QWDLOGNO(01003), "method_not_allowed",
                               "Method %s is not allowed here (%s).", q->r->method, allowed));
}

/* GET|POST /sessions/ID/shares, DELETE /sessions/ID/shares/SHARE (share_id): the owner's (or
 * an admin's) shares of a session. */
static int shares(qwd_req_t *q, const char *id, const char *share_id)
{
    apr_array_header_t *list;
    qwd_store_t *store;
    qwd_share_t *share;
    qwd_row_t *row;
    qwd_error_t *e;
    json_t *body, *kind, *expires_in, *items;
    int method = q->r->method_number, i, seconds = 0;

    if ((e = qwd_store_open(q, &store)) || (e = qwd_session_find(q, store, id, &row))) {
        return qwd_fail(q, e);
    }
    if (share_id) {
        if (method != M_DELETE) {
            return method_not_allowed(q, "DELETE");
        }
        if ((e = qwd_share_revoke(q, store, row, share_id, &share))) {
            return qwd_fail(q, e);
        }
        return send_json(q, HTTP_OK, qwd_share_json(q, share));
    }
    if (method == M_POST) {
        if ((e = qwd_body_json(q, &body))) {
            return qwd_fail(q, e);
        }
        kind = json_object_get(body, "kind");
        expires_in = json_object_get(body, "expires_in_s");
        if (!json_is_string(kind)) {
            return qwd_fail(q, qwd_json_type_error(q, "kind",
                                                   "\"" QWD_VIEWER_VIEW
                                                   "\" or \"" QWD_VIEWER_CONTROL "\""));
        }
        if (expires_in && !json_is_null(expires_in)
            && (!json_is_integer(expires_in) || json_integer_value(expires_in) < 1
                || json_integer_value(expires_in) > QWD_FIELD_INT_MAX)) {
            return qwd_fail(q,
                            qwd_json_type_error(q, "expires_in_s", "a number of seconds, or null"));
        }
        seconds = json_is_integer(expires_in) ? (int)json_integer_value(expires_in) : 0;
        if ((e = qwd_share_create(q, store, row, json_string_value(kind), seconds, &share))) {
            return qwd_fail(q, e);
        }
        apr_table_setn(q->r->headers_out, "Location",
                       apr_pstrcat(q->r->pool, q->r->uri, "/", share->id, NULL));
        return send_json(q, HTTP_CREATED, qwd_share_json(q, share));
    }
    if (method != M_GET) {
        return method_not_allowed(q, "GET, POST");
    }
    if ((e = qwd_share_list(q, store, row->id, 0, &list))) {
        return qwd_fail(q, e);
    }
    items = json_array();
    for (i = 0; i < list->nelts; i++) {
        json_array_append_new(items, qwd_share_json(q, APR_ARRAY_IDX(list, i, qwd_share_t *)));
    }
    return send_json(q, HTTP_OK, json_pack("{s:o}", "shares", items));
}

static int one_session(qwd_req_t *q, const char *id)
{
    apr_array_header_t *rows;
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;
    int helper_down;
    if ((e = qwd_store_open(q, &store)) || (e = qwd_session_find(q, store, id, &row))) {
        return qwd_fail(q, e);
    }
    if (q->r->method_number == M_DELETE) {
        if ((e = qwd_session_stop(q, store, row))) {
            return qwd_fail(q, e);
        }
        return send_json(q, HTTP_OK, session_json(q, row));
    }
    /* reconcile just this row with the helper before answering */
    rows = apr_array_make(q->r->pool, 1, sizeof(qwd_row_t *));
    if ((e = qwd_session_list_live(q, store, row->owner, &rows, &helper_down))) {
        return qwd_fail(q, e);
    }
    if ((e = qwd_store_get(store, id, &row)) || !row) {
        return qwd_fail(q, e ? e
                             : qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01002), "not_found",
                                       "There is no such session."));
    }
    reconciled(rows, row);
    return send_json(q, HTTP_OK, session_json(q, row));
}

/* POST /api/sessions/ID/extend {"seconds": N} */
static int extend(qwd_req_t *q, const char *id)
{
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;
    json_t *body;
    int seconds;
    if ((e = qwd_body_json(q, &body)) || (e = qwd_json_int_member(q, body, "seconds", &seconds))
        || (e = qwd_store_open(q, &store)) || (e = qwd_session_find(q, store, id, &row))) {
        return qwd_fail(q, e);
    }
    if (seconds == QWD_UNSET) {
        return qwd_fail(q, qwd_json_type_error(q, "seconds", "a whole number of seconds"));
    }
    if ((e = qwd_session_extend(q, store, row, seconds))) {
        return qwd_fail(q, e);
    }
    return send_json(q, HTTP_OK, session_json(q, row));
}

/* The value of ?name= (unescaped), or NULL. */
static const char *query_arg(qwd_req_t *q, const char *name)
{
    char *args = apr_pstrdup(q->r->pool, q->r->args ? q->r->args : ""), *pair, *state;
    apr_size_t len = strlen(name);
    for (pair = apr_strtok(args, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        if (!strncmp(pair, name, len) && pair[len] == '=') {
            char *value = pair + len + 1;
            return ap_unescape_urlencoded(value) == OK ? value : NULL;
        }
    }
    return NULL;
}

/* A whole number of ?name= within [min, max] (absent: fallback). */
static qwd_error_t *query_int(qwd_req_t *q, const char *name, apr_int64_t fallback, apr_int64_t min,
                              apr_int64_t max, apr_int64_t *value)
{
    const char *text = query_arg(q, name);
    char *end;
    qwd_error_t *e;
    *value = fallback;
    if (!text) {
        return NULL;
    }
    *value = apr_strtoi64(text, &end, 10);
    if (!*text || *end || *value < min || *value > max) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03808), "bad_field",
                    "%s must be a whole number from %" APR_INT64_T_FMT " to %" APR_INT64_T_FMT ".",
                    name, min, max);
        e->field = name;
        return e;
    }
    return NULL;
}

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 1000
#define TIME_MAX ((apr_int64_t)1 << 40)

/* GET /api/audit?user=&event=&since=&until=&limit= (admins) */
static int audit(qwd_req_t *q)
{
    apr_int64_t since, until, limit;
    qwd_store_t *store;
    json_t *entries;
    qwd_error_t *e;
    if (!q->is_admin) {
        return qwd_fail(q, qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(03807), "forbidden",
                                   "The audit trail is for administrators only."));
    }
    if ((e = query_int(q, "since", 0, 0, TIME_MAX, &since))
        || (e = query_int(q, "until", TIME_MAX, 0, TIME_MAX, &until))
        || (e = query_int(q, "limit", AUDIT_LIMIT_DEFAULT, 1, AUDIT_LIMIT_MAX, &limit))
        || (e = qwd_store_open(q, &store))) {
        return qwd_fail(q, e);
    }
    qwd_audit_pull(q, store, NULL); /* what the helper decided since the last look */
    if ((e = qwd_audit_list(q, store, query_arg(q, "user"), query_arg(q, "event"), since, until,
                            (int)limit, &entries))) {
        return qwd_fail(q, e);
    }
    return send_json(q, HTTP_OK, json_pack("{s:O}", "events", entries));
}

/* The result page polls GET sessions/ID with the browser's identity cookie and no Basic
 * credentials (qwd-progress.js): a GET changes nothing, so no CSRF token is needed. Sets
 * q->user when it is such a request. */
static int is_page_poll(qwd_req_t *q)
{
    return q->r->method_number == M_GET && !apr_table_get(q->r->headers_in, "Authorization")
           && qwd_cfg_auth_mode(q->cfg) != QWD_AUTH_APACHE && qwd_auth_page_identity(q);
}

int qwd_api_handle(qwd_req_t *q)
{
    const char *route = q->route + 4; /* after "/api" */
    int method = q->r->method_number;
    qwd_error_t *e;

    if (!is_page_poll(q) && (e = qwd_auth_api(q))) {
        return qwd_fail(q, e);
    }
    if (!strcmp(route, "/machines")) {
        json_t *catalog, *answer, *machines;
        if (method != M_GET) {
            return method_not_allowed(q, "GET");
        }
        if ((e = qwd_session_catalog(q, &catalog))) {
            return qwd_fail(q, e);
        }
        /* a machine the helper refuses is "unavailable"; its problem names files of the
         * machines directory, which are for the administrator (qwdctl machines), not users */
        size_t i;
        json_t *machine;
        machines = json_object_get(catalog, "machines");
        json_array_foreach (machines, i, machine) {
            if (json_object_get(machine, "problem")) {
                json_object_del(machine, "problem");
                json_object_set_new(machine, "unavailable", json_true());
            }
        }
        /* the machines, and what else a create may choose here */
        answer = qwd_session_choices(q, catalog);
        json_object_set_new(answer, "machines",
                            json_is_array(machines) ? json_incref(machines) : json_array());
        return send_json(q, HTTP_OK, answer);
    }
    if (!strcmp(route, "/sessions") || !strcmp(route, "/sessions/")) {
        if (method == M_POST) {
            return create(q);
        }
        return method == M_GET ? list(q) : method_not_allowed(q, "GET, POST");
    }
    if (!strcmp(route, "/audit")) {
        return method == M_GET ? audit(q) : method_not_allowed(q, "GET");
    }
    if (!strncmp(route, SESSION_ROUTE_PREFIX, strlen(SESSION_ROUTE_PREFIX))) {
        const char *id = route + strlen(SESSION_ROUTE_PREFIX);
        /* ID/extend or ID/shares[/SHARE]: the longer routes qwd_route.c lets through */
        const char *slash = strchr(id, '/');
        if (slash && !strcmp(slash, QWD_ROUTE_EXTEND_SUFFIX)) {
            if (method != M_POST) {
                return method_not_allowed(q, "POST");
            }
            return extend(q, apr_pstrmemdup(q->r->pool, id, slash - id));
        }
        if (slash) {
            const char *share_id = slash + strlen(QWD_ROUTE_SHARES);
            return shares(q, apr_pstrmemdup(q->r->pool, id, slash - id),
                          *share_id ? share_id + 1 : NULL);
        }
        if (method != M_GET && method != M_DELETE) {
            return method_not_allowed(q, "GET, DELETE");
        }
        return one_session(q, id);
    }
    return qwd_fail(q,
                    qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01004), "not_found", "No such API route."));
}
