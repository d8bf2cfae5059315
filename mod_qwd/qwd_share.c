/* SPDX-License-Identifier: Apache-2.0 */
/* Shares (qwd_share.h). A share is made in the helper first (its own token and way in to the
 * session's relay), then recorded; a share the module cannot record is undone in the helper,
 * so no share works without a row that can revoke it. The link is derived from the share's id
 * (as a session's from its own), so the sessions page can show it again. */
#include "qwd_share.h"
#include "qwd_audit.h"
#include "qwd_capability.h"
#include "qwd_helper_client.h"
#include "qwd_html.h"
#include "qwd_links.h"
#include "qwd_logno.h"
#include "qwd_protocol.h"
#include "qwd_session.h"
#include "qwd_token.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>

APLOG_USE_MODULE(qwd);

#define SHARE_COLUMNS 6

static const char *num(qwd_req_t *q, apr_int64_t value)
{
    return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, value);
}

static qwd_share_t *share_of(qwd_req_t *q, const char **values)
{
    qwd_share_t *share = apr_pcalloc(q->r->pool, sizeof(*share));
    share->id = values[0];
    share->session_id = values[1];
    share->kind =
        values[2] && !strcmp(values[2], QWD_VIEWER_VIEW) ? QWD_VIEWER_VIEW : QWD_VIEWER_CONTROL;
    share->created = values[3] ? apr_atoi64(values[3]) : 0;
    share->expires = values[4] ? apr_atoi64(values[4]) : 0;
    share->revoked = values[5] ? apr_atoi64(values[5]) : 0;
    return share;
}

static qwd_error_t *select_shares(qwd_req_t *q, qwd_store_t *store, const char *label,
                                  const char *param, apr_array_header_t **shares)
{
    apr_array_header_t *rows;
    qwd_error_t *e = qwd_store_rows(store, label, 1, &param, SHARE_COLUMNS, &rows);
    int i;
    *shares = apr_array_make(q->r->pool, 4, sizeof(qwd_share_t *));
    for (i = 0; !e && i < rows->nelts; i++) {
        APR_ARRAY_PUSH(*shares, qwd_share_t *) = share_of(q, APR_ARRAY_IDX(rows, i, const char **));
    }
    return e;
}

static qwd_error_t *select_one(qwd_req_t *q, qwd_store_t *store, const char *label,
                               const char *param, qwd_share_t **share)
{
    apr_array_header_t *shares;
    qwd_error_t *e = select_shares(q, store, label, param, &shares);
    *share = !e && shares->nelts ? APR_ARRAY_IDX(shares, 0, qwd_share_t *) : NULL;
    return e;
}

int qwd_share_is_live(const qwd_share_t *share)
{
    return !share->revoked && (!share->expires || share->expires > apr_time_sec(apr_time_now()));
}

qwd_error_t *qwd_share_get(qwd_req_t *q, qwd_store_t *store, const char *id, qwd_share_t **share)
{
    return select_one(q, store, "qwd_share_get", id, share);
}

qwd_error_t *qwd_share_find_by_link(qwd_req_t *q, qwd_store_t *store, const char *link,
                                    qwd_share_t **share)
{
    return select_one(q, store, "qwd_share_by_link", qwd_share_key(q, link), share);
}

qwd_error_t *qwd_share_list(qwd_req_t *q, qwd_store_t *store, const char *session_id, int live_only,
                            apr_array_header_t **shares)
{
    apr_array_header_t *all;
    qwd_error_t *e = select_shares(q, store, "qwd_shares_of", session_id, &all);
    int i;
    if (e || !live_only) {
        *shares = all;
        return e;
    }
    *shares = apr_array_make(q->r->pool, all->nelts, sizeof(qwd_share_t *));
    for (i = 0; i < all->nelts; i++) {
        qwd_share_t *share = APR_ARRAY_IDX(all, i, qwd_share_t *);
        if (qwd_share_is_live(share)) {
            APR_ARRAY_PUSH(*shares, qwd_share_t *) = share;
        }
    }
    return NULL;
}

const char *qwd_share_url(qwd_req_t *q, const qwd_share_t *share)
{
    return ap_construct_url(
        q->r->pool,
        qwd_route_url(q, apr_pstrcat(q->r->pool, "/s/", qwd_share_capability(q, share->id), NULL)),
        q->r);
}

json_t *qwd_share_json(qwd_req_t *q, const qwd_share_t *share)
{
    json_t *object =
        json_pack("{s:s, s:s, s:I, s:o, s:o}", "id", share->id, "kind", share->kind, "created",
                  (json_int_t)share->created, "expires",
                  share->expires ? json_integer(share->expires) : json_null(), "revoked",
                  share->revoked ? json_integer(share->revoked) : json_null());
    if (qwd_share_is_live(share)) {
        json_object_set_new(object, "url", json_string(qwd_share_url(q, share)));
    }
    return object;
}

/* Takes a share the module could not record away from the helper again. */
static void undo(qwd_req_t *q, const qwd_row_t *row, const char *share_id, qwd_error_t *why)
{
    json_t *ignored;
    qwd_error_t *e =
        qwd_helper_call(q, QWD_OP_UNSHARE,
                        json_pack("{s:s, s:s}", "id", row->helper_id, "share", share_id), &ignored);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                  QWDLOGNO(03708) "session %s: share %s could not be recorded (%s), %s", row->id,
                  share_id, why->detail ? why->detail : why->message,
                  e ? "and could not be undone in the helper" : "undone");
}

qwd_error_t *qwd_share_create(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row,
                              const char *kind, int expires_in, qwd_share_t **share_out)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    qwd_share_t *share;
    qwd_error_t *e;
    json_t *made;
    const char *id, *params[6];
    int nrows = 0;

    if (!qwd_session_is_live(row) || !row->helper_id) {
        return qwd_err(q, HTTP_CONFLICT, QWDLOGNO(03706), "ended",
                       "This session is not running: it cannot be shared.");
    }
    if (!qwd_links_use_tickets(q)) {
        /* a share's link is /s/LINK, which only tickets serve: it would open nothing */
        return qwd_err(q, HTTP_CONFLICT, QWDLOGNO(03709), "no_shares",
                       "This site does not share sessions (it needs QwdWebsocketTickets On).");
    }
    if (row->oneshot) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03700), "bad_field",
                    "A one-shot session cannot be shared: its link opens the desktop once.");
        e->field = "id";
        return e;
    }
    if (!kind || (strcmp(kind, QWD_VIEWER_VIEW) && strcmp(kind, QWD_VIEWER_CONTROL))) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03701), "bad_field",
                    "kind must be " QWD_VIEWER_VIEW " (watch only) or " QWD_VIEWER_CONTROL
                    " (keyboard and mouse too).");
        e->field = "kind";
        return e;
    }
    if (expires_in < 0) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03702), "bad_field",
                    "expires_in_s must be a number of seconds, or none.");
        e->field = "expires_in_s";
        return e;
    }
    if ((e = qwd_helper_call(q, QWD_OP_SHARE,
                             json_pack("{s:s, s:s, s:o}", "id", row->helper_id, "kind", kind,
                                       "expires",
                                       expires_in ? json_integer(now + expires_in) : json_null()),
                             &made))) {
        if (e->status == HTTP_TOO_MANY_REQUESTS) {
            e->message =
                apr_psprintf(q->r->pool, "This session has %d shares already: revoke one first.",
                             QWD_PROTO_MAX_VIEWER_SHARES);
        }
        return e;
    }
    id = json_string_value(json_object_get(made, "id"));
    if (!qwd_share_id_is_valid(id)) {
        return qwd_err(q, HTTP_BAD_GATEWAY, QWDLOGNO(03707), "helper_error",
                       "The virtual machine service gave an incomplete answer.");
    }
    share = apr_pcalloc(q->r->pool, sizeof(*share));
    share->id = apr_pstrdup(q->r->pool, id);
    share->session_id = row->id;
    share->kind = !strcmp(kind, QWD_VIEWER_VIEW) ? QWD_VIEWER_VIEW : QWD_VIEWER_CONTROL;
    share->created = now;
    share->expires = expires_in ? now + expires_in : 0;
    params[0] = share->id;
    params[1] = share->session_id;
    params[2] = share->kind;
    params[3] = qwd_share_key(q, qwd_share_capability(q, share->id));
    params[4] = num(q, share->created);
    params[5] = num(q, share->expires);
    if ((e = qwd_store_run(store, "qwd_share_insert", &nrows, 6, params))) {
        undo(q, row, share->id, e);
        return e;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r,
                  QWDLOGNO(03703) "session %s of %s: share %s (%s) made by %s, until %s", row->id,
                  row->owner, share->id, share->kind, q->user,
                  share->expires ? num(q, share->expires) : "the session ends");
    qwd_audit_shared(q, store, row, share->id, share->kind);
    *share_out = share;
    return NULL;
}

qwd_error_t *qwd_share_revoke(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row,
                              const char *share_id, qwd_share_t **share_out)
{
    qwd_share_t *share = NULL;
    qwd_error_t *e;
    json_t *answer;
    const char *params[2];
    json_int_t closed = 0;

    if (qwd_share_id_is_valid(share_id) && (e = qwd_share_get(q, store, share_id, &share))) {
        return e;
    }
    if (!share || strcmp(share->session_id, row->id)) {
        return qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(03704), "not_found",
                       "This session has no such share.");
    }
    if (!share->revoked && row->helper_id) {
        e = qwd_helper_call(q, QWD_OP_UNSHARE,
                            json_pack("{s:s, s:s}", "id", row->helper_id, "share", share->id),
                            &answer);
        /* not_found: the session or the share (expired) is gone already, as asked */
        if (e && e->status != HTTP_NOT_FOUND) {
            return e;
        }
        closed = e ? 0 : json_integer_value(json_object_get(answer, "closed"));
    }
    if (!share->revoked) {
        share->revoked = apr_time_sec(apr_time_now());
        params[0] = num(q, share->revoked);
        params[1] = share->id;
        if ((e = qwd_store_run(store, "qwd_share_revoke", NULL, 2, params))) {
            return e;
        }
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r,
                      QWDLOGNO(03705) "session %s of %s: share %s revoked by %s, %d viewer(s) "
                                      "closed",
                      row->id, row->owner, share->id, q->user, (int)closed);
        qwd_audit_revoked(q, store, row, share->id, share->kind); /* once: not when again */
    }
    *share_out = share;
    return NULL;
}
