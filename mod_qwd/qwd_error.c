/* SPDX-License-Identifier: Apache-2.0 */
/* The failure record (qwd_request.h) every part of the module returns: made here, without
 * httpd's output functions, so unit tests and fuzz targets link it; qwd_fail.c sends it. */
#include "qwd_request.h"

#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>

qwd_error_t *qwd_err(qwd_req_t *q, int status, const char *logno, const char *code, const char *fmt,
                     ...)
{
    qwd_error_t *e = apr_pcalloc(q->r->pool, sizeof(*e));
    va_list ap;
    va_start(ap, fmt);
    e->message = apr_pvsprintf(q->r->pool, fmt, ap);
    va_end(ap);
    e->status = status;
    e->logno = logno;
    e->code = code;
    e->level = status >= 500                                               ? APLOG_ERR
               : (status == HTTP_UNAUTHORIZED || status == HTTP_FORBIDDEN) ? APLOG_WARNING
                                                                           : APLOG_INFO;
    return e;
}
