/* SPDX-License-Identifier: Apache-2.0 */
/* Disk-image format detection from magic bytes (never from the file name), and the virtual
 * size where the header states it. Pure: the caller reads the bytes. */
#ifndef QWD_IMAGE_H
#define QWD_IMAGE_H

#include <apr.h>

/* Enough of the file's start for every magic, the ISO 9660 one at 32769 included. */
#define QWD_IMAGE_HEAD_SIZE 34816
/* The VHD (vpc) footer sits in the last 512 bytes of a fixed-size image. */
#define QWD_IMAGE_FOOTER_SIZE 512

/* The format of an image whose first head_len bytes are head and last footer_len bytes are
 * footer (footer may be NULL): "qcow2", "vdi", "vmdk", "vpc", "vhdx", "iso" or "raw" (no known
 * magic). All are QEMU -F names except "iso", which is raw data attached as a CD-ROM. */
const char *qwd_image_format(const unsigned char *head, apr_size_t head_len,
                             const unsigned char *footer, apr_size_t footer_len);

/* The guest-visible size in bytes, from the header of format, or file_size for raw and iso;
 * 0 when the header does not say (vhdx, descriptor-only vmdk). */
apr_uint64_t qwd_image_virtual_size(const char *format, const unsigned char *head,
                                    apr_size_t head_len, const unsigned char *footer,
                                    apr_size_t footer_len, apr_uint64_t file_size);

/* The qemu-img/-drive format name for a detected format ("iso" → "raw"). */
const char *qwd_image_qemu_format(const char *format);

#endif
