/* SPDX-License-Identifier: Apache-2.0 */
/* qemu-img takes ~12 ms and QEMU runs for hours: neither is ever waited for. Every fd and watch
 * of a qemu is released by its pool's cleanup, whoever destroys the pool. */
#include "helper_qemu.h"
#include "helper_proc.h"
#include "qwd_argv.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct helper_qemu {
    apr_pool_t *pool;
    apr_pool_t *parent; /* problems are allocated here: the owner may free qemu on hearing them */
    helper_events *events;
    helper_qemu_launch launch;
    helper_qemu_fn *fn;
    void *data;
    int log_fd;   /* until QEMU runs */
    int state_fd; /* until QEMU runs */
    pid_t disk_pid;
    pid_t pid;
    int pid_watched;
    int pidfd; /* adopted */
    helper_watch *pidfd_watch;
};

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static apr_status_t cleanup(void *data)
{
    helper_qemu *qemu = data;
    if (qemu->disk_pid > 0) {
        helper_unwatch_child(qemu->events, qemu->disk_pid);
    }
    if (qemu->pid_watched) {
        helper_unwatch_child(qemu->events, qemu->pid);
    }
    helper_watch_close(&qemu->pidfd_watch, &qemu->pidfd);
    close_fd(&qemu->log_fd);
    close_fd(&qemu->state_fd);
    return APR_SUCCESS;
}

static helper_qemu *qemu_new(helper_events *events, apr_pool_t *parent, helper_qemu_fn *fn,
                             void *data)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, parent);
    helper_qemu *qemu = apr_pcalloc(pool, sizeof *qemu);
    *qemu = (helper_qemu){.pool = pool,
                          .parent = parent,
                          .events = events,
                          .fn = fn,
                          .data = data,
                          .log_fd = -1,
                          .state_fd = -1,
                          .pidfd = -1};
    apr_pool_cleanup_register(pool, qemu, cleanup, apr_pool_cleanup_null);
    return qemu;
}

void helper_qemu_free(helper_qemu *qemu)
{
    if (qemu) {
        apr_pool_destroy(qemu->pool);
    }
}

pid_t helper_qemu_pid(const helper_qemu *qemu)
{
    return qemu->pid;
}

void helper_qemu_kill(helper_qemu *qemu, int sig)
{
    pid_t pid = qemu->pid > 0 ? qemu->pid : qemu->disk_pid;
    if (pid > 0) {
        kill(pid, sig);
    }
}

/* Reports to the owner last: it may free qemu. */
static void report(helper_qemu *qemu, helper_qemu_event event, const char *problem,
                   int status_known, int status)
{
    helper_qemu_report report = {event, problem, status_known, status};
    qemu->fn(qemu->data, &report);
}

static const char *cannot_run(apr_pool_t *pool, const char *program, int error)
{
    return apr_psprintf(pool, "cannot run %s: %s", program, strerror(error));
}

/* Writes size bytes of data to a new file at path (0600). Returns 0, or -1 with errno. */
static int write_file(const char *path, const unsigned char *data, apr_size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    for (apr_size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int error = n < 0 ? errno : EIO;
            close(fd);
            errno = error;
            return -1;
        }
        done += (apr_size_t)n;
    }
    return close(fd);
}

static void on_qemu_exit(void *data, pid_t pid, int status)
{
    helper_qemu *qemu = data;
    qemu->pid_watched = 0;
    report(qemu, QEMU_EXITED, NULL, 1, status);
}

static void on_disk_made(void *data, pid_t pid, int status)
{
    helper_qemu *qemu = data;
    qemu->disk_pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        close_fd(&qemu->log_fd);
        close_fd(&qemu->state_fd);
        report(qemu, QEMU_FAILED,
               helper_describe_failure(qemu->parent, qemu->launch.disk_argv[0], status), 0, 0);
        return;
    }
    const char *const *argv = qemu->launch.argv;
    int error = helper_spawn_passing(argv, qemu->log_fd, qemu->launch.flags, qemu->state_fd,
                                     QWD_RESTORE_STATE_FD, &qemu->pid);
    close_fd(&qemu->log_fd);
    close_fd(&qemu->state_fd);
    if (!error) {
        qemu->pid_watched = helper_watch_child(qemu->events, qemu->pid, on_qemu_exit, qemu) == 0;
        if (!qemu->pid_watched) {
            kill(qemu->pid, SIGKILL); /* unwatched, it could never be stopped: reaped unheard */
            error = ENOMEM;
        }
    }
    if (error) {
        qemu->pid = 0;
        report(qemu, QEMU_FAILED, cannot_run(qemu->parent, argv[0], error), 0, 0);
        return;
    }
    report(qemu, QEMU_STARTED, NULL, 0, 0);
}

helper_qemu *helper_qemu_start(helper_events *events, apr_pool_t *pool,
                               const helper_qemu_launch *launch, helper_qemu_fn *fn, void *data,
                               const char **problem)
{
    helper_qemu *qemu = qemu_new(events, pool, fn, data);
    qemu->launch = *launch;
    if (mkdir(launch->dir, 0700) != 0 && errno != EEXIST) {
        *problem = apr_psprintf(pool, "cannot create %s: %s", launch->dir, strerror(errno));
        goto failed;
    }
    if (launch->seed_path && write_file(launch->seed_path, launch->seed, launch->seed_size) != 0) {
        *problem = apr_psprintf(pool, "cannot write %s: %s", launch->seed_path, strerror(errno));
        goto failed;
    }
    qemu->log_fd = open(launch->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (qemu->log_fd < 0) {
        *problem = apr_psprintf(pool, "cannot create %s: %s", launch->log_path, strerror(errno));
        goto failed;
    }
    if (launch->state_path
        && (qemu->state_fd = open(launch->state_path, O_RDONLY | O_CLOEXEC)) < 0) {
        *problem = apr_psprintf(pool, "cannot open %s: %s", launch->state_path, strerror(errno));
        goto failed;
    }
    unlink(launch->disk_path); /* a relaunch in place makes it anew */
    int error = helper_spawn(launch->disk_argv, qemu->log_fd, 0, &qemu->disk_pid);
    if (!error && helper_watch_child(events, qemu->disk_pid, on_disk_made, qemu) != 0) {
        kill(qemu->disk_pid, SIGKILL);
        error = ENOMEM;
    }
    if (error) {
        qemu->disk_pid = 0;
        *problem = cannot_run(pool, launch->disk_argv[0], error);
        goto failed;
    }
    return qemu;

failed:
    helper_qemu_free(qemu);
    return NULL;
}

static void on_pidfd(void *data, short revents)
{
    helper_qemu *qemu = data;
    helper_watch_close(&qemu->pidfd_watch, &qemu->pidfd);
    report(qemu, QEMU_EXITED, NULL, 0, 0);
}

helper_qemu *helper_qemu_adopt(helper_events *events, apr_pool_t *pool, pid_t pid,
                               helper_qemu_fn *fn, void *data)
{
    helper_qemu *qemu = qemu_new(events, pool, fn, data);
    qemu->pidfd = helper_pidfd_open(pid);
    qemu->pidfd_watch =
        qemu->pidfd >= 0 ? helper_watch_fd(events, qemu->pidfd, POLLIN, on_pidfd, qemu) : NULL;
    if (!qemu->pidfd_watch) {
        helper_qemu_free(qemu);
        return NULL;
    }
    qemu->pid = pid;
    return qemu;
}
