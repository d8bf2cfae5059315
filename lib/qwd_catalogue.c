/* SPDX-License-Identifier: Apache-2.0 */
/* Reads the machine catalogue: every entry is checked when the file is read (its name stays in
 * the machines directory, its URL is HTTP(S), its checksum is a sha256, its sidecar settings
 * are ones the helper reads), so a download never starts from a bad entry. */
#include "qwd_catalogue.h"
#include "qwd_argv.h"
#include "qwd_image.h"
#include "qwd_machine_name.h"
#include "qwd_text.h"
#include "qwd_warm.h"

#include <apr_strings.h>
#include <ctype.h>
#include <string.h>

int qwd_sha256_hex_is_valid(const char *text)
{
    return text && strlen(text) == QWD_SHA256_HEX_LENGTH
           && strspn(text, "0123456789abcdefABCDEF") == QWD_SHA256_HEX_LENGTH;
}

static int is_http_url(const char *url)
{
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        return 0;
    }
    for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
        if (*c <= ' ' || *c >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

const qwd_catalogue_entry *qwd_catalogue_find(const apr_array_header_t *entries, const char *name)
{
    for (int i = 0; i < entries->nelts; i++) {
        const qwd_catalogue_entry *entry = &APR_ARRAY_IDX(entries, i, qwd_catalogue_entry);
        if (!strcmp(entry->name, name)) {
            return entry;
        }
    }
    return NULL;
}

/* The problem of a complete entry (its required keys), or NULL. */
static const char *finish(apr_pool_t *pool, const qwd_catalogue_entry *entry)
{
    if (!entry->url) {
        return apr_psprintf(pool, "line %d: [%s] has no url", entry->line, entry->name);
    }
    if (!entry->sha256) {
        return apr_psprintf(pool, "line %d: [%s] has no sha256", entry->line, entry->name);
    }
    return NULL;
}

/* Starts the entry of "[NAME]" (text: what is between the brackets). */
static const char *begin(apr_pool_t *pool, apr_array_header_t *entries, const char *text, int line)
{
    const char *problem = qwd_machine_name_problem(text);
    if (problem) {
        return apr_psprintf(pool, "line %d: [%s]: %s", line, text, problem);
    }
    if (!qwd_image_name_format(text)) {
        return apr_psprintf(pool,
                            "line %d: [%s]: a machine's name ends in .qcow2, .raw, .img, .vdi, "
                            ".vmdk, .vhd, .vpc, .vhdx or .iso",
                            line, text);
    }
    if (qwd_catalogue_find(entries, text)) {
        return apr_psprintf(pool, "line %d: [%s] is in the catalogue twice", line, text);
    }
    qwd_catalogue_entry *entry = &APR_ARRAY_PUSH(entries, qwd_catalogue_entry);
    *entry = (qwd_catalogue_entry){.name = apr_pstrdup(pool, text), .line = line};
    return NULL;
}

/* Applies "key = value" to entry. */
static const char *apply(apr_pool_t *pool, qwd_catalogue_entry *entry, const char *key,
                         const char *value, int line)
{
    const char **field = !strcmp(key, "url")           ? &entry->url
                         : !strcmp(key, "sha256")      ? &entry->sha256
                         : !strcmp(key, "description") ? &entry->description
                         : !strcmp(key, "arch")        ? &entry->arch
                                                       : NULL;
    if (field && *field) {
        return apr_psprintf(pool, "line %d: %s is given twice for [%s]", line, key, entry->name);
    }
    if (field == &entry->url && !is_http_url(value)) {
        return apr_psprintf(pool, "line %d: url must be an http:// or https:// URL", line);
    }
    if (field == &entry->sha256) {
        if (!qwd_sha256_hex_is_valid(value)) {
            return apr_psprintf(pool, "line %d: sha256 must be 64 hexadecimal digits", line);
        }
        char *lower = apr_pstrdup(pool, value);
        for (char *c = lower; *c; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
        value = lower;
    }
    if (field == &entry->arch && (!*value || !qwd_argv_arch_is_valid(value))) {
        return apr_psprintf(pool, "line %d: arch must be " QWD_ARCH_X86_64 " or " QWD_ARCH_AARCH64,
                            line);
    }
    if (field) {
        *field = apr_pstrdup(pool, value);
        if (field == &entry->arch) {
            entry->sidecar = apr_pstrcat(pool, entry->sidecar ? entry->sidecar : "",
                                         "arch = ", value, "\n", NULL);
        }
        return NULL;
    }
    /* Any other key is one of the machine's sidecar (NAME.warm): the helper's own parser
     * says whether it knows it. */
    const char *setting = apr_pstrcat(pool, key, " = ", value, "\n", NULL);
    qwd_warm_sidecar ignored = {0};
    const char *problem = qwd_warm_sidecar_parse(pool, setting, &ignored);
    if (problem) {
        return apr_psprintf(pool, "line %d: %s", line, problem);
    }
    entry->sidecar = apr_pstrcat(pool, entry->sidecar ? entry->sidecar : "", setting, NULL);
    return NULL;
}

const char *qwd_catalogue_parse(apr_pool_t *pool, const char *text, apr_array_header_t **entries)
{
    *entries = apr_array_make(pool, 8, sizeof(qwd_catalogue_entry));
    char *copy = apr_pstrdup(pool, text);
    int line_number = 0;
    const char *problem = NULL;
    for (char *line = copy, *next; !problem && line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        line_number++;
        line = qwd_trim(line);
        if (!*line || *line == '#') {
            continue;
        }
        qwd_catalogue_entry *current =
            (*entries)->nelts ? &APR_ARRAY_IDX(*entries, (*entries)->nelts - 1, qwd_catalogue_entry)
                              : NULL;
        size_t length = strlen(line);
        if (line[0] == '[') {
            if (line[length - 1] != ']') {
                problem = apr_psprintf(pool, "line %d: a section is [NAME]", line_number);
            }
            else if (!current || !(problem = finish(pool, current))) {
                line[length - 1] = '\0';
                problem = begin(pool, *entries, qwd_trim(line + 1), line_number);
            }
            continue;
        }
        char *equals = strchr(line, '=');
        if (!equals) {
            problem = apr_psprintf(pool, "line %d: \"%s\" is not key = value", line_number, line);
            continue;
        }
        if (!current) {
            problem = apr_psprintf(pool, "line %d: a key before the first [NAME]", line_number);
            continue;
        }
        *equals = '\0';
        problem = apply(pool, current, qwd_trim(line), qwd_trim(equals + 1), line_number);
    }
    if (!problem && (*entries)->nelts) {
        problem =
            finish(pool, &APR_ARRAY_IDX(*entries, (*entries)->nelts - 1, qwd_catalogue_entry));
    }
    return problem;
}
