/* SPDX-License-Identifier: Apache-2.0 */
/* mod_qwd: launch virtual machines from a web form and use them in the browser via noVNC.
 * This file holds the module record, the hooks and the routing of `SetHandler qwd`. */
#include "qwd_api.h"
#include "qwd_config.h"
#include "qwd_helper_conns.h"
#include "qwd_auth.h"
#include "qwd_logno.h"
#include "qwd_mail.h"
#include "qwd_otp.h"
#include "qwd_pages.h"
#include "qwd_private.h"
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
        || (rc = qwd_private_post_config(ptemp, s)) != OK) {
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
}

/* Whether route is one this module answers. */
static int known_route(const char *route)
{
    static const char *const exact[] = {
        "",       "/", "/sessions", "/monitor", "/api/machines", "/api/sessions", "/api/sessions/",
        "/login", NULL};
    int i;
    for (i = 0; exact[i]; i++) {
        if (!strcmp(route, exact[i])) {
            return 1;
        }
    }
    /* /s/ID: a session's shareable link (qwd_viewer.c) */
    if (!strncmp(route, "/s/", 3) && route[3] && !strchr(route + 3, '/')) {
        return 1;
    }
    /* /api/sessions/ID */
    return !strncmp(route, "/api/sessions/", 14) && !strchr(route + 14, '/');
}

/* The route by its known endings, when the Location's path is unknown. */
static const char *route_by_suffix(const char *uri)
{
    static const char *const endings[] = {"/api/machines", "/api/sessions/", "/api/sessions",
                                          "/sessions",     "/monitor",       NULL};
    apr_size_t len = strlen(uri);
    const char *api;
    int i;
    for (i = 0; endings[i]; i++) {
        apr_size_t end_len = strlen(endings[i]);
        if (len >= end_len && !strcmp(uri + len - end_len, endings[i])) {
            return uri + len - end_len;
        }
    }
    /* .../api/sessions/ID: the last "/api/sessions/" */
    for (api = strstr(uri, "/api/sessions/"); api; api = strstr(api + 1, "/api/sessions/")) {
        if (known_route(api)) {
            return api;
        }
    }
    /* .../s/ID: the last "/s/" */
    for (api = strstr(uri, "/s/"); api; api = strstr(api + 1, "/s/")) {
        if (known_route(api)) {
            return api;
        }
    }
    return NULL;
}

/* Splits r->uri into the Location's path and the route below it. The Location's path is
 * known from the directory config when a Qwd directive sits in that <Location> (Apache creates
 * a module's per-directory record only for sections that use one of its directives); else it
 * follows from the route's known endings. Returns 0 when no route matches. */
static int split_uri(request_rec *r, const qwd_dir_config_t *cfg, qwd_req_t *q)
{
    const char *uri = r->uri, *route = NULL;
    if (cfg->location && cfg->location[0] == '/') {
        apr_size_t len = strlen(cfg->location);
        if (cfg->location[len - 1] == '/') {
            len--;
        }
        if (!strncmp(uri, cfg->location, len) && known_route(uri + len)) {
            route = uri + len;
        }
    }
    if (!route) {
        route = route_by_suffix(uri);
    }
    if (!route && !cfg->location) {
        apr_size_t len = strlen(uri);
        route = uri + len - (len && uri[len - 1] == '/' ? 1 : 0);
    }
    if (!route) {
        q->base = "";
        q->route = uri;
        return 0;
    }
    q->base = apr_pstrmemdup(r->pool, uri, route - uri);
    q->route = route;
    return 1;
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
    if (!split_uri(r, q->cfg, q)) {
        q->api = strstr(r->uri, "/api/") != NULL; /* answer an API client in JSON */
        return not_found(q);
    }
    q->api = !strncmp(q->route, "/api/", 5);
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
    if (!strncmp(q->route, "/s/", 3)) {
        return is_get ? qwd_viewer_open(q, q->route + 3) : wrong_method(q, "GET");
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
    /* the authn providers "imap" and "smtp", for mod_qwd and every other module */
    qwd_authn_mail_register(pool);
    ap_hook_child_init(qwd_child_init, NULL, dbd_module_name, APR_HOOK_FIRST);
}

/* clang-format off: one member a line, as httpd's modules write it */
AP_DECLARE_MODULE(qwd) = {
    STANDARD20_MODULE_STUFF, qwd_create_dir_config, qwd_merge_dir_config, qwd_create_server_config,
    qwd_merge_server_config, qwd_directives,        qwd_register_hooks,   AP_MODULE_FLAG_NONE,
};
/* clang-format on */
