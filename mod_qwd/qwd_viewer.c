/* SPDX-License-Identifier: Apache-2.0 */
/* GET /s/LINK. The link is the capability: whoever has it may use the desktop, as long as the
 * session lives (stopping it revokes the link). LINK is an HMAC of the session's id under the
 * server's key (qwd_links.c) and the row keeps only an HMAC of LINK, so neither the id nor a
 * copy of the database opens a desktop. Every visit is checked against the row, reconciled
 * with the helper, and answered with a redirect to noVNC carrying a ticket good for one minute
 * in the URL fragment, which browsers never send to a server. */
#include "qwd_viewer.h"
#include "qwd_capability.h"
#include "qwd_links.h"
#include "qwd_session.h"
#include "qwd_store.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <http_protocol.h>

int qwd_viewer_open(qwd_req_t *q, const char *link)
{
    request_rec *r = q->r;
    apr_array_header_t *rows;
    qwd_store_t *store;
    qwd_row_t *row = NULL;
    qwd_error_t *e;
    const char *target, *session_id;
    int helper_down;

    if (!qwd_links_use_tickets(q) || strlen(link) != QWD_LINK_CAPABILITY_HEX
        || strspn(link, "0123456789abcdef") != QWD_LINK_CAPABILITY_HEX) {
        return qwd_fail(q, qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01411), "not_found",
                                   "There is no such session."));
    }
    if ((e = qwd_store_open(q, &store))
        || (e = qwd_store_get_by_link(store, qwd_link_key(q, link), &row))) {
        return qwd_fail(q, e);
    }
    if (!row) {
        return qwd_fail(q, qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01414), "not_found",
                                   "There is no such session."));
    }
    session_id = row->id;
    /* a VM that ended by itself (expired, crashed, powered off) must not get a ticket */
    if ((e = qwd_session_list(q, store, row->owner, &rows, &helper_down))
        || (e = qwd_store_get(store, session_id, &row))) {
        return qwd_fail(q, e);
    }
    if (!row || !qwd_session_is_live(row) || row->expires <= apr_time_sec(apr_time_now())) {
        return qwd_fail(q, qwd_err(q, HTTP_GONE, QWDLOGNO(01412), "ended",
                                   "This virtual machine has ended (%s); the link no longer "
                                   "works.",
                                   row && row->ended_reason ? row->ended_reason : QWD_END_EXPIRED));
    }
    if (!row->helper_id || !(target = qwd_viewer_ticket_url(q, session_id))) {
        return qwd_fail(q, qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(01413), "not_ready",
                                   "This virtual machine is not ready yet; please try again "
                                   "in a moment."));
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Referrer-Policy", "no-referrer");
    apr_table_setn(r->headers_out, "Location", target);
    r->status = HTTP_SEE_OTHER;
    return OK;
}
