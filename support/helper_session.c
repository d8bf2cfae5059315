/* SPDX-License-Identifier: Apache-2.0 */
/* Sessions from creation to cleanup. A session's files all live in STATE/sessions/ID/ plus one
 * token file, so ending it is: remove that directory and that token, whatever the cause. */
#include "helper_session.h"
#include "helper_agent.h"
#include "helper_clients.h"
#include "helper_fs.h"
#include "helper_launch.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "helper_qmp.h"
#include "helper_unix.h"
#include "helper_warm.h"
#include "helper_websockify.h"
#include "qwd_argv.h"
#include "qwd_token.h"
#include "qwd_warm.h"
#include "qwd_protocol.h"

#include <apr_file_info.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define QMP_TIMEOUT_MS 500
#define PROBE_INTERVAL apr_time_from_msec(50)
/* A restored QEMU that fails within this long failed to load its state. */
#define RESTORE_GRACE_S 15
/* How long the guest agent may take to answer guest-set-time. */
#define AGENT_TIMEOUT_S 10

helper_session *helper_session_new(helper *h, const char *id)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, h->pool);
    helper_session *s = apr_pcalloc(pool, sizeof *s);
    s->pool = pool;
    s->h = h;
    s->id = apr_pstrdup(pool, id);
    s->state = SESSION_STARTING;
    s->pidfd = -1;
    s->probe_fd = -1;
    s->agent_fd = -1;
    s->boot = QWD_BOOT_COLD;
    s->created = apr_time_now();
    s->dir = apr_pstrcat(pool, h->sessions_dir, "/", id, NULL);
    s->vnc_socket = qwd_session_file(pool, s->dir, QWD_SESSION_VNC_SOCKET);
    s->qmp_socket = qwd_session_file(pool, s->dir, QWD_SESSION_QMP_SOCKET);
    apr_hash_set(h->sessions, s->id, APR_HASH_KEY_STRING, s);
    return s;
}

helper_session *helper_session_find(helper *h, const char *id)
{
    return id ? apr_hash_get(h->sessions, id, APR_HASH_KEY_STRING) : NULL;
}

/* Copies the end of qemu.log into the helper's log: the session dir is about to go, and QEMU's
 * own words are the best clue to why a VM crashed or never started. */
void helper_session_log_qemu_output(helper_session *s)
{
    char tail[1024];
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
    int error = helper_fs_remove_tree(s->dir);
    if (error) {
        helper_log_error(QWDLOGNO(05034) "session %s: cannot remove %s: %s", s->id, s->dir,
                         strerror(error));
    }
}

static void forget(helper_session *s)
{
    apr_hash_set(s->h->sessions, s->id, APR_HASH_KEY_STRING, NULL);
    apr_pool_destroy(s->pool);
}

void helper_session_discard(helper_session *s)
{
    remove_session_files(s);
    forget(s);
}

const char *helper_session_state_name(const helper_session *s)
{
    return s->state == SESSION_STARTING  ? QWD_STATE_STARTING
           : s->state == SESSION_RUNNING ? QWD_STATE_RUNNING
                                         : QWD_STATE_ENDED;
}

json_t *helper_session_json(helper_session *s)
{
    apr_time_t until = s->state == SESSION_ENDED ? s->ended_at : apr_time_now();
    json_t *record = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:o, "
        "s:s, s:s}",
        "id", s->id, "token", s->token ? s->token : "", "machine", s->machine, "owner", s->owner,
        "cpu", s->cpu, "memory_mib", s->memory_mib, "video", s->video, "oneshot", s->oneshot,
        "state", helper_session_state_name(s), "pid", (json_int_t)s->pid, "created",
        (json_int_t)apr_time_sec(s->created), "expires", (json_int_t)apr_time_sec(s->expires),
        "uptime", (json_int_t)apr_time_sec(until - s->created), "ended_reason",
        s->ended_reason ? json_string(s->ended_reason) : json_null(), "boot", s->boot, "vnc_socket",
        s->vnc_socket);
    if (s->clock) {
        json_object_set_new(record, "clock", json_string(s->clock));
    }
    if (s->ref) {
        json_object_set_new(record, "ref", json_string(s->ref));
    }
    return record;
}

int helper_session_write_record(helper_session *s)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, s->pool);
    json_t *record = helper_session_json(s);
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

void helper_sessions_usage(helper *h, int *sessions, int *vcpus, int *memory_mib)
{
    *sessions = *vcpus = *memory_mib = 0;
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state == SESSION_ENDED) {
            continue;
        }
        (*sessions)++;
        *vcpus += s->cpu;
        *memory_mib += s->memory_mib;
    }
}

void helper_session_stop(helper_session *s, const char *reason)
{
    if (s->state == SESSION_ENDED || s->stop_reason) {
        return;
    }
    s->stop_reason = reason;
    apr_time_t now = apr_time_now();
    s->sigterm_at = now + apr_time_from_sec(SESSION_SIGTERM_AFTER_S);
    s->sigkill_at = now + apr_time_from_sec(SESSION_SIGKILL_AFTER_S);
    if (helper_qmp_quit(s->qmp_socket, QMP_TIMEOUT_MS) != 0) {
        helper_log_warn(QWDLOGNO(05035) "session %s: QMP quit failed, sending SIGTERM", s->id);
        kill(s->pid, SIGTERM);
        s->sigterm_at = 0;
    }
    helper_log_info(QWDLOGNO(05036) "session %s: stopping (%s)", s->id, reason);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void helper_session_exited(helper_session *s, int status_known, int status)
{
    if (s->state == SESSION_ENDED) {
        return;
    }
    /* A restore that fails makes QEMU exit 1 within a second or so: fall back to a cold boot
     * rather than handing the user a crashed session. */
    if (!s->stop_reason && status_known && !strcmp(s->boot, QWD_BOOT_RESTORED)
        && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        && apr_time_now() - s->created < apr_time_from_sec(RESTORE_GRACE_S)) {
        close_fd(&s->probe_fd);
        if (helper_launch_cold_again(s) == 0) {
            return;
        }
    }
    if (s->stop_reason) {
        s->ended_reason = s->stop_reason;
    }
    else if (!status_known || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        s->ended_reason = QWD_END_POWEROFF; /* an adopted VM's status is unknowable: assume clean */
    }
    else {
        s->ended_reason = QWD_END_CRASHED;
    }
    s->state = SESSION_ENDED;
    s->ended_at = apr_time_now();
    close_fd(&s->pidfd);
    close_fd(&s->probe_fd);
    close_fd(&s->agent_fd);
    helper_log_info(QWDLOGNO(05037) "session %s: ended (%s%s%s)", s->id, s->ended_reason,
                    status_known ? ", QEMU " : "",
                    status_known ? helper_describe_status(s->pool, status) : "");
    if (!strcmp(s->ended_reason, QWD_END_CRASHED)) {
        helper_session_log_qemu_output(s);
    }
    remove_session_files(s);
    helper_clients_session_ended(s->h);
}

helper_session *helper_session_by_child(helper *h, pid_t pid)
{
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->is_child && s->pid == pid && s->state != SESSION_ENDED) {
            return s;
        }
    }
    return NULL;
}

static void start_probe(helper_session *s, apr_time_t now)
{
    if (s->probe_fd >= 0 || now < s->next_probe) {
        return;
    }
    s->next_probe = now + PROBE_INTERVAL;
    s->probe_fd = helper_unix_connect(s->vnc_socket);
}

/* A restored clone's clock stands where the template's stood when it was saved: set it from
 * the host's (the agent then also writes the guest's RTC). */
static void start_clock_sync(helper_session *s)
{
    char request[128];
    snprintf(request, sizeof request, AGENT_SET_TIME_FMT, (long long)apr_time_now() * 1000);
    s->agent_fd =
        helper_agent_send(qwd_session_file(s->pool, s->dir, QWD_SESSION_AGENT_SOCKET), request);
    s->agent_deadline = apr_time_now() + apr_time_from_sec(AGENT_TIMEOUT_S);
    s->clock = s->agent_fd >= 0 ? "syncing" : "not synced";
    if (s->agent_fd < 0) {
        helper_log_warn(QWDLOGNO(05038) "session %s: cannot reach the guest agent to set the clock",
                        s->id);
    }
}

void helper_session_probe_ready(helper_session *s)
{
    char banner[12];
    ssize_t n = recv(s->probe_fd, banner, sizeof banner, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n >= 4 && !memcmp(banner, "RFB ", 4)) {
        s->state = SESSION_RUNNING;
        helper_log_info(QWDLOGNO(05039) "session %s: running (VNC answers)", s->id);
        helper_session_write_record(s);
        if (s->guest_agent && !strcmp(s->boot, QWD_BOOT_RESTORED) && !s->clock) {
            start_clock_sync(s);
        }
    }
    close_fd(&s->probe_fd);
}

void helper_session_agent_answered(helper_session *s)
{
    int answer = helper_agent_answer(s->agent_fd);
    if (answer == 0) {
        return;
    }
    s->clock = answer == 1 ? "synced" : "not synced";
    close_fd(&s->agent_fd);
    if (answer == 1) {
        helper_log_info(QWDLOGNO(05040) "session %s: guest clock set through the guest agent",
                        s->id);
    }
    else {
        helper_log_warn(QWDLOGNO(05041) "session %s: the guest agent refused guest-set-time",
                        s->id);
    }
}

static void clock_sync_timeout(helper_session *s, apr_time_t now)
{
    if (s->agent_fd < 0 || now < s->agent_deadline) {
        return;
    }
    close_fd(&s->agent_fd);
    s->clock = "not synced";
    helper_log_warn(
        QWDLOGNO(05042) "session %s: the guest agent did not answer guest-set-time in %d s", s->id,
        AGENT_TIMEOUT_S);
}

/* A shared-recipe clone (-incoming defer): once its QMP socket is there, sends it the state
 * (a bounded exchange of a few ms, like the template's save). Not there yet: next tick. A
 * clone that does not take it in time is killed, which falls back to a cold boot. */
static void drive_restore(helper_session *s, apr_time_t now)
{
    int fd = open(s->restore_state, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && helper_qmp_restore(s->qmp_socket, fd, QMP_TIMEOUT_MS) == 0) {
        close(fd);
        s->restore_state = NULL;
        helper_log_info(QWDLOGNO(05043) "session %s: restoring the warm image (%.2f s after exec)",
                        s->id, (double)(now - s->created) / APR_USEC_PER_SEC);
        return;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (now > s->restore_deadline) {
        helper_log_warn(
            QWDLOGNO(05044) "session %s: QEMU did not take the warm state over QMP, killing it",
            s->id);
        s->restore_state = NULL;
        kill(s->pid, SIGKILL);
    }
}

static void escalate_stop(helper_session *s, apr_time_t now)
{
    if (s->sigkill_at && now >= s->sigkill_at) {
        helper_log_warn(QWDLOGNO(05045) "session %s: QEMU still there, SIGKILL", s->id);
        kill(s->pid, SIGKILL);
        s->sigkill_at = 0;
    }
    else if (s->sigterm_at && now >= s->sigterm_at) {
        helper_log_warn(QWDLOGNO(05046) "session %s: QEMU ignored quit, SIGTERM", s->id);
        kill(s->pid, SIGTERM);
        s->sigterm_at = 0;
    }
}

void helper_sessions_tick(helper *h)
{
    apr_time_t now = apr_time_now();
    int check_expiry = now >= h->next_expiry_check;
    if (check_expiry) {
        h->next_expiry_check = now + apr_time_from_sec(h->config->expiry_interval);
    }
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state == SESSION_ENDED) {
            /* Deleting the current entry during apr_hash iteration is allowed. */
            if (now - s->ended_at > apr_time_from_sec(h->config->ended_keep)
                && !helper_clients_wait_for(h, s)) {
                forget(s);
            }
            continue;
        }
        if (s->restore_state && !s->stop_reason) {
            drive_restore(s, now); /* probed once restoring: "running" means restored */
        }
        else if (s->state == SESSION_STARTING && !s->stop_reason) {
            start_probe(s, now);
        }
        clock_sync_timeout(s, now);
        if (s->stop_reason) {
            escalate_stop(s, now);
        }
        else if (check_expiry && now >= s->expires) {
            helper_session_stop(s, QWD_END_EXPIRED);
        }
    }
}

/* Fills s from its record; returns 0 when the record is usable. */
static int load_record(helper_session *s, json_t *record)
{
    const char *token = NULL, *machine = NULL, *owner = NULL, *video = NULL, *boot = NULL,
               *ref = NULL;
    json_int_t pid = 0, created = 0, expires = 0;
    int oneshot = 0;
    if (json_unpack(record, "{s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:I, s?s, s?s}", "token",
                    &token, "machine", &machine, "owner", &owner, "video", &video, "cpu", &s->cpu,
                    "memory_mib", &s->memory_mib, "oneshot", &oneshot, "pid", &pid, "created",
                    &created, "expires", &expires, "boot", &boot, "ref", &ref)
            != 0
        || !qwd_token_is_valid(token) || pid <= 1) {
        return -1;
    }
    s->token = apr_pstrdup(s->pool, token);
    s->machine = apr_pstrdup(s->pool, machine);
    s->owner = apr_pstrdup(s->pool, owner);
    s->video = apr_pstrdup(s->pool, video);
    s->boot = apr_pstrdup(s->pool, boot ? boot : QWD_BOOT_COLD);
    s->ref = ref ? apr_pstrdup(s->pool, ref) : NULL;
    s->oneshot = oneshot;
    s->pid = (pid_t)pid;
    s->created = apr_time_from_sec(created);
    s->expires = apr_time_from_sec(expires);
    return 0;
}

/* A shared-recipe clone whose previous helper went away between its exec and its QMP
 * restore still waits (-incoming defer): drive the restore as its launch would have. The state
 * is its profile's warm image (STATE/warm/KEY/state.bin); without it the clone is killed, as a
 * launch does when the restore cannot be sent (an adopted VM is not retried cold). */
static void resume_pending_restore(helper_session *s)
{
    if (helper_qmp_restore_pending(s->qmp_socket, QMP_TIMEOUT_MS) != 1) {
        return;
    }
    const char *key = qwd_warm_key(s->pool, s->machine, s->cpu, s->memory_mib, s->video);
    const char *state =
        apr_pstrcat(s->pool, s->h->config->state_dir, "/warm/", key, "/", WARM_STATE, NULL);
    helper_log_warn(
        QWDLOGNO(05047) "session %s: its warm restore was still pending, sending it now", s->id);
    s->restore_state = state;
    s->restore_deadline = apr_time_now() + apr_time_from_sec(RESTORE_QMP_DEADLINE_S);
}

/* Re-adopts the VM of one session directory, or cleans it. */
static void adopt_one(helper *h, const char *id)
{
    helper_session *s = helper_session_new(h, id);
    char *text =
        helper_fs_read(s->pool, qwd_session_file(s->pool, s->dir, QWD_SESSION_RECORD), 65536);
    json_t *record = text ? json_loads(text, 0, NULL) : NULL;
    int usable = record && load_record(s, record) == 0;
    json_decref(record);
    const char *name = apr_pstrcat(s->pool, "qwd-", id, NULL);
    if (usable && helper_process_matches(s->pid, name)
        && helper_qmp_answers(s->qmp_socket, QMP_TIMEOUT_MS)
        && (s->pidfd = helper_pidfd_open(s->pid)) >= 0
        && helper_token_write(h, s->token, s->vnc_socket) == 0) {
        /* Prove VNC again before calling it running. */
        s->state = SESSION_STARTING;
        helper_log_info(QWDLOGNO(05048) "session %s: re-adopted QEMU pid %d", id, (int)s->pid);
        if (!strcmp(s->boot, QWD_BOOT_RESTORED)) {
            resume_pending_restore(s);
        }
        return;
    }
    helper_log_info(QWDLOGNO(05049) "session %s: its QEMU is gone, cleaning up", id);
    helper_session_discard(s);
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
    helper_tokens_prune(h);
    apr_pool_destroy(scratch);
}
