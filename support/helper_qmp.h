/* SPDX-License-Identifier: Apache-2.0 */
/* QMP conversations with the helper's VMs: greeting, qmp_capabilities, then a few commands in
 * order. Driven by the event loop (the loop never waits for a VM), with a deadline each. */
#ifndef QWD_HELPER_QMP_H
#define QWD_HELPER_QMP_H

#include <jansson.h>

#include "helper_events.h"

/* How long an exchange with a VM may take: a healthy QEMU answers in about a millisecond; one
 * whose QMP socket another client holds never sends its greeting. */
#define QMP_TIMEOUT_MS 500

typedef struct helper_qmp helper_qmp;

/* One command: its JSON line (the newline is added), and an fd passed along with it
 * (SCM_RIGHTS, as getfd wants), or -1. The conversation keeps its own copies of both. */
typedef struct helper_qmp_command {
    const char *line;
    int fd;
} helper_qmp_command;

typedef enum {
    QMP_OK,     /* every command returned */
    QMP_SENT,   /* every command was sent, but the last answer did not come: QEMU went away
                   (as it may after quit) or the deadline passed */
    QMP_FAILED, /* no greeting, an error answer, or the deadline passed earlier */
} helper_qmp_result;

/* The end of a conversation: answer is the last command's "return" value (QMP_OK, borrowed
 * for the call), else NULL. The conversation is gone once this returns. */
typedef void helper_qmp_done(void *data, helper_qmp_result result, json_t *answer);

/* Starts a conversation with the QMP socket at path: greeting, qmp_capabilities, then commands
 * in order, each sent after the previous one returned; events are skipped. Returns NULL,
 * calling nothing, when the socket cannot be reached. */
helper_qmp *helper_qmp_start(helper_events *events, const char *path,
                             const helper_qmp_command *commands, int count, int timeout_ms,
                             helper_qmp_done *done, void *data);

/* Ends a conversation without calling its done. */
void helper_qmp_cancel(helper_qmp *qmp);

/* Runs one conversation to its end on its own (at startup, before the loop runs). *answer
 * (when answer is not NULL): the last command's return value, a new reference, or NULL. */
helper_qmp_result helper_qmp_run(const char *path, const helper_qmp_command *commands, int count,
                                 int timeout_ms, json_t **answer);

/* Command lines. */
#define QMP_QUIT "{\"execute\":\"quit\"}"
#define QMP_QUERY_STATUS "{\"execute\":\"query-status\"}"
#define QMP_QUERY_MIGRATE "{\"execute\":\"query-migrate\"}"
/* Saved states leave out RAM that is in a share=on file (the shared warm recipe). */
#define QMP_IGNORE_SHARED                                                        \
    "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":" \
    "[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}"
/* Names the fd passed along with it, for the migrate commands below. */
#define QMP_GETFD_STATE "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"qwdstate\"}}"
#define QMP_MIGRATE_TO_STATE "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:qwdstate\"}}"
#define QMP_MIGRATE_FROM_STATE \
    "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:qwdstate\"}}"

#endif
