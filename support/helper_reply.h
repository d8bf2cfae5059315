/* SPDX-License-Identifier: Apache-2.0 */
/* What QEMU's QMP and the guest agent send back, read as pure text (no socket, no event loop):
 * lines assembled from reads, then each line told apart. Fuzzed by test/fuzz/fuzz_qmp.c. */
#ifndef QWD_HELPER_REPLY_H
#define QWD_HELPER_REPLY_H

#include <jansson.h>
#include <stddef.h>

/* Longer lines (QMP events can be long) are skipped whole, never mis-read. */
#define HELPER_LINE_MAX 8192

/* Lines of a byte stream: read into helper_lines_space, then hand the count to
 * helper_lines_added, which gives each whole line to its callback. */
typedef struct helper_lines {
    char buffer[HELPER_LINE_MAX];
    size_t length;
    int skipping; /* inside a line longer than the buffer */
} helper_lines;

/* A line without its newline; returns < 0 to stop (the reader is gone). */
typedef int helper_line_fn(void *data, const char *line);

/* Where the next read goes, and how many bytes fit there (*room > 0). */
char *helper_lines_space(helper_lines *lines, size_t *room);

/* n bytes were read into the space: runs on_line for each line they complete. Returns -1 when
 * on_line stopped (lines must not be used again), else 0. */
int helper_lines_added(helper_lines *lines, size_t n, helper_line_fn *on_line, void *data);

typedef enum {
    QMP_LINE_OTHER,    /* an event, or nothing QMP would send: not an answer */
    QMP_LINE_GREETING, /* {"QMP": ...} */
    QMP_LINE_ERROR,    /* {"error": ...} */
    QMP_LINE_RETURN,   /* {"return": ...}: *message holds it (the caller decrefs) */
} helper_qmp_line_kind;

/* What one QMP line is. *message is the parsed line (or NULL), the caller's to decref. */
helper_qmp_line_kind helper_qmp_line(const char *line, json_t **message);

/* The guest agent's answer so far: the first length bytes (peeked, NUL-terminated) of what it
 * sent, room the most a peek could see. 1: a "return" line; 0: not a whole line yet; -1: an
 * error, or a line too long for any agent answer. */
int helper_agent_reply(const char *peeked, size_t length, size_t room);

#endif
