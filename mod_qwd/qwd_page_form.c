/* SPDX-License-Identifier: Apache-2.0 */
/* GET / (the form: machines from the helper, CPU/memory/lifetime choices within the limits)
 * and POST / (authenticate, create, answer with the viewer link, token, QR code, expiry). */
#include "qwd_pages.h"
#include "qwd_auth.h"
#include "qwd_body.h"
#include "qwd_html.h"
#include "qwd_links.h"
#include "qwd_qr.h"
#include "qwd_secret.h"
#include "qwd_session.h"
#include "qwd_warm.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>

static const int memory_choices[] = {256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 0};
static const int lifetime_choices[] = {900, 3600, 4 * 3600, 8 * 3600, 86400, 7 * 86400, 0};

static const char *duration(qwd_req_t *q, int seconds)
{
    if (seconds % 86400 == 0) {
        return apr_psprintf(q->r->pool, "%d day%s", seconds / 86400, seconds == 86400 ? "" : "s");
    }
    if (seconds % 3600 == 0) {
        return apr_psprintf(q->r->pool, "%d hour%s", seconds / 3600, seconds == 3600 ? "" : "s");
    }
    return apr_psprintf(q->r->pool, "%d minutes", seconds / 60);
}

static void option(qwd_req_t *q, int value, int selected, const char *label)
{
    ap_rprintf(q->r, "<option value=\"%d\"%s>%s</option>", value, selected ? " selected" : "",
               qwd_h(q, label));
}

/* The choices of a select: the fixed ones up to max, and the default wherever it falls. */
static void choices(qwd_req_t *q, const int *fixed, int max, int chosen, int seconds)
{
    int i, shown_default = 0;
    for (i = 0; fixed[i]; i++) {
        if (!shown_default && chosen < fixed[i] && chosen <= max) {
            option(q, chosen, 1, seconds ? duration(q, chosen) : apr_itoa(q->r->pool, chosen));
            shown_default = 1;
        }
        if (fixed[i] > max) {
            break;
        }
        option(q, fixed[i], fixed[i] == chosen,
               seconds ? duration(q, fixed[i]) : apr_itoa(q->r->pool, fixed[i]));
        shown_default |= fixed[i] == chosen;
    }
    if (!shown_default && chosen <= max) {
        option(q, chosen, 1, seconds ? duration(q, chosen) : apr_itoa(q->r->pool, chosen));
    }
}

static int is_url(const char *text)
{
    return !strncmp(text, "http://", 7) || !strncmp(text, "https://", 8) || text[0] == '/';
}

int qwd_page_form(qwd_req_t *q)
{
    request_rec *r = q->r;
    qwd_dir_config_t *cfg = q->cfg;
    int mode = qwd_cfg_auth_mode(cfg);
    int max_lifetime = qwd_cfg_max_lifetime(cfg);
    int default_lifetime = qwd_cfg_default_lifetime(cfg);
    int default_cpu = qwd_cfg_default_cpu(cfg);
    json_t *machines, *machine;
    qwd_error_t *e;
    size_t i;
    int cpu;

    if (!qwd_auth_page_identity(q) && mode == QWD_AUTH_APACHE) {
        return qwd_fail(q, qwd_auth_login(q, NULL, NULL)); /* no Apache auth here: say so */
    }
    if ((e = qwd_session_machines(q, &machines))) {
        return qwd_fail(q, e);
    }
    qwd_html_begin(q, "Start a virtual machine");
    ap_rprintf(r, "<form method=\"post\" action=\"%s/\" class=\"qwd-form\">",
               qwd_h(q, qwd_route_url(q, "")));
    qwd_html_csrf_field(q);
    if (mode == QWD_AUTH_APACHE) {
        ap_rprintf(r, "<p>Logged in as <b>%s</b>.</p>", qwd_h(q, r->user));
    }
    else {
        ap_rprintf(r,
                   "<label>User name <input name=\"user\" required maxlength=\"64\" "
                   "autocomplete=\"username\" value=\"%s\"></label>",
                   qwd_h(q, q->user));
        if (mode == QWD_AUTH_FORM) {
            ap_rputs("<label>Password <input name=\"password\" type=\"password\" required "
                     "autocomplete=\"current-password\"></label>",
                     r);
        }
    }
    ap_rputs("<label>Machine <select name=\"machine\" required>", r);
    json_array_foreach (machines, i, machine) {
        const char *name = json_string_value(json_object_get(machine, "name"));
        const char *description = json_string_value(json_object_get(machine, "description"));
        const char *arch = json_string_value(json_object_get(machine, "arch"));
        /* a machine the helper refuses (docs/machines.md) is shown, but cannot be chosen */
        int unusable = json_is_string(json_object_get(machine, "problem"));
        if (!name) {
            continue;
        }
        /* warm: the helper has a saved, booted image of this machine (docs/instant-on.md) */
        ap_rprintf(
            r, "<option value=\"%s\"%s%s data-arch=\"%s\">%s (%s)%s%s%s%s</option>", qwd_h(q, name),
            json_is_true(json_object_get(machine, "warm")) ? " data-warm=\"1\"" : "",
            unusable ? " disabled" : "", qwd_h(q, arch ? arch : ""), qwd_h(q, name),
            qwd_h(q, arch ? arch : "?"), description && *description ? " - " : "",
            qwd_h(q, description),
            json_is_true(json_object_get(machine, "warm")) ? " \xE2\x9A\xA1 starts instantly" : "",
            unusable ? " (unavailable)" : "");
    }
    ap_rputs("</select></label>", r);
    ap_rputs("<label>CPUs <select name=\"cpu\">", r);
    for (cpu = 1; cpu <= qwd_session_max_cpu(q) && cpu <= 64; cpu++) {
        option(q, cpu, cpu == default_cpu, apr_itoa(r->pool, cpu));
    }
    ap_rputs("</select></label><label>Memory (MiB) <select name=\"memory\">", r);
    choices(q, memory_choices, qwd_session_max_memory(q), qwd_cfg_default_memory(cfg), 0);
    ap_rputs("</select></label><label>Lifetime <select name=\"lifetime\">", r);
    choices(q, lifetime_choices, max_lifetime,
            default_lifetime < max_lifetime ? default_lifetime : max_lifetime, 1);
    ap_rputs("</select></label>", r);
    ap_rputs("<label class=\"qwd-check\"><input type=\"checkbox\" name=\"oneshot\" value=\"1\"> "
             "One-shot: throw the machine's changes away when it ends</label>",
             r);
    if (cfg->terms) {
        if (is_url(cfg->terms)) {
            ap_rprintf(r,
                       "<label class=\"qwd-check\"><input type=\"checkbox\" name=\"terms\" "
                       "value=\"1\" required> I accept the <a href=\"%s\">terms of "
                       "use</a></label>",
                       qwd_h(q, cfg->terms));
        }
        else {
            ap_rprintf(r,
                       "<p class=\"qwd-terms\">%s</p><label class=\"qwd-check\"><input "
                       "type=\"checkbox\" name=\"terms\" value=\"1\" required> I accept "
                       "these terms</label>",
                       qwd_h(q, cfg->terms));
        }
    }
    ap_rputs("<button type=\"submit\">Start</button></form>\n", r);
    qwd_html_end(q);
    return OK;
}

/* The result page: what the user needs to reach the VM now and later. It shows the session
 * starting; qwd-progress.js polls the JSON status and reveals link and QR code once the display
 * answers, or the reason when the VM ended while starting. Without JavaScript the link is
 * simply there. */
static void result_page(qwd_req_t *q, const qwd_row_t *row)
{
    request_rec *r = q->r;
    const char *viewer = qwd_session_link(q, row);
    const char *svg = viewer ? qwd_qr_svg(r->pool, viewer, 4) : NULL;
    int tickets = qwd_links_use_tickets(q);
    /* a VM restored from a warm image is up at once: show it ready, nothing to wait for */
    int restored = row->boot && !strcmp(row->boot, QWD_BOOT_RESTORED);
    const char *state =
        restored && strcmp(row->state, QWD_STATE_ENDED) ? QWD_STATE_RUNNING : row->state;

    qwd_html_use_script(q, "qwd-progress.js");
    qwd_html_begin(q, "Your virtual machine");
    ap_rprintf(r,
               "<section id=\"progress\" class=\"qwd-progress\" data-state=\"%s\" "
               "data-status-url=\"%s\" aria-live=\"polite\"><p>Machine <b>%s</b> (%d CPU, "
               "%d MiB) for <b>%s</b> is <span class=\"qwd-state\" id=\"state\">%s</span>."
               "</p><p class=\"qwd-hint\" id=\"state-detail\">%s</p></section>",
               qwd_h(q, state),
               qwd_h(q, qwd_route_url(q, apr_pstrcat(r->pool, "/api/sessions/", row->id, NULL))),
               qwd_h(q, row->machine), row->cpu, row->memory_mib, qwd_h(q, row->owner),
               qwd_h(q, state),
               strcmp(state, QWD_STATE_RUNNING)
                   ? "The machine is booting; the link below works as soon as its display "
                     "answers."
               : restored ? "Ready: started instantly from a saved, booted image."
                          : "Ready.");
    ap_rputs("<div id=\"ready\" class=\"qwd-ready\">", r);
    if (viewer) {
        ap_rprintf(r,
                   "<p class=\"qwd-link\"><a id=\"viewer\" href=\"%s\" target=\"_blank\">Open "
                   "the desktop</a></p>",
                   qwd_h(q, viewer));
    }
    if (svg) {
        ap_rprintf(r,
                   "<figure class=\"qwd-qr\" id=\"qr\">%s<figcaption>Scan to open the "
                   "desktop on another device</figcaption></figure>",
                   svg);
    }
    ap_rputs("</div>", r);
    ap_rprintf(r, "<dl><dt>Session</dt><dd id=\"session\">%s</dd>", qwd_h(q, row->id));
    if (tickets) {
        ap_rprintf(r, "<dt>Link</dt><dd><code id=\"link\">%s</code></dd>", qwd_h(q, viewer));
    }
    else {
        ap_rprintf(r,
                   "<dt>Token</dt><dd id=\"token\"><code>%s</code></dd><dt>Websocket</dt>"
                   "<dd><code id=\"websocket\">%s</code></dd>",
                   qwd_h(q, row->token), qwd_h(q, qwd_websocket_url(q, row->token)));
    }
    ap_rprintf(r,
               "<dt>Expires</dt><dd id=\"expires\" data-unix=\"%" APR_INT64_T_FMT "\">%s</dd>"
               "</dl>",
               row->expires, qwd_h(q, qwd_html_time(q, row->expires)));
    ap_rprintf(r,
               "<p>Keep this page or find the session again under <a href=\"%s\">My "
               "sessions</a>. Anyone with the link can use the desktop%s.</p>",
               qwd_h(q, qwd_route_url(q, "/sessions")),
               tickets ? " until the session ends or is stopped" : "");
    qwd_html_end(q);
}

qwd_error_t *qwd_page_read_form(qwd_req_t *q)
{
    qwd_error_t *e = qwd_body_form(q);
    if (e) {
        return e;
    }
    if (!qwd_csrf_valid(q, qwd_field(q, "csrf"))) {
        e = qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(00801), "csrf",
                    "This form has expired or did not come from this site; please reload the "
                    "page and try again.");
        return e;
    }
    return NULL;
}

int qwd_page_redirect(qwd_req_t *q, const char *route)
{
    apr_table_setn(q->r->headers_out, "Location",
                   ap_construct_url(q->r->pool, qwd_route_url(q, route), q->r));
    q->r->status = HTTP_SEE_OTHER;
    return OK;
}

int qwd_page_create(qwd_req_t *q)
{
    qwd_create_args_t args = {NULL, QWD_UNSET, QWD_UNSET, QWD_UNSET, QWD_UNSET};
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;
    const char *oneshot;

    if ((e = qwd_page_read_form(q))
        || (e = qwd_auth_login(q, qwd_field(q, "user"), qwd_field(q, "password")))) {
        return qwd_fail(q, e);
    }
    if (q->cfg->terms && !qwd_field(q, "terms")) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00802), "bad_field",
                    "Please accept the terms of use.");
        e->field = "terms";
        return qwd_fail(q, e);
    }
    args.machine = qwd_field(q, "machine");
    oneshot = qwd_field(q, "oneshot");
    args.oneshot = oneshot && *oneshot && strcmp(oneshot, "0") != 0;
    if ((e = qwd_field_int(q, qwd_field(q, "cpu"), "cpu", QWD_UNSET, &args.cpu))
        || (e = qwd_field_int(q, qwd_field(q, "memory"), "memory", QWD_UNSET, &args.memory_mib))
        || (e = qwd_field_int(q, qwd_field(q, "lifetime"), "lifetime", QWD_UNSET, &args.lifetime_s))
        || (e = qwd_store_open(q, &store)) || (e = qwd_session_create(q, store, &args, &row))) {
        return qwd_fail(q, e);
    }
    /* the browser that created a session may see and stop it later (QwdAuth none/form) */
    if (qwd_cfg_auth_mode(q->cfg) != QWD_AUTH_APACHE) {
        qwd_identity_cookie_set(q, q->user);
    }
    result_page(q, row);
    return OK;
}
