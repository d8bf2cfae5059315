/* SPDX-License-Identifier: Apache-2.0 */
/* VMs on this host. Every step is an event of the loop: qemu-img's and QEMU's exits, the VNC
 * probe's banner, QMP answers (restore, quit), the guest agent's answer; deadlines are ticks. */
#include "helper_backend_local.h"
#include "helper_agent.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "helper_qemu.h"
#include "helper_qmp.h"
#include "helper_unix.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A starting VM's VNC socket is tried this often until it sends its banner. */
#define PROBE_INTERVAL_MS 50
#define RFB_BANNER_PREFIX "RFB "
/* How long the guest agent may take to answer guest-set-time. */
#define AGENT_TIMEOUT_S 10
#define AGENT_REQUEST_MAX 128
/* A restored guest's script runs through guest-exec; guest-exec-status is asked after this
 * long, doubling up to the maximum, until it exited. */
#define SETUP_POLL_FIRST_MS 20
#define SETUP_POLL_MAX_MS 2000
#define SETUP_SHELL "/bin/sh"
/* The last line of qemu.log that a start failure quotes. */
#define QEMU_LOG_TAIL 512

struct helper_vm {
    apr_pool_t *pool;
    apr_pool_t *parent; /* the session's: problems reported are copied there */
    helper *h;
    const helper_plan *plan;
    helper_vm_hook *hook;
    void *session;
    const char *vnc_socket;
    const char *qmp_socket;
    helper_qemu *qemu; /* NULL once QEMU is gone */
    pid_t pid;
    int launched;
    int running;
    int stopping;
    apr_time_t sigterm_at; /* while stopping: when to escalate */
    apr_time_t sigkill_at;
    helper_qmp *qmp; /* the restore or the quit under way */
    /* The VNC probe that turns "starting" into "running". */
    int probe_fd;
    helper_watch *probe_watch;
    apr_time_t next_probe;
    /* A shared-recipe restore still to send over QMP (-incoming defer): the state file, and
     * when to give up (the session then falls back to a cold boot). */
    const char *restore_state;
    apr_time_t restore_deadline;
    apr_time_t exec_at;
    /* A restored clone's clock, set through the guest agent once it runs: NULL (not
     * applicable), "syncing", "synced" or "not synced". */
    int agent_fd;
    helper_watch *agent_watch;
    const char *clock;
    /* A start answered only once the display answers (plan->confirm_launch): QEMU runs, the
     * session does not know yet. */
    int launch_unconfirmed;
    /* A restored guest's script (plan->agent_script) through the agent, after the clock:
     * NULL (none), or QWD_SETUP_*; the guest-exec pid; a conversation or the pause before the
     * next guest-exec-status. */
    const char *setup;
    json_int_t setup_pid;
    int setup_fd;
    helper_watch *setup_watch;
    int setup_poll_ms;
    apr_time_t setup_started;
};

static void close_probe(helper_vm *vm)
{
    helper_watch_close(&vm->probe_watch, &vm->probe_fd);
}

static void close_agent(helper_vm *vm)
{
    helper_watch_close(&vm->agent_watch, &vm->agent_fd);
}

static void close_setup(helper_vm *vm)
{
    helper_watch_close(&vm->setup_watch, &vm->setup_fd);
}

static void cancel_qmp(helper_vm *vm)
{
    helper_qmp_cancel(vm->qmp);
    vm->qmp = NULL;
}

static apr_status_t vm_cleanup(void *data)
{
    helper_vm *vm = data;
    close_probe(vm);
    close_agent(vm);
    close_setup(vm);
    cancel_qmp(vm);
    return APR_SUCCESS;
}

static helper_vm *vm_new(helper *h, apr_pool_t *parent, const helper_plan *plan,
                         helper_vm_hook *hook, void *session)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, parent);
    helper_vm *vm = apr_pcalloc(pool, sizeof *vm);
    vm->pool = pool;
    vm->parent = parent;
    vm->h = h;
    vm->plan = plan;
    vm->hook = hook;
    vm->session = session;
    vm->vnc_socket = qwd_session_file(pool, plan->dir, QWD_SESSION_VNC_SOCKET);
    vm->qmp_socket = qwd_session_file(pool, plan->dir, QWD_SESSION_QMP_SOCKET);
    vm->probe_fd = -1;
    vm->agent_fd = -1;
    vm->setup_fd = -1;
    apr_pool_cleanup_register(pool, vm, vm_cleanup, apr_pool_cleanup_null);
    return vm;
}

static void local_release(helper_vm *vm)
{
    apr_pool_destroy(vm->pool); /* its qemu lives in a subpool */
}

static void report(helper_vm *vm, helper_vm_event event, const char *problem, int crashed,
                   const char *how)
{
    helper_vm_report report = {event, problem, crashed, how, NULL};
    vm->hook(vm->session, vm, &report);
}

static void on_quit(void *data, helper_qmp_result result, json_t *answer)
{
    helper_vm *vm = data;
    vm->qmp = NULL;
    if (result == QMP_FAILED) {
        helper_log_warn(QWDLOGNO(05035) "session %s: QMP quit failed, sending SIGTERM",
                        vm->plan->session_id);
        helper_qemu_kill(vm->qemu, SIGTERM);
        vm->sigterm_at = 0;
    }
}

/* Asks QEMU to quit; SIGTERM at once when QMP cannot even be reached. */
static void send_quit(helper_vm *vm)
{
    helper_qmp_command quit = {QMP_QUIT, -1};
    vm->qmp =
        helper_qmp_start(vm->h->events, vm->qmp_socket, &quit, 1, QMP_TIMEOUT_MS, on_quit, vm);
    if (!vm->qmp) {
        on_quit(vm, QMP_FAILED, NULL);
    }
}

/* The last non-empty line of QEMU's log, or "no output". */
static const char *qemu_log_last_line(helper_vm *vm)
{
    char tail[QEMU_LOG_TAIL];
    int fd = open(vm->plan->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return "no output";
    }
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof tail - 1 ? size - (off_t)sizeof tail + 1 : 0;
    ssize_t length = pread(fd, tail, sizeof tail - 1, from);
    close(fd);
    while (length > 0 && (tail[length - 1] == '\n' || tail[length - 1] == '\r')) {
        length--;
    }
    if (length <= 0) {
        return "no output";
    }
    tail[length] = '\0';
    const char *line = strrchr(tail, '\n');
    return apr_pstrdup(vm->parent, line ? line + 1 : tail);
}

static void on_qemu(void *data, const helper_qemu_report *qemu_report)
{
    helper_vm *vm = data;
    if (qemu_report->event == QEMU_STARTED) {
        vm->pid = helper_qemu_pid(vm->qemu);
        vm->launched = 1;
        vm->exec_at = helper_clock_now();
        if (vm->plan->restore == QWD_RESTORE_DEFER) {
            vm->restore_state = vm->plan->state_path;
            vm->restore_deadline = vm->exec_at + apr_time_from_sec(RESTORE_QMP_DEADLINE_S);
        }
        if (vm->stopping) {
            send_quit(vm); /* stopped while qemu-img ran, which finished first */
        }
        if (vm->plan->confirm_launch && !vm->stopping) {
            vm->launch_unconfirmed = 1; /* VM_LAUNCHED once the display answers */
            return;
        }
        report(vm, VM_LAUNCHED, NULL, 0, NULL);
        return;
    }
    helper_qemu_free(vm->qemu);
    vm->qemu = NULL;
    close_probe(vm);
    close_agent(vm);
    close_setup(vm);
    cancel_qmp(vm);
    if (vm->launch_unconfirmed && qemu_report->event == QEMU_EXITED && !vm->stopping) {
        /* It never showed its display: a device it could not open, most likely. Its own
         * words make the start's error. */
        vm->launch_unconfirmed = 0;
        report(vm, VM_FAILED,
               apr_psprintf(vm->parent, "QEMU ended before its display answered (%s): %s",
                            qemu_report->status_known
                                ? helper_describe_status(vm->pool, qemu_report->status)
                                : "unknown status",
                            qemu_log_last_line(vm)),
               0, NULL);
        return;
    }
    if (qemu_report->event == QEMU_FAILED) {
        /* A VM stopped before it ran (its qemu-img was killed) simply ended. */
        if (vm->stopping) {
            report(vm, VM_ENDED, NULL, 0, NULL);
        }
        else {
            report(vm, VM_FAILED, apr_pstrdup(vm->parent, qemu_report->problem), 0, NULL);
        }
        return;
    }
    int status = qemu_report->status;
    int clean = !qemu_report->status_known || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *how =
        qemu_report->status_known
            ? apr_pstrcat(vm->parent, "QEMU ", helper_describe_status(vm->pool, status), NULL)
            : NULL;
    report(vm, VM_ENDED, NULL, !clean, how);
}

static helper_vm *local_launch(helper *h, apr_pool_t *pool, const helper_plan *plan,
                               helper_vm_hook *hook, void *session, const char **problem)
{
    helper_vm *vm = vm_new(h, pool, plan, hook, session);
    /* Its own session: VMs belong to users and outlive the helper and its terminal. */
    helper_qemu_launch launch = {
        .dir = plan->dir,
        .log_path = plan->log_path,
        .disk_argv = plan->disk_argv,
        .disk_path = plan->disk_path,
        .argv = plan->argv,
        .state_path = plan->restore == QWD_RESTORE_FD ? plan->state_path : NULL,
        .flags = SPAWN_NEW_SESSION | (plan->no_hugepages ? SPAWN_NO_HUGEPAGES : 0),
        .seed_path = plan->seed_path,
        .seed = plan->seed,
        .seed_size = plan->seed_size,
    };
    vm->qemu = helper_qemu_start(h->events, vm->pool, &launch, on_qemu, vm, problem);
    if (!vm->qemu) {
        *problem = apr_pstrdup(pool, *problem);
        local_release(vm);
        return NULL;
    }
    return vm;
}

static void local_stop(helper_vm *vm)
{
    if (vm->stopping || !vm->qemu) {
        return;
    }
    vm->stopping = 1;
    apr_time_t now = helper_clock_now();
    vm->sigterm_at = now + apr_time_from_sec(SESSION_SIGTERM_AFTER_S);
    vm->sigkill_at = now + apr_time_from_sec(SESSION_SIGKILL_AFTER_S);
    close_probe(vm);
    cancel_qmp(vm); /* a restore still under way: QMP serves one client */
    vm->restore_state = NULL;
    if (!vm->launched) {
        helper_qemu_kill(vm->qemu, SIGKILL); /* qemu-img: its exit ends the VM */
        return;
    }
    send_quit(vm);
}

static void on_setup(void *data, short revents);

static void setup_over(helper_vm *vm, const char *state, const char *why)
{
    close_setup(vm);
    vm->setup = state;
    double seconds = (double)(helper_clock_now() - vm->setup_started) / APR_USEC_PER_SEC;
    if (!strcmp(state, QWD_SETUP_DONE)) {
        helper_log_info(QWDLOGNO(05401) "session %s: guest script done in %.2f s",
                        vm->plan->session_id, seconds);
    }
    else {
        helper_log_warn(QWDLOGNO(05402) "session %s: guest script failed after %.2f s: %s",
                        vm->plan->session_id, seconds, why);
    }
}

/* Sends one request about the guest script; its answer comes to on_setup. */
static void setup_request(helper_vm *vm, json_t *request)
{
    char *text = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    const char *line = text ? apr_pstrcat(vm->pool, text, "\n", NULL) : NULL;
    free(text);
    vm->setup_fd = line ? helper_agent_send(
                       qwd_session_file(vm->pool, vm->plan->dir, QWD_SESSION_AGENT_SOCKET), line)
                        : -1;
    vm->setup_watch = vm->setup_fd >= 0
                          ? helper_watch_fd(vm->h->events, vm->setup_fd, POLLIN, on_setup, vm)
                          : NULL;
    if (!vm->setup_watch) {
        setup_over(vm, QWD_SETUP_FAILED, "cannot reach the guest agent");
        return;
    }
    helper_watch_deadline(vm->setup_watch, helper_clock_now() + apr_time_from_sec(AGENT_TIMEOUT_S));
}

static void ask_status(void *data, short revents)
{
    helper_vm *vm = data;
    close_setup(vm); /* the pause's timer */
    setup_request(vm, json_pack("{s:s, s:{s:I}}", "execute", "guest-exec-status", "arguments",
                                "pid", vm->setup_pid));
}

/* guest-exec's answer (its pid), then guest-exec-status's (exited or not) until it ended. */
static void on_setup(void *data, short revents)
{
    helper_vm *vm = data;
    json_t *answer = NULL;
    int got = revents ? helper_agent_read(vm->setup_fd, &answer) : -2;
    if (got == 0) {
        return;
    }
    close_setup(vm);
    json_t *result = json_object_get(answer, "return");
    if (got < 0 || !json_is_object(result)) {
        const char *error =
            json_string_value(json_object_get(json_object_get(answer, "error"), "desc"));
        setup_over(vm, QWD_SETUP_FAILED,
                   got == -2 ? "the guest agent did not answer in time"
                   : error   ? apr_pstrcat(vm->pool, "the guest agent refused: ", error, NULL)
                             : "the guest agent's answer was unreadable");
        json_decref(answer);
        return;
    }
    if (!vm->setup_pid) {
        vm->setup_pid = json_integer_value(json_object_get(result, "pid"));
        if (vm->setup_pid <= 0) {
            setup_over(vm, QWD_SETUP_FAILED, "guest-exec gave no pid");
            json_decref(answer);
            return;
        }
        vm->setup = QWD_SETUP_RUNNING;
    }
    else if (json_is_true(json_object_get(result, "exited"))) {
        json_int_t status = json_integer_value(json_object_get(result, "exitcode"));
        setup_over(vm, status == 0 ? QWD_SETUP_DONE : QWD_SETUP_FAILED,
                   apr_psprintf(vm->pool, "exit status %" JSON_INTEGER_FORMAT, status));
        json_decref(answer);
        return;
    }
    json_decref(answer);
    /* Ask again after a pause (a timer watch), longer each time. */
    vm->setup_watch = helper_watch_fd(vm->h->events, -1, 0, ask_status, vm);
    if (!vm->setup_watch) {
        setup_over(vm, QWD_SETUP_FAILED, "no memory");
        return;
    }
    helper_watch_deadline(vm->setup_watch,
                          helper_clock_now() + apr_time_from_msec(vm->setup_poll_ms));
    vm->setup_poll_ms =
        vm->setup_poll_ms * 2 > SETUP_POLL_MAX_MS ? SETUP_POLL_MAX_MS : vm->setup_poll_ms * 2;
}

/* The guest script of a restored VM: its host folders' mounts and start-up script, run by the
 * agent with the guest's shell (it was in no seed: the guest does not boot again). */
static void start_setup(helper_vm *vm)
{
    vm->setup_started = helper_clock_now();
    vm->setup_poll_ms = SETUP_POLL_FIRST_MS;
    setup_request(vm, json_pack("{s:s, s:{s:s, s:[s, s], s:b}}", "execute", "guest-exec",
                                "arguments", "path", SETUP_SHELL, "arg", "-c",
                                vm->plan->agent_script, "capture-output", 0));
}

/* A restored clone's clock stands where the template's stood when it was saved: set it from
 * the host's (the agent then also writes the guest's RTC). */
static void on_agent(void *data, short revents)
{
    helper_vm *vm = data;
    const char *id = vm->plan->session_id;
    int answer = revents ? helper_agent_answer(vm->agent_fd) : -2;
    if (answer == 0) {
        return;
    }
    close_agent(vm);
    vm->clock = answer == 1 ? "synced" : "not synced";
    if (answer == 1) {
        helper_log_info(QWDLOGNO(05040) "session %s: guest clock set through the guest agent", id);
    }
    else if (answer == -1) {
        helper_log_warn(QWDLOGNO(05041) "session %s: the guest agent refused guest-set-time", id);
    }
    else {
        helper_log_warn(
            QWDLOGNO(05042) "session %s: the guest agent did not answer guest-set-time in %d s", id,
            AGENT_TIMEOUT_S);
    }
    if (vm->plan->agent_script) {
        start_setup(vm); /* one conversation with the agent at a time */
    }
}

static void start_clock_sync(helper_vm *vm)
{
    char request[AGENT_REQUEST_MAX];
    snprintf(request, sizeof request, AGENT_SET_TIME_FMT, (long long)apr_time_now() * 1000);
    vm->agent_fd = helper_agent_send(
        qwd_session_file(vm->pool, vm->plan->dir, QWD_SESSION_AGENT_SOCKET), request);
    vm->agent_watch = vm->agent_fd >= 0
                          ? helper_watch_fd(vm->h->events, vm->agent_fd, POLLIN, on_agent, vm)
                          : NULL;
    if (!vm->agent_watch) {
        close_agent(vm);
        vm->clock = "not synced";
        helper_log_warn(QWDLOGNO(05038) "session %s: cannot reach the guest agent to set the clock",
                        vm->plan->session_id);
        return;
    }
    helper_watch_deadline(vm->agent_watch, helper_clock_now() + apr_time_from_sec(AGENT_TIMEOUT_S));
    vm->clock = "syncing";
}

static void on_probe(void *data, short revents)
{
    helper_vm *vm = data;
    char banner[sizeof RFB_BANNER_PREFIX - 1];
    ssize_t n = recv(vm->probe_fd, banner, sizeof banner, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    close_probe(vm);
    if (n != (ssize_t)sizeof banner || memcmp(banner, RFB_BANNER_PREFIX, sizeof banner)) {
        return; /* tried again at the next interval */
    }
    vm->running = 1;
    helper_log_info(QWDLOGNO(05039) "session %s: running (VNC answers)", vm->plan->session_id);
    if (vm->launch_unconfirmed) {
        vm->launch_unconfirmed = 0;
        report(vm, VM_LAUNCHED, NULL, 0, NULL);
    }
    report(vm, VM_RUNNING, NULL, 0, NULL);
    if (vm->plan->profile.guest_agent && !strcmp(vm->plan->boot, QWD_BOOT_RESTORED) && !vm->clock) {
        if (vm->plan->agent_script) {
            vm->setup = QWD_SETUP_WAITING;
        }
        start_clock_sync(vm);
    }
}

static void start_probe(helper_vm *vm, apr_time_t now)
{
    if (vm->probe_fd >= 0 || now < vm->next_probe) {
        return;
    }
    vm->next_probe = now + apr_time_from_msec(PROBE_INTERVAL_MS);
    vm->probe_fd = helper_unix_connect(vm->vnc_socket);
    vm->probe_watch = vm->probe_fd >= 0
                          ? helper_watch_fd(vm->h->events, vm->probe_fd, POLLIN, on_probe, vm)
                          : NULL;
    if (!vm->probe_watch) {
        close_probe(vm);
    }
}

static void on_restore(void *data, helper_qmp_result result, json_t *answer)
{
    helper_vm *vm = data;
    vm->qmp = NULL;
    if (result == QMP_OK) {
        vm->restore_state = NULL;
        helper_log_info(QWDLOGNO(05043) "session %s: restoring the warm image (%.2f s after exec)",
                        vm->plan->session_id,
                        (double)(helper_clock_now() - vm->exec_at) / APR_USEC_PER_SEC);
    }
}

/* A shared-recipe clone (-incoming defer): once its QMP socket is there, sends it the state
 * (a short conversation, like the template's save). Not there yet: next tick. A clone that
 * does not take it in time is killed, which falls back to a cold boot. */
static void drive_restore(helper_vm *vm, apr_time_t now)
{
    if (vm->qmp) {
        return;
    }
    if (now > vm->restore_deadline) {
        helper_log_warn(
            QWDLOGNO(05044) "session %s: QEMU did not take the warm state over QMP, killing it",
            vm->plan->session_id);
        vm->restore_state = NULL;
        helper_qemu_kill(vm->qemu, SIGKILL);
        return;
    }
    int fd = open(vm->restore_state, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    helper_qmp_command restore[] = {
        {QMP_IGNORE_SHARED, -1}, {QMP_GETFD_STATE, fd}, {QMP_MIGRATE_FROM_STATE, -1}};
    vm->qmp =
        helper_qmp_start(vm->h->events, vm->qmp_socket, restore, 3, QMP_TIMEOUT_MS, on_restore, vm);
    close(fd); /* the conversation holds its own copy until it is passed */
}

static void escalate_stop(helper_vm *vm, apr_time_t now)
{
    if (vm->sigkill_at && now >= vm->sigkill_at) {
        helper_log_warn(QWDLOGNO(05045) "session %s: QEMU still there, SIGKILL",
                        vm->plan->session_id);
        helper_qemu_kill(vm->qemu, SIGKILL);
        vm->sigkill_at = 0;
    }
    else if (vm->sigterm_at && now >= vm->sigterm_at) {
        helper_log_warn(QWDLOGNO(05046) "session %s: QEMU ignored quit, SIGTERM",
                        vm->plan->session_id);
        helper_qemu_kill(vm->qemu, SIGTERM);
        vm->sigterm_at = 0;
    }
}

static int local_tick(helper_vm *vm, apr_time_t now)
{
    if (!vm->qemu || !vm->launched) {
        return !vm->running;
    }
    if (vm->stopping) {
        escalate_stop(vm, now);
    }
    else if (vm->restore_state) {
        drive_restore(vm, now); /* probed once restored: "running" means restored */
    }
    else if (!vm->running) {
        start_probe(vm, now);
    }
    return !vm->running;
}

/* Whether the VM at qmp_socket, started with -incoming defer, still waits for its state: its
 * status is inmigrate and no incoming migration has begun (query-migrate then has no status).
 * A short exchange at startup, before the loop runs. */
static int restore_pending(const char *qmp_socket)
{
    helper_qmp_command status = {QMP_QUERY_STATUS, -1}, migrate = {QMP_QUERY_MIGRATE, -1};
    json_t *answer = NULL;
    int pending = 0;
    if (helper_qmp_run(qmp_socket, &status, 1, QMP_TIMEOUT_MS, &answer) == QMP_OK) {
        const char *state = json_string_value(json_object_get(answer, "status"));
        pending = state && !strcmp(state, "inmigrate");
    }
    json_decref(answer);
    answer = NULL;
    if (pending) {
        pending = helper_qmp_run(qmp_socket, &migrate, 1, QMP_TIMEOUT_MS, &answer) == QMP_OK
                  && !json_object_get(answer, "status");
    }
    json_decref(answer);
    return pending;
}

static helper_vm *local_adopt(helper *h, apr_pool_t *pool, const helper_plan *plan, pid_t pid,
                              helper_vm_hook *hook, void *session)
{
    helper_vm *vm = vm_new(h, pool, plan, hook, session);
    if (!helper_process_matches(pid, apr_pstrcat(vm->pool, "qwd-", plan->session_id, NULL))
        || helper_qmp_run(vm->qmp_socket, NULL, 0, QMP_TIMEOUT_MS, NULL) != QMP_OK
        || !(vm->qemu = helper_qemu_adopt(h->events, vm->pool, pid, on_qemu, vm))) {
        local_release(vm);
        return NULL;
    }
    vm->pid = pid;
    vm->launched = 1;
    vm->exec_at = helper_clock_now();
    /* A shared-recipe clone whose previous helper went away between its exec and its QMP
     * restore still waits (-incoming defer): drive the restore as its launch would have. The
     * state is its profile's warm image; without it the clone is killed, as a launch does when
     * the restore cannot be sent (an adopted VM is not retried cold). */
    if (plan->state_path && restore_pending(vm->qmp_socket)) {
        helper_log_warn(
            QWDLOGNO(05047) "session %s: its warm restore was still pending, sending it now",
            plan->session_id);
        vm->restore_state = plan->state_path;
        vm->restore_deadline = vm->exec_at + apr_time_from_sec(RESTORE_QMP_DEADLINE_S);
    }
    return vm;
}

static pid_t local_pid(const helper_vm *vm)
{
    return vm->pid;
}

static const char *local_clock(const helper_vm *vm)
{
    return vm->clock;
}

static const char *local_setup(const helper_vm *vm)
{
    return vm->setup ? vm->setup : (vm->plan->agent_script ? QWD_SETUP_WAITING : NULL);
}

const helper_backend helper_backend_local = {
    .name = "local",
    .launch = local_launch,
    .adopt = local_adopt,
    .stop = local_stop,
    .tick = local_tick,
    .pid = local_pid,
    .clock = local_clock,
    .setup = local_setup,
    .release = local_release,
};
