/* SPDX-License-Identifier: Apache-2.0 */
/* Websocket tickets: what /s/ID hands the browser instead of websockify's token.
 * "SUBJECT.EXPIRY.NONCE.MAC", MAC = HMAC(server key, "ws|SUBJECT|EXPIRY|NONCE"), SUBJECT the
 * session's id, or "SESSION-SHARE" for a share's viewer: checked without storage, and spent
 * once (the nonce is recorded until the ticket expires). */
#ifndef QWD_TICKET_H
#define QWD_TICKET_H

#include "qwd_request.h"
#include "qwd_store.h"

/* How long a ticket opens the websocket (s): long enough for noVNC to connect. */
#define QWD_TICKET_LIFETIME 60

/* A websocket client may offer its ticket as this subprotocol + TICKET (besides "binary",
 * the one websockify picks) instead of ?ticket= in the URL. */
#define QWD_TICKET_SUBPROTOCOL "qwd-ticket."

typedef struct qwd_ticket {
    const char *nonce;
    apr_int64_t expiry;
    const char *share_id; /* the share it opens, or NULL: the session's own link */
} qwd_ticket_t;

/* A new ticket for session_id, valid QWD_TICKET_LIFETIME seconds from now (NULL when the
 * system has no randomness to give). */
const char *qwd_ticket_mint(qwd_req_t *q, const char *session_id);
/* The same for the viewers of a share of session_id. */
const char *qwd_ticket_mint_share(qwd_req_t *q, const char *session_id, const char *share_id);

/* The session id of a valid, unexpired ticket (its nonce, expiry and share in *checked), or
 * NULL (*why says what was wrong). */
const char *qwd_ticket_check(qwd_req_t *q, const char *ticket, qwd_ticket_t *checked,
                             const char **why);

/* Records the ticket as used: *first_use is 0 when it had been used already. */
qwd_error_t *qwd_ticket_spend(qwd_req_t *q, qwd_store_t *store, const qwd_ticket_t *ticket,
                              int *first_use);

/* Gives a spent ticket back: its upgrade never reached the display (qwd_ws_gate.c). */
qwd_error_t *qwd_ticket_unspend(qwd_req_t *q, qwd_store_t *store, const char *nonce);

#endif
