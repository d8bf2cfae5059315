/* SPDX-License-Identifier: Apache-2.0 */
/* Link building. noVNC 1.3 builds its websocket URL as ws[s]://host:port/path, so the viewer
 * link splits the websocket URL into those parameters (path carrying "?token=..." or, with
 * QwdWebsocketTickets, "?ticket=..."). */
#include "qwd_links.h"
#include "qwd_capability.h"
#include "qwd_html.h"
#include "qwd_ticket.h"

#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_protocol.h>

const char *qwd_websocket_base(qwd_req_t *q)
{
    const char *base = q->cfg->websocket_url;
    request_rec *r = q->r;
    if (!base) {
        return NULL;
    }
    if (base[0] == '/') {
        /* same host and port as this request; wss when the page came over https */
        const char *http_url = ap_construct_url(r->pool, base, r);
        return apr_pstrcat(r->pool, ap_http_scheme(r)[4] == 's' ? "wss" : "ws",
                           strchr(http_url, ':'), NULL);
    }
    return base;
}

const char *qwd_websocket_url(qwd_req_t *q, const char *token)
{
    const char *base = qwd_websocket_base(q);
    if (!base || !token) {
        return NULL;
    }
    return apr_pstrcat(q->r->pool, base, strchr(base, '?') ? "&" : "?",
                       "token=", ap_escape_urlencoded(q->r->pool, token), NULL);
}

/* The viewer page connecting to ws; sep '?' puts the parameters in the query, '#' in the
 * fragment (noVNC reads it first, and browsers never send it: secrets stay out of logs). */
static const char *viewer_link(qwd_req_t *q, const char *ws, char sep)
{
    request_rec *r = q->r;
    const char *viewer = qwd_cfg_viewer_url(q->cfg);
    apr_uri_t uri;
    const char *path, *port;

    if (!ws || apr_uri_parse(r->pool, ws, &uri) != APR_SUCCESS || !uri.hostname) {
        return NULL;
    }
    if (viewer[0] == '/') {
        viewer = ap_construct_url(r->pool, viewer, r);
    }
    path = apr_pstrcat(r->pool, uri.path && uri.path[0] == '/' ? uri.path + 1 : "",
                       uri.query ? "?" : "", uri.query ? uri.query : "", NULL);
    port = uri.port_str ? uri.port_str : (!strcasecmp(uri.scheme, "wss") ? "443" : "80");
    return apr_psprintf(r->pool,
                        "%s%shost=%s&port=%s&encrypt=%d&path=%s&autoconnect=1"
                        "&resize=remote",
                        viewer,
                        sep == '#'            ? "#"
                        : strchr(viewer, '?') ? "&"
                                              : "?",
                        ap_escape_urlencoded(r->pool, uri.hostname), port,
                        !strcasecmp(uri.scheme, "wss"), ap_escape_urlencoded(r->pool, path));
}

const char *qwd_viewer_url(qwd_req_t *q, const char *token)
{
    return viewer_link(q, qwd_websocket_url(q, token), '?');
}

int qwd_links_use_tickets(qwd_req_t *q)
{
    return qwd_cfg_websocket_tickets(q->cfg) && q->cfg->websocket_url != NULL;
}

static const char *ticket_websocket_url(qwd_req_t *q, const char *session_id)
{
    const char *base = qwd_websocket_base(q);
    const char *ticket = base ? qwd_ticket_mint(q, session_id) : NULL;
    if (!ticket) {
        return NULL;
    }
    return apr_pstrcat(q->r->pool, base, strchr(base, '?') ? "&" : "?", "ticket=", ticket, NULL);
}

const char *qwd_ticket_subprotocol(qwd_req_t *q, const char *session_id)
{
    const char *ticket = qwd_ticket_mint(q, session_id);
    return ticket ? apr_pstrcat(q->r->pool, QWD_TICKET_SUBPROTOCOL, ticket, NULL) : NULL;
}

const char *qwd_viewer_ticket_url(qwd_req_t *q, const char *session_id)
{
    return viewer_link(q, ticket_websocket_url(q, session_id), '#');
}

const char *qwd_session_link(qwd_req_t *q, const qwd_row_t *row)
{
    if (qwd_links_use_tickets(q)) {
        return ap_construct_url(
            q->r->pool,
            qwd_route_url(q, apr_pstrcat(q->r->pool, "/s/", qwd_link_capability(q, row->id), NULL)),
            q->r);
    }
    return row->token ? qwd_viewer_url(q, row->token) : NULL;
}

const char *qwd_session_websocket_url(qwd_req_t *q, const qwd_row_t *row)
{
    if (qwd_links_use_tickets(q)) {
        return ticket_websocket_url(q, row->id);
    }
    return qwd_websocket_url(q, row->token);
}
