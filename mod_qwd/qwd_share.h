/* SPDX-License-Identifier: Apache-2.0 */
/* Shares of a session, for the pages and the API: links of their own (qwd_capability.h) that
 * open the session's display for viewers who only watch (view) or also type (control), each
 * with an optional expiry, revocable at any time. The helper enforces them (its relay, which
 * closes a revoked share's viewers); the rows here find a share by its link. */
#ifndef QWD_SHARE_H
#define QWD_SHARE_H

#include "qwd_request.h"
#include "qwd_store.h"

typedef struct qwd_share {
    const char *id;         /* the helper's id of the share: 16 hex digits */
    const char *session_id; /* the session's row */
    const char *kind;       /* QWD_VIEWER_VIEW or QWD_VIEWER_CONTROL */
    apr_int64_t created;
    apr_int64_t expires; /* 0: as long as the session */
    apr_int64_t revoked; /* 0: not revoked */
} qwd_share_t;

/* Shares row (the caller made sure q->user may) for viewers of kind, for expires_in seconds
 * (0: as long as the session). 400 for a one-shot session or another kind, 409 for an ended
 * one, the helper's refusals as qwd_helper_call maps them. */
qwd_error_t *qwd_share_create(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row,
                              const char *kind, int expires_in, qwd_share_t **share);

/* Revokes share_id of row (404 when row has no such share): the helper closes its viewers at
 * once, and its link answers 410 from then on. */
qwd_error_t *qwd_share_revoke(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row,
                              const char *share_id, qwd_share_t **share);

/* The shares of session_id (qwd_share_t *, oldest first); live_only: neither revoked nor
 * expired. */
qwd_error_t *qwd_share_list(qwd_req_t *q, qwd_store_t *store, const char *session_id, int live_only,
                            apr_array_header_t **shares);

/* The share whose link is link (32 hex digits), or *share = NULL. */
qwd_error_t *qwd_share_find_by_link(qwd_req_t *q, qwd_store_t *store, const char *link,
                                    qwd_share_t **share);
/* The share id, or *share = NULL. */
qwd_error_t *qwd_share_get(qwd_req_t *q, qwd_store_t *store, const char *id, qwd_share_t **share);

/* Whether share may still open its session's display (neither revoked nor expired). */
int qwd_share_is_live(const qwd_share_t *share);

/* The absolute URL of share's link: LOCATION/s/LINK. */
const char *qwd_share_url(qwd_req_t *q, const qwd_share_t *share);

/* {"id", "kind", "url", "created", "expires", "revoked"} (url only while it is live). */
json_t *qwd_share_json(qwd_req_t *q, const qwd_share_t *share);

#endif
