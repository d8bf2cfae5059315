/* SPDX-License-Identifier: Apache-2.0 */
/* Tile hashes of a PPM screen: FNV-1a 64 over each tile's pixels. */
#include "qwd_screen.h"

#include <apr_strings.h>
#include <ctype.h>

/* One header number of a PPM: skips whitespace and # comments. Returns -1 when absent. */
static long header_number(const unsigned char *data, apr_size_t len, apr_size_t *at)
{
    for (;;) {
        while (*at < len && isspace(data[*at])) {
            (*at)++;
        }
        if (*at < len && data[*at] == '#') {
            while (*at < len && data[*at] != '\n') {
                (*at)++;
            }
            continue;
        }
        break;
    }
    long value = 0;
    apr_size_t start = *at;
    while (*at < len && isdigit(data[*at]) && value < 1000000) {
        value = value * 10 + (data[(*at)++] - '0');
    }
    return *at > start ? value : -1;
}

const char *qwd_screen_from_ppm(apr_pool_t *pool, const unsigned char *data, apr_size_t len,
                                qwd_screen *screen)
{
    if (len < 2 || data[0] != 'P' || data[1] != '6') {
        return "not a binary PPM (P6)";
    }
    apr_size_t at = 2;
    long width = header_number(data, len, &at), height = header_number(data, len, &at),
         maxval = header_number(data, len, &at);
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384 || maxval != 255) {
        return "bad PPM header";
    }
    at++; /* the single whitespace byte before the pixels */
    if (len < at || len - at < (apr_size_t)(width * height * 3)) {
        return "truncated PPM";
    }
    const unsigned char *pixels = data + at;
    int columns = (int)(width + QWD_SCREEN_TILE - 1) / QWD_SCREEN_TILE;
    int rows = (int)(height + QWD_SCREEN_TILE - 1) / QWD_SCREEN_TILE;
    screen->width = (int)width;
    screen->height = (int)height;
    screen->tile_count = columns * rows;
    screen->tiles = apr_palloc(pool, (apr_size_t)screen->tile_count * sizeof *screen->tiles);
    for (int i = 0; i < screen->tile_count; i++) {
        screen->tiles[i] = 0xcbf29ce484222325ULL;
    }
    for (long y = 0; y < height; y++) {
        const unsigned char *row = pixels + y * width * 3;
        apr_uint64_t *tile_row = screen->tiles + (y / QWD_SCREEN_TILE) * columns;
        for (long x = 0; x < width * 3; x++) {
            apr_uint64_t *tile = &tile_row[x / (3 * QWD_SCREEN_TILE)];
            *tile = (*tile ^ row[x]) * 0x100000001b3ULL;
        }
    }
    return NULL;
}

int qwd_screen_tiles_changed(const qwd_screen *a, const qwd_screen *b)
{
    if (a->width != b->width || a->height != b->height) {
        return a->tile_count > b->tile_count ? a->tile_count : b->tile_count;
    }
    int changed = 0;
    for (int i = 0; i < a->tile_count; i++) {
        changed += a->tiles[i] != b->tiles[i];
    }
    return changed;
}
