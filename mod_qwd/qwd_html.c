/* SPDX-License-Identifier: Apache-2.0 */
/* The page frame and escaping helpers. Pages are small and built here rather than from
 * templates: every dynamic value passes through qwd_h() (ap_escape_html2 with quotes). */
#include "qwd_html.h"
#include "qwd_secret.h"

#include <apr_strings.h>
#include <http_protocol.h>
#include <util_time.h>

const char *qwd_h(qwd_req_t *q, const char *text)
{
    return text ? ap_escape_html2(q->r->pool, text, 1) : "";
}

const char *qwd_route_url(qwd_req_t *q, const char *route)
{
    return apr_pstrcat(q->r->pool, q->base, route, NULL);
}

void qwd_html_csrf_field(qwd_req_t *q)
{
    ap_rprintf(q->r, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
               qwd_h(q, qwd_csrf_token(q)));
}

const char *qwd_html_inline_form(qwd_req_t *q, const char *route)
{
    return apr_pstrcat(q->r->pool, "<form method=\"post\" action=\"",
                       qwd_h(q, qwd_route_url(q, route)),
                       "\" class=\"qwd-inline\"><input type=\"hidden\" name=\"csrf\" value=\"",
                       qwd_h(q, qwd_csrf_token(q)), "\">", NULL);
}

const char *qwd_html_time(qwd_req_t *q, apr_int64_t unix_seconds)
{
    char text[64];
    apr_size_t len;
    apr_time_exp_t exploded;
    apr_time_exp_gmt(&exploded, apr_time_from_sec(unix_seconds));
    apr_strftime(text, &len, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &exploded);
    return apr_pstrdup(q->r->pool, text);
}

#define SCRIPT_NOTE "qwd-script"

const char *qwd_html_static_url(qwd_req_t *q, const char *name)
{
    const char *dir = q->cfg->static_url, *slash;
    if (!dir && q->cfg->stylesheet && (slash = strrchr(q->cfg->stylesheet, '/'))) {
        dir = apr_pstrmemdup(q->r->pool, q->cfg->stylesheet, slash - q->cfg->stylesheet + 1);
    }
    if (!dir) {
        return NULL;
    }
    return apr_pstrcat(q->r->pool, dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name, NULL);
}

void qwd_html_use_script(qwd_req_t *q, const char *name)
{
    const char *url = qwd_html_static_url(q, name);
    if (url) {
        apr_table_setn(q->r->notes, SCRIPT_NOTE, url);
    }
}

void qwd_html_begin(qwd_req_t *q, const char *title)
{
    request_rec *r = q->r;
    const char *script = apr_table_get(r->notes, SCRIPT_NOTE);
    const char *stylesheet =
        q->cfg->stylesheet ? q->cfg->stylesheet : qwd_html_static_url(q, "qwd.css");
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    /* inline SVG, our stylesheet and at most our own script file; nothing inline runs */
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   script ? "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
                          : "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'none'; frame-ancestors 'none'");
    ap_rprintf(r,
               "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<title>%s - virtual desktops</title>",
               qwd_h(q, title));
    if (stylesheet) {
        ap_rprintf(r, "<link rel=\"stylesheet\" href=\"%s\">", qwd_h(q, stylesheet));
    }
    if (script) {
        ap_rprintf(r, "<script src=\"%s\" defer></script>", qwd_h(q, script));
    }
    ap_rprintf(r,
               "</head>\n<body class=\"qwd\"><header><nav><a href=\"%s/\">New machine</a> "
               "<a href=\"%s\">My sessions</a>",
               qwd_h(q, qwd_route_url(q, "")), qwd_h(q, qwd_route_url(q, "/sessions")));
    if (q->is_admin) {
        ap_rprintf(r, " <a href=\"%s\">Monitor</a>", qwd_h(q, qwd_route_url(q, "/monitor")));
    }
    if (q->user) {
        ap_rprintf(r, " <span class=\"qwd-user\">%s</span>", qwd_h(q, q->user));
    }
    ap_rprintf(r, "</nav></header>\n<main><h1>%s</h1>\n", qwd_h(q, title));
}

void qwd_html_end(qwd_req_t *q)
{
    ap_rputs("</main></body></html>\n", q->r);
}
