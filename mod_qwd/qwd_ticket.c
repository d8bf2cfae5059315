/* SPDX-License-Identifier: Apache-2.0 */
/* Websocket tickets (qwd_ticket.h). Signing with the server's key (qwd_secret.c) makes them
 * need no storage to check; the minute they live bounds a leaked one (proxy logs, browser
 * history), and spending records each one's nonce so a ticket opens the display once. */
#include "qwd_ticket.h"
#include "qwd_secret.h"

#include <apr_general.h>
#include <apr_strings.h>

#define NONCE_HEX 16 /* 64 random bits: tickets minted in the same second differ */
#define SESSION_ID_HEX 32
#define SHARE_ID_HEX 16
#define SHARE_SEPARATOR '-'
#define EXPIRY_DIGITS_MAX 12
/* SESSION[-SHARE].EXPIRY.NONCE.MAC */
#define TICKET_MAX                                                                 \
    (SESSION_ID_HEX + 1 + SHARE_ID_HEX + 1 + EXPIRY_DIGITS_MAX + 1 + NONCE_HEX + 1 \
     + QWD_MAC_HEX_LEN)

static const char *mac_of(qwd_req_t *q, const char *session_id, apr_int64_t expiry,
                          const char *nonce)
{
    return qwd_secret_sign(
        q, apr_psprintf(q->r->pool, "ws|%s|%" APR_INT64_T_FMT "|%s", session_id, expiry, nonce));
}

const char *qwd_ticket_mint_share(qwd_req_t *q, const char *session_id, const char *share_id)
{
    return qwd_ticket_mint(
        q, apr_psprintf(q->r->pool, "%s%c%s", session_id, SHARE_SEPARATOR, share_id));
}

const char *qwd_ticket_mint(qwd_req_t *q, const char *session_id)
{
    apr_int64_t expiry = apr_time_sec(apr_time_now()) + QWD_TICKET_LIFETIME;
    unsigned char bytes[NONCE_HEX / 2];
    char nonce[NONCE_HEX + 1];
    int i;
    if (apr_generate_random_bytes(bytes, sizeof(bytes)) != APR_SUCCESS) {
        return NULL; /* no link rather than a guessable one */
    }
    for (i = 0; i < NONCE_HEX / 2; i++) {
        apr_snprintf(nonce + 2 * i, 3, "%02x", bytes[i]);
    }
    return apr_psprintf(q->r->pool, "%s.%" APR_INT64_T_FMT ".%s.%s", session_id, expiry, nonce,
                        mac_of(q, session_id, expiry, nonce));
}

static int is_hex(const char *text, apr_size_t len)
{
    return strlen(text) == len && strspn(text, "0123456789abcdef") == len;
}

/* Whether subject is a session's id or SESSION-SHARE; *share_id points at the share's part. */
static int is_subject(char *subject, const char **share_id)
{
    char *separator = strchr(subject, SHARE_SEPARATOR);
    *share_id = NULL;
    if (!separator) {
        return is_hex(subject, SESSION_ID_HEX);
    }
    *share_id = separator + 1;
    return separator - subject == SESSION_ID_HEX
           && strspn(subject, "0123456789abcdef") == SESSION_ID_HEX
           && is_hex(*share_id, SHARE_ID_HEX);
}

const char *qwd_ticket_check(qwd_req_t *q, const char *ticket, qwd_ticket_t *checked,
                             const char **why)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), expiry;
    char *copy, *session_id, *expiry_text, *nonce, *mac, *state;
    const char *share_id;

    *why = "malformed ticket";
    if (!ticket || strlen(ticket) > TICKET_MAX) {
        return NULL;
    }
    /* exactly four fields: an empty or all-dots ticket has none, and the next field is only
     * looked for after one was found (apr_strtok reads its state only once it has set it) */
    copy = apr_pstrdup(q->r->pool, ticket);
    if (!(session_id = apr_strtok(copy, ".", &state))
        || !(expiry_text = apr_strtok(NULL, ".", &state))
        || !(nonce = apr_strtok(NULL, ".", &state)) || !(mac = apr_strtok(NULL, ".", &state))
        || apr_strtok(NULL, ".", &state) || !is_subject(session_id, &share_id)
        || !is_hex(nonce, NONCE_HEX) || !is_hex(mac, QWD_MAC_HEX_LEN)
        || strspn(expiry_text, "0123456789") != strlen(expiry_text)
        || strlen(expiry_text) > EXPIRY_DIGITS_MAX) {
        return NULL;
    }
    expiry = apr_atoi64(expiry_text);
    if (!qwd_secret_equal(mac_of(q, session_id, expiry, nonce), mac)) {
        *why = "bad signature";
        return NULL;
    }
    if (expiry < now) {
        *why = "expired ticket";
        return NULL;
    }
    checked->nonce = nonce;
    checked->expiry = expiry;
    checked->share_id = share_id;
    *why = NULL;
    /* the MAC covered the whole subject: now the session's id alone */
    return apr_pstrmemdup(q->r->pool, session_id, SESSION_ID_HEX);
}

qwd_error_t *qwd_ticket_spend(qwd_req_t *q, qwd_store_t *store, const qwd_ticket_t *ticket,
                              int *first_use)
{
    const char *params[2] = {ticket->nonce,
                             apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, ticket->expiry)};
    const char *now = apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, apr_time_sec(apr_time_now()));
    int nrows = 0;
    qwd_error_t *e = qwd_store_run(store, "qwd_ticket_spend", &nrows, 2, params);
    *first_use = nrows == 1;
    /* a spent nonce matters only while its ticket could still be presented */
    return e ? e : qwd_store_run(store, "qwd_ticket_prune", NULL, 1, &now);
}

qwd_error_t *qwd_ticket_unspend(qwd_req_t *q, qwd_store_t *store, const char *nonce)
{
    return qwd_store_run(store, "qwd_ticket_unspend", NULL, 1, &nonce);
}
