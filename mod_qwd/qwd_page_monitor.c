/* GET/POST /monitor, for QwdAdmin users: the host's load and memory (helper "load"), every
 * session with its owner, stop one, stop all. */
#include "qwd_pages.h"
#include "qwd_auth.h"
#include "qwd_body.h"
#include "qwd_helper_client.h"
#include "qwd_html.h"
#include "qwd_protocol.h"
#include "qwd_session.h"
#include "qwd_table.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

static qwd_error_t *require_admin(qwd_req_t *q)
{
    if (!qwd_auth_page_identity(q)) {
        return qwd_err(q, HTTP_FORBIDDEN, 901, "unauthorized",
                       "Please log in under My sessions first.");
    }
    if (!q->is_admin) {
        return qwd_err(q, HTTP_FORBIDDEN, 902, "forbidden",
                       "The monitor is for administrators only.");
    }
    return NULL;
}

static void load_summary(qwd_req_t *q, json_t *load)
{
#define NUM(key) json_number_value(json_object_get(load, key))
    ap_rprintf(q->r, "<dl class=\"qwd-load\" id=\"load\"><dt>Load (1/5/15 min)</dt><dd>%.2f / %.2f / "
                     "%.2f on %.0f CPUs</dd><dt>Memory</dt><dd>%.0f MiB available of %.0f "
                     "MiB</dd><dt>Sessions</dt><dd>%.0f (max %.0f), %.0f vCPUs, %.0f MiB</dd></dl>",
               NUM("load1"), NUM("load5"), NUM("load15"), NUM("cpus"), NUM("mem_available_mib"),
               NUM("mem_total_mib"), NUM("sessions"), NUM("max_sessions"), NUM("vcpus"),
               NUM("memory_mib"));
#undef NUM
}

int qwd_page_monitor(qwd_req_t *q)
{
    request_rec *r = q->r;
    apr_array_header_t *rows;
    qwd_store_t *store;
    json_t *load = NULL;
    qwd_error_t *e;
    int helper_down;

    if ((e = require_admin(q)) || (e = qwd_store_open(q, &store))
        || (e = qwd_session_list(q, store, NULL, &rows, &helper_down))) {
        return qwd_fail(q, e);
    }
    if (!helper_down && (e = qwd_helper_call(q, QWD_OP_LOAD, NULL, &load))) {
        load = NULL;
    }
    qwd_html_begin(q, "Monitor");
    if (helper_down) {
        qwd_table_helper_down(q);
    }
    if (load) {
        load_summary(q, load);
    }
    qwd_table_sessions(q, rows, 1, "/monitor");
    ap_rprintf(r, "<form method=\"post\" action=\"%s\" class=\"qwd-inline\">",
               qwd_h(q, qwd_route_url(q, "/monitor")));
    qwd_html_csrf_field(q);
    ap_rputs("<input type=\"hidden\" name=\"action\" value=\"stop_all\"><button type=\"submit\" "
             "class=\"qwd-danger\">Stop all sessions</button></form>",
             r);
    qwd_html_end(q);
    return OK;
}

static qwd_error_t *stop_all(qwd_req_t *q)
{
    apr_array_header_t *rows;
    qwd_store_t *store;
    qwd_error_t *e;
    int helper_down, i, stopped = 0;
    if ((e = qwd_store_open(q, &store))
        || (e = qwd_session_list(q, store, NULL, &rows, &helper_down))) {
        return e;
    }
    for (i = 0; i < rows->nelts; i++) {
        qwd_row_t *row = APR_ARRAY_IDX(rows, i, qwd_row_t *);
        if (qwd_session_is_live(row) && row->helper_id) {
            if ((e = qwd_session_stop(q, store, row))) {
                return e;
            }
            stopped++;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, q->r, "admin %s stopped all %d sessions", q->user,
                  stopped);
    return NULL;
}

int qwd_page_monitor_post(qwd_req_t *q)
{
    const char *action;
    qwd_error_t *e;
    if ((e = qwd_page_read_form(q)) || (e = require_admin(q))) {
        return qwd_fail(q, e);
    }
    action = qwd_field(q, "action");
    if (action && !strcmp(action, "stop")) {
        e = qwd_table_stop(q, qwd_field(q, "id"));
    }
    else if (action && !strcmp(action, "stop_all")) {
        e = stop_all(q);
    }
    else {
        e = qwd_err(q, HTTP_BAD_REQUEST, 903, "bad_field", "Unknown action.");
        e->field = "action";
    }
    return e ? qwd_fail(q, e) : qwd_page_redirect(q, "/monitor");
}
