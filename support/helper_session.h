/* SPDX-License-Identifier: Apache-2.0 */
/* The life of a session: the table, the session object clients see, the on-disk record, the
 * stop sequence (QMP quit → SIGTERM → SIGKILL) and the cleanup when its QEMU is gone. */
#ifndef QWD_HELPER_SESSION_H
#define QWD_HELPER_SESSION_H

#include "helper.h"

/* Seconds from the start of a stop to SIGTERM, and to SIGKILL. */
#define SESSION_SIGTERM_AFTER_S 2
#define SESSION_SIGKILL_AFTER_S 5
/* How long a shared-recipe clone may take to accept its restore over QMP. */
#define RESTORE_QMP_DEADLINE_S 10

/* A new session in the table (state starting, its own pool); the caller fills it in. */
helper_session *helper_session_new(helper *h, const char *id);

helper_session *helper_session_find(helper *h, const char *id);

/* Logs the end of the session's qemu.log (before its directory is removed). */
void helper_session_log_qemu_output(helper_session *s);

/* Forgets s at once (a start that failed before QEMU ran): removes its dir and token. */
void helper_session_discard(helper_session *s);

/* The session object of docs/protocol.md (a new reference). */
json_t *helper_session_json(helper_session *s);

/* Writes STATE/sessions/ID/session.json atomically. Returns 0 or errno. */
int helper_session_write_record(helper_session *s);

/* "starting", "running" or "ended". */
const char *helper_session_state_name(const helper_session *s);

/* Live sessions (not ended) and the resources they hold. */
void helper_sessions_usage(helper *h, int *sessions, int *vcpus, int *memory_mib);

/* Begins ending s for reason (stopped, expired, purged): QMP quit now, signals later from
 * helper_sessions_tick. The session ends when its QEMU is gone. No-op if already stopping. */
void helper_session_stop(helper_session *s, const char *reason);

/* QEMU of s is gone: status_known says whether status is a waitpid status. */
void helper_session_exited(helper_session *s, int status_known, int status);

/* The session whose QEMU child is pid, or NULL. */
helper_session *helper_session_by_child(helper *h, pid_t pid);

/* Time-based work: VNC probes of starting sessions, stop escalation, lifetime expiry (every
 * expiry_interval), forgetting long-ended sessions. */
void helper_sessions_tick(helper *h);

/* The VNC probe fd of s became readable: reads the RFB banner. */
void helper_session_probe_ready(helper_session *s);

/* The guest agent's answer to a restored clone's guest-set-time is readable. */
void helper_session_agent_answered(helper_session *s);

/* At startup: re-adopts the VMs of STATE/sessions/ that still run (pid alive, its command line
 * names qwd-ID, QMP answers) and cleans the records of those that do not. */
void helper_sessions_adopt(helper *h);

#endif
