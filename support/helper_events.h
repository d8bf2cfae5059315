/* SPDX-License-Identifier: Apache-2.0 */
/* What qwd-helper's event loop waits for: file descriptors (each with its handler and an optional
 * deadline) and child processes (each with its handler). Modules register here; helper_loop polls.
 * It depends on no other file of the helper, so every file may use it. */
#ifndef QWD_HELPER_EVENTS_H
#define QWD_HELPER_EVENTS_H

#include <apr_time.h>
#include <sys/types.h>

typedef struct helper_events helper_events;
typedef struct helper_watch helper_watch;

/* revents: what poll() reported for the fd, or 0 when the watch's deadline passed first (the
 * deadline is then cleared; the handler sets another or cancels the watch). */
typedef void helper_watch_fn(void *data, short revents);
/* The poll() events a watch wants now (asked before every poll). */
typedef short helper_watch_events_fn(void *data);
typedef void helper_child_fn(void *data, pid_t pid, int status);

helper_events *helper_events_create(void);
void helper_events_destroy(helper_events *events);

/* Calls fn when fd has one of events (or the deadline passes). fd < 0: a timer, deadline only.
 * Returns NULL only when out of memory. */
helper_watch *helper_watch_fd(helper_events *events, int fd, short wanted, helper_watch_fn *fn,
                              void *data);
/* Asks events_fn before each poll instead of a fixed set. */
void helper_watch_events_from(helper_watch *watch, helper_watch_events_fn *events_fn);
/* 0: no deadline. */
void helper_watch_deadline(helper_watch *watch, apr_time_t deadline);
/* Stops watching; safe from any handler, the watch's own included. The fd stays open. */
void helper_watch_cancel(helper_watch *watch);

/* Cancels *watch and closes *fd, each when set (NULL, -1), and clears them. */
void helper_watch_close(helper_watch **watch, int *fd);

/* Calls fn once child pid has exited and been reaped. Returns 0, or -1 when out of memory. */
int helper_watch_child(helper_events *events, pid_t pid, helper_child_fn *fn, void *data);
/* Forgets pid (its exit is then reaped and ignored). */
void helper_unwatch_child(helper_events *events, pid_t pid);

/* For the loop: one poll() over every watch (at most timeout_ms, less when a deadline comes
 * first), then the handlers of what happened. Returns poll()'s result (-1: errno). */
int helper_events_poll(helper_events *events, int timeout_ms);

/* For the loop: child pid exited with status; calls its handler. Returns 0 when no one
 * watched it. */
int helper_events_child_exited(helper_events *events, pid_t pid, int status);

/* The helper's clock for deadlines, intervals and lifetimes: CLOCK_MONOTONIC, in apr_time_t
 * units (µs). A jump of the wall clock (NTP stepping it, an admin's date) never moves it, so no
 * timeout stretches to hours and no session ends early or late. Wall time (apr_time_now) is
 * only for what is shown or recorded: created, expires, a guest's clock. */
apr_time_t helper_clock_now(void);

/* Signals as bytes a poll() can wait for (the self-pipe trick): installs a handler for each of
 * the count signals that writes the signal's number to a pipe, and ignores SIGPIPE (a peer gone
 * is then an error return, not an exit). One pipe per process: call once, before the loop.
 * Returns the pipe's non-blocking read end, or -1 (errno). */
int helper_signal_pipe(const int *signals, size_t count);

#endif
