/* SPDX-License-Identifier: Apache-2.0 */
/* The blocking qwd-helper client: Unix socket connect, line framing with a size limit and a
 * deadline per call, greeting/hello handshake, request ids. */
#include "qwd_proto_client.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <apr_time.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct qwd_proto_client {
    apr_pool_t *pool;
    int fd;
    int timeout_ms;
    long long next_id;
    json_t *greeting;
    /* Bytes received but not yet consumed as lines; one maximal line plus its '\n' fits. */
    char *inbuf;
    apr_size_t inbuf_len;
};

#define INBUF_SIZE (QWD_PROTO_MAX_MESSAGE + 2)

static json_t *local_error(apr_pool_t *pool, const char *code, const char *message)
{
    json_t *error = json_pack("{s:s, s:s}", "code", code, "message", message);
    return qwd_json_pool_bind(pool, error);
}

void qwd_proto_client_close(qwd_proto_client *client)
{
    if (client->fd >= 0) {
        close(client->fd);
        client->fd = -1;
    }
}

static apr_status_t client_cleanup(void *data)
{
    qwd_proto_client_close(data);
    return APR_SUCCESS;
}

/* Milliseconds left until deadline, at least 0. */
static int ms_left(apr_time_t deadline)
{
    apr_time_t left = deadline - apr_time_now();
    return left > 0 ? (int)apr_time_as_msec(left) : 0;
}

/* Waits until fd is ready for events or the deadline passes. */
static apr_status_t wait_ready(int fd, short events, apr_time_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, ms_left(deadline));
        if (n > 0) {
            return APR_SUCCESS;
        }
        if (n == 0) {
            return APR_TIMEUP;
        }
        if (errno != EINTR) {
            return APR_FROM_OS_ERROR(errno);
        }
    }
}

/* Fails the client: closes it and describes why in *error. */
static apr_status_t fail(qwd_proto_client *client, apr_pool_t *pool, apr_status_t status,
                         const char *what, json_t **error)
{
    char reason[256];
    const char *code = status == APR_TIMEUP     ? QWD_ERR_TIMEOUT
                       : status == APR_EGENERAL ? QWD_ERR_PROTOCOL
                                                : QWD_ERR_UNREACHABLE;
    const char *message =
        status == APR_EGENERAL
            ? what
            : apr_psprintf(pool, "%s: %s", what, apr_strerror(status, reason, sizeof reason));
    qwd_proto_client_close(client);
    *error = local_error(pool, code, message);
    return status;
}

static apr_status_t send_all(qwd_proto_client *client, const char *data, apr_size_t len,
                             apr_time_t deadline)
{
    while (len > 0) {
        ssize_t n = send(client->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data += n;
            len -= (apr_size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            apr_status_t rv = wait_ready(client->fd, POLLOUT, deadline);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            continue;
        }
        return APR_FROM_OS_ERROR(errno);
    }
    return APR_SUCCESS;
}

/* Reads the next whole line (without '\n') into pool. A line longer than the protocol's
 * maximum, or EOF mid-stream, is a protocol failure. */
static apr_status_t read_line(qwd_proto_client *client, apr_pool_t *pool, apr_time_t deadline,
                              char **line, apr_size_t *line_len, const char **what)
{
    for (;;) {
        char *newline = memchr(client->inbuf, '\n', client->inbuf_len);
        if (newline) {
            apr_size_t len = (apr_size_t)(newline - client->inbuf);
            *line = apr_pstrmemdup(pool, client->inbuf, len);
            *line_len = len;
            client->inbuf_len -= len + 1;
            memmove(client->inbuf, newline + 1, client->inbuf_len);
            return APR_SUCCESS;
        }
        if (client->inbuf_len == INBUF_SIZE) {
            *what = "the helper sent a line over the maximum message size";
            return APR_EGENERAL;
        }
        apr_status_t rv = wait_ready(client->fd, POLLIN, deadline);
        if (rv != APR_SUCCESS) {
            *what = "waiting for the helper";
            return rv;
        }
        ssize_t n = recv(client->fd, client->inbuf + client->inbuf_len,
                         INBUF_SIZE - client->inbuf_len, MSG_DONTWAIT);
        if (n == 0) {
            *what = "the helper closed the connection";
            return APR_EGENERAL;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                continue;
            }
            *what = "reading from the helper";
            return APR_FROM_OS_ERROR(errno);
        }
        client->inbuf_len += (apr_size_t)n;
    }
}

/* Reads one line and parses it as a JSON object. */
static apr_status_t read_message(qwd_proto_client *client, apr_pool_t *pool, apr_time_t deadline,
                                 json_t **message, const char **what)
{
    char *line = NULL;
    apr_size_t len = 0;
    apr_status_t rv = read_line(client, pool, deadline, &line, &len, what);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    const char *code;
    *message = qwd_proto_parse_line(pool, line, len, &code, what);
    return *message ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t qwd_proto_client_call(qwd_proto_client *client, apr_pool_t *pool, const char *op,
                                   json_t *arguments, json_t **result, json_t **error)
{
    *result = NULL;
    *error = NULL;
    if (client->fd < 0) {
        return fail(client, pool, APR_EGENERAL, "the connection to the helper is closed", error);
    }
    apr_time_t deadline = apr_time_now() + apr_time_from_msec(client->timeout_ms);
    long long id = client->next_id++;
    json_t *request = qwd_json_pool_bind(
        pool, qwd_proto_request(op, arguments ? json_incref(arguments) : NULL, json_integer(id)));
    char *line = qwd_proto_encode(pool, request);
    if (!line) {
        return fail(client, pool, APR_EGENERAL, "the request is too large to send", error);
    }
    apr_status_t rv = send_all(client, line, strlen(line), deadline);
    if (rv != APR_SUCCESS) {
        return fail(client, pool, rv, "sending to the helper", error);
    }

    json_t *reply;
    const char *what;
    rv = read_message(client, pool, deadline, &reply, &what);
    if (rv != APR_SUCCESS) {
        return fail(client, pool, rv, what, error);
    }
    json_t *reply_id = json_object_get(reply, "id");
    json_t *returned = json_object_get(reply, "return");
    json_t *helper_error = json_object_get(reply, "error");
    /* An error reply without id is the helper refusing the connection (forbidden, timeout). */
    if (helper_error && json_is_object(helper_error)
        && (!reply_id || json_integer_value(reply_id) == id)) {
        *error = json_incref(helper_error);
        qwd_json_pool_bind(pool, *error);
        return QWD_PROTO_HELPER_ERROR;
    }
    if (!json_is_integer(reply_id) || json_integer_value(reply_id) != id
        || !json_is_object(returned)) {
        return fail(client, pool, APR_EGENERAL, "the helper's reply does not match the request",
                    error);
    }
    *result = json_incref(returned);
    qwd_json_pool_bind(pool, *result);
    return APR_SUCCESS;
}

static apr_status_t connect_unix(int *fd_out, const char *socket_path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof addr.sun_path) {
        return APR_ENAMETOOLONG;
    }
    strcpy(addr.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        close(fd);
        return rv;
    }
    *fd_out = fd;
    return APR_SUCCESS;
}

apr_status_t qwd_proto_client_connect(apr_pool_t *pool, const char *socket_path, int timeout_ms,
                                      qwd_proto_client **client_out, json_t **error)
{
    qwd_proto_client *client = apr_pcalloc(pool, sizeof *client);
    client->pool = pool;
    client->fd = -1;
    client->timeout_ms = timeout_ms > 0 ? timeout_ms : QWD_PROTO_IDLE_TIMEOUT_MS;
    client->next_id = 1;
    client->inbuf = apr_palloc(pool, INBUF_SIZE);
    *client_out = NULL;
    *error = NULL;

    apr_status_t rv = connect_unix(&client->fd, socket_path);
    if (rv != APR_SUCCESS) {
        return fail(client, pool, rv, apr_psprintf(pool, "connecting to %s", socket_path), error);
    }
    apr_pool_cleanup_register(pool, client, client_cleanup, apr_pool_cleanup_null);

    apr_time_t deadline = apr_time_now() + apr_time_from_msec(client->timeout_ms);
    json_t *greeting;
    const char *what;
    rv = read_message(client, pool, deadline, &greeting, &what);
    if (rv != APR_SUCCESS) {
        return fail(client, pool, rv, what, error);
    }
    json_t *refusal = json_object_get(greeting, "error");
    if (json_is_object(refusal)) {
        *error = qwd_json_pool_bind(pool, json_incref(refusal));
        qwd_proto_client_close(client);
        return QWD_PROTO_HELPER_ERROR;
    }
    client->greeting = json_object_get(greeting, "qwd");
    if (!json_is_object(client->greeting)) {
        return fail(client, pool, APR_EGENERAL, "the peer sent no qwd greeting", error);
    }

    json_t *result;
    rv = qwd_proto_client_call(
        client, pool, QWD_OP_HELLO,
        qwd_json_pool_bind(pool, json_pack("{s:i}", "version", QWD_PROTO_VERSION)), &result, error);
    if (rv != APR_SUCCESS) {
        qwd_proto_client_close(client);
        return rv;
    }
    *client_out = client;
    return APR_SUCCESS;
}

int qwd_proto_client_idle_ok(qwd_proto_client *client)
{
    if (client->fd < 0 || client->inbuf_len) {
        return 0;
    }
    struct pollfd pfd = {.fd = client->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

json_t *qwd_proto_client_greeting(qwd_proto_client *client)
{
    return client->greeting;
}

const char *qwd_proto_client_socket_path(const char *explicit_path)
{
    if (explicit_path && *explicit_path) {
        return explicit_path;
    }
    const char *from_env = getenv(QWD_PROTO_SOCKET_ENV);
    if (from_env && *from_env) {
        return from_env;
    }
    return QWD_PROTO_DEFAULT_SOCKET;
}
