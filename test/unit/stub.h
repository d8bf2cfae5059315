/* SPDX-License-Identifier: Apache-2.0 */
/* httpd stand-ins for the module's unit tests (as mod_auth_openidc's test/stub.c): a server, a
 * request and directive parameters made with the real APR, and the few ap_* functions the
 * linked module files call. */
#ifndef QWD_UNIT_STUB_H
#define QWD_UNIT_STUB_H

#include "qwd_request.h"

/* What most tests start from: a pool, a server (stub_server) and a request to it without
 * cookies (stub_req), all in the pool; apr_pool_destroy(f.pool) ends it. */
typedef struct stub_fixture {
    apr_pool_t *pool;
    server_rec *s;
    qwd_req_t *q;
} stub_fixture;
void stub_fixture_open(stub_fixture *f);

/* A server whose module config holds a fresh qwd_server_config_t with a fixed key. */
server_rec *stub_server(apr_pool_t *pool);
/* The qwd_server_config_t of s. */
qwd_server_config_t *stub_server_config(server_rec *s);

/* A GET request to s with the given Cookie header (or none), and its qwd_req_t with a fresh
 * per-directory record for the Location "/qwd". */
qwd_req_t *stub_req(apr_pool_t *pool, server_rec *s, const char *cookie_header);

/* The value of cookie name last set on the response (Set-Cookie in err_headers_out), or NULL;
 * its attributes ("; Path=...") in *attributes unless that is NULL. */
const char *stub_set_cookie(qwd_req_t *q, const char *name, const char **attributes);

/* Runs directive name of qwd_directives[] with up to three arguments on cfg (a per-directory
 * record) in server s, as Apache would: returns its error text, or NULL. */
const char *stub_directive(apr_pool_t *pool, server_rec *s, void *cfg, const char *name,
                           const char *arg1, const char *arg2, const char *arg3);

/* The last line ap_log_error logged ("" if none since stub_log_clear). */
const char *stub_last_log(void);
void stub_log_clear(void);

#endif
