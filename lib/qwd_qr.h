/* SPDX-License-Identifier: Apache-2.0 */
/* QR codes as inline SVG (libqrencode): the result page shows the viewer link as a code a
 * phone or tablet can scan. Pure C + APR + libqrencode. */
#ifndef QWD_QR_H
#define QWD_QR_H

#include <apr_pools.h>

/* An <svg> element drawing the QR code of text (error correction M, 4-module quiet zone, black
 * on white), module_px pixels per module (1..64), allocated in pool. The SVG holds no text of
 * the input, so it needs no escaping. Returns NULL when text is empty or too long to encode. */
char *qwd_qr_svg(apr_pool_t *pool, const char *text, int module_px);

/* The modules per side (without quiet zone) of text's code, or -1 (for tests and layout). */
int qwd_qr_width(const char *text);

#endif
