/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what a guest's QEMU and guest agent send back (support/helper_reply.c): the bytes
 * come in reads of varying size through the line assembler, each line is read as QMP, and the
 * start of the input is read as the guest agent's answer. Input: the first byte sets the read
 * size, the rest is the stream. */
#include "fuzz.h"
#include "helper_reply.h"

#include <stdlib.h>
#include <string.h>

#define AGENT_ROOM 4095

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    return 0;
}

static int on_line(void *data, const char *line)
{
    int *lines = data;
    json_t *message;
    helper_qmp_line_kind kind = helper_qmp_line(line, &message);
    if (kind == QMP_LINE_RETURN && !json_object_get(message, "return")) {
        abort();
    }
    json_decref(message);
    /* a QMP conversation ends at the first error: stop as the client does */
    return kind == QMP_LINE_ERROR && ++*lines > 3 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t chunk = (size_t)data[0] * 37 + 1, offset = 1;
    helper_lines *lines = calloc(1, sizeof *lines);
    int errors = 0;
    while (offset < size) {
        size_t room;
        char *space = helper_lines_space(lines, &room);
        size_t n = size - offset < chunk ? size - offset : chunk;
        n = n < room ? n : room;
        memcpy(space, data + offset, n);
        offset += n;
        if (helper_lines_added(lines, n, on_line, &errors) < 0) {
            break;
        }
    }
    free(lines);

    char peeked[AGENT_ROOM + 1];
    size_t length = size - 1 < AGENT_ROOM ? size - 1 : AGENT_ROOM;
    memcpy(peeked, data + 1, length);
    peeked[length] = '\0';
    int answer = helper_agent_reply(peeked, length, AGENT_ROOM);
    if (answer < -1 || answer > 1) {
        abort();
    }
    return 0;
}
