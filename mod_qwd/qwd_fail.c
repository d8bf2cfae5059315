/* SPDX-License-Identifier: Apache-2.0 */
/* The one function that maps a failure to HTTP status, log line and answer: an HTML error page
 * for the pages, {"error": CODE, "message": ...} for the API. */
#include "qwd_request.h"
#include "qwd_html.h"
#include "qwd_logno.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

APLOG_USE_MODULE(qwd);

/* When a client may try again after a 503 (the helper or a mail server away): seconds. */
#define RETRY_AFTER_UNAVAILABLE_S "10"

static const char *title_of(int status)
{
    switch (status) {
    case HTTP_BAD_REQUEST: return "Bad request";
    case HTTP_UNAUTHORIZED: return "Not authenticated";
    case HTTP_FORBIDDEN: return "Forbidden";
    case HTTP_NOT_FOUND: return "Not found";
    case HTTP_METHOD_NOT_ALLOWED: return "Method not allowed";
    case HTTP_REQUEST_ENTITY_TOO_LARGE: return "Request too large";
    case HTTP_TOO_MANY_REQUESTS: return "Limit reached";
    case HTTP_SERVICE_UNAVAILABLE: return "Service unavailable";
    default: return status >= 500 ? "Server error" : "Error";
    }
}

/* The URI for the log line: a session link (/s/LINK) is the desktop itself and never goes
 * into a log. */
static const char *logged_uri(qwd_req_t *q)
{
    if (q->route && !strncmp(q->route, "/s/", 3)) {
        return apr_pstrcat(q->r->pool, q->base ? q->base : "", "/s/(link)", NULL);
    }
    return q->r->uri;
}

int qwd_fail(qwd_req_t *q, qwd_error_t *e)
{
    request_rec *r = q->r;
    ap_log_rerror(APLOG_MARK, e->level, e->rv, r, "%s%s %s (user %s)%s%s%s%s: %s%s%s", e->logno,
                  r->method, logged_uri(q), q->user ? q->user : "-", e->field ? " field " : "",
                  e->field ? e->field : "", e->limit ? " limit " : "", e->limit ? e->limit : "",
                  e->message, e->detail ? " - " : "", e->detail ? e->detail : "");
    r->status = e->status;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (e->status == HTTP_UNAUTHORIZED && q->api) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Basic realm=\"qwd\"");
    }
    if (e->status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After", RETRY_AFTER_UNAVAILABLE_S);
    }
    if (q->api) {
        json_t *body = json_pack("{s:s, s:s}", "error", e->code, "message", e->message);
        char *text;
        if (e->field) {
            json_object_set_new(body, "field", json_string(e->field));
        }
        if (e->limit) {
            json_object_set_new(body, "limit", json_string(e->limit));
        }
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        ap_set_content_type(r, "application/json");
        ap_rprintf(r, "%s\n", text ? text : "{}");
        free(text);
        return OK;
    }
    qwd_html_begin(q, title_of(e->status));
    ap_rprintf(r, "<p class=\"qwd-error\">%s</p>\n", ap_escape_html2(r->pool, e->message, 1));
    ap_rprintf(r, "<p><a href=\"%s/\">Back to the form</a></p>\n", qwd_h(q, qwd_route_url(q, "")));
    qwd_html_end(q);
    return OK;
}
