/* SPDX-License-Identifier: Apache-2.0 */
/* The routes of `SetHandler qwd`: which paths below a Location the module answers, and how a
 * request's URI splits into the Location's path and the route. Pure string work (APR only). */
#ifndef QWD_ROUTE_H
#define QWD_ROUTE_H

#include <apr_pools.h>

/* The JSON API's routes start so; a session's shareable link is SHARE_PREFIX + its id. */
#define QWD_ROUTE_API_PREFIX "/api/"
#define QWD_ROUTE_SHARE_PREFIX "/s/"
/* POST SHARE_PREFIX + id + TICKET_SUFFIX: a fresh websocket ticket for the link's viewer. */
#define QWD_ROUTE_TICKET_SUFFIX "/ticket"
/* /api/sessions/ID + SHARES: a session's shares; + "/" + SHARE: one of them. */
#define QWD_ROUTE_SHARES "/shares"
/* POST /api/sessions/ + id + EXTEND_SUFFIX: a session's longer lifetime. */
#define QWD_ROUTE_EXTEND_SUFFIX "/extend"

/* Whether route (the path below the Location: "", "/sessions", "/api/sessions/ID", ...) is one
 * the module answers. */
int qwd_route_known(const char *route);

/* Splits uri into the Location's path (*base, without trailing slash, in pool) and the route
 * below it (*route, a pointer into uri). location is the Location's path when a Qwd directive
 * sits in that <Location> (Apache creates a module's per-directory record only for sections
 * that use one of its directives), else NULL: then the route follows from its known endings.
 * Returns 0 when no route matches (*base is "" and *route is uri then). */
int qwd_route_split(apr_pool_t *pool, const char *uri, const char *location, const char **base,
                    const char **route);

#endif
