/* SPDX-License-Identifier: Apache-2.0 */
/* The frame shared by every HTML page (head, stylesheet, navigation, footer) and small
 * escaping helpers: every user-supplied string goes through qwd_h() before it is written. */
#ifndef QWD_HTML_H
#define QWD_HTML_H

#include "qwd_request.h"

/* Sets the content type and writes the page head up to the opening of <main>. */
void qwd_html_begin(qwd_req_t *q, const char *title);
void qwd_html_end(qwd_req_t *q);

/* Before qwd_html_begin: the page loads this script of QwdStaticURL (CSP allows 'self'). */
void qwd_html_use_script(qwd_req_t *q, const char *name);
/* The URL of a file of htdocs/: QwdStaticURL + name, else beside QwdStylesheet; NULL when
 * neither is set. */
const char *qwd_html_static_url(qwd_req_t *q, const char *name);

/* text HTML-escaped (quotes too), in r->pool; NULL → "". */
const char *qwd_h(qwd_req_t *q, const char *text);

/* The absolute path of a route under the Location: qwd_route_url(q, "/sessions"). */
const char *qwd_route_url(qwd_req_t *q, const char *route);

/* <input type=hidden name=csrf value=...> for a state-changing form. */
void qwd_html_csrf_field(qwd_req_t *q);
/* The start of an inline POST form to route with its CSRF field, as text: the same for every
 * row of a table, so a page makes it once and writes it per row. */
const char *qwd_html_inline_form(qwd_req_t *q, const char *route);

/* A 12-hour-free, unambiguous UTC time: "2026-11-23 14:05 UTC". */
const char *qwd_html_time(qwd_req_t *q, apr_int64_t unix_seconds);

#endif
