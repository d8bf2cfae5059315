/* SPDX-License-Identifier: Apache-2.0 */
/* Recognises the image formats QEMU can back an overlay with by their magic numbers, holds the
 * rules that match them with a file's name (docs/machines.md), and reads the file names a
 * header refers to, so that nothing outside the machines directory is ever opened by QEMU. */
#include "qwd_image.h"

#include <apr_strings.h>
#include <string.h>
#include <strings.h>

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

static apr_uint32_t big_endian32(const unsigned char *p)
{
    return (apr_uint32_t)p[0] << 24 | (apr_uint32_t)p[1] << 16 | (apr_uint32_t)p[2] << 8 | p[3];
}

static apr_uint32_t little_endian32(const unsigned char *p)
{
    return (apr_uint32_t)p[3] << 24 | (apr_uint32_t)p[2] << 16 | (apr_uint32_t)p[1] << 8 | p[0];
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
    /* ISO 9660 ("CD001"), or UDF without an ISO 9660 bridge ("BEA01" opens its volume
     * recognition sequence at the same place). */
    if (has_bytes(head, head_len, ISO9660_MAGIC_OFFSET, "CD001", 5)
        || has_bytes(head, head_len, ISO9660_MAGIC_OFFSET, "BEA01", 5)) {
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

static const struct {
    const char *extension;
    const char *format;
} name_formats[] = {
    {".qcow2", "qcow2"}, {".vdi", "vdi"}, {".vmdk", "vmdk"}, {".vhd", "vpc"}, {".vpc", "vpc"},
    {".vhdx", "vhdx"},   {".iso", "iso"}, {".raw", "raw"},   {".img", "raw"},
};

const char *qwd_image_name_format(const char *name)
{
    size_t length = name ? strlen(name) : 0;
    for (size_t i = 0; i < sizeof name_formats / sizeof name_formats[0]; i++) {
        size_t extension_length = strlen(name_formats[i].extension);
        if (length > extension_length
            && !strcasecmp(name + length - extension_length, name_formats[i].extension)) {
            return name_formats[i].format;
        }
    }
    return NULL;
}

/* How a format is spelled to a reader: raw has no header, the others are named by it. */
static const char *described(apr_pool_t *pool, const char *format)
{
    if (!strcmp(format, "raw")) {
        return "raw data (no known image header)";
    }
    if (!strcmp(format, "iso")) {
        return "an ISO 9660 or UDF image";
    }
    return apr_psprintf(pool, "a %s image", strcmp(format, "vpc") ? format : "VHD (vpc)");
}

const char *qwd_image_attach_format(apr_pool_t *pool, const char *name_format,
                                    const char *content_format, const char **problem)
{
    *problem = NULL;
    if (!strcmp(name_format, content_format)) {
        return name_format;
    }
    /* A hybrid ISO (an ISO 9660 volume that also has a partition table) named as a disk is a
     * disk: booting it from a disk is what its name asks for, and raw is safe either way. */
    if (!strcmp(name_format, "raw") && !strcmp(content_format, "iso")) {
        return "raw";
    }
    /* Anything else is refused. A header under a raw name could be guest-written data (or a
     * converted image misnamed), and opening it by its header would follow its references; a
     * header name over other bytes is a broken copy or download. */
    *problem = apr_psprintf(
        pool, "its name says %s but its bytes are %s: rename it (%s) or convert it",
        described(pool, name_format), described(pool, content_format),
        !strcmp(content_format, "raw")   ? ".raw or .img for a raw disk"
        : !strcmp(content_format, "iso") ? ".iso for a CD-ROM, .raw or .img for a disk"
        : !strcmp(content_format, "vpc") ? ".vhd"
                                         : apr_pstrcat(pool, ".", content_format, NULL));
    return NULL;
}

static void add_ref(apr_array_header_t *refs, const char *name, const char *role,
                    const char *format, int is_image)
{
    qwd_image_ref ref = {.name = name, .role = role, .format = format, .is_image = is_image};
    APR_ARRAY_PUSH(refs, qwd_image_ref) = ref;
}

#define QCOW2_BACKING_OFFSET 8
#define QCOW2_BACKING_SIZE 16
#define QCOW2_CRYPT_METHOD 32
#define QCOW2_INCOMPATIBLE 72
#define QCOW2_HEADER_LENGTH 100
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_DATA_FILE 0x44415441U
#define QCOW2_INCOMPATIBLE_DATA_FILE 0x4U /* bit 2: guest data lives in an external file */
#define QCOW2_NAME_MAX 1023

/* A qcow2 header: its backing file (with the backing format of its header extension) and its
 * external data file. */
static const char *qcow2_references(apr_pool_t *pool, const unsigned char *head,
                                    apr_size_t head_len, apr_array_header_t *refs)
{
    if (head_len < QCOW2_V2_HEADER_LENGTH) {
        return "its qcow2 header is cut short";
    }
    apr_uint32_t version = big_endian32(head + 4);
    if (big_endian32(head + QCOW2_CRYPT_METHOD) != 0) {
        return "it is an encrypted qcow2 image (QEMU would need its key)";
    }
    apr_uint64_t incompatible = 0;
    apr_size_t extensions = QCOW2_V2_HEADER_LENGTH;
    if (version >= 3) {
        if (head_len < QCOW2_HEADER_LENGTH + 4) {
            return "its qcow2 header is cut short";
        }
        incompatible = big_endian64(head + QCOW2_INCOMPATIBLE);
        extensions = big_endian32(head + QCOW2_HEADER_LENGTH);
    }
    const char *backing_format = NULL, *data_file = NULL;
    /* Header extensions: type, length, data padded to 8 bytes; type 0 ends them. */
    for (apr_size_t at = extensions;;) {
        if (at > head_len || head_len - at < 8) {
            return "its qcow2 header extensions go beyond the part of the file that is read";
        }
        apr_uint32_t type = big_endian32(head + at), length = big_endian32(head + at + 4);
        if (type == 0) {
            break;
        }
        if (length > head_len - at - 8) {
            return "its qcow2 header extensions go beyond the part of the file that is read";
        }
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            backing_format = apr_pstrndup(pool, (const char *)head + at + 8, length);
        }
        else if (type == QCOW2_EXT_DATA_FILE) {
            data_file = apr_pstrndup(pool, (const char *)head + at + 8, length);
        }
        at += 8 + ((length + 7) & ~(apr_size_t)7);
    }
    apr_uint64_t backing_offset = big_endian64(head + QCOW2_BACKING_OFFSET);
    apr_uint32_t backing_size = big_endian32(head + QCOW2_BACKING_SIZE);
    if (backing_offset) {
        if (backing_size == 0 || backing_size > QCOW2_NAME_MAX || backing_offset > head_len
            || backing_size > head_len - backing_offset) {
            return "its backing file name lies beyond the part of the file that is read";
        }
        add_ref(refs, apr_pstrndup(pool, (const char *)head + backing_offset, backing_size),
                "backing file", backing_format, 1);
    }
    if (incompatible & QCOW2_INCOMPATIBLE_DATA_FILE) {
        if (!data_file || !*data_file) {
            return "it keeps its data in an external file that its header does not name";
        }
        add_ref(refs, data_file, "data file", NULL, 0);
    }
    return NULL;
}

#define VMDK_DESCRIPTOR_OFFSET 28 /* in 512-byte sectors */
#define VMDK_DESCRIPTOR_SIZE 36
#define VMDK_SECTOR 512

/* The value of key="VALUE" in a VMDK descriptor line, or NULL. */
static const char *quoted_value(apr_pool_t *pool, const char *line, const char *key)
{
    size_t key_length = strlen(key);
    if (strncmp(line, key, key_length)) {
        return NULL;
    }
    const char *value = line + key_length;
    value += strspn(value, " \t");
    if (*value++ != '=') {
        return NULL;
    }
    value += strspn(value, " \t");
    if (*value++ != '"') {
        return NULL;
    }
    const char *end = strchr(value, '"');
    return end ? apr_pstrndup(pool, value, (apr_size_t)(end - value)) : NULL;
}

/* A VMDK descriptor: its parent (parentFileNameHint) and, when QEMU reads them (a descriptor
 * file, or a sparse header without capacity), its extents: ACCESS SECTORS TYPE "FILE" [OFFSET]. */
static void vmdk_descriptor_references(apr_pool_t *pool, const char *text, int with_extents,
                                       apr_array_header_t *refs)
{
    char *copy = apr_pstrdup(pool, text), *state;
    for (char *line = apr_strtok(copy, "\r\n", &state); line;
         line = apr_strtok(NULL, "\r\n", &state)) {
        line += strspn(line, " \t");
        const char *parent = quoted_value(pool, line, "parentFileNameHint");
        if (parent && *parent) {
            add_ref(refs, parent, "parent", NULL, 1);
            continue;
        }
        if (!with_extents
            || (strncmp(line, "RW ", 3) && strncmp(line, "RDONLY ", 7)
                && strncmp(line, "NOACCESS ", 9))) {
            continue;
        }
        const char *open = strchr(line, '"'), *close = open ? strchr(open + 1, '"') : NULL;
        if (close) {
            add_ref(refs, apr_pstrndup(pool, open + 1, (apr_size_t)(close - open - 1)), "extent",
                    NULL, 0);
        }
    }
}

static const char *vmdk_references(apr_pool_t *pool, const unsigned char *head, apr_size_t head_len,
                                   apr_array_header_t *refs)
{
    if (!has_bytes(head, head_len, 0, "KDMV", 4)) {
        /* a descriptor file: the whole of its text (the part read) */
        vmdk_descriptor_references(pool, apr_pstrndup(pool, (const char *)head, head_len), 1, refs);
        return NULL;
    }
    if (head_len < VMDK_DESCRIPTOR_SIZE + 8) {
        return "its VMDK header is cut short";
    }
    apr_uint64_t offset = little_endian64(head + VMDK_DESCRIPTOR_OFFSET);
    apr_uint64_t size = little_endian64(head + VMDK_DESCRIPTOR_SIZE);
    if (offset == 0 || size == 0) {
        return NULL;
    }
    if (offset > head_len / VMDK_SECTOR || size > (head_len - offset * VMDK_SECTOR) / VMDK_SECTOR) {
        return "its VMDK descriptor lies beyond the part of the file that is read";
    }
    /* QEMU reads the extents of an embedded descriptor only when the header has no capacity. */
    int with_extents = little_endian64(head + VMDK_CAPACITY_OFFSET) == 0;
    vmdk_descriptor_references(
        pool, apr_pstrndup(pool, (const char *)head + offset * VMDK_SECTOR, size * VMDK_SECTOR),
        with_extents, refs);
    return NULL;
}

#define VPC_DISK_TYPE_OFFSET 60
#define VPC_DIFFERENCING 4
#define VDI_IMAGE_TYPE_OFFSET 0x4c
#define VDI_DIFFERENCING 4

const char *qwd_image_references(apr_pool_t *pool, const char *format, const unsigned char *head,
                                 apr_size_t head_len, const unsigned char *footer,
                                 apr_size_t footer_len, apr_array_header_t **refs)
{
    *refs = apr_array_make(pool, 2, sizeof(qwd_image_ref));
    if (!strcmp(format, "qcow2")) {
        return qcow2_references(pool, head, head_len, *refs);
    }
    if (!strcmp(format, "vmdk")) {
        return vmdk_references(pool, head, head_len, *refs);
    }
    if (!strcmp(format, "vpc")) {
        const unsigned char *vhd_footer =
            has_bytes(head, head_len, 0, "conectix", 8) ? head : footer;
        apr_size_t vhd_len = vhd_footer == head ? head_len : footer_len;
        if (vhd_footer && vhd_len >= VPC_DISK_TYPE_OFFSET + 4
            && big_endian32(vhd_footer + VPC_DISK_TYPE_OFFSET) == VPC_DIFFERENCING) {
            return "it is a differencing VHD (its data depends on a parent image)";
        }
    }
    if (!strcmp(format, "vdi") && head_len >= VDI_IMAGE_TYPE_OFFSET + 4
        && little_endian32(head + VDI_IMAGE_TYPE_OFFSET) == VDI_DIFFERENCING) {
        return "it is a differencing VDI (its data depends on a parent image)";
    }
    return NULL;
}
