/* SPDX-License-Identifier: Apache-2.0 */
/* What a create request asks for, checked before any store or helper is asked: the API's JSON
 * body to arguments, then defaults and bounds. No I/O: unit tests and fuzzing link it. */
#ifndef QWD_CREATE_ARGS_H
#define QWD_CREATE_ARGS_H

#include "qwd_request.h"

typedef struct qwd_create_args {
    const char *machine;
    int cpu, memory_mib, lifetime_s, oneshot; /* QWD_UNSET → the configured default */
} qwd_create_args_t;

/* The shortest lifetime a session may ask for (s). */
#define QWD_MIN_LIFETIME_S 60

/* Reads the members of the API's JSON object body (machine, cpu, memory_mib, lifetime_s,
 * oneshot) into *args: 400 bad_field naming the member of the wrong type. Bounds come after. */
qwd_error_t *qwd_create_args_from_json(qwd_req_t *q, json_t *body, qwd_create_args_t *args);

/* Applies the configured defaults to unset arguments and checks each against its bounds and
 * the per-user limits: 400 bad_field naming the field. Whether the machine exists is the
 * helper's to say (qwd_session_create). */
qwd_error_t *qwd_create_args_check(qwd_req_t *q, qwd_create_args_t *args);

#endif
