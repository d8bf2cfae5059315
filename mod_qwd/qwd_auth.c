/* SPDX-License-Identifier: Apache-2.0 */
/* Authentication, modelled on mod_auth_form: the configured authn providers are tried in order
 * (default: file); the first answer other than "user not found" decides. A provider failure is
 * a server error (503), never reported as a wrong password. */
#include "qwd_auth.h"
#include "qwd_audit.h"
#include "qwd_counters.h"
#include "qwd_secret.h"
#include "qwd_store.h"
#include "qwd_throttle.h"

#include <ap_provider.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

static void set_user(qwd_req_t *q, const char *user)
{
    q->user = user;
    q->is_admin = qwd_cfg_is_admin(q->cfg, user);
    /* the access log and other modules see who it was */
    q->r->user = apr_pstrdup(q->r->pool, user);
}

static qwd_error_t *check_user_name(qwd_req_t *q, const char *user)
{
    const unsigned char *c;
    qwd_error_t *e;
    if (!user || !*user) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00301), "bad_field", "Please give a user name.");
        e->field = "user";
        return e;
    }
    for (c = (const unsigned char *)user; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            break;
        }
    }
    if (*c || strlen(user) > QWD_MAX_USER_LEN) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00302), "bad_field",
                    "The user name must be 1 to %d printable characters.", QWD_MAX_USER_LEN);
        e->field = "user";
        return e;
    }
    return NULL;
}

static qwd_error_t *check_password(qwd_req_t *q, const char *user, const char *password)
{
    request_rec *r = q->r;
    apr_array_header_t *providers = q->cfg->providers;
    qwd_provider_t fallback;
    authn_status result = AUTH_USER_NOT_FOUND;
    const char *decided_by = NULL;
    qwd_store_t *store;
    qwd_error_t *e;
    int i, count;

    /* brute force: a user or address with too many recent failures is not even checked */
    if ((e = qwd_store_open(q, &store))) {
        return e;
    }
    if ((e = qwd_throttle_check(q, store, user))) {
        qwd_counter_inc(QWD_COUNTER_AUTH_THROTTLED);
        qwd_audit_record(q, store, QWD_AUDIT_LOGIN_REFUSED, NULL, NULL, user, QWD_AUDIT_BY_USER,
                         "throttled (QwdLoginThrottle)");
        return e;
    }

    if (!providers) {
        /* as mod_auth_basic: no QwdAuthProvider means the file provider */
        fallback.name = AUTHN_DEFAULT_PROVIDER;
        fallback.provider =
            ap_lookup_provider(AUTHN_PROVIDER_GROUP, fallback.name, AUTHN_PROVIDER_VERSION);
        if (!fallback.provider) {
            e = qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, QWDLOGNO(00303), "internal",
                        "Authentication is not configured.");
            e->detail = "QwdAuth form needs QwdAuthProvider or mod_authn_file";
            return e;
        }
    }
    count = providers ? providers->nelts : 1;
    for (i = 0; i < count; i++) {
        const qwd_provider_t *entry =
            providers ? &APR_ARRAY_IDX(providers, i, qwd_provider_t) : &fallback;
        apr_table_setn(r->notes, AUTHN_PROVIDER_NAME_NOTE, entry->name);
        result = entry->provider->check_password(r, user, password ? password : "");
        apr_table_unset(r->notes, AUTHN_PROVIDER_NAME_NOTE);
        decided_by = entry->name;
        if (result != AUTH_USER_NOT_FOUND) {
            break;
        }
    }
    if (result == AUTH_GRANTED && !qwd_auth_needs_mail(q->cfg)) {
        /* with a mailed second factor, only the code clears the count (qwd_otp.c) */
        qwd_throttle_succeeded(q, store, user);
    }
    else if (result != AUTH_GENERAL_ERROR) {
        qwd_throttle_failed(q, store, user);
    }
    switch (result) {
    case AUTH_GRANTED:
        if (!q->api && !qwd_auth_needs_mail(q->cfg)) {
            /* a page login; the API's Basic requests each authenticate and are no logins */
            qwd_counter_inc(QWD_COUNTER_LOGINS);
            qwd_audit_record(q, store, QWD_AUDIT_LOGIN, NULL, NULL, user, QWD_AUDIT_BY_USER,
                             apr_psprintf(r->pool, "password (%s)", decided_by));
        }
        return NULL;
    case AUTH_GENERAL_ERROR:
        qwd_counter_inc(QWD_COUNTER_AUTH_UNAVAILABLE);
        e = qwd_err(q, HTTP_SERVICE_UNAVAILABLE, QWDLOGNO(00304), "auth_unavailable",
                    "Authentication is unavailable right now; please try again later.");
        e->detail = apr_psprintf(r->pool, "authn provider %s failed for user %s", decided_by, user);
        return e;
    default:
        qwd_counter_inc(QWD_COUNTER_AUTH_DENIED);
        qwd_audit_record(q, store, QWD_AUDIT_LOGIN_REFUSED, NULL, NULL, user, QWD_AUDIT_BY_USER,
                         "wrong user name or password");
        /* one message for unknown user and wrong password alike */
        e = qwd_err(q, q->api ? HTTP_UNAUTHORIZED : HTTP_FORBIDDEN, QWDLOGNO(00305), "unauthorized",
                    "Wrong user name or password.");
        e->detail = apr_psprintf(r->pool, "user %s: %s (provider %s)", user,
                                 result == AUTH_USER_NOT_FOUND ? "not found" : "wrong password",
                                 decided_by);
        return e;
    }
}

qwd_error_t *qwd_auth_first_factor(qwd_req_t *q, const char *user, const char *password)
{
    qwd_error_t *e;
    if ((e = check_user_name(q, user)) || (e = check_password(q, user, password))) {
        return e;
    }
    set_user(q, user);
    return NULL;
}

void qwd_auth_set_user(qwd_req_t *q, const char *user)
{
    set_user(q, user);
}

int qwd_auth_needs_mail(const qwd_dir_config_t *cfg)
{
    int mode = qwd_cfg_auth_mode(cfg);
    return mode == QWD_AUTH_EMAIL || (mode == QWD_AUTH_FORM && qwd_cfg_mfa(cfg) == QWD_MFA_EMAIL);
}

qwd_error_t *qwd_auth_login(qwd_req_t *q, const char *user, const char *password)
{
    qwd_error_t *e;
    int mode = qwd_cfg_auth_mode(q->cfg);
    if (qwd_auth_needs_mail(q->cfg)) {
        /* a password alone (or a bare address) is not enough here: only the mailed code or
         * link logs in (qwd_otp.c), so the API's Basic and the pages' small login refuse */
        e = qwd_err(q, q->api ? HTTP_UNAUTHORIZED : HTTP_FORBIDDEN, QWDLOGNO(02401),
                    "second_factor",
                    "This service sends you a code by mail: please start from the form.");
        e->level = APLOG_INFO;
        return e;
    }
    if (mode == QWD_AUTH_APACHE) {
        if (!q->r->user || !*q->r->user) {
            e = qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(00306), "unauthorized",
                        "This service needs you to log in first.");
            e->detail = "QwdAuth apache, but no Apache authentication set r->user here";
            return e;
        }
        set_user(q, q->r->user);
        return NULL;
    }
    if ((e = check_user_name(q, user))) {
        return e;
    }
    if (mode == QWD_AUTH_FORM && (e = check_password(q, user, password))) {
        return e;
    }
    if (mode == QWD_AUTH_NONE && !q->api) {
        qwd_store_t *store;
        qwd_counter_inc(QWD_COUNTER_LOGINS);
        if (!qwd_store_open(q, &store)) {
            qwd_audit_record(q, store, QWD_AUDIT_LOGIN, NULL, NULL, user, QWD_AUDIT_BY_USER,
                             "name only (QwdAuth none)");
        }
    }
    set_user(q, user);
    return NULL;
}

qwd_error_t *qwd_auth_api(qwd_req_t *q)
{
    const char *user = NULL, *password = NULL;
    qwd_error_t *e;
    if (qwd_cfg_auth_mode(q->cfg) == QWD_AUTH_APACHE) {
        return qwd_auth_login(q, NULL, NULL);
    }
    if (ap_get_basic_auth_components(q->r, &user, &password) != APR_SUCCESS) {
        e = qwd_err(q, HTTP_UNAUTHORIZED, QWDLOGNO(00307), "unauthorized",
                    "This API needs HTTP Basic credentials.");
        e->level = APLOG_INFO; /* a client's first, credential-less try is normal */
        return e;
    }
    e = qwd_auth_login(q, user, password);
    if (e && e->status == HTTP_BAD_REQUEST) {
        e->status = HTTP_UNAUTHORIZED;
    }
    return e;
}

int qwd_auth_page_identity(qwd_req_t *q)
{
    const char *user;
    if (qwd_cfg_auth_mode(q->cfg) == QWD_AUTH_APACHE) {
        user = q->r->user;
    }
    else {
        user = qwd_identity_cookie_user(q);
    }
    if (!user || !*user) {
        return 0;
    }
    set_user(q, user);
    return 1;
}
