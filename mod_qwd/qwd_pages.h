/* SPDX-License-Identifier: Apache-2.0 */
/* The HTML routes: the form and its result (qwd_page_form.c), the user's sessions
 * (qwd_page_sessions.c) and the admins' monitor (qwd_page_monitor.c). Each returns what the
 * handler returns. */
#ifndef QWD_PAGES_H
#define QWD_PAGES_H

#include "qwd_request.h"

int qwd_page_form(qwd_req_t *q);          /* GET / */
int qwd_page_create(qwd_req_t *q);        /* POST / */
int qwd_page_sessions(qwd_req_t *q);      /* GET /sessions */
int qwd_page_sessions_post(qwd_req_t *q); /* POST /sessions: login, stop */
int qwd_page_monitor(qwd_req_t *q);       /* GET /monitor */
int qwd_page_monitor_post(qwd_req_t *q);  /* POST /monitor: stop, stop_all */

/* Shared by the pages: reads a form body and checks its CSRF token. */
qwd_error_t *qwd_page_read_form(qwd_req_t *q);
/* Redirects (303) to a route after a successful POST. */
int qwd_page_redirect(qwd_req_t *q, const char *route);

#endif
