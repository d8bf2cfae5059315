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
static const int scratch_choices[] = {5, 10, 20, 50, 100, 200, 500, 1000, 0};

/* Fields of a machine's own choices are named FIELD:MACHINE (and share:MACHINE:NAME): each
 * machine's fieldset stands on the page, the chosen machine's fields count. */
#define MACHINE_FIELD_SEPARATOR ":"

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

/* "15 minutes", "45 seconds": how long QwdIdleStop waits for a viewer. */
static const char *idle_text(qwd_req_t *q, int seconds)
{
    return seconds % 60 ? apr_psprintf(q->r->pool, "%d second%s", seconds, seconds == 1 ? "" : "s")
                        : duration(q, seconds);
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

static const char *machine_field(qwd_req_t *q, const char *field, const char *machine)
{
    return apr_pstrcat(q->r->pool, field, MACHINE_FIELD_SEPARATOR, machine, NULL);
}

/* A machine's choices (docs/data-sessions.md): only what it offers. Shown by qwd-form.js for
 * the selected machine only; without it every machine's fieldset is there, each named. */
static void machine_options(qwd_req_t *q, json_t *machine, int max_scratch)
{
    request_rec *r = q->r;
    const char *name = json_string_value(json_object_get(machine, "name"));
    const char *format = json_string_value(json_object_get(machine, "format"));
    json_t *videos = json_object_get(machine, "videos"),
           *shares = json_object_get(machine, "shares");
    json_t *item;
    size_t i;
    int iso = format && !strcmp(format, "iso"), gpu = json_is_true(json_object_get(machine, "gpu"));
    if (json_array_size(videos) < 2 && !iso && !gpu && !json_array_size(shares)) {
        return;
    }
    ap_rprintf(r, "<fieldset class=\"qwd-machine\" data-machine=\"%s\"><legend>%s</legend>",
               qwd_h(q, name), qwd_h(q, name));
    if (json_array_size(videos) > 1) {
        ap_rprintf(r, "<label>Video card <select name=\"%s\">",
                   qwd_h(q, machine_field(q, "video", name)));
        json_array_foreach (videos, i, item) {
            ap_rprintf(r, "<option value=\"%s\">%s</option>", qwd_h(q, json_string_value(item)),
                       qwd_h(q, json_string_value(item)));
        }
        ap_rputs("</select></label>", r);
    }
    if (iso) {
        ap_rprintf(r,
                   "<label>Scratch disk (GiB) <select name=\"%s\"><option value=\"\" "
                   "selected>default</option>",
                   qwd_h(q, machine_field(q, "scratch", name)));
        for (i = 0; scratch_choices[i] && scratch_choices[i] <= max_scratch; i++) {
            option(q, scratch_choices[i], 0, apr_itoa(r->pool, scratch_choices[i]));
        }
        ap_rputs("</select></label>", r);
    }
    if (gpu) {
        ap_rprintf(r,
                   "<label class=\"qwd-check\"><input type=\"checkbox\" name=\"%s\" "
                   "value=\"1\"> A GPU of its own (passed through)</label>",
                   qwd_h(q, machine_field(q, "gpu", name)));
    }
    json_array_foreach (shares, i, item) {
        const char *share = json_string_value(json_object_get(item, "name"));
        const char *what = apr_psprintf(
            r->pool, "%s (%s, in %s)", share,
            json_is_true(json_object_get(item, "readonly")) ? "read-only" : "read-write",
            json_string_value(json_object_get(item, "mount")));
        if (json_is_true(json_object_get(item, "optional"))) {
            ap_rprintf(r,
                       "<label class=\"qwd-check\"><input type=\"checkbox\" name=\"%s\" "
                       "value=\"1\"> Folder %s</label>",
                       qwd_h(q, apr_pstrcat(r->pool, "share" MACHINE_FIELD_SEPARATOR, name,
                                            MACHINE_FIELD_SEPARATOR, share, NULL)),
                       qwd_h(q, what));
        }
        else {
            ap_rprintf(r, "<p class=\"qwd-hint\">Folder %s</p>", qwd_h(q, what));
        }
    }
    ap_rputs("</fieldset>", r);
}

/* The start-up script: a listed one, the user's own text (QwdScriptText) or a URL
 * (QwdScriptURLPrefix). */
static void script_options(qwd_req_t *q, json_t *choices)
{
    request_rec *r = q->r;
    json_t *scripts = json_object_get(choices, "scripts"), *item;
    json_t *prefixes = json_object_get(choices, "script_url_prefixes");
    int text = json_is_true(json_object_get(choices, "script_text"));
    size_t i;
    if (!json_array_size(scripts) && !text && !json_array_size(prefixes)) {
        return;
    }
    ap_rputs("<fieldset class=\"qwd-script\"><legend>Start-up script</legend>", r);
    if (json_array_size(scripts)) {
        ap_rputs("<label>Script <select name=\"script\"><option value=\"\" selected>none</option>",
                 r);
        json_array_foreach (scripts, i, item) {
            const char *name = json_string_value(json_object_get(item, "name"));
            const char *description = json_string_value(json_object_get(item, "description"));
            ap_rprintf(r, "<option value=\"%s\">%s%s%s</option>", qwd_h(q, name), qwd_h(q, name),
                       description && *description ? " - " : "", qwd_h(q, description));
        }
        ap_rputs("</select></label>", r);
    }
    if (text) {
        ap_rprintf(
            r,
            "<label>Your own script (at most %" JSON_INTEGER_FORMAT
            " bytes) <textarea name=\"script_text\" rows=\"4\" maxlength=\"%" JSON_INTEGER_FORMAT
            "\"></textarea></label>",
            json_integer_value(json_object_get(choices, "script_max")),
            json_integer_value(json_object_get(choices, "script_max")));
    }
    if (json_array_size(prefixes)) {
        ap_rprintf(r,
                   "<label>Script from a URL (starting with %s) <input name=\"script_url\" "
                   "type=\"url\"></label>",
                   qwd_h(q, json_string_value(json_array_get(prefixes, 0))));
    }
    ap_rputs("<p class=\"qwd-hint\">It runs once as the machine starts; @USER@ stands for your "
             "user name.</p></fieldset>",
             r);
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
    json_t *catalog, *machines, *machine, *offered;
    qwd_error_t *e;
    size_t i;
    int cpu;

    if (!qwd_auth_page_identity(q) && mode == QWD_AUTH_APACHE) {
        return qwd_fail(q, qwd_auth_login(q, NULL, NULL)); /* no Apache auth here: say so */
    }
    if ((e = qwd_session_catalog(q, &catalog))) {
        return qwd_fail(q, e);
    }
    machines = json_object_get(catalog, "machines");
    offered = qwd_json_pool_bind(r->pool, qwd_session_choices(q, catalog));
    qwd_html_use_script(q, "qwd-form.js");
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
        const char *backend = json_string_value(json_object_get(machine, "backend"));
        int cluster = backend && !strcmp(backend, QWD_BACKEND_SLURM);
        int warm = json_is_true(json_object_get(machine, "warm"));
        /* warm: the helper has a saved, booted image of this machine (docs/instant-on.md);
         * a cluster machine runs as a batch job, which may wait in the queue */
        ap_rprintf(r, "<option value=\"%s\"%s%s data-arch=\"%s\"%s>%s (%s)%s%s%s%s%s</option>",
                   qwd_h(q, name), warm ? " data-warm=\"1\"" : "", unusable ? " disabled" : "",
                   qwd_h(q, arch ? arch : ""), cluster ? " data-backend=\"slurm\"" : "",
                   qwd_h(q, name), qwd_h(q, arch ? arch : "?"),
                   description && *description ? " - " : "", qwd_h(q, description),
                   warm ? " \xE2\x9A\xA1 starts instantly" : "",
                   cluster ? " (on the cluster: may wait for a free node)" : "",
                   unusable ? " (unavailable)" : "");
    }
    ap_rputs("</select></label>", r);
    json_array_foreach (machines, i, machine) {
        if (json_string_value(json_object_get(machine, "name"))) {
            machine_options(q, machine, qwd_cfg_max_scratch_gib(cfg));
        }
    }
    script_options(q, offered);
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
             "One-shot: the link opens the desktop once, for one viewer; when that viewer "
             "closes it, the machine stops and its changes are thrown away (it cannot be "
             "shared)</label>",
             r);
    if (qwd_cfg_idle_stop(cfg)) {
        ap_rprintf(r,
                   "<p class=\"qwd-hint\" id=\"idle-stop\">A machine nobody has open stops by "
                   "itself after %s.</p>",
                   qwd_h(q, idle_text(q, qwd_cfg_idle_stop(cfg))));
    }
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
               !strcmp(state, QWD_STATE_QUEUED)
                   ? apr_psprintf(r->pool,
                                  "Waiting for a free node on the cluster (%s); the link below "
                                  "works once the machine runs. Its lifetime counts from then.",
                                  qwd_h(q, row->queued_reason ? row->queued_reason : "queued"))
               : strcmp(state, QWD_STATE_RUNNING)
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
    ap_rprintf(r, "<dt>Expires</dt><dd id=\"expires\" data-unix=\"%" APR_INT64_T_FMT "\">%s</dd>",
               row->expires, qwd_h(q, qwd_html_time(q, row->expires)));
    if (row->idle_stop_at) {
        /* QwdIdleStop: nobody watches yet */
        ap_rprintf(r,
                   "<dt>Idle stop</dt><dd id=\"idle-stop\" data-unix=\"%" APR_INT64_T_FMT "\">"
                   "at %s unless someone opens the desktop: it stops after %s without a viewer"
                   "</dd>",
                   row->idle_stop_at, qwd_h(q, qwd_html_time(q, row->idle_stop_at)),
                   qwd_h(q, idle_text(q, qwd_cfg_idle_stop(q->cfg))));
    }
    ap_rputs("</dl>", r);
    if (row->oneshot) {
        ap_rputs("<p class=\"qwd-hint\" id=\"oneshot\">One-shot: the link opens the desktop "
                 "once; when you close it, the machine stops and its changes are thrown "
                 "away.</p>",
                 r);
    }
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

typedef struct {
    qwd_req_t *q;
    const char *prefix; /* share:MACHINE: */
    apr_array_header_t *shares;
} share_fields_t;

static int collect_share(void *data, const char *key, const char *value)
{
    share_fields_t *fields = data;
    size_t length = strlen(fields->prefix);
    if (!strncmp(key, fields->prefix, length) && key[length] && value && *value) {
        APR_ARRAY_PUSH(fields->shares, const char *) = key + length;
    }
    return 1;
}

/* The chosen machine's own fields (FIELD:MACHINE) and the script's. */
static qwd_error_t *read_choices(qwd_req_t *q, qwd_create_args_t *args)
{
    const char *machine = args->machine ? args->machine : "";
    share_fields_t shares = {q,
                             apr_pstrcat(q->r->pool, "share", MACHINE_FIELD_SEPARATOR, machine,
                                         MACHINE_FIELD_SEPARATOR, NULL),
                             apr_array_make(q->r->pool, 2, sizeof(const char *))};
    args->video = qwd_field(q, machine_field(q, "video", machine));
    args->gpu = qwd_field(q, machine_field(q, "gpu", machine)) ? 1 : QWD_UNSET;
    apr_table_do(collect_share, &shares, q->fields, NULL);
    args->shares = shares.shares;
    args->script.name = qwd_field(q, "script");
    args->script.text = qwd_field(q, "script_text");
    args->script.url = qwd_field(q, "script_url");
    return qwd_field_int(q, qwd_field(q, machine_field(q, "scratch", machine)), "scratch_gib",
                         QWD_UNSET, &args->scratch_gib);
}

qwd_error_t *qwd_page_create_args(qwd_req_t *q, qwd_create_args_t *args)
{
    const char *oneshot = qwd_field(q, "oneshot");
    qwd_error_t *e;
    args->machine = qwd_field(q, "machine");
    args->oneshot = oneshot && *oneshot && strcmp(oneshot, "0") != 0;
    if ((e = qwd_field_int(q, qwd_field(q, "cpu"), "cpu", QWD_UNSET, &args->cpu))
        || (e = qwd_field_int(q, qwd_field(q, "memory"), "memory", QWD_UNSET, &args->memory_mib))
        || (e = qwd_field_int(q, qwd_field(q, "lifetime"), "lifetime", QWD_UNSET,
                              &args->lifetime_s))) {
        return e;
    }
    return read_choices(q, args);
}

int qwd_page_create(qwd_req_t *q)
{
    qwd_create_args_t args;
    qwd_store_t *store;
    qwd_row_t *row;
    qwd_error_t *e;

    qwd_create_args_init(&args);
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
    if ((e = qwd_page_create_args(q, &args)) || (e = qwd_store_open(q, &store))
        || (e = qwd_session_create(q, store, &args, &row))) {
        return qwd_fail(q, e);
    }
    /* the browser that created a session may see and stop it later (QwdAuth none/form) */
    if (qwd_cfg_auth_mode(q->cfg) != QWD_AUTH_APACHE) {
        qwd_identity_cookie_set(q, q->user);
    }
    result_page(q, row);
    return OK;
}
