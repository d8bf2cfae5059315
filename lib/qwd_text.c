/* SPDX-License-Identifier: Apache-2.0 */
/* Small text helpers shared by the `key = value` readers (helper config, warm sidecars):
 * one definition, so both read blanks the same way. */
#include "qwd_text.h"

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
