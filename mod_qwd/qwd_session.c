/* SPDX-License-Identifier: Apache-2.0 */
/* Session logic. SQLite rows are the truth for the web side, the helper for processes: a
 * create reserves its row (and counts the limits) in one transaction before asking the
 * helper, undoes the row if the helper fails and stops the VM if the row cannot be completed,
 * so no VM exists without a row and no row claims a VM that never started. */
#include "qwd_session.h"
#include "qwd_audit.h"
#include "qwd_capability.h"
#include "qwd_counters.h"
#include "qwd_helper_client.h"
#include "qwd_links.h"
#include "qwd_logno.h"
#include "qwd_protocol.h"
#include "qwd_token.h"
#include "qwd_warm.h"

#include <apr_atomic.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

APLOG_USE_MODULE(qwd);

int qwd_session_max_cpu(qwd_req_t *q)
{
    return qwd_cfg_max_cpu_per_user(q->cfg);
}

int qwd_session_max_memory(qwd_req_t *q)
{
    return qwd_cfg_max_memory_per_user(q->cfg);
}

int qwd_session_is_live(const qwd_row_t *row)
{
    return strcmp(row->state, QWD_STATE_ENDED) != 0;
}

qwd_error_t *qwd_session_catalog(qwd_req_t *q, json_t **catalog)
{
    return qwd_helper_call(q, QWD_OP_MACHINES, NULL, catalog);
}

json_t *qwd_session_choices(qwd_req_t *q, json_t *catalog)
{
    json_t *scripts = json_object_get(catalog, "scripts");
    json_t *prefixes = json_array();
    const apr_array_header_t *list = q->cfg->script_url_prefixes;
    int i;
    for (i = 0; list && i < list->nelts; i++) {
        json_array_append_new(prefixes, json_string(APR_ARRAY_IDX(list, i, const char *)));
    }
    return json_pack("{s:o, s:b, s:i, s:o, s:i}", "scripts",
                     json_is_array(scripts) ? json_incref(scripts) : json_array(), "script_text",
                     qwd_cfg_script_text(q->cfg), "script_max", qwd_cfg_script_max(q->cfg),
                     "script_url_prefixes", prefixes, "max_scratch_gib",
                     qwd_cfg_max_scratch_gib(q->cfg));
}

qwd_error_t *qwd_session_machines(qwd_req_t *q, json_t **machines)
{
    json_t *result;
    qwd_error_t *e = qwd_session_catalog(q, &result);
    if (e) {
        return e;
    }
    *machines = json_object_get(result, "machines");
    if (!json_is_array(*machines)) {
        e = qwd_err(q, HTTP_BAD_GATEWAY, QWDLOGNO(00501), "helper_error",
                    "The virtual machine service gave no machine list.");
        return e;
    }
    return NULL;
}

static int has_string(json_t *array, const char *text)
{
    json_t *item;
    size_t i;
    json_array_foreach (array, i, item) {
        if (json_is_string(item) && !strcmp(json_string_value(item), text)) {
            return 1;
        }
    }
    return 0;
}

/* The choices of a create that depend on its machine: only what the machine offers. */
static qwd_error_t *validate_choices(qwd_req_t *q, json_t *machine, qwd_create_args_t *args)
{
    json_t *shares = json_object_get(machine, "shares"), *share;
    const char *format = json_string_value(json_object_get(machine, "format"));
    int max_scratch = qwd_cfg_max_scratch_gib(q->cfg), i;
    size_t k;
    if (args->video && *args->video
        && !has_string(json_object_get(machine, "videos"), args->video)) {
        return qwd_create_bad_field(q, QWDLOGNO(03410), "video",
                                    "This machine does not offer the video card %s.", args->video);
    }
    if (args->gpu == 1 && !json_is_true(json_object_get(machine, "gpu"))) {
        return qwd_create_bad_field(q, QWDLOGNO(03411), "gpu",
                                    "This machine is not offered with a GPU.");
    }
    for (i = 0; args->shares && i < args->shares->nelts; i++) {
        const char *name = APR_ARRAY_IDX(args->shares, i, const char *);
        int offered = 0;
        json_array_foreach (shares, k, share) {
            const char *share_name = json_string_value(json_object_get(share, "name"));
            offered |= share_name && !strcmp(share_name, name)
                       && json_is_true(json_object_get(share, "optional"));
        }
        if (!offered) {
            return qwd_create_bad_field(q, QWDLOGNO(03412), "shares",
                                        "This machine offers no folder \"%s\" to choose.", name);
        }
    }
    if (args->scratch_gib != QWD_UNSET
        && (!format || strcmp(format, "iso") || args->scratch_gib < QWD_PROTO_MIN_SCRATCH_GIB
            || args->scratch_gib > max_scratch)) {
        return qwd_create_bad_field(
            q, QWDLOGNO(03413), "scratch_gib", "%s",
            format && !strcmp(format, "iso")
                ? apr_psprintf(q->r->pool, "The scratch disk must be %d to %d GiB.",
                               QWD_PROTO_MIN_SCRATCH_GIB, max_scratch)
                : "Only machines that start from an ISO image have a scratch disk.");
    }
    return NULL;
}

/* Fills defaults and checks every field against the helper's machines and the limits;
 * *on_cluster: the helper runs the machine's sessions on its Slurm cluster, not on this host. */
static qwd_error_t *validate(qwd_req_t *q, qwd_create_args_t *args, int *on_cluster)
{
    json_t *catalog, *machines, *machine, *chosen = NULL;
    const char *backend;
    qwd_error_t *e;
    size_t i;

    if ((e = qwd_create_args_check(q, args))) {
        return e;
    }
    if ((e = qwd_session_catalog(q, &catalog))) {
        return e;
    }
    machines = json_object_get(catalog, "machines");
    json_array_foreach (machines, i, machine) {
        const char *name = json_string_value(json_object_get(machine, "name"));
        if (name && !strcmp(name, args->machine)) {
            chosen = machine;
        }
    }
    if (!chosen) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00506), "bad_field", "There is no such machine.");
        e->field = "machine";
        return e;
    }
    if (json_is_string(json_object_get(chosen, "problem"))) {
        /* the why (file names of the machines directory) is for the log, not for the user */
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03500), "bad_field",
                    "This machine cannot be started now.");
        e->field = "machine";
        e->detail = apr_psprintf(q->r->pool, "machine %s: %s", args->machine,
                                 json_string_value(json_object_get(chosen, "problem")));
        return e;
    }
    if ((e = validate_choices(q, chosen, args))) {
        return e;
    }
    backend = json_string_value(json_object_get(chosen, "backend"));
    *on_cluster = backend && !strcmp(backend, QWD_BACKEND_SLURM);
    return qwd_script_check(q, json_object_get(catalog, "scripts"), &args->script);
}

/* The helper's start arguments for what a create chose beyond the profile. */
static void add_choices(json_t *start_args, const qwd_create_args_t *args)
{
    int i;
    if (args->video && *args->video) {
        json_object_set_new(start_args, "video", json_string(args->video));
    }
    if (args->gpu == 1) {
        json_object_set_new(start_args, "gpu", json_true());
    }
    if (args->shares && args->shares->nelts) {
        json_t *shares = json_array();
        for (i = 0; i < args->shares->nelts; i++) {
            json_array_append_new(shares,
                                  json_string(APR_ARRAY_IDX(args->shares, i, const char *)));
        }
        json_object_set_new(start_args, "shares", shares);
    }
    if (args->scratch_gib != QWD_UNSET) {
        json_object_set_new(start_args, "scratch_gib", json_integer(args->scratch_gib));
    }
    if (args->script.name && *args->script.name) {
        json_object_set_new(start_args, "script", json_string(args->script.name));
    }
    else if (args->script.text && *args->script.text) {
        json_object_set_new(start_args, "script_text", json_string(args->script.text));
    }
}

/* QwdMaxLoad: the load of this host, which only its own VMs add to (a cluster session runs
 * on a node: the scheduler decides what fits there, as for the helper's max_load). */
static qwd_error_t *check_load(qwd_req_t *q)
{
    double max_load = qwd_cfg_max_load(q->cfg);
    json_t *load;
    qwd_error_t *e;
    double load1;
    if (max_load <= 0) {
        return NULL;
    }
    if ((e = qwd_helper_call(q, QWD_OP_LOAD, NULL, &load))) {
        return e;
    }
    load1 = json_number_value(json_object_get(load, "load1"));
    if (load1 > max_load) {
        e = qwd_err(q, HTTP_TOO_MANY_REQUESTS, QWDLOGNO(00507), "limit_reached",
                    "Limit reached: the server is busy (load %.2f, QwdMaxLoad %.2f); please try "
                    "again later.",
                    load1, max_load);
        e->limit = "QwdMaxLoad";
        return e;
    }
    return NULL;
}

/* A restored VM answers ~0.2 s after its start: wait that long (bounded) for the helper to
 * say running, so the answer is the ready state rather than a "starting" to poll. */
#define RESTORED_WAIT_MS 2000
#define RESTORED_POLL_MS 100

static void wait_restored(qwd_req_t *q, qwd_row_t *row)
{
    int waited;
    if (!row->boot || strcmp(row->boot, QWD_BOOT_RESTORED) || !row->state || !row->helper_id) {
        return;
    }
    for (waited = 0; strcmp(row->state, QWD_STATE_RUNNING) && waited < RESTORED_WAIT_MS;
         waited += RESTORED_POLL_MS) {
        json_t *status;
        const char *state;
        apr_sleep(apr_time_from_msec(RESTORED_POLL_MS));
        if (qwd_helper_call(q, QWD_OP_STATUS, json_pack("{s:s}", "id", row->helper_id), &status)) {
            return;
        }
        state = json_string_value(json_object_get(status, "state"));
        if (!state || !strcmp(state, QWD_STATE_ENDED)) {
            return; /* the listing's reconcile reports the end */
        }
        row->state = apr_pstrdup(q->r->pool, state);
        row->boot = apr_pstrdup(q->r->pool, json_string_value(json_object_get(status, "boot"))
                                                ? json_string_value(json_object_get(status, "boot"))
                                                : row->boot);
    }
}

/* A refusal by one of the module's limits is counted (qwd_limit_refusals_total); the helper
 * counts its own. Returns e. */
static qwd_error_t *counted(qwd_error_t *e)
{
    int counter = e && e->limit ? qwd_counter_of_limit(e->limit) : -1;
    if (counter >= 0) {
        qwd_counter_inc((qwd_counter_t)counter);
    }
    return e;
}

/* owner or admin: the role of q->user toward a session of owner. */
static const char *role_of(qwd_req_t *q, const char *owner)
{
    return strcmp(q->user, owner) ? QWD_AUDIT_BY_ADMIN : QWD_AUDIT_BY_OWNER;
}

static qwd_error_t *create(qwd_req_t *q, qwd_store_t *store, qwd_create_args_t *args,
                           qwd_row_t **row_out);

qwd_error_t *qwd_session_create(qwd_req_t *q, qwd_store_t *store, qwd_create_args_t *args,
                                qwd_row_t **row_out)
{
    qwd_error_t *e = counted(create(q, store, args, row_out));
    if (!e) {
        const qwd_row_t *row = *row_out;
        qwd_audit_record(
            q, store, QWD_AUDIT_CREATED, row->id, row->owner, q->user, QWD_AUDIT_BY_OWNER,
            apr_psprintf(q->r->pool, "%s, %d CPU, %d MiB, until %" APR_INT64_T_FMT ", %s",
                         row->machine, row->cpu, row->memory_mib, row->expires,
                         row->boot ? row->boot : "boot unknown"));
    }
    return e;
}

static qwd_error_t *create(qwd_req_t *q, qwd_store_t *store, qwd_create_args_t *args,
                           qwd_row_t **row_out)
{
    request_rec *r = q->r;
    qwd_row_t *row = apr_pcalloc(r->pool, sizeof(*row));
    qwd_limits_t limits;
    apr_array_header_t *rows;
    json_t *started, *start_args;
    qwd_error_t *e;
    char *id;
    int helper_down = 0;
    int on_cluster = 0;

    if ((e = validate(q, args, &on_cluster)) || (!on_cluster && (e = check_load(q)))) {
        return e;
    }
    /* rows of VMs that ended since the last look must not count against the limits */
    if ((e = qwd_session_list_live(q, store, q->user, &rows, &helper_down))) {
        return e;
    }
    limits.max_sessions = qwd_cfg_max_sessions(q->cfg);
    limits.max_sessions_per_user = qwd_cfg_max_sessions_per_user(q->cfg);
    limits.max_cpu_per_user = qwd_session_max_cpu(q);
    limits.max_memory_per_user = qwd_session_max_memory(q);

    if (qwd_session_id_new(r->pool, &id) != APR_SUCCESS) {
        return qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, QWDLOGNO(00508), "internal",
                       "No randomness.");
    }
    row->id = id;
    row->link_key = qwd_link_key(q, qwd_link_capability(q, id));
    row->owner = q->user;
    row->machine = args->machine;
    row->cpu = args->cpu;
    row->memory_mib = args->memory_mib;
    row->oneshot = args->oneshot;
    row->created = apr_time_sec(apr_time_now());
    row->expires = row->created + args->lifetime_s;
    e = qwd_store_reserve(store, row, &limits);
    if (e && e->limit && !strcmp(e->limit, "QwdMaxSessions") && !helper_down) {
        /* Other users' rows were not reconciled above: VMs stopped behind the module's back
         * (qwdctl stop/purge, a crash) would otherwise hold places until someone lists. */
        if ((e = qwd_session_list_live(q, store, NULL, &rows, &helper_down))) {
            return e;
        }
        e = qwd_store_reserve(store, row, &limits);
    }
    if (e) {
        return e;
    }

    /* ref: the VM is findable by its row should this worker die before recording it */
    start_args = json_pack("{s:s, s:i, s:i, s:i, s:s, s:b, s:s}", "machine", row->machine, "cpu",
                           row->cpu, "memory_mib", row->memory_mib, "lifetime_s", args->lifetime_s,
                           "owner", row->owner, "oneshot", row->oneshot, "ref", row->id);
    if (qwd_cfg_idle_stop(q->cfg) && qwd_cfg_idle_stop(q->cfg) < args->lifetime_s) {
        /* QwdIdleStop: the helper stops it once nobody has watched for that long (a longer
         * idle stop than its lifetime never comes: the helper refuses one) */
        json_object_set_new(start_args, "idle_stop_s", json_integer(qwd_cfg_idle_stop(q->cfg)));
    }
    add_choices(start_args, args);
    /* for the helper's journal (this module records the start itself) and its start latency,
     * counted from this request's arrival */
    json_object_set_new(start_args, "by", json_string(q->user));
    json_object_set_new(start_args, "audited", json_true());
    json_object_set_new(start_args, "requested_at",
                        json_real((double)r->request_time / APR_USEC_PER_SEC));
    if ((e = qwd_helper_call(q, QWD_OP_START, start_args, &started))) {
        qwd_error_t *undo = qwd_store_delete(store, row->id);
        if (undo) {
            /* the sweep removes the pending row later; log both */
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          QWDLOGNO(00509) "could not remove the reserved row %s: %s", row->id,
                          undo->detail ? undo->detail : undo->message);
        }
        return e;
    }
    row->helper_id = json_string_value(json_object_get(started, "id"));
    row->token = json_string_value(json_object_get(started, "token"));
    row->state = json_string_value(json_object_get(started, "state"));
    row->boot = json_string_value(json_object_get(started, "boot"));
    row->idle_stop_at = json_integer_value(json_object_get(started, "idle_stop_at"));
    row->queued_reason = json_string_value(json_object_get(started, "queued_reason"));
    row->node = json_string_value(json_object_get(started, "node"));
    wait_restored(q, row);
    if (json_is_integer(json_object_get(started, "expires"))) {
        row->expires = json_integer_value(json_object_get(started, "expires"));
    }
    if (!row->helper_id || !row->token || !row->state) {
        /* the token is not stored, but a session without one could never be reached */
        e = qwd_err(q, HTTP_BAD_GATEWAY, QWDLOGNO(00510), "helper_error",
                    "The virtual machine service gave an incomplete answer.");
    }
    else {
        e = qwd_store_mark_started(store, row);
    }
    if (e) {
        /* never leave a VM without a row: stop it */
        json_t *ignored;
        if (row->helper_id) {
            qwd_error_t *stop_e =
                qwd_helper_call(q, QWD_OP_STOP, json_pack("{s:s}", "id", row->helper_id), &ignored);
            if (stop_e) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              QWDLOGNO(00511) "could not stop VM %s of unrecorded session %s: %s",
                              row->helper_id, row->id, stop_e->detail ? stop_e->detail : "");
            }
        }
        qwd_store_delete(store, row->id);
        return e;
    }
    *row_out = row;
    return NULL;
}

qwd_error_t *qwd_session_find(qwd_req_t *q, qwd_store_t *store, const char *id, qwd_row_t **row)
{
    qwd_error_t *e;
    if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32) {
        return qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(00512), "not_found",
                       "There is no such session.");
    }
    if ((e = qwd_store_get(store, id, row))) {
        return e;
    }
    if (!*row || (!q->is_admin && strcmp((*row)->owner, q->user) != 0)) {
        e = qwd_err(q, HTTP_NOT_FOUND, QWDLOGNO(00513), "not_found", "There is no such session.");
        if (*row) {
            e->detail = apr_psprintf(q->r->pool, "session %s belongs to %s", id, (*row)->owner);
            e->level = APLOG_WARNING; /* someone tried another user's session */
        }
        *row = NULL;
        return e;
    }
    return NULL;
}

qwd_error_t *qwd_session_stop(qwd_req_t *q, qwd_store_t *store, qwd_row_t *row)
{
    json_t *result;
    qwd_error_t *e;
    if (!qwd_session_is_live(row)) {
        return NULL;
    }
    if (row->helper_id) {
        e = qwd_helper_call(
            q, QWD_OP_STOP,
            json_pack("{s:s, s:s, s:b}", "id", row->helper_id, "by", q->user, "audited", 1),
            &result);
        /* not_found: the VM is gone already, which is what was asked */
        if (e && e->status != HTTP_NOT_FOUND) {
            return e;
        }
    }
    if ((e = qwd_store_mark_ended(store, row->id, QWD_END_STOPPED))) {
        return e;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, QWDLOGNO(00514) "session %s of %s stopped by %s",
                  row->id, row->owner, q->user);
    qwd_audit_record(q, store, QWD_AUDIT_STOPPED, row->id, row->owner, q->user,
                     role_of(q, row->owner), QWD_END_STOPPED);
    row->state = QWD_STATE_ENDED;
    row->ended_reason = QWD_END_STOPPED;
    row->ended = apr_time_sec(apr_time_now());
    return NULL;
}

/* Why a VM the helper no longer lists ended (its status remembers ended sessions a while). */
static const char *ended_reason(qwd_req_t *q, const char *helper_id)
{
    json_t *status;
    const char *reason;
    if (qwd_helper_call(q, QWD_OP_STATUS, json_pack("{s:s}", "id", helper_id), &status)) {
        return "ended";
    }
    reason = json_string_value(json_object_get(status, "ended_reason"));
    return reason ? reason : "ended";
}

/* A create takes at most the helper call's timeout (30 s) and the wait for a restored VM:
 * a row still pending after this belongs to a worker that died or hung mid-create. */
#define PENDING_ADOPT_AFTER_S 60

/* The VM of a pending row whose worker died after the helper started it (found by its ref):
 * record it, so it is listed, reachable and stopped like any other. */
static qwd_error_t *adopt(qwd_req_t *q, qwd_store_t *store, qwd_row_t *row, json_t *session)
{
    json_t *status;
    const char *helper_id = json_string_value(json_object_get(session, "id"));
    if (qwd_helper_call(q, QWD_OP_STATUS, json_pack("{s:s}", "id", helper_id), &status)) {
        return NULL; /* gone meanwhile: the sweep takes the row */
    }
    row->helper_id = helper_id;
    row->link_key = qwd_link_key(q, qwd_link_capability(q, row->id));
    row->token = json_string_value(json_object_get(status, "token"));
    row->state = json_string_value(json_object_get(status, "state"));
    row->boot = json_string_value(json_object_get(status, "boot"));
    if (json_is_integer(json_object_get(status, "expires"))) {
        row->expires = json_integer_value(json_object_get(status, "expires"));
    }
    if (!row->token || !row->state) {
        return NULL;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r,
                  QWDLOGNO(00515) "session %s of %s: recorded its VM %s, started by a create "
                                  "that did not finish",
                  row->id, row->owner, helper_id);
    return qwd_store_mark_started(store, row);
}

static apr_hash_t *sessions_by_ref(qwd_req_t *q, json_t *list)
{
    apr_hash_t *by_ref = apr_hash_make(q->r->pool);
    json_t *session;
    size_t i;
    json_array_foreach (json_object_get(list, "sessions"), i, session) {
        const char *ref = json_string_value(json_object_get(session, "ref"));
        if (ref) {
            apr_hash_set(by_ref, ref, APR_HASH_KEY_STRING, session);
        }
    }
    return by_ref;
}

/* Brings rows in line with the helper's live sessions, as op answers them: QWD_OP_LIST, or
 * QWD_OP_MONITOR (the same answer and more); *answer (when asked for) is that answer. */
static qwd_error_t *reconcile(qwd_req_t *q, qwd_store_t *store, apr_array_header_t *rows,
                              int *helper_down, const char *op, json_t **answer)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    apr_hash_t *live = apr_hash_make(q->r->pool), *by_ref = NULL;
    json_t *result, *session;
    qwd_error_t *e;
    size_t i;
    int n;

    /* Without tickets the links carry websockify's token, which only the helper knows: the
     * full list has it. With tickets the brief one is enough (and ~9 times smaller). */
    int brief = qwd_links_use_tickets(q);
    e = qwd_helper_call(q, op, json_pack("{s:b}", "brief", brief), &result);
    if (e && strcmp(op, QWD_OP_LIST) && e->status != HTTP_SERVICE_UNAVAILABLE) {
        /* a helper older than op (unknown_op), or op's answer over the protocol's bound
         * (internal): the list alone, whose caller asks for the rest on its own */
        e = qwd_helper_call(q, QWD_OP_LIST, json_pack("{s:b}", "brief", brief), &result);
    }
    if (e) {
        if (e->status == HTTP_SERVICE_UNAVAILABLE) {
            *helper_down = 1;
            return NULL;
        }
        return e;
    }
    json_array_foreach (json_object_get(result, "sessions"), i, session) {
        const char *id = json_string_value(json_object_get(session, "id"));
        if (id) {
            apr_hash_set(live, id, APR_HASH_KEY_STRING, session);
        }
    }
    for (n = 0; n < rows->nelts; n++) {
        qwd_row_t *row = APR_ARRAY_IDX(rows, n, qwd_row_t *);
        if (!qwd_session_is_live(row)) {
            continue;
        }
        if (!row->helper_id) {
            /* pending: its create is in progress, or its worker died (adopted here if the
             * helper has its VM, else the sweep takes it) */
            if (row->created < now - PENDING_ADOPT_AFTER_S) {
                if (!by_ref) {
                    by_ref = sessions_by_ref(q, result);
                }
                session = apr_hash_get(by_ref, row->id, APR_HASH_KEY_STRING);
                if (session && (e = adopt(q, store, row, session))) {
                    return e;
                }
            }
            continue;
        }
        session = apr_hash_get(live, row->helper_id, APR_HASH_KEY_STRING);
        if (session) {
            const char *boot = json_string_value(json_object_get(session, "boot"));
            const char *state = json_string_value(json_object_get(session, "state"));
            const char *queued = json_string_value(json_object_get(session, "queued_reason"));
            const char *node = json_string_value(json_object_get(session, "node"));
            const char *backend = json_string_value(json_object_get(session, "backend"));
            json_t *expires = json_object_get(session, "expires");
            if (state && strcmp(state, row->state) && strcmp(state, QWD_STATE_ENDED)) {
                if ((e = qwd_store_set_state(store, row->id, state))) {
                    return e;
                }
                row->state = apr_pstrdup(q->r->pool, state);
            }
            /* a batch job's lifetime counts from its start, which the queue may delay; an
             * extension since (qwdctl extend, another child's extend) moves it too */
            if (json_is_integer(expires) && json_integer_value(expires) != row->expires
                && json_integer_value(expires) > 0) {
                if ((e = qwd_store_set_expires(store, row->id, json_integer_value(expires)))) {
                    return e;
                }
                row->expires = json_integer_value(expires);
            }
            row->boot = boot ? apr_pstrdup(q->r->pool, boot) : NULL;
            /* who watches, when nobody's watching stops it, a one-shot link used up */
            row->viewers = json_object_get(session, "viewers");
            row->idle_stop_at = json_integer_value(json_object_get(session, "idle_stop_at"));
            row->opened = row->oneshot && json_is_true(json_object_get(session, "opened"));
            row->queued_reason = queued ? apr_pstrdup(q->r->pool, queued) : NULL;
            row->node = node ? apr_pstrdup(q->r->pool, node) : NULL;
            row->backend = backend ? apr_pstrdup(q->r->pool, backend) : NULL;
            if (!brief) {
                const char *token = json_string_value(json_object_get(session, "token"));
                row->token = token ? apr_pstrdup(q->r->pool, token) : NULL;
            }
            if (!state || strcmp(state, QWD_STATE_ENDED)) {
                continue;
            }
        }
        row->ended_reason = ended_reason(q, row->helper_id);
        if ((e = qwd_store_mark_ended(store, row->id, row->ended_reason))) {
            return e;
        }
        row->state = QWD_STATE_ENDED;
        row->ended = now;
    }
    /* what the helper decided meanwhile goes into the audit trail */
    qwd_audit_pull(q, store, json_object_get(result, "events"));
    if (answer) {
        *answer = result;
    }
    return NULL;
}

/* Deleting old rows is housekeeping, not correctness (listings already hide them): doing it
 * once a minute per process keeps a write transaction, and SQLite's single writer lock, off
 * every page and API listing. One thread per process wins the slot; the others skip. */
#define SWEEP_INTERVAL_S 60
static apr_uint32_t next_sweep_s;

static int sweep_is_due(void)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t due = apr_atomic_read32(&next_sweep_s);
    return now >= due && apr_atomic_cas32(&next_sweep_s, now + SWEEP_INTERVAL_S, due) == due;
}

static qwd_error_t *list_rows(qwd_req_t *q, qwd_store_t *store, const char *owner, int live_only,
                              apr_array_header_t **rows, int *helper_down, const char *op,
                              json_t **answer)
{
    qwd_error_t *e;
    *helper_down = 0;
    if (sweep_is_due()) {
        /* every live row first: a pending row whose VM exists is adopted, never swept */
        apr_array_header_t *all;
        if ((e = qwd_store_list_live(store, NULL, &all))
            || (e = reconcile(q, store, all, helper_down, QWD_OP_LIST, NULL))
            || (!*helper_down && (e = qwd_store_sweep(store)))) {
            return e;
        }
        qwd_audit_prune(q, store);
    }
    if ((e = live_only ? qwd_store_list_live(store, owner, rows)
                       : qwd_store_list(store, owner, rows))) {
        return e;
    }
    return reconcile(q, store, *rows, helper_down, op, answer);
}

qwd_error_t *qwd_session_list(qwd_req_t *q, qwd_store_t *store, const char *owner,
                              apr_array_header_t **rows, int *helper_down)
{
    return list_rows(q, store, owner, 0, rows, helper_down, QWD_OP_LIST, NULL);
}

qwd_error_t *qwd_session_list_live(qwd_req_t *q, qwd_store_t *store, const char *owner,
                                   apr_array_header_t **rows, int *helper_down)
{
    return list_rows(q, store, owner, 1, rows, helper_down, QWD_OP_LIST, NULL);
}

qwd_error_t *qwd_session_list_monitor(qwd_req_t *q, qwd_store_t *store, apr_array_header_t **rows,
                                      int *helper_down, json_t **answer)
{
    *answer = NULL;
    return list_rows(q, store, NULL, 0, rows, helper_down, QWD_OP_MONITOR, answer);
}

int qwd_session_may_extend(qwd_req_t *q, const qwd_row_t *row)
{
    return q->is_admin || (qwd_cfg_owner_extend(q->cfg) && !strcmp(q->user, row->owner));
}

int qwd_session_extend_room(qwd_req_t *q, const qwd_row_t *row)
{
    apr_int64_t room = row->created + qwd_cfg_max_lifetime(q->cfg) - row->expires;
    return room > 0 ? (int)room : 0;
}

qwd_error_t *qwd_session_extend(qwd_req_t *q, qwd_store_t *store, qwd_row_t *row, int seconds)
{
    json_t *extended, *expires;
    qwd_error_t *e;
    int room = qwd_session_extend_room(q, row);
    if (!qwd_session_may_extend(q, row)) {
        return qwd_err(q, HTTP_FORBIDDEN, QWDLOGNO(03804), "forbidden",
                       "Only an administrator may extend this session.");
    }
    if (!qwd_session_is_live(row) || !row->helper_id) {
        return qwd_err(q, HTTP_CONFLICT, QWDLOGNO(03805), "not_live",
                       "This session is not running.");
    }
    if (seconds < 1 || seconds > room) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(03806), "bad_field",
                    "seconds must be between 1 and %d: a session lives at most %d s "
                    "(QwdMaxLifetime).",
                    room, qwd_cfg_max_lifetime(q->cfg));
        e->field = "seconds";
        return e;
    }
    if ((e = qwd_helper_call(q, QWD_OP_EXTEND,
                             json_pack("{s:s, s:i, s:s, s:b}", "id", row->helper_id, "seconds",
                                       seconds, "by", q->user, "audited", 1),
                             &extended))) {
        return e;
    }
    expires = json_object_get(extended, "expires");
    row->expires = json_is_integer(expires) ? json_integer_value(expires) : row->expires + seconds;
    if ((e = qwd_store_set_expires(store, row->id, row->expires))) {
        return e;
    }
    qwd_audit_record(
        q, store, QWD_AUDIT_EXTENDED, row->id, row->owner, q->user, role_of(q, row->owner),
        apr_psprintf(q->r->pool, "+%d s, until %" APR_INT64_T_FMT, seconds, row->expires));
    return NULL;
}
