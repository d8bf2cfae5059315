/* SPDX-License-Identifier: Apache-2.0 */
/* The ops of the protocol (docs/protocol.md): hello, start, stop, status, list, purge,
 * machines, load, warm, warm_list, warm_drop, share, unshare. Each validates its arguments and says what to
 * answer: a message now, or a reply that waits for sessions (start: until its VM is launched;
 * stop, purge: until they ended). Connections are helper_clients' business. */
#ifndef QWD_HELPER_OPS_H
#define QWD_HELPER_OPS_H

#include <jansson.h>
#include <sys/types.h>

#include "helper.h"

/* The connection a request came on. */
typedef struct helper_peer {
    uid_t uid;
    pid_t pid;
    int said_hello;
} helper_peer;

/* A reply that waits for sessions (allocated in the pool given to helper_ops_dispatch). */
typedef struct helper_wait helper_wait;

/* What to do about one request. */
typedef struct helper_answer {
    json_t *message; /* send this now (a new reference), or NULL: wait */
    int close_after; /* close the connection once message is written */
    int said_hello;  /* hello succeeded */
    helper_wait *wait;
} helper_answer;

/* The greeting sent on connect (a new reference). */
json_t *helper_ops_greeting(void);

/* Answers one parsed request (ptemp is cleared after; a wait lives in a subpool of wait_pool,
 * freed with its reply). */
void helper_ops_dispatch(helper *h, apr_pool_t *ptemp, apr_pool_t *wait_pool,
                         const helper_peer *peer, json_t *request, helper_answer *answer);

/* Whether the sessions w waits for are there: its reply can go. */
int helper_wait_over(const helper_wait *w);

/* The reply of a wait that is over (a new reference); the wait is done with its sessions and
 * freed. */
json_t *helper_wait_reply(helper_wait *w);

/* The client is gone: the wait is done with its sessions and freed. */
void helper_wait_abandon(helper_wait *w);

#endif
