/* SPDX-License-Identifier: Apache-2.0 */
/* The HTML routes: the form and its result (qwd_page_form.c), the user's sessions
 * (qwd_page_sessions.c) and the admins' monitor (qwd_page_monitor.c). Each returns what the
 * handler returns. */
#ifndef QWD_PAGES_H
#define QWD_PAGES_H

#include "qwd_create_args.h"
#include "qwd_request.h"

int qwd_page_form(qwd_req_t *q);          /* GET / */
int qwd_page_create(qwd_req_t *q);        /* POST / */
int qwd_page_sessions(qwd_req_t *q);      /* GET /sessions */
int qwd_page_sessions_post(qwd_req_t *q); /* POST /sessions: login, stop */
int qwd_page_monitor(qwd_req_t *q);       /* GET /monitor */
int qwd_page_monitor_post(qwd_req_t *q);  /* POST /monitor: stop, stop_all */

/* Shared by the pages: reads a form body and checks its CSRF token. */
qwd_error_t *qwd_page_read_form(qwd_req_t *q);
/* The create a form asks for (machine, cpu, memory, lifetime, oneshot, the chosen machine's
 * video card, GPU, folders and scratch disk, the start-up script) into *args: 400 bad_field for
 * a number that is not one. Checked against the machines by qwd_session_create. The form's
 * create reads it, and so does a login that waits for a mailed link or code (qwd_otp.c). */
qwd_error_t *qwd_page_create_args(qwd_req_t *q, qwd_create_args_t *args);
/* Redirects (303) to a route after a successful POST. */
int qwd_page_redirect(qwd_req_t *q, const char *route);

#endif
