/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper: the daemon that owns every VM of mod_qwd. Reads its configuration, drops to its
 * user, re-adopts running VMs, starts websockify and serves the protocol on a Unix socket. */
#include "helper.h"
#include "helper_accel.h"
#include "helper_backend_local.h"
#include "helper_backend_slurm.h"
#include "helper_clients.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_usage.h"
#include "helper_fs.h"
#include "helper_journal.h"
#include "helper_log.h"
#include "helper_loop.h"
#include "helper_metrics.h"
#include "helper_session.h"
#include "helper_warm.h"
#include "helper_websockify.h"
#include "qwd_protocol.h"

#include <apr_general.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: qwd-helper [--config FILE] [--set KEY=VALUE]... [--foreground] [--help]\n"
            "  --config FILE     read FILE (default " HELPER_DEFAULT_CONFIG ", if it exists)\n"
            "  --set KEY=VALUE   override one configuration key (repeatable, applied after the "
            "file)\n"
            "  --foreground      accepted for service managers; the helper never daemonizes\n"
            "  --help            this text\n"
            "Keys are documented in docs/helper.md.\n");
}

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "qwd-helper: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    va_start(args, format);
    helper_logv("error", format, args);
    va_end(args);
    exit(1);
}

static helper_config *parse_command_line(apr_pool_t *pool, int argc, char **argv)
{
    helper_config *config = helper_config_defaults(pool);
    const char *config_path = NULL;
    apr_array_header_t *overrides = apr_array_make(pool, 8, sizeof(const char *));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            exit(0);
        }
        else if (!strcmp(argv[i], "--foreground")) {
            continue;
        }
        else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        }
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            APR_ARRAY_PUSH(overrides, const char *) = argv[++i];
        }
        else {
            usage(stderr);
            exit(2);
        }
    }
    if (!config_path && access(HELPER_DEFAULT_CONFIG, R_OK) == 0) {
        config_path = HELPER_DEFAULT_CONFIG;
    }
    const char *problem = config_path ? helper_config_read(pool, config, config_path) : NULL;
    for (int i = 0; !problem && i < overrides->nelts; i++) {
        problem = helper_config_set(pool, config, APR_ARRAY_IDX(overrides, i, const char *));
    }
    if (!problem) {
        problem = helper_config_check(pool, config);
    }
    if (problem) {
        die(QWDLOGNO(05017) "%s", problem);
    }
    return config;
}

/* Started as root with `user` set: become that user (with its groups, e.g. kvm) before doing
 * anything else, so every file and child belongs to it. Never setuid. */
static void drop_privileges(const helper_config *config)
{
    if (!config->user || geteuid() != 0) {
        return;
    }
    struct passwd *user = getpwnam(config->user);
    if (!user) {
        die(QWDLOGNO(05018) "user: no user \"%s\"", config->user);
    }
    if (initgroups(user->pw_name, user->pw_gid) != 0 || setgid(user->pw_gid) != 0
        || setuid(user->pw_uid) != 0) {
        die(QWDLOGNO(05019) "user: cannot switch to \"%s\"", config->user);
    }
    if (setuid(0) == 0) {
        die(QWDLOGNO(05020) "user: could regain root after switching to \"%s\"", config->user);
    }
}

static void make_dirs(helper *h)
{
    const char *dirs[] = {h->config->state_dir, h->sessions_dir, h->config->token_dir,
                          h->token_tmp_dir, h->empty_dir};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        int error = helper_fs_mkdirs(h->pool, dirs[i], 0700);
        if (error) {
            die(QWDLOGNO(05021) "cannot create %s",
                apr_psprintf(h->pool, "%s: %s", dirs[i], strerror(error)));
        }
    }
}

/* The helper's state holds every VM's disk, sockets and websockify token, and its log says
 * who runs what: none of it may be open to other local users. Directories the helper made are
 * 0700 (umask 077); one made by someone else, or a log file, must be made private by hand. */
static void refuse_if_open(const char *key, const char *path, int fd)
{
    struct stat info;
    if ((fd >= 0 ? fstat(fd, &info) : stat(path, &info)) != 0 || (fd >= 0 && !S_ISREG(info.st_mode))
        || !(info.st_mode & S_IRWXO)) {
        return;
    }
    die(QWDLOGNO(05250) "%s: %s is open to other users (mode %04o): chmod o-rwx %s", key, path,
        (unsigned int)(info.st_mode & 07777), path);
}

static void refuse_open_state(helper *h)
{
    refuse_if_open("state_dir", h->config->state_dir, -1);
    refuse_if_open("token_dir", h->config->token_dir, -1);
    refuse_if_open("token_dir", h->token_tmp_dir, -1);
    if (h->config->log_file) {
        refuse_if_open("log_file", h->config->log_file, helper_log_fd());
    }
    else {
        /* no log_file: the log is stderr, a file when the caller redirected it to one */
        char path[PATH_MAX];
        ssize_t len = readlink("/proc/self/fd/2", path, sizeof path - 1);
        path[len > 0 ? len : 0] = '\0';
        refuse_if_open("log_file", len > 0 ? path : "stderr", STDERR_FILENO);
    }
}

/* Connections the kernel queues before the helper accepts them. */
#define LISTEN_BACKLOG 128

/* Binds the protocol socket; a stale socket file is replaced, a live helper is not. Returns
 * its fd. */
static int listen_socket(helper *h)
{
    helper_config *config = h->config;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(config->socket) >= sizeof addr.sun_path) {
        die(QWDLOGNO(05022) "socket: %s is too long for a Unix socket", config->socket);
    }
    strcpy(addr.sun_path, config->socket);
    char *parent = apr_pstrdup(h->pool, config->socket);
    *strrchr(parent, '/') = '\0';
    if (*parent) {
        helper_fs_mkdirs(h->pool, parent, 0755);
    }
    int listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(probe, (struct sockaddr *)&addr, sizeof addr) == 0) {
        die(QWDLOGNO(05023) "socket: another helper answers on %s", config->socket);
    }
    close(probe);
    unlink(config->socket);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0
        || listen(listen_fd, LISTEN_BACKLOG) != 0) {
        die(QWDLOGNO(05024) "socket: %s",
            apr_psprintf(h->pool, "%s: %s", config->socket, strerror(errno)));
    }
    if (config->socket_group) {
        struct group *group = getgrnam(config->socket_group);
        if (!group || chown(config->socket, (uid_t)-1, group->gr_gid) != 0) {
            die(QWDLOGNO(05025) "socket_group: cannot give the socket to group \"%s\"",
                config->socket_group);
        }
    }
    if (chmod(config->socket, (mode_t)config->socket_mode) != 0) {
        die(QWDLOGNO(05026) "socket_mode: %s", strerror(errno));
    }
    return listen_fd;
}

/* The gid of allowed_group; 0 when it is not set. */
static int resolve_allowed_group(helper *h, gid_t *gid)
{
    if (!h->config->allowed_group) {
        return 0;
    }
    struct group *group = getgrnam(h->config->allowed_group);
    if (!group) {
        die(QWDLOGNO(05027) "allowed_group: no group \"%s\"", h->config->allowed_group);
    }
    *gid = group->gr_gid;
    return 1;
}

int main(int argc, char **argv)
{
    apr_initialize();
    atexit(apr_terminate);
    helper *h = calloc(1, sizeof *h);
    apr_pool_create(&h->pool, NULL);
    h->config = parse_command_line(h->pool, argc, argv);
    drop_privileges(h->config);
    umask(077);
    if (helper_log_open(h->config->log_file) != 0) {
        die(QWDLOGNO(05028) "log_file: cannot open %s", h->config->log_file);
    }
    h->host.qemu_x86_64 = helper_config_qemu(h->config, QWD_ARCH_X86_64);
    h->host.qemu_aarch64 = helper_config_qemu(h->config, QWD_ARCH_AARCH64);
    h->host.firmware_aarch64 = h->config->firmware_aarch64;
    h->host.nic_model = h->config->nic_model;
    h->sessions_dir = apr_pstrcat(h->pool, h->config->state_dir, "/sessions", NULL);
    h->token_tmp_dir = apr_pstrcat(h->pool, h->config->token_dir, ".tmp", NULL);
    h->empty_dir = apr_pstrcat(h->pool, h->config->state_dir, "/empty", NULL);
    gid_t allowed_gid = 0;
    int allowed_gid_set = resolve_allowed_group(h, &allowed_gid);
    make_dirs(h);
    refuse_open_state(h); /* before the KVM probe: a refusal comes at once */
    helper_accel_resolve(h);
    if (!(h->events = helper_events_create()) || helper_loop_signals(h) != 0) {
        die(QWDLOGNO(05029) "%s", "cannot set up signal handling");
    }
    int listen_fd = listen_socket(h);
    helper_metrics_init(h);
    helper_journal_init(h);
    h->usage = helper_usage_cache_make(h->pool);
    helper_sessions_init(h, &helper_backend_local);
    if (!strcmp(h->config->backend, QWD_BACKEND_SLURM) || h->config->slurm_machines) {
        helper_slurm_init(h);
        helper_sessions_add_backend(h, &helper_backend_slurm);
    }
    helper_sessions_adopt(h);
    helper_warm_init(h);
    helper_websockify_start(h);
    helper_clients_init(h, listen_fd, allowed_gid_set, allowed_gid);
    helper_log_info(QWDLOGNO(05030) "%s ready on %s (uid %d, host %s, accel %s, cpu %s, state %s)",
                    HELPER_VERSION_STRING, h->config->socket, (int)geteuid(), h->host.arch,
                    h->host.accel, h->host.cpu_model, h->config->state_dir);

    helper_loop_run(h);

    helper_clients_close_all(h);
    close(listen_fd);
    unlink(h->config->socket);
    helper_websockify_stop(h);
    helper_warm_shutdown(h);
    int live, vcpus, memory_mib;
    helper_sessions_usage(h, &live, &vcpus, &memory_mib); /* ended ones it remembers: not */
    helper_log_info(QWDLOGNO(05031) "stopped; %d session(s) left running for the next helper",
                    live);
    /* Everything goes before exit, so that a leak check then (LeakSanitizer in the
     * --enable-sanitizers build) sees only real leaks: the pool first (its cleanups close the
     * VMs' sockets and unwatch their processes, which keep running for the next helper), then
     * the event registry they unwatch from. */
    helper_events *events = h->events;
    apr_pool_destroy(h->pool);
    helper_events_destroy(events);
    free(h);
    return 0;
}
