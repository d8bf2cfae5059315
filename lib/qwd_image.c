/* SPDX-License-Identifier: Apache-2.0 */
/* Recognises the image formats QEMU can back an overlay with, by their magic numbers, so a
 * renamed file is still opened with the right driver and a raw file is never probed. */
#include "qwd_image.h"

#include <string.h>

static int has_bytes(const unsigned char *data, apr_size_t len, apr_size_t offset,
                     const char *magic, apr_size_t magic_len)
{
    return data && len >= offset + magic_len && memcmp(data + offset, magic, magic_len) == 0;
}

static apr_uint64_t big_endian64(const unsigned char *p)
{
    apr_uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static apr_uint64_t little_endian64(const unsigned char *p)
{
    apr_uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

#define VDI_SIGNATURE_OFFSET 0x40
#define ISO9660_MAGIC_OFFSET 32769 /* "CD001" in the first volume descriptor (sector 16) */

const char *qwd_image_format(const unsigned char *head, apr_size_t head_len,
                             const unsigned char *footer, apr_size_t footer_len)
{
    if (has_bytes(head, head_len, 0, "QFI\xfb", 4)) {
        return "qcow2";
    }
    /* VDI: a text banner, then the binary signature 0xbeda107f (little-endian). */
    if (has_bytes(head, head_len, VDI_SIGNATURE_OFFSET, "\x7f\x10\xda\xbe", 4)) {
        return "vdi";
    }
    if (has_bytes(head, head_len, 0, "KDMV", 4)
        || has_bytes(head, head_len, 0, "# Disk DescriptorFile", 21)) {
        return "vmdk";
    }
    if (has_bytes(head, head_len, 0, "vhdxfile", 8)) {
        return "vhdx";
    }
    /* Dynamic VHDs start with a copy of the footer; fixed ones only have it at the end. */
    if (has_bytes(head, head_len, 0, "conectix", 8)
        || has_bytes(footer, footer_len, 0, "conectix", 8)) {
        return "vpc";
    }
    if (has_bytes(head, head_len, ISO9660_MAGIC_OFFSET, "CD001", 5)) {
        return "iso";
    }
    return "raw";
}

#define QCOW2_SIZE_OFFSET 24
#define VDI_SIZE_OFFSET 0x170
#define VMDK_CAPACITY_OFFSET 12
#define VPC_CURRENT_SIZE_OFFSET 48

apr_uint64_t qwd_image_virtual_size(const char *format, const unsigned char *head,
                                    apr_size_t head_len, const unsigned char *footer,
                                    apr_size_t footer_len, apr_uint64_t file_size)
{
    if (!strcmp(format, "qcow2") && head_len >= QCOW2_SIZE_OFFSET + 8) {
        return big_endian64(head + QCOW2_SIZE_OFFSET);
    }
    if (!strcmp(format, "vdi") && head_len >= VDI_SIZE_OFFSET + 8) {
        return little_endian64(head + VDI_SIZE_OFFSET);
    }
    if (!strcmp(format, "vmdk") && has_bytes(head, head_len, 0, "KDMV", 4)
        && head_len >= VMDK_CAPACITY_OFFSET + 8) {
        return little_endian64(head + VMDK_CAPACITY_OFFSET) * 512;
    }
    if (!strcmp(format, "vpc")) {
        const unsigned char *vhd_footer =
            has_bytes(head, head_len, 0, "conectix", 8) ? head : footer;
        apr_size_t vhd_len = vhd_footer == head ? head_len : footer_len;
        if (vhd_footer && vhd_len >= VPC_CURRENT_SIZE_OFFSET + 8) {
            return big_endian64(vhd_footer + VPC_CURRENT_SIZE_OFFSET);
        }
        return 0;
    }
    if (!strcmp(format, "raw") || !strcmp(format, "iso")) {
        return file_size;
    }
    return 0;
}

const char *qwd_image_qemu_format(const char *format)
{
    return strcmp(format, "iso") == 0 ? "raw" : format;
}
