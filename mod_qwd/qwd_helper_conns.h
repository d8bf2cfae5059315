/* SPDX-License-Identifier: Apache-2.0 */
/* Idle helper connections kept by each Apache child between requests, so a page does not pay
 * a connect, greeting and hello (and the helper an accept) every time. A kept connection is
 * handed out only while it is younger than the helper's idle timeout allows and its socket
 * shows no EOF; anything else is closed and a fresh one made. */
#ifndef QWD_HELPER_CONNS_H
#define QWD_HELPER_CONNS_H

#include <apr_pools.h>

struct qwd_proto_client;

/* Sets up the cache of this child process. */
void qwd_helper_conns_child_init(apr_pool_t *pchild);

/* A kept connection to socket_path (its own pool in *pool), or NULL. */
struct qwd_proto_client *qwd_helper_conns_take(const char *socket_path, apr_pool_t **pool);

/* Keeps a healthy connection (made in pool, an unmanaged pool) for a later request, or closes
 * it when the cache is full. */
void qwd_helper_conns_give_back(const char *socket_path, struct qwd_proto_client *client,
                                apr_pool_t *pool);

#endif
