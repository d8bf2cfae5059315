/* Websocket tickets: what /s/ID hands the browser instead of websockify's token. Stateless and
 * short-lived: "SESSION.EXPIRY.MAC", MAC = HMAC(server key, "ws|SESSION|EXPIRY"). */
#ifndef QWD_TICKET_H
#define QWD_TICKET_H

#include "qwd_request.h"

/* How long a ticket opens the websocket (s): long enough for noVNC to connect. */
#define QWD_TICKET_LIFETIME 60

/* A new ticket for session_id, valid QWD_TICKET_LIFETIME seconds from now. */
const char *qwd_ticket_mint(qwd_req_t *q, const char *session_id);

/* The session id of a valid, unexpired ticket, or NULL (*why says what was wrong). */
const char *qwd_ticket_check(qwd_req_t *q, const char *ticket, const char **why);

#endif
