/* SPDX-License-Identifier: Apache-2.0 */
/* Connections of qwd-helper's clients: accept with the SO_PEERCRED check, non-blocking line
 * reading with the size limit and idle timeout, buffered replies, and replies that wait for
 * sessions to end (stop, purge). */
#ifndef QWD_HELPER_CLIENTS_H
#define QWD_HELPER_CLIENTS_H

#include "helper.h"

/* Accepts every pending connection on h->listen_fd. */
void helper_clients_accept(helper *h);

/* Handles poll() events of c; c may be freed. */
void helper_client_io(helper_client *c, short revents);

/* Queues message (borrowed) for c; close_after closes c once it is written. */
void helper_client_send(helper_client *c, json_t *message, int close_after);

/* Sends an error reply (extra stolen, may be NULL). */
void helper_client_error(helper_client *c, json_t *id, const char *code, const char *message,
                         json_t *extra, int close_after);

/* Holds c's reply to request id until every session of sessions has ended; then answers the
 * stop (one session: its object) or the purge ({"stopped": N}). */
void helper_client_wait(helper_client *c, apr_array_header_t *sessions, json_t *id, int is_purge);

/* A session ended: answers the clients whose wait is over. */
void helper_clients_session_ended(helper *h);

/* Whether some client still waits for s (it must not be forgotten yet). */
int helper_clients_wait_for(helper *h, helper_session *s);

/* Closes clients whose request line is overdue (QWD_ERR_TIMEOUT). */
void helper_clients_tick(helper *h);

void helper_clients_close_all(helper *h);

/* The poll() events c wants. */
short helper_client_events(helper_client *c);

#endif
