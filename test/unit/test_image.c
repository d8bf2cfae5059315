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

UNIT_TEST(image_name_states_its_format)
{
    CHECK_STR(qwd_image_name_format("a.qcow2"), "qcow2");
    CHECK_STR(qwd_image_name_format("A.QCOW2"), "qcow2");
    CHECK_STR(qwd_image_name_format("a.vhd"), "vpc");
    CHECK_STR(qwd_image_name_format("a.vpc"), "vpc");
    CHECK_STR(qwd_image_name_format("a.vhdx"), "vhdx");
    CHECK_STR(qwd_image_name_format("a.img"), "raw");
    CHECK_STR(qwd_image_name_format("a.raw"), "raw");
    CHECK_STR(qwd_image_name_format("a.iso"), "iso");
    CHECK_STR(qwd_image_name_format("a.qcow2.txt"), NULL);
    CHECK_STR(qwd_image_name_format(".qcow2"), NULL);
    CHECK_STR(qwd_image_name_format(NULL), NULL);
}

UNIT_TEST(image_attach_format_follows_the_name_and_refuses_mismatches)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    const char *problem;
    CHECK_STR(qwd_image_attach_format(pool, "qcow2", "qcow2", &problem), "qcow2");
    CHECK(problem == NULL);
    /* a hybrid ISO named as a disk is a disk */
    CHECK_STR(qwd_image_attach_format(pool, "raw", "iso", &problem), "raw");
    CHECK_STR(qwd_image_attach_format(pool, "iso", "iso", &problem), "iso");
    /* a raw file named .qcow2 */
    CHECK_STR(qwd_image_attach_format(pool, "qcow2", "raw", &problem), NULL);
    CHECK(problem && strstr(problem, "its name says a qcow2 image but its bytes are raw data"));
    CHECK(problem && strstr(problem, ".raw or .img"));
    /* a header under a raw name, a disk named .iso, formats swapped */
    CHECK_STR(qwd_image_attach_format(pool, "raw", "qcow2", &problem), NULL);
    CHECK(problem && strstr(problem, "rename it (.qcow2)"));
    CHECK_STR(qwd_image_attach_format(pool, "iso", "raw", &problem), NULL);
    CHECK_STR(qwd_image_attach_format(pool, "vmdk", "vdi", &problem), NULL);
    CHECK_STR(qwd_image_attach_format(pool, "vhdx", "vpc", &problem), NULL);
    CHECK(problem && strstr(problem, "(.vhd)"));
    apr_pool_destroy(pool);
}

UNIT_TEST(image_detects_udf_as_iso)
{
    apr_uint64_t size;
    CHECK_STR(detect_written("\0BEA01", 6, 32768, 40960, &size), "iso");
}

/* A qcow2 v3 header of 104 bytes, its extensions, then the backing file name at 512. */
static apr_size_t qcow2_header(unsigned char *head, apr_size_t size, const char *backing,
                               const char *backing_format, const char *data_file)
{
    memset(head, 0, size);
    memcpy(head, "QFI\xfb\0\0\0\x03", 8);
    head[103] = 104; /* header_length */
    apr_size_t at = 104;
    if (backing_format) {
        memcpy(head + at, "\xe2\x79\x2a\xca", 4);
        head[at + 7] = (unsigned char)strlen(backing_format);
        memcpy(head + at + 8, backing_format, strlen(backing_format));
        at += 8 + ((strlen(backing_format) + 7) & ~(size_t)7);
    }
    if (data_file) {
        head[79] = 4; /* incompatible feature: external data file */
        memcpy(head + at, "DATA", 4);
        head[at + 7] = (unsigned char)strlen(data_file);
        memcpy(head + at + 8, data_file, strlen(data_file));
        at += 8 + ((strlen(data_file) + 7) & ~(size_t)7);
    }
    at += 8; /* the end extension (type 0) */
    if (backing) {
        head[14] = 2; /* backing_file_offset = 512 */
        head[19] = (unsigned char)strlen(backing);
        memcpy(head + 512, backing, strlen(backing));
    }
    return size;
}

UNIT_TEST(image_references_of_qcow2_backing_and_data_files)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    static unsigned char head[4096];
    apr_array_header_t *refs;
    apr_size_t len = qcow2_header(head, sizeof head, NULL, NULL, NULL);
    CHECK(qwd_image_references(pool, "qcow2", head, len, NULL, 0, &refs) == NULL);
    CHECK_INT(refs->nelts, 0);

    len = qcow2_header(head, sizeof head, "../etc/base.raw", "raw", NULL);
    CHECK(qwd_image_references(pool, "qcow2", head, len, NULL, 0, &refs) == NULL);
    CHECK_INT(refs->nelts, 1);
    const qwd_image_ref *ref = &APR_ARRAY_IDX(refs, 0, qwd_image_ref);
    CHECK_STR(ref->name, "../etc/base.raw");
    CHECK_STR(ref->role, "backing file");
    CHECK_STR(ref->format, "raw");
    CHECK(ref->is_image);

    len = qcow2_header(head, sizeof head, "base.qcow2", NULL, "data.raw");
    CHECK(qwd_image_references(pool, "qcow2", head, len, NULL, 0, &refs) == NULL);
    CHECK_INT(refs->nelts, 2);
    CHECK_STR(APR_ARRAY_IDX(refs, 0, qwd_image_ref).format, NULL);
    CHECK_STR(APR_ARRAY_IDX(refs, 1, qwd_image_ref).name, "data.raw");
    CHECK_STR(APR_ARRAY_IDX(refs, 1, qwd_image_ref).role, "data file");
    CHECK(!APR_ARRAY_IDX(refs, 1, qwd_image_ref).is_image);

    /* a name beyond what was read, an encrypted image */
    len = qcow2_header(head, sizeof head, "base.qcow2", NULL, NULL);
    CHECK(qwd_image_references(pool, "qcow2", head, 200, NULL, 0, &refs) != NULL);
    head[35] = 1; /* crypt_method AES */
    CHECK(strstr(qwd_image_references(pool, "qcow2", head, len, NULL, 0, &refs), "encrypted"));
    apr_pool_destroy(pool);
}

UNIT_TEST(image_references_of_vmdk_descriptors)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    apr_array_header_t *refs;
    const char *descriptor = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"
                             "parentFileNameHint=\"/srv/parent.vmdk\"\n"
                             "createType=\"twoGbMaxExtentSparse\"\n"
                             "RW 4192256 SPARSE \"disk-s001.vmdk\"\n"
                             "RDONLY 2048 FLAT \"/dev/sda\" 0\nRW 100 ZERO\n";
    CHECK(qwd_image_references(pool, "vmdk", (const unsigned char *)descriptor, strlen(descriptor),
                               NULL, 0, &refs)
          == NULL);
    CHECK_INT(refs->nelts, 3);
    CHECK_STR(APR_ARRAY_IDX(refs, 0, qwd_image_ref).name, "/srv/parent.vmdk");
    CHECK_STR(APR_ARRAY_IDX(refs, 0, qwd_image_ref).role, "parent");
    CHECK_STR(APR_ARRAY_IDX(refs, 1, qwd_image_ref).name, "disk-s001.vmdk");
    CHECK_STR(APR_ARRAY_IDX(refs, 2, qwd_image_ref).name, "/dev/sda");
    CHECK_STR(APR_ARRAY_IDX(refs, 2, qwd_image_ref).role, "extent");

    /* a sparse (KDMV) file with an embedded descriptor at sector 1: its extent line names the
     * file itself and QEMU ignores it; only the parent counts */
    static unsigned char head[4096];
    memset(head, 0, sizeof head);
    memcpy(head, "KDMV\x01\0\0\0\0\0\0\0\x00\x08", 14); /* capacity 2048 sectors */
    head[28] = 1;                                       /* descriptor at sector 1 */
    head[36] = 2;                                       /* two sectors long */
    const char *embedded = "# Disk DescriptorFile\nRW 2048 SPARSE \"old-name.vmdk\"\n";
    memcpy(head + 512, embedded, strlen(embedded));
    CHECK(qwd_image_references(pool, "vmdk", head, sizeof head, NULL, 0, &refs) == NULL);
    CHECK_INT(refs->nelts, 0);
    const char *with_parent = "# Disk DescriptorFile\nparentFileNameHint=\"base.vmdk\"\n";
    memcpy(head + 512, with_parent, strlen(with_parent) + 1);
    CHECK(qwd_image_references(pool, "vmdk", head, sizeof head, NULL, 0, &refs) == NULL);
    CHECK_INT(refs->nelts, 1);
    /* without capacity QEMU reads the embedded extents too */
    memset(head + 12, 0, 8);
    memcpy(head + 512, embedded, strlen(embedded) + 1);
    CHECK(qwd_image_references(pool, "vmdk", head, sizeof head, NULL, 0, &refs) == NULL);
    CHECK_INT(refs->nelts, 1);
    apr_pool_destroy(pool);
}

UNIT_TEST(image_differencing_vhd_and_vdi_are_refused)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    apr_array_header_t *refs;
    static unsigned char head[512];
    memset(head, 0, sizeof head);
    memcpy(head, "conectix", 8);
    head[63] = 3; /* dynamic */
    CHECK(qwd_image_references(pool, "vpc", head, sizeof head, NULL, 0, &refs) == NULL);
    head[63] = 4; /* differencing */
    CHECK(strstr(qwd_image_references(pool, "vpc", head, sizeof head, NULL, 0, &refs),
                 "differencing VHD"));
    memset(head, 0, sizeof head);
    memcpy(head + 0x40, "\x7f\x10\xda\xbe", 4);
    head[0x4c] = 4;
    CHECK(strstr(qwd_image_references(pool, "vdi", head, sizeof head, NULL, 0, &refs),
                 "differencing VDI"));
    CHECK(qwd_image_references(pool, "raw", head, sizeof head, NULL, 0, &refs) == NULL);
    apr_pool_destroy(pool);
}
