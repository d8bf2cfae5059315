/* SPDX-License-Identifier: Apache-2.0 */
/* What a session is for the web side, shared by the pages and the API: create (validate,
 * reserve a row atomically, start through the helper, record), stop, find with ownership,
 * and list after reconciling the rows with the helper's live sessions. */
#ifndef QWD_SESSION_H
#define QWD_SESSION_H

#include "qwd_create_args.h"
#include "qwd_request.h"
#include "qwd_script_source.h"
#include "qwd_store.h"

/* The helper's machines: a JSON array of {name, format, virtual_size, description, warm,
 * videos, gpu, shares}. */
qwd_error_t *qwd_session_machines(qwd_req_t *q, json_t **machines);

/* The helper's whole machines reply: {machines, scripts, max_scratch_gib}. */
qwd_error_t *qwd_session_catalog(qwd_req_t *q, json_t **catalog);

/* What this Location lets users choose beyond the helper's machines, for the form and
 * GET /api/machines: the helper's scripts, QwdScriptText, QwdScriptMaxSize, the URL prefixes and
 * QwdMaxScratchDisk (a new JSON object). */
json_t *qwd_session_choices(qwd_req_t *q, json_t *catalog);

/* The effective per-user CPU and memory limits (for the form's choices). */
int qwd_session_max_cpu(qwd_req_t *q);
int qwd_session_max_memory(qwd_req_t *q);

/* Creates a session for q->user. On success *row is the recorded, started session. */
qwd_error_t *qwd_session_create(qwd_req_t *q, qwd_store_t *store, qwd_create_args_t *args,
                                qwd_row_t **row);

/* The row with this id if q->user owns it or is an admin; 404 otherwise (no hint whether it
 * exists). */
qwd_error_t *qwd_session_find(qwd_req_t *q, qwd_store_t *store, const char *id, qwd_row_t **row);

/* Stops the session (helper, then row). */
qwd_error_t *qwd_session_stop(qwd_req_t *q, qwd_store_t *store, qwd_row_t *row);

/* Rows of owner (NULL: every row), reconciled with the helper first. *helper_down is set when
 * the helper could not be asked (rows shown as recorded). */
qwd_error_t *qwd_session_list(qwd_req_t *q, qwd_store_t *store, const char *owner,
                              apr_array_header_t **rows, int *helper_down);
/* The same, of the rows not ended only: for a request that reconciles one row or counts live
 * ones (create, a session's GET, a viewer's ticket), whose cost must not grow with the ended
 * rows kept for the listings. */
qwd_error_t *qwd_session_list_live(qwd_req_t *q, qwd_store_t *store, const char *owner,
                                   apr_array_header_t **rows, int *helper_down);
/* Every row, as qwd_session_list, reconciled with the helper's monitor op: *answer (NULL when
 * the helper is down) also carries its "usage", "load" and "warm" (docs/protocol.md). From a
 * helper that answers no monitor op it is list's answer, without them. */
qwd_error_t *qwd_session_list_monitor(qwd_req_t *q, qwd_store_t *store, apr_array_header_t **rows,
                                      int *helper_down, json_t **answer);

/* Moves the end of a live session seconds later (an admin; its owner with QwdOwnerExtend
 * On), within QwdMaxLifetime from its creation; the helper and the row follow, the audit
 * trail records it. */
qwd_error_t *qwd_session_extend(qwd_req_t *q, qwd_store_t *store, qwd_row_t *row, int seconds);
/* Whether q->user may extend row, and by how many seconds at most. */
int qwd_session_may_extend(qwd_req_t *q, const qwd_row_t *row);
int qwd_session_extend_room(qwd_req_t *q, const qwd_row_t *row);

/* Whether a row's VM may still be running. */
int qwd_session_is_live(const qwd_row_t *row);

#endif
