/* SPDX-License-Identifier: Apache-2.0 */
/* Mailed login secrets. A pending login is a row of qwd_pending keyed by an HMAC of its random
 * reference (the database never holds a usable reference), with an HMAC of the code, the
 * create request, an expiry (QwdLoginCodeLifetime) and an attempt counter. Spending it is one
 * DELETE that must hit exactly one row, so a secret works once even across worker processes.
 * The create request is every choice of the form (qwd_create_args_to_json), a typed start-up
 * script too: it stays in the database (the Apache user's alone, 0600) until the row is spent
 * or expires, and goes into no log line, URL or mail. */
#include "qwd_otp.h"
#include "qwd_audit.h"
#include "qwd_auth.h"
#include "qwd_counters.h"
#include "qwd_body.h"
#include "qwd_html.h"
#include "qwd_mail.h"
#include "qwd_pages.h"
#include "qwd_protocol.h"
#include "qwd_secret.h"
#include "qwd_session.h"
#include "qwd_store.h"
#include "qwd_throttle.h"
#include "qwd_token.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>

#define KIND_EMAIL "email"
#define KIND_MFA "mfa"
#define MAX_CODE_ATTEMPTS 5
/* A mailed code: this many decimal digits (the modulus below). */
#define CODE_FORMAT "%08u"
#define CODE_MODULUS 100000000u

static const char *now_plus(qwd_req_t *q, apr_int64_t seconds)
{
    return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT,
                        (apr_int64_t)apr_time_sec(apr_time_now()) + seconds);
}

static const char *pending_id(qwd_req_t *q, const char *ref)
{
    return qwd_secret_sign(q, apr_pstrcat(q->r->pool, "otp-id|", ref, NULL));
}

static const char *code_hash(qwd_req_t *q, const char *ref, const char *code)
{
    return qwd_secret_sign(q, apr_pstrcat(q->r->pool, "otp-code|", ref, "|", code, NULL));
}

static qwd_error_t *internal(qwd_req_t *q, const char *logno, const char *detail)
{
    qwd_error_t *e = qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, logno, "internal",
                             "The login could not be prepared; please try again.");
    e->detail = detail;
    return e;
}

/* The one answer for a reference or code that is wrong, spent, expired or tried too often. */
static qwd_error_t *refused(qwd_req_t *q, const char *detail)
{
    qwd_counter_inc(QWD_COUNTER_AUTH_BAD_CODE);
    qwd_error_t *e = qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(02403), "bad_code",
                             "This code or link is wrong, expired or already used. Please start "
                             "again from the form.");
    e->detail = detail;
    return e;
}

/* The create the form asks for, every choice of it, as the JSON the pending login keeps
 * (qwd_create_args_to_json: the same members as the API's). Its numbers and bounds are checked
 * now, so that mistakes show before any mail; the machine's choices and the script against the
 * configuration of the time the link or code comes back (qwd_session_create). */
static qwd_error_t *request_of_form(qwd_req_t *q, const char **request)
{
    qwd_create_args_t args, bounds;
    qwd_error_t *e;
    json_t *object;
    char *text;
    if (q->cfg->terms && !qwd_field(q, "terms")) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(02402), "bad_field",
                    "Please accept the terms of use.");
        e->field = "terms";
        return e;
    }
    qwd_create_args_init(&args);
    if ((e = qwd_page_create_args(q, &args))) {
        return e;
    }
    bounds = args; /* the defaults are the configuration's when the session starts */
    if ((e = qwd_create_args_check(q, &bounds))) {
        return e;
    }
    object = qwd_create_args_to_json(&args);
    text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    if (!text) {
        return internal(q, QWDLOGNO(02411), "the create request could not be written as JSON");
    }
    *request = apr_pstrdup(q->r->pool, text);
    free(text);
    return NULL;
}

/* Records a pending login; *ref gets its fresh reference. */
static qwd_error_t *add_pending(qwd_req_t *q, qwd_store_t *store, const char *kind,
                                const char *user, const char *code, const char *request, char **ref)
{
    const char *params[6];
    if (qwd_token_new(q->r->pool, ref) != APR_SUCCESS) {
        return internal(q, QWDLOGNO(02404), "no random bytes for a login reference");
    }
    params[0] = pending_id(q, *ref);
    params[1] = kind;
    params[2] = user;
    params[3] = code_hash(q, *ref, code);
    params[4] = request;
    params[5] = now_plus(q, qwd_cfg_code_lifetime(q->cfg));
    return qwd_store_run(store, "qwd_pending_add", NULL, 6, params);
}

static const char *minutes(qwd_req_t *q)
{
    int seconds = qwd_cfg_code_lifetime(q->cfg);
    return apr_psprintf(q->r->pool, "%d minute%s", (seconds + 59) / 60, seconds > 60 ? "s" : "");
}

/* QwdAuth email, first step: the address must belong to a QwdEmailDomain. */
static qwd_error_t *allowed_address(qwd_req_t *q, const char *address)
{
    const char *at = strchr(address, '@');
    int i;
    if (at && at != address && !strchr(at + 1, '@') && q->cfg->email_domains
        && strlen(address) <= QWD_MAX_USER_LEN && !strpbrk(address, " \t\r\n<>\",;:()[]\\")) {
        for (i = 0; i < q->cfg->email_domains->nelts; i++) {
            if (!strcmp(at + 1, APR_ARRAY_IDX(q->cfg->email_domains, i, const char *))) {
                return NULL;
            }
        }
    }
    {
        qwd_error_t *e = qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(02405), "unauthorized",
                                 "Please give an e-mail address of a domain this service "
                                 "accepts.");
        e->field = "user";
        return e;
    }
}

static int start_email(qwd_req_t *q, qwd_store_t *store, const char *request)
{
    request_rec *r = q->r;
    const char *given = qwd_field(q, "user");
    char *address = apr_pstrdup(r->pool, given ? given : ""), *ref;
    const char *link;
    qwd_error_t *e;
    apr_collapse_spaces(address, address);
    ap_str_tolower(address);
    /* every mailed link counts against QwdLoginThrottle until it is used: no mail bombs */
    if ((e = allowed_address(q, address)) || (e = qwd_throttle_check(q, store, address))) {
        return qwd_fail(q, e);
    }
    qwd_throttle_failed(q, store, address);
    if ((e = add_pending(q, store, KIND_EMAIL, address, "", request, &ref))) {
        return qwd_fail(q, e);
    }
    link = ap_construct_url(
        r->pool, apr_pstrcat(r->pool, qwd_route_url(q, "/login"), "?token=", ref, NULL), r);
    if ((e = qwd_mail_send(
             q, address, "Your virtual machine login link",
             apr_psprintf(r->pool,
                          "Hello,\r\n\r\nsomebody (hopefully you) asked to start a virtual "
                          "machine as %s.\r\nOpen this link within %s to start it:\r\n\r\n"
                          "%s\r\n\r\nThe link works once. If you did not ask, ignore this "
                          "mail.\r\n",
                          address, minutes(q), link)))) {
        return qwd_fail(q, e);
    }
    qwd_html_begin(q, "Check your mail");
    ap_rprintf(r,
               "<p class=\"qwd-sent\">We sent a login link to <b>%s</b>. Open it within %s "
               "to start your machine; it works once.</p>",
               qwd_h(q, address), qwd_h(q, minutes(q)));
    qwd_html_end(q);
    return OK;
}

static int start_mfa(qwd_req_t *q, qwd_store_t *store, const char *request)
{
    request_rec *r = q->r;
    unsigned char random[4];
    const char *code, *address;
    char *ref;
    qwd_error_t *e;
    if ((e = qwd_auth_first_factor(q, qwd_field(q, "user"), qwd_field(q, "password")))) {
        return qwd_fail(q, e);
    }
    if (!q->cfg->mfa_mail_domain) {
        return qwd_fail(q, internal(q, QWDLOGNO(02406), "QwdMFA email needs QwdMFAMailDomain"));
    }
    if (strpbrk(q->user, "@ <>\",;:()[]\\")) {
        return qwd_fail(q, internal(q, QWDLOGNO(02409),
                                    apr_psprintf(r->pool,
                                                 "user name %s cannot be "
                                                 "the local part of a mail "
                                                 "address (QwdMFA email)",
                                                 q->user)));
    }
    address = apr_pstrcat(r->pool, q->user, "@", q->cfg->mfa_mail_domain, NULL);
    if (apr_generate_random_bytes(random, sizeof(random)) != APR_SUCCESS) {
        return qwd_fail(q, internal(q, QWDLOGNO(02410), "no random bytes for a code"));
    }
    /* 8 digits; the modulo's bias (2^32 vs 10^8) is far below what 5 tries can use */
    code = apr_psprintf(r->pool, CODE_FORMAT,
                        (unsigned)(((apr_uint32_t)random[0] << 24 | (apr_uint32_t)random[1] << 16
                                    | (apr_uint32_t)random[2] << 8 | random[3])
                                   % CODE_MODULUS));
    if ((e = add_pending(q, store, KIND_MFA, q->user, code, request, &ref))
        || (e = qwd_mail_send(q, address, "Your login code",
                              apr_psprintf(r->pool,
                                           "Hello %s,\r\n\r\nyour login code is %s\r\n\r\nIt "
                                           "is valid for %s and works once. If you did not "
                                           "just log in, somebody knows your password: change "
                                           "it.\r\n",
                                           q->user, code, minutes(q))))) {
        return qwd_fail(q, e);
    }
    qwd_html_begin(q, "Enter your code");
    ap_rprintf(r, "<form method=\"post\" action=\"%s/\" class=\"qwd-form\">",
               qwd_h(q, qwd_route_url(q, "")));
    qwd_html_csrf_field(q);
    ap_rprintf(r,
               "<p>We mailed a code to the address of <b>%s</b>. It is valid for %s.</p>"
               "<input type=\"hidden\" name=\"otp_ref\" value=\"%s\">"
               "<label>Code <input name=\"code\" required inputmode=\"numeric\" "
               "autocomplete=\"one-time-code\" maxlength=\"16\"></label>"
               "<button type=\"submit\">Continue</button></form>\n",
               qwd_h(q, q->user), qwd_h(q, minutes(q)), qwd_h(q, ref));
    qwd_html_end(q);
    return OK;
}

/* Spends the pending login ref (of kind) with code and starts the machine it asked for. */
static int finish(qwd_req_t *q, const char *kind, const char *ref, const char *code)
{
    qwd_create_args_t args;
    const char *id, *params[3], **pending;
    qwd_store_t *store;
    qwd_row_t *row;
    json_t *request;
    qwd_error_t *e;
    int nrows = 0;

    qwd_create_args_init(&args);
    if (!ref || !qwd_token_is_valid(ref)) {
        return qwd_fail(q, refused(q, "malformed reference"));
    }
    id = pending_id(q, ref);
    params[0] = id;
    params[1] = now_plus(q, 0);
    if ((e = qwd_store_open(q, &store))
        || (e = qwd_store_first_row(store, "qwd_pending_get", 2, params, 6, &pending))) {
        return qwd_fail(q, e);
    }
    if (!pending || strcmp(pending[0], kind)) {
        return qwd_fail(q, refused(q, "no such pending login (spent, expired or never made)"));
    }
    params[1] = apr_itoa(q->r->pool, MAX_CODE_ATTEMPTS);
    if ((e = qwd_store_run(store, "qwd_pending_attempt", &nrows, 2, params))) {
        return qwd_fail(q, e);
    }
    if (nrows != 1) {
        return qwd_fail(
            q, refused(q, apr_psprintf(q->r->pool, "user %s: too many codes tried", pending[1])));
    }
    params[1] = code_hash(q, ref, code ? code : "");
    params[2] = now_plus(q, 0);
    if ((e = qwd_store_run(store, "qwd_pending_take", &nrows, 3, params))) {
        return qwd_fail(q, e);
    }
    if (nrows != 1) {
        qwd_throttle_failed(q, store, pending[1]); /* guessing codes is guessing passwords */
        qwd_audit_record(q, store, QWD_AUDIT_LOGIN_REFUSED, NULL, NULL, pending[1],
                         QWD_AUDIT_BY_USER, "wrong code");
        return qwd_fail(q, refused(q, apr_psprintf(q->r->pool, "user %s: wrong code", pending[1])));
    }
    qwd_auth_set_user(q, pending[1]);
    qwd_throttle_succeeded(q, store, q->user);
    qwd_counter_inc(QWD_COUNTER_LOGINS);
    qwd_audit_record(q, store, QWD_AUDIT_LOGIN, NULL, NULL, q->user, QWD_AUDIT_BY_USER,
                     strcmp(kind, KIND_EMAIL) ? "mailed code" : "mailed link");
    request = json_loads(pending[3] ? pending[3] : "{}", 0, NULL);
    if (!request || !json_is_object(request)) {
        json_decref(request);
        return qwd_fail(q, internal(q, QWDLOGNO(02407), "unreadable pending request"));
    }
    /* every choice, checked again against what the configuration offers now: a folder, GPU or
     * script removed since the mail is refused naming it before anything starts */
    qwd_json_pool_bind(q->r->pool, request);
    if ((e = qwd_create_args_from_json(q, request, &args))
        || (e = qwd_session_create(q, store, &args, &row))) {
        return qwd_fail(q, e);
    }
    qwd_identity_cookie_set(q, q->user);
    return qwd_page_redirect(q, "/sessions");
}

int qwd_otp_page_create(qwd_req_t *q)
{
    qwd_store_t *store;
    const char *request;
    qwd_error_t *e;
    if ((e = qwd_page_read_form(q))) {
        return qwd_fail(q, e);
    }
    if (qwd_field(q, "otp_ref")) {
        return finish(q, KIND_MFA, qwd_field(q, "otp_ref"), qwd_field(q, "code"));
    }
    if ((e = request_of_form(q, &request)) || (e = qwd_store_open(q, &store))) {
        return qwd_fail(q, e);
    }
    if (qwd_cfg_auth_mode(q->cfg) == QWD_AUTH_EMAIL) {
        return start_email(q, store, request);
    }
    return start_mfa(q, store, request);
}

/* The token of ?token=T. */
static const char *token_of_query(qwd_req_t *q)
{
    char *args = apr_pstrdup(q->r->pool, q->r->args ? q->r->args : ""), *last, *pair;
    for (pair = apr_strtok(args, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        if (!strncmp(pair, "token=", 6)) {
            return pair + 6;
        }
    }
    return NULL;
}

int qwd_otp_page_login(qwd_req_t *q)
{
    request_rec *r = q->r;
    qwd_error_t *e;
    if (qwd_cfg_auth_mode(q->cfg) != QWD_AUTH_EMAIL) {
        return qwd_fail(
            q, qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(02408), "not_found", "There is no such page."));
    }
    if (r->method_number == M_POST) {
        if ((e = qwd_page_read_form(q))) {
            return qwd_fail(q, e);
        }
        return finish(q, KIND_EMAIL, qwd_field(q, "token"), "");
    }
    qwd_html_begin(q, "Start your machine");
    ap_rprintf(r, "<form method=\"post\" action=\"%s\" class=\"qwd-form\">",
               qwd_h(q, qwd_route_url(q, "/login")));
    qwd_html_csrf_field(q);
    ap_rprintf(r,
               "<input type=\"hidden\" name=\"token\" value=\"%s\">"
               "<p>Start the machine you asked for? The link works once.</p>"
               "<button type=\"submit\">Start</button></form>\n",
               qwd_h(q, token_of_query(q)));
    qwd_html_end(q);
    return OK;
}
