/* SPDX-License-Identifier: Apache-2.0 */
/* QwdWebsocketGate: checks ?ticket= (qwd_ticket.c) against the session's row and the helper,
 * then rewrites the query to ?token=<websockify token>, which only the helper knows (the
 * database never holds it). mod_proxy builds the backend URL from r->args in its fixups
 * (canon), after this access_checker, so websockify sees only the token and the browser never
 * does. Anything else is 403 and never reaches websockify. */
#include "qwd_ws_gate.h"
#include "qwd_config.h"
#include "qwd_helper_client.h"
#include "qwd_logno.h"
#include "qwd_protocol.h"
#include "qwd_session.h"
#include "qwd_store.h"
#include "qwd_ticket.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

APLOG_USE_MODULE(qwd);

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
static int refuse(request_rec *r, int status, const char *logno, const char *why,
                  const char *session_id)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%swebsocket refused (%d): %s%s%s", logno, status,
                  why, session_id ? ", session " : "", session_id ? session_id : "");
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return status;
}

/* A failure of the database behind the gate: logged like the module's other failures. */
static int gate_failed(request_rec *r, const qwd_error_t *e)
{
    ap_log_rerror(APLOG_MARK, e->level, e->rv, r, "%swebsocket gate: %s%s%s", e->logno, e->message,
                  e->detail ? " - " : "", e->detail ? e->detail : "");
    return e->status;
}

/* Whether the helper still runs the session's VM (a VM can end without a page noticing); its
 * answer also gives the websockify token, into row->token. */
static int helper_says_live(qwd_req_t *q, qwd_row_t *row, int *status)
{
    json_t *answer;
    qwd_error_t *e;
    const char *state;
    *status = OK;
    e = qwd_helper_call(q, QWD_OP_STATUS, json_pack("{s:s}", "id", row->helper_id), &answer);
    if (e) {
        *status = e->status == HTTP_NOT_FOUND ? HTTP_FORBIDDEN : HTTP_SERVICE_UNAVAILABLE;
        return 0;
    }
    state = json_string_value(json_object_get(answer, "state"));
    row->token = json_string_value(json_object_get(answer, "token"));
    row->token = row->token && *row->token ? apr_pstrdup(q->r->pool, row->token) : NULL;
    return state && strcmp(state, QWD_STATE_ENDED) != 0 && row->token;
}

static int qwd_ws_gate(request_rec *r)
{
    qwd_dir_config_t *cfg = ap_get_module_config(r->per_dir_config, &qwd_module);
    apr_int64_t now = apr_time_sec(apr_time_now());
    const char *ticket, *session_id, *why;
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;
    qwd_req_t *q;
    qwd_ticket_t checked;
    int status, first_use;

    if (!cfg || cfg->websocket_gate != 1 || r->main) {
        return DECLINED;
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->cfg = cfg;
    q->base = "";
    q->route = r->uri;
    if (!(ticket = ticket_arg(r))) {
        return refuse(r, HTTP_FORBIDDEN, QWDLOGNO(01401), "no ticket", NULL);
    }
    if (!(session_id = qwd_ticket_check(q, ticket, &checked, &why))) {
        return refuse(r, HTTP_FORBIDDEN, QWDLOGNO(01402), why, NULL);
    }
    if ((e = qwd_store_open(q, &store)) || (e = qwd_store_get(store, session_id, &row))) {
        return gate_failed(r, e);
    }
    if (!row || !qwd_session_is_live(row) || !row->helper_id) {
        return refuse(r, HTTP_FORBIDDEN, QWDLOGNO(01403), "session not live", session_id);
    }
    if (row->expires <= now) {
        return refuse(r, HTTP_FORBIDDEN, QWDLOGNO(01404), "session expired", session_id);
    }
    if (!helper_says_live(q, row, &status)) {
        return refuse(r, status ? status : HTTP_FORBIDDEN, QWDLOGNO(01405),
                      status == HTTP_SERVICE_UNAVAILABLE ? "helper not answering"
                                                         : "VM no longer running",
                      session_id);
    }
    /* last, so only a ticket that would have opened the display counts as used */
    if ((e = qwd_ticket_spend(q, store, &checked, &first_use))) {
        return gate_failed(r, e);
    }
    if (!first_use) {
        return refuse(r, HTTP_FORBIDDEN, QWDLOGNO(01406), "ticket already used", session_id);
    }
    /* what websockify's token plugin reads; the ticket itself goes no further */
    r->args = apr_pstrcat(r->pool, "token=", ap_escape_urlencoded(r->pool, row->token), NULL);
    return OK;
}

void qwd_ws_gate_register_hooks(apr_pool_t *pool)
{
    /* access_checker runs before mod_proxy's fixups turn r->args into the backend URL */
    ap_hook_access_checker(qwd_ws_gate, NULL, NULL, APR_HOOK_FIRST);
}
