/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the route splitting of `SetHandler qwd` (mod_qwd/qwd_route.c): with the
 * Location known, by the routes' endings without it, and what no route matches. */
#include "unit.h"

#include "qwd_route.h"

#include <apr_strings.h>

/* A URI, the Location's path the per-directory record knows (or NULL), and the split expected:
 * "BASE|ROUTE", or NULL when no route matches. */
typedef struct {
    const char *uri, *location, *expected;
} split_case;

static const split_case cases[] = {
    /* below a known Location */
    {"/qwd", "/qwd", "/qwd|"},
    {"/qwd/", "/qwd", "/qwd|/"},
    {"/qwd/", "/qwd/", "/qwd|/"},
    {"/qwd/sessions", "/qwd", "/qwd|/sessions"},
    {"/qwd/monitor", "/qwd", "/qwd|/monitor"},
    {"/qwd/login", "/qwd", "/qwd|/login"},
    {"/qwd/api/machines", "/qwd", "/qwd|/api/machines"},
    {"/qwd/api/sessions", "/qwd", "/qwd|/api/sessions"},
    {"/qwd/api/sessions/", "/qwd", "/qwd|/api/sessions/"},
    {"/qwd/api/sessions/0123abcd", "/qwd", "/qwd|/api/sessions/0123abcd"},
    {"/qwd/s/0123abcd", "/qwd", "/qwd|/s/0123abcd"},
    {"/a/b/sessions", "/a/b", "/a/b|/sessions"},
    /* what no route matches */
    {"/qwd/nothing", "/qwd", NULL},
    {"/qwd/s/", "/qwd", NULL}, /* a link needs an id */
    {"/qwd/s/0123abcd/ticket", "/qwd", "/qwd|/s/0123abcd/ticket"},
    {"/qwd/s/a/b", "/qwd", NULL},
    {"/qwd/s//ticket", "/qwd", NULL},
    {"/qwd/s/a/ticket/x", "/qwd", NULL},
    {"/qwd/api/sessions/a/b", "/qwd", NULL},
    {"/qwd/api/sessions/abc/shares", "/qwd", "/qwd|/api/sessions/abc/shares"},
    {"/qwd/api/sessions/abc/shares/0123", "/qwd", "/qwd|/api/sessions/abc/shares/0123"},
    {"/qwd/api/sessions//shares", "/qwd", NULL},
    {"/qwd/api/sessions/abc/shares/", "/qwd", NULL},
    {"/qwd/api/sessions/abc/shares/x/y", "/qwd", NULL},
    {"/qwd/api/sessions/abc/sharesx", "/qwd", NULL},
    {"/x/api/sessions/abc/shares/01", NULL, "/x|/api/sessions/abc/shares/01"},
    {"/qwd/api/other", "/qwd", NULL},
    {"/other/thing", "/qwd", NULL},
    /* no Qwd directive in the <Location>: the route follows from its known endings */
    {"/x/y/sessions", NULL, "/x/y|/sessions"},
    {"/x/api/machines", NULL, "/x|/api/machines"},
    {"/x/api/sessions/", NULL, "/x|/api/sessions/"},
    {"/x/api/sessions/abc", NULL, "/x|/api/sessions/abc"},
    {"/x/api/sessions/a/api/sessions/b", NULL, "/x/api/sessions/a|/api/sessions/b"},
    {"/x/s/abc", NULL, "/x|/s/abc"},
    {"/x/s/abc/ticket", NULL, "/x|/s/abc/ticket"},
    /* ... and anything else is the Location's form */
    {"/x/y/", NULL, "/x/y|/"},
    {"/x/y", NULL, "/x/y|"},
    /* a location that is not a path (a <Directory>): the endings only */
    {"/x/monitor", "relative", "/x|/monitor"},
    {"/x/y", "relative", NULL},
    /* a known location whose path does not match falls back to the endings */
    {"/elsewhere/sessions", "/qwd", "/elsewhere|/sessions"},
};

UNIT_TEST(route_split_by_location_by_endings_or_not_at_all)
{
    apr_pool_t *pool;
    apr_size_t i;
    apr_pool_create(&pool, NULL);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *base = NULL, *route = NULL, *split = NULL;
        if (qwd_route_split(pool, cases[i].uri, cases[i].location, &base, &route)) {
            split = apr_pstrcat(pool, base, "|", route, NULL);
        }
        else {
            CHECK_STR(base, "");
            CHECK_STR(route, cases[i].uri);
        }
        if ((split == NULL) != (cases[i].expected == NULL)
            || (split && strcmp(split, cases[i].expected))) {
            fprintf(stderr, "  %s (location %s): %s\n", cases[i].uri,
                    cases[i].location ? cases[i].location : "unknown", split ? split : "no route");
        }
        CHECK_STR(split, cases[i].expected);
    }
    CHECK(!qwd_route_known("/s/"));
    CHECK(!qwd_route_known("/static/qwd.css"));
    CHECK(qwd_route_known("/api/sessions/"));
    apr_pool_destroy(pool);
}
