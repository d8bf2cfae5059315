/* SPDX-License-Identifier: Apache-2.0 */
/* Screens compared the way readiness needs it (ready_screen_still, docs/instant-on.md): a
 * screen is cut into 16x16-pixel tiles and two screens differ by how many tiles changed, so a
 * blinking cursor or a clock (a tile or two) does not count as the screen changing, while a
 * line of new text does. */
#ifndef QWD_SCREEN_H
#define QWD_SCREEN_H

#include <apr_pools.h>

#define QWD_SCREEN_TILE 16
/* At most this many tiles may differ between two screens called "the same". */
#define QWD_SCREEN_SAME_TILES 2

typedef struct qwd_screen {
    int width;
    int height;
    int tile_count;
    apr_uint64_t *tiles; /* a hash per tile, row by row */
} qwd_screen;

/* Reads a binary PPM (P6, maxval 255: what QMP screendump writes) of len bytes into *screen
 * (tiles in pool). Returns NULL, or why it is not such an image. */
const char *qwd_screen_from_ppm(apr_pool_t *pool, const unsigned char *data, apr_size_t len,
                                qwd_screen *screen);

/* How many tiles differ between a and b; every tile when their sizes differ. */
int qwd_screen_tiles_changed(const qwd_screen *a, const qwd_screen *b);

#endif
