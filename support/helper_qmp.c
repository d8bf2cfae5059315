/* SPDX-License-Identifier: Apache-2.0 */
/* A QMP client as a small state machine: each readable turn of the socket advances it by the
 * lines that arrived. Lines are short and the socket buffer takes them whole, so sending never
 * waits either. */
#include "helper_qmp.h"
#include "helper_reply.h"
#include "helper_unix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QMP_CAPABILITIES "{\"execute\":\"qmp_capabilities\"}"

typedef enum { WAIT_GREETING, WAIT_CAPABILITIES, WAIT_COMMANDS } qmp_stage;

struct helper_qmp {
    helper_watch *watch;
    int fd;
    qmp_stage stage;
    char **lines; /* commands[i].line + "\n" */
    int *fds;     /* commands[i].fd, dup()ed, or -1 */
    int count;
    int sent; /* commands sent; the answer of the last one sent is awaited */
    helper_lines input;
    helper_qmp_done *done;
    void *data;
};

static void qmp_free(helper_qmp *qmp)
{
    helper_watch_cancel(qmp->watch);
    if (qmp->fd >= 0) {
        close(qmp->fd);
    }
    for (int i = 0; i < qmp->count; i++) {
        free(qmp->lines[i]);
        if (qmp->fds[i] >= 0) {
            close(qmp->fds[i]);
        }
    }
    free(qmp->lines);
    free(qmp->fds);
    free(qmp);
}

void helper_qmp_cancel(helper_qmp *qmp)
{
    if (qmp) {
        qmp_free(qmp);
    }
}

static void finish(helper_qmp *qmp, helper_qmp_result result, json_t *answer)
{
    helper_qmp_done *done = qmp->done;
    void *data = qmp->data;
    /* The socket is closed before done runs: QMP serves one client at a time, and done may
     * start the next conversation with the same VM. */
    helper_watch_cancel(qmp->watch);
    qmp->watch = NULL;
    close(qmp->fd);
    qmp->fd = -1;
    done(data, result, answer);
    qmp_free(qmp);
}

/* Sends line, with fd attached (SCM_RIGHTS) when fd >= 0. Returns 0 or -1. */
static int send_line(int socket_fd, const char *line, int fd)
{
    struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.buffer;
        message.msg_controllen = sizeof control.buffer;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    return sendmsg(socket_fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)iov.iov_len ? 0
                                                                                             : -1;
}

/* Sends the next command, or finishes when there is none. Returns -1 when qmp is gone. */
static int send_next(helper_qmp *qmp, json_t *answer)
{
    if (qmp->sent == qmp->count) {
        finish(qmp, QMP_OK, answer);
        return -1;
    }
    if (send_line(qmp->fd, qmp->lines[qmp->sent], qmp->fds[qmp->sent]) != 0) {
        finish(qmp, QMP_FAILED, NULL);
        return -1;
    }
    qmp->sent++;
    return 0;
}

/* One complete line from QEMU. Returns -1 when qmp is gone. */
static int on_line(void *data, const char *line)
{
    helper_qmp *qmp = data;
    json_t *message;
    int rv = 0;
    switch (helper_qmp_line(line, &message)) {
    case QMP_LINE_OTHER: break;
    case QMP_LINE_GREETING:
        if (qmp->stage == WAIT_GREETING) {
            qmp->stage = WAIT_CAPABILITIES;
            if (send_line(qmp->fd, QMP_CAPABILITIES "\n", -1) != 0) {
                finish(qmp, QMP_FAILED, NULL);
                rv = -1;
            }
        }
        break;
    case QMP_LINE_ERROR:
        finish(qmp, QMP_FAILED, NULL);
        rv = -1;
        break;
    case QMP_LINE_RETURN:
        qmp->stage = WAIT_COMMANDS;
        rv = send_next(qmp, json_object_get(message, "return"));
        break;
    }
    json_decref(message);
    return rv;
}

/* The connection ended or timed out: what was achieved so far. */
static helper_qmp_result cut_short(const helper_qmp *qmp)
{
    return qmp->stage == WAIT_COMMANDS && qmp->count > 0 && qmp->sent == qmp->count ? QMP_SENT
                                                                                    : QMP_FAILED;
}

static void on_io(void *data, short revents)
{
    helper_qmp *qmp = data;
    if (!revents) {
        finish(qmp, cut_short(qmp), NULL);
        return;
    }
    size_t room;
    char *space = helper_lines_space(&qmp->input, &room);
    ssize_t n = recv(qmp->fd, space, room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        finish(qmp, cut_short(qmp), NULL);
        return;
    }
    helper_lines_added(&qmp->input, (size_t)n, on_line, qmp);
}

helper_qmp *helper_qmp_start(helper_events *events, const char *path,
                             const helper_qmp_command *commands, int count, int timeout_ms,
                             helper_qmp_done *done, void *data)
{
    helper_qmp *qmp = calloc(1, sizeof *qmp);
    if (!qmp) {
        return NULL;
    }
    qmp->fd = -1;
    qmp->lines = calloc((size_t)count + 1, sizeof *qmp->lines);
    qmp->fds = calloc((size_t)count + 1, sizeof *qmp->fds);
    if (!qmp->lines || !qmp->fds) {
        qmp_free(qmp);
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        size_t length = strlen(commands[i].line);
        qmp->fds[i] = -1;
        qmp->count = i + 1;
        if (!(qmp->lines[i] = malloc(length + 2))) {
            qmp_free(qmp);
            return NULL;
        }
        memcpy(qmp->lines[i], commands[i].line, length);
        memcpy(qmp->lines[i] + length, "\n", 2);
        if (commands[i].fd >= 0 && (qmp->fds[i] = fcntl(commands[i].fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            qmp_free(qmp);
            return NULL;
        }
    }
    qmp->done = done;
    qmp->data = data;
    qmp->fd = helper_unix_connect(path);
    qmp->watch = qmp->fd >= 0 ? helper_watch_fd(events, qmp->fd, POLLIN, on_io, qmp) : NULL;
    if (!qmp->watch) {
        qmp_free(qmp);
        return NULL;
    }
    helper_watch_deadline(qmp->watch, helper_clock_now() + apr_time_from_msec(timeout_ms));
    return qmp;
}

typedef struct {
    int finished;
    helper_qmp_result result;
    json_t *answer;
} run_outcome;

static void run_done(void *data, helper_qmp_result result, json_t *answer)
{
    run_outcome *outcome = data;
    outcome->finished = 1;
    outcome->result = result;
    outcome->answer = json_incref(answer);
}

helper_qmp_result helper_qmp_run(const char *path, const helper_qmp_command *commands, int count,
                                 int timeout_ms, json_t **answer)
{
    run_outcome outcome = {0, QMP_FAILED, NULL};
    helper_events *events = helper_events_create();
    helper_qmp *qmp =
        events ? helper_qmp_start(events, path, commands, count, timeout_ms, run_done, &outcome)
               : NULL;
    while (qmp && !outcome.finished) {
        if (helper_events_poll(events, timeout_ms) < 0) {
            helper_qmp_cancel(qmp);
            break;
        }
    }
    helper_events_destroy(events);
    if (answer) {
        *answer = outcome.answer;
    }
    else {
        json_decref(outcome.answer);
    }
    return outcome.finished ? outcome.result : QMP_FAILED;
}
