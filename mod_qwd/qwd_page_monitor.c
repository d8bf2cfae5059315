/* SPDX-License-Identifier: Apache-2.0 */
/* GET/POST /monitor, for QwdAdmin users: the host's load and memory (helper "load"), every
 * session with its owner and who is watching it, stop one, stop all. */
#include "qwd_pages.h"
#include "qwd_audit.h"
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

/* The monitor's Extend button: this much more lifetime (less when QwdMaxLifetime leaves
 * less). */
#define EXTEND_STEP_S 3600
/* Audit entries the monitor shows. */
#define MONITOR_AUDIT_ROWS 50
#define SECONDS_PER_HOUR 3600
#define BYTES_PER_MIB (1024.0 * 1024.0)

/* "1:02:03" until the session's end. */
static const char *time_left(qwd_req_t *q, apr_int64_t expires)
{
    apr_int64_t left = expires - apr_time_sec(apr_time_now());
    if (left <= 0) {
        return "-";
    }
    return apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT ":%02d:%02d", left / SECONDS_PER_HOUR,
                        (int)(left / 60 % 60), (int)(left % 60));
}

/* The items of a helper answer's list by their "id". */
static apr_hash_t *by_id(qwd_req_t *q, json_t *list)
{
    apr_hash_t *items = apr_hash_make(q->r->pool);
    json_t *item;
    size_t i;
    json_array_foreach (list, i, item) {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (id) {
            apr_hash_set(items, id, APR_HASH_KEY_STRING, item);
        }
    }
    return items;
}

static const char *mib_text(qwd_req_t *q, json_t *bytes)
{
    return json_is_number(bytes)
               ? apr_psprintf(q->r->pool, "%.0f MiB", json_number_value(bytes) / BYTES_PER_MIB)
               : "-";
}

/* The running sessions: where each runs (what the listing's reconcile learnt from the
 * helper), how long it has left, what it uses (helper usage: a reading up to the helper's
 * usage_max_age old), and an Extend button while QwdMaxLifetime leaves room. */
static void resources(qwd_req_t *q, apr_array_header_t *rows, json_t *usage)
{
    request_rec *r = q->r;
    apr_hash_t *usage_by_id = by_id(q, usage);
    const char *extend_form = qwd_html_inline_form(q, "/monitor");
    char host[256] = "";
    int shown = 0;
    apr_gethostname(host, sizeof host - 1, r->pool);
    ap_rputs("<h2>Running sessions</h2><table class=\"qwd-table\" id=\"resources\"><thead><tr>"
             "<th>Session</th><th>User</th><th>Machine</th><th>Where</th><th>Left</th>"
             "<th>CPU</th><th>Memory (PSS)</th><th>Disk</th><th></th></tr></thead><tbody>",
             r);
    for (int i = 0; i < rows->nelts; i++) {
        qwd_row_t *row = APR_ARRAY_IDX(rows, i, qwd_row_t *);
        json_t *used, *cpu;
        int room = qwd_session_extend_room(q, row);
        /* after the reconcile, a live row with a helper id is one of the helper's sessions */
        if (!row->helper_id || !qwd_session_is_live(row)) {
            continue;
        }
        used = apr_hash_get(usage_by_id, row->helper_id, APR_HASH_KEY_STRING);
        cpu = json_object_get(used, "cpu_percent");
        shown++;
        ap_rprintf(
            r,
            "<tr id=\"r-%s\"><td>%.8s</td><td>%s</td><td>%s</td><td>%s/%s</td>"
            "<td class=\"qwd-left\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>",
            qwd_h(q, row->id), qwd_h(q, row->id), qwd_h(q, row->owner), qwd_h(q, row->machine),
            qwd_h(q, row->backend ? row->backend : QWD_BACKEND_LOCAL),
            qwd_h(q, row->node ? row->node : host), qwd_h(q, time_left(q, row->expires)),
            json_is_number(cpu) ? apr_psprintf(r->pool, "%.1f %%", json_number_value(cpu)) : "-",
            mib_text(q, json_object_get(used, "pss_bytes")),
            mib_text(q, json_object_get(used, "disk_bytes")));
        if (room > 0) {
            int step = room < EXTEND_STEP_S ? room : EXTEND_STEP_S;
            ap_rputs(extend_form, r);
            ap_rprintf(r,
                       "<input type=\"hidden\" name=\"action\" value=\"extend\"><input "
                       "type=\"hidden\" name=\"id\" value=\"%s\"><input type=\"hidden\" "
                       "name=\"seconds\" value=\"%d\"><button type=\"submit\">Extend %d min"
                       "</button></form>",
                       qwd_h(q, row->id), step, (step + 59) / 60);
        }
        ap_rputs("</td></tr>", r);
    }
    ap_rputs("</tbody></table>", r);
    if (!shown) {
        ap_rputs("<p class=\"qwd-empty\">No running sessions.</p>", r);
    }
}

/* The audit trail's newest entries, filtered by ?audit_user= and ?audit_hours=. */
static void audit_trail(qwd_req_t *q, qwd_store_t *store)
{
    request_rec *r = q->r;
    const char *user = NULL, *hours_text = NULL;
    char *args = apr_pstrdup(r->pool, r->args ? r->args : ""), *pair, *state;
    apr_array_header_t *entries;
    for (pair = apr_strtok(args, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        char *value = strchr(pair, '=');
        if (!value || ap_unescape_urlencoded(++value) != OK || !*value) {
            continue;
        }
        if (!strncmp(pair, "audit_user=", 11)) {
            user = value;
        }
        else if (!strncmp(pair, "audit_hours=", 12)) {
            hours_text = value;
        }
    }
    apr_int64_t hours = hours_text ? apr_atoi64(hours_text) : 0;
    apr_int64_t since = hours > 0 ? apr_time_sec(apr_time_now()) - hours * SECONDS_PER_HOUR : 0;
    /* the helper's journal was read by this page's listing a moment ago (qwd_session_list) */
    ap_rprintf(r,
               "<h2>Audit trail</h2><form method=\"get\" action=\"%s\" class=\"qwd-inline\" "
               "id=\"audit-filter\"><label>User <input name=\"audit_user\" value=\"%s\"></label> "
               "<label>Last hours <input name=\"audit_hours\" inputmode=\"numeric\" "
               "value=\"%s\"></label> <button type=\"submit\">Show</button></form>",
               qwd_h(q, qwd_route_url(q, "/monitor")), qwd_h(q, user), qwd_h(q, hours_text));
    if (qwd_audit_rows(q, store, user, NULL, since, (apr_int64_t)1 << 40, MONITOR_AUDIT_ROWS,
                       &entries)) {
        ap_rputs("<p class=\"qwd-error\">The audit trail could not be read.</p>", r);
        return;
    }
    ap_rputs("<table class=\"qwd-table\" id=\"audit\"><thead><tr><th>Time</th><th>Event</th>"
             "<th>Session</th><th>Owner</th><th>User</th><th>By</th><th>Address</th>"
             "<th>Detail</th></tr></thead><tbody>",
             r);
    for (int i = 0; i < entries->nelts; i++) {
        const char **entry = APR_ARRAY_IDX(entries, i, const char **);
        const char *event = qwd_h(q, entry[QWD_AUDIT_EVENT]);
        const char *time = entry[QWD_AUDIT_TIME];
        ap_rprintf(r,
                   "<tr class=\"qwd-audit-%s\"><td>%s</td><td>%s</td><td>%.8s</td><td>%s</td>"
                   "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
                   event, qwd_h(q, qwd_html_time(q, time ? apr_atoi64(time) : 0)), event,
                   qwd_h(q, entry[QWD_AUDIT_SESSION] ? entry[QWD_AUDIT_SESSION] : "-"),
                   qwd_h(q, entry[QWD_AUDIT_OWNER]), qwd_h(q, entry[QWD_AUDIT_USER]),
                   qwd_h(q, entry[QWD_AUDIT_BY]), qwd_h(q, entry[QWD_AUDIT_ADDRESS]),
                   qwd_h(q, entry[QWD_AUDIT_DETAIL]));
    }
    ap_rputs("</tbody></table>", r);
}

/* The part of the monitor op's answer named key, or (from a helper without it) op's answer,
 * or its member (list_key); NULL when the helper could not answer. */
static json_t *monitor_part(qwd_req_t *q, json_t *answer, const char *key, const char *op,
                            const char *list_key)
{
    json_t *part = json_object_get(answer, key);
    if (part) {
        return part;
    }
    if (qwd_helper_call(q, op, NULL, &part)) {
        return NULL;
    }
    return list_key ? json_object_get(part, list_key) : part;
}

int qwd_page_monitor(qwd_req_t *q)
{
    request_rec *r = q->r;
    apr_array_header_t *rows;
    qwd_store_t *store;
    json_t *answer, *load = NULL, *usage = NULL, *warm = NULL;
    qwd_error_t *e;
    int helper_down;

    /* one helper request: the sessions, their usage, the host's load, the warm images */
    if ((e = require_admin(q)) || (e = qwd_store_open(q, &store))
        || (e = qwd_session_list_monitor(q, store, &rows, &helper_down, &answer))) {
        return qwd_fail(q, e);
    }
    if (!helper_down) {
        load = monitor_part(q, answer, "load", QWD_OP_LOAD, NULL);
        /* without warm images (an older helper) the section is left out */
        warm = monitor_part(q, answer, "warm", QWD_OP_WARM_LIST, "warm");
        /* without it the running sessions are left out: the session table above says why */
        usage = monitor_part(q, answer, "usage", QWD_OP_USAGE, "sessions");
    }
    qwd_html_begin(q, "Monitor");
    if (helper_down) {
        qwd_table_helper_down(q);
    }
    if (load) {
        load_summary(q, load);
    }
    qwd_table_sessions(q, rows, 1, "/monitor", NULL);
    if (usage) {
        resources(q, rows, usage);
    }
    if (warm) {
        warm_images(q, warm);
    }
    audit_trail(q, store);
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

/* The Extend button: the session's end moves seconds later. */
static qwd_error_t *extend(qwd_req_t *q, const char *id, const char *seconds_text)
{
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;
    int seconds;
    if ((e = qwd_field_int(q, seconds_text, "seconds", QWD_UNSET, &seconds))
        || (e = qwd_store_open(q, &store)) || (e = qwd_session_find(q, store, id, &row))) {
        return e;
    }
    return qwd_session_extend(q, store, row, seconds);
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
    else if (action && !strcmp(action, "extend")) {
        e = extend(q, qwd_field(q, "id"), qwd_field(q, "seconds"));
    }
    else {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00903), "bad_field", "Unknown action.");
        e->field = "action";
    }
    return e ? qwd_fail(q, e) : qwd_page_redirect(q, "/monitor");
}
