/* Websocket tickets (qwd_ticket.h). Signing with the server's key (qwd_secret.c) makes them
 * need no storage; the minute they live bounds a leaked one (proxy logs, browser history). */
#include "qwd_ticket.h"
#include "qwd_secret.h"

#include <apr_strings.h>

static const char *mac_of(qwd_req_t *q, const char *session_id, apr_int64_t expiry)
{
    return qwd_secret_sign(q, apr_psprintf(q->r->pool, "ws|%s|%" APR_INT64_T_FMT, session_id,
                                           expiry));
}

const char *qwd_ticket_mint(qwd_req_t *q, const char *session_id)
{
    apr_int64_t expiry = apr_time_sec(apr_time_now()) + QWD_TICKET_LIFETIME;
    return apr_psprintf(q->r->pool, "%s.%" APR_INT64_T_FMT ".%s", session_id, expiry,
                        mac_of(q, session_id, expiry));
}

static int is_hex(const char *text, apr_size_t len)
{
    return strlen(text) == len && strspn(text, "0123456789abcdef") == len;
}

const char *qwd_ticket_check(qwd_req_t *q, const char *ticket, const char **why)
{
    apr_int64_t now = apr_time_sec(apr_time_now()), expiry;
    char *copy, *session_id, *expiry_text, *mac, *state;

    *why = "malformed ticket";
    if (!ticket || strlen(ticket) > 128) {
        return NULL;
    }
    copy = apr_pstrdup(q->r->pool, ticket);
    session_id = apr_strtok(copy, ".", &state);
    expiry_text = apr_strtok(NULL, ".", &state);
    mac = apr_strtok(NULL, ".", &state);
    if (!session_id || !expiry_text || !mac || apr_strtok(NULL, ".", &state)
        || !is_hex(session_id, 32) || !is_hex(mac, 40)
        || strspn(expiry_text, "0123456789") != strlen(expiry_text) || strlen(expiry_text) > 12) {
        return NULL;
    }
    expiry = apr_atoi64(expiry_text);
    if (!qwd_secret_equal(mac_of(q, session_id, expiry), mac)) {
        *why = "bad signature";
        return NULL;
    }
    if (expiry < now) {
        *why = "expired ticket";
        return NULL;
    }
    *why = NULL;
    return session_id;
}
