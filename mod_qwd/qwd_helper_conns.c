/* SPDX-License-Identifier: Apache-2.0 */
/* The per-child cache of idle helper connections: a short list under a mutex (worker and
 * event MPMs share it between threads). Each connection lives in its own unmanaged pool, so
 * making and dropping one never touches a pool another thread uses.
 *
 * Why not apr_reslist, as mod_dbd does: a reslist makes every resource itself, through one
 * constructor with fixed parameters that can answer only an apr_status_t, and it counts what
 * it made (ntotal, hmax). Our connections are made by qwd_helper_client.c, per request: it
 * retries ECONNREFUSED/ENOENT with a doubling backoff while the helper restarts and words the
 * helper's own refusal (its error code and message in the greeting) into the 503 and the
 * QWD00101 line — none of which a constructor can hand back. Handing the reslist connections it
 * did not make (apr_reslist_release) breaks its counts; and where we bound only the idle
 * connections (IDLE_MAX), a reslist bounds all of them (hmax) and makes a request beyond that
 * wait. And QwdHelperSocket is a per-directory setting, so
 * it would take one reslist per socket path, in a map under a mutex of our own anyway. What
 * remains is this list: a time-to-live check and the EOF check before reuse, the two things a
 * reslist would add nothing to. */
#include "qwd_helper_conns.h"
#include "qwd_proto_client.h"

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

/* The helper closes a connection that sends nothing for client_timeout (10 s by default):
 * keep idle ones well under that. */
#define IDLE_TTL apr_time_from_sec(5)
/* Idle connections kept per child at most; more are closed when given back. */
#define IDLE_MAX 16

typedef struct idle_conn {
    struct idle_conn *next;
    const char *socket_path; /* in pool */
    struct qwd_proto_client *client;
    apr_pool_t *pool;
    apr_time_t since;
} idle_conn;

static apr_thread_mutex_t *lock;
static idle_conn *idle;
static int idle_count;

void qwd_helper_conns_child_init(apr_pool_t *pchild)
{
    if (apr_thread_mutex_create(&lock, APR_THREAD_MUTEX_DEFAULT, pchild) != APR_SUCCESS) {
        lock = NULL; /* no cache: one connection per request, as without it */
    }
}

struct qwd_proto_client *qwd_helper_conns_take(const char *socket_path, apr_pool_t **pool)
{
    apr_time_t now = apr_time_now();
    while (lock) {
        idle_conn *found = NULL, **link;
        apr_thread_mutex_lock(lock);
        for (link = &idle; *link; link = &(*link)->next) {
            if (!strcmp((*link)->socket_path, socket_path)) {
                found = *link;
                *link = found->next;
                idle_count--;
                break;
            }
        }
        apr_thread_mutex_unlock(lock);
        if (!found) {
            return NULL;
        }
        if (now - found->since < IDLE_TTL && qwd_proto_client_idle_ok(found->client)) {
            *pool = found->pool;
            return found->client;
        }
        apr_pool_destroy(found->pool); /* closes its socket */
    }
    return NULL;
}

void qwd_helper_conns_give_back(const char *socket_path, struct qwd_proto_client *client,
                                apr_pool_t *pool)
{
    idle_conn *kept = NULL;
    if (lock) {
        apr_thread_mutex_lock(lock);
        if (idle_count < IDLE_MAX) {
            kept = apr_palloc(pool, sizeof *kept);
            kept->socket_path = apr_pstrdup(pool, socket_path);
            kept->client = client;
            kept->pool = pool;
            kept->since = apr_time_now();
            /* most recent first: the next request takes the freshest */
            kept->next = idle;
            idle = kept;
            idle_count++;
        }
        apr_thread_mutex_unlock(lock);
    }
    if (!kept) {
        apr_pool_destroy(pool);
    }
}
