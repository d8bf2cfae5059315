/* SPDX-License-Identifier: Apache-2.0 */
/* Route splitting for mod_qwd.c's handler (qwd_route.h): the fixed routes, those with an id
 * (/s/ID, /api/sessions/ID and its /shares[/SHARE]), and the fallback by known endings when
 * the Location is unknown. */
#include "qwd_route.h"

#include <apr_strings.h>

/* The routes that end in an id: QWD_ROUTE_SHARE_PREFIX and this. */
#define SESSION_API_PREFIX "/api/sessions/"

/* Whether route is prefix followed by a last segment (the id; id_required: not empty). */
static int is_prefix_and_id(const char *route, const char *prefix, int id_required)
{
    apr_size_t prefix_len = strlen(prefix);
    return !strncmp(route, prefix, prefix_len) && (!id_required || route[prefix_len])
           && !strchr(route + prefix_len, '/');
}

int qwd_route_known(const char *route)
{
    static const char *const exact[] = {"",
                                        "/",
                                        "/sessions",
                                        "/monitor",
                                        "/api/machines",
                                        "/api/sessions",
                                        "/api/sessions/",
                                        "/login",
                                        "/api/audit",
                                        NULL};
    int i;
    for (i = 0; exact[i]; i++) {
        if (!strcmp(route, exact[i])) {
            return 1;
        }
    }
    /* /s/ID: a session's shareable link; /s/ID/ticket: its viewer's tickets (qwd_viewer.c) */
    if (is_prefix_and_id(route, QWD_ROUTE_SHARE_PREFIX, 1)) {
        return 1;
    }
    if (!strncmp(route, QWD_ROUTE_SHARE_PREFIX, strlen(QWD_ROUTE_SHARE_PREFIX))) {
        const char *id = route + strlen(QWD_ROUTE_SHARE_PREFIX);
        const char *slash = strchr(id, '/');
        return slash && slash > id && !strcmp(slash, QWD_ROUTE_TICKET_SUFFIX);
    }
    /* /api/sessions/ID, /api/sessions/ID/extend (a longer lifetime), /api/sessions/ID/shares,
     * /api/sessions/ID/shares/SHARE */
    if (!strncmp(route, SESSION_API_PREFIX, strlen(SESSION_API_PREFIX))) {
        const char *id = route + strlen(SESSION_API_PREFIX);
        const char *slash = strchr(id, '/');
        apr_size_t shares_len = strlen(QWD_ROUTE_SHARES);
        if (!slash) {
            return 1;
        }
        if (slash > id && !strcmp(slash, QWD_ROUTE_EXTEND_SUFFIX)) {
            return 1;
        }
        return slash > id && !strncmp(slash, QWD_ROUTE_SHARES, shares_len)
               && (!slash[shares_len]
                   || (slash[shares_len] == '/' && is_prefix_and_id(slash + shares_len, "/", 1)));
    }
    return 0;
}

/* The occurrence of prefix in uri that starts a known route (only the last one can: an id
 * has no '/'), or NULL. */
static const char *known_from(const char *uri, const char *prefix)
{
    const char *at;
    for (at = strstr(uri, prefix); at; at = strstr(at + 1, prefix)) {
        if (qwd_route_known(at)) {
            return at;
        }
    }
    return NULL;
}

/* The route by its known endings, when the Location's path is unknown. */
static const char *route_by_suffix(const char *uri)
{
    static const char *const endings[] = {"/api/machines",
                                          "/api/sessions/",
                                          "/api/sessions",
                                          "/sessions",
                                          "/monitor",
                                          "/api/audit",
                                          NULL};
    apr_size_t len = strlen(uri);
    const char *route;
    int i;
    for (i = 0; endings[i]; i++) {
        apr_size_t end_len = strlen(endings[i]);
        if (len >= end_len && !strcmp(uri + len - end_len, endings[i])) {
            return uri + len - end_len;
        }
    }
    /* .../api/sessions/ID, else .../s/ID */
    route = known_from(uri, SESSION_API_PREFIX);
    return route ? route : known_from(uri, QWD_ROUTE_SHARE_PREFIX);
}

int qwd_route_split(apr_pool_t *pool, const char *uri, const char *location, const char **base,
                    const char **route)
{
    const char *found = NULL;
    if (location && location[0] == '/') {
        apr_size_t len = strlen(location);
        if (location[len - 1] == '/') {
            len--;
        }
        if (!strncmp(uri, location, len) && qwd_route_known(uri + len)) {
            found = uri + len;
        }
    }
    if (!found) {
        found = route_by_suffix(uri);
    }
    if (!found && !location) {
        apr_size_t len = strlen(uri);
        found = uri + len - (len && uri[len - 1] == '/' ? 1 : 0);
    }
    if (!found) {
        *base = "";
        *route = uri;
        return 0;
    }
    *base = apr_pstrmemdup(pool, uri, found - uri);
    *route = found;
    return 1;
}
