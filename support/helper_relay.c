/* SPDX-License-Identifier: Apache-2.0 */
/* Each viewer is two non-blocking sockets in the loop's poll set and two buffers: what the
 * viewer sent, checked unit by unit before any of it reaches the display (a unit longer than the
 * buffer is passed or skipped as its bytes arrive, only its header is read), and what the
 * display sent, passed as it is. A full buffer stops reading its side until the other drains
 * it, so a slow viewer slows only itself. Nothing waits: every step is an event of the loop. */
#include "helper_relay.h"
#include "helper_events.h"
#include "helper_log.h"
#include "helper_unix.h"
#include "qwd_protocol.h"
#include "qwd_rfb.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What a viewer sent, not yet at the display: headers are at most QWD_RFB_HEADER_MAX bytes. */
#define UP_BUFFER 16384
/* What the display sent, not yet at the viewer: a few screen updates. */
#define DOWN_BUFFER (128 * 1024)
/* Connections websockify may queue on a way in before the relay accepts them. */
#define LISTEN_BACKLOG 16
#define WHY_MAX 160

typedef struct relay_entrance {
    helper_relay *relay;
    char *kind;
    char *share; /* NULL: the session's own link */
    char *path;
    int fd;
    helper_watch *watch;
    int once;
    struct relay_entrance *next;
} relay_entrance;

typedef struct relay_viewer {
    helper_relay *relay;
    relay_entrance *entrance;
    unsigned number;
    apr_time_t since;     /* wall clock: what the session object shows */
    apr_time_t joined_at; /* helper_clock_now(): how long it watched counts from it */
    int client_fd, display_fd;
    helper_watch *client_watch, *display_watch;
    qwd_rfb_client rfb;
    uint64_t pass; /* bytes of a forwarded unit still to come */
    uint64_t skip; /* bytes of a dropped unit still to come */
    unsigned dropped;
    size_t up_len, up_vetted; /* held from the viewer; the first up_vetted may go on */
    size_t down_len;          /* held from the display */
    struct relay_viewer *next;
    unsigned char up[UP_BUFFER];
    unsigned char down[DOWN_BUFFER];
} relay_viewer;

struct helper_relay {
    helper_events *events;
    char *session_id;
    char *display_socket;
    helper_relay_hook *hook;
    void *hook_data;
    relay_entrance *entrances;
    relay_viewer *viewers;
    unsigned numbered; /* viewers so far */
};

helper_relay *helper_relay_create(helper_events *events, const char *session_id,
                                  const char *display_socket, helper_relay_hook *hook, void *data)
{
    helper_relay *relay = calloc(1, sizeof *relay);
    if (!relay || !(relay->session_id = strdup(session_id))
        || !(relay->display_socket = strdup(display_socket))) {
        if (relay) {
            free(relay->session_id);
        }
        free(relay);
        return NULL;
    }
    relay->events = events;
    relay->hook = hook;
    relay->hook_data = data;
    return relay;
}

static void report(relay_viewer *v, helper_relay_event event, const char *why)
{
    helper_relay *relay = v->relay;
    helper_relay_report r = {
        .event = event,
        .viewer = v->number,
        .kind = v->entrance->kind,
        .share = v->entrance->share,
        .since = v->since,
        .seconds = (double)(helper_clock_now() - v->joined_at) / APR_USEC_PER_SEC,
        .why = why,
        .dropped = v->dropped,
        .watching = helper_relay_watching(relay, NULL),
    };
    relay->hook(relay->hook_data, &r);
}

/* Unlinks v from its relay, closes its sockets, tells the session why (unless why is NULL: the
 * helper exits, nobody is left to tell) and frees it. */
static void close_viewer(relay_viewer *v, const char *why)
{
    helper_relay *relay = v->relay;
    for (relay_viewer **link = &relay->viewers; *link; link = &(*link)->next) {
        if (*link == v) {
            *link = v->next;
            break;
        }
    }
    helper_watch_close(&v->client_watch, &v->client_fd);
    helper_watch_close(&v->display_watch, &v->display_fd);
    if (why) {
        report(v, RELAY_VIEWER_LEFT, why);
    }
    free(v);
}

/* Checks what the viewer sent: the units it may send become sendable (up_vetted), dropped ones
 * leave the buffer. Returns NULL, or why the viewer must be closed (in why). */
static const char *vet(relay_viewer *v, char *why)
{
    while (v->up_vetted < v->up_len) {
        unsigned char *at = v->up + v->up_vetted;
        size_t held = v->up_len - v->up_vetted;
        if (v->skip) {
            size_t n = held < v->skip ? held : (size_t)v->skip;
            memmove(at, at + n, held - n);
            v->up_len -= n;
            v->skip -= n;
            continue;
        }
        if (v->pass) {
            size_t n = held < v->pass ? held : (size_t)v->pass;
            v->up_vetted += n;
            v->pass -= n;
            continue;
        }
        qwd_rfb_unit unit = qwd_rfb_client_next(&v->rfb, at, held);
        switch (unit.verdict) {
        case QWD_RFB_NEED_MORE: return NULL;
        case QWD_RFB_FORWARD:
            if (unit.client_init) {
                at[0] = 1; /* shared: no viewer has the display alone */
            }
            v->pass = unit.length;
            break;
        case QWD_RFB_DROP:
            if (!v->dropped++) {
                helper_log_info(QWDLOGNO(05704) "session %s: viewer %u (%s): dropping its "
                                                "input (%s first)",
                                v->relay->session_id, v->number, v->entrance->kind, unit.what);
            }
            v->skip = unit.length;
            break;
        case QWD_RFB_REFUSE:
        case QWD_RFB_INVALID:
            snprintf(why, WHY_MAX, "%s %s: %s",
                     unit.verdict == QWD_RFB_REFUSE ? "refused" : "invalid", unit.what,
                     unit.reason);
            return why;
        }
    }
    return NULL;
}

/* Writes what it can of buffer to fd; returns the bytes written, or -1 (errno) when the
 * connection is broken. */
static ssize_t send_some(int fd, const unsigned char *buffer, size_t len)
{
    ssize_t n = len ? send(fd, buffer, len, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    return n;
}

/* Moves vetted bytes to the display and display bytes to the viewer, as far as they go.
 * Returns NULL, or why the viewer must be closed. */
static const char *flush(relay_viewer *v)
{
    ssize_t n = send_some(v->display_fd, v->up, v->up_vetted);
    if (n < 0) {
        return "the display closed";
    }
    memmove(v->up, v->up + n, v->up_len - (size_t)n);
    v->up_len -= (size_t)n;
    v->up_vetted -= (size_t)n;
    n = send_some(v->client_fd, v->down, v->down_len);
    if (n < 0) {
        return "the viewer closed";
    }
    memmove(v->down, v->down + n, v->down_len - (size_t)n);
    v->down_len -= (size_t)n;
    return NULL;
}

/* Reads fd into buffer (room bytes free at *len) until it would block or the buffer is full.
 * Returns 0, or -1 at the end of the stream or on an error. */
static int fill(int fd, unsigned char *buffer, size_t size, size_t *len)
{
    while (*len < size) {
        ssize_t n = recv(fd, buffer + *len, size - *len, MSG_DONTWAIT);
        if (n > 0) {
            *len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        return n < 0 && errno == EAGAIN ? 0 : -1;
    }
    return 0;
}

static void on_client(void *data, short revents)
{
    relay_viewer *v = data;
    char why[WHY_MAX];
    const char *problem = NULL;
    if ((revents & (POLLIN | POLLHUP | POLLERR))
        && (v->up_len < UP_BUFFER ? fill(v->client_fd, v->up, UP_BUFFER, &v->up_len) != 0
                                  : !(revents & POLLIN))) {
        problem = "the viewer closed"; /* or hung up with the buffer full: nothing more comes */
    }
    /* what arrived before the end is still checked, and sent when it may be */
    const char *refused = vet(v, why);
    problem = refused ? refused : problem;
    if (!problem) {
        problem = flush(v);
    }
    if (problem) {
        close_viewer(v, problem);
    }
}

static void on_display(void *data, short revents)
{
    relay_viewer *v = data;
    const char *problem = NULL;
    if ((revents & (POLLIN | POLLHUP | POLLERR))
        && (v->down_len < DOWN_BUFFER ? fill(v->display_fd, v->down, DOWN_BUFFER, &v->down_len) != 0
                                      : !(revents & POLLIN))) {
        problem = "the display closed";
    }
    const char *stuck = flush(v);
    if (problem || stuck) {
        /* the display's last words go to the viewer if it takes them at once */
        close_viewer(v, problem ? problem : stuck);
    }
}

static short client_events(void *data)
{
    relay_viewer *v = data;
    return (short)((v->up_len < UP_BUFFER ? POLLIN : 0) | (v->down_len ? POLLOUT : 0));
}

static short display_events(void *data)
{
    relay_viewer *v = data;
    return (short)((v->down_len < DOWN_BUFFER ? POLLIN : 0) | (v->up_vetted ? POLLOUT : 0));
}

static void close_listener(relay_entrance *entrance)
{
    if (entrance->fd >= 0) {
        unlink(entrance->path);
    }
    helper_watch_close(&entrance->watch, &entrance->fd);
}

/* A viewer connected on entrance: its own way to the display, then both in the poll set. */
static void join(relay_entrance *entrance, int client_fd)
{
    helper_relay *relay = entrance->relay;
    relay_viewer *v = calloc(1, sizeof *v);
    if (!v) {
        helper_log_error(QWDLOGNO(05703) "session %s: no memory for a viewer", relay->session_id);
        close(client_fd);
        return;
    }
    v->relay = relay;
    v->entrance = entrance;
    v->client_fd = client_fd;
    v->display_fd = helper_unix_connect(relay->display_socket);
    if (v->display_fd < 0) {
        helper_log_warn(QWDLOGNO(05702) "session %s: a viewer (%s) cannot reach the display: %s",
                        relay->session_id, entrance->kind, strerror(errno));
        close(client_fd);
        free(v);
        return;
    }
    v->client_watch = helper_watch_fd(relay->events, client_fd, POLLIN, on_client, v);
    v->display_watch = helper_watch_fd(relay->events, v->display_fd, POLLIN, on_display, v);
    if (!v->client_watch || !v->display_watch) {
        helper_log_error(QWDLOGNO(05705) "session %s: no memory for a viewer", relay->session_id);
        helper_watch_close(&v->client_watch, &v->client_fd);
        helper_watch_close(&v->display_watch, &v->display_fd);
        free(v);
        return;
    }
    helper_watch_events_from(v->client_watch, client_events);
    helper_watch_events_from(v->display_watch, display_events);
    qwd_rfb_client_init(&v->rfb, !strcmp(entrance->kind, QWD_VIEWER_VIEW));
    v->number = ++relay->numbered;
    v->since = apr_time_now();
    v->joined_at = helper_clock_now();
    v->next = relay->viewers;
    relay->viewers = v;
    report(v, RELAY_VIEWER_JOINED, NULL);
}

static void on_listener(void *data, short revents)
{
    relay_entrance *entrance = data;
    for (;;) {
        int fd = accept4(entrance->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                helper_log_warn(QWDLOGNO(05701) "session %s: accepting a viewer (%s): %s",
                                entrance->relay->session_id, entrance->kind, strerror(errno));
            }
            return;
        }
        if (entrance->once) {
            close_listener(entrance); /* one viewer, ever */
        }
        join(entrance, fd);
        if (entrance->fd < 0) {
            return;
        }
    }
}

static void free_entrance(relay_entrance *entrance)
{
    close_listener(entrance);
    free(entrance->kind);
    free(entrance->share);
    free(entrance->path);
    free(entrance);
}

int helper_relay_listen(helper_relay *relay, const char *path, const char *kind, const char *share,
                        int once)
{
    relay_entrance *entrance = calloc(1, sizeof *entrance);
    if (!entrance) {
        return ENOMEM;
    }
    entrance->relay = relay;
    entrance->once = once;
    entrance->fd = -1;
    int error = 0;
    if (!(entrance->kind = strdup(kind)) || !(entrance->path = strdup(path))
        || (share && !(entrance->share = strdup(share)))) {
        error = ENOMEM;
    }
    else if ((entrance->fd = helper_unix_listen(path, LISTEN_BACKLOG)) < 0) {
        error = errno;
    }
    if (!error
        && !(entrance->watch =
                 helper_watch_fd(relay->events, entrance->fd, POLLIN, on_listener, entrance))) {
        error = ENOMEM;
    }
    if (error) {
        helper_log_error(QWDLOGNO(05700) "session %s: cannot open a way in for viewers (%s): %s",
                         relay->session_id, kind, strerror(error));
        free_entrance(entrance);
        return error;
    }
    entrance->next = relay->entrances;
    relay->entrances = entrance;
    return 0;
}

static int same_share(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

unsigned helper_relay_close_entrance(helper_relay *relay, const char *share, const char *why)
{
    unsigned closed = 0;
    relay_entrance **link = &relay->entrances;
    while (*link && !same_share((*link)->share, share)) {
        link = &(*link)->next;
    }
    if (!*link) {
        return 0;
    }
    relay_entrance *entrance = *link;
    close_listener(entrance); /* nobody new comes in while its viewers go */
    for (relay_viewer *v = relay->viewers, *next; v; v = next) {
        next = v->next;
        if (v->entrance == entrance) {
            close_viewer(v, why);
            closed++;
        }
    }
    *link = entrance->next;
    free_entrance(entrance);
    return closed;
}

unsigned helper_relay_watching(const helper_relay *relay, const char *kind)
{
    unsigned count = 0;
    for (const relay_viewer *v = relay->viewers; v; v = v->next) {
        count += !kind || !strcmp(v->entrance->kind, kind);
    }
    return count;
}

json_t *helper_relay_viewers_json(const helper_relay *relay)
{
    json_t *list = json_array();
    for (const relay_viewer *v = relay->viewers; v; v = v->next) {
        /* the list is newest first: put each before the others, oldest ends first */
        json_array_insert_new(
            list, 0,
            json_pack("{s:i, s:s, s:o, s:I}", "viewer", (int)v->number, "kind", v->entrance->kind,
                      "share", v->entrance->share ? json_string(v->entrance->share) : json_null(),
                      "since", (json_int_t)apr_time_sec(v->since)));
    }
    return list;
}

/* Frees relay; its viewers are closed with why told to the session, or silently (why NULL:
 * the helper exits and nobody is left to tell), its entrances unlinked only when told. */
static void free_relay(helper_relay *relay, const char *why)
{
    if (!relay) {
        return;
    }
    while (relay->viewers) {
        close_viewer(relay->viewers, why);
    }
    while (relay->entrances) {
        relay_entrance *next = relay->entrances->next;
        if (!why) {
            helper_watch_close(&relay->entrances->watch, &relay->entrances->fd);
        }
        free_entrance(relay->entrances);
        relay->entrances = next;
    }
    free(relay->session_id);
    free(relay->display_socket);
    free(relay);
}

void helper_relay_destroy(helper_relay *relay, const char *why)
{
    free_relay(relay, why);
}

void helper_relay_release(helper_relay *relay)
{
    free_relay(relay, NULL);
}
