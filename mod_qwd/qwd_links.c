/* Link building. noVNC 1.3 builds its websocket URL as ws[s]://host:port/path, so the viewer
 * link splits the websocket URL into those parameters (path carrying "?token=..."). */
#include "qwd_links.h"

#include <apr_strings.h>
#include <apr_uri.h>
#include <http_core.h>
#include <http_protocol.h>

static const char *websocket_base(qwd_req_t *q)
{
    const char *base = q->cfg->websocket_url;
    request_rec *r = q->r;
    if (!base) {
        return NULL;
    }
    if (base[0] == '/') {
        /* same host and port as this request; wss when the page came over https */
        const char *http_url = ap_construct_url(r->pool, base, r);
        return apr_pstrcat(r->pool, ap_http_scheme(r)[4] == 's' ? "wss" : "ws",
                           strchr(http_url, ':'), NULL);
    }
    return base;
}

const char *qwd_websocket_url(qwd_req_t *q, const char *token)
{
    const char *base = websocket_base(q);
    if (!base || !token) {
        return NULL;
    }
    return apr_pstrcat(q->r->pool, base, strchr(base, '?') ? "&" : "?", "token=",
                       ap_escape_urlencoded(q->r->pool, token), NULL);
}

const char *qwd_viewer_url(qwd_req_t *q, const char *token)
{
    request_rec *r = q->r;
    const char *viewer = q->cfg->viewer_url ? q->cfg->viewer_url : QWD_DEFAULT_VIEWER_URL;
    const char *ws = qwd_websocket_url(q, token);
    apr_uri_t uri;
    const char *path, *port;

    if (!ws || apr_uri_parse(r->pool, ws, &uri) != APR_SUCCESS || !uri.hostname) {
        return NULL;
    }
    if (viewer[0] == '/') {
        viewer = ap_construct_url(r->pool, viewer, r);
    }
    path = apr_pstrcat(r->pool, uri.path && uri.path[0] == '/' ? uri.path + 1 : "",
                       uri.query ? "?" : "", uri.query ? uri.query : "", NULL);
    port = uri.port_str ? uri.port_str : (!strcasecmp(uri.scheme, "wss") ? "443" : "80");
    return apr_psprintf(r->pool, "%s%shost=%s&port=%s&encrypt=%d&path=%s&autoconnect=1"
                                 "&resize=remote",
                        viewer, strchr(viewer, '?') ? "&" : "?",
                        ap_escape_urlencoded(r->pool, uri.hostname), port,
                        !strcasecmp(uri.scheme, "wss"), ap_escape_urlencoded(r->pool, path));
}
