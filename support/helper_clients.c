/* SPDX-License-Identifier: Apache-2.0 */
/* Client connections. The helper is single-threaded: every socket is non-blocking, a slow or
 * silent client only ever costs its own connection. What to answer is helper_ops' business;
 * here is only when and how it is written. */
#include "helper_clients.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_log.h"
#include "helper_ops.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INBUF_SIZE (QWD_PROTO_MAX_MESSAGE + 2)
/* A client that lets this much of our output pile up is not reading: drop it. */
#define OUTBUF_MAX (4 * 1024 * 1024)
/* Supplementary groups of a peer we look at (a peer in more is refused, never mis-read). */
#define NGROUPS_MAX_PEER 1024

typedef struct helper_client {
    apr_pool_t *pool;
    helper *h;
    int fd;
    helper_watch *watch;
    helper_peer peer;
    char *inbuf;
    apr_size_t inbuf_len;
    char *outbuf; /* malloc'd: replies not yet written */
    apr_size_t outbuf_len;
    int close_when_flushed;
    apr_time_t line_deadline; /* a complete request line must arrive before this */
    /* A reply that waits for sessions; requests behind it wait too (replies stay in order). */
    helper_wait *wait;
    struct helper_client *next;
} helper_client;

struct helper_clients {
    int listen_fd;
    int allowed_gid_set;
    gid_t allowed_gid;
    helper_client *list;
};

static void set_line_deadline(helper_client *c)
{
    c->line_deadline = helper_clock_now() + apr_time_from_sec(c->h->config->client_timeout);
}

static void client_free(helper_client *c)
{
    for (helper_client **link = &c->h->clients->list; *link; link = &(*link)->next) {
        if (*link == c) {
            *link = c->next;
            break;
        }
    }
    helper_watch_cancel(c->watch);
    close(c->fd);
    free(c->outbuf);
    if (c->wait) {
        helper_wait_abandon(c->wait);
    }
    apr_pool_destroy(c->pool);
}

/* A client that leaves with work pending loses only its own replies; say so in the log. */
static void log_disconnect(helper_client *c)
{
    if (c->inbuf_len > 0 || c->wait) {
        helper_log_info(QWDLOGNO(05003) "client pid %d: disconnected mid-request",
                        (int)c->peer.pid);
    }
    else if (c->outbuf_len > 0) {
        helper_log_info(QWDLOGNO(05004) "client pid %d: disconnected before its reply was sent",
                        (int)c->peer.pid);
    }
}

/* Writes what it can of c's output. Returns -1 when c was freed. */
static int flush(helper_client *c)
{
    while (c->outbuf_len > 0) {
        ssize_t n = send(c->fd, c->outbuf, c->outbuf_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->outbuf_len -= (apr_size_t)n;
            memmove(c->outbuf, c->outbuf + n, c->outbuf_len);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        log_disconnect(c);
        client_free(c);
        return -1;
    }
    if (c->close_when_flushed) {
        client_free(c);
        return -1;
    }
    return 0;
}

static void queue_message(helper_client *c, json_t *message, int close_after);

/* Queues message (borrowed) for c; close_after closes c once it is written. Error replies are
 * logged, whoever made them. */
static void send_message(helper_client *c, json_t *message, int close_after)
{
    json_t *error = json_object_get(message, "error");
    if (error) {
        helper_log_info(QWDLOGNO(05006) "client uid %d pid %d: error %s: %s", (int)c->peer.uid,
                        (int)c->peer.pid, json_string_value(json_object_get(error, "code")),
                        json_string_value(json_object_get(error, "message")));
    }
    queue_message(c, message, close_after);
}

/* send_message without the log line, for a caller that logs in its own words. */
static void queue_message(helper_client *c, json_t *message, int close_after)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, c->pool);
    char *line = qwd_proto_encode(scratch, message);
    if (!line) {
        json_t *too_large = qwd_proto_error(QWD_ERR_INTERNAL, "the reply is too large", NULL,
                                            json_object_get(message, "id"));
        line = qwd_proto_encode(scratch, too_large);
        json_decref(too_large);
    }
    apr_size_t len = strlen(line);
    char *grown = NULL;
    if (c->outbuf_len + len > OUTBUF_MAX) {
        helper_log_warn(QWDLOGNO(05005) "client pid %d: does not read its replies, closing",
                        (int)c->peer.pid);
    }
    else if (!(grown = realloc(c->outbuf, c->outbuf_len + len))) {
        helper_log_error(QWDLOGNO(05100) "client pid %d: no memory for its reply, closing",
                         (int)c->peer.pid);
    }
    if (grown) {
        c->outbuf = grown;
        memcpy(c->outbuf + c->outbuf_len, line, len);
        c->outbuf_len += len;
        c->close_when_flushed |= close_after;
    }
    else {
        c->outbuf_len = 0;
        c->close_when_flushed = 1;
    }
    apr_pool_destroy(scratch);
}

static void send_error(helper_client *c, const char *code, const char *message, int close_after)
{
    json_t *error = qwd_proto_error(code, message, NULL, NULL);
    send_message(c, error, close_after);
    json_decref(error);
}

/* Whether the peer on fd may use the helper: root, the helper's own user, or a process in
 * allowed_group (primary or supplementary group, as the kernel saw them at connect time). */
static int peer_allowed(const helper_clients *clients, int fd, const struct ucred *peer)
{
    if (peer->uid == 0 || peer->uid == geteuid()) {
        return 1;
    }
    if (!clients->allowed_gid_set) {
        return 0;
    }
    if (peer->gid == clients->allowed_gid) {
        return 1;
    }
    gid_t groups[NGROUPS_MAX_PEER];
    socklen_t len = sizeof groups;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
        return 0;
    }
    for (size_t i = 0; i < len / sizeof groups[0]; i++) {
        if (groups[i] == clients->allowed_gid) {
            return 1;
        }
    }
    return 0;
}

static short client_events(void *data);
static void client_io(void *data, short revents);

static void accept_one(helper *h, int fd)
{
    struct ucred peer;
    socklen_t len = sizeof peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
        close(fd);
        return;
    }
    apr_pool_t *pool;
    apr_pool_create(&pool, h->pool);
    helper_client *c = apr_pcalloc(pool, sizeof *c);
    c->watch = helper_watch_fd(h->events, fd, 0, client_io, c);
    if (!c->watch) {
        apr_pool_destroy(pool);
        close(fd);
        return;
    }
    helper_watch_events_from(c->watch, client_events);
    c->pool = pool;
    c->h = h;
    c->fd = fd;
    c->peer = (helper_peer){.uid = peer.uid, .pid = peer.pid};
    c->inbuf = apr_palloc(pool, INBUF_SIZE);
    c->next = h->clients->list;
    h->clients->list = c;
    set_line_deadline(c);
    if (!peer_allowed(h->clients, fd, &peer)) {
        send_error(c, QWD_ERR_FORBIDDEN, "this user may not use qwd-helper (not in allowed_group)",
                   1);
        flush(c);
        return;
    }
    json_t *greeting = helper_ops_greeting();
    send_message(c, greeting, 0);
    json_decref(greeting);
    flush(c);
}

static void on_listen(void *data, short revents)
{
    helper *h = data;
    for (;;) {
        int fd = accept4(h->clients->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                helper_log_error(QWDLOGNO(05007) "accept: %s", strerror(errno));
            }
            if (errno != EINTR) {
                return;
            }
            continue;
        }
        accept_one(h, fd);
    }
}

void helper_clients_init(helper *h, int listen_fd, int allowed_gid_set, gid_t allowed_gid)
{
    h->clients = apr_pcalloc(h->pool, sizeof *h->clients);
    h->clients->listen_fd = listen_fd;
    h->clients->allowed_gid_set = allowed_gid_set;
    h->clients->allowed_gid = allowed_gid;
    helper_watch_fd(h->events, listen_fd, POLLIN, on_listen, h);
}

/* Sends the held reply of c if its wait is over. Never flushes, so c stays valid for a caller
 * that is still processing c's lines. Returns whether it answered. */
static int finish_wait(helper_client *c)
{
    if (!c->wait || !helper_wait_over(c->wait)) {
        return 0;
    }
    json_t *reply = helper_wait_reply(c->wait);
    c->wait = NULL;
    send_message(c, reply, 0);
    json_decref(reply);
    set_line_deadline(c);
    return 1;
}

/* Answers the complete lines in c's buffer, in order, until one must wait. */
static void process_lines(helper_client *c)
{
    while (!c->wait && !c->close_when_flushed) {
        char *newline = memchr(c->inbuf, '\n', c->inbuf_len);
        if (!newline) {
            if (c->inbuf_len == INBUF_SIZE) {
                send_error(c, QWD_ERR_TOO_LARGE,
                           apr_psprintf(c->pool, "a message may not exceed %d bytes",
                                        QWD_PROTO_MAX_MESSAGE),
                           1);
            }
            return;
        }
        apr_size_t len = (apr_size_t)(newline - c->inbuf);
        apr_pool_t *ptemp;
        apr_pool_create(&ptemp, c->pool);
        const char *code, *message;
        json_t *request = qwd_proto_parse_line(ptemp, c->inbuf, len, &code, &message);
        c->inbuf_len -= len + 1;
        memmove(c->inbuf, newline + 1, c->inbuf_len);
        set_line_deadline(c);
        if (request) {
            helper_answer answer;
            helper_ops_dispatch(c->h, ptemp, c->pool, &c->peer, request, &answer);
            c->peer.said_hello |= answer.said_hello;
            if (answer.message) {
                send_message(c, answer.message, answer.close_after);
                json_decref(answer.message);
            }
            else {
                c->wait = answer.wait;
                finish_wait(c);
            }
        }
        else if (len > 0) {
            send_error(c, code, message, !strcmp(code, QWD_ERR_TOO_LARGE));
        }
        apr_pool_destroy(ptemp);
    }
}

static void client_io(void *data, short revents)
{
    helper_client *c = data;
    if (revents & POLLOUT) {
        if (flush(c) < 0) {
            return;
        }
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = recv(c->fd, c->inbuf + c->inbuf_len, INBUF_SIZE - c->inbuf_len, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            log_disconnect(c);
            client_free(c);
            return;
        }
        if (n > 0) {
            c->inbuf_len += (apr_size_t)n;
            process_lines(c);
        }
    }
    flush(c);
}

static short client_events(void *data)
{
    helper_client *c = data;
    short events = 0;
    /* While a reply waits, later requests stay in the kernel buffer (replies keep order). */
    if (!c->wait && !c->close_when_flushed) {
        events |= POLLIN;
    }
    if (c->outbuf_len > 0) {
        events |= POLLOUT;
    }
    return events;
}

void helper_clients_sessions_changed(helper *h)
{
    helper_client *c = h->clients->list;
    while (c) {
        helper_client *next = c->next;
        /* Requests that queued up behind the held reply are answered now. */
        if (finish_wait(c) && flush(c) == 0) {
            process_lines(c);
            flush(c);
        }
        c = next;
    }
}

void helper_clients_tick(helper *h)
{
    apr_time_t now = helper_clock_now();
    helper_client *c = h->clients->list;
    while (c) {
        helper_client *next = c->next;
        if (!c->wait && !c->close_when_flushed && now > c->line_deadline) {
            /* A connection with nothing pending is one a client keeps for its next request
             * (mod_qwd's cache of idle connections): closing it is routine, not worth a line.
             * A request begun and not finished is a client in trouble. */
            if (c->inbuf_len > 0) {
                helper_log_warn(QWDLOGNO(05101) "client uid %d pid %d: %lu bytes of a request "
                                                "and no end of line within %d s, closing",
                                (int)c->peer.uid, (int)c->peer.pid, (unsigned long)c->inbuf_len,
                                h->config->client_timeout);
            }
            json_t *error = qwd_proto_error(
                QWD_ERR_TIMEOUT,
                apr_psprintf(c->pool, "no complete request within %d s", h->config->client_timeout),
                NULL, NULL);
            queue_message(c, error, 1);
            json_decref(error);
            flush(c);
        }
        c = next;
    }
}

void helper_clients_close_all(helper *h)
{
    while (h->clients->list) {
        client_free(h->clients->list);
    }
}
