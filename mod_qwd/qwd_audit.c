/* SPDX-License-Identifier: Apache-2.0 */
/* The audit trail: entries written through one function (a row, a log line, a counter), and
 * the helper's journal read into it. An entry of the journal is written once however many
 * children read it at the same time: its journal id and number are a unique key, and only the
 * child whose insert made the row logs it. */
#include "qwd_audit.h"
#include "qwd_counters.h"
#include "qwd_helper_client.h"
#include "qwd_logno.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <http_log.h>

APLOG_USE_MODULE(qwd);

/* Pages of the journal one pull reads at most (200 entries each): the rest waits for the
 * next pull. */
#define PULL_PAGES 20
#define SECONDS_PER_DAY 86400

typedef struct audit_entry {
    apr_int64_t at;
    const char *event, *session, *owner, *user, *by, *address, *detail;
    const char *journal; /* the helper's journal id and number, NULL/0 for the module's own */
    apr_int64_t seq;
} audit_entry;

static const char *or_null(const char *text)
{
    return text && *text ? text : NULL;
}

/* Writes e: the row, and (when the row is new) its log line and the counter. */
static void write_entry(qwd_req_t *q, qwd_store_t *store, const audit_entry *e)
{
    apr_pool_t *pool = q->r->pool;
    const char *params[10] = {apr_psprintf(pool, "%" APR_INT64_T_FMT, e->at),
                              e->event,
                              or_null(e->session),
                              or_null(e->owner),
                              or_null(e->user),
                              or_null(e->by),
                              or_null(e->address),
                              or_null(e->detail),
                              e->journal,
                              e->journal ? apr_psprintf(pool, "%" APR_INT64_T_FMT, e->seq) : NULL};
    int nrows = 0;
    qwd_error_t *failed = qwd_store_run(store, "qwd_audit_add", &nrows, 10, params);
    if (failed) {
        /* the action itself happened: its record is lost, which the log says */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r,
                      QWDLOGNO(03802) "audit %s of session %s not recorded: %s", e->event,
                      e->session ? e->session : "-", failed->detail ? failed->detail : "");
        return;
    }
    if (nrows != 1) {
        return; /* another child wrote this journal entry already */
    }
    qwd_counter_inc(QWD_COUNTER_AUDIT_EVENTS);
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, q->r,
                  QWDLOGNO(03800) "audit %s session %s owner %s user %s by %s from %s%s%s",
                  e->event, e->session ? e->session : "-", e->owner ? e->owner : "-",
                  e->user ? e->user : "-", e->by ? e->by : "-", e->address ? e->address : "-",
                  e->detail ? ": " : "", e->detail ? e->detail : "");
}

void qwd_audit_record_at(qwd_req_t *q, qwd_store_t *store, apr_int64_t at, const char *event,
                         const char *session, const char *owner, const char *user, const char *by,
                         const char *detail)
{
    audit_entry e = {.at = at,
                     .event = event,
                     .session = session,
                     .owner = owner,
                     .user = user,
                     .by = by,
                     .address = q->r->useragent_ip,
                     .detail = detail};
    write_entry(q, store, &e);
}

void qwd_audit_record(qwd_req_t *q, qwd_store_t *store, const char *event, const char *session,
                      const char *owner, const char *user, const char *by, const char *detail)
{
    qwd_audit_record_at(q, store, apr_time_sec(apr_time_now()), event, session, owner, user, by,
                        detail);
}

/* A share of row's session made or revoked (event) by the request's user: its owner, or an
 * admin acting for another. */
static void audit_share(qwd_req_t *q, qwd_store_t *store, const char *event, const qwd_row_t *row,
                        const char *share_id, const char *kind)
{
    qwd_audit_record(q, store, event, row->id, row->owner, q->user,
                     q->is_admin && strcmp(q->user, row->owner) ? QWD_AUDIT_BY_ADMIN
                                                                : QWD_AUDIT_BY_OWNER,
                     apr_psprintf(q->r->pool, "share %s (%s)", share_id, kind));
}

void qwd_audit_shared(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row, const char *share_id,
                      const char *kind)
{
    audit_share(q, store, QWD_AUDIT_SHARED, row, share_id, kind);
}

void qwd_audit_revoked(qwd_req_t *q, qwd_store_t *store, const qwd_row_t *row, const char *share_id,
                       const char *kind)
{
    audit_share(q, store, QWD_AUDIT_REVOKED, row, share_id, kind);
}

/* What a journal entry means in the trail: its event and who acted (by; user the name the
 * helper was given). Ends the helper decided name the decision as "by". */
static void meaning(json_t *entry, audit_entry *e, apr_pool_t *pool)
{
    const char *kind = json_string_value(json_object_get(entry, "event"));
    const char *reason = json_string_value(json_object_get(entry, "reason"));
    const char *asked = json_string_value(json_object_get(entry, "by"));
    e->user = asked;
    e->by = QWD_AUDIT_BY_CLIENT;
    if (kind && !strcmp(kind, QWD_EVENT_STARTED)) {
        e->event = QWD_AUDIT_CREATED;
        e->detail = apr_psprintf(pool, "%s, started by a client of the helper",
                                 json_string_value(json_object_get(entry, "machine")));
    }
    else if (kind && !strcmp(kind, QWD_EVENT_VIEWED)) {
        /* a viewer the relay saw leave: by its kind, at the time it joined */
        double seconds = json_number_value(json_object_get(entry, "seconds"));
        const char *share = json_string_value(json_object_get(entry, "share"));
        e->event = QWD_AUDIT_VIEWED;
        e->by = json_string_value(json_object_get(entry, "kind"));
        e->user = NULL;
        e->at -= (apr_int64_t)seconds;
        e->detail = apr_psprintf(pool, "for %.0f s%s%s", seconds, share ? ", share " : "",
                                 share ? share : "");
    }
    else if (kind && !strcmp(kind, QWD_EVENT_EXTENDED)) {
        e->event = QWD_AUDIT_EXTENDED;
        e->detail = apr_psprintf(pool, "+%" JSON_INTEGER_FORMAT " s, until %" JSON_INTEGER_FORMAT,
                                 json_integer_value(json_object_get(entry, "seconds")),
                                 json_integer_value(json_object_get(entry, "expires")));
    }
    else if (!reason || !strcmp(reason, QWD_END_POWEROFF) || !strcmp(reason, QWD_END_CRASHED)
             || (strcmp(reason, QWD_END_STOPPED) && strcmp(reason, QWD_END_PURGED)
                 && strcmp(reason, QWD_END_EXPIRED) && strcmp(reason, QWD_END_IDLE)
                 && strcmp(reason, QWD_END_VIEWER_LEFT))) {
        e->event = QWD_AUDIT_ENDED;
        e->by = QWD_AUDIT_BY_VM;
        e->user = NULL;
        e->detail = reason ? reason : "ended";
    }
    else {
        e->event = QWD_AUDIT_STOPPED;
        e->detail = reason;
        e->by = !strcmp(reason, QWD_END_EXPIRED)       ? QWD_AUDIT_BY_EXPIRY
                : !strcmp(reason, QWD_END_IDLE)        ? QWD_AUDIT_BY_IDLE
                : !strcmp(reason, QWD_END_VIEWER_LEFT) ? QWD_AUDIT_BY_ONESHOT
                : !strcmp(reason, QWD_END_PURGED)      ? QWD_AUDIT_BY_PURGE
                                                       : QWD_AUDIT_BY_CLIENT;
        if (!strcmp(reason, QWD_END_EXPIRED) || !strcmp(reason, QWD_END_IDLE)
            || !strcmp(reason, QWD_END_VIEWER_LEFT)) {
            e->user = NULL;
        }
    }
}

/* FNV-1a: the journal's id in the 64 bits the children share as a hint. */
static apr_uint64_t journal_hash(const char *journal)
{
    apr_uint64_t hash = 0xcbf29ce484222325ULL;
    for (const unsigned char *c = (const unsigned char *)journal; *c; c++) {
        hash = (hash ^ *c) * 0x100000001b3ULL;
    }
    return hash ? hash : 1;
}

static apr_int64_t cursor_of(qwd_store_t *store, const char *journal)
{
    const char **row = NULL;
    if (qwd_store_first_row(store, "qwd_audit_cursor_get", 1, &journal, 1, &row) || !row
        || !row[0]) {
        return 0;
    }
    return apr_atoi64(row[0]);
}

static json_t *events_after(qwd_req_t *q, apr_int64_t after)
{
    json_t *page;
    return qwd_helper_call(q, QWD_OP_EVENTS, json_pack("{s:I}", "after", (json_int_t)after), &page)
               ? NULL
               : page;
}

/* Writes the entries of one page the module did not record itself; returns the last seq. */
static apr_int64_t write_page(qwd_req_t *q, qwd_store_t *store, const char *journal, json_t *page,
                              apr_int64_t after)
{
    json_t *entry;
    size_t i;
    apr_int64_t first = json_integer_value(json_object_get(page, "first"));
    if (after + 1 < first) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r,
                      QWDLOGNO(03803) "audit: entries %" APR_INT64_T_FMT "-%" APR_INT64_T_FMT
                                      " of the helper's journal were dropped before they were "
                                      "read",
                      after + 1, first - 1);
    }
    json_array_foreach (json_object_get(page, "events"), i, entry) {
        audit_entry e = {.journal = journal};
        const char *ref = json_string_value(json_object_get(entry, "ref"));
        e.seq = json_integer_value(json_object_get(entry, "seq"));
        after = e.seq > after ? e.seq : after;
        if (json_is_true(json_object_get(entry, "audited"))) {
            continue; /* a request of this module: recorded when it was made */
        }
        e.at = (apr_int64_t)json_number_value(json_object_get(entry, "time"));
        e.session = ref ? ref : json_string_value(json_object_get(entry, "session"));
        e.owner = json_string_value(json_object_get(entry, "owner"));
        meaning(entry, &e, q->r->pool);
        write_entry(q, store, &e);
    }
    return after;
}

void qwd_audit_pull(qwd_req_t *q, qwd_store_t *store, json_t *position)
{
    apr_uint64_t hint_hash, hint_seq;
    qwd_counters_journal_hint(&hint_hash, &hint_seq);
    const char *at = position ? json_string_value(json_object_get(position, "journal")) : NULL;
    if (position
        && (!at
            || (journal_hash(at) == hint_hash
                && json_integer_value(json_object_get(position, "last"))
                       <= (json_int_t)hint_seq))) {
        return; /* nothing new since the last pull of any child */
    }
    apr_int64_t after = hint_hash ? (apr_int64_t)hint_seq : 0;
    json_t *page = events_after(q, after);
    const char *journal = page ? json_string_value(json_object_get(page, "journal")) : NULL;
    if (!journal) {
        return;
    }
    journal = apr_pstrdup(q->r->pool, journal);
    if (journal_hash(journal) != hint_hash) {
        /* a journal this server's hint does not know (a restarted helper or Apache): the
         * database says how far it was read */
        apr_int64_t cursor = cursor_of(store, journal);
        if (cursor != after && !(page = events_after(q, after = cursor))) {
            return;
        }
    }
    for (int pages = 0; page && pages < PULL_PAGES; pages++) {
        apr_int64_t last = json_integer_value(json_object_get(page, "last"));
        apr_int64_t read = write_page(q, store, journal, page, after);
        if (read > after) {
            const char *params[2] = {journal, apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, read)};
            if (qwd_store_run(store, "qwd_audit_cursor_set", NULL, 2, params)) {
                return;
            }
        }
        qwd_counters_set_journal_hint(journal_hash(journal), (apr_uint64_t)read);
        if (read >= last || read == after) {
            return;
        }
        page = events_after(q, after = read);
    }
}

qwd_error_t *qwd_audit_rows(qwd_req_t *q, qwd_store_t *store, const char *user, const char *event,
                            apr_int64_t since, apr_int64_t until, int limit,
                            apr_array_header_t **rows)
{
    apr_pool_t *pool = q->r->pool;
    const char *who = user ? user : "", *what = event ? event : "";
    const char *params[8] = {apr_psprintf(pool, "%" APR_INT64_T_FMT, since),
                             apr_psprintf(pool, "%" APR_INT64_T_FMT, until),
                             who,
                             who,
                             who,
                             what,
                             what,
                             apr_itoa(pool, limit)};
    return qwd_store_rows(store, "qwd_audit_list", 8, params, QWD_AUDIT_FIELDS, rows);
}

qwd_error_t *qwd_audit_list(qwd_req_t *q, qwd_store_t *store, const char *user, const char *event,
                            apr_int64_t since, apr_int64_t until, int limit, json_t **entries)
{
    apr_pool_t *pool = q->r->pool;
    apr_array_header_t *rows;
    qwd_error_t *e = qwd_audit_rows(q, store, user, event, since, until, limit, &rows);
    static const char *const keys[QWD_AUDIT_FIELDS] = {
        "id", "time", "event", "session", "owner", "user", "by", "address", "detail"};
    if (e) {
        return e;
    }
    *entries = qwd_json_pool_bind(pool, json_array());
    for (int i = 0; i < rows->nelts; i++) {
        const char **row = APR_ARRAY_IDX(rows, i, const char **);
        json_t *item = json_object();
        for (int k = 0; k < QWD_AUDIT_FIELDS; k++) {
            json_object_set_new(item, keys[k],
                                k <= QWD_AUDIT_TIME ? json_integer(row[k] ? apr_atoi64(row[k]) : 0)
                                : row[k]            ? json_string(row[k])
                                                    : json_null());
        }
        json_array_append_new(*entries, item);
    }
    return NULL;
}

void qwd_audit_prune(qwd_req_t *q, qwd_store_t *store)
{
    int days = qwd_cfg_audit_retention(q->cfg);
    const char *before;
    if (days <= 0) {
        return;
    }
    before = apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT,
                          (apr_int64_t)apr_time_sec(apr_time_now())
                              - (apr_int64_t)days * SECONDS_PER_DAY);
    qwd_store_run(store, "qwd_audit_prune", NULL, 1, &before);
}
