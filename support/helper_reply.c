/* SPDX-License-Identifier: Apache-2.0 */
/* Line assembly and the reading of QMP and guest-agent lines (helper_reply.h), apart from the
 * sockets so that a fuzz target drives them with any bytes. */
#include "helper_reply.h"

#include <string.h>

char *helper_lines_space(helper_lines *lines, size_t *room)
{
    *room = sizeof lines->buffer - 1 - lines->length;
    return lines->buffer + lines->length;
}

int helper_lines_added(helper_lines *lines, size_t n, helper_line_fn *on_line, void *data)
{
    lines->length += n;
    lines->buffer[lines->length] = '\0';
    char *start = lines->buffer, *newline;
    while ((newline = memchr(start, '\n', lines->length - (size_t)(start - lines->buffer)))) {
        *newline = '\0';
        int skipped = lines->skipping;
        lines->skipping = 0;
        /* a NUL inside the line ends it early for the reader: no QMP line has one */
        if (!skipped && on_line(data, start) < 0) {
            return -1;
        }
        start = newline + 1;
    }
    lines->length -= (size_t)(start - lines->buffer);
    memmove(lines->buffer, start, lines->length);
    if (lines->length == sizeof lines->buffer - 1) {
        lines->skipping = 1;
        lines->length = 0;
    }
    return 0;
}

helper_qmp_line_kind helper_qmp_line(const char *line, json_t **message)
{
    *message = json_loads(line, 0, NULL);
    if (!json_is_object(*message) || json_object_get(*message, "event")) {
        return QMP_LINE_OTHER;
    }
    if (json_object_get(*message, "QMP")) {
        return QMP_LINE_GREETING;
    }
    if (json_object_get(*message, "error")) {
        return QMP_LINE_ERROR;
    }
    if (json_object_get(*message, "return")) {
        return QMP_LINE_RETURN;
    }
    return QMP_LINE_OTHER;
}

int helper_agent_reply(const char *peeked, size_t length, size_t room)
{
    const char *newline = memchr(peeked, '\n', length);
    if (!newline) {
        return length == room ? -1 : 0; /* no agent answers that long */
    }
    /* one request per connection: only the first line is the answer */
    size_t line_length = (size_t)(newline - peeked);
    static const char key[] = "\"return\"";
    for (size_t i = 0; i + sizeof key - 1 <= line_length; i++) {
        if (!memcmp(peeked + i, key, sizeof key - 1)) {
            return 1;
        }
    }
    return -1;
}
