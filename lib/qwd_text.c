/* SPDX-License-Identifier: Apache-2.0 */
/* Small text helpers shared by the `key = value` readers (helper config, warm sidecars):
 * one definition, so both read blanks the same way. */
#include "qwd_text.h"

#include <apr_strings.h>

#include <ctype.h>
#include <string.h>

char *qwd_trim(char *text)
{
    while (isspace((unsigned char)*text)) {
        text++;
    }
    char *end = text + strlen(text);
    while (end > text && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return text;
}

const char *qwd_substitute(apr_pool_t *pool, const char *text, const char *const *pairs)
{
    const char *result = "";
    const char *rest = text;
    while (*rest) {
        const char *earliest = NULL, *value = NULL;
        size_t length = 0;
        for (int i = 0; pairs[i]; i += 2) {
            const char *at = strstr(rest, pairs[i]);
            if (at && (!earliest || at < earliest)) {
                earliest = at;
                length = strlen(pairs[i]);
                value = pairs[i + 1];
            }
        }
        if (!earliest) {
            break;
        }
        result = apr_pstrcat(pool, result, apr_pstrndup(pool, rest, (apr_size_t)(earliest - rest)),
                             value, NULL);
        rest = earliest + length;
    }
    return apr_pstrcat(pool, result, rest, NULL);
}
