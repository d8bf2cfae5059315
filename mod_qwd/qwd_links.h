/* The links a session hands out: the websocket URL a plain websocket client opens to speak RFB
 * (QwdWebsocketURL + ?token=), and the noVNC page that connects to it (QwdViewerURL). */
#ifndef QWD_LINKS_H
#define QWD_LINKS_H

#include "qwd_request.h"

/* Absolute ws:// or wss:// URL for token; a relative QwdWebsocketURL is made absolute from the
 * request's scheme and host. NULL when QwdWebsocketURL is unset. */
const char *qwd_websocket_url(qwd_req_t *q, const char *token);
/* Absolute URL of the viewer page: vnc.html?host=&port=&encrypt=&path=&autoconnect=1&resize=remote */
const char *qwd_viewer_url(qwd_req_t *q, const char *token);

#endif
