/* SPDX-License-Identifier: Apache-2.0 */
/* The links a session hands out: the websocket URL a plain websocket client opens to speak RFB
 * (QwdWebsocketURL + ?token=), and the noVNC page that connects to it (QwdViewerURL). */
#ifndef QWD_LINKS_H
#define QWD_LINKS_H

#include "qwd_request.h"
#include "qwd_store.h"

/* Absolute ws:// or wss:// URL of QwdWebsocketURL, without token or ticket (a relative one
 * is made absolute from the request's scheme and host); NULL when unset. */
const char *qwd_websocket_base(qwd_req_t *q);
/* Absolute ws:// or wss:// URL for token; a relative QwdWebsocketURL is made absolute from the
 * request's scheme and host. NULL when QwdWebsocketURL is unset. */
const char *qwd_websocket_url(qwd_req_t *q, const char *token);
/* Absolute URL of the viewer page: vnc.html?host=&port=&encrypt=&path=&autoconnect=1&resize=remote */
const char *qwd_viewer_url(qwd_req_t *q, const char *token);

/* Whether links hand out tickets (QwdWebsocketTickets On with a QwdWebsocketURL). */
int qwd_links_use_tickets(qwd_req_t *q);

/* The link of a session a user keeps and shares: with tickets /s/LINK (qwd_capability.h;
 * checked on every visit, dead once the session ends), else the viewer URL with websockify's
 * token (row->token, known only from the helper's answers). */
const char *qwd_session_link(qwd_req_t *q, const qwd_row_t *row);
/* A websocket URL for the session: with tickets a fresh one, valid QWD_TICKET_LIFETIME
 * seconds; else the token URL. */
const char *qwd_session_websocket_url(qwd_req_t *q, const qwd_row_t *row);
/* A fresh ticket as the websocket subprotocol that carries it: "qwd-ticket.TICKET". */
const char *qwd_ticket_subprotocol(qwd_req_t *q, const char *session_id);
/* The viewer with a fresh ticket in its fragment (#host=&port=&encrypt=&path=...?ticket=). */
const char *qwd_viewer_ticket_url(qwd_req_t *q, const char *session_id);

#endif
