/* SPDX-License-Identifier: Apache-2.0 */
/* The local backend: a session's VM is a QEMU on this host (helper_qemu), "running" once its VNC
 * socket sends the RFB banner, restored over QMP when its plan says so, stopped by QMP quit,
 * then SIGTERM, then SIGKILL. */
#ifndef QWD_HELPER_BACKEND_LOCAL_H
#define QWD_HELPER_BACKEND_LOCAL_H

#include "helper_backend.h"

/* Seconds from the start of a stop to SIGTERM, and to SIGKILL. */
#define SESSION_SIGTERM_AFTER_S 2
#define SESSION_SIGKILL_AFTER_S 5
/* How long a shared-recipe clone may take to accept its restore over QMP. */
#define RESTORE_QMP_DEADLINE_S 10

extern const helper_backend helper_backend_local;

#endif
