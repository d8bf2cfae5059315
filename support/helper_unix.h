/* SPDX-License-Identifier: Apache-2.0 */
/* Unix-socket client helpers for the helper's own probes of its VMs (QMP and VNC). */
#ifndef QWD_HELPER_UNIX_H
#define QWD_HELPER_UNIX_H

/* A connected (non-blocking, close-on-exec) stream socket to path, or -1 with errno set. */
int helper_unix_connect(const char *path);

#endif
