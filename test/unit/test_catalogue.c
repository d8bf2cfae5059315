/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the machine catalogue's parser (lib/qwd_catalogue.c): entries, their sidecar
 * text, and the refusals, above all names that would leave the machines directory. */
#include "unit.h"

#include "qwd_catalogue.h"

#include <apr_strings.h>

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

UNIT_TEST(catalogue_reads_entries_with_their_sidecar)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    apr_array_header_t *entries;
    const char *text = "# machines\n\n[debian.qcow2]\nurl = https://example.org/d.qcow2\n"
                       "sha256 = " SHA "\ndescription = Debian 12 (cloud)\n"
                       "[tiny-arm64.qcow2]\nurl=http://127.0.0.1:8000/t.qcow2\n"
                       "sha256=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n"
                       "arch = aarch64\nready_serial = QWD-TINY-VM READY\nwarm_at_start = yes\n"
                       "video = virtio\n";
    CHECK(qwd_catalogue_parse(pool, text, &entries) == NULL);
    CHECK_INT(entries->nelts, 2);
    const qwd_catalogue_entry *debian = qwd_catalogue_find(entries, "debian.qcow2");
    CHECK_STR(debian->url, "https://example.org/d.qcow2");
    CHECK_STR(debian->description, "Debian 12 (cloud)");
    CHECK(debian->arch == NULL && debian->sidecar == NULL);
    CHECK_INT(debian->line, 3);
    const qwd_catalogue_entry *tiny = qwd_catalogue_find(entries, "tiny-arm64.qcow2");
    CHECK_STR(tiny->sha256, SHA); /* lowercase */
    CHECK_STR(tiny->arch, "aarch64");
    CHECK(tiny->description == NULL);
    CHECK_STR(tiny->sidecar, "arch = aarch64\nready_serial = QWD-TINY-VM READY\n"
                             "warm_at_start = yes\nvideo = virtio\n");
    CHECK(qwd_catalogue_find(entries, "other.qcow2") == NULL);
    CHECK(qwd_catalogue_parse(pool, "", &entries) == NULL && entries->nelts == 0);
    apr_pool_destroy(pool);
}

/* The problem of a catalogue of one entry: [name] with the lines body. */
static const char *problem_of(apr_pool_t *pool, const char *name, const char *body)
{
    apr_array_header_t *entries;
    return qwd_catalogue_parse(pool, apr_pstrcat(pool, "[", name, "]\n", body, NULL), &entries);
}

UNIT_TEST(catalogue_refuses_names_that_leave_the_machines_directory)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    const char *body = "url = https://example.org/x\nsha256 = " SHA "\n";
    CHECK(strstr(problem_of(pool, "../evil.qcow2", body), "line 1: [../evil.qcow2]"));
    CHECK(problem_of(pool, "/etc/evil.qcow2", body) != NULL);
    CHECK(problem_of(pool, "sub/x.qcow2", body) != NULL);
    CHECK(problem_of(pool, ".hidden.qcow2", body) != NULL);
    CHECK(problem_of(pool, "x.qcow2\\..\\y.qcow2", body) != NULL);
    CHECK(strstr(problem_of(pool, "notes.txt", body), "ends in .qcow2"));
    CHECK(problem_of(pool, "ok.qcow2", body) == NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(catalogue_refuses_bad_entries)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    CHECK(strstr(problem_of(pool, "a.qcow2", "sha256 = " SHA "\n"), "has no url"));
    CHECK(strstr(problem_of(pool, "a.qcow2", "url = https://e.org/a\n"), "has no sha256"));
    CHECK(strstr(problem_of(pool, "a.qcow2", "url = file:///etc/shadow\nsha256 = " SHA "\n"),
                 "http:// or https://"));
    CHECK(strstr(problem_of(pool, "a.qcow2", "url = https://e.org/a b\nsha256 = " SHA "\n"),
                 "http:// or https://"));
    CHECK(strstr(problem_of(pool, "a.qcow2", "url = https://e.org/a\nsha256 = 1234\n"),
                 "64 hexadecimal"));
    CHECK(strstr(
        problem_of(pool, "a.qcow2", "url = https://e.org/a\nsha256 = " SHA "\narch = arm64\n"),
        "arch must be"));
    CHECK(strstr(problem_of(pool, "a.qcow2",
                            "url = https://e.org/a\nsha256 = " SHA "\nwarm_at_start = perhaps\n"),
                 "line 4: warm_at_start"));
    CHECK(strstr(problem_of(pool, "a.qcow2", "url = https://e.org/a\nurl = https://e.org/b\n"),
                 "given twice"));
    CHECK(
        strstr(problem_of(pool, "a.qcow2", "url = https://e.org/a\nsha256 = " SHA "\n[a.qcow2]\n"),
               "twice"));
    apr_array_header_t *entries;
    CHECK(strstr(qwd_catalogue_parse(pool, "url = https://e.org/a\n", &entries),
                 "before the first [NAME]"));
    CHECK(strstr(qwd_catalogue_parse(pool, "[a.qcow2\n", &entries), "[NAME]"));
    apr_pool_destroy(pool);
}
