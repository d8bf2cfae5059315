/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the NoCloud seed: the ISO 9660 structures a reader looks for (descriptors,
 * label, root directory, file extents) and the refusals. The tiny VM reads real ones in
 * test/test_600_data.py. */
#include "unit.h"

#include "qwd_seed.h"

#include <apr_strings.h>

static apr_uint32_t le32_at(const unsigned char *at)
{
    return (apr_uint32_t)at[0] | (apr_uint32_t)at[1] << 8 | (apr_uint32_t)at[2] << 16
           | (apr_uint32_t)at[3] << 24;
}

static apr_uint32_t be32_at(const unsigned char *at)
{
    return (apr_uint32_t)at[3] | (apr_uint32_t)at[2] << 8 | (apr_uint32_t)at[1] << 16
           | (apr_uint32_t)at[0] << 24;
}

/* The root directory record named name (upper-case, ";1"), or NULL. */
static const unsigned char *find_record(const unsigned char *iso, const char *name)
{
    const unsigned char *pvd = iso + 16 * QWD_ISO_SECTOR;
    const unsigned char *root = iso + (apr_size_t)le32_at(pvd + 156 + 2) * QWD_ISO_SECTOR;
    for (const unsigned char *r = root; r < root + QWD_ISO_SECTOR && r[0]; r += r[0]) {
        if (r[32] == strlen(name) && !memcmp(r + 33, name, r[32])) {
            return r;
        }
    }
    return NULL;
}

UNIT_TEST(seed_is_an_iso9660_volume_labelled_cidata_with_both_files)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    unsigned char *iso;
    apr_size_t size;
    const char *user_data = "#!/bin/sh\necho hello\n";
    CHECK(qwd_seed_build(pool, "0123456789abcdef0123456789abcdef", user_data, &iso, &size) == NULL);
    CHECK_INT(size % QWD_ISO_SECTOR, 0);
    CHECK_INT(size, 23 * QWD_ISO_SECTOR); /* 21 of structure, one sector per file */
    const unsigned char *pvd = iso + 16 * QWD_ISO_SECTOR;
    CHECK_INT(pvd[0], 1);
    CHECK(!memcmp(pvd + 1, "CD001", 5));
    CHECK(!memcmp(pvd + 40, "cidata  ", 8));
    CHECK_INT(le32_at(pvd + 80), 23);
    CHECK_INT(be32_at(pvd + 84), 23);
    CHECK_INT(iso[17 * QWD_ISO_SECTOR], 255); /* the set terminator */
    const unsigned char *user = find_record(iso, "USER-DATA;1");
    const unsigned char *meta = find_record(iso, "META-DATA;1");
    CHECK(user && meta);
    if (user && meta) {
        CHECK_INT(le32_at(user + 10), strlen(user_data));
        CHECK_INT(be32_at(user + 14), strlen(user_data));
        CHECK(!memcmp(iso + (apr_size_t)le32_at(user + 2) * QWD_ISO_SECTOR, user_data,
                      strlen(user_data)));
        const char *meta_text = (const char *)iso + (apr_size_t)le32_at(meta + 2) * QWD_ISO_SECTOR;
        CHECK(!strncmp(meta_text, "instance-id: qwd-0123456789abcdef0123456789abcdef\n", 50));
        CHECK(le32_at(meta + 2) < le32_at(user + 2)); /* sorted: META before USER */
    }
    apr_pool_destroy(pool);
}

UNIT_TEST(seed_same_files_same_image_and_bad_names_refused)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    unsigned char *a, *b;
    apr_size_t size_a, size_b;
    CHECK(qwd_seed_build(pool, "id", "x", &a, &size_a) == NULL);
    CHECK(qwd_seed_build(pool, "id", "x", &b, &size_b) == NULL);
    CHECK(size_a == size_b && !memcmp(a, b, size_a));
    qwd_iso_file bad[] = {{"../etc", "x", 1}};
    CHECK(qwd_iso_build(pool, "cidata", bad, 1, &a, &size_a) != NULL);
    qwd_iso_file big[] = {{"big", "", 2 * 1024 * 1024}};
    CHECK(qwd_iso_build(pool, "cidata", big, 1, &a, &size_a) != NULL);
    CHECK(qwd_iso_build(pool, "", NULL, 0, &a, &size_a) != NULL);
    apr_pool_destroy(pool);
}
