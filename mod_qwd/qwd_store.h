/* SPDX-License-Identifier: Apache-2.0 */
/* The sessions table in SQLite through mod_dbd: schema created and versioned on first use,
 * prepared statements, and the atomic "count against the limits, then reserve" step. */
#ifndef QWD_STORE_H
#define QWD_STORE_H

#include "qwd_protocol.h"
#include "qwd_request.h"

/* States of a row: reserved before the helper is asked (pending, the module's own), then what
 * the helper said (QWD_STATE_* of lib/qwd_protocol.h), then ended. */
#define QWD_STATE_PENDING "pending"

typedef struct qwd_row {
    const char *id; /* ours, 32 hex; also the API's id */
    const char *owner;
    const char *machine;
    int cpu, memory_mib, oneshot;
    const char *state;     /* pending, starting, running, ended */
    const char *helper_id; /* the helper's session id, NULL while pending */
    const char *link_key;  /* finds the row by its link (qwd_capability.h); written, not read */
    const char *token;     /* the websockify token: never stored, from the helper's answers */
    apr_int64_t created, expires, ended;
    const char *ended_reason;
    const char *boot; /* the helper's "cold" or "restored"; NULL when not known (not stored) */
    /* What the helper says of its viewers (not stored; known after a reconcile): who watches
     * (its brief "viewers", NULL when nobody), when it stops for want of a viewer (0: never,
     * or somebody watches), and whether a one-shot session's link was used. */
    json_t *viewers;
    apr_int64_t idle_stop_at;
    int opened;
    /* a session on a cluster (not stored, as the helper said when reconciled): why its job
     * waits ("Resources"), the node it runs on, and its backend (NULL: the local one) */
    const char *queued_reason, *node, *backend;
} qwd_row_t;

typedef struct qwd_limits {
    int max_sessions, max_sessions_per_user, max_cpu_per_user, max_memory_per_user;
} qwd_limits_t;

typedef struct qwd_store qwd_store_t;

/* post_config: resolves mod_dbd's optional functions; logs "load mod_dbd" and fails if absent. */
int qwd_store_post_config(server_rec *s);

/* The SQLite database of the main server (DBDParams with DBDriver sqlite3), or NULL. */
const char *qwd_store_sqlite_path(apr_pool_t *pool);

/* child_init, before mod_dbd's: creates the database 0600 when missing, then the tables (see
 * qwd_store.c for why). */
void qwd_store_child_init(apr_pool_t *pool, server_rec *s);

/* The request's database connection, schema ensured and statements prepared. */
qwd_error_t *qwd_store_open(qwd_req_t *q, qwd_store_t **store);

/* In one BEGIN IMMEDIATE transaction (serialised against every worker process): counts the
 * live rows of everyone and of row->owner, fails with 429 naming the limit when row would
 * exceed one, else inserts row as pending. */
qwd_error_t *qwd_store_reserve(qwd_store_t *store, const qwd_row_t *row,
                               const qwd_limits_t *limits);
/* pending → the helper's state, with its id, link key and expiry. */
qwd_error_t *qwd_store_mark_started(qwd_store_t *store, const qwd_row_t *row);
qwd_error_t *qwd_store_mark_ended(qwd_store_t *store, const char *id, const char *reason);
qwd_error_t *qwd_store_set_state(qwd_store_t *store, const char *id, const char *state);

/* A live row's expiry, as its place decided it (a batch job's lifetime runs from its start). */
qwd_error_t *qwd_store_set_expires(qwd_store_t *store, const char *id, apr_int64_t expires);
qwd_error_t *qwd_store_delete(qwd_store_t *store, const char *id);
/* *row = NULL when there is no such id. */
qwd_error_t *qwd_store_get(qwd_store_t *store, const char *id, qwd_row_t **row);
/* The row whose link has key link_key (qwd_link_key); *row = NULL when there is none. */
qwd_error_t *qwd_store_get_by_link(qwd_store_t *store, const char *link_key, qwd_row_t **row);
/* Rows of owner (NULL: all), newest first: an array of qwd_row_t *. */
qwd_error_t *qwd_store_list(qwd_store_t *store, const char *owner, apr_array_header_t **rows);
/* Only the rows not ended (pending, starting, running...), for what reconciles or counts: an
 * ended row is kept a day and would make each such request cost the day's history. */
qwd_error_t *qwd_store_list_live(qwd_store_t *store, const char *owner, apr_array_header_t **rows);
/* Runs the prepared write `label` (one of qwd_store.c's statements) with n string params;
 * *nrows (may be NULL) gets the number of rows changed. */
qwd_error_t *qwd_store_run(qwd_store_t *store, const char *label, int *nrows, int n,
                           const char **params);
/* The first row of the prepared select `label`: *values = ncols strings (NULL for SQL NULL),
 * or *values = NULL when there is no row. */
qwd_error_t *qwd_store_first_row(qwd_store_t *store, const char *label, int n, const char **params,
                                 int ncols, const char ***values);
/* Every row of the prepared select `label`: *rows is an array of const char ** (ncols strings
 * each, NULL for SQL NULL). */
qwd_error_t *qwd_store_rows(qwd_store_t *store, const char *label, int n, const char **params,
                            int ncols, apr_array_header_t **rows);
/* Deletes ended rows older than a day and pending rows a crashed worker left behind. */
qwd_error_t *qwd_store_sweep(qwd_store_t *store);

#endif
