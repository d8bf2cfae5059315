/* SPDX-License-Identifier: Apache-2.0 */
/* Renders a libqrencode symbol as one SVG <path>: each horizontal run of dark modules is one
 * rectangle, which keeps the markup small (a 200-character URL is ~6 KB of SVG). */
#include "qwd_qr.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <qrencode.h>
#include <string.h>

#define QUIET_ZONE 4

static QRcode *encode(const char *text)
{
    if (!text || !*text) {
        return NULL;
    }
    /* version 0 = the smallest that fits; case-sensitive 8-bit mode keeps URLs intact */
    return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

int qwd_qr_width(const char *text)
{
    QRcode *code = encode(text);
    int width;
    if (!code) {
        return -1;
    }
    width = code->width;
    QRcode_free(code);
    return width;
}

char *qwd_qr_svg(apr_pool_t *pool, const char *text, int module_px)
{
    QRcode *code = encode(text);
    apr_array_header_t *path;
    int x, y, size;
    char *svg;

    if (!code) {
        return NULL;
    }
    if (module_px < 1 || module_px > 64) {
        module_px = 4;
    }
    size = code->width + 2 * QUIET_ZONE;
    path = apr_array_make(pool, code->width * 4, sizeof(char *));
    for (y = 0; y < code->width; y++) {
        const unsigned char *row = code->data + y * code->width;
        for (x = 0; x < code->width;) {
            int run = 0;
            /* bit 0 of each byte is the module's colour (1 = dark) */
            while (x + run < code->width && (row[x + run] & 1)) {
                run++;
            }
            if (run) {
                *(char **)apr_array_push(path) = apr_psprintf(
                    pool, "M%d %dh%dv1h-%dz", x + QUIET_ZONE, y + QUIET_ZONE, run, run);
                x += run;
            }
            else {
                x++;
            }
        }
    }
    svg = apr_psprintf(pool,
                       "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qwd-qr\" width=\"%d\" "
                       "height=\"%d\" viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
                       "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                       "<path fill=\"#000\" d=\"%s\"/></svg>",
                       size * module_px, size * module_px, size, size, size, size,
                       apr_array_pstrcat(pool, path, 0));
    QRcode_free(code);
    return svg;
}
