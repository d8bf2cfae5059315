/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-node: a session's VM on a cluster node, run as its Slurm batch job (docs/slurm.md). It
 * makes the overlay of the node-local master image, runs QEMU in the foreground (never
 * daemonized: Slurm tracks the job's processes) with the argv of lib/qwd_argv.c and VNC on a
 * node-local Unix socket, serves that display on the channel (node_channel.h: TLS keyed by the
 * session's secret, which comes in the environment), and tells the web host through the job's
 * comment: "qwd port=N boot=cold", then "qwd ended=expired" or "qwd failed=WHY". */
#include "helper.h"
#include "helper_accel.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_fs.h"
#include "helper_log.h"
#include "helper_machines.h"
#include "helper_proc.h"
#include "helper_qmp.h"
#include "helper_unix.h"
#include "node_channel.h"
#include "qwd_argv.h"
#include "qwd_machine_name.h"
#include "qwd_protocol.h"
#include "qwd_token.h"
#include "qwd_warm.h"

#include <apr_lib.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NODE_DEFAULT_CONFIG "/etc/qwd/qwd-node.conf"
/* How often the VNC socket is tried while QEMU starts, and for how long. */
#define PROBE_INTERVAL_MS 50
#define DISPLAY_DEADLINE_S 120
/* A stop: QMP quit, SIGTERM after this, SIGKILL after that (within Slurm's KillWait). */
#define STOP_SIGTERM_AFTER_MS 2000
#define STOP_SIGKILL_AFTER_MS 5000
#define LISTEN_BACKLOG 16
#define COMMENT_MAX 200
#define EXIT_FAILED 1
/* Signals read from the self-pipe at once. */
#define SIGNALS_AT_ONCE 64
/* Node-local warm images (stream recipe): STATE/warm/KEY/ holds these. */
#define WARM_BASE "base.qcow2"
#define WARM_STATE "state.bin"
#define WARM_META "meta.json"
#define WARM_META_MAX 65536
#define WARM_SERIAL_MAX (4 * 1024 * 1024)
#define WARM_DEFAULT_DELAY_S 30
#define WARM_READY_DEADLINE_S 600
#define WARM_SAVE_DEADLINE_S 120
#define WARM_POLL_MS 200

typedef struct node_job {
    apr_pool_t *pool;
    helper h; /* the configuration and host of qwd-helper's own parts used here */
    const char *session_id;
    const char *machine;
    const char *format;
    int cpu, memory_mib, guest_agent;
    const char *video;
    int warm;           /* --warm: build the profile's warm image on this node, no session */
    const char *boot;   /* QWD_BOOT_COLD, or QWD_BOOT_RESTORED from this node's warm image */
    const char *image;  /* the warm image restored, while QEMU starts */
    const char *job_id; /* SLURM_JOB_ID; NULL when run by hand */
    const char *dir;
    const char *vnc_socket;
    const char *qmp_socket;
    unsigned char key[NODE_SECRET_BYTES];
    pid_t qemu;
    int qemu_status;
    int listen_fd;
    int port;
} node_job;

static int signal_fd = -1; /* the read end of the self-pipe (helper_signal_pipe) */

static void usage(FILE *out)
{
    fprintf(out, "usage: qwd-node [--config FILE] [--set KEY=VALUE]... --session ID --machine "
                 "NAME --format FORMAT\n"
                 "                --cpu N --memory-mib MIB --video VIDEO [--guest-agent]\n"
                 "Run by qwd-helper's Slurm jobs; the session's secret comes in $" NODE_SECRET_ENV
                 ".\nSee docs/slurm.md.\n");
}

/* The job's comment, the node's only words to the web host (the helper polls squeue). */
static void tell(node_job *job, const char *words)
{
    if (!job->job_id) {
        printf("qwd-node: %s\n", words);
        fflush(stdout);
        return;
    }
    const char *argv[] = {apr_pstrcat(job->pool, job->h.config->slurm_bin_dir, "/scontrol", NULL),
                          "update", apr_pstrcat(job->pool, "JobId=", job->job_id, NULL),
                          apr_pstrcat(job->pool, "Comment=qwd ", words, NULL), NULL};
    const char *problem;
    if (helper_run(job->pool, argv, helper_log_fd(), &problem) != 0) {
        helper_log_error(QWDLOGNO(05620) "session %s: cannot set the job's comment: %s",
                         job->session_id, problem);
    }
}

/* Gives up before the VM ran: says why (in the comment, for the web host's log), cleans up. */
static void fail(node_job *job, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void fail(node_job *job, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *why = apr_pvsprintf(job->pool, format, args);
    va_end(args);
    helper_log_error(QWDLOGNO(05621) "session %s: %s", job->session_id ? job->session_id : "?",
                     why);
    for (char *c = why; *c; c++) {
        if (*c < ' ' || *c == '"' || *c == '\'' || *c == '\\') {
            *c = ' ';
        }
    }
    if (strlen(why) > COMMENT_MAX) {
        why[COMMENT_MAX] = '\0';
    }
    tell(job, apr_pstrcat(job->pool, "failed=", why, NULL));
    if (job->qemu > 0) {
        kill(job->qemu, SIGKILL);
        waitpid(job->qemu, NULL, 0);
    }
    if (job->dir) {
        helper_fs_remove_tree(job->dir);
    }
    exit(EXIT_FAILED);
}

static int int_option(const char *text)
{
    char *end;
    long value = strtol(text, &end, 10);
    return *text && !*end && value > 0 && value < (1 << 24) ? (int)value : -1;
}

static void parse_command_line(node_job *job, int argc, char **argv)
{
    helper_config *config = helper_config_defaults(job->pool);
    const char *config_path = NULL, *problem = NULL;
    apr_array_header_t *overrides = apr_array_make(job->pool, 4, sizeof(const char *));
    job->cpu = job->memory_mib = -1;
    for (int i = 1; i < argc; i++) {
        const char *option = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(option, "--help")) {
            usage(stdout);
            exit(0);
        }
        else if (!strcmp(option, "--guest-agent")) {
            job->guest_agent = 1;
            continue;
        }
        else if (!strcmp(option, "--warm")) {
            job->warm = 1;
            continue;
        }
        else if (!value) {
            usage(stderr);
            exit(2);
        }
        else if (!strcmp(option, "--config")) {
            config_path = value;
        }
        else if (!strcmp(option, "--set")) {
            APR_ARRAY_PUSH(overrides, const char *) = value;
        }
        else if (!strcmp(option, "--session")) {
            job->session_id = value;
        }
        else if (!strcmp(option, "--machine")) {
            job->machine = value;
        }
        else if (!strcmp(option, "--format")) {
            job->format = value;
        }
        else if (!strcmp(option, "--cpu")) {
            job->cpu = int_option(value);
        }
        else if (!strcmp(option, "--memory-mib")) {
            job->memory_mib = int_option(value);
        }
        else if (!strcmp(option, "--video")) {
            job->video = value;
        }
        else {
            usage(stderr);
            exit(2);
        }
        i++;
    }
    if (!config_path && access(NODE_DEFAULT_CONFIG, R_OK) == 0) {
        config_path = NODE_DEFAULT_CONFIG;
    }
    problem = config_path ? helper_config_read(job->pool, config, config_path) : NULL;
    for (int i = 0; !problem && i < overrides->nelts; i++) {
        problem = helper_config_set(job->pool, config, APR_ARRAY_IDX(overrides, i, const char *));
    }
    if (!problem) {
        problem = helper_config_check(job->pool, config);
    }
    job->h.config = config;
    if (!problem && helper_log_open(config->log_file) != 0) {
        problem = apr_psprintf(job->pool, "log_file: cannot open %s", config->log_file);
    }
    if (!problem
        && (!qwd_session_id_is_valid(job->session_id) || !job->machine || !job->format
            || job->cpu < 1 || job->memory_mib < QWD_PROTO_MIN_MEMORY_MIB || !job->video)) {
        problem = "--session, --machine, --format, --cpu, --memory-mib and --video are required";
    }
    if (!problem
        && (qwd_machine_name_problem(job->machine) || !qwd_argv_video_is_valid(job->video))) {
        problem = "bad --machine or --video";
    }
    if (problem) {
        fail(job, "%s", problem);
    }
}

/* The secret from the environment, which then forgets it: QEMU and the relays never see it. */
static void take_secret(node_job *job)
{
    const char *text = getenv(NODE_SECRET_ENV);
    int bad = node_channel_parse_secret(text, job->key) != 0;
    if (text) {
        OPENSSL_cleanse((void *)text, strlen(text));
    }
    unsetenv(NODE_SECRET_ENV);
    if (bad) {
        fail(job, "no session secret in $%s", NODE_SECRET_ENV);
    }
}

/* The profile of the node-local master image, which must be the machine the web host lists. */
static qwd_vm_profile node_profile(node_job *job)
{
    const helper_config *config = job->h.config;
    apr_array_header_t *machines =
        helper_machines_scan(job->pool, config->machines_dir, &job->h.host);
    const helper_machine *machine = helper_machines_find(machines, job->machine);
    if (!machine) {
        fail(job, "machine %s is not in %s on this node", job->machine, config->machines_dir);
    }
    if (machine->problem) {
        fail(job, "machine %s cannot be started on this node: %s", job->machine, machine->problem);
    }
    if (strcmp(machine->format, job->format)) {
        fail(job, "machine %s is a %s image on this node, %s on the web host", job->machine,
             machine->format, job->format);
    }
    qwd_vm_profile profile = helper_machine_profile(machine, job->cpu, job->memory_mib, job->video);
    profile.guest_agent = profile.guest_agent || job->guest_agent;
    return profile;
}

static int open_log(node_job *job)
{
    return open(qwd_session_file(job->pool, job->dir, QWD_SESSION_QEMU_LOG),
                O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* STATE/warm/KEY on this node: the profile's warm image. */
static const char *warm_dir(node_job *job, const qwd_vm_profile *profile)
{
    return apr_pstrcat(job->pool, job->h.config->state_dir, "/warm/",
                       qwd_warm_key(job->pool, profile->machine, profile->cpu, profile->memory_mib,
                                    profile->video),
                       NULL);
}

/* The argv hash a clone of profile has on this node (per-session parts are placeholders). */
static const char *clone_hash(node_job *job, const qwd_vm_profile *profile)
{
    qwd_vm_spec spec = qwd_vm_spec_make(&job->h.host, profile, "ID", "/DIR", "/DIR/disk");
    return qwd_argv_profile_hash(job->pool, &spec);
}

/* Whether dir holds a warm image a clone of profile can restore: its files, the same argv
 * hash (QEMU binary, accelerator, CPU model, devices) and the same master file. */
static int warm_usable(node_job *job, const char *dir, const qwd_vm_profile *profile)
{
    if (!strcmp(profile->image_format, "iso")) {
        return 0;
    }
    char *text =
        helper_fs_read(job->pool, qwd_session_file(job->pool, dir, WARM_META), WARM_META_MAX);
    json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
    json_t *master = qwd_warm_file_identity(profile->image_path);
    const char *hash = json_string_value(json_object_get(meta, "argv_hash"));
    int usable = meta && master && hash && !strcmp(hash, clone_hash(job, profile))
                 && json_equal(master, json_object_get(meta, "master"))
                 && access(qwd_session_file(job->pool, dir, WARM_STATE), R_OK) == 0
                 && access(qwd_session_file(job->pool, dir, WARM_BASE), R_OK) == 0;
    json_decref(meta);
    json_decref(master);
    return usable;
}

/* Makes the overlay (over the warm image's frozen base when image is set) and starts QEMU (a
 * child that dies with qwd-node), restoring image's state on its fd 3. */
static void start_vm(node_job *job, const char *image)
{
    helper *h = &job->h;
    const helper_config *config = h->config;
    qwd_vm_profile profile = node_profile(job);
    if (!job->dir) {
        job->dir = apr_pstrcat(job->pool, config->state_dir, "/sessions/", job->session_id, NULL);
        int error = helper_fs_mkdirs(job->pool, job->dir, 0700);
        if (error) {
            job->dir = NULL;
            fail(job, "cannot create the session directory: %s", strerror(error));
        }
    }
    job->vnc_socket = qwd_session_file(job->pool, job->dir, QWD_SESSION_VNC_SOCKET);
    job->qmp_socket = qwd_session_file(job->pool, job->dir, QWD_SESSION_QMP_SOCKET);
    const char *disk = qwd_session_file(job->pool, job->dir, QWD_SESSION_DISK);
    qwd_vm_spec spec = qwd_vm_spec_make(&h->host, &profile, job->session_id, job->dir, disk);
    spec.restore = image ? QWD_RESTORE_FD : QWD_RESTORE_NONE;
    const char **argv;
    const char *problem = qwd_argv_build(job->pool, &spec, &argv);
    if (problem) {
        fail(job, "%s", problem);
    }
    const char **disk_argv =
        qwd_disk_argv(job->pool, config->qemu_img, &profile,
                      image ? qwd_session_file(job->pool, image, WARM_BASE) : NULL, disk,
                      config->iso_scratch_size);
    int log_fd = open_log(job);
    unlink(disk);
    if (log_fd < 0 || helper_run(job->pool, disk_argv, log_fd, &problem) != 0) {
        fail(job, "%s", log_fd < 0 ? "cannot create qemu.log" : problem);
    }
    int state_fd =
        image ? open(qwd_session_file(job->pool, image, WARM_STATE), O_RDONLY | O_CLOEXEC) : -1;
    /* dies with qwd-node: a QEMU that outlived its launcher would be lost to Slurm */
    int error = helper_spawn_passing(argv, log_fd, SPAWN_DIE_WITH_PARENT, state_fd,
                                     QWD_RESTORE_STATE_FD, &job->qemu);
    close(log_fd);
    if (state_fd >= 0) {
        close(state_fd);
    }
    if (error) {
        fail(job, "cannot run %s: %s", argv[0], strerror(error));
    }
    job->image = image;
    job->boot = image ? QWD_BOOT_RESTORED : QWD_BOOT_COLD;
    helper_log_info(QWDLOGNO(05622) "session %s: QEMU pid %d started (%s, %d cpu, %d MiB, %s, %s)",
                    job->session_id, (int)job->qemu, job->machine, job->cpu, job->memory_mib,
                    h->host.accel, job->boot);
}

/* Whether QEMU still runs (reaps it when not). */
static int qemu_runs(node_job *job)
{
    if (job->qemu <= 0) {
        return 0;
    }
    int status;
    if (waitpid(job->qemu, &status, WNOHANG) == job->qemu) {
        job->qemu = 0;
        job->qemu_status = status;
        return 0;
    }
    return 1;
}

/* Whether QEMU's VNC socket sends the RFB banner. */
static int display_answers(node_job *job)
{
    int fd = helper_unix_connect(job->vnc_socket);
    if (fd < 0) {
        return 0;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char banner[4];
    int ok = poll(&pfd, 1, PROBE_INTERVAL_MS * 4) == 1
             && recv(fd, banner, sizeof banner, MSG_PEEK) == sizeof banner
             && !memcmp(banner, "RFB ", 4);
    close(fd);
    return ok;
}

/* The channel's port: the first free one of node_ports, from a point that differs per job. */
static void listen_channel(node_job *job)
{
    const helper_config *config = job->h.config;
    int min, max;
    helper_config_node_ports(config, &min, &max);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, config->node_listen, &addr.sin_addr) != 1) {
        fail(job, "node_listen %s is not an IPv4 address", config->node_listen);
    }
    int span = max - min + 1, first = (int)(getpid() % span);
    for (int i = 0; i < span; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        addr.sin_port = htons((uint16_t)(min + (first + i) % span));
        if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0
            && listen(fd, LISTEN_BACKLOG) == 0) {
            job->listen_fd = fd;
            job->port = min + (first + i) % span;
            return;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    fail(job, "no free port in node_ports %s", config->node_ports);
}

/* One viewer: a child that proves the peer holds the key, then relays to QEMU's display. */
static void serve_viewer(node_job *job, SSL_CTX *ctx, int conn)
{
    pid_t pid = fork();
    if (pid != 0) {
        close(conn);
        return;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    helper_child_signal_defaults();
    node_channel_close_others(conn, helper_log_fd());
    struct sockaddr_in peer;
    socklen_t length = sizeof peer;
    char from[INET_ADDRSTRLEN] = "?";
    if (getpeername(conn, (struct sockaddr *)&peer, &length) == 0) {
        inet_ntop(AF_INET, &peer.sin_addr, from, sizeof from);
    }
    SSL *ssl = node_channel_accept(ctx, conn);
    if (!ssl) {
        helper_log_warn(QWDLOGNO(05623) "session %s: refused a channel connection from %s: "
                                        "no valid key",
                        job->session_id, from);
        _exit(1);
    }
    int vnc = helper_unix_connect(job->vnc_socket);
    if (vnc < 0) {
        node_channel_close(ssl);
        _exit(1);
    }
    fcntl(vnc, F_SETFL, fcntl(vnc, F_GETFL) & ~O_NONBLOCK);
    node_channel_relay(ssl, vnc);
    node_channel_close(ssl);
    _exit(0);
}

/* Ends QEMU: QMP quit, then SIGTERM, then SIGKILL, waiting for it. */
static void stop_vm(node_job *job)
{
    helper_qmp_command quit = {QMP_QUIT, -1};
    if (!qemu_runs(job)) {
        return;
    }
    helper_qmp_run(job->qmp_socket, &quit, 1, QMP_TIMEOUT_MS, NULL);
    for (int waited = 0; qemu_runs(job); waited += PROBE_INTERVAL_MS) {
        if (waited == STOP_SIGTERM_AFTER_MS) {
            kill(job->qemu, SIGTERM);
        }
        if (waited == STOP_SIGKILL_AFTER_MS) {
            kill(job->qemu, SIGKILL);
        }
        usleep(PROBE_INTERVAL_MS * 1000);
    }
}

static void set_signals(void)
{
    static const int signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    signal_fd = helper_signal_pipe(signals, sizeof signals / sizeof signals[0]);
    if (signal_fd < 0) {
        perror("qwd-node: pipe");
        exit(EXIT_FAILED);
    }
}

/* The last signal read that asks to end (SIGUSR1: the time limit comes; others: scancel or a
 * shutdown), or 0. Reaps children (relays; QEMU is noticed by qemu_runs). */
static int read_signals(void)
{
    unsigned char signals[SIGNALS_AT_ONCE];
    ssize_t n;
    int ending = 0;
    while ((n = read(signal_fd, signals, sizeof signals)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (signals[i] != SIGCHLD) {
                ending = signals[i];
            }
        }
    }
    return ending;
}

static void reap_relays(node_job *job)
{
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == job->qemu) {
            job->qemu = 0;
            job->qemu_status = status;
        }
    }
}

/* Whether the template is ready to be saved: its sidecar's serial text on the console, else
 * its delay (default 30 s) since QEMU started. */
static int template_ready(node_job *job, const qwd_warm_sidecar *sidecar, int waited_ms)
{
    if (sidecar->ready_serial) {
        char *log =
            helper_fs_read(job->pool, qwd_session_file(job->pool, job->dir, QWD_SESSION_SERIAL_LOG),
                           WARM_SERIAL_MAX);
        return log && strstr(log, sidecar->ready_serial);
    }
    int delay = sidecar->ready_delay_s >= 0 ? sidecar->ready_delay_s : WARM_DEFAULT_DELAY_S;
    return waited_ms >= delay * 1000;
}

/* Saves the running template's state to dir/state.bin (QMP migrate to an fd; QEMU pauses the
 * VM when it completes). Returns NULL or why not. */
static const char *save_template(node_job *job)
{
    const char *path = qwd_session_file(job->pool, job->dir, WARM_STATE);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return apr_psprintf(job->pool, "cannot create %s: %s", path, strerror(errno));
    }
    helper_qmp_command save[] = {{QMP_GETFD_STATE, fd}, {QMP_MIGRATE_TO_STATE, -1}};
    helper_qmp_result result = helper_qmp_run(job->qmp_socket, save, 2, QMP_TIMEOUT_MS, NULL);
    close(fd);
    if (result != QMP_OK) {
        return "QMP migrate to the state file failed";
    }
    helper_qmp_command query = {QMP_QUERY_MIGRATE, -1};
    for (int waited = 0; waited < WARM_SAVE_DEADLINE_S * 1000; waited += WARM_POLL_MS) {
        json_t *answer = NULL;
        result = helper_qmp_run(job->qmp_socket, &query, 1, QMP_TIMEOUT_MS, &answer);
        const char *status = json_string_value(json_object_get(answer, "status"));
        int completed = status && !strcmp(status, "completed");
        int failed = result != QMP_OK
                     || (status && (!strcmp(status, "failed") || !strcmp(status, "cancelled")));
        json_decref(answer);
        if (completed) {
            return NULL;
        }
        if (failed) {
            return "saving the state failed (query-migrate)";
        }
        usleep(WARM_POLL_MS * 1000);
    }
    return "saving the state did not complete in time";
}

/* --warm: builds the profile's warm image on this node (a job of its own, submitted by the
 * helper after a cold start there): boots a template in STATE/warm/KEY.build-ID, waits until
 * it is ready, saves its state, and renames the directory into place. Returns the exit code. */
static int build_warm(node_job *job)
{
    qwd_vm_profile profile = node_profile(job);
    const char *final = warm_dir(job, &profile);
    if (warm_usable(job, final, &profile)) {
        helper_log_info(QWDLOGNO(05627) "warm %s: already built on this node", final);
        return 0;
    }
    if (!strcmp(profile.image_format, "iso")) {
        fail(job, "%s", "ISO machines have no warm images");
    }
    apr_time_t started = apr_time_now();
    job->dir = apr_psprintf(job->pool, "%s.build-%d", final, (int)getpid());
    helper_fs_remove_tree(job->dir);
    int error = helper_fs_mkdirs(job->pool, job->dir, 0700);
    if (error) {
        job->dir = NULL;
        fail(job, "cannot create the build directory: %s", strerror(error));
    }
    job->qmp_socket = qwd_session_file(job->pool, job->dir, QWD_SESSION_QMP_SOCKET);
    const char *base = qwd_session_file(job->pool, job->dir, WARM_BASE);
    qwd_vm_spec spec = qwd_vm_spec_make(&job->h.host, &profile, job->session_id, job->dir, base);
    const char **argv, *problem = qwd_argv_build(job->pool, &spec, &argv);
    const char **disk_argv = qwd_disk_argv(job->pool, job->h.config->qemu_img, &profile, NULL, base,
                                           job->h.config->iso_scratch_size);
    int log_fd = problem ? -1 : open_log(job);
    if (problem || log_fd < 0 || helper_run(job->pool, disk_argv, log_fd, &problem) != 0
        || (error = helper_spawn(argv, log_fd, SPAWN_DIE_WITH_PARENT, &job->qemu))) {
        fail(job, "the template cannot start: %s",
             problem ? problem
             : error ? strerror(error)
                     : "qemu.log");
    }
    close(log_fd);
    qwd_warm_sidecar sidecar = {.ready_delay_s = -1};
    helper_machine_read_sidecar(job->pool, job->h.config->machines_dir, job->machine, &sidecar,
                                &problem);
    int waited = 0;
    for (; !template_ready(job, &sidecar, waited); waited += WARM_POLL_MS) {
        if (!qemu_runs(job) || read_signals() || waited > WARM_READY_DEADLINE_S * 1000) {
            fail(job, "the template ended or was not ready in %d s", WARM_READY_DEADLINE_S);
        }
        usleep(WARM_POLL_MS * 1000);
    }
    if ((problem = save_template(job))) {
        fail(job, "%s", problem);
    }
    stop_vm(job);
    const char *leftovers[] = {QWD_SESSION_QMP_SOCKET,    QWD_SESSION_VNC_SOCKET,
                               QWD_SESSION_SERIAL_SOCKET, QWD_SESSION_SERIAL_LOG,
                               QWD_SESSION_QEMU_LOG,      QWD_SESSION_AGENT_SOCKET};
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        unlink(qwd_session_file(job->pool, job->dir, leftovers[i]));
    }
    json_t *meta =
        json_pack("{s:s, s:s, s:s, s:o*, s:I}", "key", apr_filepath_name_get(final), "argv_hash",
                  clone_hash(job, &profile), "qemu_binary",
                  qwd_vm_spec_make(&job->h.host, &profile, "ID", "/DIR", "/DIR/disk").qemu_binary,
                  "master", qwd_warm_file_identity(profile.image_path), "build_ms",
                  (json_int_t)apr_time_as_msec(apr_time_now() - started));
    char *text = json_dumps(meta, JSON_INDENT(1));
    json_decref(meta);
    error = text ? helper_fs_write_atomic(
                job->pool, qwd_session_file(job->pool, job->dir, WARM_META), NULL, text, 0600)
                 : ENOMEM;
    free(text);
    if (error) {
        fail(job, "cannot write meta.json: %s", strerror(error));
    }
    if (rename(job->dir, final) != 0) {
        helper_fs_remove_tree(final); /* a stale one (another QEMU, another master) */
        if (rename(job->dir, final) != 0) {
            fail(job, "cannot place the image: %s", strerror(errno));
        }
    }
    helper_log_info(QWDLOGNO(05628) "warm %s: built in %.1f s (ready after %.1f s)", final,
                    (double)(apr_time_now() - started) / APR_USEC_PER_SEC, waited / 1000.0);
    return 0;
}

int main(int argc, char **argv)
{
    apr_initialize();
    atexit(apr_terminate);
    node_job job = {.listen_fd = -1};
    apr_pool_create(&job.pool, NULL);
    job.h.pool = job.pool;
    umask(077);
    set_signals();
    parse_command_line(&job, argc, argv);
    job.job_id = getenv("SLURM_JOB_ID");
    job.h.host.qemu_x86_64 = helper_config_qemu(job.h.config, QWD_ARCH_X86_64);
    job.h.host.qemu_aarch64 = helper_config_qemu(job.h.config, QWD_ARCH_AARCH64);
    job.h.host.firmware_aarch64 = job.h.config->firmware_aarch64;
    job.h.host.nic_model = job.h.config->nic_model;
    helper_accel_resolve(&job.h);
    if (job.warm) {
        return build_warm(&job);
    }
    take_secret(&job);
    qwd_vm_profile profile = node_profile(&job);
    const char *image = warm_dir(&job, &profile);
    start_vm(&job, warm_usable(&job, image, &profile) ? image : NULL);

    int ending = 0;
    for (int waited = 0; !ending && !display_answers(&job); waited += PROBE_INTERVAL_MS) {
        if (!qemu_runs(&job) && job.image) {
            /* an image that passed its checks but does not load: drop it, boot cold */
            helper_log_warn(QWDLOGNO(05629) "session %s: restoring %s failed (%s), booting cold",
                            job.session_id, job.image,
                            helper_describe_status(job.pool, job.qemu_status));
            helper_fs_remove_tree(job.image);
            start_vm(&job, NULL);
            continue;
        }
        if (!qemu_runs(&job)) {
            fail(&job, "QEMU exited while starting (%s)",
                 helper_describe_status(job.pool, job.qemu_status));
        }
        if (waited > DISPLAY_DEADLINE_S * 1000) {
            fail(&job, "QEMU's display did not answer within %d s", DISPLAY_DEADLINE_S);
        }
        usleep(PROBE_INTERVAL_MS * 1000);
        ending = read_signals();
    }
    SSL_CTX *ctx = node_channel_context(1, job.session_id, job.key);
    OPENSSL_cleanse(job.key, sizeof job.key);
    if (!ctx) {
        fail(&job, "%s", "no TLS context for the channel");
    }
    if (!ending) {
        listen_channel(&job);
        helper_log_info(QWDLOGNO(05624) "session %s: display on port %d", job.session_id, job.port);
        tell(&job, apr_psprintf(job.pool, "port=%d boot=%s", job.port, job.boot));
    }
    while (!ending && qemu_runs(&job)) {
        struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN},
                                {.fd = job.listen_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR) {
            break;
        }
        if (fds[0].revents) {
            ending = read_signals();
            reap_relays(&job);
        }
        if (fds[1].revents & POLLIN) {
            int conn = accept4(job.listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (conn >= 0) {
                serve_viewer(&job, ctx, conn);
            }
        }
    }
    if (job.listen_fd >= 0) {
        close(job.listen_fd);
    }
    int exit_code = 0;
    if (ending) {
        helper_log_info(QWDLOGNO(05625) "session %s: %s, stopping QEMU", job.session_id,
                        ending == SIGUSR1 ? "the job's time limit comes" : strsignal(ending));
        if (ending == SIGUSR1) {
            tell(&job, "ended=" QWD_END_EXPIRED);
        }
        stop_vm(&job);
    }
    else {
        int status = job.qemu_status;
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        helper_log_info(QWDLOGNO(05626) "session %s: QEMU ended (%s)", job.session_id,
                        helper_describe_status(job.pool, status));
        if (!clean) {
            tell(&job, apr_pstrcat(job.pool, "failed=QEMU ",
                                   helper_describe_status(job.pool, status), NULL));
            exit_code = EXIT_FAILED;
        }
    }
    SSL_CTX_free(ctx);
    helper_fs_remove_tree(job.dir);
    return exit_code;
}
