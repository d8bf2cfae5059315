/* SPDX-License-Identifier: Apache-2.0 */
/* Sessions as Slurm batch jobs. Every Slurm command is a child the loop watches (sbatch,
 * squeue, sinfo, scancel, scontrol), its output in a memory file read when it exits; one squeue
 * polls all the helper's jobs. The job reports through its comment ("qwd port=N boot=B", "qwd
 * ended=expired", "qwd failed=WHY"); its node's address comes from Slurm (sinfo), never from
 * the job or a client. A viewer's connection to the session's vnc.sock is relayed by a forked
 * child over the node's channel (TLS with the session's key). */
#include "helper_backend_slurm.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_fs.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "node_channel.h"
#include "qwd_protocol.h"
#include "qwd_token.h"
#include "qwd_warm.h"

#include <apr_hash.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* squeue's fields, in this order, '|'-separated; the comment last (it may hold anything). */
#define SQUEUE_FORMAT "%i|%T|%r|%N|%e|%j|%l|%k"
#define SQUEUE_FIELDS 8
/* Polls while a job waits, starts or stops; otherwise every slurm_poll_interval. */
#define FAST_POLL_MS 500
/* A probe of the display through the channel, this often until it answers. */
#define PROBE_INTERVAL_MS 1000
/* scancel again this often while the job has not ended. */
#define SCANCEL_RETRY_S 10
/* An scontrol update (extend) that has not answered by then is killed: the extend fails. */
#define SCONTROL_TIMEOUT_S 20
/* Slurm's timer may send the --signal warning this much earlier than asked (sbatch(1)). */
#define WARNING_EARLY_S 60
/* Longest output of a Slurm command read (squeue of many jobs is still far below). */
#define COMMAND_OUTPUT_MAX (1 << 20)
#define RELAY_BACKLOG 16
#define RFB_BANNER_LENGTH 12
#define KEY_FILE "node.key"
#define SECONDS_PER_MINUTE 60
#define MINUTES_PER_HOUR 60
#define HOURS_PER_DAY 24
#define COMMENT_MAX 200
/* A warm build job's time limit: boot, readiness, save. */
#define WARM_BUILD_MINUTES 15

typedef struct slurm_command slurm_command;
typedef void slurm_command_done(void *data, int ok, char *output);

/* A Slurm command run as a child, its output in a memory file. */
struct slurm_command {
    helper *h;
    pid_t pid;
    int output_fd;
    slurm_command_done *done;
    void *data;
};

struct helper_slurm {
    apr_pool_t *pool;
    helper *h;
    unsigned char key[NODE_SECRET_BYTES]; /* STATE/node.key: each session's key derives from it */
    apr_hash_t *vms;                      /* session id → helper_vm */
    slurm_command *squeue;                /* the poll under way */
    apr_time_t squeue_started;            /* helper_clock_now() when it was started */
    slurm_command *sinfo;                 /* node addresses being read */
    apr_time_t next_poll;
    apr_hash_t *addresses;  /* node name → NodeAddr */
    apr_hash_t *warm_asked; /* "NODE KEY" → 1: a warm build job was submitted (once each) */
    char *snapshot;         /* squeue at startup, for adoption */
    int warned_poll;        /* the last poll failed (logged once until one works) */
};

struct helper_vm {
    apr_pool_t *pool;
    apr_pool_t *parent;
    helper *h;
    const helper_plan *plan;
    helper_vm_hook *hook;
    void *session;
    unsigned char key[NODE_SECRET_BYTES];
    slurm_command *sbatch;
    slurm_command *scancel;
    slurm_command *scontrol;     /* an extend under way: scontrol update TimeLimit */
    apr_time_t scontrol_timeout; /* when it is killed */
    int scontrol_killed;
    int asked_limit_s;    /* the time limit it asks for */
    apr_time_t limit_set; /* helper_clock_now() when the limit last changed: older polls are
                             stale about it */
    const char *job;      /* once submitted */
    int launched;         /* VM_LAUNCHED reported (or adopted) */
    int running;
    int stopping;
    int ended;
    apr_time_t scancel_at; /* when to send scancel (again) */
    /* what the last poll said */
    const char *queued;
    const char *node;
    const char *boot;
    int port;
    apr_time_t expires;
    int limit_s;            /* the job's time limit (whole minutes); 0: unknown or UNLIMITED */
    const char *ended_word; /* the job's comment: ended=WORD */
    const char *failed;     /* the job's comment: failed=WHY */
    /* the display */
    pid_t probe_pid;
    apr_time_t next_probe;
    int listen_fd;
    helper_watch *listen_watch;
    const char *vnc_socket;
    apr_array_header_t *relays; /* pids of the relay children running */
};

/* ---------------------------------------------------------------- Slurm commands */

static const char *slurm_bin(helper *h, apr_pool_t *pool, const char *program)
{
    return apr_pstrcat(pool, h->config->slurm_bin_dir, "/", program, NULL);
}

static char *read_output(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || size > COMMAND_OUTPUT_MAX) {
        size = size < 0 ? 0 : COMMAND_OUTPUT_MAX;
    }
    char *text = malloc((size_t)size + 1);
    ssize_t got = text ? pread(fd, text, (size_t)size, 0) : -1;
    if (!text) {
        return NULL;
    }
    text[got > 0 ? got : 0] = '\0';
    return text;
}

static void command_exited(void *data, pid_t pid, int status)
{
    slurm_command *command = data;
    char *output = read_output(command->output_fd);
    close(command->output_fd);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    slurm_command_done *done = command->done;
    void *done_data = command->data;
    free(command);
    static char nothing[1];
    if (done) { /* NULL: its vm was released meanwhile */
        done(done_data, ok, output ? output : nothing);
    }
    free(output);
}

/* Starts argv (the secret, when set, in its environment only); done hears how it ended and
 * its output (stdout and stderr). NULL when it cannot be started (logged). */
static slurm_command *command_start(helper *h, const char *const *argv, const char *secret,
                                    slurm_command_done *done, void *data)
{
    slurm_command *command = calloc(1, sizeof *command);
    if (!command) {
        return NULL;
    }
    command->h = h;
    command->done = done;
    command->data = data;
    command->output_fd = memfd_create("qwd-slurm", MFD_CLOEXEC);
    if (command->output_fd < 0) {
        helper_log_error(QWDLOGNO(05602) "cannot run %s: memfd: %s", argv[0], strerror(errno));
        free(command);
        return NULL;
    }
    /* The child inherits the environment at fork: the secret is in the helper's only for this
     * call, never in argv or a file. */
    if (secret) {
        setenv(NODE_SECRET_ENV, secret, 1);
    }
    int error = helper_spawn(argv, command->output_fd, 0, &command->pid);
    if (secret) {
        unsetenv(NODE_SECRET_ENV);
    }
    if (!error && helper_watch_child(h->events, command->pid, command_exited, command) != 0) {
        kill(command->pid, SIGKILL);
        error = ENOMEM;
    }
    if (error) {
        helper_log_error(QWDLOGNO(05603) "cannot run %s: %s", argv[0], strerror(error));
        close(command->output_fd);
        free(command);
        return NULL;
    }
    return command;
}

/* The first line of output, for a log line. */
static const char *first_line(apr_pool_t *pool, const char *output)
{
    char *line = apr_pstrdup(pool, output);
    line[strcspn(line, "\n")] = '\0';
    return *line ? line : "(no output)";
}

/* ---------------------------------------------------------------- reports */

static void report(helper_vm *vm, helper_vm_event event, const char *problem, int crashed,
                   const char *how, const char *reason)
{
    helper_vm_report report = {event, problem, crashed, how, reason};
    vm->hook(vm->session, vm, &report);
}

static void close_display(helper_vm *vm)
{
    helper_watch_close(&vm->listen_watch, &vm->listen_fd);
    unlink(vm->vnc_socket);
}

/* The job is over: the VM's end (or, before the start was answered, its failure). The vm may
 * be released from within. */
static void job_over(helper_vm *vm, const char *state)
{
    const char *reason = NULL, *how;
    int crashed = 0;
    if (vm->ended) {
        return;
    }
    vm->ended = 1;
    close_display(vm);
    if (!strcmp(state, "NODE_FAIL")) {
        reason = QWD_END_NODE_LOST;
        how = apr_psprintf(vm->parent, "Slurm lost node %s (NODE_FAIL)", vm->node ? vm->node : "?");
    }
    else if (!strcmp(state, "TIMEOUT") || !strcmp(state, "DEADLINE")
             || (vm->ended_word && !strcmp(vm->ended_word, QWD_END_EXPIRED))) {
        reason = QWD_END_EXPIRED;
        how = "the job's time limit";
    }
    else if (vm->failed) {
        crashed = 1;
        how = apr_pstrcat(vm->parent, "qwd-node: ", vm->failed, NULL);
    }
    else if (!strcmp(state, "CANCELLED") || !strcmp(state, "PREEMPTED")) {
        reason = vm->stopping ? NULL : QWD_END_STOPPED;
        how = vm->stopping ? "scancel" : "the job was cancelled outside the helper";
    }
    else if (!strcmp(state, "COMPLETED")) {
        how = "the VM powered off";
    }
    else {
        crashed = 1;
        how = apr_psprintf(vm->parent, "job state %s", state);
    }
    helper_log_info(QWDLOGNO(05604) "session %s: job %s ended (%s on %s): %s", vm->plan->session_id,
                    vm->job ? vm->job : "?", state, vm->node ? vm->node : "no node", how);
    if (!vm->launched && !vm->stopping) {
        report(vm, VM_FAILED, apr_pstrdup(vm->parent, how), 0, NULL, NULL);
        return;
    }
    report(vm, VM_ENDED, NULL, crashed, how, reason);
}

/* ---------------------------------------------------------------- the display */

/* In a forked child: the channel to the node, or exit. */
static SSL *child_connect(helper_vm *vm, const char *address, const char **problem)
{
    SSL_CTX *ctx = node_channel_context(0, vm->plan->session_id, vm->key);
    SSL *ssl = ctx ? node_channel_connect(ctx, address, vm->port, problem) : NULL;
    if (!ctx) {
        *problem = "no TLS context";
    }
    return ssl;
}

/* Forks a child for the display: with conn_fd, a relay of that viewer connection; without, a
 * probe that exits 0 once the node's channel gives the RFB banner. Returns its pid or -1. */
static pid_t fork_display_child(helper_vm *vm, int conn_fd)
{
    helper_slurm *slurm = vm->h->slurm;
    const char *address =
        vm->node ? apr_hash_get(slurm->addresses, vm->node, APR_HASH_KEY_STRING) : NULL;
    if (!address) {
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    /* the child: nothing of the helper but its log and this connection */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(1);
    }
    helper_child_signal_defaults();
    node_channel_close_others(conn_fd, helper_log_fd());
    const char *problem = NULL;
    SSL *ssl = child_connect(vm, address, &problem);
    if (!ssl) {
        if (conn_fd >= 0) {
            helper_log_warn(QWDLOGNO(05605) "session %s: relay to %s:%d: %s", vm->plan->session_id,
                            address, vm->port, problem);
        }
        _exit(1);
    }
    if (conn_fd >= 0) {
        node_channel_relay(ssl, conn_fd);
        node_channel_close(ssl);
        _exit(0);
    }
    unsigned char banner[RFB_BANNER_LENGTH];
    int got = 0;
    alarm(NODE_CHANNEL_HANDSHAKE_S);
    while (got < RFB_BANNER_LENGTH) {
        int n = SSL_read(ssl, banner + got, RFB_BANNER_LENGTH - got);
        if (n <= 0) {
            break;
        }
        got += n;
    }
    node_channel_close(ssl);
    _exit(got == RFB_BANNER_LENGTH && !memcmp(banner, "RFB ", 4) ? 0 : 1);
}

static void relay_exited(void *data, pid_t pid, int status)
{
    helper_vm *vm = data;
    for (int i = 0; i < vm->relays->nelts; i++) {
        if (APR_ARRAY_IDX(vm->relays, i, pid_t) == pid) {
            APR_ARRAY_IDX(vm->relays, i, pid_t) =
                APR_ARRAY_IDX(vm->relays, vm->relays->nelts - 1, pid_t);
            vm->relays->nelts--;
            break;
        }
    }
}

static void on_viewer(void *data, short revents)
{
    helper_vm *vm = data;
    int conn = accept4(vm->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
        return;
    }
    pid_t pid = fork_display_child(vm, conn);
    close(conn);
    if (pid > 0) {
        if (helper_watch_child(vm->h->events, pid, relay_exited, vm) == 0) {
            APR_ARRAY_PUSH(vm->relays, pid_t) = pid;
        }
        else {
            kill(pid, SIGKILL);
        }
    }
}

/* The session's vnc.sock, as for a local VM: websockify's token file names it. */
static int open_display(helper_vm *vm)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (vm->listen_fd >= 0) {
        return 0;
    }
    if (strlen(vm->vnc_socket) >= sizeof addr.sun_path) {
        return -1;
    }
    strcpy(addr.sun_path, vm->vnc_socket);
    unlink(vm->vnc_socket);
    vm->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (vm->listen_fd < 0 || bind(vm->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0
        || chmod(vm->vnc_socket, 0600) != 0 || listen(vm->listen_fd, RELAY_BACKLOG) != 0
        || !(vm->listen_watch =
                 helper_watch_fd(vm->h->events, vm->listen_fd, POLLIN, on_viewer, vm))) {
        helper_log_error(QWDLOGNO(05606) "session %s: cannot listen on %s: %s",
                         vm->plan->session_id, vm->vnc_socket, strerror(errno));
        close_display(vm);
        return -1;
    }
    return 0;
}

static void probe_exited(void *data, pid_t pid, int status)
{
    helper_vm *vm = data;
    vm->probe_pid = 0;
    if (vm->ended || vm->stopping || vm->running || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0) {
        return; /* tried again at the next interval */
    }
    if (open_display(vm) != 0) {
        return;
    }
    vm->running = 1;
    helper_log_info(QWDLOGNO(05607) "session %s: running on %s (its channel answers)",
                    vm->plan->session_id, vm->node);
    report(vm, VM_RUNNING, NULL, 0, NULL, NULL);
}

static void start_probe(helper_vm *vm, apr_time_t now)
{
    if (vm->probe_pid || vm->running || vm->stopping || vm->ended || !vm->port
        || now < vm->next_probe) {
        return;
    }
    vm->next_probe = now + apr_time_from_msec(PROBE_INTERVAL_MS);
    pid_t pid = fork_display_child(vm, -1);
    if (pid > 0 && helper_watch_child(vm->h->events, pid, probe_exited, vm) == 0) {
        vm->probe_pid = pid;
    }
    else if (pid > 0) {
        kill(pid, SIGKILL);
    }
}

/* ---------------------------------------------------------------- what squeue says */

static const char *comment_word(apr_pool_t *pool, const char *comment, const char *name)
{
    const char *at = comment;
    size_t length = strlen(name);
    while ((at = strstr(at, name))) {
        if ((at == comment || at[-1] == ' ') && at[length] == '=') {
            const char *value = at + length + 1;
            /* failed= is the rest of the comment; the others are one word */
            return !strcmp(name, "failed") ? apr_pstrdup(pool, value)
                                           : apr_pstrndup(pool, value, strcspn(value, " "));
        }
        at += length;
    }
    return NULL;
}

/* "2026-12-07T10:00:00" (local time) as an apr_time_t; 0 when it is not a time. */
static apr_time_t parse_time(const char *text)
{
    struct tm tm = {0};
    const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || *end) {
        return 0;
    }
    tm.tm_isdst = -1;
    time_t seconds = mktime(&tm);
    return seconds > 0 ? apr_time_from_sec(seconds) : 0;
}

/* squeue's time limit ("[DAYS-][HOURS:]MINUTES:SECONDS", or a number of minutes) in seconds;
 * 0 for anything else (UNLIMITED, INVALID). */
static int parse_limit(const char *text)
{
    int days = 0, part[3], parts = 0;
    const char *dash = strchr(text, '-');
    if (dash) {
        days = atoi(text);
        text = dash + 1;
    }
    while (parts < 3 && *text >= '0' && *text <= '9') {
        char *end;
        part[parts++] = (int)strtol(text, &end, 10);
        text = *end == ':' ? end + 1 : end;
    }
    if (*text || !parts) {
        return 0;
    }
    int seconds = parts == 1 ? part[0] * SECONDS_PER_MINUTE
                  : parts == 2
                      ? part[0] * SECONDS_PER_MINUTE + part[1]
                      : (part[0] * MINUTES_PER_HOUR + part[1]) * SECONDS_PER_MINUTE + part[2];
    return days * HOURS_PER_DAY * MINUTES_PER_HOUR * SECONDS_PER_MINUTE + seconds;
}

static int is_pending(const char *state)
{
    return !strcmp(state, "PENDING") || !strcmp(state, "REQUEUED") || !strcmp(state, "REQUEUE_HOLD")
           || !strcmp(state, "REQUEUE_FED") || !strcmp(state, "SUSPENDED")
           || !strcmp(state, "RESV_DEL_HOLD");
}

static int is_alive(const char *state)
{
    return is_pending(state) || !strcmp(state, "RUNNING") || !strcmp(state, "CONFIGURING")
           || !strcmp(state, "COMPLETING") || !strcmp(state, "RESIZING")
           || !strcmp(state, "SIGNALING") || !strcmp(state, "STAGE_OUT")
           || !strcmp(state, "STOPPED");
}

static void ask_warm(helper_vm *vm);

/* Applies one squeue line's fields to vm: what it waits for, where it runs, what the node
 * said; its end time and limit unless asked (at asked, helper_clock_now()) before the limit
 * last changed. Reports (launched, over) follow; the vm may be released from within. */
static void apply(helper_vm *vm, char **fields, apr_time_t asked)
{
    const char *state = fields[1], *reason = fields[2], *node = fields[3], *comment = fields[7];
    int fresh = asked >= vm->limit_set;
    if (fresh) {
        vm->limit_s = parse_limit(fields[6]);
    }
    if (!strcmp(state, "RUNNING") || !strcmp(state, "COMPLETING")) {
        vm->queued = NULL;
        if (*node && strcmp(node, "(null)") && (!vm->node || strcmp(vm->node, node))) {
            vm->node = apr_pstrdup(vm->pool, node);
        }
        if (fresh) {
            vm->expires = parse_time(fields[4]);
        }
    }
    else if (is_pending(state)) {
        /* Slurm's own word ("None": the scheduler has not looked at it yet) */
        vm->queued = apr_pstrdup(vm->pool, *reason ? reason : "None");
    }
    const char *was = vm->boot;
    const char *port = comment_word(vm->pool, comment, "port");
    vm->port = port ? atoi(port) : vm->port;
    vm->boot = comment_word(vm->pool, comment, "boot") ?: vm->boot;
    vm->ended_word = comment_word(vm->pool, comment, "ended") ?: vm->ended_word;
    vm->failed = comment_word(vm->pool, comment, "failed") ?: vm->failed;
    if (vm->boot && strcmp(vm->boot, QWD_BOOT_COLD) && strcmp(vm->boot, QWD_BOOT_RESTORED)) {
        vm->boot = NULL;
    }
    if (!is_alive(state)) {
        job_over(vm, state);
        return;
    }
    if (!was && vm->boot && !strcmp(vm->boot, QWD_BOOT_COLD)) {
        ask_warm(vm);
    }
    if (!vm->launched) {
        vm->launched = 1;
        report(vm, VM_LAUNCHED, NULL, 0, NULL, NULL);
    }
}

/* Splits one line into SQUEUE_FIELDS fields (in place). */
static int split_line(char *line, char **fields)
{
    for (int i = 0; i < SQUEUE_FIELDS; i++) {
        fields[i] = line;
        char *bar = i < SQUEUE_FIELDS - 1 ? strchr(line, '|') : NULL;
        if (i < SQUEUE_FIELDS - 1 && !bar) {
            return -1;
        }
        if (bar) {
            *bar = '\0';
            line = bar + 1;
        }
    }
    return 0;
}

/* The line of output about job (fields filled in place of a copy in pool), or -1. */
static int find_job(apr_pool_t *pool, const char *output, const char *job, const char *name,
                    char **fields)
{
    char *copy = apr_pstrdup(pool, output), *state = NULL;
    for (char *line = strtok_r(copy, "\n", &state); line; line = strtok_r(NULL, "\n", &state)) {
        if (split_line(line, fields) == 0
            && (job ? !strcmp(fields[0], job) : !strcmp(fields[5], name) && is_alive(fields[1]))) {
            return 0;
        }
    }
    return -1;
}

static void start_sinfo(helper_slurm *slurm);
static const char *const *sbatch_argv(helper_vm *vm, const char *warm_node);

static void warm_submitted(void *data, int ok, char *output)
{
    helper_slurm *slurm = data;
    if (ok) {
        helper_log_info(QWDLOGNO(05616) "warm image build submitted as job %s",
                        first_line(slurm->pool, output));
    }
    else {
        helper_log_warn(QWDLOGNO(05617) "cannot submit a warm image build: %s",
                        first_line(slurm->pool, output));
    }
}

/* vm booted cold on its node: build its profile's warm image there (a job of its own, pinned
 * to the node; once per node and profile while this helper runs), so the next session of the
 * profile on that node is restored. */
static void ask_warm(helper_vm *vm)
{
    helper_slurm *slurm = vm->h->slurm;
    const qwd_vm_profile *profile = &vm->plan->profile;
    if (!vm->h->config->slurm_warm || !vm->node || !strcmp(profile->image_format, "iso")) {
        return;
    }
    const char *asked = apr_pstrcat(
        vm->pool, vm->node, " ",
        qwd_warm_key(vm->pool, profile->machine, profile->cpu, profile->memory_mib, profile->video),
        NULL);
    if (apr_hash_get(slurm->warm_asked, asked, APR_HASH_KEY_STRING)) {
        return;
    }
    apr_hash_set(slurm->warm_asked, apr_pstrdup(slurm->pool, asked), APR_HASH_KEY_STRING, "1");
    command_start(vm->h, sbatch_argv(vm, vm->node), NULL, warm_submitted, slurm);
}

static void poll_done(void *data, int ok, char *output)
{
    helper_slurm *slurm = data;
    slurm->squeue = NULL;
    if (!ok) {
        if (!slurm->warned_poll) {
            helper_log_warn(QWDLOGNO(05608) "squeue failed, jobs keep their last known state: %s",
                            first_line(slurm->pool, output));
        }
        slurm->warned_poll = 1;
        return;
    }
    slurm->warned_poll = 0;
    apr_pool_t *scratch;
    apr_pool_create(&scratch, slurm->pool);
    /* a report may release its own vm (never another): walk a copy of the table */
    apr_array_header_t *vms = apr_array_make(scratch, 8, sizeof(helper_vm *));
    for (apr_hash_index_t *i = apr_hash_first(scratch, slurm->vms); i; i = apr_hash_next(i)) {
        APR_ARRAY_PUSH(vms, helper_vm *) = apr_hash_this_val(i);
    }
    int need_addresses = 0;
    for (int i = 0; i < vms->nelts; i++) {
        helper_vm *vm = APR_ARRAY_IDX(vms, i, helper_vm *);
        char *fields[SQUEUE_FIELDS];
        if (!vm->job || vm->ended) {
            continue;
        }
        if (find_job(scratch, output, vm->job, NULL, fields) != 0) {
            job_over(vm, vm->stopping ? "CANCELLED" : "COMPLETED"); /* gone from squeue */
            continue;
        }
        int over = !is_alive(fields[1]);
        apply(vm, fields, slurm->squeue_started);
        if (!over && vm->node && !apr_hash_get(slurm->addresses, vm->node, APR_HASH_KEY_STRING)) {
            need_addresses = 1;
        }
    }
    apr_pool_destroy(scratch);
    if (need_addresses) {
        start_sinfo(slurm);
    }
}

static void sinfo_done(void *data, int ok, char *output)
{
    helper_slurm *slurm = data;
    slurm->sinfo = NULL;
    if (!ok) {
        helper_log_warn(QWDLOGNO(05609) "sinfo failed: %s", first_line(slurm->pool, output));
        return;
    }
    char *state = NULL;
    for (char *line = strtok_r(output, "\n", &state); line; line = strtok_r(NULL, "\n", &state)) {
        char *bar = strchr(line, '|');
        if (bar && bar != line && bar[1]) {
            *bar = '\0';
            if (!apr_hash_get(slurm->addresses, line, APR_HASH_KEY_STRING)) {
                apr_hash_set(slurm->addresses, apr_pstrdup(slurm->pool, line), APR_HASH_KEY_STRING,
                             apr_pstrdup(slurm->pool, bar + 1));
            }
        }
    }
}

/* Node name → NodeAddr of every node: the address a channel connects to is Slurm's. */
static void start_sinfo(helper_slurm *slurm)
{
    if (slurm->sinfo) {
        return;
    }
    const char *argv[] = {slurm_bin(slurm->h, slurm->pool, "sinfo"), "--noheader", "--Node",
                          "--format=%N|%o", NULL};
    slurm->sinfo = command_start(slurm->h, argv, NULL, sinfo_done, slurm);
}

static const char *const *squeue_argv(helper_slurm *slurm)
{
    static const char *argv[6];
    argv[0] = slurm_bin(slurm->h, slurm->pool, "squeue");
    argv[1] = "--me";
    argv[2] = "--noheader";
    argv[3] = "--states=all";
    argv[4] = "--format=" SQUEUE_FORMAT;
    argv[5] = NULL;
    return argv;
}

/* Polls when it is time: soon while something waits, starts or stops. */
static void poll_maybe(helper_slurm *slurm, apr_time_t now)
{
    if (slurm->squeue || now < slurm->next_poll) {
        return;
    }
    int busy = 0, any = 0;
    for (apr_hash_index_t *i = apr_hash_first(NULL, slurm->vms); i; i = apr_hash_next(i)) {
        helper_vm *vm = apr_hash_this_val(i);
        if (vm->job && !vm->ended) {
            any = 1;
            busy |= !vm->running || vm->stopping;
        }
    }
    slurm->next_poll = now
                       + (busy ? apr_time_from_msec(FAST_POLL_MS)
                               : apr_time_from_sec(slurm->h->config->slurm_poll_interval));
    if (any) {
        slurm->squeue_started = now;
        slurm->squeue = command_start(slurm->h, squeue_argv(slurm), NULL, poll_done, slurm);
    }
}

/* ---------------------------------------------------------------- the job */

static void scancel_done(void *data, int ok, char *output)
{
    helper_vm *vm = data;
    vm->scancel = NULL;
    if (!ok) {
        helper_log_warn(QWDLOGNO(05610) "session %s: scancel %s failed (tried again in %d s): %s",
                        vm->plan->session_id, vm->job, SCANCEL_RETRY_S,
                        first_line(vm->pool, output));
    }
    vm->h->slurm->next_poll = 0;
}

static void send_scancel(helper_vm *vm)
{
    if (vm->scancel || !vm->job) {
        return;
    }
    vm->scancel_at = helper_clock_now() + apr_time_from_sec(SCANCEL_RETRY_S);
    const char *argv[] = {slurm_bin(vm->h, vm->pool, "scancel"), vm->job, NULL};
    vm->scancel = command_start(vm->h, argv, NULL, scancel_done, vm);
}

static void sbatch_done(void *data, int ok, char *output)
{
    helper_vm *vm = data;
    vm->sbatch = NULL;
    char *job = apr_pstrndup(vm->pool, output, strcspn(output, ";\n"));
    if (!ok || !*job || strspn(job, "0123456789") != strlen(job)) {
        const char *problem =
            apr_psprintf(vm->parent, "sbatch failed: %s", first_line(vm->pool, output));
        helper_log_error(QWDLOGNO(05611) "session %s: %s", vm->plan->session_id, problem);
        vm->ended = 1;
        if (vm->stopping) {
            report(vm, VM_ENDED, NULL, 0, NULL, NULL);
        }
        else {
            report(vm, VM_FAILED, problem, 0, NULL, NULL);
        }
        return;
    }
    vm->job = job;
    vm->h->slurm->next_poll = 0; /* its first state answers the start */
    if (vm->stopping) {
        send_scancel(vm);
    }
}

/* A job's time limit for a lifetime: whole minutes (Slurm's), rounded up, at least one. */
static int job_minutes(int seconds)
{
    int minutes = (seconds + SECONDS_PER_MINUTE - 1) / SECONDS_PER_MINUTE;
    return minutes > 0 ? minutes : 1;
}

/* The job's command: qwd-node in the foreground (exec: it gets the job's signals), told the
 * session (or, for a warm build, a fresh id) and its profile; a session's secret comes through
 * the environment. */
static const char *node_command(helper_vm *vm, const char *id, int warm)
{
    const helper_config *config = vm->h->config;
    const qwd_vm_profile *profile = &vm->plan->profile;
    return apr_psprintf(vm->pool,
                        "exec %s%s%s%s --session %s --machine %s --format %s --cpu %d "
                        "--memory-mib %d --video %s%s",
                        config->slurm_node_command, config->slurm_node_config ? " --config " : "",
                        config->slurm_node_config ? config->slurm_node_config : "",
                        warm ? " --warm" : "", id, profile->machine, profile->image_format,
                        profile->cpu, profile->memory_mib, profile->video,
                        profile->guest_agent ? " --guest-agent" : "");
}

/* sbatch's argv for the session of vm, or (warm_node set) for a job that builds its profile's
 * warm image on that node. */
static const char *const *sbatch_argv(helper_vm *vm, const char *warm_node)
{
    const helper_config *config = vm->h->config;
    apr_pool_t *p = vm->pool;
    int minutes = warm_node ? WARM_BUILD_MINUTES : job_minutes(vm->plan->lifetime_s);
    const char *id = vm->plan->session_id;
    char *warm_id;
    if (warm_node && qwd_session_id_new(p, &warm_id) == APR_SUCCESS) {
        id = warm_id;
    }
    apr_array_header_t *argv = apr_array_make(p, 24, sizeof(const char *));
#define ARG(value) (APR_ARRAY_PUSH(argv, const char *) = (value))
    ARG(slurm_bin(vm->h, p, "sbatch"));
    ARG("--parsable");
    ARG(apr_pstrcat(p, "--job-name=", warm_node ? SLURM_WARM_PREFIX : SLURM_JOB_PREFIX, id, NULL));
    ARG(warm_node ? "--comment=qwd-warm" : "--comment=qwd");
    ARG("--nodes=1");
    ARG("--ntasks=1");
    ARG(apr_psprintf(p, "--cpus-per-task=%d", vm->plan->profile.cpu));
    ARG(apr_psprintf(p, "--mem=%d",
                     vm->plan->profile.memory_mib + config->slurm_memory_overhead_mib));
    ARG(apr_psprintf(p, "--time=%d", minutes));
    if (warm_node) {
        ARG(apr_pstrcat(p, "--nodelist=", warm_node, NULL));
    }
    else {
        ARG(apr_psprintf(p, "--signal=B:" SLURM_WARNING_SIGNAL "@%d", config->slurm_signal_s));
    }
    ARG("--no-requeue");
    ARG("--chdir=/");
    ARG(apr_pstrcat(p, "--output=", config->slurm_output, NULL));
    ARG("--export=" NODE_SECRET_ENV);
    if (config->slurm_partition) {
        ARG(apr_pstrcat(p, "--partition=", config->slurm_partition, NULL));
    }
    if (config->slurm_account) {
        ARG(apr_pstrcat(p, "--account=", config->slurm_account, NULL));
    }
    if (config->slurm_qos) {
        ARG(apr_pstrcat(p, "--qos=", config->slurm_qos, NULL));
    }
    ARG(apr_pstrcat(p, "--wrap=", node_command(vm, id, warm_node != NULL), NULL));
    ARG(NULL);
#undef ARG
    return (const char *const *)argv->elts;
}

/* The session's key: HMAC-SHA256(STATE/node.key, session id), the same after a restart. */
static void session_key(helper *h, const char *id, unsigned char key[NODE_SECRET_BYTES])
{
    unsigned int length = NODE_SECRET_BYTES;
    HMAC(EVP_sha256(), h->slurm->key, NODE_SECRET_BYTES, (const unsigned char *)id, strlen(id), key,
         &length);
}

static apr_status_t vm_cleanup(void *data)
{
    helper_vm *vm = data;
    helper_events *events = vm->h->events;
    close_display(vm);
    if (vm->probe_pid) {
        helper_unwatch_child(events, vm->probe_pid);
        kill(vm->probe_pid, SIGKILL);
    }
    /* the session is over: its viewers' relays go (reaped unheard) */
    for (int i = 0; i < vm->relays->nelts; i++) {
        pid_t pid = APR_ARRAY_IDX(vm->relays, i, pid_t);
        helper_unwatch_child(events, pid);
        kill(pid, SIGTERM);
    }
    /* commands under way finish by themselves, unheard */
    if (vm->sbatch) {
        vm->sbatch->done = NULL;
    }
    if (vm->scancel) {
        vm->scancel->done = NULL;
    }
    if (vm->scontrol) {
        vm->scontrol->done = NULL;
    }
    OPENSSL_cleanse(vm->key, sizeof vm->key);
    apr_hash_set(vm->h->slurm->vms, vm->plan->session_id, APR_HASH_KEY_STRING, NULL);
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
    vm->listen_fd = -1;
    vm->relays = apr_array_make(pool, 4, sizeof(pid_t));
    vm->vnc_socket = qwd_session_file(pool, plan->dir, QWD_SESSION_VNC_SOCKET);
    session_key(h, plan->session_id, vm->key);
    apr_hash_set(h->slurm->vms, plan->session_id, APR_HASH_KEY_STRING, vm);
    apr_pool_cleanup_register(pool, vm, vm_cleanup, apr_pool_cleanup_null);
    return vm;
}

static void slurm_release(helper_vm *vm)
{
    apr_pool_destroy(vm->pool);
}

static helper_vm *slurm_launch(helper *h, apr_pool_t *pool, const helper_plan *plan,
                               helper_vm_hook *hook, void *session, const char **problem)
{
    int error = helper_fs_mkdirs(pool, plan->dir, 0700);
    if (error) {
        *problem = apr_psprintf(pool, "cannot create %s: %s", plan->dir, strerror(error));
        return NULL;
    }
    helper_vm *vm = vm_new(h, pool, plan, hook, session);
    char secret[NODE_SECRET_HEX + 1];
    node_channel_format_secret(vm->key, secret);
    vm->limit_s = job_minutes(plan->lifetime_s) * SECONDS_PER_MINUTE;
    vm->sbatch = command_start(h, sbatch_argv(vm, NULL), secret, sbatch_done, vm);
    OPENSSL_cleanse(secret, sizeof secret);
    if (!vm->sbatch) {
        *problem = "cannot run sbatch (see the helper's log)";
        apr_pool_destroy(vm->pool);
        return NULL;
    }
    return vm;
}

static void scontrol_done(void *data, int ok, char *output)
{
    helper_vm *vm = data;
    vm->scontrol = NULL;
    if (!ok) {
        /* Slurm lets a job's user raise the limit of a pending job (within the partition's
         * MaxTime) but that of a running job only for its operators and administrators */
        const char *problem = apr_psprintf(
            vm->parent, "scontrol update JobId=%s TimeLimit=%d failed: %s%s", vm->job,
            vm->asked_limit_s / SECONDS_PER_MINUTE,
            vm->scontrol_killed
                ? apr_psprintf(vm->pool, "no answer within %d s", SCONTROL_TIMEOUT_S)
                : first_line(vm->pool, output),
            strstr(output, "denied") ? " (raising a running job's time limit takes a Slurm "
                                       "operator or administrator: docs/slurm.md)"
                                     : "");
        report(vm, VM_EXTEND_FAILED, problem, 0, NULL, NULL);
        return;
    }
    /* the job ends later by as much as its limit grew; the next poll says it in Slurm's words */
    if (vm->expires) {
        vm->expires += apr_time_from_sec(vm->asked_limit_s - vm->limit_s);
    }
    vm->limit_s = vm->asked_limit_s;
    vm->limit_set = helper_clock_now();
    vm->h->slurm->next_poll = 0;
    helper_log_info(QWDLOGNO(05618) "session %s: job %s's time limit raised to %d min",
                    vm->plan->session_id, vm->job, vm->limit_s / SECONDS_PER_MINUTE);
    report(vm, VM_EXTENDED, NULL, 0, NULL, NULL);
}

/* A longer lifetime is a longer time limit: the job's limit plus seconds, in whole minutes as
 * at sbatch (Slurm's --signal warning then comes slurm_signal_s before the new limit). */
static int slurm_extend(helper_vm *vm, apr_pool_t *pool, int seconds, const char **problem)
{
    if (vm->ended || vm->stopping) {
        *problem = "its job is ending";
        return -1;
    }
    if (!vm->job) {
        *problem = "its job is being submitted: try again in a moment";
        return -1;
    }
    if (vm->scontrol) {
        *problem = "an extend of it is under way";
        return -1;
    }
    if (vm->limit_s <= 0) {
        *problem = "its job has no time limit the helper knows (changed outside the helper?)";
        return -1;
    }
    /* the warning may be on its way: qwd-node would end the VM at it whatever the new limit */
    int last_s = vm->h->config->slurm_signal_s + WARNING_EARLY_S;
    apr_time_t left = vm->expires - apr_time_now();
    if (vm->expires && !vm->queued && left <= apr_time_from_sec(last_s)) {
        *problem = apr_psprintf(pool,
                                "it ends in %d s: in its last %d s (slurm_signal_s + %d) Slurm may "
                                "have sent the warning that ends it; extend it earlier",
                                (int)apr_time_sec(left > 0 ? left : 0), last_s, WARNING_EARLY_S);
        return -1;
    }
    vm->asked_limit_s = job_minutes(vm->limit_s + seconds) * SECONDS_PER_MINUTE;
    const char *argv[] = {
        slurm_bin(vm->h, vm->pool, "scontrol"), "update",
        apr_pstrcat(vm->pool, "JobId=", vm->job, NULL),
        apr_psprintf(vm->pool, "TimeLimit=%d", vm->asked_limit_s / SECONDS_PER_MINUTE), NULL};
    vm->scontrol_killed = 0;
    vm->scontrol_timeout = helper_clock_now() + apr_time_from_sec(SCONTROL_TIMEOUT_S);
    vm->scontrol = command_start(vm->h, argv, NULL, scontrol_done, vm);
    if (!vm->scontrol) {
        *problem = "cannot run scontrol (see the helper's log)";
        return -1;
    }
    return 0;
}

static void slurm_stop(helper_vm *vm)
{
    if (vm->stopping || vm->ended) {
        return;
    }
    vm->stopping = 1;
    close_display(vm);
    vm->h->slurm->next_poll = 0;
    send_scancel(vm); /* or once sbatch has said the job's id */
}

static int slurm_tick(helper_vm *vm, apr_time_t now)
{
    poll_maybe(vm->h->slurm, now);
    if (vm->ended) {
        return 0;
    }
    if (vm->stopping && !vm->scancel && vm->job && now >= vm->scancel_at) {
        send_scancel(vm);
    }
    if (vm->scontrol && !vm->scontrol_killed && now >= vm->scontrol_timeout) {
        vm->scontrol_killed = 1;
        kill(vm->scontrol->pid, SIGKILL); /* its exit fails the extend */
    }
    start_probe(vm, now);
    return 0;
}

/* The startup snapshot of the helper's jobs (squeue, run once and waited for: adoption happens
 * before the loop). */
static const char *snapshot(helper *h)
{
    helper_slurm *slurm = h->slurm;
    if (slurm->snapshot) {
        return slurm->snapshot;
    }
    int fd = memfd_create("qwd-squeue", MFD_CLOEXEC);
    const char *problem = NULL;
    if (fd < 0 || helper_run(slurm->pool, squeue_argv(slurm), fd, &problem) != 0) {
        char *output = fd >= 0 ? read_output(fd) : NULL;
        helper_log_error(QWDLOGNO(05612) "cannot list the helper's Slurm jobs: %s%s%s",
                         problem ? problem : strerror(errno), output ? ": " : "",
                         output ? first_line(slurm->pool, output) : "");
        free(output);
        slurm->snapshot = apr_pstrdup(slurm->pool, "");
    }
    else {
        char *output = read_output(fd);
        slurm->snapshot = apr_pstrdup(slurm->pool, output ? output : "");
        free(output);
    }
    if (fd >= 0) {
        close(fd);
    }
    return slurm->snapshot;
}

static helper_vm *slurm_adopt(helper *h, apr_pool_t *pool, const helper_plan *plan, pid_t pid,
                              helper_vm_hook *hook, void *session)
{
    char *fields[SQUEUE_FIELDS];
    const char *name = apr_pstrcat(pool, SLURM_JOB_PREFIX, plan->session_id, NULL);
    if (find_job(pool, snapshot(h), NULL, name, fields) != 0) {
        return NULL;
    }
    helper_vm *vm = vm_new(h, pool, plan, hook, session);
    vm->job = apr_pstrdup(vm->pool, fields[0]);
    vm->launched = 1; /* nothing is reported before the loop: the session counts it launched */
    apply(vm, fields, helper_clock_now());
    return vm;
}

static pid_t slurm_pid(const helper_vm *vm)
{
    return 0;
}

static const char *slurm_clock(const helper_vm *vm)
{
    return NULL;
}

static void slurm_place(const helper_vm *vm, helper_vm_place *place)
{
    place->queued = vm->queued;
    place->node = vm->node;
    place->job = vm->job;
    place->boot = vm->boot;
    place->expires = vm->expires;
    place->limit_s = vm->limit_s;
}

/* STATE/node.key: 32 random bytes made once (0600); every session's key derives from it. */
static void load_key(helper *h)
{
    helper_slurm *slurm = h->slurm;
    const char *path = apr_pstrcat(h->pool, h->config->state_dir, "/" KEY_FILE, NULL);
    apr_size_t length = 0;
    char *text = helper_fs_read_length(h->pool, path, NODE_SECRET_BYTES + 1, &length);
    if (text && length == NODE_SECRET_BYTES) {
        memcpy(slurm->key, text, NODE_SECRET_BYTES);
        OPENSSL_cleanse(text, length);
        return;
    }
    if (apr_generate_random_bytes(slurm->key, NODE_SECRET_BYTES) != APR_SUCCESS) {
        helper_log_error(QWDLOGNO(05613) "%s", "no random bytes for the node channel key");
        abort();
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, slurm->key, NODE_SECRET_BYTES) != NODE_SECRET_BYTES) {
        helper_log_error(QWDLOGNO(05614) "cannot write %s: %s: sessions on Slurm will not be "
                                         "reachable after a restart",
                         path, strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

void helper_slurm_init(helper *h)
{
    helper_slurm *slurm = apr_pcalloc(h->pool, sizeof *slurm);
    apr_pool_create(&slurm->pool, h->pool);
    slurm->h = h;
    slurm->vms = apr_hash_make(h->pool);
    slurm->addresses = apr_hash_make(h->pool);
    slurm->warm_asked = apr_hash_make(h->pool);
    h->slurm = slurm;
    load_key(h);
    /* the addresses of the nodes adopted jobs run on: asked once the loop runs */
    start_sinfo(slurm);
    helper_log_info(QWDLOGNO(05615) "Slurm backend ready (%s, partition %s)",
                    h->config->slurm_bin_dir,
                    h->config->slurm_partition ? h->config->slurm_partition : "the default");
}

const helper_backend helper_backend_slurm = {
    .name = QWD_BACKEND_SLURM,
    .remote = 1,
    .launch = slurm_launch,
    .adopt = slurm_adopt,
    .extend = slurm_extend,
    .stop = slurm_stop,
    .tick = slurm_tick,
    .pid = slurm_pid,
    .clock = slurm_clock,
    .release = slurm_release,
    .place = slurm_place,
};
