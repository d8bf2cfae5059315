/* SPDX-License-Identifier: Apache-2.0 */
/* multipart/form-data parsing (RFC 7578, RFC 2046 delimiters): finds the parts between
 * "--boundary" lines, reads each part's headers and keeps its name, filename and value. */
#include "qwd_multipart.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <string.h>

#define MAX_BOUNDARY 70
#define MAX_PARTS 256

/* memmem without relying on _GNU_SOURCE. */
static const char *find_bytes(const char *haystack, apr_size_t haystack_len, const char *needle,
                              apr_size_t needle_len)
{
    apr_size_t i;
    if (needle_len == 0 || haystack_len < needle_len) {
        return NULL;
    }
    for (i = 0; i + needle_len <= haystack_len; i++) {
        if (haystack[i] == needle[0] && memcmp(haystack + i, needle, needle_len) == 0) {
            return haystack + i;
        }
    }
    return NULL;
}

/* Reads one parameter value after "name=" at *cursor: a token or a quoted string with
 * backslash escapes. Advances *cursor past it. */
static const char *param_value(apr_pool_t *pool, const char **cursor)
{
    const char *s = *cursor;
    char *out, *o;
    if (*s == '"') {
        s++;
        out = o = apr_palloc(pool, strlen(s) + 1);
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) {
                s++;
            }
            *o++ = *s++;
        }
        *o = '\0';
        if (*s == '"') {
            s++;
        }
        *cursor = s;
        return out;
    }
    *cursor = s + strcspn(s, ";");
    return apr_pstrmemdup(pool, s, *cursor - s);
}

/* The value of parameter name in a header value such as `form-data; name="a"; filename="b"`,
 * or NULL. Matches whole parameter names only ("name" does not match "filename"). */
static const char *header_param(apr_pool_t *pool, const char *header, const char *name)
{
    const char *s = strchr(header, ';');
    apr_size_t name_len = strlen(name);
    while (s && *s) {
        const char *key;
        s++;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        key = s;
        s += strcspn(s, "=;");
        if (*s == '=') {
            apr_size_t key_len = s - key;
            while (key_len && (key[key_len - 1] == ' ' || key[key_len - 1] == '\t')) {
                key_len--;
            }
            s++;
            while (*s == ' ' || *s == '\t') {
                s++;
            }
            if (key_len == name_len && strncasecmp(key, name, name_len) == 0) {
                return param_value(pool, &s);
            }
            param_value(pool, &s);
        }
        s = strchr(s, ';');
    }
    return NULL;
}

const char *qwd_multipart_boundary(apr_pool_t *pool, const char *content_type)
{
    const char *boundary;
    apr_size_t len;
    if (!content_type || strncasecmp(content_type, "multipart/form-data", 19) != 0
        || (content_type[19] != ';' && content_type[19] != ' ' && content_type[19] != '\t')) {
        return NULL;
    }
    boundary = header_param(pool, content_type, "boundary");
    if (!boundary) {
        return NULL;
    }
    len = strlen(boundary);
    if (len < 1 || len > MAX_BOUNDARY || boundary[len - 1] == ' ') {
        return NULL;
    }
    return boundary;
}

/* Parses the header block [start, end) of one part into part. */
static const char *parse_part_headers(apr_pool_t *pool, const char *start, const char *end,
                                      qwd_multipart_part_t *part)
{
    char *headers = apr_pstrmemdup(pool, start, end - start);
    char *state = NULL;
    char *line;
    int has_disposition = 0;
    for (line = apr_strtok(headers, "\r\n", &state); line;
         line = apr_strtok(NULL, "\r\n", &state)) {
        char *colon = strchr(line, ':');
        char *value;
        if (!colon) {
            return "part header without a colon";
        }
        *colon = '\0';
        value = colon + 1;
        while (*value == ' ' || *value == '\t') {
            value++;
        }
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (strncasecmp(value, "form-data", 9) != 0) {
                return "part is not form-data";
            }
            has_disposition = 1;
            part->name = header_param(pool, value, "name");
            part->filename = header_param(pool, value, "filename");
        }
        else if (strcasecmp(line, "Content-Type") == 0) {
            part->content_type = apr_pstrdup(pool, value);
        }
    }
    if (!has_disposition || !part->name) {
        return "part without a Content-Disposition name";
    }
    return NULL;
}

const char *qwd_multipart_parse(apr_pool_t *pool, const char *boundary, const char *body,
                                apr_size_t length, apr_array_header_t **parts)
{
    /* delimiter = CRLF "--" boundary; the first one may start the body without the CRLF. */
    const char *delimiter = apr_pstrcat(pool, "\r\n--", boundary, NULL);
    apr_size_t delimiter_len = strlen(delimiter);
    const char *end = body + length;
    const char *cursor;
    apr_array_header_t *result = apr_array_make(pool, 8, sizeof(qwd_multipart_part_t));

    *parts = NULL;
    if (!boundary || !*boundary) {
        return "no boundary";
    }
    if (length >= delimiter_len - 2 && memcmp(body, delimiter + 2, delimiter_len - 2) == 0) {
        cursor = body + delimiter_len - 2;
    }
    else {
        const char *first = find_bytes(body, length, delimiter, delimiter_len);
        if (!first) {
            return "no boundary delimiter in the body";
        }
        cursor = first + delimiter_len;
    }

    for (;;) {
        const char *headers_end, *next;
        qwd_multipart_part_t *part;
        const char *reason;

        /* After a delimiter: "--" closes the body; else optional padding, then CRLF. */
        if (end - cursor >= 2 && cursor[0] == '-' && cursor[1] == '-') {
            break;
        }
        while (cursor < end && (*cursor == ' ' || *cursor == '\t')) {
            cursor++;
        }
        if (end - cursor < 2 || cursor[0] != '\r' || cursor[1] != '\n') {
            return "body ends without a closing delimiter";
        }
        cursor += 2;
        if (result->nelts >= MAX_PARTS) {
            return "too many parts";
        }

        if (end - cursor >= 2 && cursor[0] == '\r' && cursor[1] == '\n') {
            headers_end = cursor; /* no headers at all */
        }
        else {
            headers_end = find_bytes(cursor, end - cursor, "\r\n\r\n", 4);
            if (!headers_end) {
                return "part headers never end";
            }
            headers_end += 2;
        }
        part = apr_array_push(result);
        memset(part, 0, sizeof(*part));
        reason = parse_part_headers(pool, cursor, headers_end, part);
        if (reason) {
            return reason;
        }
        cursor = headers_end + 2;

        next = find_bytes(cursor, end - cursor, delimiter, delimiter_len);
        if (!next) {
            return "body ends without a closing delimiter";
        }
        part->value = apr_pstrmemdup(pool, cursor, next - cursor);
        part->length = next - cursor;
        cursor = next + delimiter_len;
    }
    *parts = result;
    return NULL;
}
