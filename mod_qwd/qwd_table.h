/* SPDX-License-Identifier: Apache-2.0 */
/* The session table shared by /sessions and /monitor (who is watching, when idle stops them),
 * and the stop both offer. */
#ifndef QWD_TABLE_H
#define QWD_TABLE_H

#include "qwd_request.h"
#include "qwd_store.h"

/* Writes what goes below a session's row: a row of its own spanning the table's columns. */
typedef void qwd_table_below_fn(qwd_req_t *q, const qwd_row_t *row, int columns);

/* Rows (qwd_row_t *) as a table with Open and Stop (posting to action_route), then below
 * (may be NULL) under each row. */
void qwd_table_sessions(qwd_req_t *q, apr_array_header_t *rows, int show_owner,
                        const char *action_route, qwd_table_below_fn *below);
void qwd_table_helper_down(qwd_req_t *q);
/* Stops session id if q->user owns it or is an admin. */
qwd_error_t *qwd_table_stop(qwd_req_t *q, const char *id);

#endif
