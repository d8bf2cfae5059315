/* SPDX-License-Identifier: Apache-2.0 */
/* GET/POST /monitor, for QwdAdmin users: the host's load and memory (helper "load"), every
 * session with its owner and who is watching it, stop one, stop all. */
#include "qwd_pages.h"
#include "qwd_auth.h"
#include "qwd_body.h"
#include "qwd_helper_client.h"
#include "qwd_html.h"
#include "qwd_protocol.h"
#include "qwd_session.h"
#include "qwd_table.h"
#include "qwd_warm.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

static qwd_error_t *require_admin(qwd_req_t *q)
{
    if (!qwd_auth_page_identity(q)) {
        return qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(00901), "unauthorized",
                       "Please log in under My sessions first.");
    }
    if (!q->is_admin) {
        return qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(00902), "forbidden",
                       "The monitor is for administrators only.");
    }
    return NULL;
}

static void load_summary(qwd_req_t *q, json_t *load)
{
#define NUM(key) json_number_value(json_object_get(load, key))
#define VIEWERS(kind) json_number_value(json_object_get(json_object_get(load, "viewers"), kind))
    ap_rprintf(q->r,
               "<dl class=\"qwd-load\" id=\"load\"><dt>Load (1/5/15 min)</dt><dd>%.2f / %.2f / "
               "%.2f on %.0f CPUs</dd><dt>Memory</dt><dd>%.0f MiB available of %.0f "
               "MiB</dd><dt>Sessions</dt><dd>%.0f (max %.0f), %.0f vCPUs, %.0f MiB</dd>"
               "<dt>Viewers</dt><dd id=\"viewers\">%.0f with the owner's link, %.0f through "
               "control shares, %.0f through view shares</dd></dl>",
               NUM("load1"), NUM("load5"), NUM("load15"), NUM("cpus"), NUM("mem_available_mib"),
               NUM("mem_total_mib"), NUM("sessions"), NUM("max_sessions"), NUM("vcpus"),
               NUM("memory_mib"), VIEWERS(QWD_VIEWER_OWNER), VIEWERS(QWD_VIEWER_CONTROL),
               VIEWERS(QWD_VIEWER_VIEW));
#undef VIEWERS
#undef NUM
}

/* "3.2 MB", "87 MB": sizes of warm images (decimal units, like du -h --si). */
static const char *size_text(qwd_req_t *q, double bytes)
{
    if (bytes >= 1e9) {
        return apr_psprintf(q->r->pool, "%.1f GB", bytes / 1e9);
    }
    if (bytes >= 1e6) {
        return apr_psprintf(q->r->pool, "%.0f MB", bytes / 1e6);
    }
    return apr_psprintf(q->r->pool, "%.0f kB", bytes / 1e3);
}

static const char *age_text(qwd_req_t *q, apr_int64_t seconds)
{
    if (seconds < 120) {
        return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT " s", seconds);
    }
    if (seconds < 2 * 3600) {
        return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT " min", seconds / 60);
    }
    if (seconds < 2 * 86400) {
        return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT " h", seconds / 3600);
    }
    return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT " days", seconds / 86400);
}

/* The helper's warm images (warm_list): what starts instantly, and what it costs on disk. */
static void warm_images(qwd_req_t *q, json_t *list)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    json_t *image;
    size_t i;
    ap_rputs("<h2>Warm images</h2>", q->r);
    if (!json_array_size(list)) {
        ap_rputs("<p id=\"warm-none\">No warm images: every machine boots cold.</p>", q->r);
        return;
    }
    ap_rputs("<table class=\"qwd-table\" id=\"warm\"><thead><tr><th>Profile</th><th>State</th>"
             "<th>Size on disk</th><th>Age</th></tr></thead><tbody>",
             q->r);
    json_array_foreach (list, i, image) {
        json_t *size = json_object_get(image, "size_bytes");
        json_t *created = json_object_get(image, "created");
        const char *state = json_string_value(json_object_get(image, "state"));
        ap_rprintf(q->r,
                   "<tr data-key=\"%s\"><td>%s, %d CPU, %d MiB, %s</td><td>%s</td><td>%s"
                   "</td><td>%s</td></tr>",
                   qwd_h(q, json_string_value(json_object_get(image, "key"))),
                   qwd_h(q, json_string_value(json_object_get(image, "machine"))),
                   (int)json_integer_value(json_object_get(image, "cpu")),
                   (int)json_integer_value(json_object_get(image, "memory_mib")),
                   qwd_h(q, json_string_value(json_object_get(image, "video"))),
                   qwd_h(q, state ? state : "?"),
                   json_is_integer(size) ? size_text(q, (double)json_integer_value(size)) : "-",
                   json_is_integer(created)
                       ? age_text(q, now - (apr_int64_t)json_integer_value(created))
                       : "-");
    }
    ap_rputs("</tbody></table>", q->r);
}

int qwd_page_monitor(qwd_req_t *q)
{
    request_rec *r = q->r;
    apr_array_header_t *rows;
    qwd_store_t *store;
    json_t *load = NULL, *warm = NULL;
    qwd_error_t *e;
    int helper_down;

    if ((e = require_admin(q)) || (e = qwd_store_open(q, &store))
        || (e = qwd_session_list(q, store, NULL, &rows, &helper_down))) {
        return qwd_fail(q, e);
    }
    if (!helper_down && (e = qwd_helper_call(q, QWD_OP_LOAD, NULL, &load))) {
        load = NULL;
    }
    if (!helper_down && qwd_helper_call(q, QWD_OP_WARM_LIST, NULL, &warm)) {
        warm = NULL; /* an older helper without warm images: leave the section out */
    }
    qwd_html_begin(q, "Monitor");
    if (helper_down) {
        qwd_table_helper_down(q);
    }
    if (load) {
        load_summary(q, load);
    }
    qwd_table_sessions(q, rows, 1, "/monitor", NULL);
    if (warm) {
        warm_images(q, json_object_get(warm, "warm"));
    }
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
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, q->r,
                  QWDLOGNO(00904) "admin %s stopped all %d sessions", q->user, stopped);
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
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00903), "bad_field", "Unknown action.");
        e->field = "action";
    }
    return e ? qwd_fail(q, e) : qwd_page_redirect(q, "/monitor");
}
