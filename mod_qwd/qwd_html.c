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

const char *qwd_html_time(qwd_req_t *q, apr_int64_t unix_seconds)
{
    char text[64];
    apr_size_t len;
    apr_time_exp_t exploded;
    apr_time_exp_gmt(&exploded, apr_time_from_sec(unix_seconds));
    apr_strftime(text, &len, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &exploded);
    return apr_pstrdup(q->r->pool, text);
}

void qwd_html_begin(qwd_req_t *q, const char *title)
{
    request_rec *r = q->r;
    ap_set_content_type(r, "text/html; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->headers_out, "X-Frame-Options", "DENY");
    /* inline SVG and our stylesheet only; no script runs on these pages */
    apr_table_setn(r->headers_out, "Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                   "script-src 'none'; frame-ancestors 'none'");
    ap_rprintf(r, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<title>%s - virtual desktops</title>",
               qwd_h(q, title));
    if (q->cfg->stylesheet) {
        ap_rprintf(r, "<link rel=\"stylesheet\" href=\"%s\">", qwd_h(q, q->cfg->stylesheet));
    }
    ap_rprintf(r, "</head>\n<body class=\"qwd\"><header><nav><a href=\"%s/\">New machine</a> "
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
