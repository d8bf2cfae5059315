/* SPDX-License-Identifier: Apache-2.0 */
/* The life of a session: the table, the session object clients see, the on-disk record, the
 * start (a plan carried out by the backend), the stop, the cleanup once its VM is gone, and the
 * re-adoption of running VMs at startup. */
#ifndef QWD_HELPER_SESSION_H
#define QWD_HELPER_SESSION_H

#include <apr_hash.h>
#include <apr_tables.h>
#include <jansson.h>
#include <sys/types.h>

#include "helper.h"
#include "helper_backend.h"

typedef struct helper_session helper_session;

/* A session's launch finished, it runs, or it ended: called after the change, from the loop's
 * events and ticks only. The loop wires it to the clients whose replies wait for sessions. */
typedef void helper_sessions_hook(void *data);

/* What a start asks for (validated by the caller). */
typedef struct helper_start_request {
    qwd_vm_profile profile;
    const char *owner;
    int lifetime_s;
    int oneshot;             /* its link opens the display once; it stops when that viewer leaves */
    int idle_stop_s;         /* stop it after this long without a viewer (0: never) */
    const char *ref;         /* the client's name for it ("" or NULL: none) */
    const char *by;          /* who asked, for the journal (NULL: nobody named) */
    int audited;             /* the client records the start itself (the journal says so) */
    apr_time_t requested_at; /* when the client was asked (its POST), 0: now */
    const char *backend;     /* QWD_BACKEND_* of a backend given to helper_sessions_add_backend */
    const char *id; /* its id when the caller chose it (qwd_session_id_new); NULL: a new one */
    /* Sessions for data analysis: the guest script, passed-through devices, scratch size (the
     * plan's extras), and what the session object shows of them. */
    helper_plan_extras extras;
    apr_array_header_t *shares; /* names of the shares whose folders it has (const char *) */
    const char *script;         /* the admin script's name, "(text)" for script_text, or NULL */
} helper_start_request;

/* Sets up the session table, its VMs run by backend. */
void helper_sessions_init(helper *h, const helper_backend *backend);

/* Another backend sessions may run with (by the start request's backend name). */
void helper_sessions_add_backend(helper *h, const helper_backend *backend);

/* The backend called name (NULL: the default, the one given to helper_sessions_init), or NULL. */
const helper_backend *helper_sessions_backend(helper *h, const char *name);

/* The hook told of changes (one at a time: the loop's). */
void helper_sessions_on_change(helper *h, helper_sessions_hook *hook, void *data);

/* At startup: re-adopts the VMs of STATE/sessions/ that still run (the backend checks they are
 * ours and alive) and cleans the records of those that do not. */
void helper_sessions_adopt(helper *h);

/* Starts a session: its plan is made and handed to the backend. Returns it (state starting;
 * helper_session_launched says when its VM runs) or NULL with *problem (in pool), leaving
 * nothing behind. */
helper_session *helper_session_start(helper *h, apr_pool_t *pool,
                                     const helper_start_request *request, const char **problem);

helper_session *helper_session_find(helper *h, const char *id);

/* The sessions that are not ended (in pool). */
apr_array_header_t *helper_sessions_live(helper *h, apr_pool_t *pool);

/* The PCI addresses live sessions hold (passed through), as a set in pool. */
apr_hash_t *helper_sessions_gpus_in_use(helper *h, apr_pool_t *pool);

/* Live sessions and the resources they hold. */
void helper_sessions_usage(helper *h, int *sessions, int *vcpus, int *memory_mib);

/* Begins ending s for reason (stopped, expired, purged). It ends when its VM is gone. No-op if
 * already stopping or ended. */
void helper_session_stop(helper_session *s, const char *reason);

/* Like helper_session_stop, saying in the journal who asked (by, NULL: nobody named) and
 * whether that client records the stop itself (audited). */
void helper_session_stop_by(helper_session *s, const char *reason, const char *by, int audited);

/* Moves the end of a live s seconds later, as long as its whole lifetime stays within
 * max_lifetime seconds: at once, or once its place (a batch job's time limit) granted it.
 * Returns 0 (helper_session_extended says how it goes), -1 with *max_seconds the most it could
 * be extended by, or -2 with *busy (why) while its place has not answered an earlier extend. */
int helper_session_extend(helper_session *s, int seconds, int max_lifetime, const char *by,
                          int audited, int *max_seconds, const char **busy);

/* Where the last extend of s stands: 1 done, 0 its place has not answered yet, -1 refused
 * (*problem says why; the end of s is as it was). */
int helper_session_extended(const helper_session *s, const char **problem);

/* A viewer of kind (QWD_VIEWER_*) joined or left the display of a live s, as its relay
 * (helper_relay.c) reports it: counted for load's viewers, qwd_viewers and
 * qwd_viewer_connections_total; when it leaves, journaled ("viewed": its kind, the share it came
 * through or NULL, seconds it watched) for the audit trail, also when s has just ended (its
 * counts are forgotten then). Returns 0, or -1 for an unknown kind or a leave without a join. */
int helper_session_viewer(helper_session *s, const char *kind, const char *share, int joined,
                          double seconds);

/* The session's id and its VM's pid on this host (0: none, or it runs elsewhere). */
const char *helper_session_id(const helper_session *s);
pid_t helper_session_local_pid(const helper_session *s);
/* Its overlay's path (on this host). */
const char *helper_session_disk(const helper_session *s);

/* The session object of docs/protocol.md (a new reference); brief: only id, state, boot (and
 * ref), what the module's listings reconcile their rows with. */
json_t *helper_session_json(helper_session *s);
json_t *helper_session_brief_json(helper_session *s);

/* Shares s: a way to its display of its own, for viewers of kind (QWD_VIEWER_CONTROL or
 * QWD_VIEWER_VIEW), until expires (0: as long as the session). Returns the share object of
 * docs/protocol.md, or NULL with *code (QWD_ERR_*) and *problem (in pool). */
json_t *helper_session_share(helper_session *s, apr_pool_t *pool, const char *kind,
                             apr_time_t expires, const char **code, const char **problem);

/* Revokes a share of s: its way in, its viewers and its token are gone. Returns how many
 * viewers it closed, or -1 when s has no such share. */
int helper_session_unshare(helper_session *s, const char *share_id);

/* Whether s has ended. */
int helper_session_ended(const helper_session *s);

/* Whether the launch of s is over: 1 its VM runs (or ran), -1 it failed (*problem says why),
 * 0 still under way. */
int helper_session_launched(const helper_session *s, const char **problem);

/* A client's reply waits for s: it is kept (not forgotten, not freed) until released. */
void helper_session_hold(helper_session *s);
void helper_session_release(helper_session *s);

/* Time-based work: backend ticks, lifetime expiry (every expiry_interval), forgetting
 * long-ended sessions. Returns whether a session is starting (the loop then ticks fast). */
int helper_sessions_tick(helper *h);

#endif
