/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal QMP client: greeting, qmp_capabilities, one command. Each exchange has a deadline,
 * so a hung QEMU costs the event loop at most timeout_ms. */
#include "helper_qmp.h"
#include "helper_unix.h"

#include <apr_time.h>
#include <jansson.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads until a line containing want_a, want_b or want_c (checked in that order; want_c may be
 * NULL); returns 1, 2 or 3 for which, -1 on timeout or EOF. */
static int read_either(int fd, const char *want_a, const char *want_b, const char *want_c,
                       apr_time_t deadline)
{
    char buffer[8192];
    size_t len = 0;
    for (;;) {
        buffer[len] = '\0';
        char *newline;
        while ((newline = strchr(buffer, '\n'))) {
            *newline = '\0';
            if (strstr(buffer, want_a)) {
                return 1;
            }
            if (strstr(buffer, want_b)) {
                return 2;
            }
            if (want_c && strstr(buffer, want_c)) {
                return 3;
            }
            len -= (size_t)(newline + 1 - buffer);
            memmove(buffer, newline + 1, len + 1);
        }
        if (len == sizeof buffer - 1) {
            len = 0;
        }
        apr_time_t left = deadline - apr_time_now();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)apr_time_as_msec(left) + 1) <= 0) {
            return -1;
        }
        ssize_t n = recv(fd, buffer + len, sizeof buffer - 1 - len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        len += (size_t)n;
    }
}

/* Reads until a line containing want arrives. QMP events may come first; they are skipped.
 * Returns 0, or -1 on timeout, EOF or error. */
static int read_until(int fd, const char *want, apr_time_t deadline)
{
    return read_either(fd, want, want, NULL, deadline) == 1 ? 0 : -1;
}

static int send_line(int fd, const char *line)
{
    size_t len = strlen(line);
    return send(fd, line, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

int helper_qmp_answers(const char *path, int timeout_ms)
{
    int fd = helper_unix_connect(path);
    if (fd < 0) {
        return 0;
    }
    int ok = read_until(fd, "\"QMP\"", apr_time_now() + apr_time_from_msec(timeout_ms)) == 0;
    close(fd);
    return ok;
}

int helper_qmp_quit(const char *path, int timeout_ms)
{
    int fd = helper_unix_connect(path);
    if (fd < 0) {
        return -1;
    }
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    int rv = -1;
    if (read_until(fd, "\"QMP\"", deadline) == 0
        && send_line(fd, "{\"execute\":\"qmp_capabilities\"}\n") == 0
        && read_until(fd, "\"return\"", deadline) == 0
        && send_line(fd, "{\"execute\":\"quit\"}\n") == 0) {
        rv = 0;
        /* QEMU drops commands still queued when the client hangs up: wait for the answer
         * (or for QEMU closing the socket as it exits). */
        read_until(fd, "\"return\"", deadline);
    }
    close(fd);
    return rv;
}

/* Connects and negotiates capabilities; returns the fd or -1. */
static int qmp_open(const char *path, apr_time_t deadline)
{
    int fd = helper_unix_connect(path);
    if (fd < 0) {
        return -1;
    }
    if (read_until(fd, "\"QMP\"", deadline) == 0
        && send_line(fd, "{\"execute\":\"qmp_capabilities\"}\n") == 0
        && read_until(fd, "\"return\"", deadline) == 0) {
        return fd;
    }
    close(fd);
    return -1;
}

/* One line with one fd attached (SCM_RIGHTS), as QMP's getfd wants it. */
static int send_line_with_fd(int fd, const char *line, int passed_fd)
{
    struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buffer,
                             .msg_controllen = sizeof control.buffer};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &passed_fd, sizeof(int));
    return sendmsg(fd, &message, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

#define IGNORE_SHARED                                                            \
    "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":" \
    "[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}\n"
#define GETFD "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"qwdstate\"}}\n"

/* Sets x-ignore-shared (when asked) and passes state_fd as "qwdstate". Returns 0 or -1. */
static int prepare(int fd, int state_fd, int ignore_shared, apr_time_t deadline)
{
    if (ignore_shared
        && (send_line(fd, IGNORE_SHARED) != 0
            || read_either(fd, "\"return\"", "\"error\"", NULL, deadline) != 1)) {
        return -1;
    }
    if (send_line_with_fd(fd, GETFD, state_fd) != 0
        || read_either(fd, "\"return\"", "\"error\"", NULL, deadline) != 1) {
        return -1;
    }
    return 0;
}

int helper_qmp_restore(const char *path, int state_fd, int timeout_ms)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    int fd = qmp_open(path, deadline);
    if (fd < 0) {
        return -1;
    }
    int rv = -1;
    if (prepare(fd, state_fd, 1, deadline) == 0
        && send_line(fd, "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:"
                         "qwdstate\"}}\n")
               == 0
        && read_either(fd, "\"return\"", "\"error\"", NULL, deadline) == 1) {
        rv = 0;
    }
    close(fd);
    return rv;
}

int helper_qmp_save(const char *path, int state_fd, int ignore_shared, int timeout_ms)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    int fd = qmp_open(path, deadline);
    if (fd < 0) {
        return -1;
    }
    int rv = -1;
    if (prepare(fd, state_fd, ignore_shared, deadline) == 0
        && send_line(fd, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:qwdstate\"}}\n") == 0
        && read_either(fd, "\"return\"", "\"error\"", NULL, deadline) == 1) {
        rv = 0;
    }
    close(fd);
    return rv;
}

int helper_qmp_migration_done(const char *path, int timeout_ms)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    int fd = qmp_open(path, deadline);
    if (fd < 0) {
        return -1;
    }
    int rv = -1;
    if (send_line(fd, "{\"execute\":\"query-migrate\"}\n") == 0) {
        /* setup and active mean under way; failed, cancelled or an error end it. */
        int which = read_either(fd, "\"completed\"", "\"failed\"", "\"return\"", deadline);
        rv = which == 1 ? 1 : which == 3 ? 0 : -1;
    }
    close(fd);
    return rv;
}

int helper_qmp_restore_pending(const char *path, int timeout_ms)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    int fd = qmp_open(path, deadline);
    if (fd < 0) {
        return -1;
    }
    int rv = -1;
    if (send_line(fd, "{\"execute\":\"query-status\"}\n") == 0) {
        int which = read_either(fd, "\"inmigrate\"", "\"return\"", NULL, deadline);
        rv = which == 2 ? 0 : which;
    }
    /* Once migrate-incoming has been sent, query-migrate has a status (setup, active...). */
    if (rv == 1 && send_line(fd, "{\"execute\":\"query-migrate\"}\n") == 0) {
        int which = read_either(fd, "\"status\"", "\"return\"", NULL, deadline);
        rv = which == 2 ? 1 : which == 1 ? 0 : -1;
    }
    close(fd);
    return rv;
}

int helper_qmp_screendump(const char *path, const char *file, int timeout_ms)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(timeout_ms);
    json_t *command =
        json_pack("{s:s, s:{s:s}}", "execute", "screendump", "arguments", "filename", file);
    char *line = command ? json_dumps(command, JSON_COMPACT) : NULL;
    json_decref(command);
    int fd = line ? qmp_open(path, deadline) : -1;
    int rv = -1;
    if (fd >= 0 && send_line(fd, line) == 0 && send_line(fd, "\n") == 0
        && read_either(fd, "\"return\"", "\"error\"", NULL, deadline) == 1) {
        rv = 0;
    }
    if (fd >= 0) {
        close(fd);
    }
    free(line);
    return rv;
}
