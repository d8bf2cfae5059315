/* SPDX-License-Identifier: Apache-2.0 */
/* The watch registry behind the loop's poll(). A handler may add or cancel any watch, its own
 * included: cancelled watches are only unlinked and freed between two dispatches. */
#include "helper_events.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

/* The poll set starts this large and doubles. */
#define POLL_SET_INITIAL 64

struct helper_watch {
    helper_events *events;
    int fd;
    short wanted;
    helper_watch_events_fn *events_fn;
    helper_watch_fn *fn;
    void *data;
    apr_time_t deadline;
    int cancelled;
    helper_watch *next;
};

typedef struct child_watch {
    pid_t pid;
    helper_child_fn *fn;
    void *data;
    struct child_watch *next;
} child_watch;

struct helper_events {
    helper_watch *watches;
    child_watch *children;
    /* The poll set of the current turn: fds[i] belongs to polled[i]. */
    struct pollfd *fds;
    helper_watch **polled;
    size_t capacity;
};

helper_events *helper_events_create(void)
{
    return calloc(1, sizeof(helper_events));
}

void helper_events_destroy(helper_events *events)
{
    if (!events) {
        return;
    }
    while (events->watches) {
        helper_watch *next = events->watches->next;
        free(events->watches);
        events->watches = next;
    }
    while (events->children) {
        child_watch *next = events->children->next;
        free(events->children);
        events->children = next;
    }
    free(events->fds);
    free(events->polled);
    free(events);
}

helper_watch *helper_watch_fd(helper_events *events, int fd, short wanted, helper_watch_fn *fn,
                              void *data)
{
    helper_watch *watch = calloc(1, sizeof *watch);
    if (!watch) {
        return NULL;
    }
    watch->events = events;
    watch->fd = fd;
    watch->wanted = wanted;
    watch->fn = fn;
    watch->data = data;
    watch->next = events->watches;
    events->watches = watch;
    return watch;
}

void helper_watch_events_from(helper_watch *watch, helper_watch_events_fn *events_fn)
{
    watch->events_fn = events_fn;
}

void helper_watch_deadline(helper_watch *watch, apr_time_t deadline)
{
    watch->deadline = deadline;
}

void helper_watch_cancel(helper_watch *watch)
{
    if (watch) {
        watch->cancelled = 1;
    }
}

void helper_watch_close(helper_watch **watch, int *fd)
{
    helper_watch_cancel(*watch);
    *watch = NULL;
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

int helper_watch_child(helper_events *events, pid_t pid, helper_child_fn *fn, void *data)
{
    child_watch *child = malloc(sizeof *child);
    if (!child) {
        return -1;
    }
    *child = (child_watch){.pid = pid, .fn = fn, .data = data, .next = events->children};
    events->children = child;
    return 0;
}

/* Unlinks pid's entry; returns it (the caller frees it) or NULL. */
static child_watch *take_child(helper_events *events, pid_t pid)
{
    for (child_watch **link = &events->children; *link; link = &(*link)->next) {
        if ((*link)->pid == pid) {
            child_watch *child = *link;
            *link = child->next;
            return child;
        }
    }
    return NULL;
}

void helper_unwatch_child(helper_events *events, pid_t pid)
{
    free(take_child(events, pid));
}

int helper_events_child_exited(helper_events *events, pid_t pid, int status)
{
    child_watch *child = take_child(events, pid);
    if (!child) {
        return 0;
    }
    child_watch copy = *child;
    free(child);
    copy.fn(copy.data, pid, status);
    return 1;
}

static void free_cancelled(helper_events *events)
{
    helper_watch **link = &events->watches;
    while (*link) {
        if ((*link)->cancelled) {
            helper_watch *gone = *link;
            *link = gone->next;
            free(gone);
        }
        else {
            link = &(*link)->next;
        }
    }
}

/* Room for count watches in the poll set. Returns 0, or -1 (ENOMEM) leaving it as it was. */
static int reserve(helper_events *events, size_t count)
{
    if (count <= events->capacity) {
        return 0;
    }
    size_t capacity = events->capacity ? events->capacity : POLL_SET_INITIAL;
    while (capacity < count) {
        capacity *= 2;
    }
    struct pollfd *fds = realloc(events->fds, capacity * sizeof *fds);
    if (!fds) {
        return -1;
    }
    events->fds = fds;
    helper_watch **polled = realloc(events->polled, capacity * sizeof *polled);
    if (!polled) {
        return -1;
    }
    events->polled = polled;
    events->capacity = capacity;
    return 0;
}

apr_time_t helper_clock_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (apr_time_t)now.tv_sec * APR_USEC_PER_SEC + now.tv_nsec / 1000;
}

int helper_events_poll(helper_events *events, int timeout_ms)
{
    free_cancelled(events);
    size_t count = 0;
    for (helper_watch *watch = events->watches; watch; watch = watch->next) {
        count++;
    }
    if (reserve(events, count) != 0) {
        errno = ENOMEM;
        return -1;
    }
    apr_time_t now = helper_clock_now();
    size_t n = 0;
    for (helper_watch *watch = events->watches; watch; watch = watch->next) {
        short wanted = watch->events_fn ? watch->events_fn(watch->data) : watch->wanted;
        /* poll() ignores negative fds: a timer, or a watch that wants nothing now. */
        events->fds[n] = (struct pollfd){.fd = wanted ? watch->fd : -1, .events = wanted};
        events->polled[n++] = watch;
        if (watch->deadline) {
            apr_time_t left = watch->deadline - now;
            int left_ms = left <= 0 ? 0 : (int)apr_time_as_msec(left + 999);
            if (left_ms < timeout_ms) {
                timeout_ms = left_ms;
            }
        }
    }
    int ready = poll(events->fds, (nfds_t)n, timeout_ms);
    if (ready < 0) {
        return errno == EINTR ? 0 : -1;
    }
    now = helper_clock_now();
    for (size_t i = 0; i < n; i++) {
        helper_watch *watch = events->polled[i];
        if (watch->cancelled) {
            continue;
        }
        short revents = events->fds[i].fd >= 0 ? events->fds[i].revents : 0;
        if (revents) {
            watch->fn(watch->data, revents);
        }
        else if (watch->deadline && now >= watch->deadline) {
            watch->deadline = 0;
            watch->fn(watch->data, 0);
        }
    }
    return ready;
}

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved_errno = errno;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved_errno;
}

int helper_signal_pipe(const int *signals, size_t count)
{
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -1;
    }
    struct sigaction action = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < count; i++) {
        sigaction(signals[i], &action, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    return signal_pipe[0];
}
