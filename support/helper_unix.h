/* SPDX-License-Identifier: Apache-2.0 */
/* Unix-socket helpers: connecting to a VM's sockets (the helper's probes, QMP, the relay's way
 * to a display) and listening on the relay's (helper_relay.c). */
#ifndef QWD_HELPER_UNIX_H
#define QWD_HELPER_UNIX_H

/* A connected (non-blocking, close-on-exec) stream socket to path, or -1 with errno set. */
int helper_unix_connect(const char *path);

/* A listening (non-blocking, close-on-exec) stream socket bound to path, any stale socket file
 * there replaced; -1 with errno set. */
int helper_unix_listen(const char *path, int backlog);

#endif
