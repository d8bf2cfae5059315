/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal ISO 9660 writer for NoCloud seeds: system area, primary volume descriptor,
 * terminator, the two path tables, one root directory sector, then each file's sectors. Every
 * multi-byte number is written as the standard asks (both-endian where it has both). */
#include "qwd_seed.h"

#include <apr_strings.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define SYSTEM_AREA_SECTORS 16
#define PVD_SECTOR 16
#define TERMINATOR_SECTOR 17
#define L_PATH_TABLE_SECTOR 18
#define M_PATH_TABLE_SECTOR 19
#define ROOT_SECTOR 20
#define FIRST_FILE_SECTOR 21
#define ROOT_RECORD_LENGTH 34 /* a directory record with a one-byte identifier */
#define PATH_TABLE_LENGTH 10  /* the root's entry: 8 bytes, its identifier, one pad byte */
#define RECORD_FIXED_LENGTH 33
#define FILE_NAME_MAX 30
#define FILES_MAX 8            /* their records fit the root's one sector */
#define FILE_MAX (1024 * 1024) /* bytes of one file */
#define LABEL_MAX 32
#define FLAG_DIRECTORY 2
/* A recording date (years since 1900, month, day, h, m, s, GMT offset): fixed, so the same
 * files make the same image. */
static const unsigned char record_date[7] = {70, 1, 1, 0, 0, 0, 0};

static void le16(unsigned char *at, unsigned value)
{
    at[0] = value & 0xff;
    at[1] = (value >> 8) & 0xff;
}

static void be16(unsigned char *at, unsigned value)
{
    at[0] = (value >> 8) & 0xff;
    at[1] = value & 0xff;
}

static void le32(unsigned char *at, apr_uint32_t value)
{
    for (int i = 0; i < 4; i++) {
        at[i] = (value >> (8 * i)) & 0xff;
    }
}

static void be32(unsigned char *at, apr_uint32_t value)
{
    for (int i = 0; i < 4; i++) {
        at[3 - i] = (value >> (8 * i)) & 0xff;
    }
}

static void both16(unsigned char *at, unsigned value)
{
    le16(at, value);
    be16(at + 2, value);
}

static void both32(unsigned char *at, apr_uint32_t value)
{
    le32(at, value);
    be32(at + 4, value);
}

/* A text field padded with spaces. */
static void text_field(unsigned char *at, apr_size_t width, const char *text)
{
    memset(at, ' ', width);
    memcpy(at, text, strlen(text) < width ? strlen(text) : width);
}

/* A directory record at at; returns its length. */
static apr_size_t record(unsigned char *at, apr_uint32_t sector, apr_uint32_t length, int flags,
                         const char *identifier, apr_size_t identifier_length)
{
    apr_size_t size = RECORD_FIXED_LENGTH + identifier_length + (identifier_length % 2 == 0);
    memset(at, 0, size);
    at[0] = (unsigned char)size;
    both32(at + 2, sector);
    both32(at + 10, length);
    memcpy(at + 18, record_date, sizeof record_date);
    at[25] = (unsigned char)flags;
    both16(at + 28, 1);
    at[32] = (unsigned char)identifier_length;
    memcpy(at + 33, identifier, identifier_length);
    return size;
}

/* The date fields of a volume descriptor: "not specified" (digits 0, offset 0). */
static void no_date(unsigned char *at)
{
    memset(at, '0', 16);
    at[16] = 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const qwd_iso_file *)a)->name, ((const qwd_iso_file *)b)->name);
}

static apr_uint32_t sectors_of(apr_size_t length)
{
    return (apr_uint32_t)((length + QWD_ISO_SECTOR - 1) / QWD_ISO_SECTOR);
}

const char *qwd_iso_build(apr_pool_t *pool, const char *label, const qwd_iso_file *files, int count,
                          unsigned char **image, apr_size_t *size)
{
    if (count < 0 || count > FILES_MAX || !label || !*label || strlen(label) > LABEL_MAX) {
        return "an ISO seed holds 0 to 8 files and a label of 1 to 32 characters";
    }
    /* Upper-case identifiers with version ";1", sorted as the directory must be. */
    qwd_iso_file *sorted = apr_pcalloc(pool, sizeof *sorted * (apr_size_t)(count + 1));
    apr_uint32_t total = FIRST_FILE_SECTOR;
    for (int i = 0; i < count; i++) {
        apr_size_t name_length = files[i].name ? strlen(files[i].name) : 0;
        if (name_length < 1 || name_length > FILE_NAME_MAX
            || strspn(files[i].name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_-.")
                   != name_length) {
            return apr_psprintf(pool, "\"%s\" cannot be a seed file's name",
                                files[i].name ? files[i].name : "");
        }
        if (files[i].length > FILE_MAX) {
            return apr_psprintf(pool, "%s is larger than %d bytes", files[i].name, FILE_MAX);
        }
        char *name = apr_pstrcat(pool, files[i].name, ";1", NULL);
        for (char *c = name; *c; c++) {
            *c = (char)toupper((unsigned char)*c);
        }
        sorted[i] = files[i];
        sorted[i].name = name;
        total += sectors_of(files[i].length);
    }
    qsort(sorted, (size_t)count, sizeof *sorted, by_name);

    unsigned char *iso = apr_pcalloc(pool, (apr_size_t)total * QWD_ISO_SECTOR);
    unsigned char *pvd = iso + PVD_SECTOR * QWD_ISO_SECTOR;
    pvd[0] = 1;
    memcpy(pvd + 1, "CD001", 5);
    pvd[6] = 1;
    text_field(pvd + 8, 32, "LINUX");
    text_field(pvd + 40, 32, label);
    both32(pvd + 80, total);
    both16(pvd + 120, 1);
    both16(pvd + 124, 1);
    both16(pvd + 128, QWD_ISO_SECTOR);
    both32(pvd + 132, PATH_TABLE_LENGTH);
    le32(pvd + 140, L_PATH_TABLE_SECTOR);
    be32(pvd + 148, M_PATH_TABLE_SECTOR);
    record(pvd + 156, ROOT_SECTOR, QWD_ISO_SECTOR, FLAG_DIRECTORY, "\0", 1);
    text_field(pvd + 190, 128, "");
    text_field(pvd + 318, 128, "");
    text_field(pvd + 446, 128, "");
    text_field(pvd + 574, 128, "QWD-HELPER");
    text_field(pvd + 702, 37, "");
    text_field(pvd + 739, 37, "");
    text_field(pvd + 776, 37, "");
    for (int field = 813; field <= 864; field += 17) {
        no_date(pvd + field);
    }
    pvd[881] = 1;

    unsigned char *terminator = iso + TERMINATOR_SECTOR * QWD_ISO_SECTOR;
    terminator[0] = 255;
    memcpy(terminator + 1, "CD001", 5);
    terminator[6] = 1;

    /* The root's entry in each path table: identifier length 1 (0x00), its sector, parent 1. */
    unsigned char *l_table = iso + L_PATH_TABLE_SECTOR * QWD_ISO_SECTOR;
    unsigned char *m_table = iso + M_PATH_TABLE_SECTOR * QWD_ISO_SECTOR;
    l_table[0] = m_table[0] = 1;
    le32(l_table + 2, ROOT_SECTOR);
    be32(m_table + 2, ROOT_SECTOR);
    le16(l_table + 6, 1);
    be16(m_table + 6, 1);

    unsigned char *root = iso + ROOT_SECTOR * QWD_ISO_SECTOR;
    apr_size_t offset = record(root, ROOT_SECTOR, QWD_ISO_SECTOR, FLAG_DIRECTORY, "\0", 1);
    offset += record(root + offset, ROOT_SECTOR, QWD_ISO_SECTOR, FLAG_DIRECTORY, "\1", 1);
    apr_uint32_t sector = FIRST_FILE_SECTOR;
    for (int i = 0; i < count; i++) {
        offset += record(root + offset, sector, (apr_uint32_t)sorted[i].length, 0, sorted[i].name,
                         strlen(sorted[i].name));
        memcpy(iso + (apr_size_t)sector * QWD_ISO_SECTOR, sorted[i].data, sorted[i].length);
        sector += sectors_of(sorted[i].length);
    }
    *image = iso;
    *size = (apr_size_t)total * QWD_ISO_SECTOR;
    return NULL;
}

const char *qwd_seed_build(apr_pool_t *pool, const char *session_id, const char *user_data,
                           unsigned char **image, apr_size_t *size)
{
    const char *meta_data = apr_psprintf(pool, "instance-id: qwd-%s\nlocal-hostname: qwd-%.8s\n",
                                         session_id, session_id);
    qwd_iso_file files[] = {
        {QWD_SEED_META_DATA, meta_data, strlen(meta_data)},
        {QWD_SEED_USER_DATA, user_data, strlen(user_data)},
    };
    return qwd_iso_build(pool, QWD_SEED_LABEL, files, 2, image, size);
}
