/* SPDX-License-Identifier: Apache-2.0 */
/* Client connections. The helper is single-threaded: every socket is non-blocking, a slow or
 * silent client only ever costs its own connection. */
#include "helper_clients.h"
#include "helper_log.h"
#include "helper_ops.h"
#include "helper_session.h"
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

static void set_line_deadline(helper_client *c)
{
    c->line_deadline = apr_time_now() + apr_time_from_sec(c->h->config->client_timeout);
}

static void client_free(helper_client *c)
{
    helper *h = c->h;
    for (helper_client **link = &h->clients; *link; link = &(*link)->next) {
        if (*link == c) {
            *link = c->next;
            break;
        }
    }
    close(c->fd);
    free(c->outbuf);
    json_decref(c->waiting_id);
    apr_pool_destroy(c->pool);
}

/* A client that leaves with work pending loses only its own replies; say so in the log. */
static void log_disconnect(helper_client *c)
{
    if (c->inbuf_len > 0 || c->waiting_for) {
        helper_log_info(QWDLOGNO(05003) "client pid %d: disconnected mid-request",
                        (int)c->peer_pid);
    }
    else if (c->outbuf_len > 0) {
        helper_log_info(QWDLOGNO(05004) "client pid %d: disconnected before its reply was sent",
                        (int)c->peer_pid);
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

void helper_client_send(helper_client *c, json_t *message, int close_after)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, c->pool);
    char *line = qwd_proto_encode(scratch, message);
    if (!line) {
        json_t *error = qwd_proto_error(QWD_ERR_INTERNAL, "the reply is too large", NULL,
                                        json_object_get(message, "id"));
        line = qwd_proto_encode(scratch, error);
        json_decref(error);
    }
    apr_size_t len = strlen(line);
    if (c->outbuf_len + len > OUTBUF_MAX) {
        helper_log_warn(QWDLOGNO(05005) "client pid %d: does not read its replies, closing",
                        (int)c->peer_pid);
        c->outbuf_len = 0;
        c->close_when_flushed = 1;
    }
    else {
        c->outbuf = realloc(c->outbuf, c->outbuf_len + len);
        memcpy(c->outbuf + c->outbuf_len, line, len);
        c->outbuf_len += len;
        c->close_when_flushed |= close_after;
    }
    apr_pool_destroy(scratch);
}

void helper_client_error(helper_client *c, json_t *id, const char *code, const char *message,
                         json_t *extra, int close_after)
{
    helper_log_info(QWDLOGNO(05006) "client uid %d pid %d: error %s: %s", (int)c->peer_uid,
                    (int)c->peer_pid, code, message);
    json_t *error = qwd_proto_error(code, message, extra, id);
    helper_client_send(c, error, close_after);
    json_decref(error);
}

/* Whether the peer on fd may use the helper: root, the helper's own user, or a process in
 * allowed_group (primary or supplementary group, as the kernel saw them at connect time). */
static int peer_allowed(helper *h, int fd, const struct ucred *peer)
{
    if (peer->uid == 0 || peer->uid == geteuid()) {
        return 1;
    }
    if (!h->allowed_gid_set) {
        return 0;
    }
    if (peer->gid == h->allowed_gid) {
        return 1;
    }
    gid_t groups[NGROUPS_MAX_PEER];
    socklen_t len = sizeof groups;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
        return 0;
    }
    for (size_t i = 0; i < len / sizeof groups[0]; i++) {
        if (groups[i] == h->allowed_gid) {
            return 1;
        }
    }
    return 0;
}

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
    c->pool = pool;
    c->h = h;
    c->fd = fd;
    c->peer_pid = peer.pid;
    c->peer_uid = peer.uid;
    c->inbuf = apr_palloc(pool, INBUF_SIZE);
    c->next = h->clients;
    h->clients = c;
    set_line_deadline(c);
    if (!peer_allowed(h, fd, &peer)) {
        helper_client_error(c, NULL, QWD_ERR_FORBIDDEN,
                            "this user may not use qwd-helper (not in allowed_group)", NULL, 1);
        flush(c);
        return;
    }
    json_t *greeting = helper_ops_greeting();
    helper_client_send(c, greeting, 0);
    json_decref(greeting);
    flush(c);
}

void helper_clients_accept(helper *h)
{
    for (;;) {
        int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
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

/* Answers the complete lines in c's buffer, in order, until one must wait. */
static void process_lines(helper_client *c)
{
    while (!c->waiting_for && !c->close_when_flushed) {
        char *newline = memchr(c->inbuf, '\n', c->inbuf_len);
        if (!newline) {
            if (c->inbuf_len == INBUF_SIZE) {
                helper_client_error(c, NULL, QWD_ERR_TOO_LARGE,
                                    apr_psprintf(c->pool, "a message may not exceed %d bytes",
                                                 QWD_PROTO_MAX_MESSAGE),
                                    NULL, 1);
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
            helper_ops_dispatch(c, ptemp, request);
        }
        else if (len > 0) {
            helper_client_error(c, NULL, code, message, NULL, !strcmp(code, QWD_ERR_TOO_LARGE));
        }
        apr_pool_destroy(ptemp);
    }
}

void helper_client_io(helper_client *c, short revents)
{
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

short helper_client_events(helper_client *c)
{
    short events = 0;
    /* While a reply waits, later requests stay in the kernel buffer (replies keep order). */
    if (!c->waiting_for && !c->close_when_flushed) {
        events |= POLLIN;
    }
    if (c->outbuf_len > 0) {
        events |= POLLOUT;
    }
    return events;
}

static int all_ended(apr_array_header_t *sessions)
{
    for (int i = 0; i < sessions->nelts; i++) {
        if (APR_ARRAY_IDX(sessions, i, helper_session *)->state != SESSION_ENDED) {
            return 0;
        }
    }
    return 1;
}

/* Queues the held reply of c if its sessions have all ended. Never flushes, so c stays valid
 * for a caller that is still processing c's lines. Returns whether it answered. */
static int finish_wait(helper_client *c)
{
    if (!c->waiting_for || !all_ended(c->waiting_for)) {
        return 0;
    }
    apr_array_header_t *sessions = c->waiting_for;
    json_t *result = c->waiting_is_purge
                         ? json_pack("{s:i}", "stopped", sessions->nelts)
                         : helper_session_json(APR_ARRAY_IDX(sessions, 0, helper_session *));
    json_t *reply = qwd_proto_reply(result, c->waiting_id);
    c->waiting_for = NULL;
    json_decref(c->waiting_id);
    c->waiting_id = NULL;
    helper_client_send(c, reply, 0);
    json_decref(reply);
    set_line_deadline(c);
    return 1;
}

void helper_client_wait(helper_client *c, apr_array_header_t *sessions, json_t *id, int is_purge)
{
    c->waiting_for = apr_array_copy(c->pool, sessions);
    c->waiting_id = json_incref(id);
    c->waiting_is_purge = is_purge;
    finish_wait(c);
}

void helper_clients_session_ended(helper *h)
{
    helper_client *c = h->clients;
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

int helper_clients_wait_for(helper *h, helper_session *s)
{
    for (helper_client *c = h->clients; c; c = c->next) {
        for (int i = 0; c->waiting_for && i < c->waiting_for->nelts; i++) {
            if (APR_ARRAY_IDX(c->waiting_for, i, helper_session *) == s) {
                return 1;
            }
        }
    }
    return 0;
}

void helper_clients_tick(helper *h)
{
    apr_time_t now = apr_time_now();
    helper_client *c = h->clients;
    while (c) {
        helper_client *next = c->next;
        if (!c->waiting_for && !c->close_when_flushed && now > c->line_deadline) {
            helper_client_error(
                c, NULL, QWD_ERR_TIMEOUT,
                apr_psprintf(c->pool, "no complete request within %d s", h->config->client_timeout),
                NULL, 1);
            flush(c);
        }
        c = next;
    }
}

void helper_clients_close_all(helper *h)
{
    while (h->clients) {
        client_free(h->clients);
    }
}
