/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of screen comparison by tiles (lib/qwd_screen.c), as ready_screen_still uses it. */
#include "unit.h"

#include "qwd_screen.h"

#include <apr_strings.h>
#include <stdlib.h>

/* A 64x48 PPM, all grey, with a "# comment" in its header. */
static unsigned char *grey_ppm(apr_pool_t *pool, apr_size_t *len)
{
    const char *header = "P6\n# screendump\n64 48\n255\n";
    apr_size_t header_len = strlen(header), pixels = 64 * 48 * 3;
    unsigned char *data = apr_palloc(pool, header_len + pixels);
    memcpy(data, header, header_len);
    memset(data + header_len, 0x80, pixels);
    *len = header_len + pixels;
    return data;
}

static void paint(unsigned char *data, apr_size_t len, int x, int y)
{
    unsigned char *pixels = data + len - 64 * 48 * 3;
    pixels[(y * 64 + x) * 3] ^= 0xff;
}

UNIT_TEST(screen_cursor_blink_is_one_tile_a_text_line_is_many)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    apr_size_t len;
    unsigned char *data = grey_ppm(pool, &len);
    qwd_screen before, after;
    CHECK(qwd_screen_from_ppm(pool, data, len, &before) == NULL);
    CHECK(before.width == 64 && before.height == 48 && before.tile_count == 12);
    CHECK(qwd_screen_from_ppm(pool, data, len, &after) == NULL);
    CHECK(qwd_screen_tiles_changed(&before, &after) == 0);
    paint(data, len, 33, 20); /* a cursor: one tile */
    CHECK(qwd_screen_from_ppm(pool, data, len, &after) == NULL);
    CHECK(qwd_screen_tiles_changed(&before, &after) == 1);
    CHECK(qwd_screen_tiles_changed(&before, &after) <= QWD_SCREEN_SAME_TILES);
    for (int x = 0; x < 64; x += 4) { /* a line of text across the screen */
        paint(data, len, x, 40);
    }
    CHECK(qwd_screen_from_ppm(pool, data, len, &after) == NULL);
    CHECK(qwd_screen_tiles_changed(&before, &after) == 4 + 1);
    apr_pool_destroy(pool);
}

UNIT_TEST(screen_refuses_what_is_not_a_whole_ppm)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    apr_size_t len;
    unsigned char *data = grey_ppm(pool, &len);
    qwd_screen screen;
    CHECK(qwd_screen_from_ppm(pool, data, len - 1, &screen) != NULL);
    CHECK(qwd_screen_from_ppm(pool, (const unsigned char *)"P5\n1 1\n255\n\0", 13, &screen)
          != NULL);
    CHECK(qwd_screen_from_ppm(pool, (const unsigned char *)"P6\n1 1\n65535\n\0\0\0\0\0\0", 19,
                              &screen)
          != NULL);
    CHECK(qwd_screen_from_ppm(pool, (const unsigned char *)"P6\n-1 1\n255\n", 12, &screen) != NULL);
    apr_pool_destroy(pool);
}
