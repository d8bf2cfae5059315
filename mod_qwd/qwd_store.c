/* SPDX-License-Identifier: Apache-2.0 */
/* Session rows in SQLite via mod_dbd. mod_dbd prepares ap_dbd_prepare() statements when it
 * opens a connection, but SQLite refuses to prepare statements on tables that do not exist yet,
 * and the schema is created on first use: so each connection gets its statements here, right
 * after the schema check, and keeps them in its own ap_dbd_t->prepared hash. */
#include "qwd_store.h"
#include "qwd_capability.h"
#include "qwd_logno.h"

#include <apr_dbd.h>
#include <apr_optional.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>
#include <mod_dbd.h>
#include <util_cfgtree.h>

APLOG_USE_MODULE(qwd);

/* 2: login failures and pending logins (authentication); 3: spent websocket tickets; 4: no
 * websockify token, the link's key instead (qwd_links.c); 5: the audit trail (qwd_audit.c) */
#define SCHEMA_VERSION 5
#define READY_LABEL "qwd_ready"
#define ROW_COLUMNS                                                                             \
    "id, owner, machine, cpu, memory_mib, oneshot, state, helper_id, created, expires, ended, " \
    "ended_reason"
#define LIVE "state NOT IN ('ended')"
#define SHARE_COLUMNS "id, session_id, kind, created, expires, revoked"
/* The sweep: ended rows stay listed this long (s), and a pending row older than any start can
 * take (s) belongs to a worker that died mid-create. */
#define ENDED_KEEP_S 86400
#define PENDING_MAX_AGE_S 300
/* BEGIN IMMEDIATE against a busy database: tries, and the first pause (doubled each time). */
#define BEGIN_TRIES 4
#define BEGIN_FIRST_PAUSE_MS 20
/* The schema check after another process changed it: tries, and the pause between them. */
#define SCHEMA_TRIES 3
#define SCHEMA_PAUSE_MS 10

struct qwd_store {
    qwd_req_t *q;
    ap_dbd_t *dbd;
};

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) * dbd_acquire;

static const char *const schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS qwd_schema (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS qwd_sessions ("
    " id TEXT PRIMARY KEY, owner TEXT NOT NULL, machine TEXT NOT NULL,"
    " cpu INTEGER NOT NULL, memory_mib INTEGER NOT NULL, oneshot INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL, helper_id TEXT UNIQUE, link_key TEXT,"
    " created INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " ended INTEGER, ended_reason TEXT)",
    "CREATE INDEX IF NOT EXISTS qwd_sessions_owner ON qwd_sessions (owner, state)",
    /* version 2: failed logins per user / client address (qwd_throttle.c) */
    "CREATE TABLE IF NOT EXISTS qwd_login_failures (key TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS qwd_login_failures_key ON qwd_login_failures (key, at)",
    /* version 2: logins waiting for a mailed code or link (qwd_otp.c); id and code hashed */
    "CREATE TABLE IF NOT EXISTS qwd_pending ("
    " id TEXT PRIMARY KEY, kind TEXT NOT NULL, user TEXT NOT NULL, code_hash TEXT NOT NULL,"
    " request TEXT, attempts INTEGER NOT NULL DEFAULT 0, expires INTEGER NOT NULL)",
    /* version 3: nonces of websocket tickets already used, until they expire (qwd_ticket.c) */
    "CREATE TABLE IF NOT EXISTS qwd_tickets_spent (nonce TEXT PRIMARY KEY,"
    " expires INTEGER NOT NULL)",
    /* shares of sessions (qwd_share.c), found by an HMAC of their link; a new table, which
     * needs no migration: any version gets it here */
    "CREATE TABLE IF NOT EXISTS qwd_shares (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,"
    " kind TEXT NOT NULL, link_key TEXT NOT NULL, created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0, revoked INTEGER)",
    "CREATE UNIQUE INDEX IF NOT EXISTS qwd_shares_link ON qwd_shares (link_key)",
    "CREATE INDEX IF NOT EXISTS qwd_shares_session ON qwd_shares (session_id)",
    /* version 5: the audit trail (qwd_audit.c): who did what to which session, when, from
     * where; entries read from the helper's journal carry its id and number (once each), and
     * the cursor says how far each journal was read */
    "CREATE TABLE IF NOT EXISTS qwd_audit (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL, event TEXT NOT NULL, session TEXT, owner TEXT, actor TEXT,"
    " role TEXT, address TEXT, detail TEXT, journal TEXT, seq INTEGER)",
    "CREATE INDEX IF NOT EXISTS qwd_audit_at ON qwd_audit (at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS qwd_audit_journal ON qwd_audit (journal, seq)",
    "CREATE TABLE IF NOT EXISTS qwd_audit_cursor (journal TEXT PRIMARY KEY,"
    " seq INTEGER NOT NULL)",
    NULL};

/* After the tables, once they have the current columns: on a table of an older version these
 * fail until ensure_schema has migrated it. */
static const char *const schema_index_sql[] = {
    /* version 4: rows found by their link */
    "CREATE UNIQUE INDEX IF NOT EXISTS qwd_sessions_link ON qwd_sessions (link_key)", NULL};

/* From version 3: websockify's tokens leave the database (they opened every desktop on
 * websockify's port to whoever read it), and each row gets the key of its link, made from its
 * id (migrate_to_4 below, which needs the server's key). */
static const char *const migrate_to_4_sql[] = {"ALTER TABLE qwd_sessions ADD COLUMN link_key TEXT",
                                               "ALTER TABLE qwd_sessions DROP COLUMN token", NULL};

static const struct {
    const char *label, *sql;
} statements[] = {
    {"qwd_count_all", "SELECT COUNT(*) FROM qwd_sessions WHERE " LIVE},
    {"qwd_count_owner", "SELECT COUNT(*), COALESCE(SUM(cpu), 0), COALESCE(SUM(memory_mib), 0)"
                        " FROM qwd_sessions WHERE owner = %s AND " LIVE},
    {"qwd_insert", "INSERT INTO qwd_sessions (id, owner, machine, cpu, memory_mib, oneshot,"
                   " state, link_key, created, expires)"
                   " VALUES (%s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s)"},
    {"qwd_mark_started", "UPDATE qwd_sessions SET state = %s, helper_id = %s, link_key = %s,"
                         " expires = %s WHERE id = %s AND state = 'pending'"},
    {"qwd_mark_ended", "UPDATE qwd_sessions SET state = 'ended', ended = %s, ended_reason = %s"
                       " WHERE id = %s AND state <> 'ended'"},
    {"qwd_set_state", "UPDATE qwd_sessions SET state = %s WHERE id = %s AND state <> 'ended'"
                      " AND state <> 'pending'"},
    {"qwd_set_expires", "UPDATE qwd_sessions SET expires = %s WHERE id = %s AND state <> 'ended'"},
    {"qwd_delete", "DELETE FROM qwd_sessions WHERE id = %s"},
    {"qwd_get", "SELECT " ROW_COLUMNS " FROM qwd_sessions WHERE id = %s"},
    {"qwd_get_by_link", "SELECT " ROW_COLUMNS " FROM qwd_sessions WHERE link_key = %s"},
    {"qwd_list_owner", "SELECT " ROW_COLUMNS " FROM qwd_sessions WHERE owner = %s"
                       " ORDER BY created DESC, id"},
    {"qwd_list_all", "SELECT " ROW_COLUMNS " FROM qwd_sessions ORDER BY created DESC, id"},
    {"qwd_list_owner_live", "SELECT " ROW_COLUMNS " FROM qwd_sessions WHERE owner = %s AND " LIVE
                            " ORDER BY created DESC, id"},
    {"qwd_list_all_live",
     "SELECT " ROW_COLUMNS " FROM qwd_sessions WHERE " LIVE " ORDER BY created DESC, id"},
    {"qwd_sweep", "DELETE FROM qwd_sessions WHERE (state = 'ended' AND ended < %s)"
                  " OR (state = 'pending' AND created < %s)"},
    {"qwd_fail_count", "SELECT COUNT(*), COALESCE(MIN(at), 0) FROM qwd_login_failures"
                       " WHERE key = %s AND at > %s"},
    {"qwd_fail_add", "INSERT INTO qwd_login_failures (key, at) VALUES (%s, %s)"},
    {"qwd_fail_prune", "DELETE FROM qwd_login_failures WHERE at <= %s"},
    {"qwd_ticket_spend", "INSERT OR IGNORE INTO qwd_tickets_spent (nonce, expires)"
                         " VALUES (%s, %s)"},
    {"qwd_ticket_prune", "DELETE FROM qwd_tickets_spent WHERE expires < %s"},
    {"qwd_ticket_unspend", "DELETE FROM qwd_tickets_spent WHERE nonce = %s"},
    {"qwd_fail_clear", "DELETE FROM qwd_login_failures WHERE key = %s"},
    {"qwd_pending_add", "INSERT INTO qwd_pending (id, kind, user, code_hash, request, expires)"
                        " VALUES (%s, %s, %s, %s, %s, %s)"},
    {"qwd_pending_get", "SELECT kind, user, code_hash, request, attempts, expires"
                        " FROM qwd_pending WHERE id = %s AND expires > %s"},
    {"qwd_pending_attempt", "UPDATE qwd_pending SET attempts = attempts + 1"
                            " WHERE id = %s AND attempts < %s"},
    {"qwd_pending_take", "DELETE FROM qwd_pending WHERE id = %s AND code_hash = %s"
                         " AND expires > %s"},
    {"qwd_pending_prune", "DELETE FROM qwd_pending WHERE expires <= %s"},
    {"qwd_share_insert", "INSERT INTO qwd_shares (id, session_id, kind, link_key, created,"
                         " expires) VALUES (%s, %s, %s, %s, %s, %s)"},
    {"qwd_share_get", "SELECT " SHARE_COLUMNS " FROM qwd_shares WHERE id = %s"},
    {"qwd_share_by_link", "SELECT " SHARE_COLUMNS " FROM qwd_shares WHERE link_key = %s"},
    {"qwd_shares_of", "SELECT " SHARE_COLUMNS " FROM qwd_shares WHERE session_id = %s"
                      " ORDER BY created, rowid"},
    {"qwd_share_revoke", "UPDATE qwd_shares SET revoked = %s WHERE id = %s AND revoked IS NULL"},
    {"qwd_share_sweep", "DELETE FROM qwd_shares WHERE session_id NOT IN"
                        " (SELECT id FROM qwd_sessions)"},
    /* the audit trail (qwd_audit.c) */
    {"qwd_audit_add", "INSERT OR IGNORE INTO qwd_audit (at, event, session, owner, actor, role,"
                      " address, detail, journal, seq)"
                      " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"},
    {"qwd_audit_list", "SELECT id, at, event, session, owner, actor, role, address, detail"
                       " FROM qwd_audit WHERE at >= CAST(%s AS INTEGER)"
                       " AND at <= CAST(%s AS INTEGER)"
                       " AND (%s = '' OR actor = %s OR owner = %s)"
                       " AND (%s = '' OR event = %s)"
                       " ORDER BY at DESC, id DESC LIMIT CAST(%s AS INTEGER)"},
    {"qwd_audit_prune", "DELETE FROM qwd_audit WHERE at < CAST(%s AS INTEGER)"},
    {"qwd_audit_cursor_get", "SELECT seq FROM qwd_audit_cursor WHERE journal = %s"},
    {"qwd_audit_cursor_set", "INSERT INTO qwd_audit_cursor (journal, seq)"
                             " VALUES (%s, CAST(%s AS INTEGER)) ON CONFLICT (journal) DO UPDATE"
                             " SET seq = MAX(seq, excluded.seq)"},
    {NULL, NULL}};

int qwd_store_post_config(server_rec *s)
{
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (!dbd_acquire) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     QWDLOGNO(00201) "mod_qwd keeps its sessions through mod_dbd: load mod_dbd "
                                     "(LoadModule dbd_module) and set DBDriver sqlite3 and "
                                     "DBDParams /path/to/qwd.db");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

const char *qwd_store_sqlite_path(apr_pool_t *pool)
{
    const char *driver_name = NULL, *params = NULL;
    ap_directive_t *directive;
    for (directive = ap_conftree; directive; directive = directive->next) {
        if (!strcasecmp(directive->directive, "DBDriver")) {
            driver_name = directive->args;
        }
        else if (!strcasecmp(directive->directive, "DBDParams")) {
            const char *args = directive->args;
            params = ap_getword_conf(pool, &args); /* without quotes */
        }
    }
    return driver_name && !strcasecmp(driver_name, "sqlite3") && params && *params ? params : NULL;
}

/* SQLite creates a database 0644 (less the umask) and its -wal and -shm with the database's
 * mode: a database made here first, 0600, keeps all three Apache's user's alone, whatever
 * umask Apache was started with. */
static void create_private(apr_pool_t *pool, const char *path)
{
    apr_file_t *file;
    if (path[0] == '/'
        && apr_file_open(&file, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                         APR_FPROT_UREAD | APR_FPROT_UWRITE, pool)
               == APR_SUCCESS) {
        apr_file_close(file);
    }
}

/* Other modules may keep their tables in the same SQLite file (mod_authn_dbd's users: mod_dbd
 * allows one DBDParams per server). mod_dbd prepares their statements when it opens a
 * connection, and SQLite expires such statements for good when the schema changes after
 * (apr_dbd uses the legacy sqlite3_prepare, which cannot re-prepare). So each child creates
 * the tables before mod_dbd's child_init opens any connection: with its own short connection,
 * as Apache's user, with DBDriver/DBDParams read from the main server's configuration. The
 * per-connection check below stays for everything else (version, pragmas, statements). */
void qwd_store_child_init(apr_pool_t *pool, server_rec *s)
{
    const apr_dbd_driver_t *driver = NULL;
    const char *params = qwd_store_sqlite_path(pool), *error = NULL;
    apr_dbd_t *handle = NULL;
    int i, nrows, rc = 0;
    if (params) {
        create_private(pool, params);
    }
    if (!params || apr_dbd_get_driver(pool, "sqlite3", &driver) != APR_SUCCESS
        || apr_dbd_open_ex(driver, pool, params, &handle, &error) != APR_SUCCESS) {
        return; /* the first request creates the schema then */
    }
    if (apr_dbd_query(driver, handle, &nrows, "BEGIN IMMEDIATE") == 0) {
        for (i = 0; schema_sql[i] && rc == 0; i++) {
            rc = apr_dbd_query(driver, handle, &nrows, schema_sql[i]);
        }
        for (i = 0; schema_index_sql[i] && rc == 0; i++) {
            rc = apr_dbd_query(driver, handle, &nrows, schema_index_sql[i]);
        }
        apr_dbd_query(driver, handle, &nrows, rc ? "ROLLBACK" : "COMMIT");
    }
    apr_dbd_close(driver, handle);
}

/* SQLite's result codes for a database another connection holds (sqlite3.h: SQLITE_BUSY,
 * SQLITE_LOCKED), which apr_dbd's sqlite3 driver passes on after its own 1.5 s of retries. */
#define SQLITE_RC_BUSY 5
#define SQLITE_RC_LOCKED 6

/* A failed statement. A database still held by another writer once every retry is spent is
 * a 503 (try again: nothing was written), anything else a 500. */
static qwd_error_t *db_error(qwd_store_t *store, const char *logno, int rc, const char *what)
{
    int busy = rc == SQLITE_RC_BUSY || rc == SQLITE_RC_LOCKED;
    qwd_error_t *e = busy ? qwd_err(store->q, HTTP_SERVICE_UNAVAILABLE, logno, "database_busy",
                                    "The session database is busy; please try again in a moment.")
                          : qwd_err(store->q, HTTP_INTERNAL_SERVER_ERROR, logno, "database",
                                    "The session database failed; please try again.");
    e->detail = apr_psprintf(store->q->r->pool, "%s: %s", what,
                             apr_dbd_error(store->dbd->driver, store->dbd->handle, rc));
    return e;
}

/* Runs a statement without parameters that may return rows (PRAGMA), discarding them. */
static int run_sql(qwd_store_t *store, const char *sql)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row;
    apr_pool_t *pool = store->q->r->pool;
    int rc = apr_dbd_select(store->dbd->driver, pool, store->dbd->handle, &res, sql, 0);
    if (rc == 0) {
        while (apr_dbd_get_row(store->dbd->driver, pool, res, &row, -1) == 0) {
        }
    }
    return rc;
}

/* BEGIN IMMEDIATE takes SQLite's write lock at once, so a count made inside the transaction
 * stays true until COMMIT in every process. The driver retries a busy database for 1.5 s; a
 * few more rounds ride out a burst of creates. A failed start still leaves the driver's
 * transaction attached to the handle: end it, or the connection stays "in a transaction". */
static int begin_immediate(qwd_store_t *store, apr_dbd_transaction_t **txn)
{
    const apr_dbd_driver_t *driver = store->dbd->driver;
    apr_pool_t *pool = store->q->r->pool;
    int rc, attempt;
    for (attempt = 0; attempt < BEGIN_TRIES; attempt++) {
        *txn = NULL;
        rc = apr_dbd_transaction_start(driver, pool, store->dbd->handle, txn);
        if (rc == 0) {
            return 0;
        }
        if (*txn) {
            apr_dbd_transaction_mode_set(driver, *txn, APR_DBD_TRANSACTION_ROLLBACK);
            apr_dbd_transaction_end(driver, pool, *txn);
        }
        apr_sleep(apr_time_from_msec(BEGIN_FIRST_PAUSE_MS << attempt));
    }
    return rc;
}

/* Version 3 → 4: see migrate_to_4_sql. */
static int migrate_to_4(qwd_store_t *store)
{
    const apr_dbd_driver_t *driver = store->dbd->driver;
    apr_pool_t *pool = store->q->r->pool;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row;
    apr_array_header_t *ids = apr_array_make(pool, 8, sizeof(const char *));
    int rc = 0, nrows, i;
    for (i = 0; migrate_to_4_sql[i] && rc == 0; i++) {
        rc = apr_dbd_query(driver, store->dbd->handle, &nrows, migrate_to_4_sql[i]);
    }
    if (rc == 0) {
        rc = apr_dbd_select(driver, pool, store->dbd->handle, &res, "SELECT id FROM qwd_sessions",
                            0);
    }
    while (rc == 0 && apr_dbd_get_row(driver, pool, res, &row, -1) == 0) {
        const char *id = apr_dbd_get_entry(driver, row, 0);
        if (id && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32) {
            APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(pool, id);
        }
    }
    for (i = 0; rc == 0 && i < ids->nelts; i++) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        /* hex only, both of them: nothing to escape */
        rc = apr_dbd_query(
            driver, store->dbd->handle, &nrows,
            apr_psprintf(pool, "UPDATE qwd_sessions SET link_key = '%s' WHERE id = '%s'",
                         qwd_link_key(store->q, qwd_link_capability(store->q, id)), id));
    }
    return rc;
}

static qwd_error_t *ensure_schema(qwd_store_t *store)
{
    const apr_dbd_driver_t *driver = store->dbd->driver;
    apr_dbd_t *handle = store->dbd->handle;
    apr_pool_t *pool = store->q->r->pool;
    apr_dbd_transaction_t *txn = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row;
    int rc, nrows, i, version = 0;

    /* WAL lets readers run beside one writer (set outside any transaction: journal_mode
     * cannot change inside one). No busy_timeout: SQLite would sleep in it while apr_dbd's
     * process-wide mutex is held, stalling every other thread of the worker, including the
     * one that holds the lock; apr_dbd's own retry loop sleeps without the mutex. */
    if ((rc = run_sql(store, "PRAGMA journal_mode = WAL"))) {
        return db_error(store, QWDLOGNO(00202), rc, "setting the SQLite pragmas");
    }
    /* SQLite keeps up to cache_size of the database in each connection (2000 KiB unless told),
     * and mod_dbd keeps several connections in each child for as long as the child lives: with
     * the audit trail and a day of ended rows the file outgrows that, so each child's RSS grew
     * with the database until every cache was full (the soak, docs/testing.md). Bounded here. */
    const qwd_server_config_t *scfg =
        ap_get_module_config(store->q->r->server->module_config, &qwd_module);
    const char *cache_size =
        apr_psprintf(pool, "PRAGMA cache_size = -%d", qwd_scfg_db_cache_kib(scfg));
    if ((rc = run_sql(store, cache_size))) {
        return db_error(store, QWDLOGNO(00221), rc, "setting SQLite's cache size");
    }
    if ((rc = begin_immediate(store, &txn))) {
        return db_error(store, QWDLOGNO(00203), rc, "starting the schema transaction");
    }
    for (i = 0; schema_sql[i] && rc == 0; i++) {
        rc = apr_dbd_query(driver, handle, &nrows, schema_sql[i]);
    }
    if (rc == 0) {
        rc = apr_dbd_select(driver, pool, handle, &res, "SELECT MAX(version) FROM qwd_schema", 0);
    }
    if (rc == 0) {
        while (apr_dbd_get_row(driver, pool, res, &row, -1) == 0) {
            const char *value = apr_dbd_get_entry(driver, row, 0);
            version = value ? atoi(value) : 0;
        }
        if (version == 0) {
            rc = apr_dbd_query(
                driver, handle, &nrows,
                apr_psprintf(pool, "INSERT INTO qwd_schema (version) VALUES (%d)", SCHEMA_VERSION));
        }
    }
    /* later versions migrate here, inside the same transaction; 1 → 2 → 3 only add tables,
     * which the CREATE ... IF NOT EXISTS above made */
    if (rc == 0 && version > 0 && version < 4) {
        rc = migrate_to_4(store);
    }
    if (rc == 0 && version > 0 && version < SCHEMA_VERSION) {
        rc =
            apr_dbd_query(driver, handle, &nrows,
                          apr_psprintf(pool, "UPDATE qwd_schema SET version = %d", SCHEMA_VERSION));
    }
    for (i = 0; schema_index_sql[i] && rc == 0 && version <= SCHEMA_VERSION; i++) {
        rc = apr_dbd_query(driver, handle, &nrows, schema_index_sql[i]);
    }
    if (rc || version > SCHEMA_VERSION) {
        apr_dbd_transaction_mode_set(driver, txn, APR_DBD_TRANSACTION_ROLLBACK);
    }
    apr_dbd_transaction_end(driver, pool, txn);
    if (rc) {
        return db_error(store, QWDLOGNO(00204), rc, "creating the schema");
    }
    if (version > SCHEMA_VERSION) {
        qwd_error_t *e = db_error(store, QWDLOGNO(00205), 0, "schema");
        e->detail = apr_psprintf(pool,
                                 "the database has schema version %d; this mod_qwd "
                                 "knows up to %d",
                                 version, SCHEMA_VERSION);
        return e;
    }
    for (i = 0; statements[i].label; i++) {
        apr_dbd_prepared_t *stmt = NULL;
        /* the connection's pool: statements live as long as the connection */
        rc = apr_dbd_prepare(driver, store->dbd->pool, handle, statements[i].sql,
                             statements[i].label, &stmt);
        if (rc) {
            return db_error(store, QWDLOGNO(00206), rc,
                            apr_psprintf(pool, "preparing %s", statements[i].label));
        }
        apr_hash_set(store->dbd->prepared, statements[i].label, APR_HASH_KEY_STRING, stmt);
    }
    apr_hash_set(store->dbd->prepared, READY_LABEL, APR_HASH_KEY_STRING, (void *)1);
    return NULL;
}

qwd_error_t *qwd_store_open(qwd_req_t *q, qwd_store_t **store_out)
{
    qwd_store_t *store = apr_pcalloc(q->r->pool, sizeof(*store));
    store->q = q;
    store->dbd = dbd_acquire ? dbd_acquire(q->r) : NULL;
    if (!store->dbd) {
        qwd_error_t *e = qwd_err(q, HTTP_INTERNAL_SERVER_ERROR, QWDLOGNO(00207), "database",
                                 "The session database is not available.");
        e->detail = "no database connection from mod_dbd: check DBDriver sqlite3 and "
                    "DBDParams (the directory must be writable by Apache's user)";
        return e;
    }
    if (!apr_hash_get(store->dbd->prepared, READY_LABEL, APR_HASH_KEY_STRING)) {
        /* When another connection created the schema after this one last read it, the first
         * statement fails once with SQLITE_SCHEMA (apr_dbd uses the legacy sqlite3_prepare,
         * which does not re-prepare by itself); the next try sees the new schema. */
        qwd_error_t *e = NULL;
        int attempt;
        for (attempt = 0; attempt < SCHEMA_TRIES; attempt++) {
            if (!(e = ensure_schema(store))) {
                break;
            }
            apr_sleep(apr_time_from_msec(SCHEMA_PAUSE_MS));
        }
        if (e) {
            return e;
        }
    }
    *store_out = store;
    return NULL;
}

static apr_dbd_prepared_t *statement(qwd_store_t *store, const char *label)
{
    return apr_hash_get(store->dbd->prepared, label, APR_HASH_KEY_STRING);
}

static const char *num(qwd_store_t *store, apr_int64_t value)
{
    return apr_psprintf(store->q->r->pool, "%" APR_INT64_T_FMT, value);
}

/* Runs a prepared write (parameters as strings, NULL-terminated). */
static int exec_stmt(qwd_store_t *store, const char *label, int *nrows, ...)
{
    va_list args;
    int rc;
    const char *params[10];
    int n = 0;
    va_start(args, nrows);
    while (n < 10 && (params[n] = va_arg(args, const char *)) != NULL) {
        n++;
    }
    va_end(args);
    rc = apr_dbd_pquery(store->dbd->driver, store->q->r->pool, store->dbd->handle, nrows,
                        statement(store, label), n, params);
    return rc;
}

static int select_stmt(qwd_store_t *store, const char *label, apr_dbd_results_t **res, int n,
                       const char **params)
{
    *res = NULL;
    return apr_dbd_pselect(store->dbd->driver, store->q->r->pool, store->dbd->handle, res,
                           statement(store, label), 0, n, params);
}

/* Reads the first row's integer columns into values[] (ncols of them). */
static int select_ints(qwd_store_t *store, const char *label, int n, const char **params,
                       apr_int64_t *values, int ncols)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int rc = select_stmt(store, label, &res, n, params), first = 1, i;
    if (rc) {
        return rc;
    }
    for (i = 0; i < ncols; i++) {
        values[i] = 0;
    }
    while (apr_dbd_get_row(store->dbd->driver, store->q->r->pool, res, &row, -1) == 0) {
        for (i = 0; first && i < ncols; i++) {
            const char *v = apr_dbd_get_entry(store->dbd->driver, row, i);
            values[i] = v ? apr_atoi64(v) : 0;
        }
        first = 0;
    }
    return 0;
}

static qwd_error_t *limit_error(qwd_store_t *store, const char *directive, int limit,
                                const char *what)
{
    qwd_error_t *e = qwd_err(store->q, HTTP_TOO_MANY_REQUESTS, QWDLOGNO(00208), "limit_reached",
                             "Limit reached: %s (%s %d).", what, directive, limit);
    e->limit = directive;
    return e;
}

qwd_error_t *qwd_store_reserve(qwd_store_t *store, const qwd_row_t *row, const qwd_limits_t *limits)
{
    const apr_dbd_driver_t *driver = store->dbd->driver;
    apr_pool_t *pool = store->q->r->pool;
    apr_dbd_transaction_t *txn = NULL;
    apr_int64_t all = 0, mine[3] = {0, 0, 0};
    qwd_error_t *e = NULL;
    int rc, nrows = 0;

    if ((rc = begin_immediate(store, &txn))) {
        return db_error(store, QWDLOGNO(00209), rc, "BEGIN IMMEDIATE");
    }
    rc = select_ints(store, "qwd_count_all", 0, NULL, &all, 1);
    if (rc == 0) {
        const char *owner = row->owner;
        rc = select_ints(store, "qwd_count_owner", 1, &owner, mine, 3);
    }
    if (rc) {
        e = db_error(store, QWDLOGNO(00210), rc, "counting sessions");
    }
    else if (limits->max_sessions && all + 1 > limits->max_sessions) {
        e = limit_error(store, "QwdMaxSessions", limits->max_sessions,
                        "the server runs as many sessions as it may");
    }
    else if (limits->max_sessions_per_user && mine[0] + 1 > limits->max_sessions_per_user) {
        e = limit_error(store, "QwdMaxSessionsPerUser", limits->max_sessions_per_user,
                        "you have as many sessions as you may");
    }
    else if (mine[1] + row->cpu > limits->max_cpu_per_user) {
        e = limit_error(store, "QwdMaxCPUPerUser", limits->max_cpu_per_user,
                        "your sessions would use too many CPUs together");
    }
    else if (mine[2] + row->memory_mib > limits->max_memory_per_user) {
        e = limit_error(store, "QwdMaxMemoryPerUser", limits->max_memory_per_user,
                        "your sessions would use too much memory together (MiB)");
    }
    else {
        rc = exec_stmt(store, "qwd_insert", &nrows, row->id, row->owner, row->machine,
                       num(store, row->cpu), num(store, row->memory_mib), num(store, row->oneshot),
                       row->link_key, num(store, row->created), num(store, row->expires), NULL);
        if (rc || nrows != 1) {
            e = db_error(store, QWDLOGNO(00211), rc, "inserting the session");
        }
    }
    if (e) {
        apr_dbd_transaction_mode_set(driver, txn, APR_DBD_TRANSACTION_ROLLBACK);
    }
    rc = apr_dbd_transaction_end(driver, pool, txn);
    if (rc && !e) {
        e = db_error(store, QWDLOGNO(00212), rc, "COMMIT");
    }
    return e;
}

qwd_error_t *qwd_store_mark_started(qwd_store_t *store, const qwd_row_t *row)
{
    int nrows = 0;
    int rc = exec_stmt(store, "qwd_mark_started", &nrows, row->state, row->helper_id, row->link_key,
                       num(store, row->expires), row->id, NULL);
    if (rc || nrows != 1) {
        return db_error(store, QWDLOGNO(00213), rc, "recording the started session");
    }
    return NULL;
}

qwd_error_t *qwd_store_mark_ended(qwd_store_t *store, const char *id, const char *reason)
{
    int nrows = 0;
    int rc = exec_stmt(store, "qwd_mark_ended", &nrows, num(store, apr_time_sec(apr_time_now())),
                       reason ? reason : "ended", id, NULL);
    return rc ? db_error(store, QWDLOGNO(00214), rc, "marking a session ended") : NULL;
}

qwd_error_t *qwd_store_set_state(qwd_store_t *store, const char *id, const char *state)
{
    int nrows = 0;
    int rc = exec_stmt(store, "qwd_set_state", &nrows, state, id, NULL);
    return rc ? db_error(store, QWDLOGNO(00215), rc, "updating a session's state") : NULL;
}

qwd_error_t *qwd_store_set_expires(qwd_store_t *store, const char *id, apr_int64_t expires)
{
    int nrows = 0;
    int rc = exec_stmt(store, "qwd_set_expires", &nrows, num(store, expires), id, NULL);
    return rc ? db_error(store, QWDLOGNO(03600), rc, "updating a session's expiry") : NULL;
}

qwd_error_t *qwd_store_delete(qwd_store_t *store, const char *id)
{
    int nrows = 0;
    int rc = exec_stmt(store, "qwd_delete", &nrows, id, NULL);
    return rc ? db_error(store, QWDLOGNO(00216), rc, "deleting a session") : NULL;
}

qwd_error_t *qwd_store_sweep(qwd_store_t *store)
{
    apr_int64_t now = apr_time_sec(apr_time_now());
    int nrows = 0;
    int rc = exec_stmt(store, "qwd_sweep", &nrows, num(store, now - ENDED_KEEP_S),
                       num(store, now - PENDING_MAX_AGE_S), NULL);
    if (rc == 0) {
        rc = exec_stmt(store, "qwd_share_sweep", &nrows, NULL); /* the shares of those rows */
    }
    return rc ? db_error(store, QWDLOGNO(00217), rc, "sweeping old sessions") : NULL;
}

static const char *entry(qwd_store_t *store, apr_dbd_row_t *row, int column)
{
    const char *value = apr_dbd_get_entry(store->dbd->driver, row, column);
    return value ? apr_pstrdup(store->q->r->pool, value) : NULL;
}

static qwd_error_t *select_rows(qwd_store_t *store, const char *label, int n, const char **params,
                                apr_array_header_t **rows)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *dbrow;
    apr_pool_t *pool = store->q->r->pool;
    int rc = select_stmt(store, label, &res, n, params);
    *rows = apr_array_make(pool, 8, sizeof(qwd_row_t *));
    if (rc) {
        return db_error(store, QWDLOGNO(00218), rc, "reading sessions");
    }
    while (apr_dbd_get_row(store->dbd->driver, pool, res, &dbrow, -1) == 0) {
        qwd_row_t *row = apr_pcalloc(pool, sizeof(*row));
        const char *v;
        row->id = entry(store, dbrow, 0);
        row->owner = entry(store, dbrow, 1);
        row->machine = entry(store, dbrow, 2);
        row->cpu = (v = entry(store, dbrow, 3)) ? atoi(v) : 0;
        row->memory_mib = (v = entry(store, dbrow, 4)) ? atoi(v) : 0;
        row->oneshot = (v = entry(store, dbrow, 5)) ? atoi(v) : 0;
        row->state = entry(store, dbrow, 6);
        row->helper_id = entry(store, dbrow, 7);
        row->created = (v = entry(store, dbrow, 8)) ? apr_atoi64(v) : 0;
        row->expires = (v = entry(store, dbrow, 9)) ? apr_atoi64(v) : 0;
        row->ended = (v = entry(store, dbrow, 10)) ? apr_atoi64(v) : 0;
        row->ended_reason = entry(store, dbrow, 11);
        APR_ARRAY_PUSH(*rows, qwd_row_t *) = row;
    }
    return NULL;
}

qwd_error_t *qwd_store_get(qwd_store_t *store, const char *id, qwd_row_t **row)
{
    apr_array_header_t *rows;
    qwd_error_t *e = select_rows(store, "qwd_get", 1, &id, &rows);
    *row = (!e && rows->nelts) ? APR_ARRAY_IDX(rows, 0, qwd_row_t *) : NULL;
    return e;
}

qwd_error_t *qwd_store_get_by_link(qwd_store_t *store, const char *link_key, qwd_row_t **row)
{
    apr_array_header_t *rows;
    qwd_error_t *e = select_rows(store, "qwd_get_by_link", 1, &link_key, &rows);
    *row = (!e && rows->nelts) ? APR_ARRAY_IDX(rows, 0, qwd_row_t *) : NULL;
    return e;
}

qwd_error_t *qwd_store_list(qwd_store_t *store, const char *owner, apr_array_header_t **rows)
{
    return owner ? select_rows(store, "qwd_list_owner", 1, &owner, rows)
                 : select_rows(store, "qwd_list_all", 0, NULL, rows);
}

qwd_error_t *qwd_store_list_live(qwd_store_t *store, const char *owner, apr_array_header_t **rows)
{
    return owner ? select_rows(store, "qwd_list_owner_live", 1, &owner, rows)
                 : select_rows(store, "qwd_list_all_live", 0, NULL, rows);
}

qwd_error_t *qwd_store_run(qwd_store_t *store, const char *label, int *nrows, int n,
                           const char **params)
{
    int ignored = 0;
    int rc = apr_dbd_pquery(store->dbd->driver, store->q->r->pool, store->dbd->handle,
                            nrows ? nrows : &ignored, statement(store, label), n, params);
    return rc ? db_error(store, QWDLOGNO(00219), rc, label) : NULL;
}

qwd_error_t *qwd_store_rows(qwd_store_t *store, const char *label, int n, const char **params,
                            int ncols, apr_array_header_t **rows)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *dbrow;
    int rc = select_stmt(store, label, &res, n, params), i;
    *rows = apr_array_make(store->q->r->pool, 8, sizeof(const char **));
    if (rc) {
        return db_error(store, QWDLOGNO(03810), rc, label);
    }
    while (apr_dbd_get_row(store->dbd->driver, store->q->r->pool, res, &dbrow, -1) == 0) {
        const char **values = apr_pcalloc(store->q->r->pool, ncols * sizeof(const char *));
        for (i = 0; i < ncols; i++) {
            values[i] = entry(store, dbrow, i);
        }
        APR_ARRAY_PUSH(*rows, const char **) = values;
    }
    return NULL;
}

qwd_error_t *qwd_store_first_row(qwd_store_t *store, const char *label, int n, const char **params,
                                 int ncols, const char ***values)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *dbrow;
    int rc = select_stmt(store, label, &res, n, params), i;
    *values = NULL;
    if (rc) {
        return db_error(store, QWDLOGNO(00220), rc, label);
    }
    while (apr_dbd_get_row(store->dbd->driver, store->q->r->pool, res, &dbrow, -1) == 0) {
        if (*values) {
            continue; /* read to the end: the driver resets the statement there */
        }
        *values = apr_pcalloc(store->q->r->pool, ncols * sizeof(const char *));
        for (i = 0; i < ncols; i++) {
            (*values)[i] = entry(store, dbrow, i);
        }
    }
    return NULL;
}
