/* SPDX-License-Identifier: Apache-2.0 */
/* GET/POST /sessions: a user's own sessions (reconnect, stop, share, revoke a share), and the
 * small login that gives a browser its signed identity cookie when QwdAuth is none or form.
 * Also the session table the monitor shares, with who is watching each session. */
#include "qwd_pages.h"
#include "qwd_auth.h"
#include "qwd_body.h"
#include "qwd_html.h"
#include "qwd_links.h"
#include "qwd_protocol.h"
#include "qwd_secret.h"
#include "qwd_session.h"
#include "qwd_share.h"
#include "qwd_table.h"

#include <apr_strings.h>
#include <http_protocol.h>

/* What a viewer's kind means to whoever reads the page. */
static const char *kind_text(const char *kind)
{
    return !kind                               ? "?"
           : !strcmp(kind, QWD_VIEWER_OWNER)   ? "owner's link"
           : !strcmp(kind, QWD_VIEWER_CONTROL) ? "control share"
           : !strcmp(kind, QWD_VIEWER_VIEW)    ? "view share"
                                               : kind;
}

/* Who is watching: how many, each one's kind and since when. */
static void viewers_cell(qwd_req_t *q, const qwd_row_t *row)
{
    json_t *viewer;
    size_t i, count = row->viewers ? json_array_size(row->viewers) : 0;
    ap_rprintf(q->r, "<td class=\"qwd-viewers\" data-viewers=\"%d\">", (int)count);
    if (!count) {
        ap_rputs(qwd_session_is_live(row) ? "nobody" : "", q->r);
    }
    json_array_foreach (row->viewers, i, viewer) {
        ap_rprintf(
            q->r, "%s<span class=\"qwd-viewer-of\" data-kind=\"%s\">%s since %s</span>",
            i ? "<br>" : "", qwd_h(q, json_string_value(json_object_get(viewer, "kind"))),
            qwd_h(q, kind_text(json_string_value(json_object_get(viewer, "kind")))),
            qwd_h(q, qwd_html_time(q, json_integer_value(json_object_get(viewer, "since")))));
    }
    ap_rputs("</td>", q->r);
}

void qwd_table_sessions(qwd_req_t *q, apr_array_header_t *rows, int show_owner,
                        const char *action_route, qwd_table_below_fn *below)
{
    request_rec *r = q->r;
    const char *stop_form;
    int i;
    if (rows->nelts == 0) {
        ap_rputs("<p class=\"qwd-empty\">No sessions.</p>", r);
        return;
    }
    stop_form = qwd_html_inline_form(q, action_route);
    ap_rprintf(r,
               "<table class=\"qwd-sessions\"><thead><tr>%s<th>Machine</th><th>CPU</th>"
               "<th>Memory</th><th>State</th><th>Started</th><th>Expires</th><th>Viewers</th>"
               "<th></th></tr></thead><tbody>\n",
               show_owner ? "<th>User</th>" : "");
    for (i = 0; i < rows->nelts; i++) {
        const qwd_row_t *row = APR_ARRAY_IDX(rows, i, qwd_row_t *);
        int live = qwd_session_is_live(row);
        const char *viewer = live && row->helper_id ? qwd_session_link(q, row) : NULL;
        ap_rprintf(r, "<tr id=\"s-%s\" class=\"qwd-%s\">", qwd_h(q, row->id), qwd_h(q, row->state));
        if (show_owner) {
            ap_rprintf(r, "<td class=\"qwd-owner\">%s</td>", qwd_h(q, row->owner));
        }
        ap_rprintf(
            r,
            "<td>%s</td><td>%d</td><td>%d MiB</td><td class=\"qwd-state\">%s%s%s%s%s%s%s</td>"
            "<td>%s</td><td>%s",
            qwd_h(q, row->machine), row->cpu, row->memory_mib, qwd_h(q, row->state),
            row->ended_reason || row->queued_reason ? " (" : "",
            qwd_h(q, row->ended_reason ? row->ended_reason : row->queued_reason),
            row->ended_reason || row->queued_reason ? ")" : "", live && row->node ? " on " : "",
            live ? qwd_h(q, row->node) : "", row->oneshot && live ? " (one-shot)" : "",
            qwd_h(q, qwd_html_time(q, row->created)), qwd_h(q, qwd_html_time(q, row->expires)));
        if (live && row->idle_stop_at) {
            /* nobody watches now: when idle stop ends it unless someone connects */
            ap_rprintf(r,
                       "<br><span class=\"qwd-idle\" data-unix=\"%" APR_INT64_T_FMT "\">"
                       "stops at %s if nobody connects</span>",
                       row->idle_stop_at, qwd_h(q, qwd_html_time(q, row->idle_stop_at)));
        }
        ap_rputs("</td>", r);
        viewers_cell(q, row);
        ap_rputs("<td>", r);
        if (viewer) {
            ap_rprintf(r, "<a class=\"qwd-open\" href=\"%s\" target=\"_blank\">Open</a> ",
                       qwd_h(q, viewer));
        }
        if (live) {
            ap_rputs(stop_form, r);
            ap_rprintf(r,
                       "<input type=\"hidden\" name=\"action\" value=\"stop\"><input "
                       "type=\"hidden\" name=\"id\" value=\"%s\"><button "
                       "type=\"submit\">Stop</button></form>",
                       qwd_h(q, row->id));
        }
        ap_rputs("</td></tr>\n", r);
        if (below) {
            below(q, row, show_owner ? 9 : 8);
        }
    }
    ap_rputs("</tbody></table>\n", r);
}

/* Under each live session of My sessions: its shares (link, kind, expiry, Revoke) and a form
 * to make one. */
static void shares_row(qwd_req_t *q, const qwd_row_t *row, int columns)
{
    request_rec *r = q->r;
    apr_array_header_t *shares = NULL;
    qwd_store_t *store;
    int i;
    if (!qwd_session_is_live(row) || !row->helper_id || !qwd_links_use_tickets(q)) {
        return;
    }
    ap_rprintf(r, "<tr class=\"qwd-shares\" id=\"shares-%s\"><td colspan=\"%d\">",
               qwd_h(q, row->id), columns);
    if (row->oneshot) {
        ap_rputs("<span class=\"qwd-hint\">One-shot: its link opens the desktop once, so it "
                 "cannot be shared.</span></td></tr>\n",
                 r);
        return;
    }
    if (qwd_store_open(q, &store) || qwd_share_list(q, store, row->id, 1, &shares)) {
        shares = NULL; /* the list is a convenience: the page still works without it */
    }
    for (i = 0; shares && i < shares->nelts; i++) {
        const qwd_share_t *share = APR_ARRAY_IDX(shares, i, qwd_share_t *);
        ap_rprintf(r,
                   "<div class=\"qwd-share\" id=\"share-%s\" data-kind=\"%s\">%s link: <code "
                   "class=\"qwd-share-link\">%s</code> %s%s ",
                   qwd_h(q, share->id), share->kind,
                   !strcmp(share->kind, QWD_VIEWER_VIEW) ? "View-only" : "Keyboard-and-mouse",
                   qwd_h(q, qwd_share_url(q, share)), share->expires ? "until " : "",
                   share->expires ? qwd_h(q, qwd_html_time(q, share->expires)) : "");
        ap_rprintf(r, "<form method=\"post\" action=\"%s\" class=\"qwd-inline\">",
                   qwd_h(q, qwd_route_url(q, "/sessions")));
        qwd_html_csrf_field(q);
        ap_rprintf(r,
                   "<input type=\"hidden\" name=\"action\" value=\"revoke\"><input "
                   "type=\"hidden\" name=\"id\" value=\"%s\"><input type=\"hidden\" "
                   "name=\"share\" value=\"%s\"><button type=\"submit\">Revoke</button></form>"
                   "</div>",
                   qwd_h(q, row->id), qwd_h(q, share->id));
    }
    ap_rprintf(r, "<form method=\"post\" action=\"%s\" class=\"qwd-share-form\">",
               qwd_h(q, qwd_route_url(q, "/sessions")));
    qwd_html_csrf_field(q);
    ap_rprintf(r,
               "<input type=\"hidden\" name=\"action\" value=\"share\"><input type=\"hidden\" "
               "name=\"id\" value=\"%s\"><label>Share <select name=\"kind\">"
               "<option value=\"" QWD_VIEWER_VIEW "\">view only</option>"
               "<option value=\"" QWD_VIEWER_CONTROL "\">with keyboard and mouse</option>"
               "</select></label> <label><select name=\"expires_in\"><option value=\"\">until "
               "the session ends</option><option value=\"3600\">for 1 hour</option><option "
               "value=\"86400\">for 1 day</option></select></label> <button "
               "type=\"submit\">Make a link</button></form></td></tr>\n",
               qwd_h(q, row->id));
}

void qwd_table_helper_down(qwd_req_t *q)
{
    ap_rputs("<p class=\"qwd-error\">The virtual machine service is not answering: the states "
             "below are as last recorded.</p>",
             q->r);
}

static void login_form(qwd_req_t *q)
{
    request_rec *r = q->r;
    int mode = qwd_cfg_auth_mode(q->cfg);
    qwd_html_begin(q, "My sessions");
    ap_rprintf(r, "<form method=\"post\" action=\"%s\" class=\"qwd-form\">",
               qwd_h(q, qwd_route_url(q, "/sessions")));
    qwd_html_csrf_field(q);
    ap_rputs("<input type=\"hidden\" name=\"action\" value=\"login\">"
             "<label>User name <input name=\"user\" required maxlength=\"64\" "
             "autocomplete=\"username\"></label>",
             r);
    if (mode == QWD_AUTH_FORM) {
        ap_rputs("<label>Password <input name=\"password\" type=\"password\" required "
                 "autocomplete=\"current-password\"></label>",
                 r);
    }
    ap_rputs("<button type=\"submit\">Show my sessions</button></form>\n", r);
    qwd_html_end(q);
}

int qwd_page_sessions(qwd_req_t *q)
{
    request_rec *r = q->r;
    apr_array_header_t *rows;
    qwd_store_t *store;
    qwd_error_t *e;
    int helper_down;

    if (!qwd_auth_page_identity(q)) {
        if (qwd_cfg_auth_mode(q->cfg) == QWD_AUTH_APACHE) {
            return qwd_fail(q, qwd_auth_login(q, NULL, NULL));
        }
        login_form(q);
        return OK;
    }
    if ((e = qwd_store_open(q, &store))
        || (e = qwd_session_list(q, store, q->user, &rows, &helper_down))) {
        return qwd_fail(q, e);
    }
    qwd_html_begin(q, "My sessions");
    if (helper_down) {
        qwd_table_helper_down(q);
    }
    qwd_table_sessions(q, rows, 0, "/sessions", shares_row);
    if (qwd_cfg_auth_mode(q->cfg) != QWD_AUTH_APACHE) {
        ap_rprintf(r, "<form method=\"post\" action=\"%s\" class=\"qwd-inline\">",
                   qwd_h(q, qwd_route_url(q, "/sessions")));
        qwd_html_csrf_field(q);
        ap_rputs("<input type=\"hidden\" name=\"action\" value=\"logout\"><button "
                 "type=\"submit\">Forget me on this browser</button></form>",
                 r);
    }
    qwd_html_end(q);
    return OK;
}

/* Stops one session the current user may stop; shared with the monitor. */
qwd_error_t *qwd_table_stop(qwd_req_t *q, const char *id)
{
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;
    if ((e = qwd_store_open(q, &store)) || (e = qwd_session_find(q, store, id, &row))) {
        return e;
    }
    return qwd_session_stop(q, store, row);
}

/* Shares session id (action share: kind, expires_in) or revokes one of its shares (action
 * revoke: share), if the current user may (its owner or an admin). */
static qwd_error_t *share_action(qwd_req_t *q, const char *action)
{
    qwd_store_t *store;
    qwd_share_t *share;
    qwd_row_t *row;
    qwd_error_t *e;
    int expires_in;
    if ((e = qwd_store_open(q, &store))
        || (e = qwd_session_find(q, store, qwd_field(q, "id"), &row))) {
        return e;
    }
    if (!strcmp(action, "revoke")) {
        return qwd_share_revoke(q, store, row, qwd_field(q, "share"), &share);
    }
    if ((e = qwd_field_int(q, qwd_field(q, "expires_in"), "expires_in", 0, &expires_in))) {
        return e;
    }
    return qwd_share_create(q, store, row, qwd_field(q, "kind"), expires_in, &share);
}

static qwd_error_t *not_logged_in(qwd_req_t *q)
{
    return qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(00803), "unauthorized",
                   "Please log in under My sessions first.");
}

int qwd_page_sessions_post(qwd_req_t *q)
{
    const char *action;
    qwd_error_t *e;

    if ((e = qwd_page_read_form(q))) {
        return qwd_fail(q, e);
    }
    action = qwd_field(q, "action");
    if (action && !strcmp(action, "login")) {
        if ((e = qwd_auth_login(q, qwd_field(q, "user"), qwd_field(q, "password")))) {
            return qwd_fail(q, e);
        }
        if (qwd_cfg_auth_mode(q->cfg) != QWD_AUTH_APACHE) {
            qwd_identity_cookie_set(q, q->user);
        }
        return qwd_page_redirect(q, "/sessions");
    }
    if (action && !strcmp(action, "logout")) {
        qwd_identity_cookie_set(q, NULL);
        return qwd_page_redirect(q, "/sessions");
    }
    if (action && !strcmp(action, "stop")) {
        /* stopping needs the owner's (or an admin's) identity, never just a session id */
        if (!qwd_auth_page_identity(q)) {
            return qwd_fail(q, not_logged_in(q));
        }
        if ((e = qwd_table_stop(q, qwd_field(q, "id")))) {
            return qwd_fail(q, e);
        }
        return qwd_page_redirect(q, "/sessions");
    }
    if (action && (!strcmp(action, "share") || !strcmp(action, "revoke"))) {
        if (!qwd_auth_page_identity(q)) {
            return qwd_fail(q, not_logged_in(q));
        }
        if ((e = share_action(q, action))) {
            return qwd_fail(q, e);
        }
        return qwd_page_redirect(q, "/sessions");
    }
    e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00804), "bad_field", "Unknown action.");
    e->field = "action";
    return qwd_fail(q, e);
}
