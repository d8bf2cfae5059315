/* SPDX-License-Identifier: Apache-2.0 */
/* What a create request asks for, checked before any store or helper is asked: the API's JSON
 * body to arguments, then defaults and bounds. No I/O: unit tests and fuzzing link it. */
#ifndef QWD_CREATE_ARGS_H
#define QWD_CREATE_ARGS_H

#include "qwd_request.h"
#include "qwd_script_source.h"

typedef struct qwd_create_args {
    const char *machine;
    int cpu, memory_mib, lifetime_s, oneshot; /* QWD_UNSET → the configured default */
    /* Sessions for data analysis (docs/data-sessions.md), each checked against what the
     * machine offers: NULL / QWD_UNSET / empty when not asked for. */
    const char *video;
    int gpu;
    apr_array_header_t *shares; /* optional shares chosen (const char *) */
    int scratch_gib;            /* an ISO machine's scratch disk, ≤ QwdMaxScratchDisk */
    qwd_script_request_t script;
} qwd_create_args_t;

/* Arguments that ask for nothing (every field unset). */
void qwd_create_args_init(qwd_create_args_t *args);

/* The shortest lifetime a session may ask for (s). */
#define QWD_MIN_LIFETIME_S 60

/* Any JSON body of the API: a 400 bad_field saying what field must be (type: "a string"...),
 * and an optional whole number member from 0 to QWD_FIELD_INT_MAX (absent or null:
 * QWD_UNSET). */
qwd_error_t *qwd_json_type_error(qwd_req_t *q, const char *field, const char *type);
qwd_error_t *qwd_json_int_member(qwd_req_t *q, json_t *body, const char *field, int *value);

/* Reads the members of the API's JSON object body (machine, cpu, memory_mib, lifetime_s,
 * oneshot; video, gpu, shares, scratch_gib, script, script_text, script_url) into *args: 400
 * bad_field naming the member of the wrong type. Bounds come after. The strings of *args point
 * into body. */
qwd_error_t *qwd_create_args_from_json(qwd_req_t *q, json_t *body, qwd_create_args_t *args);

/* The same members as a new JSON object, each set argument and nothing else, so that
 * qwd_create_args_from_json reads back the same arguments: how a create that waits for a mailed
 * link or code (qwd_otp.c) keeps every choice it was given until it is checked and started. */
json_t *qwd_create_args_to_json(const qwd_create_args_t *args);

/* Applies the configured defaults to unset arguments and checks each against its bounds and
 * the per-user limits: 400 bad_field naming the field. Whether the machine exists is the
 * helper's to say (qwd_session_create). */
qwd_error_t *qwd_create_args_check(qwd_req_t *q, qwd_create_args_t *args);

/* A 400 bad_field naming field, logged with logno, its message from fmt. */
qwd_error_t *qwd_create_bad_field(qwd_req_t *q, const char *logno, const char *field,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
