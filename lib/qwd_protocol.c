/* SPDX-License-Identifier: Apache-2.0 */
/* The qwd-helper JSON-lines codec: builds requests, replies and errors, and parses one line
 * with the size limit. Both the helper and its clients (qwdctl, mod_qwd) use these. */
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <string.h>

static apr_status_t json_decref_cleanup(void *value)
{
    json_decref(value);
    return APR_SUCCESS;
}

json_t *qwd_json_pool_bind(apr_pool_t *pool, json_t *value)
{
    if (value) {
        apr_pool_cleanup_register(pool, value, json_decref_cleanup, apr_pool_cleanup_null);
    }
    return value;
}

json_t *qwd_proto_request(const char *op, json_t *arguments, json_t *id)
{
    json_t *request = json_object();
    json_object_set_new(request, "execute", json_string(op));
    json_object_set_new(request, "arguments", arguments ? arguments : json_object());
    if (id) {
        json_object_set_new(request, "id", id);
    }
    return request;
}

/* Adds the client's id to a reply, when the request carried one. */
static json_t *with_id(json_t *message, json_t *id)
{
    if (id) {
        json_object_set(message, "id", id);
    }
    return message;
}

json_t *qwd_proto_reply(json_t *result, json_t *id)
{
    json_t *reply = json_object();
    json_object_set_new(reply, "return", result ? result : json_object());
    return with_id(reply, id);
}

json_t *qwd_proto_error(const char *code, const char *message, json_t *extra, json_t *id)
{
    json_t *error = json_object();
    if (extra) {
        json_object_update(error, extra);
        json_decref(extra);
    }
    /* Set after the merge so extra can never overwrite the stable fields. */
    json_object_set_new(error, "code", json_string(code));
    json_object_set_new(error, "message", json_string(message ? message : code));
    json_t *reply = json_object();
    json_object_set_new(reply, "error", error);
    return with_id(reply, id);
}

char *qwd_proto_encode(apr_pool_t *pool, json_t *message)
{
    char *text = json_dumps(message, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text) {
        return NULL;
    }
    apr_size_t len = strlen(text);
    char *line = NULL;
    /* JSON_ENSURE_ASCII escapes every control character, so the line holds no raw '\n'. */
    if (len <= QWD_PROTO_MAX_MESSAGE) {
        line = apr_palloc(pool, len + 2);
        memcpy(line, text, len);
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    free(text);
    return line;
}

json_t *qwd_proto_parse_line(apr_pool_t *pool, const char *line, apr_size_t len,
                             const char **error_code, const char **error_message)
{
    if (len > 0 && line[len - 1] == '\n') {
        len--;
    }
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    if (len > QWD_PROTO_MAX_MESSAGE) {
        *error_code = QWD_ERR_TOO_LARGE;
        *error_message = apr_psprintf(pool, "message longer than %d bytes", QWD_PROTO_MAX_MESSAGE);
        return NULL;
    }
    json_error_t parse_error;
    json_t *message = json_loadb(line, len, JSON_REJECT_DUPLICATES, &parse_error);
    if (!message) {
        *error_code = QWD_ERR_BAD_JSON;
        *error_message = apr_psprintf(pool, "invalid JSON: %s", parse_error.text);
        return NULL;
    }
    if (!json_is_object(message)) {
        json_decref(message);
        *error_code = QWD_ERR_BAD_JSON;
        *error_message = "a message must be a JSON object";
        return NULL;
    }
    return qwd_json_pool_bind(pool, message);
}

const char *qwd_proto_request_parts(json_t *request, const char **op, json_t **arguments,
                                    json_t **id, const char **message)
{
    json_t *execute = json_object_get(request, "execute");
    *id = json_object_get(request, "id");
    if (!json_is_string(execute)) {
        *message = "the request lacks a string \"execute\"";
        return QWD_ERR_BAD_JSON;
    }
    *op = json_string_value(execute);
    *arguments = json_object_get(request, "arguments");
    if (!*arguments) {
        *arguments = json_object();
        json_object_set_new(request, "arguments", *arguments);
    }
    if (!json_is_object(*arguments)) {
        *message = "\"arguments\" must be a JSON object";
        return QWD_ERR_BAD_JSON;
    }
    return NULL;
}
