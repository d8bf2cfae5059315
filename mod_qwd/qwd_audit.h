/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail: who created, stopped, extended, shared, revoked and viewed which session,
 * when and from which address, and logins and refused logins; in SQLite (qwd_audit, kept
 * QwdAuditRetention days) and one log line each (QWD03800). What the module's users do is
 * recorded as it happens; what the helper decides (expiry, a VM that powered off or crashed, a
 * viewers' relay's idle or one-shot stop, a qwdctl stop) comes from the helper's journal (the
 * events op), read at every listing that finds it moved, every audit read and every scrape. */
#ifndef QWD_AUDIT_H
#define QWD_AUDIT_H

#include "qwd_request.h"
#include "qwd_store.h"

/* Events (the "event" of an entry). */
#define QWD_AUDIT_CREATED "created"
#define QWD_AUDIT_STOPPED "stopped" /* someone or something stopped it: see "by" */
#define QWD_AUDIT_ENDED "ended"     /* its VM ended by itself (detail: poweroff, crashed, ...) */
#define QWD_AUDIT_EXTENDED "extended"
/* A viewer of the helper's relay left (by its kind: owner, control, view; detail: how long, the
 * share), every way in; and a websocket Apache's gate let through (by link; with the client's
 * address): two ends of a viewer, which do not always come in pairs (docs/operations.md). */
#define QWD_AUDIT_VIEWED "viewed"
#define QWD_AUDIT_CONNECTED "connected"
#define QWD_AUDIT_SHARED "shared"
#define QWD_AUDIT_REVOKED "revoked"
#define QWD_AUDIT_LOGIN "login"
#define QWD_AUDIT_LOGIN_REFUSED "login_refused"

/* Who acted, as a role (the "by" of an entry); "user" names the person where there is one. */
#define QWD_AUDIT_BY_OWNER "owner"
#define QWD_AUDIT_BY_ADMIN "admin"
#define QWD_AUDIT_BY_EXPIRY "expiry"
#define QWD_AUDIT_BY_IDLE QWD_END_IDLE /* the same word as the end reason */
#define QWD_AUDIT_BY_ONESHOT "oneshot"
#define QWD_AUDIT_BY_PURGE "purge"   /* a helper client's purge (qwdctl stop all) */
#define QWD_AUDIT_BY_CLIENT "client" /* another client of the helper (qwdctl) */
#define QWD_AUDIT_BY_VM "vm"         /* the VM itself (power-off, crash) */
#define QWD_AUDIT_BY_LINK "link"     /* whoever holds the session's link */
#define QWD_AUDIT_BY_USER "user"     /* the person logging in */

/* An entry as the module records it: the time is now, the address the client's. */
void qwd_audit_record(qwd_req_t *q, qwd_store_t *store, const char *event, const char *session,
                      const char *owner, const char *user, const char *by, const char *detail);
/* The same at another time (a viewer's connection: when it opened). */
void qwd_audit_record_at(qwd_req_t *q, qwd_store_t *store, apr_int64_t at, const char *event,
                         const char *session, const char *owner, const char *user, const char *by,
                         const char *detail);

/* Reads the helper's journal into the trail: the entries the module did not record itself
 * (started, ended, extended that no mod_qwd request asked for). position is where the journal
 * is ({"journal", "last"} of a list reply), or NULL to ask. Failures are logged only. */
void qwd_audit_pull(qwd_req_t *q, qwd_store_t *store, json_t *position);

/* Entries newest first: of user (as actor or owner; NULL or "": anyone), of event (NULL: any),
 * between since and until (Unix seconds), at most limit. *entries is a JSON array. */
qwd_error_t *qwd_audit_list(qwd_req_t *q, qwd_store_t *store, const char *user, const char *event,
                            apr_int64_t since, apr_int64_t until, int limit, json_t **entries);
/* The same entries as rows of QWD_AUDIT_FIELDS strings (NULL where empty), in that order, for
 * a page that writes them out as they are. */
enum {
    QWD_AUDIT_ID,
    QWD_AUDIT_TIME,
    QWD_AUDIT_EVENT,
    QWD_AUDIT_SESSION,
    QWD_AUDIT_OWNER,
    QWD_AUDIT_USER,
    QWD_AUDIT_BY,
    QWD_AUDIT_ADDRESS,
    QWD_AUDIT_DETAIL,
    QWD_AUDIT_FIELDS
};
qwd_error_t *qwd_audit_rows(qwd_req_t *q, qwd_store_t *store, const char *user, const char *event,
                            apr_int64_t since, apr_int64_t until, int limit,
                            apr_array_header_t **rows);

/* Forgets entries older than QwdAuditRetention days (0: keeps them). */
void qwd_audit_prune(qwd_req_t *q, qwd_store_t *store);

/* A share link made or revoked by the owner or an admin (qwd_share.c). */
void qwd_audit_shared(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row, const char *share_id,
                      const char *kind);
void qwd_audit_revoked(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row, const char *share_id,
                       const char *kind);

#endif
