/* SPDX-License-Identifier: Apache-2.0 */
/* GET /s/LINK: the link of a session that users keep and share (QwdWebsocketTickets On). */
#ifndef QWD_VIEWER_H
#define QWD_VIEWER_H

#include "qwd_request.h"

/* Finds the session of link (qwd_link_capability), checks that it is still live and redirects
 * to noVNC with a fresh ticket; 404 for an unknown link, 410 once the session ended or
 * expired. */
int qwd_viewer_open(qwd_req_t *q, const char *link);

#endif
