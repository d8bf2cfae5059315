/* SPDX-License-Identifier: Apache-2.0 */
/* The authn providers "imap" and "smtp": a user is who the configured mail server lets log in
 * (IMAP LOGIN/AUTHENTICATE, SMTP AUTH PLAIN), always over TLS or STARTTLS. A refusal is
 * AUTH_DENIED; an unreachable server or a TLS failure is AUTH_GENERAL_ERROR, never "denied". */
#include "qwd_mail.h"
#include "qwd_logno.h"

#include <poll.h>

#include <ap_provider.h>
#include <apr_base64.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_request.h>
#include <mod_auth.h>

APLOG_USE_MODULE(qwd);

static apr_status_t cleanup_curl(void *curl)
{
    curl_easy_cleanup(curl);
    return APR_SUCCESS;
}

static int is_starttls_url(const char *url)
{
    return url[4] == ':'; /* imap://, smtp:// (validated by the directives) */
}

CURL *qwd_mail_curl(apr_pool_t *pool, const qwd_dir_config_t *cfg, const char *url,
                    char *error_buffer)
{
    long timeout = qwd_cfg_mail_timeout(cfg);
    int verify = qwd_cfg_mail_verify_peer(cfg);
    CURL *curl = curl_easy_init();
    if (!curl) {
        return NULL;
    }
    apr_pool_cleanup_register(pool, curl, cleanup_curl, apr_pool_cleanup_null);
    error_buffer[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threaded workers: no SIGALRM */
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
    /* a password never crosses the network in clear: STARTTLS is required, not tried */
    curl_easy_setopt(curl, CURLOPT_USE_SSL,
                     (long)(is_starttls_url(url) ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (cfg->mail_ca_file) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->mail_ca_file);
    }
    return curl;
}

int qwd_mail_post_config(apr_pool_t *pconf, server_rec *s)
{
    static int done;
    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, QWDLOGNO(02201) "libcurl failed to start");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    done = 1;
    return OK;
}

static const qwd_dir_config_t *config_of(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &qwd_module);
}

/* Names and passwords with control characters would smuggle protocol lines. */
static int acceptable(const char *text)
{
    const unsigned char *c;
    for (c = (const unsigned char *)text; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static authn_status unavailable(request_rec *r, const char *provider, const char *url,
                                const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, QWDLOGNO(02202) "authn provider %s: %s unusable: %s",
                  provider, url ? url : "(no server)", why);
    return AUTH_GENERAL_ERROR;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *unused)
{
    return size * nmemb;
}

static authn_status imap_check_password(request_rec *r, const char *user, const char *password)
{
    const qwd_dir_config_t *cfg = config_of(r);
    char error_buffer[CURL_ERROR_SIZE];
    CURL *curl;
    CURLcode rc;
    const char *url;

    if (!cfg->imap_server) {
        return unavailable(r, "imap", NULL, "set QwdIMAPServer where the provider is used");
    }
    if (!*user || !*password || !acceptable(user) || !acceptable(password)) {
        return AUTH_DENIED;
    }
    url = apr_pstrcat(r->pool, cfg->imap_server, "/", NULL);
    if (!(curl = qwd_mail_curl(r->pool, cfg, url, error_buffer))) {
        return unavailable(r, "imap", url, "libcurl could not make a handle");
    }
    curl_easy_setopt(curl, CURLOPT_USERNAME, user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, password);
    /* after the login libcurl lists the mailboxes: proof the session is usable */
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        return AUTH_GRANTED;
    }
    if (rc == CURLE_LOGIN_DENIED) {
        return AUTH_DENIED;
    }
    return unavailable(r, "imap", url, *error_buffer ? error_buffer : curl_easy_strerror(rc));
}

/* SMTP over libcurl's connect-only mode: libcurl greets, says EHLO and upgrades with STARTTLS;
 * the AUTH exchange is ours, so a server that offers no AUTH cannot let anyone in (libcurl
 * would skip its own AUTH then and report success). */
typedef struct {
    request_rec *r;
    CURL *curl;
    apr_time_t deadline;
} smtp_talk_t;

static CURLcode wait_socket(smtp_talk_t *talk, short events)
{
    curl_socket_t fd;
    struct pollfd pfd;
    apr_interval_time_t left = talk->deadline - apr_time_now();
    if (curl_easy_getinfo(talk->curl, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK
        || fd == CURL_SOCKET_BAD) {
        return CURLE_RECV_ERROR;
    }
    if (left <= 0) {
        return CURLE_OPERATION_TIMEDOUT;
    }
    pfd.fd = fd;
    pfd.events = events;
    pfd.revents = 0;
    return poll(&pfd, 1, (int)apr_time_as_msec(left) + 1) > 0 ? CURLE_OK : CURLE_OPERATION_TIMEDOUT;
}

static CURLcode send_line(smtp_talk_t *talk, const char *line)
{
    size_t len = strlen(line), sent_total = 0;
    while (sent_total < len) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(talk->curl, line + sent_total, len - sent_total, &sent);
        if (rc == CURLE_AGAIN) {
            if ((rc = wait_socket(talk, POLLOUT)) != CURLE_OK) {
                return rc;
            }
            continue;
        }
        if (rc != CURLE_OK) {
            return rc;
        }
        sent_total += sent;
    }
    return CURLE_OK;
}

/* Reads one (possibly multi-line) reply; *code = its three-digit code. */
static CURLcode read_reply(smtp_talk_t *talk, int *code)
{
    char reply[1024];
    size_t have = 0;
    *code = 0;
    for (;;) {
        size_t got = 0;
        char *line, *end;
        CURLcode rc;
        if (have >= sizeof(reply) - 1) {
            return CURLE_WEIRD_SERVER_REPLY;
        }
        rc = curl_easy_recv(talk->curl, reply + have, sizeof(reply) - 1 - have, &got);
        if (rc == CURLE_AGAIN) {
            if ((rc = wait_socket(talk, POLLIN)) != CURLE_OK) {
                return rc;
            }
            continue;
        }
        if (rc != CURLE_OK) {
            return rc;
        }
        if (got == 0) {
            return CURLE_RECV_ERROR; /* closed */
        }
        have += got;
        reply[have] = '\0';
        /* the last line is "NNN text\r\n"; earlier ones are "NNN-text\r\n" */
        for (line = reply; (end = strstr(line, "\r\n")); line = end + 2) {
            if (end - line >= 3 && (line[3] == ' ' || end - line == 3)) {
                *code = atoi(line);
                return *code >= 200 && *code < 600 ? CURLE_OK : CURLE_WEIRD_SERVER_REPLY;
            }
        }
    }
}

static authn_status smtp_check_password(request_rec *r, const char *user, const char *password)
{
    const qwd_dir_config_t *cfg = config_of(r);
    char error_buffer[CURL_ERROR_SIZE];
    smtp_talk_t talk;
    apr_size_t user_len, password_len;
    char *plain, *encoded;
    CURLcode rc;
    int code = 0;

    if (!cfg->smtp_auth_server) {
        return unavailable(r, "smtp", NULL, "set QwdSMTPAuthServer where the provider is used");
    }
    if (!*user || !*password || !acceptable(user) || !acceptable(password)) {
        return AUTH_DENIED;
    }
    talk.r = r;
    talk.deadline = apr_time_now() + apr_time_from_sec(qwd_cfg_mail_timeout(cfg));
    if (!(talk.curl = qwd_mail_curl(r->pool, cfg, cfg->smtp_auth_server, error_buffer))) {
        return unavailable(r, "smtp", cfg->smtp_auth_server, "libcurl could not make a handle");
    }
    curl_easy_setopt(talk.curl, CURLOPT_CONNECT_ONLY, 1L);
    if ((rc = curl_easy_perform(talk.curl)) != CURLE_OK) {
        return unavailable(r, "smtp", cfg->smtp_auth_server,
                           *error_buffer ? error_buffer : curl_easy_strerror(rc));
    }
    /* AUTH PLAIN: base64("\0user\0password") */
    user_len = strlen(user);
    password_len = strlen(password);
    plain = apr_palloc(r->pool, user_len + password_len + 2);
    plain[0] = '\0';
    memcpy(plain + 1, user, user_len);
    plain[1 + user_len] = '\0';
    memcpy(plain + 2 + user_len, password, password_len);
    encoded = apr_palloc(r->pool, apr_base64_encode_len((int)(user_len + password_len + 2)));
    apr_base64_encode(encoded, plain, (int)(user_len + password_len + 2));
    rc = send_line(&talk, apr_pstrcat(r->pool, "AUTH PLAIN ", encoded, "\r\n", NULL));
    memset(plain, 0, user_len + password_len + 2);
    if (rc == CURLE_OK) {
        rc = read_reply(&talk, &code);
    }
    if (rc == CURLE_OK) {
        send_line(&talk, "QUIT\r\n"); /* politeness; the answer does not matter */
    }
    if (rc != CURLE_OK) {
        return unavailable(r, "smtp", cfg->smtp_auth_server, curl_easy_strerror(rc));
    }
    if (code == 235) {
        return AUTH_GRANTED;
    }
    if (code == 535) { /* authentication credentials invalid */
        return AUTH_DENIED;
    }
    return unavailable(r, "smtp", cfg->smtp_auth_server,
                       apr_psprintf(r->pool, "AUTH PLAIN answered %d", code));
}

static const authn_provider imap_provider = {imap_check_password, NULL};
static const authn_provider smtp_provider = {smtp_check_password, NULL};

void qwd_authn_mail_register(apr_pool_t *pool)
{
    ap_register_auth_provider(pool, AUTHN_PROVIDER_GROUP, "imap", AUTHN_PROVIDER_VERSION,
                              &imap_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(pool, AUTHN_PROVIDER_GROUP, "smtp", AUTHN_PROVIDER_VERSION,
                              &smtp_provider, AP_AUTH_INTERNAL_PER_CONF);
}
