/* SPDX-License-Identifier: Apache-2.0 */
/* The event loop. Nothing here blocks for long: QEMU is never waited for, stops escalate on
 * timers, and child exits arrive as bytes on the self-pipe (SIGCHLD) or pidfd readiness. */
#include "helper_loop.h"
#include "helper_clients.h"
#include "helper_log.h"
#include "helper_session.h"
#include "helper_warm.h"
#include "helper_websockify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Tick granularity: VNC probes of starting sessions, stop escalation, client timeouts. */
#define TICK_STARTING_MS 50
#define TICK_IDLE_MS 250

static int signal_write_fd = -1;

static void on_signal(int sig)
{
    int saved_errno = errno;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(signal_write_fd, &byte, 1);
    (void)ignored;
    errno = saved_errno;
}

int helper_loop_signals(helper *h)
{
    if (pipe2(h->signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return errno;
    }
    signal_write_fd = h->signal_pipe[1];
    struct sigaction action = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&action.sa_mask);
    sigaction(SIGCHLD, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static void reap_children(helper *h)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == h->websockify_pid) {
            helper_websockify_exited(h, status);
            continue;
        }
        if (helper_warm_child_exited(h, pid, status)) {
            continue;
        }
        helper_session *s = helper_session_by_child(h, pid);
        if (s) {
            helper_session_exited(s, 1, status);
        }
    }
}

static void handle_signals(helper *h)
{
    unsigned char signals[64];
    ssize_t n;
    while ((n = read(h->signal_pipe[0], signals, sizeof signals)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (signals[i] == SIGCHLD) {
                reap_children(h);
            }
            else if (signals[i] == SIGTERM || signals[i] == SIGINT) {
                helper_log_info(QWDLOGNO(05015) "signal %d: shutting down, VMs keep running",
                                signals[i]);
                h->stopping = 1;
            }
            /* SIGHUP: nothing to reload yet; ignoring it keeps a terminal hangup harmless. */
        }
    }
}

typedef enum {
    WATCH_LISTENER,
    WATCH_SIGNALS,
    WATCH_CLIENT,
    WATCH_PROBE,
    WATCH_AGENT,
    WATCH_PIDFD,
    WATCH_WEBSOCKIFY
} watch_kind;

typedef struct {
    watch_kind kind;
    void *object;
} watch;

typedef struct {
    struct pollfd *fds;
    watch *watches;
    int count;
    int capacity;
} poll_set;

static void add(poll_set *set, int fd, short events, watch_kind kind, void *object)
{
    if (set->count == set->capacity) {
        set->capacity = set->capacity ? 2 * set->capacity : 64;
        set->fds = realloc(set->fds, (size_t)set->capacity * sizeof *set->fds);
        set->watches = realloc(set->watches, (size_t)set->capacity * sizeof *set->watches);
    }
    set->fds[set->count] = (struct pollfd){.fd = fd, .events = events};
    set->watches[set->count] = (watch){kind, object};
    set->count++;
}

/* Builds the poll set; returns whether a session is starting (probes want a short tick). */
static int build(helper *h, poll_set *set)
{
    int starting = 0;
    set->count = 0;
    add(set, h->signal_pipe[0], POLLIN, WATCH_SIGNALS, NULL);
    add(set, h->listen_fd, POLLIN, WATCH_LISTENER, NULL);
    if (h->websockify_output_fd >= 0) {
        add(set, h->websockify_output_fd, POLLIN, WATCH_WEBSOCKIFY, NULL);
    }
    for (helper_client *c = h->clients; c; c = c->next) {
        add(set, c->fd, helper_client_events(c), WATCH_CLIENT, c);
    }
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        starting |= s->state == SESSION_STARTING;
        if (s->probe_fd >= 0) {
            add(set, s->probe_fd, POLLIN, WATCH_PROBE, s);
        }
        if (s->agent_fd >= 0) {
            add(set, s->agent_fd, POLLIN, WATCH_AGENT, s);
        }
        if (s->pidfd >= 0) {
            add(set, s->pidfd, POLLIN, WATCH_PIDFD, s);
        }
    }
    return starting;
}

/* Whether the watched object is still there: handlers earlier in the same turn may have freed
 * a client or ended a session. */
static int still_watched(helper *h, watch *w, int fd)
{
    if (w->kind == WATCH_CLIENT) {
        for (helper_client *c = h->clients; c; c = c->next) {
            if (c == w->object && c->fd == fd) {
                return 1;
            }
        }
        return 0;
    }
    if (w->kind == WATCH_PROBE) {
        return ((helper_session *)w->object)->probe_fd == fd;
    }
    if (w->kind == WATCH_AGENT) {
        return ((helper_session *)w->object)->agent_fd == fd;
    }
    if (w->kind == WATCH_PIDFD) {
        return ((helper_session *)w->object)->pidfd == fd;
    }
    if (w->kind == WATCH_WEBSOCKIFY) {
        return h->websockify_output_fd == fd;
    }
    return 1;
}

static void dispatch(helper *h, poll_set *set)
{
    for (int i = 0; i < set->count; i++) {
        struct pollfd *pfd = &set->fds[i];
        watch *w = &set->watches[i];
        if (!pfd->revents || !still_watched(h, w, pfd->fd)) {
            continue;
        }
        switch (w->kind) {
        case WATCH_SIGNALS: handle_signals(h); break;
        case WATCH_LISTENER: helper_clients_accept(h); break;
        case WATCH_CLIENT: helper_client_io(w->object, pfd->revents); break;
        case WATCH_PROBE: helper_session_probe_ready(w->object); break;
        case WATCH_AGENT: helper_session_agent_answered(w->object); break;
        case WATCH_PIDFD: helper_session_exited(w->object, 0, 0); break;
        case WATCH_WEBSOCKIFY: helper_websockify_output(h); break;
        }
    }
}

void helper_loop_run(helper *h)
{
    poll_set set = {0};
    while (!h->stopping) {
        int starting = build(h, &set) || helper_warm_busy(h);
        int n = poll(set.fds, (nfds_t)set.count, starting ? TICK_STARTING_MS : TICK_IDLE_MS);
        if (n < 0 && errno != EINTR) {
            helper_log_error(QWDLOGNO(05016) "poll: %s", strerror(errno));
            break;
        }
        if (n > 0) {
            dispatch(h, &set);
        }
        helper_clients_tick(h);
        helper_sessions_tick(h);
        helper_warm_tick(h);
        helper_websockify_tick(h);
    }
    free(set.fds);
    free(set.watches);
}
