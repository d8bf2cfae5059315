/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper's event loop: one thread, poll() over the listening socket, the clients, VNC
 * probes, pidfds of adopted VMs and a self-pipe for signals; timers run on every turn. */
#ifndef QWD_HELPER_LOOP_H
#define QWD_HELPER_LOOP_H

#include "helper.h"

/* Installs the SIGCHLD/SIGTERM/SIGINT/SIGHUP handlers (self-pipe). Returns 0 or errno. */
int helper_loop_signals(helper *h);

/* Runs until SIGTERM or SIGINT. */
void helper_loop_run(helper *h);

#endif
