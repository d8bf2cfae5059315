/* SPDX-License-Identifier: Apache-2.0 */
/* Failed logins per user and per client address, kept in SQLite so every worker process
 * sees them; a sliding window of QwdLoginThrottle seconds. */
#include "qwd_throttle.h"
#include "qwd_logno.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

APLOG_USE_MODULE(qwd);

typedef struct {
    int user_max, addr_max, window;
} throttle_t;

static int throttle_of(qwd_req_t *q, throttle_t *t)
{
    t->user_max = qwd_cfg_throttle_max(q->cfg);
    t->window = qwd_cfg_throttle_window(q->cfg);
    t->addr_max = qwd_cfg_throttle_addr_max(q->cfg);
    return t->user_max > 0;
}

/* Keys of the counters: user names compared without case (many directories ignore it). */
static const char *user_key(qwd_req_t *q, const char *user)
{
    char *key = apr_pstrcat(q->r->pool, "user:", user ? user : "", NULL);
    ap_str_tolower(key);
    return key;
}

static const char *addr_key(qwd_req_t *q)
{
    return apr_pstrcat(q->r->pool, "addr:", q->r->useragent_ip, NULL);
}

/* Seconds until key is below max again, 0 when it is below already. */
static qwd_error_t *blocked_for(qwd_req_t *q, qwd_store_t *store, const char *key, int max,
                                int window, apr_int64_t now, apr_int64_t *wait)
{
    const char *params[2] = {key, apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, now - window)};
    const char **row;
    qwd_error_t *e = qwd_store_first_row(store, "qwd_fail_count", 2, params, 2, &row);
    *wait = 0;
    if (!e && row && row[0] && atoi(row[0]) >= max) {
        /* the block lifts when the oldest counted failure leaves the window */
        *wait = (row[1] ? apr_atoi64(row[1]) : now) + window - now;
        if (*wait < 1) {
            *wait = 1;
        }
    }
    return e;
}

qwd_error_t *qwd_throttle_check(qwd_req_t *q, qwd_store_t *store, const char *user)
{
    throttle_t t;
    apr_int64_t now = apr_time_sec(apr_time_now()), wait_user = 0, wait_addr = 0, wait;
    qwd_error_t *e;
    if (!throttle_of(q, &t)) {
        return NULL;
    }
    if ((e = blocked_for(q, store, user_key(q, user), t.user_max, t.window, now, &wait_user))
        || (e = blocked_for(q, store, addr_key(q), t.addr_max, t.window, now, &wait_addr))) {
        return e;
    }
    wait = wait_user > wait_addr ? wait_user : wait_addr;
    if (!wait) {
        return NULL;
    }
    apr_table_setn(q->r->err_headers_out, "Retry-After",
                   apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, wait));
    e = qwd_err(q, HTTP_TOO_MANY_REQUESTS, QWDLOGNO(02101), "too_many_logins",
                "Too many failed logins; please try again in %" APR_INT64_T_FMT " minute%s.",
                (wait + 59) / 60, wait > 60 ? "s" : "");
    e->level = APLOG_WARNING; /* somebody may be guessing passwords */
    e->limit = "QwdLoginThrottle";
    e->detail = apr_psprintf(q->r->pool, "%s%s blocked for %" APR_INT64_T_FMT " s",
                             wait_user ? "user " : "client address", wait_user ? user : "", wait);
    return e;
}

/* A counter that failed to count is logged, but must not turn the refusal the user is about to
 * get into a server error. */
static void note_failure(qwd_req_t *q, qwd_error_t *e)
{
    if (e) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, QWDLOGNO(02102) "counting a failed login: %s",
                      e->detail ? e->detail : "");
    }
}

void qwd_throttle_failed(qwd_req_t *q, qwd_store_t *store, const char *user)
{
    throttle_t t;
    apr_int64_t now = apr_time_sec(apr_time_now());
    const char *at = apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, now);
    const char *params[2] = {NULL, at};
    const char *cutoff =
        apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, now - QWD_THROTTLE_WINDOW_MAX);
    if (!throttle_of(q, &t)) {
        return;
    }
    params[0] = user_key(q, user);
    note_failure(q, qwd_store_run(store, "qwd_fail_add", NULL, 2, params));
    params[0] = addr_key(q);
    note_failure(q, qwd_store_run(store, "qwd_fail_add", NULL, 2, params));
    /* rows older than the longest window (a week) count for nothing anywhere */
    note_failure(q, qwd_store_run(store, "qwd_fail_prune", NULL, 1, &cutoff));
}

void qwd_throttle_succeeded(qwd_req_t *q, qwd_store_t *store, const char *user)
{
    const char *key = user_key(q, user);
    if (qwd_cfg_throttle_max(q->cfg) != 0) {
        note_failure(q, qwd_store_run(store, "qwd_fail_clear", NULL, 1, &key));
    }
}
