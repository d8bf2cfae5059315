/* SPDX-License-Identifier: Apache-2.0 */
/* Sessions from creation to cleanup. A session's files all live in STATE/sessions/ID/ plus one
 * token file per way to its display (its own link, each share), so ending it is: remove that
 * directory and those tokens, whatever the cause. Where and how its VM runs is the backend's
 * business; what the session decides is the plan (once) and, when a restore fails, the cold
 * boot that replaces it. Its viewers reach the display through its relay (helper_relay.c),
 * which tells it who comes and goes: a one-shot session stops when its viewer leaves, an
 * idle one when nobody has watched for idle_stop_s. */
#include "helper_session.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_fs.h"
#include "helper_journal.h"
#include "helper_log.h"
#include "helper_metrics.h"
#include "helper_plan.h"
#include "helper_relay.h"
#include "helper_proc.h"
#include "helper_warm.h"
#include "helper_websockify.h"
#include "qwd_protocol.h"
#include "qwd_token.h"

#include <apr_file_info.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A restored VM that fails within this long failed to load its state: it boots cold instead. */
#define RESTORE_GRACE_S 15
/* The end of qemu.log copied into the helper's log when a VM crashes or never starts. */
#define QEMU_LOG_TAIL 1024
#define RECORD_MAX 65536

typedef enum { SESSION_STARTING, SESSION_RUNNING, SESSION_ENDED } session_state;

/* A share: its own way in to the relay, its own websockify token. */
typedef struct session_share {
    const char *id;
    const char *kind; /* QWD_VIEWER_CONTROL or QWD_VIEWER_VIEW */
    const char *token;
    const char *socket;
    apr_time_t expires; /* 0: as long as the session */
} session_share;

/* The viewer kinds, in the order of helper_sessions.connects. */

struct helper_session {
    apr_pool_t *pool; /* everything of the session; destroyed when it is forgotten */
    helper *h;
    const char *id;
    const char *token;
    const char *owner;
    const char *ref; /* the client's own name for the session (start's "ref"), or NULL */
    qwd_vm_profile profile;
    int oneshot;
    session_state state;
    const char *boot;
    apr_time_t created; /* wall clock: shown and recorded */
    apr_time_t expires;
    apr_time_t started_at; /* helper_clock_now(): what the lifetime and the uptime count from */
    apr_time_t expires_at; /* helper_clock_now() when the lifetime is over */
    apr_time_t ended_at;   /* helper_clock_now() */
    const char *ended_reason;
    const char *stop_reason; /* while a stop is under way: why */
    int extending;           /* its place was asked for a longer lifetime: no answer yet */
    int extend_seconds;      /* the last extend: how much, who asked, how it went */
    const char *extend_by;
    int extend_audited;
    const char *extend_problem; /* NULL: it was granted */
    const char *stop_by;        /* who asked for the stop (NULL: nobody named), for the journal */
    int stop_audited;           /* that client records the stop itself */
    const char *start_by;       /* who asked for the start, for the journal */
    int start_audited;
    apr_time_t requested_at; /* when the client was asked to start it: the latency's origin */
    int answered;            /* its display has answered once (the start latency is counted) */
    const char *dir;
    const char *vnc_socket;
    const helper_backend *backend; /* where its VM runs */
    const helper_plan *plan;
    helper_vm *vm; /* NULL once ended */
    pid_t pid;     /* its VM's, as last reported */
    const char *clock;
    int launch; /* 1 its VM was launched, -1 the launch failed (launch_problem), 0 under way */
    const char *launch_problem;
    int relaunching; /* booting cold after a failed restore */
    int holds;       /* replies waiting for it */
    int forgotten;   /* out of the table, freed on the last release */
    /* Sessions for data analysis (docs/data-sessions.md): */
    apr_array_header_t *gpu;    /* PCI addresses it holds (const char *), or NULL */
    apr_array_header_t *shares; /* names of the shares whose folders it has, or NULL */
    const char *script;         /* its start-up script's name, "(text)", or NULL */
    const char *setup;          /* the setup state as last recorded (adopted, ended) */
    const char *recorded_setup; /* the setup state in its record on disk */
    int idle_stop_s;            /* stops after this long without a viewer (0: never) */
    apr_time_t idle_since;      /* helper_clock_now() since nobody watches; 0: somebody does */
    int opened;                 /* a viewer came at least once (a one-shot link is used up) */
    const char *relay_socket;   /* the way in of its own link */
    helper_relay *relay;        /* NULL before its VM was launched and once it ended */
    apr_array_header_t *viewer_shares; /* session_share *: the shares of its display now */
};

/* Backends a helper may run sessions with: the local one, and Slurm when configured. */
#define BACKENDS_MAX 4

struct helper_sessions {
    apr_hash_t *table; /* id → helper_session, ended ones kept ended_keep seconds */
    const helper_backend *backends[BACKENDS_MAX]; /* [0]: the default */
    int backend_count;
    helper_sessions_hook *hook;
    void *hook_data;
    apr_time_t next_expiry_check;
};

void helper_sessions_init(helper *h, const helper_backend *backend)
{
    h->sessions = apr_pcalloc(h->pool, sizeof *h->sessions);
    h->sessions->table = apr_hash_make(h->pool);
    h->sessions->backends[0] = backend;
    h->sessions->backend_count = 1;
}

void helper_sessions_add_backend(helper *h, const helper_backend *backend)
{
    if (h->sessions->backend_count < BACKENDS_MAX) {
        h->sessions->backends[h->sessions->backend_count++] = backend;
    }
}

const helper_backend *helper_sessions_backend(helper *h, const char *name)
{
    for (int i = 0; i < h->sessions->backend_count; i++) {
        if (!name || !strcmp(h->sessions->backends[i]->name, name)) {
            return h->sessions->backends[i];
        }
    }
    return NULL;
}

void helper_sessions_on_change(helper *h, helper_sessions_hook *hook, void *data)
{
    h->sessions->hook = hook;
    h->sessions->hook_data = data;
}

/* Tells the hook; s may be freed already (a failed start nobody waits for). */
static void changed(helper_sessions *sessions)
{
    if (sessions->hook) {
        sessions->hook(sessions->hook_data);
    }
}

/* The relay lives outside the session's pool (its viewers outlive a request's): a session
 * still running when the helper exits gives it back with its pool. */
static apr_status_t session_cleanup(void *data)
{
    helper_session *s = data;
    helper_relay_release(s->relay);
    s->relay = NULL;
    return APR_SUCCESS;
}

static helper_session *session_new(helper *h, const char *id)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, h->pool);
    helper_session *s = apr_pcalloc(pool, sizeof *s);
    s->pool = pool;
    apr_pool_cleanup_register(pool, s, session_cleanup, apr_pool_cleanup_null);
    s->h = h;
    s->id = apr_pstrdup(pool, id);
    s->state = SESSION_STARTING;
    s->boot = QWD_BOOT_COLD;
    s->created = apr_time_now();
    s->started_at = helper_clock_now();
    s->dir = apr_pstrcat(pool, h->sessions_dir, "/", id, NULL);
    s->vnc_socket = qwd_session_file(pool, s->dir, QWD_SESSION_VNC_SOCKET);
    s->relay_socket = qwd_session_file(pool, s->dir, QWD_SESSION_RELAY_SOCKET);
    s->viewer_shares = apr_array_make(pool, 2, sizeof(session_share *));
    s->idle_since = s->started_at;
    s->backend = h->sessions->backends[0];
    apr_hash_set(h->sessions->table, s->id, APR_HASH_KEY_STRING, s);
    return s;
}

helper_session *helper_session_find(helper *h, const char *id)
{
    return id ? apr_hash_get(h->sessions->table, id, APR_HASH_KEY_STRING) : NULL;
}

/* Copies the end of qemu.log into the helper's log: the session dir is about to go, and QEMU's
 * own words are the best clue to why a VM crashed or never started. */
static void log_qemu_output(helper_session *s)
{
    char tail[QEMU_LOG_TAIL];
    int fd = open(qwd_session_file(s->pool, s->dir, QWD_SESSION_QEMU_LOG), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof tail - 1 ? size - (off_t)sizeof tail + 1 : 0;
    ssize_t len = pread(fd, tail, sizeof tail - 1, from);
    close(fd);
    if (len <= 0) {
        return;
    }
    tail[len] = '\0';
    for (char *c = tail; *c; c++) {
        if (*c == '\n' && c[1]) {
            *c = '|';
        }
    }
    helper_log_warn(QWDLOGNO(05033) "session %s: QEMU said: %s", s->id, tail);
}

/* Removes everything the session has on disk. */
static void remove_session_files(helper_session *s)
{
    if (s->token) {
        helper_token_remove(s->h, s->token);
    }
    for (int i = 0; i < s->viewer_shares->nelts; i++) {
        helper_token_remove(s->h, APR_ARRAY_IDX(s->viewer_shares, i, session_share *)->token);
    }
    int error = helper_fs_remove_tree(s->dir);
    if (error) {
        helper_log_error(QWDLOGNO(05034) "session %s: cannot remove %s: %s", s->id, s->dir,
                         strerror(error));
    }
}

static void forget(helper_session *s)
{
    apr_hash_set(s->h->sessions->table, s->id, APR_HASH_KEY_STRING, NULL);
    s->forgotten = 1;
    if (!s->holds) {
        apr_pool_destroy(s->pool);
    }
}

/* Forgets s at once (a start that failed before its VM ran): removes its dir and token. */
static void discard(helper_session *s)
{
    remove_session_files(s);
    forget(s);
}

void helper_session_hold(helper_session *s)
{
    s->holds++;
}

void helper_session_release(helper_session *s)
{
    if (--s->holds == 0 && s->forgotten) {
        apr_pool_destroy(s->pool);
    }
}

/* Where the VM of s is, as its backend says (all unset for a VM on this host). */
static helper_vm_place where(const helper_session *s)
{
    helper_vm_place place = {0};
    if (s->vm && s->backend->place) {
        s->backend->place(s->vm, &place);
    }
    return place;
}

static const char *state_name(const helper_session *s)
{
    if (s->state == SESSION_STARTING && where(s).queued) {
        return QWD_STATE_QUEUED;
    }
    return s->state == SESSION_STARTING  ? QWD_STATE_STARTING
           : s->state == SESSION_RUNNING ? QWD_STATE_RUNNING
                                         : QWD_STATE_ENDED;
}

/* The place's own end time (a batch job's) is the session's expiry once it is known. */
static void follow_place(helper_session *s, const helper_vm_place *place)
{
    if (place->queued && s->plan && s->plan->lifetime_s) {
        /* its lifetime has not begun: it starts with the job (and lasts its limit, which an
         * extend may have raised) */
        s->expires = apr_time_now()
                     + apr_time_from_sec(place->limit_s ? place->limit_s : s->plan->lifetime_s);
    }
    else if (place->expires) {
        s->expires = place->expires;
    }
    if (place->boot) {
        s->boot = place->boot;
    }
}

/* What a client sees of the place: where, which job, why it waits. */
static void add_place(json_t *object, const helper_vm_place *place)
{
    if (place->queued) {
        json_object_set_new(object, "queued_reason", json_string(place->queued));
    }
    if (place->node) {
        json_object_set_new(object, "node", json_string(place->node));
    }
    if (place->job) {
        json_object_set_new(object, "job", json_string(place->job));
    }
}

int helper_session_ended(const helper_session *s)
{
    return s->state == SESSION_ENDED;
}

int helper_session_launched(const helper_session *s, const char **problem)
{
    *problem = s->launch_problem;
    return s->launch;
}

static pid_t session_pid(const helper_session *s)
{
    return s->vm ? s->backend->pid(s->vm) : s->pid;
}

static const char *session_clock(const helper_session *s)
{
    return s->vm ? s->backend->clock(s->vm) : s->clock;
}

/* How its host folders and start-up script reach the guest: in the seed of a cold boot, else
 * through the backend's agent (a backend without one never restores such a session). */
static const char *session_setup(const helper_session *s)
{
    const helper_backend *backend = s->backend;
    if (s->plan && s->plan->seed_path) {
        return QWD_SETUP_SEEDED;
    }
    if (s->vm && backend->setup && s->plan && s->plan->agent_script) {
        return backend->setup(s->vm);
    }
    return s->setup;
}

static json_t *string_array(const apr_array_header_t *strings)
{
    json_t *array = json_array();
    for (int i = 0; strings && i < strings->nelts; i++) {
        json_array_append_new(array, json_string(APR_ARRAY_IDX(strings, i, const char *)));
    }
    return array;
}

/* A JSON array of strings into an array in pool, or NULL when it is not one. */
static apr_array_header_t *strings_of(apr_pool_t *pool, json_t *array)
{
    if (!json_is_array(array)) {
        return NULL;
    }
    apr_array_header_t *strings =
        apr_array_make(pool, (int)json_array_size(array) + 1, sizeof(const char *));
    size_t i;
    json_t *item;
    json_array_foreach (array, i, item) {
        if (json_is_string(item)) {
            APR_ARRAY_PUSH(strings, const char *) = apr_pstrdup(pool, json_string_value(item));
        }
    }
    return strings;
}

/* When s stops for want of a viewer if none comes, on the helper's monotonic clock (what the
 * expiry loop compares with), or 0: never, or somebody watches. */
static apr_time_t idle_deadline(const helper_session *s)
{
    if (!s->idle_stop_s || !s->idle_since || s->state == SESSION_ENDED) {
        return 0;
    }
    return s->idle_since + apr_time_from_sec(s->idle_stop_s);
}

/* The same moment on the wall clock (Unix seconds), for what is shown, or 0: counted from the
 * session's creation, whose wall and monotonic times were taken together (so it does not move
 * between two listings). */
static apr_int64_t idle_stop_at(const helper_session *s)
{
    apr_time_t deadline = idle_deadline(s);
    return deadline ? apr_time_sec(s->created + (deadline - s->started_at)) : 0;
}

static json_t *share_json(const session_share *share)
{
    return json_pack("{s:s, s:s, s:o, s:s}", "id", share->id, "kind", share->kind, "expires",
                     share->expires ? json_integer(apr_time_sec(share->expires)) : json_null(),
                     "token", share->token);
}

static json_t *viewer_shares_json(const helper_session *s)
{
    json_t *list = json_array();
    for (int i = 0; i < s->viewer_shares->nelts; i++) {
        json_array_append_new(list,
                              share_json(APR_ARRAY_IDX(s->viewer_shares, i, session_share *)));
    }
    return list;
}

json_t *helper_session_json(helper_session *s)
{
    helper_vm_place place = where(s);
    follow_place(s, &place);
    apr_time_t until = s->state == SESSION_ENDED ? s->ended_at : helper_clock_now();
    json_t *record =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:o, "
                  "s:s, s:s}",
                  "id", s->id, "token", s->token ? s->token : "", "machine", s->profile.machine,
                  "owner", s->owner, "cpu", s->profile.cpu, "memory_mib", s->profile.memory_mib,
                  "video", s->profile.video, "oneshot", s->oneshot, "state", state_name(s), "pid",
                  (json_int_t)session_pid(s), "created", (json_int_t)apr_time_sec(s->created),
                  "expires", (json_int_t)apr_time_sec(s->expires), "uptime",
                  (json_int_t)apr_time_sec(until - s->started_at), "ended_reason",
                  s->ended_reason ? json_string(s->ended_reason) : json_null(), "boot", s->boot,
                  "vnc_socket", s->vnc_socket);
    const char *clock = session_clock(s);
    if (clock) {
        json_object_set_new(record, "clock", json_string(clock));
    }
    if (s->ref) {
        json_object_set_new(record, "ref", json_string(s->ref));
    }
    apr_int64_t idle_at = idle_stop_at(s);
    json_object_set_new(record, "relay_socket", json_string(s->relay_socket));
    json_object_set_new(record, "viewers",
                        s->relay ? helper_relay_viewers_json(s->relay) : json_array());
    json_object_set_new(record, "opened", json_boolean(s->opened));
    json_object_set_new(record, "viewer_shares", viewer_shares_json(s));
    json_object_set_new(record, "idle_stop_s", json_integer(s->idle_stop_s));
    json_object_set_new(record, "idle_stop_at", idle_at ? json_integer(idle_at) : json_null());
    json_object_set_new(record, "shares", string_array(s->shares));
    json_object_set_new(record, "script", s->script ? json_string(s->script) : json_null());
    const char *setup = session_setup(s);
    if (setup) {
        json_object_set_new(record, "setup", json_string(setup));
    }
    if (s->gpu && s->gpu->nelts) {
        json_object_set_new(record, "gpu", string_array(s->gpu));
    }
    json_object_set_new(record, "backend", json_string(s->backend->name));
    add_place(record, &place);
    return record;
}

json_t *helper_session_brief_json(helper_session *s)
{
    helper_vm_place place = where(s);
    follow_place(s, &place);
    json_t *item = json_pack("{s:s, s:s, s:s, s:I}", "id", s->id, "state", state_name(s), "boot",
                             s->boot, "expires", (json_int_t)apr_time_sec(s->expires));
    if (s->ref) {
        json_object_set_new(item, "ref", json_string(s->ref));
    }
    /* who watches, and when nobody's watching ends it: only when there is something to say,
     * so a listing stays small */
    if (s->relay && helper_relay_watching(s->relay, NULL)) {
        json_object_set_new(item, "viewers", helper_relay_viewers_json(s->relay));
    }
    if (s->oneshot && s->opened) {
        json_object_set_new(item, "opened", json_true()); /* its link is used up */
    }
    if (idle_stop_at(s)) {
        json_object_set_new(item, "idle_stop_at", json_integer(idle_stop_at(s)));
    }
    place.job = NULL; /* for admins: status has it */
    add_place(item, &place);
    if (strcmp(s->backend->name, QWD_BACKEND_LOCAL)) {
        json_object_set_new(item, "backend", json_string(s->backend->name));
    }
    return item;
}

/* Writes STATE/sessions/ID/session.json atomically. Returns 0 or errno. */
static int write_record(helper_session *s)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, s->pool);
    json_t *record = helper_session_json(s);
    s->recorded_setup = session_setup(s);
    char *text = json_dumps(record, JSON_INDENT(1));
    json_decref(record);
    int error = text ? helper_fs_write_atomic(scratch,
                                              qwd_session_file(scratch, s->dir, QWD_SESSION_RECORD),
                                              NULL, text, 0600)
                     : ENOMEM;
    free(text);
    apr_pool_destroy(scratch);
    return error;
}

apr_array_header_t *helper_sessions_live(helper *h, apr_pool_t *pool)
{
    apr_array_header_t *live = apr_array_make(pool, 8, sizeof(helper_session *));
    for (apr_hash_index_t *i = apr_hash_first(pool, h->sessions->table); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state != SESSION_ENDED) {
            APR_ARRAY_PUSH(live, helper_session *) = s;
        }
    }
    return live;
}

apr_hash_t *helper_sessions_gpus_in_use(helper *h, apr_pool_t *pool)
{
    apr_hash_t *in_use = apr_hash_make(pool);
    for (apr_hash_index_t *i = apr_hash_first(pool, h->sessions->table); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        for (int k = 0; s->state != SESSION_ENDED && s->gpu && k < s->gpu->nelts; k++) {
            const char *address = APR_ARRAY_IDX(s->gpu, k, const char *);
            apr_hash_set(in_use, apr_pstrdup(pool, address), APR_HASH_KEY_STRING, "");
        }
    }
    return in_use;
}

void helper_sessions_usage(helper *h, int *sessions, int *vcpus, int *memory_mib)
{
    *sessions = *vcpus = *memory_mib = 0;
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions->table); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state == SESSION_ENDED) {
            continue;
        }
        (*sessions)++;
        if (s->backend->remote) {
            continue; /* on a cluster node: the scheduler decides what fits there */
        }
        *vcpus += s->profile.cpu;
        *memory_mib += s->profile.memory_mib;
    }
}

void helper_session_stop(helper_session *s, const char *reason)
{
    helper_session_stop_by(s, reason, NULL, 0);
}

void helper_session_stop_by(helper_session *s, const char *reason, const char *by, int audited)
{
    if (s->state == SESSION_ENDED || s->stop_reason) {
        return;
    }
    s->stop_reason = reason;
    s->stop_by = by ? apr_pstrdup(s->pool, by) : NULL;
    s->stop_audited = audited;
    s->backend->stop(s->vm);
    helper_log_info(QWDLOGNO(05036) "session %s: stopping (%s)", s->id, reason);
}

/* A journal entry about s: {"event", "session", "owner", "machine", "ref"?, "by"?,
 * "audited"} (a new reference). */
static json_t *journal_entry(const helper_session *s, const char *event, const char *by,
                             int audited)
{
    json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:b}", "event", event, "session", s->id,
                              "owner", s->owner, "machine", s->profile.machine, "audited", audited);
    if (s->ref) {
        json_object_set_new(entry, "ref", json_string(s->ref));
    }
    if (by) {
        json_object_set_new(entry, "by", json_string(by));
    }
    return entry;
}

static void log_not_extended(const helper_session *s, int seconds, const char *by,
                             const char *problem)
{
    helper_log_warn(QWDLOGNO(05801) "session %s: not extended by %d s (by %s): %s", s->id, seconds,
                    by ? by : "-", problem);
}

/* The extend under way (or asked) of s was refused: its end stays as it was. */
static void extend_failed(helper_session *s, const char *problem)
{
    s->extending = 0;
    s->extend_problem = problem;
    log_not_extended(s, s->extend_seconds, s->extend_by, problem);
}

/* The extend of s was granted: its end is extend_seconds later (its place's new end when it
 * has one), recorded and journaled. */
static void extended(helper_session *s)
{
    s->extending = 0;
    s->extend_problem = NULL;
    helper_vm_place place = where(s);
    if (!place.expires && !place.queued) {
        s->expires += apr_time_from_sec(s->extend_seconds);
    }
    s->expires_at += apr_time_from_sec(s->extend_seconds);
    write_record(s); /* follows the place */
    json_t *entry = journal_entry(s, QWD_EVENT_EXTENDED, s->extend_by, s->extend_audited);
    json_object_set_new(entry, "seconds", json_integer(s->extend_seconds));
    json_object_set_new(entry, "expires", json_integer((json_int_t)apr_time_sec(s->expires)));
    helper_journal_add(s->h, entry);
    helper_log_info(QWDLOGNO(05800) "session %s: extended by %d s to %" APR_TIME_T_FMT " (by %s)",
                    s->id, s->extend_seconds, apr_time_sec(s->expires),
                    s->extend_by ? s->extend_by : "-");
}

/* The VM of s is gone: s ends (kept ended_keep seconds for status, its files removed now). */
static void end(helper_session *s, int crashed, const char *how, const char *reason)
{
    const helper_backend *backend = s->backend;
    int had_run = s->launch == 1;
    s->ended_reason = s->stop_reason ? s->stop_reason
                      : reason       ? reason
                      : crashed      ? QWD_END_CRASHED
                                     : QWD_END_POWEROFF;
    s->state = SESSION_ENDED;
    s->ended_at = helper_clock_now();
    if (s->extending) {
        extend_failed(s, "the session ended");
    }
    if (s->vm) {
        s->pid = backend->pid(s->vm);
        s->clock = backend->clock(s->vm);
        s->setup = session_setup(s);
        backend->release(s->vm);
        s->vm = NULL;
    }
    if (!s->launch) {
        s->launch = -1;
        s->launch_problem =
            apr_psprintf(s->pool, "the session ended (%s) before its VM started", s->ended_reason);
        helper_metrics_start(s->h, s->boot, 0);
    }
    helper_metrics_ended(s->h, s->id, s->ended_reason);
    if (had_run) {
        json_t *entry = journal_entry(s, QWD_EVENT_ENDED, s->stop_by, s->stop_audited);
        json_object_set_new(entry, "reason", json_string(s->ended_reason));
        helper_journal_add(s->h, entry);
    }
    helper_log_info(QWDLOGNO(05037) "session %s: ended (%s%s%s)", s->id, s->ended_reason,
                    how ? ", " : "", how ? how : "");
    if (!strcmp(s->ended_reason, QWD_END_CRASHED)) {
        log_qemu_output(s);
    }
    helper_relay_destroy(s->relay, "the session ended");
    s->relay = NULL;
    remove_session_files(s);
    changed(s->h->sessions);
}

static void cold_boot_failed(helper_session *s, const char *problem)
{
    helper_log_error(QWDLOGNO(05011) "session %s: cold boot failed too: %s", s->id, problem);
}

static void on_vm(void *session, helper_vm *vm, const helper_vm_report *report);

/* The restored VM of s died while loading its state (a warm image that passed the identity
 * checks but does not load): its image is dropped (a rebuild starts) and s boots cold in
 * place, same id and token. Returns 0 when the cold launch is under way. */
static int boot_cold_again(helper_session *s)
{
    const helper_backend *backend = s->backend;
    helper_log_warn(QWDLOGNO(05008) "session %s: restoring the warm image failed, booting cold",
                    s->id);
    log_qemu_output(s);
    backend->release(s->vm);
    s->vm = NULL;
    helper_plan *cold = apr_pcalloc(s->pool, sizeof *cold);
    const char *problem;
    if (helper_plan_cold_again(s->h, s->pool, s->plan, cold, &problem) == 0
        && (s->vm = backend->launch(s->h, s->pool, cold, on_vm, s, &problem))) {
        s->plan = cold;
        s->relaunching = 1;
        s->state = SESSION_STARTING;
        return 0;
    }
    cold_boot_failed(s, problem);
    return -1;
}

/* How the relay reports viewers: logged, counted and journaled (helper_session_viewer: the
 * metrics, load and the audit trail see the relay's viewers and no others); a one-shot session
 * stops when its viewer leaves, an idle clock starts when the last one does. */
static void on_viewer(void *data, const helper_relay_report *report)
{
    helper_session *s = data;
    const char *share = report->share ? report->share : "none";
    int joined = report->event == RELAY_VIEWER_JOINED;
    helper_session_viewer(s, report->kind, report->share, joined, report->seconds);
    if (joined) {
        s->idle_since = 0;
        helper_log_info(QWDLOGNO(05710) "session %s: viewer %u joined (%s, share %s); %u "
                                        "watching",
                        s->id, report->viewer, report->kind, share, report->watching);
        if (!s->opened) {
            s->opened = 1;
            write_record(s); /* a restarted helper must know a one-shot link is used up */
        }
        return;
    }
    helper_log_info(QWDLOGNO(05711) "session %s: viewer %u left (%s, share %s) after %.1f s: "
                                    "%s (%u input messages dropped); %u watching",
                    s->id, report->viewer, report->kind, share, report->seconds, report->why,
                    report->dropped, report->watching);
    if (s->state == SESSION_ENDED) {
        return;
    }
    if (!report->watching) {
        s->idle_since = helper_clock_now();
    }
    if (s->oneshot && !report->share) {
        helper_session_stop(s, QWD_END_VIEWER_LEFT);
    }
}

/* A share's way in and the token that leads there. Returns 0 or errno. */
static int open_share(helper_session *s, const session_share *share)
{
    int error = helper_relay_listen(s->relay, share->socket, share->kind, share->id, 0);
    return error ? error : helper_token_write(s->h, share->token, share->socket);
}

/* The relay of s and its ways in: its own link (once, for a one-shot session; none when that
 * viewer came already) and its shares, each with the websockify token that leads to it.
 * Returns 0 or errno. */
static int open_relay(helper_session *s)
{
    s->relay = helper_relay_create(s->h->events, s->id, s->vnc_socket, on_viewer, s);
    if (!s->relay) {
        return ENOMEM;
    }
    int error = 0;
    if (!(s->oneshot && s->opened)) {
        error = helper_relay_listen(s->relay, s->relay_socket, QWD_VIEWER_OWNER, NULL, s->oneshot);
        if (!error) {
            error = helper_token_write(s->h, s->token, s->relay_socket);
        }
    }
    for (int i = 0; !error && i < s->viewer_shares->nelts; i++) {
        error = open_share(s, APR_ARRAY_IDX(s->viewer_shares, i, session_share *));
    }
    return error;
}

json_t *helper_session_share(helper_session *s, apr_pool_t *pool, const char *kind,
                             apr_time_t expires, const char **code, const char **problem)
{
    char *id, *token;
    *code = QWD_ERR_BAD_ARGUMENT;
    if (s->state == SESSION_ENDED || s->stop_reason) {
        *code = QWD_ERR_NOT_FOUND;
        *problem = "the session has ended";
        return NULL;
    }
    if (s->oneshot) {
        *problem = "a one-shot session cannot be shared";
        return NULL;
    }
    if (!s->relay) {
        *problem = "the session's VM has not started yet";
        return NULL;
    }
    if (s->viewer_shares->nelts >= QWD_PROTO_MAX_VIEWER_SHARES) {
        *code = QWD_ERR_LIMIT_REACHED;
        *problem =
            apr_psprintf(pool, "the session has %d shares already", QWD_PROTO_MAX_VIEWER_SHARES);
        return NULL;
    }
    *code = QWD_ERR_INTERNAL;
    if (qwd_share_id_new(s->pool, &id) != APR_SUCCESS
        || qwd_token_new(s->pool, &token) != APR_SUCCESS) {
        *problem = "no random bytes for the share's id or token";
        return NULL;
    }
    session_share *share = apr_pcalloc(s->pool, sizeof *share);
    share->id = id;
    share->kind = !strcmp(kind, QWD_VIEWER_VIEW) ? QWD_VIEWER_VIEW : QWD_VIEWER_CONTROL;
    share->token = token;
    share->expires = expires;
    share->socket = apr_pstrcat(s->pool, s->dir, "/" QWD_SESSION_SHARE_PREFIX, id,
                                QWD_SESSION_SHARE_SUFFIX, NULL);
    if (strlen(share->socket) >= QWD_UNIX_PATH_MAX) {
        *problem = apr_psprintf(pool,
                                "the socket path %s is %d bytes or longer: use a shorter "
                                "state_dir",
                                share->socket, QWD_UNIX_PATH_MAX);
        return NULL;
    }
    int error = open_share(s, share);
    if (error) {
        helper_relay_close_entrance(s->relay, share->id, "the share could not be opened");
        helper_token_remove(s->h, share->token);
        *problem = apr_psprintf(pool, "cannot open the share's way in: %s", strerror(error));
        helper_log_error(QWDLOGNO(05717) "session %s: %s", s->id, *problem);
        return NULL;
    }
    APR_ARRAY_PUSH(s->viewer_shares, session_share *) = share;
    write_record(s);
    helper_log_info(QWDLOGNO(05714) "session %s: share %s (%s) opened, until %s", s->id, id,
                    share->kind,
                    expires ? apr_psprintf(pool, "%" APR_INT64_T_FMT, apr_time_sec(expires))
                            : "the session ends");
    json_t *object = share_json(share);
    json_object_set_new(object, "session", json_string(s->id));
    return object;
}

/* Closes share number i of s (its way in, its viewers, its token); returns how many viewers
 * it closed. */
static unsigned close_share(helper_session *s, int i, const char *why)
{
    session_share *share = APR_ARRAY_IDX(s->viewer_shares, i, session_share *);
    unsigned closed = s->relay ? helper_relay_close_entrance(s->relay, share->id, why) : 0;
    helper_token_remove(s->h, share->token);
    memmove(&APR_ARRAY_IDX(s->viewer_shares, i, session_share *),
            &APR_ARRAY_IDX(s->viewer_shares, i + 1, session_share *),
            (size_t)(s->viewer_shares->nelts - i - 1) * sizeof(session_share *));
    s->viewer_shares->nelts--;
    write_record(s);
    return closed;
}

int helper_session_unshare(helper_session *s, const char *share_id)
{
    for (int i = 0; i < s->viewer_shares->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(s->viewer_shares, i, session_share *)->id, share_id)) {
            unsigned closed = close_share(s, i, "the share was revoked");
            helper_log_info(QWDLOGNO(05715) "session %s: share %s revoked, %u viewer(s) closed",
                            s->id, share_id, closed);
            return (int)closed;
        }
    }
    return -1;
}

/* Shares whose time is over close, and their viewers with them. */
static void expire_shares(helper_session *s, apr_time_t now)
{
    for (int i = 0; i < s->viewer_shares->nelts;) {
        session_share *share = APR_ARRAY_IDX(s->viewer_shares, i, session_share *);
        if (!share->expires || now < share->expires) {
            i++;
            continue;
        }
        const char *id = share->id;
        unsigned closed = close_share(s, i, "the share expired");
        helper_log_info(QWDLOGNO(05716) "session %s: share %s expired, %u viewer(s) closed", s->id,
                        id, closed);
    }
}

static void launched(helper_session *s)
{
    helper *h = s->h;
    s->pid = s->backend->pid(s->vm);
    if (s->relaunching) {
        s->relaunching = 0;
        s->boot = QWD_BOOT_COLD;
        write_record(s);
        helper_log_info(QWDLOGNO(05010) "session %s: QEMU pid %d started cold", s->id, (int)s->pid);
        return;
    }
    int error = write_record(s);
    if (!error) {
        error = open_relay(s);
    }
    if (error) {
        /* The VM runs already: end it the normal way, so it is reaped and cleaned. */
        s->launch = -1;
        s->launch_problem =
            apr_psprintf(s->pool,
                         "cannot write the session record, open its relay or write its "
                         "token: %s",
                         strerror(error));
        helper_session_stop(s, QWD_END_CRASHED);
        return;
    }
    s->launch = 1;
    helper_metrics_start(h, s->boot, 1);
    helper_journal_add(h, journal_entry(s, QWD_EVENT_STARTED, s->start_by, s->start_audited));
    if (s->backend->remote) {
        helper_vm_place place = where(s);
        helper_log_info(QWDLOGNO(05600) "session %s: %s job %s for %s (%s, %d cpu, %d MiB)%s%s",
                        s->id, s->backend->name, place.job ? place.job : "?", s->owner,
                        s->profile.machine, s->profile.cpu, s->profile.memory_mib,
                        place.queued ? ", queued: " : "", place.queued ? place.queued : "");
        return;
    }
    helper_log_info(
        QWDLOGNO(05013) "session %s: QEMU pid %d started for %s (%s, %d cpu, %d MiB, %s, %s)",
        s->id, (int)s->pid, s->owner, s->profile.machine, s->profile.cpu, s->profile.memory_mib,
        s->plan->accel ? s->plan->accel : h->host.accel, s->boot);
    if (s->plan->build_warm) {
        int sessions, vcpus, memory_mib;
        helper_sessions_usage(h, &sessions, &vcpus, &memory_mib);
        helper_warm_auto(h, &s->profile, vcpus, memory_mib);
    }
}

/* A start that failed before its VM ran leaves nothing behind. */
static void launch_failed(helper_session *s, const char *problem)
{
    helper_metrics_start(s->h, s->boot, 0);
    s->launch = -1;
    s->launch_problem = problem;
    helper_log_error(QWDLOGNO(05014) "session %s: start failed: %s", s->id, problem);
    log_qemu_output(s);
    discard(s);
}

/* How the backend reports; each report is one step of the session's life. */
static void on_vm(void *session, helper_vm *vm, const helper_vm_report *report)
{
    helper_session *s = session;
    helper_sessions *sessions = s->h->sessions;
    switch (report->event) {
    case VM_LAUNCHED: launched(s); break;
    case VM_RUNNING:
        s->state = SESSION_RUNNING;
        if (!s->answered) {
            s->answered = 1;
            helper_metrics_running(s->h, s->boot,
                                   (double)(apr_time_now() - s->requested_at) / APR_USEC_PER_SEC);
        }
        write_record(s);
        break;
    case VM_FAILED:
        if (s->relaunching) {
            cold_boot_failed(s, report->problem);
            end(s, 1, NULL, NULL);
            return;
        }
        s->pid = 0;
        s->backend->release(s->vm);
        s->vm = NULL;
        launch_failed(s, report->problem);
        break;
    case VM_ENDED:
        /* A restore that fails makes QEMU exit 1 within a second or so: boot cold rather
         * than hand the user a crashed session. */
        if (!s->stop_reason && report->crashed && s->launch == 1
            && !strcmp(s->boot, QWD_BOOT_RESTORED)
            && helper_clock_now() - s->started_at < apr_time_from_sec(RESTORE_GRACE_S)
            && boot_cold_again(s) == 0) {
            break;
        }
        end(s, report->crashed, report->how, report->reason);
        return;
    case VM_EXTENDED: extended(s); break;
    case VM_EXTEND_FAILED: extend_failed(s, report->problem); break;
    }
    changed(sessions);
}

helper_session *helper_session_start(helper *h, apr_pool_t *pool,
                                     const helper_start_request *request, const char **problem)
{
    char *id = (char *)request->id, *token;
    if ((!id && qwd_session_id_new(pool, &id) != APR_SUCCESS)
        || qwd_token_new(pool, &token) != APR_SUCCESS) {
        *problem = "no random bytes for the session id or token";
        return NULL;
    }
    helper_session *s = session_new(h, id);
    s->token = apr_pstrdup(s->pool, token);
    s->profile = qwd_vm_profile_copy(s->pool, &request->profile);
    s->owner = apr_pstrdup(s->pool, request->owner);
    s->ref = request->ref && *request->ref ? apr_pstrdup(s->pool, request->ref) : NULL;
    s->oneshot = request->oneshot;
    s->idle_stop_s = request->idle_stop_s;
    s->expires = s->created + apr_time_from_sec(request->lifetime_s);
    s->start_by = request->by ? apr_pstrdup(s->pool, request->by) : NULL;
    s->start_audited = request->audited;
    s->requested_at = request->requested_at ? request->requested_at : s->created;
    s->backend = helper_sessions_backend(h, request->backend);
    if (!s->backend) {
        *problem = apr_psprintf(pool, "this helper has no backend \"%s\"", request->backend);
        forget(s);
        return NULL;
    }
    s->shares = request->shares ? apr_array_copy(s->pool, request->shares) : NULL;
    for (int i = 0; s->shares && i < s->shares->nelts; i++) {
        APR_ARRAY_IDX(s->shares, i, const char *) =
            apr_pstrdup(s->pool, APR_ARRAY_IDX(s->shares, i, const char *));
    }
    s->script = request->script ? apr_pstrdup(s->pool, request->script) : NULL;
    helper_plan_extras extras = request->extras;
    extras.guest_script = extras.guest_script ? apr_pstrdup(s->pool, extras.guest_script) : NULL;
    extras.scratch_size = extras.scratch_size ? apr_pstrdup(s->pool, extras.scratch_size) : NULL;
    if (extras.gpu_count) {
        /* Held from now on: a device is free when no live session lists it. */
        s->gpu = apr_array_make(s->pool, extras.gpu_count, sizeof(const char *));
        for (int i = 0; i < extras.gpu_count; i++) {
            APR_ARRAY_PUSH(s->gpu, const char *) = apr_pstrdup(s->pool, extras.gpu[i]);
        }
        extras.gpu = (const char *const *)s->gpu->elts;
    }
    s->expires_at = s->started_at + apr_time_from_sec(request->lifetime_s);
    const char *qmp_socket = qwd_session_file(s->pool, s->dir, QWD_SESSION_QMP_SOCKET);
    if (strlen(qmp_socket) >= QWD_UNIX_PATH_MAX) {
        *problem = apr_psprintf(pool,
                                "the socket path %s is %d bytes or longer: use a shorter "
                                "state_dir",
                                qmp_socket, QWD_UNIX_PATH_MAX);
        forget(s);
        return NULL;
    }
    helper_plan *plan = apr_pcalloc(s->pool, sizeof *plan);
    int planned = 0;
    if (s->backend->remote) {
        helper_plan_remote(s->pool, &s->profile, s->id, s->dir, plan);
        planned = 1;
    }
    else {
        planned =
            helper_plan_make(h, s->pool, &s->profile, &extras, s->id, s->dir, plan, problem) == 0;
    }
    if (planned) {
        plan->lifetime_s = request->lifetime_s;
        s->plan = plan;
        s->boot = plan->boot;
        s->vm = s->backend->launch(h, s->pool, plan, on_vm, s, problem);
    }
    if (!s->vm) {
        *problem = apr_pstrdup(pool, *problem);
        launch_failed(s, *problem);
        return NULL;
    }
    return s;
}

int helper_sessions_tick(helper *h)
{
    helper_sessions *sessions = h->sessions;
    apr_time_t now = helper_clock_now();
    int check_expiry = now >= sessions->next_expiry_check;
    int starting = 0;
    if (check_expiry) {
        sessions->next_expiry_check = now + apr_time_from_sec(h->config->expiry_interval);
    }
    for (apr_hash_index_t *i = apr_hash_first(NULL, sessions->table); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state == SESSION_ENDED) {
            /* Deleting the current entry during apr_hash iteration is allowed. */
            if (now - s->ended_at > apr_time_from_sec(h->config->ended_keep) && !s->holds) {
                forget(s);
            }
            continue;
        }
        starting |= s->backend->tick(s->vm, now) && s->state == SESSION_STARTING;
        if (!s->vm) {
            continue; /* the tick ended it */
        }
        if (s->launch == 1 && session_setup(s) != s->recorded_setup) {
            write_record(s); /* a restart shows where the setup stood */
        }
        /* a remote VM's lifetime is its place's clock (the job's time limit) */
        if (!s->stop_reason && check_expiry && !s->backend->remote && now >= s->expires_at) {
            helper_session_stop(s, QWD_END_EXPIRED);
        }
        else if (!s->stop_reason && check_expiry && idle_deadline(s) && now >= idle_deadline(s)) {
            helper_session_stop(s, QWD_END_IDLE);
        }
        if (check_expiry && s->state != SESSION_ENDED) {
            expire_shares(s, apr_time_now()); /* a share's expiry is the client's wall time */
        }
    }
    return starting;
}

/* Fills s from its record; returns 0 when the record is usable. */
static int load_record(helper_session *s, json_t *record)
{
    const char *token = NULL, *machine = NULL, *owner = NULL, *video = NULL, *boot = NULL,
               *ref = NULL, *backend = NULL;
    json_int_t pid = 0, created = 0, expires = 0;
    int oneshot = 0;
    if (json_unpack(record, "{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:I, s?s, s?s, s?s}",
                    "token", &token, "machine", &machine, "owner", &owner, "video", &video, "cpu",
                    &s->profile.cpu, "memory_mib", &s->profile.memory_mib, "oneshot", &oneshot,
                    "pid", &pid, "created", &created, "expires", &expires, "boot", &boot, "ref",
                    &ref, "backend", &backend)
            != 0
        || !qwd_token_is_valid(token)) {
        return -1;
    }
    /* a record of an older helper names no backend: its VM is local */
    s->backend = helper_sessions_backend(s->h, backend ? backend : QWD_BACKEND_LOCAL);
    /* a local VM has a pid; a remote one is found by its name at its place */
    if (!s->backend || (!s->backend->remote && pid <= 1)) {
        return -1;
    }
    s->token = apr_pstrdup(s->pool, token);
    s->profile.machine = apr_pstrdup(s->pool, machine);
    s->profile.video = apr_pstrdup(s->pool, video);
    s->owner = apr_pstrdup(s->pool, owner);
    s->boot = apr_pstrdup(s->pool, boot ? boot : QWD_BOOT_COLD);
    s->ref = ref ? apr_pstrdup(s->pool, ref) : NULL;
    s->oneshot = oneshot;
    s->gpu = strings_of(s->pool, json_object_get(record, "gpu"));
    s->shares = strings_of(s->pool, json_object_get(record, "shares"));
    json_t *script = json_object_get(record, "script"), *setup = json_object_get(record, "setup");
    s->script = json_is_string(script) ? apr_pstrdup(s->pool, json_string_value(script)) : NULL;
    s->setup = json_is_string(setup) ? apr_pstrdup(s->pool, json_string_value(setup)) : NULL;
    s->pid = (pid_t)pid;
    s->created = apr_time_from_sec(created);
    s->expires = apr_time_from_sec(expires);
    /* The record keeps wall times (the monotonic clock of a host that rebooted means nothing,
     * but neither does a VM of it): what is left of the lifetime counts from now on. */
    apr_time_t wall = apr_time_now();
    s->started_at = helper_clock_now() - (wall - s->created);
    s->expires_at = helper_clock_now() + (s->expires - wall);
    /* what a helper before shares wrote has none of these: no shares, never opened, no idle */
    json_t *opened = json_object_get(record, "opened"),
           *idle = json_object_get(record, "idle_stop_s");
    s->opened = json_is_true(opened);
    s->idle_stop_s = json_is_integer(idle) ? (int)json_integer_value(idle) : 0;
    /* the idle clock starts again: the next helper cannot know who watched meanwhile */
    s->idle_since = helper_clock_now();
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get(record, "viewer_shares"), i, item) {
        const char *id = NULL, *kind = NULL, *share_token = NULL;
        json_int_t until = 0;
        json_t *until_field = json_object_get(item, "expires");
        if (json_unpack(item, "{s:s, s:s, s:s}", "id", &id, "kind", &kind, "token", &share_token)
                != 0
            || !qwd_share_id_is_valid(id) || !qwd_token_is_valid(share_token)
            || (strcmp(kind, QWD_VIEWER_VIEW) && strcmp(kind, QWD_VIEWER_CONTROL))) {
            continue; /* not one of ours: its token file is pruned as stale */
        }
        until = json_is_integer(until_field) ? json_integer_value(until_field) : 0;
        session_share *share = apr_pcalloc(s->pool, sizeof *share);
        share->id = apr_pstrdup(s->pool, id);
        share->kind = !strcmp(kind, QWD_VIEWER_VIEW) ? QWD_VIEWER_VIEW : QWD_VIEWER_CONTROL;
        share->token = apr_pstrdup(s->pool, share_token);
        share->expires = until > 0 ? apr_time_from_sec(until) : 0;
        share->socket = apr_pstrcat(s->pool, s->dir, "/" QWD_SESSION_SHARE_PREFIX, share->id,
                                    QWD_SESSION_SHARE_SUFFIX, NULL);
        APR_ARRAY_PUSH(s->viewer_shares, session_share *) = share;
    }
    return 0;
}

/* Re-adopts the VM of one session directory, or cleans it. */
static void adopt_one(helper *h, const char *id)
{
    helper_session *s = session_new(h, id);
    char *text =
        helper_fs_read(s->pool, qwd_session_file(s->pool, s->dir, QWD_SESSION_RECORD), RECORD_MAX);
    json_t *record = text ? json_loads(text, 0, NULL) : NULL;
    int usable = record && load_record(s, record) == 0;
    json_decref(record);
    if (usable) {
        helper_plan *plan = apr_pcalloc(s->pool, sizeof *plan);
        if (s->backend->remote) {
            helper_plan_remote(s->pool, &s->profile, s->id, s->dir, plan);
        }
        else {
            helper_plan_adopted(h, s->pool, &s->profile, s->id, s->dir, s->boot, plan);
        }
        s->plan = plan;
        s->vm = s->backend->adopt(h, s->pool, plan, s->pid, on_vm, s);
    }
    if (s->vm && open_relay(s) == 0) {
        /* Its VM proves its display again before it is called running (its start was
         * counted by the helper that started it). */
        s->launch = 1;
        s->answered = 1;
        if (s->backend->remote) {
            helper_log_info(QWDLOGNO(05601) "session %s: re-adopted its %s job %s", id,
                            s->backend->name, where(s).job);
            return;
        }
        helper_log_info(QWDLOGNO(05048) "session %s: re-adopted QEMU pid %d", id, (int)s->pid);
        if (s->oneshot && s->opened) {
            /* its one viewer's connection went with the previous helper */
            helper_session_stop(s, QWD_END_VIEWER_LEFT);
        }
        return;
    }
    helper_relay_destroy(s->relay, "the session could not be adopted");
    s->relay = NULL;
    if (s->vm) {
        s->backend->release(s->vm);
        s->vm = NULL;
    }
    /* Still running but not adoptable (no pidfd to watch it by, its QMP silent): its record
     * goes, so it goes too, or it would run on unseen and unstoppable. */
    if (usable && s->pid > 1
        && helper_process_matches(s->pid, apr_pstrcat(s->pool, "qwd-", id, NULL))) {
        helper_log_warn(QWDLOGNO(05903) "session %s: cannot re-adopt its QEMU pid %d, stopping it",
                        id, (int)s->pid);
        kill(s->pid, SIGKILL);
    }
    /* A helper killed between its VM's start and the record naming its pid left that VM
     * behind, unknown: it is found by the session's directory in its command line (unique to
     * this state_dir and session). */
    int stray = helper_signal_matching(apr_pstrcat(s->pool, s->dir, "/", NULL), SIGKILL);
    if (stray) {
        helper_log_warn(QWDLOGNO(05904) "session %s: stopped %d process(es) a previous helper "
                                        "started and did not record",
                        id, stray);
    }
    helper_log_info(QWDLOGNO(05049) "session %s: its QEMU is gone, cleaning up", id);
    discard(s);
}

/* Whether token belongs to a live session, its own or a share's (token files of others are
 * stale). */
static int token_is_live(void *data, const char *token)
{
    helper *h = data;
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions->table); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state == SESSION_ENDED) {
            continue;
        }
        if (s->token && !strcmp(s->token, token)) {
            return 1;
        }
        for (int k = 0; k < s->viewer_shares->nelts; k++) {
            if (!strcmp(APR_ARRAY_IDX(s->viewer_shares, k, session_share *)->token, token)) {
                return 1;
            }
        }
    }
    return 0;
}

void helper_sessions_adopt(helper *h)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    apr_dir_t *dir;
    apr_finfo_t entry;
    if (apr_dir_open(&dir, h->sessions_dir, scratch) == APR_SUCCESS) {
        while (apr_dir_read(&entry, APR_FINFO_NAME | APR_FINFO_TYPE, dir) == APR_SUCCESS) {
            if (entry.filetype == APR_DIR && qwd_session_id_is_valid(entry.name)) {
                adopt_one(h, entry.name);
            }
        }
        apr_dir_close(dir);
    }
    helper_tokens_prune(h, token_is_live, h);
    apr_pool_destroy(scratch);
}

int helper_session_extend(helper_session *s, int seconds, int max_lifetime, const char *by,
                          int audited, int *max_seconds, const char **busy)
{
    apr_time_t latest = s->created + apr_time_from_sec(max_lifetime);
    helper_vm_place place = where(s);
    follow_place(s, &place);
    *max_seconds = s->expires < latest ? (int)apr_time_sec(latest - s->expires) : 0;
    if (s->state == SESSION_ENDED || s->stop_reason || seconds > *max_seconds) {
        return -1;
    }
    if (s->extending) {
        *busy = "an extend of this session is under way: try again once it is answered";
        log_not_extended(s, seconds, by, *busy);
        return -2;
    }
    const char *problem = NULL;
    s->extend_seconds = seconds;
    s->extend_by = by ? apr_pstrdup(s->pool, by) : NULL;
    s->extend_audited = audited;
    if (!s->backend->extend) {
        extended(s); /* the session's own expiry check ends it */
    }
    else if (!s->vm || s->backend->extend(s->vm, s->pool, seconds, &problem) != 0) {
        extend_failed(s, problem ? problem : "its VM is gone");
    }
    else {
        s->extending = 1; /* answered by its place */
    }
    return 0;
}

int helper_session_extended(const helper_session *s, const char **problem)
{
    *problem = s->extend_problem;
    return s->extending ? 0 : s->extend_problem ? -1 : 1;
}

int helper_session_viewer(helper_session *s, const char *kind, const char *share, int joined,
                          double seconds)
{
    /* a viewer that leaves as its session ends is still journaled: the end forgot the counts */
    if (!helper_metrics_viewer_kind_is_valid(kind)
        || (helper_metrics_viewer(s->h, s->id, kind, joined ? 1 : -1)
            && (joined || s->state != SESSION_ENDED))) {
        return -1;
    }
    if (!joined) {
        json_t *entry = journal_entry(s, QWD_EVENT_VIEWED, NULL, 0);
        json_object_set_new(entry, "kind", json_string(kind));
        json_object_set_new(entry, "seconds", json_real(seconds < 0 ? 0 : seconds));
        if (share) {
            json_object_set_new(entry, "share", json_string(share));
        }
        helper_journal_add(s->h, entry);
    }
    return 0;
}

const char *helper_session_id(const helper_session *s)
{
    return s->id;
}

pid_t helper_session_local_pid(const helper_session *s)
{
    return s->state == SESSION_ENDED ? 0 : session_pid(s);
}

const char *helper_session_disk(const helper_session *s)
{
    return qwd_session_file(s->pool, s->dir, QWD_SESSION_DISK);
}
