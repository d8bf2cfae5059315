/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of image format detection: small files with each format's magic are written in
 * /tmp and read back the way the helper reads them. */
#include "unit.h"

#include "qwd_image.h"

#include <stdlib.h>
#include <unistd.h>

/* Writes len bytes of data at offset of a fresh temporary file of size bytes, reads its head
 * and footer back and returns the detected format; *virtual_size gets the header's size. */
static const char *detect_written(const void *data, size_t len, size_t offset, size_t size,
                                  apr_uint64_t *virtual_size)
{
    static unsigned char head[QWD_IMAGE_HEAD_SIZE], footer[QWD_IMAGE_FOOTER_SIZE];
    char path[] = "/tmp/qwd-image-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0
        || pwrite(fd, data, len, (off_t)offset) != (ssize_t)len) {
        abort();
    }
    memset(head, 0, sizeof head);
    ssize_t head_len = pread(fd, head, sizeof head, 0);
    size_t footer_len = size >= sizeof footer ? sizeof footer : 0;
    if (footer_len && pread(fd, footer, footer_len, (off_t)(size - footer_len)) < 0) {
        abort();
    }
    close(fd);
    unlink(path);
    const char *format = qwd_image_format(head, (apr_size_t)head_len, footer, footer_len);
    *virtual_size =
        qwd_image_virtual_size(format, head, (apr_size_t)head_len, footer, footer_len, size);
    return format;
}

UNIT_TEST(image_detects_qcow2_with_its_size)
{
    /* magic, version 3, backing offset 0 + size 0, cluster bits, then size = 1 GiB. */
    unsigned char qcow2[32] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
    qcow2[24 + 4] = 0x40; /* 0x0000000040000000 big-endian */
    apr_uint64_t size;
    CHECK_STR(detect_written(qcow2, sizeof qcow2, 0, 4096, &size), "qcow2");
    CHECK_INT(size, 1073741824LL);
}

UNIT_TEST(image_detects_iso_vdi_vmdk_vhdx)
{
    apr_uint64_t size;
    CHECK_STR(detect_written("\x01"
                             "CD001",
                             6, 32768, 40960, &size),
              "iso");
    CHECK_INT(size, 40960);
    CHECK_STR(detect_written("\x7f\x10\xda\xbe", 4, 0x40, 4096, &size), "vdi");
    CHECK_STR(detect_written("KDMV\x01\0\0\0\0\0\0\0\x00\x08\0\0\0\0\0\0", 20, 0, 4096, &size),
              "vmdk");
    CHECK_INT(size, 2048LL * 512);
    CHECK_STR(detect_written("# Disk DescriptorFile\n", 22, 0, 100, &size), "vmdk");
    CHECK_STR(detect_written("vhdxfile", 8, 0, 4096, &size), "vhdx");
}

UNIT_TEST(image_detects_vpc_at_start_or_end)
{
    apr_uint64_t size;
    CHECK_STR(detect_written("conectix", 8, 0, 4096, &size), "vpc");
    CHECK_STR(detect_written("conectix", 8, 8192 - 512, 8192, &size), "vpc");
}

UNIT_TEST(image_without_magic_is_raw)
{
    apr_uint64_t size;
    CHECK_STR(detect_written("hello", 5, 0, 1000, &size), "raw");
    CHECK_INT(size, 1000);
    CHECK_STR(qwd_image_format(NULL, 0, NULL, 0), "raw");
    CHECK_STR(qwd_image_qemu_format("iso"), "raw");
    CHECK_STR(qwd_image_qemu_format("vpc"), "vpc");
}
