/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lib/qwd_qr: sizes of the symbol, the SVG's shape, and refusals. (The pytest
 * suite decodes a rendered code with zbarimg.) */
#include "unit.h"
#include "qwd_qr.h"

#include <apr_general.h>
#include <apr_strings.h>

UNIT_TEST(qr_width_grows_with_the_text)
{
    CHECK_INT(qwd_qr_width("HELLO"), 21); /* version 1 */
    CHECK(qwd_qr_width("http://127.0.0.1:8080/novnc/vnc.html?host=127.0.0.1&port=6080"
                       "&path=%3Ftoken%3Dabcdefghijklmnopqrstuv&autoconnect=1&resize=remote")
          > 21);
    CHECK_INT(qwd_qr_width(""), -1);
    CHECK_INT(qwd_qr_width(NULL), -1);
}

UNIT_TEST(qr_svg_shape)
{
    apr_pool_t *pool;
    char *svg;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    svg = qwd_qr_svg(pool, "HELLO", 5);
    CHECK(svg != NULL);
    if (svg) {
        CHECK(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
        /* 21 modules + 2 * 4 quiet zone = 29 */
        CHECK(strstr(svg, "viewBox=\"0 0 29 29\"") != NULL);
        CHECK(strstr(svg, "width=\"145\"") != NULL);
        /* the top-left finder pattern starts at the quiet zone with a run of 7 dark modules */
        CHECK(strstr(svg, "M4 4h7v1h-7z") != NULL);
        CHECK(strstr(svg, "HELLO") == NULL);
        CHECK(strcmp(svg + strlen(svg) - 6, "</svg>") == 0);
    }
    CHECK(qwd_qr_svg(pool, "", 4) == NULL);
    /* over the capacity of version 40 at level M (2331 bytes) */
    {
        char *huge = apr_palloc(pool, 4001);
        memset(huge, 'a', 4000);
        huge[4000] = '\0';
        CHECK(qwd_qr_svg(pool, huge, 4) == NULL);
    }
    apr_pool_destroy(pool);
}
