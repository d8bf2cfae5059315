/* SPDX-License-Identifier: Apache-2.0 */
/* Create arguments (qwd_create_args.h): the API's JSON member types, then the same defaults and
 * bounds for the form and the API. */
#include "qwd_create_args.h"
#include "qwd_body.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <string.h>
#include <http_protocol.h>

qwd_error_t *qwd_json_type_error(qwd_req_t *q, const char *field, const char *type)
{
    qwd_error_t *e =
        qwd_err(q, HTTP_BAD_REQUEST, QWDLOGNO(01001), "bad_field", "%s must be %s.", field, type);
    e->field = field;
    return e;
}

qwd_error_t *qwd_json_int_member(qwd_req_t *q, json_t *body, const char *field, int *value)
{
    json_t *member = json_object_get(body, field);
    if (!member || json_is_null(member)) {
        *value = QWD_UNSET;
        return NULL;
    }
    if (!json_is_integer(member) || json_integer_value(member) < 0
        || json_integer_value(member) > QWD_FIELD_INT_MAX) {
        return qwd_json_type_error(q, field, "a whole number");
    }
    *value = (int)json_integer_value(member);
    return NULL;
}

/* An optional string member (absent or null: NULL). */
static qwd_error_t *string_member(qwd_req_t *q, json_t *body, const char *field, const char **value)
{
    json_t *member = json_object_get(body, field);
    *value = NULL;
    if (!member || json_is_null(member)) {
        return NULL;
    }
    if (!json_is_string(member)) {
        return qwd_json_type_error(q, field, "a string");
    }
    *value = json_string_value(member);
    return NULL;
}

/* video, gpu, shares, scratch_gib and the script's source (docs/data-sessions.md). */
static qwd_error_t *choice_members(qwd_req_t *q, json_t *body, qwd_create_args_t *args)
{
    json_t *gpu = json_object_get(body, "gpu"), *shares = json_object_get(body, "shares"), *name;
    qwd_error_t *e;
    size_t i;
    if ((e = string_member(q, body, "video", &args->video))
        || (e = string_member(q, body, "script", &args->script.name))
        || (e = string_member(q, body, "script_text", &args->script.text))
        || (e = string_member(q, body, "script_url", &args->script.url))
        || (e = qwd_json_int_member(q, body, "scratch_gib", &args->scratch_gib))) {
        return e;
    }
    if (gpu && !json_is_null(gpu)) {
        if (!json_is_boolean(gpu)) {
            return qwd_json_type_error(q, "gpu", "true or false");
        }
        args->gpu = json_is_true(gpu);
    }
    if (shares && !json_is_null(shares)) {
        if (!json_is_array(shares) || json_array_size(shares) > QWD_PROTO_SHARES_MAX) {
            return qwd_json_type_error(q, "shares", "a list of folder names");
        }
        args->shares =
            apr_array_make(q->r->pool, (int)json_array_size(shares) + 1, sizeof(const char *));
        json_array_foreach (shares, i, name) {
            if (!json_is_string(name)) {
                return qwd_json_type_error(q, "shares", "a list of folder names");
            }
            APR_ARRAY_PUSH(args->shares, const char *) = json_string_value(name);
        }
    }
    return NULL;
}

void qwd_create_args_init(qwd_create_args_t *args)
{
    memset(args, 0, sizeof(*args));
    args->cpu = args->memory_mib = args->lifetime_s = args->oneshot = QWD_UNSET;
    args->gpu = args->scratch_gib = QWD_UNSET;
}

qwd_error_t *qwd_create_args_from_json(qwd_req_t *q, json_t *body, qwd_create_args_t *args)
{
    json_t *machine = json_object_get(body, "machine");
    json_t *oneshot = json_object_get(body, "oneshot");
    qwd_error_t *e;
    if (machine && !json_is_string(machine)) {
        return qwd_json_type_error(q, "machine", "a string");
    }
    if (oneshot && !json_is_boolean(oneshot) && !json_is_null(oneshot)) {
        return qwd_json_type_error(q, "oneshot", "true or false");
    }
    args->machine = json_string_value(machine);
    args->oneshot = json_is_true(oneshot);
    if ((e = qwd_json_int_member(q, body, "cpu", &args->cpu))
        || (e = qwd_json_int_member(q, body, "memory_mib", &args->memory_mib))
        || (e = qwd_json_int_member(q, body, "lifetime_s", &args->lifetime_s))
        || (e = choice_members(q, body, args))) {
        return e;
    }
    return NULL;
}

static void set_string(json_t *object, const char *member, const char *value)
{
    if (value) {
        json_object_set_new(object, member, json_string(value));
    }
}

static void set_int(json_t *object, const char *member, int value)
{
    if (value != QWD_UNSET) {
        json_object_set_new(object, member, json_integer(value));
    }
}

json_t *qwd_create_args_to_json(const qwd_create_args_t *args)
{
    json_t *object = json_object();
    int i;
    set_string(object, "machine", args->machine);
    set_int(object, "cpu", args->cpu);
    set_int(object, "memory_mib", args->memory_mib);
    set_int(object, "lifetime_s", args->lifetime_s);
    if (args->oneshot != QWD_UNSET) {
        json_object_set_new(object, "oneshot", json_boolean(args->oneshot));
    }
    set_string(object, "video", args->video);
    if (args->gpu != QWD_UNSET) {
        json_object_set_new(object, "gpu", json_boolean(args->gpu));
    }
    if (args->shares) {
        json_t *shares = json_array();
        for (i = 0; i < args->shares->nelts; i++) {
            json_array_append_new(shares,
                                  json_string(APR_ARRAY_IDX(args->shares, i, const char *)));
        }
        json_object_set_new(object, "shares", shares);
    }
    set_int(object, "scratch_gib", args->scratch_gib);
    set_string(object, "script", args->script.name);
    set_string(object, "script_text", args->script.text);
    set_string(object, "script_url", args->script.url);
    return object;
}

qwd_error_t *qwd_create_bad_field(qwd_req_t *q, const char *logno, const char *field,
                                  const char *fmt, ...)
{
    qwd_error_t *e;
    va_list ap;
    va_start(ap, fmt);
    e = qwd_err(q, HTTP_BAD_REQUEST, logno, "bad_field", "%s", apr_pvsprintf(q->r->pool, fmt, ap));
    va_end(ap);
    e->field = field;
    return e;
}

qwd_error_t *qwd_create_args_check(qwd_req_t *q, qwd_create_args_t *args)
{
    qwd_dir_config_t *cfg = q->cfg;
    int max_lifetime = qwd_cfg_max_lifetime(cfg);
    int max_cpu = qwd_cfg_max_cpu_per_user(cfg);
    int max_memory = qwd_cfg_max_memory_per_user(cfg);

    if (args->cpu == QWD_UNSET) {
        args->cpu = qwd_cfg_default_cpu(cfg);
    }
    if (args->memory_mib == QWD_UNSET) {
        args->memory_mib = qwd_cfg_default_memory(cfg);
    }
    if (args->lifetime_s == QWD_UNSET) {
        args->lifetime_s = qwd_cfg_default_lifetime(cfg);
        if (args->lifetime_s > max_lifetime) {
            args->lifetime_s = max_lifetime;
        }
    }
    if (args->oneshot == QWD_UNSET) {
        args->oneshot = 0;
    }
    if (args->cpu < 1 || args->cpu > max_cpu) {
        return qwd_create_bad_field(q, QWDLOGNO(00502), "cpu", "cpu must be between %d and %d.", 1,
                                    max_cpu);
    }
    if (args->memory_mib < QWD_PROTO_MIN_MEMORY_MIB || args->memory_mib > max_memory) {
        return qwd_create_bad_field(q, QWDLOGNO(00503), q->api ? "memory_mib" : "memory",
                                    "memory must be between %d and %d MiB.",
                                    QWD_PROTO_MIN_MEMORY_MIB, max_memory);
    }
    if (args->lifetime_s < QWD_MIN_LIFETIME_S || args->lifetime_s > max_lifetime) {
        return qwd_create_bad_field(q, QWDLOGNO(00504), q->api ? "lifetime_s" : "lifetime",
                                    "lifetime must be between %d and %d seconds.",
                                    QWD_MIN_LIFETIME_S, max_lifetime);
    }
    if (!args->machine || !*args->machine) {
        return qwd_create_bad_field(q, QWDLOGNO(00505), "machine", "Please choose a machine.");
    }
    return NULL;
}
