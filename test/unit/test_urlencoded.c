/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lib/qwd_urlencoded: the decoding httpd's ap_unescape_urlencoded does, the first
 * value of a name kept, and bodies that are not correctly encoded refused. */
#include "unit.h"
#include "qwd_urlencoded.h"

#include <apr_general.h>
#include <apr_strings.h>

UNIT_TEST(urlencoded_fields_are_decoded_first_value_kept)
{
    apr_pool_t *pool;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    apr_table_t *fields = apr_table_make(pool, 4);
    char *body = apr_pstrdup(pool, "machine=tiny+vm&cpu=2&machine=other&&empty&a%2Bb=%7e%41");
    CHECK(qwd_urlencoded_parse(body, fields) == NULL);
    CHECK_STR(apr_table_get(fields, "machine"), "tiny vm");
    CHECK_STR(apr_table_get(fields, "cpu"), "2");
    CHECK_STR(apr_table_get(fields, "empty"), "");
    CHECK_STR(apr_table_get(fields, "a+b"), "~A");
    CHECK_INT(apr_table_elts(fields)->nelts, 4);
    apr_pool_destroy(pool);
}

UNIT_TEST(urlencoded_bad_escapes_and_nul_are_refused)
{
    apr_pool_t *pool;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    const char *bad[] = {"a=%", "a=%4", "a=%zz", "%g0=1", "a=%00", "a=1&b=x%0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(qwd_urlencoded_parse(apr_pstrdup(pool, bad[i]), apr_table_make(pool, 2)) != NULL);
    }
    char *text = apr_pstrdup(pool, "%41%62+%2b");
    CHECK(qwd_urlencoded_decode(text) == NULL);
    CHECK_STR(text, "Ab +");
    apr_pool_destroy(pool);
}
