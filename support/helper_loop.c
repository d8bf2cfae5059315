/* SPDX-License-Identifier: Apache-2.0 */
/* The event loop. Nothing here blocks: QEMU and qemu-img are never waited for, QMP exchanges
 * are conversations driven by their sockets' readiness, stops escalate on timers, and child
 * exits arrive as bytes on the self-pipe (SIGCHLD) or pidfd readiness. The loop wires the
 * sessions' hook to the clients whose replies wait for sessions. */
#include "helper_loop.h"
#include "helper_clients.h"
#include "helper_events.h"
#include "helper_log.h"
#include "helper_session.h"
#include "helper_warm.h"
#include "helper_websockify.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Tick granularity: VNC probes of starting sessions, template readiness, stop escalation,
 * client timeouts. */
#define TICK_STARTING_MS 50
#define TICK_IDLE_MS 250
/* Signals read from the self-pipe at once. */
#define SIGNALS_AT_ONCE 64

static int signal_fd = -1; /* the read end of the self-pipe (helper_signal_pipe) */

int helper_loop_signals(helper *h)
{
    static const int signals[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
    signal_fd = helper_signal_pipe(signals, sizeof signals / sizeof signals[0]);
    return signal_fd < 0 ? errno : 0;
}

/* Every exited child goes to whoever watches it; unwatched ones (a template killed while
 * dropped) are only reaped. */
static void reap_children(helper *h)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        helper_events_child_exited(h->events, pid, status);
    }
}

static void on_signals(void *data, short revents)
{
    helper *h = data;
    unsigned char signals[SIGNALS_AT_ONCE];
    ssize_t n;
    while ((n = read(signal_fd, signals, sizeof signals)) > 0) {
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

static void note_sessions_changed(void *data)
{
    *(int *)data = 1;
}

void helper_loop_run(helper *h)
{
    int sessions_changed = 0, fast = 1;
    helper_sessions_on_change(h, note_sessions_changed, &sessions_changed);
    helper_watch *signals = helper_watch_fd(h->events, signal_fd, POLLIN, on_signals, h);
    int error = signals ? 0 : ENOMEM;
    while (!error && !h->stopping) {
        if (helper_events_poll(h->events, fast ? TICK_STARTING_MS : TICK_IDLE_MS) < 0) {
            error = errno;
            break;
        }
        helper_clients_tick(h);
        fast = helper_sessions_tick(h);
        fast |= helper_warm_tick(h);
        helper_websockify_tick(h);
        /* Replies that waited for sessions go now; the requests queued behind them may change
         * sessions again. */
        while (sessions_changed) {
            sessions_changed = 0;
            helper_clients_sessions_changed(h);
        }
    }
    if (error) {
        helper_log_error(QWDLOGNO(05016) "poll: %s", strerror(error));
    }
    helper_sessions_on_change(h, NULL, NULL);
    helper_watch_cancel(signals);
}
