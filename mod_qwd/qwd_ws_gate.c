/* SPDX-License-Identifier: Apache-2.0 */
/* QwdWebsocketGate: checks the ticket (qwd_ticket.c; a "qwd-ticket.T" websocket subprotocol,
 * or ?ticket=) against the session's row (and its share's, for a share's viewer) and the
 * helper, then rewrites the query to ?token=<websockify token> of the session's own link or
 * of the share, which only the helper knows (the database never holds it).
 * mod_proxy builds the backend URL from r->args in its fixups
 * (canon), after this access_checker, so websockify sees only the token and the browser never
 * does. Anything else is refused and never reaches websockify. A ticket is spent only by an
 * upgrade that reaches a display that accepts: 503 while it starts, given back if the proxy
 * could not upgrade. */
#include "qwd_ws_gate.h"
#include "qwd_audit.h"
#include "qwd_config.h"
#include "qwd_counters.h"
#include "qwd_helper_client.h"
#include "qwd_logno.h"
#include "qwd_protocol.h"
#include "qwd_session.h"
#include "qwd_share.h"
#include "qwd_store.h"
#include "qwd_ticket.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

APLOG_USE_MODULE(qwd);

/* Where the spent ticket's nonce waits for the end of the request (give_back). */
#define SPENT_NOTE "qwd-ticket-spent"
/* The session (and its owner) whose display the request opened: audited when it closes. */
#define VIEWED_NOTE "qwd-viewed"
#define VIEWED_OWNER_NOTE "qwd-viewed-owner"

/* The ticket offered as a websocket subprotocol "qwd-ticket.TICKET" (what the viewer sends:
 * headers stay out of access logs and browser history), removed from the header so neither
 * websockify nor its answer sees it; or NULL. */
static const char *ticket_subprotocol(request_rec *r)
{
    const char *header = apr_table_get(r->headers_in, "Sec-WebSocket-Protocol");
    const char *ticket = NULL, *others = NULL;
    char *list, *item, *state;
    if (!header) {
        return NULL;
    }
    list = apr_pstrdup(r->pool, header);
    for (item = apr_strtok(list, ",", &state); item; item = apr_strtok(NULL, ",", &state)) {
        while (*item == ' ' || *item == '\t') {
            item++;
        }
        apr_collapse_spaces(item, item);
        if (!strncmp(item, QWD_TICKET_SUBPROTOCOL, strlen(QWD_TICKET_SUBPROTOCOL))) {
            ticket = item + strlen(QWD_TICKET_SUBPROTOCOL);
        }
        else if (*item) {
            others = others ? apr_pstrcat(r->pool, others, ", ", item, NULL) : item;
        }
    }
    if (ticket) {
        if (others) {
            apr_table_setn(r->headers_in, "Sec-WebSocket-Protocol", others);
        }
        else {
            apr_table_unset(r->headers_in, "Sec-WebSocket-Protocol");
        }
    }
    return ticket;
}

/* The value of ?ticket= (unescaped), or NULL. */
static const char *ticket_arg(request_rec *r)
{
    char *args, *pair, *state;
    if (!r->args) {
        return NULL;
    }
    args = apr_pstrdup(r->pool, r->args);
    for (pair = apr_strtok(args, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        if (!strncmp(pair, "ticket=", 7)) {
            char *value = pair + 7;
            return ap_unescape_urlencoded(value) == OK ? value : NULL;
        }
    }
    return NULL;
}

/* A refusal: logged at info (a stale or forged link is the client's problem, and a flood of
 * them must not fill the error log), answered with the bare status. */
static int refuse(request_rec *r, qwd_counter_t counter, int status, const char *logno,
                  const char *why, const char *session_id)
{
    qwd_counter_inc(counter);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%swebsocket refused (%d): %s%s%s", logno, status,
                  why, session_id ? ", session " : "", session_id ? session_id : "");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        /* not spent: the same ticket works once the display accepts */
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
    }
    return status;
}

/* A failure of the database behind the gate: logged like the module's other failures. */
static int gate_failed(request_rec *r, const qwd_error_t *e)
{
    ap_log_rerror(APLOG_MARK, e->level, e->rv, r, "%swebsocket gate: %s%s%s", e->logno, e->message,
                  e->detail ? " - " : "", e->detail ? e->detail : "");
    return e->status;
}

/* The websockify token of a share in the helper's session object, or NULL when the helper
 * has no such share (expired there, or revoked). */
static const char *share_token(json_t *answer, const char *share_id)
{
    json_t *share;
    size_t i;
    json_array_foreach (json_object_get(answer, "viewer_shares"), i, share) {
        const char *id = json_string_value(json_object_get(share, "id"));
        if (id && !strcmp(share_id, id)) {
            return json_string_value(json_object_get(share, "token"));
        }
    }
    return NULL;
}

/* The helper's state of the session's VM (a VM can end without a page noticing, and one
 * that starts does not accept on its display yet): QWD_STATE_*, or NULL with *status set
 * when the helper could not say. Its answer also gives the websockify token of the session's
 * own link, or of share_id, into row->token (a VM without one counts as ended), and whether
 * a one-shot session's link was used (row->opened). */
static const char *helper_state(qwd_req_t *q, qwd_row_t *row, const char *share_id, int *status)
{
    json_t *answer;
    qwd_error_t *e;
    const char *state;
    *status = OK;
    e = qwd_helper_call(q, QWD_OP_STATUS, json_pack("{s:s}", "id", row->helper_id), &answer);
    if (e) {
        *status = e->status == HTTP_NOT_FOUND ? HTTP_FORBIDDEN : HTTP_SERVICE_UNAVAILABLE;
        return NULL;
    }
    state = json_string_value(json_object_get(answer, "state"));
    row->token = share_id ? share_token(answer, share_id)
                          : json_string_value(json_object_get(answer, "token"));
    row->token = row->token && *row->token ? apr_pstrdup(q->r->pool, row->token) : NULL;
    row->opened = row->oneshot && json_is_true(json_object_get(answer, "opened"));
    return state && row->token ? apr_pstrdup(q->r->pool, state) : QWD_STATE_ENDED;
}

static int qwd_ws_gate(request_rec *r)
{
    qwd_dir_config_t *cfg = ap_get_module_config(r->per_dir_config, &qwd_module);
    apr_int64_t now = apr_time_sec(apr_time_now());
    const char *ticket, *session_id, *why, *state;
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_share_t *share = NULL;
    qwd_error_t *e;
    qwd_req_t *q;
    qwd_ticket_t checked;
    int status, first_use;

    if (!cfg || !qwd_cfg_websocket_gate(cfg) || r->main) {
        return DECLINED;
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->cfg = cfg;
    q->base = "";
    q->route = r->uri;
    if (!(ticket = ticket_subprotocol(r)) && !(ticket = ticket_arg(r))) {
        return refuse(r, QWD_COUNTER_TICKET_MISSING, HTTP_FORBIDDEN, QWDLOGNO(01401), "no ticket",
                      NULL);
    }
    if (!(session_id = qwd_ticket_check(q, ticket, &checked, &why))) {
        return refuse(r, QWD_COUNTER_TICKET_INVALID, HTTP_FORBIDDEN, QWDLOGNO(01402), why, NULL);
    }
    if ((e = qwd_store_open(q, &store)) || (e = qwd_store_get(store, session_id, &row))) {
        return gate_failed(r, e);
    }
    if (!row || !qwd_session_is_live(row) || !row->helper_id) {
        return refuse(r, QWD_COUNTER_TICKET_SESSION_ENDED, HTTP_FORBIDDEN, QWDLOGNO(01403),
                      "session not live", session_id);
    }
    if (row->expires <= now) {
        return refuse(r, QWD_COUNTER_TICKET_SESSION_EXPIRED, HTTP_FORBIDDEN, QWDLOGNO(01404),
                      "session expired", session_id);
    }
    if (checked.share_id
        && ((e = qwd_share_get(q, store, checked.share_id, &share)) || !share
            || strcmp(share->session_id, session_id) || !qwd_share_is_live(share))) {
        return e ? gate_failed(r, e)
                 : refuse(r, QWD_COUNTER_TICKET_SHARE_GONE, HTTP_FORBIDDEN, QWDLOGNO(03720),
                          "share revoked or expired", session_id);
    }
    state = helper_state(q, row, checked.share_id, &status);
    if (state && share && !row->token) {
        /* the session runs, the share does not (revoked or expired in the helper) */
        return refuse(r, QWD_COUNTER_TICKET_SHARE_GONE, HTTP_FORBIDDEN, QWDLOGNO(03722),
                      "share gone from the helper", session_id);
    }
    if (!state || !strcmp(state, QWD_STATE_ENDED)) {
        return refuse(r,
                      status == HTTP_SERVICE_UNAVAILABLE ? QWD_COUNTER_TICKET_HELPER_DOWN
                                                         : QWD_COUNTER_TICKET_VM_GONE,
                      status ? status : HTTP_FORBIDDEN, QWDLOGNO(01405),
                      status == HTTP_SERVICE_UNAVAILABLE ? "helper not answering"
                                                         : "VM no longer running",
                      session_id);
    }
    if (row->opened) {
        /* its relay lets one viewer in, ever: this one would reach nothing */
        return refuse(r, QWD_COUNTER_TICKET_ONESHOT_USED, HTTP_FORBIDDEN, QWDLOGNO(03721),
                      "one-shot session opened already", session_id);
    }
    if (strcmp(state, QWD_STATE_RUNNING)) {
        /* QEMU runs but its display does not accept yet (a boot's first moments, a restore, a
         * helper that restarted and probes again): websockify would open and close at once */
        return refuse(r, QWD_COUNTER_TICKET_NOT_READY, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(03000),
                      "display not accepting yet", session_id);
    }
    /* last, so only a ticket that would have opened the display counts as used */
    if ((e = qwd_ticket_spend(q, store, &checked, &first_use))) {
        return gate_failed(r, e);
    }
    if (!first_use) {
        return refuse(r, QWD_COUNTER_TICKET_REUSED, HTTP_FORBIDDEN, QWDLOGNO(01406),
                      "ticket already used", session_id);
    }
    apr_table_setn(r->notes, SPENT_NOTE, checked.nonce);
    apr_table_setn(r->notes, VIEWED_NOTE, row->id);
    apr_table_setn(r->notes, VIEWED_OWNER_NOTE, row->owner);
    /* what websockify's token plugin reads; the ticket itself goes no further */
    r->args = apr_pstrcat(r->pool, "token=", ap_escape_urlencoded(r->pool, row->token), NULL);
    return OK;
}

/* A websocket that reached the display has closed: the audit trail's "connected" says who (the
 * holder of the session's link or a share's), from where, when it opened and for how long.
 * The helper's relay records the same viewer as "viewed", by its kind, from its journal: two
 * entries of one event name made every viewer through Apache count twice. */
static int viewed(request_rec *r)
{
    qwd_store_t *store;
    qwd_req_t *q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->cfg = ap_get_module_config(r->per_dir_config, &qwd_module);
    q->base = "";
    q->route = r->uri;
    qwd_counter_inc(QWD_COUNTER_VIEWER_LINK);
    if (!qwd_store_open(q, &store)) {
        qwd_audit_record_at(q, store, apr_time_sec(r->request_time), QWD_AUDIT_CONNECTED,
                            apr_table_get(r->notes, VIEWED_NOTE),
                            apr_table_get(r->notes, VIEWED_OWNER_NOTE), NULL, QWD_AUDIT_BY_LINK,
                            apr_psprintf(r->pool, "for %" APR_TIME_T_FMT " s",
                                         apr_time_sec(apr_time_now() - r->request_time)));
    }
    return DECLINED;
}

/* An upgrade the proxy could not make (websockify down or restarting, its answer not 101)
 * never reached the display: the ticket is given back, for the client's next try. */
static int give_back(request_rec *r)
{
    const char *nonce = apr_table_get(r->notes, SPENT_NOTE);
    qwd_store_t *store;
    qwd_error_t *e;
    qwd_req_t *q;
    if (nonce && r->status == HTTP_SWITCHING_PROTOCOLS) {
        return viewed(r);
    }
    if (!nonce) {
        return DECLINED;
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->cfg = ap_get_module_config(r->per_dir_config, &qwd_module);
    q->base = "";
    q->route = r->uri;
    if ((e = qwd_store_open(q, &store)) || (e = qwd_ticket_unspend(q, store, nonce))) {
        gate_failed(r, e);
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      QWDLOGNO(03001) "websocket not upgraded (%d): its ticket is not spent",
                      r->status);
    }
    return DECLINED;
}

void qwd_ws_gate_register_hooks(apr_pool_t *pool)
{
    /* access_checker runs before mod_proxy's fixups turn r->args into the backend URL */
    ap_hook_access_checker(qwd_ws_gate, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_log_transaction(give_back, NULL, NULL, APR_HOOK_MIDDLE);
}
