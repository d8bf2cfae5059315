/* SPDX-License-Identifier: Apache-2.0 */
/* Request bodies, size-limited by QwdMaxRequestBody: urlencoded and multipart/form-data forms
 * into q->fields, JSON objects for the API, and typed field values with per-field errors. */
#ifndef QWD_BODY_H
#define QWD_BODY_H

#include "qwd_request.h"

/* Reads and parses a form body into q->fields (first value of a name wins). */
qwd_error_t *qwd_body_form(qwd_req_t *q);
/* Reads a JSON object body (an empty body is {}); bound to r->pool. */
qwd_error_t *qwd_body_json(qwd_req_t *q, json_t **object);

/* The largest whole number a form or JSON field takes; each route checks its own range after. */
#define QWD_FIELD_INT_MAX 100000000

/* A form field, NULL when absent. */
const char *qwd_field(qwd_req_t *q, const char *name);
/* Parses text as an int; NULL/"" gives default_value. 400 naming field when not a number. */
qwd_error_t *qwd_field_int(qwd_req_t *q, const char *text, const char *field, int default_value,
                           int *value);

#endif
