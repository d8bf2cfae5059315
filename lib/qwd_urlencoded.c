/* SPDX-License-Identifier: Apache-2.0 */
/* application/x-www-form-urlencoded bodies (the HTML form's default encoding): pairs split at
 * '&' and '=', each part decoded the way httpd's ap_unescape_urlencoded does. */
#include "qwd_urlencoded.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

static int hex_value(char digit)
{
    if (digit >= '0' && digit <= '9') {
        return digit - '0';
    }
    return apr_tolower(digit) - 'a' + 10;
}

const char *qwd_urlencoded_decode(char *text)
{
    char *read = text, *write = text;
    for (; *read; read++, write++) {
        if (*read == '+') {
            *write = ' ';
        }
        else if (*read != '%') {
            *write = *read;
        }
        else {
            int byte;
            if (!apr_isxdigit(read[1]) || !apr_isxdigit(read[2])) {
                return "a '%' is not followed by two hex digits";
            }
            byte = hex_value(read[1]) * 16 + hex_value(read[2]);
            if (byte == 0) {
                return "%00 (a NUL byte) is no text";
            }
            *write = (char)byte;
            read += 2;
        }
    }
    *write = '\0';
    return NULL;
}

const char *qwd_urlencoded_parse(char *body, apr_table_t *fields)
{
    char *state = NULL, *pair;
    for (pair = apr_strtok(body, "&", &state); pair; pair = apr_strtok(NULL, "&", &state)) {
        char *value = strchr(pair, '=');
        const char *why;
        if (value) {
            *value++ = '\0';
        }
        else {
            value = pair + strlen(pair); /* an empty value, writable for the decoder */
        }
        if ((why = qwd_urlencoded_decode(pair)) || (why = qwd_urlencoded_decode(value))) {
            return why;
        }
        if (!apr_table_get(fields, pair)) {
            apr_table_setn(fields, pair, value);
        }
    }
    return NULL;
}
