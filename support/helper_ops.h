/* SPDX-License-Identifier: Apache-2.0 */
/* The ops of the protocol (docs/protocol.md): hello, start, stop, status, list, purge,
 * machines, load. Each validates its arguments and answers through helper_clients. */
#ifndef QWD_HELPER_OPS_H
#define QWD_HELPER_OPS_H

#include "helper.h"

/* The greeting sent on connect (a new reference). */
json_t *helper_ops_greeting(void);

/* Answers one parsed request of c (ptemp is cleared after). */
void helper_ops_dispatch(helper_client *c, apr_pool_t *ptemp, json_t *request);

#endif
