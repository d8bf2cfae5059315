/* SPDX-License-Identifier: Apache-2.0 */
/* GET /s/LINK: the link of a session that users keep and share (QwdWebsocketTickets On), and
 * POST /s/LINK/ticket, where its viewer gets a ticket for each connect. */
#ifndef QWD_VIEWER_H
#define QWD_VIEWER_H

#include "qwd_request.h"

/* Finds the session of link (qwd_link_capability), checks that it is still live and serves the
 * viewer page (htdocs/qwd-viewer.js; without QwdStaticURL a redirect to noVNC with a fresh
 * ticket); 404 for an unknown link, 410 once the session ended or expired. */
int qwd_viewer_open(qwd_req_t *q, const char *link);

/* POST /s/LINK/ticket: {"url", "subprotocol": "qwd-ticket.TICKET", "expires",
 * "session_expires"} for the viewer's next connect (no-store); 503 not_ready while the
 * display does not accept yet, 404/410 as qwd_viewer_open, in JSON. */
int qwd_viewer_ticket(qwd_req_t *q, const char *link);

#endif
