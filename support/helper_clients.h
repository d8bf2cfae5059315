/* SPDX-License-Identifier: Apache-2.0 */
/* Connections of qwd-helper's clients: accept with the SO_PEERCRED check, non-blocking line
 * reading with the size limit and idle timeout, buffered replies, and replies that wait for
 * sessions (start, stop, purge) while the connection's later requests wait behind them. */
#ifndef QWD_HELPER_CLIENTS_H
#define QWD_HELPER_CLIENTS_H

#include <sys/types.h>

#include "helper.h"

/* Accepts connections on listen_fd (its poll events come through h->events). Peers other than
 * root and the helper's user must be in allowed_gid (when allowed_gid_set). */
void helper_clients_init(helper *h, int listen_fd, int allowed_gid_set, gid_t allowed_gid);

/* Sessions changed: sends the replies whose wait is over, then goes on with the requests that
 * queued up behind them. */
void helper_clients_sessions_changed(helper *h);

/* Closes clients whose request line is overdue (QWD_ERR_TIMEOUT). */
void helper_clients_tick(helper *h);

void helper_clients_close_all(helper *h);

#endif
