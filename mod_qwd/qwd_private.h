/* SPDX-License-Identifier: Apache-2.0 */
/* What no other local user may read: the session database (its directory, the database and
 * SQLite's -wal and -shm beside it) and every QwdSecretFile. Checked once, at startup. */
#ifndef QWD_PRIVATE_H
#define QWD_PRIVATE_H

#include <httpd.h>

/* post_config (parent, before qwd_secret_post_config reads the keys): logs, naming the path
 * and its mode, and returns HTTP_INTERNAL_SERVER_ERROR when one of them is open to other
 * users; OK otherwise. Paths that do not exist yet are created private later (the database by
 * qwd_store_child_init, a missing key file by qwd_secret.c). */
int qwd_private_post_config(apr_pool_t *ptemp, server_rec *main_server);

#endif
