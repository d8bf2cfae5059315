/* SPDX-License-Identifier: Apache-2.0 */
/* fork/exec without a shell. A close-on-exec pipe carries the child's exec errno back, so a
 * missing QEMU binary is a clear start_failed, not a mysterious crash. */
#include "helper_proc.h"

#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Children get no fd of the helper: every fd below this is closed between fork and exec (the
 * helper's own stay far below it; _SC_OPEN_MAX may be a million). */
#define SPAWN_CLOSE_FDS_BELOW 1024
/* /proc/PID/cmdline of a QEMU: its argv, well under this. */
#define CMDLINE_MAX 8192

void helper_child_signal_defaults(void)
{
    for (int sig = 1; sig < NSIG; sig++) {
        signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the child, between fork and exec: only async-signal-safe calls. Returns the exec-error
 * pipe's fd (moved when it stood where pass_fd goes). */
static int prepare_child(int output_fd, int flags, int report_fd, int pass_fd, int child_fd)
{
    helper_child_signal_defaults();
    if (flags & SPAWN_NEW_SESSION) {
        setsid();
    }
    if (flags & SPAWN_DIE_WITH_PARENT) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
    }
    if (flags & SPAWN_NO_HUGEPAGES) {
        prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    dup2(output_fd, STDOUT_FILENO);
    dup2(output_fd, STDERR_FILENO);
    if (pass_fd >= 0) {
        if (report_fd == child_fd) {
            report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, child_fd + 1);
        }
        if (pass_fd != child_fd) {
            dup2(pass_fd, child_fd); /* the copy is not close-on-exec */
        }
        else {
            fcntl(child_fd, F_SETFD, 0);
        }
    }
    /* Close everything else but the exec-error pipe (itself close-on-exec). */
    for (int fd = STDERR_FILENO + 1; fd < SPAWN_CLOSE_FDS_BELOW; fd++) {
        if (fd != report_fd && (pass_fd < 0 || fd != child_fd)) {
            close(fd);
        }
    }
    return report_fd;
}

int helper_spawn(const char *const *argv, int output_fd, int flags, pid_t *pid_out)
{
    return helper_spawn_passing(argv, output_fd, flags, -1, -1, pid_out);
}

int helper_spawn_passing(const char *const *argv, int output_fd, int flags, int pass_fd,
                         int child_fd, pid_t *pid_out)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        return errno;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        return error;
    }
    if (pid == 0) {
        close(report[0]);
        report[1] = prepare_child(output_fd, flags, report[1], pass_fd, child_fd);
        if ((flags & SPAWN_DIE_WITH_PARENT) && getppid() != parent) {
            _exit(SPAWN_EXEC_FAILED);
        }
        execv(argv[0], (char *const *)argv);
        int error = errno;
        ssize_t ignored = write(report[1], &error, sizeof error);
        (void)ignored;
        _exit(SPAWN_EXEC_FAILED);
    }
    close(report[1]);
    int child_error = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_error, sizeof child_error);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == sizeof child_error) {
        waitpid(pid, NULL, 0);
        return child_error;
    }
    *pid_out = pid;
    return 0;
}

const char *helper_describe_status(apr_pool_t *pool, int status)
{
    if (WIFEXITED(status)) {
        return apr_psprintf(pool, "exit status %d", WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return apr_psprintf(pool, "signal %d", WTERMSIG(status));
    }
    return "unknown status";
}

const char *helper_describe_failure(apr_pool_t *pool, const char *program, int status)
{
    return apr_psprintf(pool, "%s failed (%s)", program, helper_describe_status(pool, status));
}

int helper_run(apr_pool_t *pool, const char *const *argv, int output_fd, const char **problem)
{
    pid_t pid;
    int error = helper_spawn(argv, output_fd, 0, &pid);
    if (error) {
        *problem = apr_psprintf(pool, "cannot run %s: %s", argv[0], strerror(error));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            *problem = apr_psprintf(pool, "waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }
    *problem = helper_describe_failure(pool, argv[0], status);
    return -1;
}

int helper_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int helper_process_matches(pid_t pid, const char *needle)
{
    char path[64], cmdline[CMDLINE_MAX];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t len = read(fd, cmdline, sizeof cmdline - 1);
    close(fd);
    if (len <= 0) {
        return 0; /* gone, or a zombie */
    }
    /* Arguments are NUL-separated: make it one searchable string. */
    for (ssize_t i = 0; i < len; i++) {
        if (cmdline[i] == '\0') {
            cmdline[i] = ' ';
        }
    }
    cmdline[len] = '\0';
    return strstr(cmdline, needle) != NULL;
}

/* Sends sig to every process of this user, other than the helper, whose command line contains
 * needle and, when pgid > 0, whose process group is pgid. Returns how many. */
static int signal_where(pid_t pgid, const char *needle, int sig)
{
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    int count = 0;
    if (!proc) {
        return 0;
    }
    while ((entry = readdir(proc))) {
        pid_t pid = (pid_t)atoi(entry->d_name);
        char path[64];
        struct stat info;
        snprintf(path, sizeof path, "/proc/%d", (int)pid);
        if (pid > 1 && pid != getpid() && (pgid <= 0 || getpgid(pid) == pgid)
            && stat(path, &info) == 0 && info.st_uid == geteuid()
            && helper_process_matches(pid, needle) && kill(pid, sig) == 0) {
            count++;
        }
    }
    closedir(proc);
    return count;
}

int helper_group_signal(pid_t pgid, const char *needle, int sig)
{
    return pgid > 0 ? signal_where(pgid, needle, sig) : 0;
}

int helper_signal_matching(const char *needle, int sig)
{
    return signal_where(0, needle, sig);
}
