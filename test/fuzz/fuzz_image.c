/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: disk-image format detection and virtual sizes (lib/qwd_image.c) from an image's
 * head and footer. Input: the head; its last QWD_IMAGE_FOOTER_SIZE bytes (or all of a shorter
 * input) are also given as the footer, as the helper reads both from one file. */
#include "fuzz.h"
#include "qwd_image.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t head_len = size < QWD_IMAGE_HEAD_SIZE ? size : QWD_IMAGE_HEAD_SIZE;
    size_t footer_len = size < QWD_IMAGE_FOOTER_SIZE ? size : QWD_IMAGE_FOOTER_SIZE;
    /* exact-size copies: a read past either shows as an overflow */
    unsigned char *head = malloc(head_len ? head_len : 1);
    unsigned char *footer = malloc(footer_len ? footer_len : 1);
    memcpy(head, data, head_len);
    memcpy(footer, data + size - footer_len, footer_len);
    const char *format = qwd_image_format(head, head_len, footer, footer_len);
    if (format) {
        volatile apr_uint64_t bytes =
            qwd_image_virtual_size(format, head, head_len, footer, footer_len, (apr_uint64_t)size);
        (void)bytes;
        if (!qwd_image_qemu_format(format)) {
            abort();
        }
    }
    free(head);
    free(footer);
    return 0;
}
