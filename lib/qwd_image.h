/* SPDX-License-Identifier: Apache-2.0 */
/* Disk-image formats: what a file's bytes are (magic numbers), what its name states, how the two
 * decide the format it is attached as, and the other files its header makes QEMU open. Pure:
 * the caller reads the bytes (qwd_image_file.h reads them from a machines directory). */
#ifndef QWD_IMAGE_H
#define QWD_IMAGE_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_tables.h>

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

/* The format a machine file's name states by its extension, case-insensitively: ".qcow2"
 * qcow2, ".vdi" vdi, ".vmdk" vmdk, ".vhd" and ".vpc" vpc, ".vhdx" vhdx, ".iso" iso, ".raw" and
 * ".img" raw; NULL for any other name (not a machine). */
const char *qwd_image_name_format(const char *name);

/* The format an image is attached as, from what its name states (qwd_image_name_format) and
 * what its bytes are (qwd_image_format): the name's format when the bytes agree, and "raw" for a
 * hybrid ISO named as a disk (.raw, .img). Any other pair is refused rather than guessed: NULL,
 * with *problem saying why (in pool). */
const char *qwd_image_attach_format(apr_pool_t *pool, const char *name_format,
                                    const char *content_format, const char **problem);

/* A file an image's header makes QEMU open besides the image itself. */
typedef struct qwd_image_ref {
    const char *name;   /* as the header writes it: relative to the image's directory, or not */
    const char *role;   /* "backing file", "data file", "parent", "extent" */
    const char *format; /* the format the header states for it (a qcow2 backing format), or
                           NULL: QEMU probes a backing file or parent, and reads data files and
                           extents as the image's own format says */
    int is_image;       /* a whole image (backing file, parent) whose own header counts too */
} qwd_image_ref;

/* The files the header of an image of format (head_len bytes of its start, footer_len of its
 * end) names: *refs gets an array of qwd_image_ref (empty for a self-contained image). Returns
 * NULL, or why the image cannot be used as a master (in pool): a reference that lies beyond
 * head, an encrypted qcow2, a differencing VHD or VDI. */
const char *qwd_image_references(apr_pool_t *pool, const char *format, const unsigned char *head,
                                 apr_size_t head_len, const unsigned char *footer,
                                 apr_size_t footer_len, apr_array_header_t **refs);

#endif
