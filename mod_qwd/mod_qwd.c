/* SPDX-License-Identifier: Apache-2.0 */
/* mod_qwd: launch virtual machines from a web form and use them in the browser via noVNC.
 * This file holds the module record, the hooks and the handler of `SetHandler qwd`, which
 * dispatches the routes of qwd_route.c. */
#include "qwd_api.h"
#include "qwd_config.h"
#include "qwd_helper_conns.h"
#include "qwd_auth.h"
#include "qwd_logno.h"
#include "qwd_mail.h"
#include "qwd_otp.h"
#include "qwd_pages.h"
#include "qwd_route.h"
#include "qwd_private.h"
#include "qwd_scrape.h"
#include "qwd_secret.h"
#include "qwd_store.h"
#include "qwd_viewer.h"
#include "qwd_ws_gate.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_core.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>

static int qwd_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int rc;
    /* the first of two post_config runs only checks the configuration */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    if ((rc = qwd_store_post_config(s)) != OK || (rc = qwd_mail_post_config(pconf, s)) != OK
        || (rc = qwd_private_post_config(ptemp, s)) != OK
        || (rc = qwd_metrics_post_config(pconf, s)) != OK) {
        return rc;
    }
    return qwd_secret_post_config(pconf, s);
}

/* Before mod_dbd's child_init opens connections: tables first (qwd_store_child_init). */
static const char *const dbd_module_name[] = {"mod_dbd.c", NULL};

static void qwd_child_init(apr_pool_t *pchild, server_rec *s)
{
    qwd_store_child_init(pchild, s);
    qwd_helper_conns_child_init(pchild);
    qwd_secret_child_init(pchild, s);
}

static int not_found(qwd_req_t *q)
{
    return qwd_fail(
        q, qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(01101), "not_found", "There is no such page."));
}

static int wrong_method(qwd_req_t *q, const char *allowed)
{
    apr_table_setn(q->r->err_headers_out, "Allow", allowed);
    return qwd_fail(q, qwd_err(q, HTTP_METHOD_NOT_ALLOWED, QWDLOGNO(01102), "method_not_allowed",
                               "Method %s is not allowed here.", q->r->method));
}

static int qwd_handler(request_rec *r)
{
    qwd_req_t *q;
    int is_get, is_post;

    /* r->proxyreq: a websocket Location below ours (QwdWebsocketGate) is mod_proxy's */
    if (!r->handler || strcmp(r->handler, "qwd") != 0 || r->proxyreq) {
        return DECLINED;
    }
    q = apr_pcalloc(r->pool, sizeof(*q));
    q->r = r;
    q->cfg = ap_get_module_config(r->per_dir_config, &qwd_module);
    if (!qwd_route_split(r->pool, r->uri, q->cfg->location, &q->base, &q->route)) {
        q->api = strstr(r->uri, QWD_ROUTE_API_PREFIX) != NULL; /* answer an API client in JSON */
        return not_found(q);
    }
    q->api = !strncmp(q->route, QWD_ROUTE_API_PREFIX, strlen(QWD_ROUTE_API_PREFIX));
    if (q->api) {
        return qwd_api_handle(q);
    }
    is_get = r->method_number == M_GET; /* HEAD too */
    is_post = r->method_number == M_POST;
    if (!strcmp(q->route, "") || !strcmp(q->route, "/")) {
        if (is_post && qwd_auth_needs_mail(q->cfg)) {
            return qwd_otp_page_create(q); /* QwdAuth email, QwdMFA email */
        }
        return is_get    ? qwd_page_form(q)
               : is_post ? qwd_page_create(q)
                         : wrong_method(q, "GET, POST");
    }
    if (!strcmp(q->route, "/login")) {
        return is_get || is_post ? qwd_otp_page_login(q) : wrong_method(q, "GET, POST");
    }
    if (!strcmp(q->route, "/sessions")) {
        return is_get    ? qwd_page_sessions(q)
               : is_post ? qwd_page_sessions_post(q)
                         : wrong_method(q, "GET, POST");
    }
    if (!strncmp(q->route, QWD_ROUTE_SHARE_PREFIX, strlen(QWD_ROUTE_SHARE_PREFIX))) {
        const char *id = q->route + strlen(QWD_ROUTE_SHARE_PREFIX);
        const char *slash = strchr(id, '/');
        if (slash) { /* /s/ID/ticket (qwd_route.c lets no other one through) */
            q->api = 1;
            return is_post ? qwd_viewer_ticket(q, apr_pstrmemdup(r->pool, id, slash - id))
                           : wrong_method(q, "POST");
        }
        return is_get ? qwd_viewer_open(q, id) : wrong_method(q, "GET");
    }
    if (!strcmp(q->route, "/monitor")) {
        return is_get    ? qwd_page_monitor(q)
               : is_post ? qwd_page_monitor_post(q)
                         : wrong_method(q, "GET, POST");
    }
    return not_found(q);
}

static void qwd_register_hooks(apr_pool_t *pool)
{
    ap_hook_post_config(qwd_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(qwd_handler, NULL, NULL, APR_HOOK_MIDDLE);
    qwd_ws_gate_register_hooks(pool);
    qwd_metrics_register_hooks(pool); /* SetHandler qwd-metrics, server-status */
    /* the authn providers "imap" and "smtp", for mod_qwd and every other module */
    qwd_authn_mail_register(pool);
    ap_hook_child_init(qwd_child_init, NULL, dbd_module_name, APR_HOOK_FIRST);
}

/* The module record, one member a line as httpd's modules write it. */
/* clang-format off */
AP_DECLARE_MODULE(qwd) = {
    STANDARD20_MODULE_STUFF,
    qwd_create_dir_config,
    qwd_merge_dir_config,
    qwd_create_server_config,
    qwd_merge_server_config,
    qwd_directives,
    qwd_register_hooks,
    AP_MODULE_FLAG_NONE,
};
/* clang-format on */
