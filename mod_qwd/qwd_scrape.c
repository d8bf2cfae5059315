/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics handler and mod_status hook. A scrape reads the module's counters (shared by
 * every child) and asks the helper for its own (`metrics` op): counters that live in the helper
 * come from it, never from guesses here. It also reads the helper's journal into the audit
 * trail, so a monitored server's trail is as fresh as its scrapes. */
#include "qwd_scrape.h"
#include "qwd_audit.h"
#include "qwd_config.h"
#include "qwd_counters.h"
#include "qwd_helper_client.h"
#include "qwd_logno.h"
#include "qwd_metrics.h"
#include "qwd_protocol.h"
#include "qwd_store.h"

#include <apr_optional.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>

APLOG_USE_MODULE(qwd);

/* The QwdHelperSocket of the server's configuration or of its first section that names one:
 * a metrics or server-status Location need not repeat it. Found by the parent, inherited. */
static const char *server_helper_socket;

static const char *helper_socket_of(server_rec *s)
{
    for (; s; s = s->next) {
        qwd_dir_config_t *cfg = ap_get_module_config(s->lookup_defaults, &qwd_module);
        core_server_config *core = ap_get_core_module_config(s->module_config);
        if (cfg && cfg->helper_socket) {
            return cfg->helper_socket;
        }
        for (int i = 0; core && core->sec_url && i < core->sec_url->nelts; i++) {
            ap_conf_vector_t *section = APR_ARRAY_IDX(core->sec_url, i, ap_conf_vector_t *);
            cfg = ap_get_module_config(section, &qwd_module);
            if (cfg && cfg->helper_socket) {
                return cfg->helper_socket;
            }
        }
    }
    return NULL;
}

int qwd_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    const char *found = helper_socket_of(s);
    server_helper_socket = found ? apr_pstrdup(pconf, found) : NULL;
    return qwd_counters_post_config(s);
}

/* A request context for r whose helper socket is its section's, else the server's. */
static qwd_req_t *context(request_rec *r)
{
    qwd_req_t *q = apr_pcalloc(r->pool, sizeof(*q));
    qwd_dir_config_t *cfg = ap_get_module_config(r->per_dir_config, &qwd_module);
    q->r = r;
    q->cfg = apr_pmemdup(r->pool, cfg, sizeof(*cfg));
    if (!q->cfg->helper_socket) {
        q->cfg->helper_socket = server_helper_socket;
    }
    q->base = "";
    q->route = r->uri;
    q->api = 1;
    return q;
}

static json_t *gauge(const char *name, const char *help, double value)
{
    json_t *family = qwd_metrics_family(name, QWD_METRIC_GAUGE, help);
    qwd_metrics_add(family, value, NULL);
    return family;
}

/* Every family: the module's counters, qwd_helper_up, qwd_build_info, then the helper's.
 * Families the module and the helper both have (qwd_limit_refusals_total) are merged: one
 * HELP and TYPE each. */
static json_t *collect(qwd_req_t *q, int read_journal)
{
    json_t *families = qwd_counters_families(), *helper_metrics = NULL;
    qwd_error_t *e = qwd_helper_call(q, QWD_OP_METRICS, NULL, &helper_metrics);
    json_t *info =
        qwd_metrics_family("qwd_build_info", QWD_METRIC_GAUGE, "mod_qwd's version (always 1).");
    qwd_metrics_add(info, 1, "version", QWD_MODULE_VERSION, NULL);
    json_array_append_new(families, info);
    json_array_append_new(
        families, gauge("qwd_helper_up", "Whether qwd-helper answered this scrape.", e ? 0 : 1));
    if (!e) {
        qwd_metrics_merge(families, json_object_get(helper_metrics, "families"));
    }
    if (!e && read_journal) {
        qwd_store_t *store;
        if (!qwd_store_open(q, &store)) {
            qwd_audit_pull(q, store, NULL);
        }
    }
    return families;
}

static int metrics_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, QWD_METRICS_HANDLER)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->err_headers_out, "Allow", "GET, HEAD");
        return HTTP_METHOD_NOT_ALLOWED;
    }
    qwd_req_t *q = context(r);
    json_t *families = collect(q, 1);
    int json = r->args && strstr(r->args, "format=json") != NULL;
    char *text =
        json ? json_dumps(json_pack("{s:o}", "families", json_incref(families)), JSON_COMPACT)
             : NULL;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (json) {
        ap_set_content_type(r, "application/json");
        ap_rprintf(r, "%s\n", text ? text : "{}");
        free(text);
    }
    else {
        const char *body = qwd_metrics_text(r->pool, families);
        ap_set_content_type(r, QWD_METRICS_TEXT_TYPE);
        ap_rputs(body ? body : "", r);
    }
    json_decref(families);
    return OK;
}

/* One line per sample of families: a table for the HTML page, "name{labels}: value" lines for
 * ?auto. Histograms show their count and sum. */
static void status_lines(request_rec *r, json_t *families, int short_report)
{
    size_t i, j;
    json_t *family, *sample;
    json_array_foreach (families, i, family) {
        const char *name = json_string_value(json_object_get(family, "name"));
        json_array_foreach (json_object_get(family, "samples"), j, sample) {
            json_t *value = json_object_get(sample, "value");
            const char *labels = "";
            const char *key;
            json_t *label;
            json_object_foreach (json_object_get(sample, "labels"), key, label) {
                labels = apr_pstrcat(r->pool, labels, *labels ? "," : "", key, "=",
                                     json_string_value(label), NULL);
            }
            const char *shown =
                value ? apr_psprintf(r->pool, "%.15g", json_number_value(value))
                      : apr_psprintf(r->pool, "count %.0f, sum %.3f",
                                     json_number_value(json_object_get(sample, "count")),
                                     json_number_value(json_object_get(sample, "sum")));
            if (short_report) {
                ap_rprintf(r, "%s%s%s%s: %s\n", name, *labels ? "{" : "", labels,
                           *labels ? "}" : "", shown);
            }
            else {
                ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                           ap_escape_html(r->pool, name), ap_escape_html(r->pool, labels),
                           ap_escape_html(r->pool, shown));
            }
        }
    }
}

/* mod_status: mod_qwd's section of server-status (and its ?auto lines). */
static int status_hook(request_rec *r, int flags)
{
    qwd_req_t *q = context(r);
    json_t *families = collect(q, 0);
    int short_report = flags & AP_STATUS_SHORT;
    if (!short_report) {
        ap_rputs("<hr />\n<h2><a name=\"mod_qwd\">mod_qwd</a></h2>\n"
                 "<table border=\"1\"><tr><th>metric</th><th>labels</th><th>value</th></tr>\n",
                 r);
    }
    status_lines(r, families, short_report);
    if (!short_report) {
        ap_rputs("</table>\n", r);
    }
    json_decref(families);
    return OK;
}

void qwd_metrics_register_hooks(apr_pool_t *pool)
{
    ap_hook_handler(metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
