/* SPDX-License-Identifier: Apache-2.0 */
/* Refuses to start when state that opens desktops is open to other local users: the database
 * (whoever reads it learns who runs what; a copy of it must still open nothing, qwd_links.c)
 * and the key that makes every link and ticket. Apache does not start rather than serve. */
#include "qwd_private.h"
#include "qwd_config.h"
#include "qwd_logno.h"
#include "qwd_store.h"

#include <apr_file_info.h>
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

APLOG_USE_MODULE(qwd);

/* APR's protection bits as the octal mode a chmod takes. */
static unsigned int octal_mode(apr_fileperms_t protection)
{
    return ((protection >> 8) & 7) << 6 | ((protection >> 4) & 7) << 3 | (protection & 7);
}

/* Why path is open to other users, or NULL (also when it does not exist). */
static const char *open_to_others(apr_pool_t *pool, const char *path)
{
    apr_finfo_t info;
    if (apr_stat(&info, path, APR_FINFO_PROT | APR_FINFO_TYPE, pool) != APR_SUCCESS) {
        return NULL;
    }
    if (!(info.protection & (APR_WREAD | APR_WWRITE | APR_WEXECUTE))) {
        return NULL;
    }
    return apr_psprintf(pool, "%s %s is open to other users (mode %04o): chmod o-rwx %s",
                        info.filetype == APR_DIR ? "directory" : "file", path,
                        octal_mode(info.protection), path);
}

/* The directory, the database and SQLite's files beside it, in that order. */
static const char *database_problem(apr_pool_t *pool, const char *database)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", NULL};
    const char *slash = strrchr(database, '/');
    const char *problem = NULL;
    int i;
    if (slash && slash != database) {
        problem = open_to_others(pool, apr_pstrmemdup(pool, database, slash - database));
    }
    for (i = 0; !problem && suffixes[i]; i++) {
        problem = open_to_others(pool, apr_pstrcat(pool, database, suffixes[i], NULL));
    }
    return problem;
}

int qwd_private_post_config(apr_pool_t *ptemp, server_rec *main_server)
{
    const char *database = qwd_store_sqlite_path(ptemp), *problem;
    server_rec *s;
    if (database && (problem = database_problem(ptemp, database))) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, main_server,
                     QWDLOGNO(03101) "DBDParams: %s. The session database and its directory "
                                     "must be Apache's user's alone (install -d -m 0700)",
                     problem);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (s = main_server; s; s = s->next) {
        qwd_server_config_t *scfg = ap_get_module_config(s->module_config, &qwd_module);
        if (scfg->secret_file && (problem = open_to_others(ptemp, scfg->secret_file))) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                         QWDLOGNO(03102) "QwdSecretFile: %s. Whoever reads the key can open "
                                         "every desktop",
                         problem);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}
