/* SPDX-License-Identifier: Apache-2.0 */
/* Sends mod_qwd's own mail (login links and codes) through QwdSMTPRelay with libcurl: one
 * plain-text message, From QwdMailFrom, over TLS or STARTTLS like every mail talk. */
#include "qwd_mail.h"

#include <apr_strings.h>
#include <http_protocol.h>

typedef struct {
    const char *data;
    apr_size_t left;
} message_t;

static size_t read_message(char *buffer, size_t size, size_t nitems, void *message_v)
{
    message_t *message = message_v;
    size_t n = size * nitems < message->left ? size * nitems : message->left;
    memcpy(buffer, message->data, n);
    message->data += n;
    message->left -= n;
    return n;
}

static apr_status_t free_list(void *list)
{
    curl_slist_free_all(list);
    return APR_SUCCESS;
}

/* RFC 5322 date of now, in English whatever the locale. */
static const char *mail_date(apr_pool_t *pool)
{
    char date[APR_RFC822_DATE_LEN];
    apr_rfc822_date(date, apr_time_now());
    return apr_pstrdup(pool, date);
}

qwd_error_t *qwd_mail_send(qwd_req_t *q, const char *to, const char *subject, const char *body)
{
    apr_pool_t *pool = q->r->pool;
    const char *from = qwd_cfg_mail_from(q->cfg);
    char error_buffer[CURL_ERROR_SIZE];
    struct curl_slist *recipients;
    message_t message;
    qwd_error_t *e;
    CURLcode rc;
    CURL *curl;

    if (!q->cfg->smtp_relay
        || !(curl = qwd_mail_curl(pool, q->cfg, q->cfg->smtp_relay, error_buffer))) {
        e = qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(02301), "mail_unavailable",
                    "Mail cannot be sent right now; please try again later.");
        e->detail = q->cfg->smtp_relay ? "libcurl could not make a handle"
                                       : "no QwdSMTPRelay for this Location";
        return e;
    }
    message.data = apr_psprintf(pool,
                                "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                                "Message-ID: <%" APR_TIME_T_FMT ".%" APR_PID_T_FMT "@qwd>\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "Auto-Submitted: auto-generated\r\n\r\n%s\r\n",
                                from, to, subject, mail_date(pool), apr_time_now(), getpid(), body);
    message.left = strlen(message.data);
    recipients = curl_slist_append(NULL, apr_pstrcat(pool, "<", to, ">", NULL));
    apr_pool_cleanup_register(pool, recipients, free_list, apr_pool_cleanup_null);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, apr_pstrcat(pool, "<", from, ">", NULL));
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(curl, CURLOPT_READDATA, &message);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        e = qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(02302), "mail_unavailable",
                    "Mail cannot be sent right now; please try again later.");
        e->detail = apr_psprintf(pool, "sending to %s through %s: %s", to, q->cfg->smtp_relay,
                                 *error_buffer ? error_buffer : curl_easy_strerror(rc));
        return e;
    }
    return NULL;
}
