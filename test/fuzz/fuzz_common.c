/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the fuzz targets (fuzz.h): APR start-up and splitting an input into the
 * fields a target feeds to the parser it exercises. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

void fuzz_apr_init(void)
{
    static int done;
    if (!done) {
        apr_initialize();
        done = 1;
    }
}

char *fuzz_text(apr_pool_t *pool, const uint8_t *data, size_t size)
{
    char *text = apr_palloc(pool, size + 1);
    if (size) {
        memcpy(text, data, size);
    }
    text[size] = '\0';
    return text;
}

char *fuzz_line(char **text)
{
    char *line = *text, *newline = strchr(line, '\n');
    if (newline) {
        *newline = '\0';
        *text = newline + 1;
    }
    else {
        *text = line + strlen(line);
    }
    return line;
}
