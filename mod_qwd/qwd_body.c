/* SPDX-License-Identifier: Apache-2.0 */
/* Reading bodies: one size limit for every route, then the parser its Content-Type names
 * (ap_parse_form_data only knows urlencoded; lib/qwd_multipart does the rest). */
#include "qwd_body.h"
#include "qwd_multipart.h"
#include "qwd_protocol.h"
#include "qwd_urlencoded.h"

#include <errno.h>

#include <apr_strings.h>
#include <http_protocol.h>
#include <httpd.h>

/* The buffer a body is read into first (bytes); it doubles up to QwdMaxRequestBody. */
#define BODY_FIRST_BUFFER 8192
#define URLENCODED "application/x-www-form-urlencoded"

static qwd_error_t *read_body(qwd_req_t *q, char **body, apr_size_t *length)
{
    request_rec *r = q->r;
    apr_off_t limit = qwd_cfg_max_body(q->cfg);
    apr_size_t used = 0, size = BODY_FIRST_BUFFER;
    char *buffer;
    int rc;

    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return qwd_err(q, rc, QWDLOGNO(00401), "bad_request",
                       "The request body could not be read.");
    }
    if (r->remaining > limit) {
        return qwd_err(q, HTTP_REQUEST_ENTITY_TOO_LARGE, QWDLOGNO(00402), "too_large",
                       "The request is larger than %" APR_OFF_T_FMT " bytes.", limit);
    }
    buffer = apr_palloc(r->pool, size + 1);
    if (ap_should_client_block(r)) {
        long got;
        for (;;) {
            if (used == size) {
                char *bigger;
                size *= 2;
                bigger = apr_palloc(r->pool, size + 1);
                memcpy(bigger, buffer, used);
                buffer = bigger;
            }
            got = ap_get_client_block(r, buffer + used, size - used);
            if (got < 0) {
                return qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00403), "bad_request",
                               "The request body could not be read.");
            }
            if (got == 0) {
                break;
            }
            used += got;
            if ((apr_off_t)used > limit) {
                /* chunked bodies have no length up front: stop reading at the limit */
                r->connection->keepalive = AP_CONN_CLOSE;
                return qwd_err(q, HTTP_REQUEST_ENTITY_TOO_LARGE, QWDLOGNO(00404), "too_large",
                               "The request is larger than %" APR_OFF_T_FMT " bytes.", limit);
            }
        }
    }
    buffer[used] = '\0';
    *body = buffer;
    *length = used;
    return NULL;
}

static qwd_error_t *parse_urlencoded(qwd_req_t *q, char *body)
{
    const char *reason = qwd_urlencoded_parse(body, q->fields);
    if (reason) {
        qwd_error_t *e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00405), "bad_request",
                                 "The form data is not correctly encoded.");
        e->detail = reason;
        return e;
    }
    return NULL;
}

static qwd_error_t *parse_multipart(qwd_req_t *q, const char *boundary, const char *body,
                                    apr_size_t length)
{
    apr_array_header_t *parts;
    const char *reason = qwd_multipart_parse(q->r->pool, boundary, body, length, &parts);
    int i;
    if (reason) {
        qwd_error_t *e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00406), "bad_request",
                                 "The multipart form data is malformed.");
        e->detail = reason;
        return e;
    }
    for (i = 0; i < parts->nelts; i++) {
        const qwd_multipart_part_t *part = &APR_ARRAY_IDX(parts, i, qwd_multipart_part_t);
        /* no field of ours is a file; a value with NUL bytes is no valid text either */
        if (part->filename || strlen(part->value) != part->length) {
            continue;
        }
        if (!apr_table_get(q->fields, part->name)) {
            apr_table_setn(q->fields, part->name, part->value);
        }
    }
    return NULL;
}

qwd_error_t *qwd_body_form(qwd_req_t *q)
{
    const char *type = apr_table_get(q->r->headers_in, "Content-Type");
    const char *boundary;
    char *body;
    apr_size_t length;
    qwd_error_t *e;

    q->fields = apr_table_make(q->r->pool, 10);
    if ((e = read_body(q, &body, &length))) {
        return e;
    }
    if (length == 0) {
        return NULL;
    }
    if (type && !strncasecmp(type, URLENCODED, strlen(URLENCODED))) {
        return parse_urlencoded(q, body);
    }
    if ((boundary = qwd_multipart_boundary(q->r->pool, type))) {
        return parse_multipart(q, boundary, body, length);
    }
    return qwd_err(q, HTTP_UNSUPPORTED_MEDIA_TYPE, QWDLOGNO(00407), "bad_request",
                   "Forms must be sent as application/x-www-form-urlencoded or "
                   "multipart/form-data.");
}

qwd_error_t *qwd_body_json(qwd_req_t *q, json_t **object)
{
    char *body;
    apr_size_t length;
    json_error_t error;
    qwd_error_t *e = read_body(q, &body, &length);
    if (e) {
        return e;
    }
    if (length == 0) {
        *object = qwd_json_pool_bind(q->r->pool, json_object());
        return NULL;
    }
    *object = json_loadb(body, length, JSON_REJECT_DUPLICATES, &error);
    if (!*object || !json_is_object(*object)) {
        if (*object) {
            json_decref(*object);
        }
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00408), "bad_json",
                    "The body must be a JSON object.");
        e->detail = error.text;
        return e;
    }
    qwd_json_pool_bind(q->r->pool, *object);
    return NULL;
}

const char *qwd_field(qwd_req_t *q, const char *name)
{
    return q->fields ? apr_table_get(q->fields, name) : NULL;
}

qwd_error_t *qwd_field_int(qwd_req_t *q, const char *text, const char *field, int default_value,
                           int *value)
{
    char *end;
    apr_int64_t parsed;
    qwd_error_t *e;
    if (!text || !*text) {
        *value = default_value;
        return NULL;
    }
    errno = 0;
    parsed = apr_strtoi64(text, &end, 10);
    if (*end || errno || parsed < 0 || parsed > QWD_FIELD_INT_MAX) {
        e = qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(00409), "bad_field", "%s must be a whole number.",
                    field);
        e->field = field;
        return e;
    }
    *value = (int)parsed;
    return NULL;
}
