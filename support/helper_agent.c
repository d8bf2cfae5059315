/* SPDX-License-Identifier: Apache-2.0 */
/* Non-blocking guest-agent requests: qemu-ga answers one JSON line per request. */
#include "helper_agent.h"
#include "helper_reply.h"
#include "helper_unix.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* No agent answers a line this long: a longer one is refused. */
#define AGENT_LINE_MAX 4096

int helper_agent_send(const char *socket_path, const char *request_line)
{
    int fd = helper_unix_connect(socket_path);
    if (fd < 0) {
        return -1;
    }
    size_t length = strlen(request_line);
    /* A fresh socket's buffer takes a short line whole, even before the guest reads it. */
    if (send(fd, request_line, length, MSG_NOSIGNAL) != (ssize_t)length) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Peeks at what the agent sent so far, without taking it, into line (size bytes: at most
 * size - 1 of them, then '\0'). Returns how many, 0 when nothing came yet, or -1 when the
 * channel closed or failed. */
static ssize_t peek_line(int fd, char *line, size_t size)
{
    ssize_t n = recv(fd, line, size - 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    if (n == 0) {
        return -1;
    }
    line[n] = '\0';
    return n;
}

int helper_agent_answer(int fd)
{
    char line[AGENT_LINE_MAX];
    ssize_t n = peek_line(fd, line, sizeof line);
    if (n <= 0) {
        return (int)n;
    }
    return helper_agent_reply(line, (size_t)n, sizeof line - 1);
}

int helper_agent_read(int fd, json_t **answer)
{
    char line[AGENT_LINE_MAX];
    ssize_t n = peek_line(fd, line, sizeof line);
    *answer = NULL;
    if (n <= 0) {
        return (int)n;
    }
    char *newline = strchr(line, '\n');
    if (!newline) {
        return n == (ssize_t)sizeof line - 1 ? -1 : 0;
    }
    *newline = '\0';
    *answer = json_loads(line, 0, NULL);
    if (!json_is_object(*answer)) {
        json_decref(*answer);
        *answer = NULL;
        return -1;
    }
    return 1;
}
