/* SPDX-License-Identifier: Apache-2.0 */
/* One function per op. Arguments are checked here against the configured bounds, before any
 * work; errors carry the stable codes of qwd_protocol.h. An op never sends: it fills the answer
 * its connection then writes, now or when the sessions it waits for are there. */
#include "helper_ops.h"
#include "helper_config.h"
#include "helper_fs.h"
#include "helper_gpu.h"
#include "helper_journal.h"
#include "helper_load.h"
#include "helper_log.h"
#include "helper_machines.h"
#include "helper_metrics.h"
#include "helper_scripts.h"
#include "helper_session.h"
#include "helper_shares.h"
#include "helper_events.h"
#include "helper_usage.h"
#include "helper_warm.h"
#include "qwd_argv.h"
#include "qwd_guest_script.h"
#include "qwd_machine_name.h"
#include "qwd_metrics.h"
#include "qwd_protocol.h"
#include "qwd_token.h"

#include <apr_strings.h>
#include <string.h>

#define BYTES_PER_MIB (1024.0 * 1024.0)
/* A start's requested_at further back than this is not believed (the latency is then counted
 * from the helper's own receipt). */
#define REQUESTED_AT_WINDOW_S 3600

typedef struct op_call {
    helper *h;
    apr_pool_t *ptemp;
    apr_pool_t *wait_pool;
    const helper_peer *peer;
    json_t *arguments;
    json_t *id;
    helper_answer *answer;
} op_call;

typedef enum {
    WAIT_STOP,   /* the one session ended: its object */
    WAIT_PURGE,  /* all ended: {"stopped": N} */
    WAIT_START,  /* the one session's VM was launched: its object, or start_failed */
    WAIT_EXTEND, /* the one session's place answered its extend: its object, or extend_failed */
} wait_kind;

struct helper_wait {
    apr_pool_t *pool; /* the wait's own: a connection may live as long as the helper */
    wait_kind kind;
    apr_array_header_t *sessions; /* helper_session *, each held until the reply */
    json_t *id;
};

/* The error of an extend its session's place refused (problem: why). */
static json_t *extend_failed(const char *problem, json_t *id)
{
    return qwd_proto_error(QWD_ERR_EXTEND_FAILED, problem, json_pack("{s:s}", "reason", problem),
                           id);
}

static void reply(op_call *call, json_t *result)
{
    call->answer->message = qwd_proto_reply(result, call->id);
}

static void fail(op_call *call, const char *code, const char *message, json_t *extra)
{
    call->answer->message = qwd_proto_error(code, message, extra, call->id);
}

/* The reply waits for sessions (each held until then). */
static void wait_for(op_call *call, wait_kind kind, apr_array_header_t *sessions)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, call->wait_pool);
    helper_wait *w = apr_pcalloc(pool, sizeof *w);
    w->pool = pool;
    w->kind = kind;
    w->sessions = apr_array_copy(pool, sessions);
    w->id = json_incref(call->id);
    for (int i = 0; i < w->sessions->nelts; i++) {
        helper_session_hold(APR_ARRAY_IDX(w->sessions, i, helper_session *));
    }
    call->answer->wait = w;
}

static void wait_for_one(op_call *call, wait_kind kind, helper_session *s)
{
    apr_array_header_t *sessions = apr_array_make(call->ptemp, 1, sizeof(helper_session *));
    APR_ARRAY_PUSH(sessions, helper_session *) = s;
    wait_for(call, kind, sessions);
}

int helper_wait_over(const helper_wait *w)
{
    const char *problem;
    for (int i = 0; i < w->sessions->nelts; i++) {
        helper_session *s = APR_ARRAY_IDX(w->sessions, i, helper_session *);
        if (w->kind == WAIT_START    ? !helper_session_launched(s, &problem)
            : w->kind == WAIT_EXTEND ? !helper_session_extended(s, &problem)
                                     : !helper_session_ended(s)) {
            return 0;
        }
    }
    return 1;
}

void helper_wait_abandon(helper_wait *w)
{
    for (int i = 0; i < w->sessions->nelts; i++) {
        helper_session_release(APR_ARRAY_IDX(w->sessions, i, helper_session *));
    }
    json_decref(w->id);
    apr_pool_destroy(w->pool);
}

json_t *helper_wait_reply(helper_wait *w)
{
    json_t *message;
    const char *problem;
    helper_session *first =
        w->sessions->nelts ? APR_ARRAY_IDX(w->sessions, 0, helper_session *) : NULL;
    if (w->kind == WAIT_PURGE) {
        message = qwd_proto_reply(json_pack("{s:i}", "stopped", w->sessions->nelts), w->id);
    }
    else if (w->kind == WAIT_START && helper_session_launched(first, &problem) < 0) {
        message = qwd_proto_error(QWD_ERR_START_FAILED, problem,
                                  json_pack("{s:s}", "reason", problem), w->id);
    }
    else if (w->kind == WAIT_EXTEND && helper_session_extended(first, &problem) < 0) {
        message = extend_failed(problem, w->id);
    }
    else {
        message = qwd_proto_reply(helper_session_json(first), w->id);
    }
    helper_wait_abandon(w);
    return message;
}

static void bad_argument(op_call *call, const char *field, const char *message, int min, int max)
{
    json_t *extra = json_pack("{s:s}", "field", field);
    if (min <= max) {
        json_object_set_new(extra, "min", json_integer(min));
        json_object_set_new(extra, "max", json_integer(max));
    }
    fail(call, QWD_ERR_BAD_ARGUMENT, message, extra);
}

/* Reads the integer argument name (absent → fallback) within [min, max]. Returns 0, or -1
 * after answering bad_argument. */
static int int_argument(op_call *call, const char *name, int fallback, int min, int max, int *value)
{
    json_t *field = json_object_get(call->arguments, name);
    if (!field || json_is_null(field)) {
        *value = fallback;
        return 0;
    }
    if (!json_is_integer(field) || json_integer_value(field) < min
        || json_integer_value(field) > max) {
        bad_argument(
            call, name,
            apr_psprintf(call->ptemp, "%s must be an integer from %d to %d", name, min, max), min,
            max);
        return -1;
    }
    *value = (int)json_integer_value(field);
    return 0;
}

/* Reads the string argument name (absent → fallback; fallback NULL means required). */
static int string_argument(op_call *call, const char *name, const char *fallback,
                           const char **value)
{
    json_t *field = json_object_get(call->arguments, name);
    if ((!field || json_is_null(field)) && fallback) {
        *value = fallback;
        return 0;
    }
    if (!json_is_string(field)) {
        bad_argument(call, name,
                     apr_psprintf(call->ptemp, "%s is required and must be a string", name), 1, 0);
        return -1;
    }
    *value = json_string_value(field);
    return 0;
}

static void op_hello(op_call *call)
{
    json_t *version = json_object_get(call->arguments, "version");
    if (!json_is_integer(version) || json_integer_value(version) != QWD_PROTO_VERSION) {
        fail(call, QWD_ERR_BAD_VERSION,
             apr_psprintf(call->ptemp, "this helper speaks protocol version %d", QWD_PROTO_VERSION),
             json_pack("{s:[i]}", "supported", QWD_PROTO_VERSION));
        call->answer->close_after = 1;
        return;
    }
    call->answer->said_hello = 1;
    reply(call,
          json_pack("{s:i, s:s}", "version", QWD_PROTO_VERSION, "server", HELPER_VERSION_STRING));
}

/* Refuses a start that would exceed a helper-wide limit. Returns 0 when it fits. A remote
 * session (a cluster node's) counts only against max_sessions: the scheduler decides what fits
 * on its nodes. */
static int check_limits(op_call *call, int cpu, int memory_mib, int remote)
{
    helper_config *config = call->h->config;
    int sessions, vcpus, memory;
    helper_sessions_usage(call->h, &sessions, &vcpus, &memory);
    const char *limit = NULL;
    const char *message = NULL;
    host_load load;
    if (sessions + 1 > config->max_sessions) {
        limit = "max_sessions";
        message = apr_psprintf(call->ptemp, "%d sessions run already (max_sessions)", sessions);
    }
    else if (remote) {
        /* the cluster's business */
    }
    else if (vcpus + cpu > config->max_vcpus) {
        limit = "max_vcpus";
        message = apr_psprintf(call->ptemp, "%d vCPUs are in use, %d more exceed max_vcpus %d",
                               vcpus, cpu, config->max_vcpus);
    }
    else if (memory + memory_mib > config->max_memory_mib) {
        limit = "max_memory_mib";
        message = apr_psprintf(call->ptemp,
                               "%d MiB are in use, %d more exceed max_memory_mib "
                               "%d",
                               memory, memory_mib, config->max_memory_mib);
    }
    else if (config->max_load > 0 && (helper_load_read(&load), load.load1 > config->max_load)) {
        limit = "max_load";
        message = apr_psprintf(call->ptemp, "the load %.2f exceeds max_load %.2f", load.load1,
                               config->max_load);
    }
    if (!limit) {
        return 0;
    }
    helper_metrics_refused(call->h, limit);
    fail(call, QWD_ERR_LIMIT_REACHED, message, json_pack("{s:s}", "limit", limit));
    return -1;
}

static apr_array_header_t *scan_machines(op_call *call)
{
    return helper_machines_scan(call->ptemp, call->h->config->machines_dir, &call->h->host);
}

/* Refuses a start or a warm build that would leave the state directory less than
 * min_free_mib free, need_mib more taken (a VM's overlay grows from almost nothing: 0; a warm
 * image: its memory). Returns 0 when there is room. */
static int check_space(op_call *call, const char *what, int need_mib)
{
    const helper_config *config = call->h->config;
    long free_mib = helper_fs_free_mib(config->state_dir);
    long needed_mib = (long)config->min_free_mib + need_mib;
    if (free_mib < 0 || free_mib >= needed_mib) {
        return 0;
    }
    helper_log_warn(QWDLOGNO(05900) "refusing a %s: %s has %ld MiB free, %ld needed (min_free_mib)",
                    what, config->state_dir, free_mib, needed_mib);
    fail(call, QWD_ERR_NO_SPACE,
         apr_psprintf(call->ptemp,
                      "the state directory has %ld MiB free, less than the %ld MiB needed "
                      "(min_free_mib)",
                      free_mib, needed_mib),
         json_pack("{s:I, s:I}", "free_mib", (json_int_t)free_mib, "needed_mib",
                   (json_int_t)needed_mib));
    return -1;
}

/* Who asks, for the journal: the "by" argument (≤ QWD_PROTO_BY_MAX characters), else the
 * peer's uid ("uid:1000"); *audited is the "audited" argument. Returns NULL after answering
 * bad_argument. */
static const char *asked_by(op_call *call, int *audited)
{
    json_t *by = json_object_get(call->arguments, "by");
    json_t *flag = json_object_get(call->arguments, "audited");
    if ((by && !json_is_null(by)
         && (!json_is_string(by) || !*json_string_value(by)
             || strlen(json_string_value(by)) > QWD_PROTO_BY_MAX))
        || (flag && !json_is_boolean(flag))) {
        bad_argument(call,
                     by && !json_is_string(by)        ? "by"
                     : flag && !json_is_boolean(flag) ? "audited"
                                                      : "by",
                     apr_psprintf(call->ptemp,
                                  "by must be 1 to %d characters and audited true or false",
                                  QWD_PROTO_BY_MAX),
                     1, 0);
        return NULL;
    }
    *audited = json_is_true(flag);
    return json_is_string(by) ? json_string_value(by)
                              : apr_psprintf(call->ptemp, "uid:%d", (int)call->peer->uid);
}

/* The listed machine called name that can be started, or NULL after answering the error. */
static const helper_machine *machine_named(op_call *call, const char *name)
{
    const char *problem = qwd_machine_name_problem(name);
    const helper_machine *machine =
        problem ? NULL : helper_machines_find(scan_machines(call), name);
    if (!machine) {
        fail(call, QWD_ERR_UNKNOWN_MACHINE,
             apr_psprintf(call->ptemp, "no machine \"%s\"%s%s", name, problem ? ": " : "",
                          problem ? problem : ""),
             NULL);
        return NULL;
    }
    if (machine->problem) {
        const char *message = apr_psprintf(call->ptemp, "machine \"%s\" cannot be started: %s",
                                           name, machine->problem);
        helper_log_warn(QWDLOGNO(05502) "%s", message);
        fail(call, QWD_ERR_UNUSABLE_MACHINE, message,
             json_pack("{s:s}", "reason", machine->problem));
        return NULL;
    }
    return machine;
}

/* Whether video is one QEMU accepts for guests of arch; else answers bad_argument. */
static int video_is_valid(op_call *call, const char *arch, const char *video)
{
    if (!qwd_argv_video_is_valid(video)) {
        bad_argument(call, "video", "video must be std, virtio, qxl or cirrus", 1, 0);
        return 0;
    }
    if (!qwd_argv_video_is_valid_for(arch, video)) {
        bad_argument(call, "video",
                     apr_psprintf(call->ptemp, "video must be std or virtio for %s guests", arch),
                     1, 0);
        return 0;
    }
    return 1;
}

/* The profile arguments of warm and warm_drop for a machine of arch: cpu, memory_mib, video. */
static int profile_arguments(op_call *call, const char *arch, int *cpu, int *memory_mib,
                             const char **video)
{
    helper_config *config = call->h->config;
    if (int_argument(call, "cpu", config->default_cpu, 1, config->max_cpu, cpu)
        || int_argument(call, "memory_mib", config->default_memory_mib, QWD_PROTO_MIN_MEMORY_MIB,
                        config->max_session_memory_mib, memory_mib)
        || string_argument(call, "video", qwd_argv_default_video(arch), video)) {
        return -1;
    }
    return video_is_valid(call, arch, *video) ? 0 : -1;
}

/* A start that names no video gets the default of its machine's arch. */
static const char video_unset[1];
/* A bad_argument naming a share (field "shares", "share": its name). */
static void bad_share(op_call *call, const char *name, const char *message)
{
    json_t *extra = json_pack("{s:s, s:s}", "field", "shares", "share", name);
    fail(call, QWD_ERR_BAD_ARGUMENT, message, extra);
}

/* The optional shares a start names ("shares"), as a set of names; -1 after answering. */
static int chosen_shares(op_call *call, const apr_array_header_t *of_machine, apr_hash_t **chosen)
{
    json_t *names = json_object_get(call->arguments, "shares");
    *chosen = apr_hash_make(call->ptemp);
    if (!names || json_is_null(names)) {
        return 0;
    }
    if (!json_is_array(names) || json_array_size(names) > QWD_PROTO_SHARES_MAX) {
        bad_argument(call, "shares",
                     apr_psprintf(call->ptemp, "shares must be a list of up to %d share names",
                                  QWD_PROTO_SHARES_MAX),
                     1, 0);
        return -1;
    }
    size_t i;
    json_t *name;
    json_array_foreach (names, i, name) {
        const char *text = json_string_value(name);
        int offered = 0;
        for (int k = 0; text && k < of_machine->nelts; k++) {
            const helper_share *share = APR_ARRAY_IDX(of_machine, k, const helper_share *);
            offered |= share->optional && !strcmp(share->name, text);
        }
        if (!offered) {
            bad_share(call, text ? text : "",
                      apr_psprintf(call->ptemp,
                                   "share \"%s\" is not an optional share of this "
                                   "machine",
                                   text ? text : "(not a string)"));
            return -1;
        }
        apr_hash_set(*chosen, text, APR_HASH_KEY_STRING, text);
    }
    return 0;
}

/* The host folders of a start: every share of the machine that is not optional, and the
 * optional ones it chose, get their folder for owner (or a bad_argument naming the share, and
 * -1); the others keep the empty directory. Fills the request's profile, its share names and
 * the guest's mounts. */
static int resolve_shares(op_call *call, helper_start_request *request, qwd_guest_mount **mounts,
                          int *mount_count)
{
    helper *h = call->h;
    apr_array_header_t *of_machine =
        helper_shares_of(call->ptemp, h->config->shares, request->profile.machine);
    apr_hash_t *chosen;
    if (chosen_shares(call, of_machine, &chosen)) {
        return -1;
    }
    qwd_vm_share *devices =
        (qwd_vm_share *)helper_shares_devices(call->ptemp, of_machine, h->empty_dir);
    request->profile.shares = devices;
    request->profile.share_count = of_machine->nelts;
    request->shares = apr_array_make(call->ptemp, of_machine->nelts, sizeof(const char *));
    *mounts = apr_pcalloc(call->ptemp, sizeof **mounts * (apr_size_t)(of_machine->nelts + 1));
    *mount_count = 0;
    for (int i = 0; i < of_machine->nelts; i++) {
        const helper_share *share = APR_ARRAY_IDX(of_machine, i, const helper_share *);
        if (share->optional && !apr_hash_get(chosen, share->name, APR_HASH_KEY_STRING)) {
            continue;
        }
        const char *problem, *detail;
        const char *folder = helper_share_folder(call->ptemp, share, h->config->share_root,
                                                 request->owner, request->id, &problem, &detail);
        if (!folder) {
            helper_log_info(QWDLOGNO(05403) "start for %s refused: share %s: %s", request->owner,
                            share->name, detail ? detail : problem);
            bad_share(call, share->name, problem);
            return -1;
        }
        devices[i].path = folder;
        APR_ARRAY_PUSH(request->shares, const char *) = share->name;
        (*mounts)[(*mount_count)++] =
            (qwd_guest_mount){share->tag, share->mount_point, share->readonly};
    }
    return 0;
}

/* The start-up script a start names ("script": an admin script; "script_text": its own, when
 * the client allows its users that), or NULL in *text. -1 after answering. */
static int start_script(op_call *call, const char **text, const char **label)
{
    json_t *name = json_object_get(call->arguments, "script");
    json_t *own = json_object_get(call->arguments, "script_text");
    *text = *label = NULL;
    if (name && !json_is_null(name) && own && !json_is_null(own)) {
        bad_argument(call, "script_text", "give script or script_text, not both", 1, 0);
        return -1;
    }
    if (name && !json_is_null(name)) {
        const char *problem;
        if (!json_is_string(name) || strlen(json_string_value(name)) > QWD_PROTO_SCRIPT_NAME_MAX
            || !(*text = helper_script_text(call->ptemp, call->h->config->scripts_dir,
                                            json_string_value(name), &problem))) {
            bad_argument(call, "script",
                         json_is_string(name)
                                 && strlen(json_string_value(name)) <= QWD_PROTO_SCRIPT_NAME_MAX
                             ? problem
                             : "script must name one of the machines list's scripts",
                         1, 0);
            return -1;
        }
        *label = json_string_value(name);
        return 0;
    }
    if (own && !json_is_null(own)) {
        if (!json_is_string(own) || json_string_length(own) > QWD_PROTO_SCRIPT_TEXT_MAX
            || strlen(json_string_value(own)) != json_string_length(own)) {
            bad_argument(call, "script_text",
                         apr_psprintf(call->ptemp, "script_text must be text of at most %d bytes",
                                      QWD_PROTO_SCRIPT_TEXT_MAX),
                         0, QWD_PROTO_SCRIPT_TEXT_MAX);
            return -1;
        }
        *text = json_string_value(own);
        *label = "(text)";
    }
    return 0;
}

/* An ISO session's scratch disk ("scratch_gib"), and "gpu": the device to pass through. */
static int start_devices(op_call *call, const helper_machine *machine,
                         helper_start_request *request)
{
    helper_config *config = call->h->config;
    json_t *scratch = json_object_get(call->arguments, "scratch_gib");
    if (scratch && !json_is_null(scratch)) {
        int gib;
        if (strcmp(machine->format, "iso")) {
            bad_argument(call, "scratch_gib", "only ISO machines have a scratch disk", 1, 0);
            return -1;
        }
        if (int_argument(call, "scratch_gib", 0, QWD_PROTO_MIN_SCRATCH_GIB, config->max_scratch_gib,
                         &gib)) {
            return -1;
        }
        request->extras.scratch_size = apr_psprintf(call->ptemp, "%dG", gib);
    }
    json_t *gpu = json_object_get(call->arguments, "gpu");
    if (gpu && !json_is_boolean(gpu) && !json_is_null(gpu)) {
        bad_argument(call, "gpu", "gpu must be true or false", 1, 0);
        return -1;
    }
    if (!json_is_true(gpu)) {
        return 0;
    }
    if (!machine->gpu || !helper_gpu_configured(config->gpu_devices)) {
        bad_argument(call, "gpu",
                     machine->gpu ? "this helper passes no GPU through (gpu_devices)"
                                  : "this machine is not offered with a GPU",
                     1, 0);
        return -1;
    }
    apr_array_header_t *devices;
    if (helper_gpu_pick(call->ptemp, config->gpu_devices, config->sysfs_root,
                        helper_sessions_gpus_in_use(call->h, call->ptemp), &devices)) {
        fail(call, QWD_ERR_LIMIT_REACHED, "no GPU is free",
             json_pack("{s:s}", "limit", QWD_LIMIT_GPU));
        return -1;
    }
    request->extras.gpu = (const char *const *)devices->elts;
    request->extras.gpu_count = devices->nelts;
    return 0;
}

/* A session on a cluster node gets none of the web host's data-analysis extras: the node has
 * no host folder of the web host (no shared file system is assumed), no GPU of its list, and
 * its qwd-node builds the VM without a seed or a scratch disk. -1 after answering. */
static int remote_refuses_extras(op_call *call, const helper_backend *backend,
                                 const helper_start_request *request, int mount_count,
                                 const char *script)
{
    const char *field = !backend->remote               ? NULL
                        : mount_count                  ? "shares"
                        : request->extras.gpu_count    ? "gpu"
                        : script                       ? "script"
                        : request->extras.scratch_size ? "scratch_gib"
                                                       : NULL;
    if (!field) {
        return 0;
    }
    bad_argument(call, field,
                 apr_psprintf(call->ptemp,
                              "%s: not available to sessions on the cluster (backend %s)", field,
                              backend->name),
                 1, 0);
    return -1;
}

/* The backend of a start of machine: its "backend" argument, else the configuration's choice
 * for the machine (backend, slurm_machines). NULL after answering the error. */
static const helper_backend *start_backend(op_call *call, const char *machine)
{
    const char *name;
    if (string_argument(call, "backend", "", &name)) {
        return NULL;
    }
    if (!*name) {
        name = helper_config_machine_on_slurm(call->h->config, machine) ? QWD_BACKEND_SLURM
                                                                        : QWD_BACKEND_LOCAL;
    }
    const helper_backend *backend = helper_sessions_backend(call->h, name);
    if (!backend) {
        bad_argument(
            call, "backend",
            apr_psprintf(call->ptemp, "backend \"%s\" is not available on this helper (local%s)",
                         name,
                         helper_sessions_backend(call->h, QWD_BACKEND_SLURM) ? ", slurm" : ""),
            1, 0);
    }
    return backend;
}

/* The reply waits until the VM is launched (qemu-img done, QEMU spawned): the session object
 * then says its pid. A client's own name for the session ("ref", mod_qwd: its row id) lets a
 * client that lost the answer find the VM again. */
static void op_start(op_call *call)
{
    helper_config *config = call->h->config;
    const char *machine_name, *video;
    int cpu, memory_mib;
    helper_start_request request = {0};
    json_t *oneshot = json_object_get(call->arguments, "oneshot");
    if (string_argument(call, "machine", NULL, &machine_name)
        || string_argument(call, "owner", NULL, &request.owner)
        || string_argument(call, "video", video_unset, &video)
        || int_argument(call, "cpu", config->default_cpu, 1, config->max_cpu, &cpu)
        || int_argument(call, "memory_mib", config->default_memory_mib, QWD_PROTO_MIN_MEMORY_MIB,
                        config->max_session_memory_mib, &memory_mib)
        || int_argument(call, "lifetime_s", config->default_lifetime, 1, config->max_lifetime,
                        &request.lifetime_s)
        || int_argument(call, "idle_stop_s", 0, 0, config->max_lifetime, &request.idle_stop_s)) {
        return;
    }
    if (!*request.owner || strlen(request.owner) > QWD_PROTO_OWNER_MAX) {
        bad_argument(
            call, "owner",
            apr_psprintf(call->ptemp, "owner must be 1 to %d characters", QWD_PROTO_OWNER_MAX), 1,
            0);
        return;
    }
    if (oneshot && !json_is_boolean(oneshot)) {
        bad_argument(call, "oneshot", "oneshot must be true or false", 1, 0);
        return;
    }
    if (string_argument(call, "ref", "", &request.ref)) {
        return;
    }
    if (strlen(request.ref) > QWD_PROTO_REF_MAX
        || strspn(request.ref, QWD_PROTO_REF_CHARS) != strlen(request.ref)) {
        bad_argument(call, "ref",
                     apr_psprintf(call->ptemp,
                                  "ref must be up to %d letters, digits, '.', '_', ':' or '-'",
                                  QWD_PROTO_REF_MAX),
                     1, 0);
        return;
    }
    request.oneshot = json_is_true(oneshot);
    if (!(request.by = asked_by(call, &request.audited))) {
        return;
    }
    /* when the client was asked (its POST), for the start latency: ignored unless it is
     * within the last hour (a client's clock is the helper's: same host) */
    json_t *requested_at = json_object_get(call->arguments, "requested_at");
    if (requested_at && !json_is_null(requested_at) && !json_is_number(requested_at)) {
        bad_argument(call, "requested_at", "requested_at must be Unix seconds", 1, 0);
        return;
    }
    apr_time_t asked =
        apr_time_from_sec(0) + (apr_time_t)(json_number_value(requested_at) * APR_USEC_PER_SEC);
    apr_time_t now = apr_time_now();
    if (asked <= now && asked > now - apr_time_from_sec(REQUESTED_AT_WINDOW_S)) {
        request.requested_at = asked;
    }
    const helper_machine *machine = machine_named(call, machine_name);
    if (!machine || check_space(call, "start", 0)) {
        return;
    }
    /* no video: the one of the machine's arch */
    video = video != video_unset ? video : qwd_argv_default_video(machine->arch);
    if (!video_is_valid(call, machine->arch, video)) {
        return;
    }
    if (!json_object_get(call->arguments, "video") && machine->videos
        && !helper_machine_allows_video(call->ptemp, machine, video)) {
        video = helper_machine_first_video(call->ptemp, machine); /* its default, then */
    }
    if (!helper_machine_allows_video(call->ptemp, machine, video)) {
        bad_argument(
            call, "video",
            apr_psprintf(call->ptemp, "this machine offers the video cards %s", machine->videos), 1,
            0);
        return;
    }
    const char *script, *problem;
    char *id;
    const helper_backend *backend = start_backend(call, machine_name);
    if (!backend || start_script(call, &script, &request.script)
        || check_limits(call, cpu, memory_mib, backend->remote)) {
        return;
    }
    request.backend = backend->name;
    if (qwd_session_id_new(call->ptemp, &id) != APR_SUCCESS) {
        fail(call, QWD_ERR_INTERNAL, "no random bytes for the session id", NULL);
        return;
    }
    request.id = id;
    request.profile = helper_machine_profile(machine, cpu, memory_mib, video);
    qwd_guest_mount *mounts;
    int mount_count;
    if (resolve_shares(call, &request, &mounts, &mount_count)
        || start_devices(call, machine, &request)
        || remote_refuses_extras(call, backend, &request, mount_count, script)) {
        return;
    }
    qwd_script_values values = {request.owner, id, machine->name};
    request.extras.guest_script = qwd_guest_script(
        call->ptemp, mounts, mount_count,
        script ? qwd_script_substitute(call->ptemp, script, &values) : NULL, &values);
    helper_session *s = helper_session_start(call->h, call->ptemp, &request, &problem);
    if (!s) {
        fail(call, QWD_ERR_START_FAILED, problem, json_pack("{s:s}", "reason", problem));
        return;
    }
    wait_for_one(call, WAIT_START, s);
}

/* The session named by the "id" argument, or NULL after answering the error. */
static helper_session *session_argument(op_call *call)
{
    const char *id;
    if (string_argument(call, "id", NULL, &id)) {
        return NULL;
    }
    helper_session *s = helper_session_find(call->h, id);
    if (!s) {
        fail(call, QWD_ERR_NOT_FOUND, apr_psprintf(call->ptemp, "no session \"%s\"", id), NULL);
    }
    return s;
}

static void op_stop(op_call *call)
{
    helper_session *s = session_argument(call);
    int audited;
    const char *by = s ? asked_by(call, &audited) : NULL;
    if (!by) {
        return;
    }
    helper_session_stop_by(s, QWD_END_STOPPED, by, audited);
    wait_for_one(call, WAIT_STOP, s);
}

/* A share of a live session: its id, its token (websockify's way to the share's own way in to
 * the relay), its kind and expiry. */
static void op_share(op_call *call)
{
    const char *kind, *code, *problem;
    json_t *expires = json_object_get(call->arguments, "expires");
    helper_session *s = session_argument(call);
    if (!s || string_argument(call, "kind", NULL, &kind)) {
        return;
    }
    if (strcmp(kind, QWD_VIEWER_VIEW) && strcmp(kind, QWD_VIEWER_CONTROL)) {
        bad_argument(call, "kind", "kind must be " QWD_VIEWER_VIEW " or " QWD_VIEWER_CONTROL, 1, 0);
        return;
    }
    apr_int64_t now = apr_time_sec(apr_time_now());
    if (expires && !json_is_null(expires)
        && (!json_is_integer(expires) || json_integer_value(expires) <= now)) {
        bad_argument(call, "expires", "expires must be a time to come (Unix seconds), or null", 1,
                     0);
        return;
    }
    apr_time_t until =
        json_is_integer(expires) ? apr_time_from_sec(json_integer_value(expires)) : 0;
    json_t *share = helper_session_share(s, call->ptemp, kind, until, &code, &problem);
    if (!share) {
        fail(call, code, problem,
             !strcmp(code, QWD_ERR_LIMIT_REACHED) ? json_pack("{s:s}", "limit", "viewer_shares")
                                                  : NULL);
        return;
    }
    reply(call, share);
}

static void op_unshare(op_call *call)
{
    const char *share;
    helper_session *s = session_argument(call);
    if (!s || string_argument(call, "share", NULL, &share)) {
        return;
    }
    int closed = helper_session_unshare(s, share);
    if (closed < 0) {
        fail(call, QWD_ERR_NOT_FOUND,
             apr_psprintf(call->ptemp, "session %s has no share \"%s\"",
                          json_string_value(json_object_get(call->arguments, "id")), share),
             NULL);
        return;
    }
    reply(call, json_pack("{s:s, s:i}", "share", share, "closed", closed));
}

static void op_status(op_call *call)
{
    helper_session *s = session_argument(call);
    if (s) {
        reply(call, helper_session_json(s));
    }
}

/* The live sessions and where the journal is (list's answer), or NULL after a bad argument.
 * brief: only id, state and boot: what the module's listings reconcile their rows with, on
 * every page; ~50 bytes a session instead of ~450, so a long list stays cheap (and far under
 * the protocol's 64 KiB line). */
static json_t *sessions_json(op_call *call)
{
    json_t *brief = json_object_get(call->arguments, "brief");
    if (brief && !json_is_boolean(brief)) {
        bad_argument(call, "brief", "brief must be true or false", 1, 0);
        return NULL;
    }
    apr_array_header_t *sessions = helper_sessions_live(call->h, call->ptemp);
    json_t *list = json_array();
    for (int i = 0; i < sessions->nelts; i++) {
        helper_session *s = APR_ARRAY_IDX(sessions, i, helper_session *);
        json_array_append_new(list, json_is_true(brief) ? helper_session_brief_json(s)
                                                        : helper_session_json(s));
    }
    /* where the journal is: a reader of the events op knows whether to ask */
    return json_pack("{s:o, s:o}", "sessions", list, "events", helper_journal_position(call->h));
}

static void op_list(op_call *call)
{
    json_t *answer = sessions_json(call);
    if (answer) {
        reply(call, answer);
    }
}

static void op_purge(op_call *call)
{
    int audited;
    const char *by = asked_by(call, &audited);
    if (!by) {
        return;
    }
    apr_array_header_t *sessions = helper_sessions_live(call->h, call->ptemp);
    for (int i = 0; i < sessions->nelts; i++) {
        helper_session_stop_by(APR_ARRAY_IDX(sessions, i, helper_session *), QWD_END_PURGED, by,
                               audited);
    }
    wait_for(call, WAIT_PURGE, sessions);
}

/* What a start of machine may choose: its video cards, a GPU, its shares. */
static void machine_choices(op_call *call, const helper_machine *machine, json_t *item)
{
    helper_config *config = call->h->config;
    json_t *videos = json_array();
    const char *const all[] = {"std", "virtio", "qxl", "cirrus"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (helper_machine_allows_video(call->ptemp, machine, all[i])) {
            json_array_append_new(videos, json_string(all[i]));
        }
    }
    json_object_set_new(item, "videos", videos);
    json_object_set_new(item, "gpu",
                        json_boolean(machine->gpu && helper_gpu_configured(config->gpu_devices)));
    json_t *shares = json_array();
    apr_array_header_t *of_machine = helper_shares_of(call->ptemp, config->shares, machine->name);
    for (int i = 0; i < of_machine->nelts; i++) {
        const helper_share *share = APR_ARRAY_IDX(of_machine, i, const helper_share *);
        json_array_append_new(shares,
                              json_pack("{s:s, s:s, s:b, s:b, s:s}", "name", share->name, "tag",
                                        share->tag, "readonly", share->readonly, "optional",
                                        share->optional, "mount", share->mount_point));
    }
    json_object_set_new(item, "shares", shares);
}

/* rescan: true (qwdctl machines fetch, after it placed an image) also drops the warm images of
 * replaced machines and builds those of new warm_at_start ones. */
static void op_machines(op_call *call)
{
    helper_config *config = call->h->config;
    json_t *rescan = json_object_get(call->arguments, "rescan");
    if (rescan && !json_is_boolean(rescan)) {
        bad_argument(call, "rescan", "rescan must be true or false", 1, 0);
        return;
    }
    if (json_is_true(rescan)) {
        helper_warm_rescan(call->h);
    }
    apr_array_header_t *machines = scan_machines(call);
    json_t *list = json_array();
    for (int i = 0; i < machines->nelts; i++) {
        const helper_machine *machine = &APR_ARRAY_IDX(machines, i, helper_machine);
        int on_slurm = helper_config_machine_on_slurm(call->h->config, machine->name)
                       && helper_sessions_backend(call->h, QWD_BACKEND_SLURM);
        json_t *item = json_pack(
            "{s:s, s:s, s:I, s:s, s:s, s:b, s:s}", "name", machine->name, "format", machine->format,
            "virtual_size", (json_int_t)machine->virtual_size, "description", machine->description,
            "arch", machine->arch, "warm", helper_warm_machine_is_warm(call->h, machine->name),
            "backend", on_slurm ? QWD_BACKEND_SLURM : QWD_BACKEND_LOCAL);
        if (machine->problem) {
            json_object_set_new(item, "problem", json_string(machine->problem));
        }
        machine_choices(call, machine, item);
        json_array_append_new(list, item);
    }
    apr_array_header_t *scripts = helper_scripts_scan(call->ptemp, config->scripts_dir);
    json_t *script_list = json_array();
    for (int i = 0; i < scripts->nelts; i++) {
        const helper_script *script = &APR_ARRAY_IDX(scripts, i, helper_script);
        json_array_append_new(script_list, json_pack("{s:s, s:s}", "name", script->name,
                                                     "description", script->description));
    }
    reply(call, json_pack("{s:o, s:o, s:i}", "machines", list, "scripts", script_list,
                          "max_scratch_gib", config->max_scratch_gib));
}

/* The machine named by the "machine" argument, or NULL after answering the error. */
static const helper_machine *machine_argument(op_call *call)
{
    const char *name;
    return string_argument(call, "machine", NULL, &name) ? NULL : machine_named(call, name);
}

/* Starts building a warm image (or finds it built); replies at once with its state. */
static void op_warm(op_call *call)
{
    int cpu, memory_mib;
    const char *video, *problem = NULL;
    const helper_machine *machine = machine_argument(call);
    if (!machine || profile_arguments(call, machine->arch, &cpu, &memory_mib, &video)
        || check_space(call, "warm build", memory_mib)) {
        return;
    }
    qwd_vm_profile profile = helper_machine_profile(machine, cpu, memory_mib, video);
    helper_shares_profile(call->ptemp, call->h->config->shares, call->h->empty_dir, &profile);
    int rebuild = json_is_true(json_object_get(call->arguments, "rebuild"));
    json_t *image = helper_warm_request(call->h, call->ptemp, &profile, rebuild, &problem);
    if (!image) {
        fail(call, QWD_ERR_START_FAILED, problem, json_pack("{s:s}", "reason", problem));
        return;
    }
    reply(call, image);
}

static void op_warm_list(op_call *call)
{
    reply(call, helper_warm_list_json(call->h));
}

/* Without machine: drops every image; with machine alone: all its profiles. */
static void op_warm_drop(op_call *call)
{
    json_t *machine = json_object_get(call->arguments, "machine");
    if (machine && !json_is_null(machine) && !json_is_string(machine)) {
        bad_argument(call, "machine", "machine must be a string", 1, 0);
        return;
    }
    int cpu = 0, memory_mib = 0;
    const char *video = NULL;
    /* the default video of a listed machine's arch; a machine no longer listed: any arch */
    const helper_machine *listed =
        json_is_string(machine)
            ? helper_machines_find(scan_machines(call), json_string_value(machine))
            : NULL;
    if (json_object_get(call->arguments, "cpu")
        && profile_arguments(call, listed ? listed->arch : NULL, &cpu, &memory_mib, &video)) {
        return;
    }
    int dropped = helper_warm_drop(call->h, json_string_value(machine), cpu, memory_mib, video);
    reply(call, json_pack("{s:i}", "dropped", dropped));
}

static json_t *load_json(op_call *call)
{
    helper_config *config = call->h->config;
    host_load load;
    int sessions, vcpus, memory;
    helper_load_read(&load);
    helper_sessions_usage(call->h, &sessions, &vcpus, &memory);
    json_t *answer = json_pack(
        "{s:i, s:f, s:f, s:f, s:I, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:f, "
        "s:s, s:s, s:b, s:s}",
        "cpus", load.cpus, "load1", load.load1, "load5", load.load5, "load15", load.load15,
        "mem_total_mib", (json_int_t)load.mem_total_mib, "mem_available_mib",
        (json_int_t)load.mem_available_mib, "sessions", sessions, "vcpus", vcpus, "memory_mib",
        memory, "max_sessions", config->max_sessions, "max_vcpus", config->max_vcpus,
        "max_memory_mib", config->max_memory_mib, "max_load", config->max_load, "accel",
        call->h->host.accel, "cpu_model", call->h->host.cpu_model, "warm_auto", config->warm_auto,
        "arch", call->h->host.arch);
    helper_metrics_viewer_totals(call->h, answer);
    return answer;
}

static void op_load(op_call *call)
{
    reply(call, load_json(call));
}

/* Warm images by state, and the disk the ready ones take. */
static void warm_gauges(helper *h, json_t *families)
{
    static const char *const states[] = {"building", "saving", "ready", "failed"};
    unsigned long long count[sizeof states / sizeof states[0]] = {0};
    double bytes = 0;
    json_t *list = helper_warm_list_json(h), *image;
    size_t i;
    json_array_foreach (json_object_get(list, "warm"), i, image) {
        const char *state = json_string_value(json_object_get(image, "state"));
        for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
            count[k] += state && !strcmp(state, states[k]);
        }
        bytes += json_number_value(json_object_get(image, "size_bytes"));
    }
    json_decref(list);
    qwd_metrics_family_by_label(families, "qwd_warm_images", QWD_METRIC_GAUGE,
                                "Warm images of the helper, by state.", "state", states, count,
                                sizeof states / sizeof states[0]);
    json_t *f = qwd_metrics_family("qwd_warm_images_bytes", QWD_METRIC_GAUGE,
                                   "Disk the ready warm images take (their allocated blocks).");
    qwd_metrics_add(f, bytes, NULL);
    json_array_append_new(families, f);
}

/* The host as the helper sees it (/proc/loadavg, /proc/meminfo). */
static void host_gauges(json_t *families)
{
    host_load load;
    helper_load_read(&load);
    struct {
        const char *name, *help;
        double value;
    } gauges[] = {
        {"qwd_host_load1", "The host's 1-minute load average.", load.load1},
        {"qwd_host_load5", "The host's 5-minute load average.", load.load5},
        {"qwd_host_load15", "The host's 15-minute load average.", load.load15},
        {"qwd_host_cpus", "The host's online CPUs.", load.cpus},
        {"qwd_host_memory_bytes", "The host's memory (MemTotal).",
         (double)load.mem_total_mib * BYTES_PER_MIB},
        {"qwd_host_memory_available_bytes", "The host's available memory (MemAvailable).",
         (double)load.mem_available_mib * BYTES_PER_MIB},
    };
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++) {
        json_t *f = qwd_metrics_family(gauges[i].name, QWD_METRIC_GAUGE, gauges[i].help);
        qwd_metrics_add(f, gauges[i].value, NULL);
        json_array_append_new(families, f);
    }
}

/* The helper's counters, and gauges of what runs now: sessions by state, vCPUs and memory
 * given to them, warm images, the host's load and memory. */
static void op_metrics(op_call *call)
{
    helper *h = call->h;
    json_t *families = helper_metrics_families(h);
    static const char *const states[] = {QWD_STATE_STARTING, QWD_STATE_RUNNING};
    unsigned long long by_state[sizeof states / sizeof states[0]] = {0};
    apr_array_header_t *live = helper_sessions_live(h, call->ptemp);
    for (int i = 0; i < live->nelts; i++) {
        json_t *brief = helper_session_brief_json(APR_ARRAY_IDX(live, i, helper_session *));
        const char *state = json_string_value(json_object_get(brief, "state"));
        for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
            by_state[k] += state && !strcmp(state, states[k]);
        }
        json_decref(brief);
    }
    qwd_metrics_family_by_label(families, "qwd_sessions", QWD_METRIC_GAUGE,
                                "Live sessions of the helper, by state.", "state", states, by_state,
                                sizeof states / sizeof states[0]);
    int sessions, vcpus, memory_mib;
    helper_sessions_usage(h, &sessions, &vcpus, &memory_mib);
    json_t *f = qwd_metrics_family("qwd_sessions_vcpus", QWD_METRIC_GAUGE,
                                   "Virtual CPUs given to the live sessions together.");
    qwd_metrics_add(f, vcpus, NULL);
    json_array_append_new(families, f);
    f = qwd_metrics_family("qwd_sessions_memory_bytes", QWD_METRIC_GAUGE,
                           "Memory given to the live sessions together (their -m).");
    qwd_metrics_add(f, (double)memory_mib * BYTES_PER_MIB, NULL);
    json_array_append_new(families, f);
    warm_gauges(h, families);
    host_gauges(families);
    reply(call, json_pack("{s:o}", "families", families));
}

/* The journal after the "after" argument (default 0: from its oldest entry kept). */
static void op_events(op_call *call)
{
    json_t *after = json_object_get(call->arguments, "after");
    int limit;
    if ((after && !json_is_null(after)
         && (!json_is_integer(after) || json_integer_value(after) < 0))
        || int_argument(call, "limit", HELPER_JOURNAL_PAGE, 1, HELPER_JOURNAL_PAGE, &limit)) {
        if (!call->answer->message) {
            bad_argument(call, "after", "after must be a sequence number (>= 0)", 1, 0);
        }
        return;
    }
    reply(call, helper_journal_json(call->h, json_is_integer(after) ? json_integer_value(after) : 0,
                                    limit));
}

/* What each live session's VM uses on this host (sessions that run elsewhere are left out),
 * as read at most usage_max_age seconds ago. shown: only what the monitor page shows of each
 * ({id, cpu_percent, pss_bytes, disk_bytes}), which keeps its answer, and the parse of it,
 * smaller. */
static json_t *usage_json(op_call *call, int shown)
{
    apr_array_header_t *live = helper_sessions_live(call->h, call->ptemp);
    apr_time_t now = helper_clock_now();
    apr_time_t max_age = apr_time_from_sec(call->h->config->usage_max_age);
    json_t *list = json_array();
    helper_usage_cache_prune(call->h->usage, now, max_age);
    for (int i = 0; i < live->nelts; i++) {
        helper_session *s = APR_ARRAY_IDX(live, i, helper_session *);
        pid_t pid = helper_session_local_pid(s);
        if (pid <= 0) {
            continue;
        }
        json_t *usage = json_pack("{s:s, s:i}", "id", helper_session_id(s), "pid", (int)pid);
        helper_usage_cached(call->h->usage, helper_session_id(s), pid, helper_session_disk(s), now,
                            max_age, usage);
        if (shown) {
            json_object_del(usage, "pid");
            json_object_del(usage, "cpu_seconds");
            json_object_del(usage, "rss_bytes");
        }
        json_array_append_new(list, usage);
    }
    return list;
}

static void op_usage(op_call *call)
{
    reply(call, json_pack("{s:o}", "sessions", usage_json(call, 0)));
}

/* What the monitor page shows, in one answer instead of four: list's answer (brief or not),
 * with what it shows of usage's sessions, load's answer and warm_list's images beside. */
static void op_monitor(op_call *call)
{
    json_t *answer = sessions_json(call);
    if (!answer) {
        return;
    }
    json_t *warm = helper_warm_list_json(call->h);
    json_object_set_new(answer, "usage", usage_json(call, 1));
    json_object_set_new(answer, "load", load_json(call));
    json_object_set(answer, "warm", json_object_get(warm, "warm"));
    json_decref(warm);
    reply(call, answer);
}

/* Moves a session's end later, within max_lifetime from its creation; answered once its place
 * (a batch job's time limit) granted it. */
static void op_extend(op_call *call)
{
    helper_config *config = call->h->config;
    helper_session *s = session_argument(call);
    int seconds, audited, most, outcome;
    const char *by, *problem;
    if (!s || int_argument(call, "seconds", -1, 1, config->max_lifetime, &seconds)
        || !(by = asked_by(call, &audited))) {
        return;
    }
    if (seconds < 0) {
        bad_argument(call, "seconds", "seconds is required", 1, config->max_lifetime);
        return;
    }
    outcome = helper_session_extend(s, seconds, config->max_lifetime, by, audited, &most, &problem);
    if (outcome == -2) {
        call->answer->message = extend_failed(problem, call->id);
        return;
    }
    if (outcome) {
        bad_argument(call, "seconds",
                     apr_psprintf(call->ptemp,
                                  "the session may be extended by %d s at most (max_lifetime %d "
                                  "from its start)",
                                  most, config->max_lifetime),
                     0, most);
        return;
    }
    outcome = helper_session_extended(s, &problem);
    if (outcome == 0) {
        wait_for_one(call, WAIT_EXTEND, s);
    }
    else if (outcome < 0) {
        call->answer->message = extend_failed(problem, call->id);
    }
    else {
        reply(call, helper_session_json(s));
    }
}

typedef struct {
    const char *name;
    void (*run)(op_call *call);
} op_entry;

static const op_entry ops[] = {
    {QWD_OP_HELLO, op_hello},
    {QWD_OP_START, op_start},
    {QWD_OP_STOP, op_stop},
    {QWD_OP_STATUS, op_status},
    {QWD_OP_LIST, op_list},
    {QWD_OP_PURGE, op_purge},
    {QWD_OP_MACHINES, op_machines},
    {QWD_OP_LOAD, op_load},
    {QWD_OP_WARM, op_warm},
    {QWD_OP_WARM_LIST, op_warm_list},
    {QWD_OP_WARM_DROP, op_warm_drop},
    /* a session's shares of its display (the relay enforces their kind) */
    {QWD_OP_SHARE, op_share},
    {QWD_OP_UNSHARE, op_unshare},
    /* operations (docs/protocol.md, "Operations") */
    {QWD_OP_METRICS, op_metrics},
    {QWD_OP_EVENTS, op_events},
    {QWD_OP_USAGE, op_usage},
    {QWD_OP_EXTEND, op_extend},
    {QWD_OP_MONITOR, op_monitor},
};

json_t *helper_ops_greeting(void)
{
    json_t *capabilities = json_array();
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        json_array_append_new(capabilities, json_string(ops[i].name));
    }
    return json_pack("{s:{s:i, s:s, s:o}}", "qwd", "version", QWD_PROTO_VERSION, "server",
                     HELPER_VERSION_STRING, "capabilities", capabilities);
}

void helper_ops_dispatch(helper *h, apr_pool_t *ptemp, apr_pool_t *wait_pool,
                         const helper_peer *peer, json_t *request, helper_answer *answer)
{
    *answer = (helper_answer){0};
    op_call call = {.h = h, .ptemp = ptemp, .wait_pool = wait_pool, .peer = peer, .answer = answer};
    const char *op, *message;
    const char *code = qwd_proto_request_parts(request, &op, &call.arguments, &call.id, &message);
    if (code) {
        fail(&call, code, message, NULL);
        return;
    }
    helper_log_info(QWDLOGNO(05032) "request uid %d pid %d: %s", (int)peer->uid, (int)peer->pid,
                    op);
    if (!peer->said_hello && strcmp(op, QWD_OP_HELLO)) {
        fail(&call, QWD_ERR_NO_HELLO, "the first request must be hello", NULL);
        return;
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!strcmp(ops[i].name, op)) {
            ops[i].run(&call);
            return;
        }
    }
    fail(&call, QWD_ERR_UNKNOWN_OP, apr_psprintf(ptemp, "unknown op \"%s\"", op), NULL);
}
