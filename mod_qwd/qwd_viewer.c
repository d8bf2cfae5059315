/* SPDX-License-Identifier: Apache-2.0 */
/* GET /s/LINK and POST /s/LINK/ticket. The link is the capability: whoever has it may use the
 * desktop, as long as the session lives (stopping it revokes the link). LINK is an HMAC of the
 * session's id under the server's key (qwd_capability.c) and the row keeps only an HMAC of
 * LINK, so neither the id nor a copy of the database opens a desktop. A share's link has the
 * same shape (an HMAC of the share's id) and opens the same page, for viewers of the share's
 * kind, while the share is neither revoked nor expired. The link serves our viewer page
 * (htdocs/qwd-viewer.js on noVNC's core/rfb.js), which asks /s/LINK/ticket for a fresh
 * one-use ticket before every connect and reconnect and hands it to the gate as a websocket
 * subprotocol, so no ticket is ever in a URL. Every visit and every ticket is checked against
 * the row, reconciled with the helper: a one-shot session's link is refused once its one
 * viewer came. */
#include "qwd_viewer.h"
#include "qwd_auth.h"
#include "qwd_capability.h"
#include "qwd_html.h"
#include "qwd_links.h"
#include "qwd_session.h"
#include "qwd_share.h"
#include "qwd_store.h"
#include "qwd_protocol.h"
#include "qwd_ticket.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

/* The share of link while it may be used: a revoked or expired one answers 410, and with
 * QwdShareLogin On only a logged-in user may open it (403). *share = NULL: link is no share's. */
static qwd_error_t *live_share(qwd_req_t *q, qwd_store_t *store, const char *link,
                               qwd_share_t **share)
{
    qwd_error_t *e = qwd_share_find_by_link(q, store, link, share);
    if (e || !*share) {
        return e;
    }
    if ((*share)->revoked) {
        return qwd_err(q, HTTP_GONE, QWDLOGNO(03710), "share_revoked",
                       "This share was revoked; the link no longer works.");
    }
    if (!qwd_share_is_live(*share)) {
        return qwd_err(q, HTTP_GONE, QWDLOGNO(03711), "share_expired",
                       "This share has expired; the link no longer works.");
    }
    if (qwd_cfg_share_login(q->cfg) && !qwd_auth_page_identity(q)) {
        return qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(03712), "unauthorized",
                       "Please log in under My sessions first: this shared desktop is for "
                       "users of this site.");
    }
    return NULL;
}

/* The row of the session of link (its own, or one of its shares': *share) while the link may
 * still be used: 404 for an unknown link, 410 once it ended or expired (a VM that ended by
 * itself — expired, crashed, powered off — included: the row is reconciled with the helper
 * first), or once a one-shot session's one viewer came. */
static qwd_error_t *live_row(qwd_req_t *q, const char *link, qwd_row_t **row_out,
                             qwd_share_t **share)
{
    apr_array_header_t *rows;
    qwd_store_t *store;
    qwd_row_t *row = NULL, *known;
    qwd_error_t *e;
    const char *session_id;
    int helper_down, i;

    *share = NULL;
    if (!qwd_links_use_tickets(q) || strlen(link) != QWD_LINK_CAPABILITY_HEX
        || strspn(link, "0123456789abcdef") != QWD_LINK_CAPABILITY_HEX) {
        return qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01411), "not_found",
                       "There is no such session.");
    }
    if ((e = qwd_store_open(q, &store))
        || (e = qwd_store_get_by_link(store, qwd_link_key(q, link), &row))) {
        return e;
    }
    if (!row
        && ((e = live_share(q, store, link, share))
            || (*share && (e = qwd_store_get(store, (*share)->session_id, &row))))) {
        return e;
    }
    if (!row) {
        return qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01414), "not_found",
                       "There is no such session.");
    }
    session_id = row->id;
    if ((e = qwd_session_list_live(q, store, row->owner, &rows, &helper_down))
        || (e = qwd_store_get(store, session_id, &row))) {
        return e;
    }
    if (!row || !qwd_session_is_live(row) || row->expires <= apr_time_sec(apr_time_now())) {
        return qwd_err(q, HTTP_GONE, QWDLOGNO(01412), "ended",
                       "This virtual machine has ended (%s); the link no longer works.",
                       row && row->ended_reason ? row->ended_reason : QWD_END_EXPIRED);
    }
    for (i = 0; i < rows->nelts; i++) {
        known = APR_ARRAY_IDX(rows, i, qwd_row_t *);
        if (!strcmp(known->id, row->id) && known->opened) {
            return qwd_err(q, HTTP_GONE, QWDLOGNO(03713), "opened",
                           "This one-shot session's link was used: it opens the desktop once, "
                           "and the machine stops when that viewer leaves.");
        }
    }
    *row_out = row;
    return NULL;
}

/* Without QwdStaticURL there is no viewer script to serve: noVNC's own page, with a ticket in
 * the URL fragment (browsers never send it), connects once (a view share's viewer too: its
 * input is dropped by the helper's relay all the same). */
static int redirect_to_novnc(qwd_req_t *q, const qwd_row_t *row, const qwd_share_t *share)
{
    const char *target;
    if (!row->helper_id
        || !(target = qwd_viewer_ticket_url(q, row->id, share ? share->id : NULL))) {
        return qwd_fail(q, qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(01413), "not_ready",
                                   "This virtual machine is not ready yet; please try again "
                                   "in a moment."));
    }
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(q->r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(q->r->headers_out, "Location", target);
    q->r->status = HTTP_SEE_OTHER;
    return OK;
}

/* The directory of QwdViewerURL (noVNC's vnc.html): where core/rfb.js is. */
static const char *novnc_dir(qwd_req_t *q)
{
    const char *viewer = qwd_cfg_viewer_url(q->cfg);
    const char *slash = strrchr(viewer, '/');
    return slash ? apr_pstrmemdup(q->r->pool, viewer, slash - viewer + 1) : "";
}

/* A CSP source for url: its scheme, host, port and path, without the query. */
static const char *csp_source(qwd_req_t *q, const char *url)
{
    return url ? apr_pstrndup(q->r->pool, url, strcspn(url, "?#; ',")) : "";
}

static int viewer_page(qwd_req_t *q, const char *link, const char *script, const qwd_share_t *share)
{
    int view_only = share && !strcmp(share->kind, QWD_VIEWER_VIEW);
    request_rec *r = q->r;
    const char *novnc = novnc_dir(q);
    const char *stylesheet =
        q->cfg->stylesheet ? q->cfg->stylesheet : qwd_html_static_url(q, "qwd.css");
    const char *ticket_url = qwd_route_url(q, apr_pstrcat(r->pool, "/s/", link, "/ticket", NULL));

    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    /* our script and noVNC's modules; the websocket; noVNC's cursor images are data: URLs */
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   apr_pstrcat(r->pool,
                               "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self' ",
                               novnc[0] == '/' ? "" : csp_source(q, novnc), "; connect-src 'self' ",
                               csp_source(q, qwd_websocket_base(q)), "; frame-ancestors 'none'",
                               NULL));
    ap_rputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             "<title>Desktop - virtual desktops</title>",
             r);
    if (stylesheet) {
        ap_rprintf(r, "<link rel=\"stylesheet\" href=\"%s\">", qwd_h(q, stylesheet));
    }
    ap_rprintf(r, "<script type=\"module\" src=\"%s\"></script></head>\n", qwd_h(q, script));
    ap_rprintf(r,
               "<body class=\"qwd-viewer\" data-state=\"connecting\" data-ticket-url=\"%s\" "
               "data-novnc=\"%s\" data-kind=\"%s\"%s>\n"
               "<div class=\"qwd-viewer-bar\"><span id=\"qwd-viewer-status\" role=\"status\">"
               "Connecting&hellip;</span>%s <button id=\"qwd-viewer-retry\" type=\"button\" "
               "hidden>Try again</button> <a href=\"%s\">My sessions</a></div>\n"
               "<div id=\"qwd-viewer-screen\"></div>\n"
               "<noscript><p class=\"qwd-error\">The desktop viewer needs JavaScript.</p>"
               "</noscript>\n</body></html>\n",
               qwd_h(q, ticket_url), qwd_h(q, novnc), share ? share->kind : QWD_VIEWER_OWNER,
               view_only ? " data-view-only=\"1\"" : "",
               view_only ? " <span class=\"qwd-viewer-kind\">View only</span>" : "",
               qwd_h(q, qwd_route_url(q, "/sessions")));
    return OK;
}

int qwd_viewer_open(qwd_req_t *q, const char *link)
{
    const char *script = qwd_html_static_url(q, "qwd-viewer.js");
    qwd_row_t *row;
    qwd_share_t *share;
    qwd_error_t *e;
    if ((e = live_row(q, link, &row, &share))) {
        return qwd_fail(q, e);
    }
    return script ? viewer_page(q, link, script, share) : redirect_to_novnc(q, row, share);
}

int qwd_viewer_ticket(qwd_req_t *q, const char *link)
{
    request_rec *r = q->r;
    const char *base = qwd_websocket_base(q), *protocol;
    qwd_row_t *row;
    qwd_share_t *share;
    qwd_error_t *e;
    json_t *answer;
    char *text;

    q->api = 1; /* the viewer script reads JSON, errors included */
    if ((e = live_row(q, link, &row, &share))) {
        return qwd_fail(q, e);
    }
    if (!row->helper_id || strcmp(row->state, QWD_STATE_RUNNING)) {
        /* a ticket would only get 503 from the gate: the viewer asks again in a moment */
        e = qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(03002), "not_ready",
                    "The desktop is starting; please wait a moment.");
        e->level = APLOG_INFO;
        return qwd_fail(q, e);
    }
    if (!base || !(protocol = qwd_ticket_subprotocol(q, row->id, share ? share->id : NULL))) {
        return qwd_fail(q, qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, QWDLOGNO(03003), "internal",
                                   "No ticket could be made."));
    }
    answer = json_pack("{s:s, s:s, s:I, s:I, s:s}", "url", base, "subprotocol", protocol, "expires",
                       (json_int_t)(apr_time_sec(apr_time_now()) + QWD_TICKET_LIFETIME),
                       "session_expires", (json_int_t)row->expires, "kind",
                       share ? share->kind : QWD_VIEWER_OWNER);
    if (share && share->expires) {
        json_object_set_new(answer, "share_expires", json_integer(share->expires));
    }
    text = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "%s\n", text ? text : "{}");
    free(text);
    return OK;
}
