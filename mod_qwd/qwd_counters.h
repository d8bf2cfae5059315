/* SPDX-License-Identifier: Apache-2.0 */
/* The module's own counters, spelled once in the table below: kept in shared memory the
 * parent makes, so every child process (and thread) adds to the same numbers, a scrape sees the
 * whole server, and graceful restarts keep them. */
#ifndef QWD_COUNTERS_H
#define QWD_COUNTERS_H

#include <httpd.h>
#include <jansson.h>

/* One row per series: COUNTER(ID, family, label, label value). Every family is described in
 * QWD_COUNTER_FAMILIES and docs/metrics.md; label values come only from this table. */
#define QWD_COUNTERS(COUNTER)                                                                      \
    COUNTER(LIMIT_MAX_SESSIONS, "qwd_limit_refusals_total", "limit", "QwdMaxSessions")             \
    COUNTER(LIMIT_MAX_SESSIONS_PER_USER, "qwd_limit_refusals_total", "limit",                      \
            "QwdMaxSessionsPerUser")                                                               \
    COUNTER(LIMIT_MAX_CPU_PER_USER, "qwd_limit_refusals_total", "limit", "QwdMaxCPUPerUser")       \
    COUNTER(LIMIT_MAX_MEMORY_PER_USER, "qwd_limit_refusals_total", "limit", "QwdMaxMemoryPerUser") \
    COUNTER(LIMIT_MAX_LOAD, "qwd_limit_refusals_total", "limit", "QwdMaxLoad")                     \
    COUNTER(TICKET_MISSING, "qwd_ticket_refusals_total", "reason", "missing")                      \
    COUNTER(TICKET_INVALID, "qwd_ticket_refusals_total", "reason", "invalid")                      \
    COUNTER(TICKET_SESSION_ENDED, "qwd_ticket_refusals_total", "reason", "session_ended")          \
    COUNTER(TICKET_SESSION_EXPIRED, "qwd_ticket_refusals_total", "reason", "session_expired")      \
    COUNTER(TICKET_VM_GONE, "qwd_ticket_refusals_total", "reason", "vm_gone")                      \
    COUNTER(TICKET_HELPER_DOWN, "qwd_ticket_refusals_total", "reason", "helper_unavailable")       \
    COUNTER(TICKET_NOT_READY, "qwd_ticket_refusals_total", "reason", "not_ready")                  \
    COUNTER(TICKET_REUSED, "qwd_ticket_refusals_total", "reason", "reused")                        \
    COUNTER(TICKET_SHARE_GONE, "qwd_ticket_refusals_total", "reason", "share_gone")                \
    COUNTER(TICKET_ONESHOT_USED, "qwd_ticket_refusals_total", "reason", "oneshot_used")            \
    COUNTER(AUTH_DENIED, "qwd_auth_failures_total", "reason", "denied")                            \
    COUNTER(AUTH_THROTTLED, "qwd_auth_failures_total", "reason", "throttled")                      \
    COUNTER(AUTH_UNAVAILABLE, "qwd_auth_failures_total", "reason", "unavailable")                  \
    COUNTER(AUTH_BAD_CODE, "qwd_auth_failures_total", "reason", "bad_code")                        \
    COUNTER(LOGINS, "qwd_logins_total", NULL, NULL)                                                \
    COUNTER(VIEWER_LINK, "qwd_viewer_connections_total", "kind", "link")                           \
    COUNTER(AUDIT_EVENTS, "qwd_audit_events_total", NULL, NULL)

/* The families of the table: FAMILY(name, help). */
#define QWD_COUNTER_FAMILIES(FAMILY)                                                           \
    FAMILY("qwd_limit_refusals_total",                                                         \
           "Session starts refused by a limit: the module's directives (QwdMaxSessions, ...) " \
           "and the helper's keys (max_sessions, ...).")                                       \
    FAMILY("qwd_ticket_refusals_total",                                                        \
           "Websocket upgrades the gate (QwdWebsocketGate) refused, by reason.")               \
    FAMILY("qwd_auth_failures_total",                                                          \
           "Failed authentications of the form, the API and mailed codes, by reason.")         \
    FAMILY("qwd_logins_total",                                                                 \
           "Logins of the pages (the identity cookie given); the API's Basic requests are "    \
           "not counted.")                                                                     \
    FAMILY("qwd_viewer_connections_total",                                                     \
           "Viewers that connected to a session's display, by kind: link (websockets the "     \
           "module's gate let through), owner, control and view (the helper's relay).")        \
    FAMILY("qwd_audit_events_total", "Events written to the audit trail.")

#define QWD_COUNTER_ENUM_(ID, ...) QWD_COUNTER_##ID,
typedef enum { QWD_COUNTERS(QWD_COUNTER_ENUM_) QWD_COUNTER_COUNT } qwd_counter_t;

/* post_config, in the parent: the shared memory, made once per parent process (its process
 * pool) and found again on every restart. */
int qwd_counters_post_config(server_rec *s);

/* Adds one to a counter (lock-free; a no-op when the shared memory could not be made). */
void qwd_counter_inc(qwd_counter_t counter);

/* The counter of a limit the module refused a start for (QwdMaxSessions, ...), or -1. */
int qwd_counter_of_limit(const char *directive);

/* The families of the table with their current values (a new reference). */
json_t *qwd_counters_families(void);

/* A hint shared by every child: the journal of the helper read last and the last entry of it
 * read (qwd_audit.c compares it with where the journal is before asking for more). */
void qwd_counters_journal_hint(apr_uint64_t *journal_hash, apr_uint64_t *seq);
void qwd_counters_set_journal_hint(apr_uint64_t journal_hash, apr_uint64_t seq);

#endif
