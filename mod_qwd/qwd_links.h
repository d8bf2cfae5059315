/* SPDX-License-Identifier: Apache-2.0 */
/* The links a session hands out: the websocket URL a plain websocket client opens to speak RFB
 * (QwdWebsocketURL + ?token=), and the noVNC page that connects to it (QwdViewerURL). */
#ifndef QWD_LINKS_H
#define QWD_LINKS_H

#include "qwd_request.h"
#include "qwd_store.h"

/* Absolute ws:// or wss:// URL for token; a relative QwdWebsocketURL is made absolute from the
 * request's scheme and host. NULL when QwdWebsocketURL is unset. */
const char *qwd_websocket_url(qwd_req_t *q, const char *token);
/* Absolute URL of the viewer page: vnc.html?host=&port=&encrypt=&path=&autoconnect=1&resize=remote */
const char *qwd_viewer_url(qwd_req_t *q, const char *token);

/* Whether links hand out tickets (QwdWebsocketTickets On with a QwdWebsocketURL). */
int qwd_links_use_tickets(qwd_req_t *q);

#define QWD_LINK_CAPABILITY_HEX 32
/* The capability of a session's link /s/LINK: 32 hex digits of an HMAC of its id under the
 * server's key. Never stored. */
const char *qwd_link_capability(qwd_req_t *q, const char *session_id);
/* What the session's row keeps to find it by its link: an HMAC of the capability. */
const char *qwd_link_key(qwd_req_t *q, const char *capability);

/* The link of a session a user keeps and shares: /s/LINK with tickets (checked on every visit,
 * dead once the session ends), else the viewer URL with websockify's token (row->token, known
 * only from the helper's answers). */
const char *qwd_session_link(qwd_req_t *q, const qwd_row_t *row);
/* A websocket URL for the session: with tickets a fresh one, valid QWD_TICKET_LIFETIME
 * seconds; else the token URL. */
const char *qwd_session_websocket_url(qwd_req_t *q, const qwd_row_t *row);
/* The viewer with a fresh ticket in its fragment (#host=&port=&encrypt=&path=...?ticket=). */
const char *qwd_viewer_ticket_url(qwd_req_t *q, const char *session_id);

#endif
