/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper's event loop: one thread, one poll() over every watch of helper_events (the
 * listening socket, clients, VM sockets, QMP conversations, pidfds) and a self-pipe for
 * signals; child exits are reaped and handed to their watchers; timers run on every turn. */
#ifndef QWD_HELPER_LOOP_H
#define QWD_HELPER_LOOP_H

#include "helper.h"

/* Installs the SIGCHLD/SIGTERM/SIGINT/SIGHUP handlers (self-pipe). Returns 0 or errno. */
int helper_loop_signals(helper *h);

/* Runs until SIGTERM or SIGINT. */
void helper_loop_run(helper *h);

#endif
