/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what a browser presents to open a desktop — the request URI (mod_qwd/qwd_route.c),
 * a session link's capability (qwd_capability.c), a websocket ticket (qwd_ticket.c) and the
 * identity and CSRF cookies (qwd_secret.c), linked against the unit tests' httpd stubs.
 * Input lines: URI, ticket, Cookie header, CSRF token. A ticket or cookie line whose first byte
 * is '!' gets a valid MAC, so the fuzzer also reaches what is parsed after the signature. */
#include "fuzz.h"
#include "qwd_capability.h"
#include "qwd_route.h"
#include "qwd_secret.h"
#include "qwd_ticket.h"
#include "stub.h"

#include <apr_strings.h>
#include <stdlib.h>
#include <string.h>

static server_rec *server;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    apr_pool_t *pool;
    fuzz_apr_init();
    apr_pool_create(&pool, NULL);
    server = stub_server(pool);
    return 0;
}

/* The Cookie header: line as it is, or, when it starts with '!', an identity cookie whose
 * payload is the rest of the line, validly signed. */
static const char *cookie_header(apr_pool_t *pool, server_rec *s, const char *line)
{
    if (line[0] != '!') {
        return line;
    }
    qwd_req_t *signer = stub_req(pool, s, NULL);
    return apr_pstrcat(pool, "qwd_user=", line + 1, ".",
                       qwd_secret_sign(signer, apr_pstrcat(pool, "user|", line + 1, NULL)), NULL);
}

/* A ticket's fields as qwd_ticket_check signs them: "SESSION|EXPIRY|NONCE" from "S.E.N". */
static const char *ticket_fields(qwd_req_t *q, const char *ticket)
{
    char *fields = apr_pstrdup(q->r->pool, ticket);
    for (char *dot = fields; (dot = strchr(dot, '.'));) {
        *dot = '|';
    }
    return fields;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    char *text = fuzz_text(pool, data, size);
    const char *uri = fuzz_line(&text), *ticket = fuzz_line(&text), *cookie = fuzz_line(&text),
               *csrf = fuzz_line(&text);
    qwd_req_t *q = stub_req(pool, server, cookie_header(pool, server, cookie));
    const char *base, *route, *why;
    qwd_ticket_t checked;

    if (qwd_route_split(pool, uri, strncmp(uri, "/qwd", 4) ? NULL : "/qwd", &base, &route)) {
        volatile int known = qwd_route_known(route);
        (void)known;
        if (!strncmp(route, "/s/", 3)) {
            const char *capability = apr_pstrndup(pool, route + 3, strcspn(route + 3, "/"));
            if (strlen(qwd_link_key(q, capability)) != QWD_MAC_HEX_LEN) {
                abort();
            }
        }
    }
    if (ticket[0] == '!') {
        ticket = apr_pstrcat(
            pool, ticket + 1, ".",
            qwd_secret_sign(q, apr_pstrcat(pool, "ws|", ticket_fields(q, ticket + 1), NULL)), NULL);
    }
    const char *session = qwd_ticket_check(q, ticket, &checked, &why);
    if (session && (!checked.nonce || why)) {
        abort();
    }
    volatile const char *user = qwd_identity_cookie_user(q);
    (void)user;
    volatile int valid = qwd_csrf_valid(q, csrf);
    (void)valid;
    apr_pool_destroy(pool);
    return 0;
}
