/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the module's configuration (mod_qwd/qwd_config.c): each directive validated at
 * config time with its error text, the defaults of the getters, and merging by the rules. */
#include "unit.h"
#include "stub.h"
#include "qwd_argv.h"

#include <apr_strings.h>

/* One directive with one argument on the fixture request's per-directory record. */
static const char *set1(stub_fixture *f, const char *name, const char *arg)
{
    return stub_directive(f->pool, f->s, f->q->cfg, name, arg, NULL, NULL);
}

UNIT_TEST(config_defaults_apply_while_unset)
{
    stub_fixture f;
    stub_fixture_open(&f);
    CHECK_STR(qwd_cfg_location(f.q->cfg), "/qwd");
    CHECK_INT(qwd_cfg_auth_mode(f.q->cfg), QWD_AUTH_FORM);
    CHECK_INT(qwd_cfg_max_sessions(f.q->cfg), 20);
    CHECK_INT(qwd_cfg_max_sessions_per_user(f.q->cfg), 2);
    CHECK_INT(qwd_cfg_max_cpu_per_user(f.q->cfg), 4);
    CHECK_INT(qwd_cfg_max_memory_per_user(f.q->cfg), 4096);
    CHECK(qwd_cfg_max_load(f.q->cfg) == 0);
    CHECK_INT(qwd_cfg_default_cpu(f.q->cfg), 1);
    CHECK_INT(qwd_cfg_default_memory(f.q->cfg), 1024);
    CHECK_INT(qwd_cfg_default_lifetime(f.q->cfg), 3600);
    CHECK_INT(qwd_cfg_max_lifetime(f.q->cfg), 86400);
    CHECK_STR(qwd_cfg_viewer_url(f.q->cfg), "/novnc/vnc.html");
    CHECK_INT(qwd_cfg_max_body(f.q->cfg), 65536);
    CHECK_INT(qwd_cfg_websocket_tickets(f.q->cfg), 0);
    CHECK_INT(qwd_cfg_websocket_gate(f.q->cfg), 0);
    CHECK_INT(qwd_cfg_cookie_lifetime(f.q->cfg), 86400);
    CHECK_INT(qwd_cfg_throttle_max(f.q->cfg), 10);
    CHECK_INT(qwd_cfg_throttle_window(f.q->cfg), 900);
    CHECK_INT(qwd_cfg_throttle_addr_max(f.q->cfg), 50);
    CHECK_INT(qwd_cfg_mail_timeout(f.q->cfg), 10);
    CHECK_INT(qwd_cfg_mail_verify_peer(f.q->cfg), 1);
    CHECK_STR(qwd_cfg_mail_from(f.q->cfg), "qwd@localhost");
    CHECK_INT(qwd_cfg_mfa(f.q->cfg), QWD_MFA_OFF);
    CHECK_INT(qwd_cfg_code_lifetime(f.q->cfg), 600);
    CHECK(qwd_cfg_helper_socket(f.q->cfg) == NULL);
    CHECK(qwd_cfg_admins(f.q->cfg) == NULL);
    CHECK(qwd_scfg_secret_file(stub_server_config(f.s)) == NULL);
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_int_directives_take_whole_numbers_in_range)
{
    stub_fixture f;
    stub_fixture_open(&f);
    CHECK_STR(set1(&f, "QwdMaxSessions", "0"), NULL);
    CHECK_INT(qwd_cfg_max_sessions(f.q->cfg), 0);
    CHECK_STR(set1(&f, "QwdMaxSessionsPerUser", "7"), NULL);
    CHECK_INT(qwd_cfg_max_sessions_per_user(f.q->cfg), 7);
    CHECK_STR(set1(&f, "QwdMaxSessions", "-1"), "QwdMaxSessions: '-1' is not a whole number >= 0");
    CHECK_STR(set1(&f, "QwdMaxCPUPerUser", "0"),
              "QwdMaxCPUPerUser: '0' is not a whole number >= 1");
    CHECK_STR(set1(&f, "QwdDefaultMemory", "12x"),
              "QwdDefaultMemory: '12x' is not a whole number >= 1");
    CHECK_STR(set1(&f, "QwdMaxLifetime", ""), "QwdMaxLifetime: '' is not a whole number >= 1");
    CHECK_STR(set1(&f, "QwdCookieLifetime", "1000000001"),
              "QwdCookieLifetime: '1000000001' is not a whole number >= 1");
    CHECK_STR(set1(&f, "QwdCookieLifetime", "1000000000"), NULL);
    CHECK_STR(set1(&f, "QwdMaxLoad", "1.5"), NULL);
    CHECK(qwd_cfg_max_load(f.q->cfg) == 1.5);
    CHECK_STR(set1(&f, "QwdMaxLoad", "-2"),
              "QwdMaxLoad: expects a load average >= 0 (0 = no limit)");
    CHECK_STR(set1(&f, "QwdMaxRequestBody", "1023"),
              "QwdMaxRequestBody: expects a size in bytes between 1024 and 16777216");
    CHECK_STR(set1(&f, "QwdMaxRequestBody", "16777217"),
              "QwdMaxRequestBody: expects a size in bytes between 1024 and 16777216");
    CHECK_STR(set1(&f, "QwdMaxRequestBody", "16777216"), NULL);
    CHECK_INT(qwd_cfg_max_body(f.q->cfg), 16777216);
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_auth_and_mfa_take_their_words)
{
    stub_fixture f;
    stub_fixture_open(&f);
    CHECK_STR(set1(&f, "QwdAuth", "Apache"), NULL);
    CHECK_INT(qwd_cfg_auth_mode(f.q->cfg), QWD_AUTH_APACHE);
    CHECK_STR(set1(&f, "QwdAuth", "email"), NULL);
    CHECK_INT(qwd_cfg_auth_mode(f.q->cfg), QWD_AUTH_EMAIL);
    CHECK_STR(set1(&f, "QwdAuth", "none"), NULL);
    CHECK_INT(qwd_cfg_auth_mode(f.q->cfg), QWD_AUTH_NONE);
    CHECK_STR(set1(&f, "QwdAuth", "basic"), "QwdAuth: expects none, form, apache or email");
    CHECK_STR(set1(&f, "QwdMFA", "email"), NULL);
    CHECK_INT(qwd_cfg_mfa(f.q->cfg), QWD_MFA_EMAIL);
    CHECK_STR(set1(&f, "QwdMFA", "sms"), "QwdMFA: expects off or email");
    CHECK_STR(set1(&f, "QwdMFAMailDomain", "example.org"), NULL);
    CHECK_STR(set1(&f, "QwdMFAMailDomain", "a@b"), "QwdMFAMailDomain: expects a domain name");
    CHECK_STR(set1(&f, "QwdAuthProvider", "file"), NULL);
    CHECK_STR(set1(&f, "QwdAuthProvider", "ldap"),
              "QwdAuthProvider: unknown authn provider 'ldap' (is mod_authn_ldap loaded before "
              "mod_qwd's directives?)");
    CHECK_INT(qwd_cfg_providers(f.q->cfg)->nelts, 1);
    CHECK_STR(APR_ARRAY_IDX(qwd_cfg_providers(f.q->cfg), 0, qwd_provider_t).name, "file");
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_urls_paths_and_addresses_are_checked)
{
    stub_fixture f;
    char long_path[QWD_UNIX_PATH_MAX + 2];
    stub_fixture_open(&f);
    CHECK_STR(set1(&f, "QwdHelperSocket", "/run/qwd/helper.sock"), NULL);
    CHECK_STR(qwd_cfg_helper_socket(f.q->cfg), "/run/qwd/helper.sock");
    CHECK_STR(set1(&f, "QwdHelperSocket", "run/helper.sock"),
              "QwdHelperSocket: expects an absolute path shorter than 108 bytes");
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0'; /* 108 bytes: one too many */
    CHECK_STR(set1(&f, "QwdHelperSocket", long_path),
              "QwdHelperSocket: expects an absolute path shorter than 108 bytes");
    long_path[sizeof(long_path) - 2] = '\0'; /* 107 bytes fit */
    CHECK_STR(set1(&f, "QwdHelperSocket", long_path), NULL);
    CHECK_STR(set1(&f, "QwdViewerURL", "/qwd/viewer/vnc.html"), NULL);
    CHECK_STR(qwd_cfg_viewer_url(f.q->cfg), "/qwd/viewer/vnc.html");
    CHECK_STR(set1(&f, "QwdStylesheet", "/a b.css"), "QwdStylesheet: '/a b.css' is not a URL");
    CHECK_STR(set1(&f, "QwdWebsocketURL", "wss://h/ws"), NULL);
    CHECK_STR(set1(&f, "QwdWebsocketURL", "http://h/ws"),
              "QwdWebsocketURL: expects ws://HOST:PORT/PATH, wss://… or a path (/…) on this "
              "server");
    CHECK_STR(set1(&f, "QwdIMAPServer", "imaps://mail.example.org:993"), NULL);
    CHECK_STR(set1(&f, "QwdIMAPServer", "pop3://mail"),
              "QwdIMAPServer: expects imap://HOST[:PORT] (STARTTLS) or imaps://HOST[:PORT] (TLS), "
              "not 'pop3://mail'");
    CHECK_STR(set1(&f, "QwdSMTPRelay", "smtpx://mail"),
              "QwdSMTPRelay: expects smtp://HOST[:PORT] (STARTTLS) or smtps://HOST[:PORT] (TLS), "
              "not 'smtpx://mail'");
    CHECK_STR(set1(&f, "QwdMailFrom", "Qwd <qwd@example.org>"),
              "QwdMailFrom: expects a plain address, user@domain");
    CHECK_STR(set1(&f, "QwdMailCACertificate", "/nonexistent/ca.pem"),
              "QwdMailCACertificate: '/nonexistent/ca.pem' is not a readable file");
    CHECK_STR(set1(&f, "QwdEmailDomain", "Example.ORG"), NULL);
    CHECK_STR(APR_ARRAY_IDX(qwd_cfg_email_domains(f.q->cfg), 0, const char *), "example.org");
    CHECK_STR(set1(&f, "QwdEmailDomain", ".example.org"),
              "QwdEmailDomain: '.example.org' is not a domain name");
    CHECK_STR(set1(&f, "QwdWebsocketTickets", "on"), NULL);
    CHECK_INT(qwd_cfg_websocket_tickets(f.q->cfg), 1);
    CHECK_STR(set1(&f, "QwdMailVerifyPeer", "off"), NULL);
    CHECK_INT(qwd_cfg_mail_verify_peer(f.q->cfg), 0);
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_login_throttle_sets_count_window_and_per_address)
{
    stub_fixture f;
    qwd_dir_config_t *server, *location, *merged;
    stub_fixture_open(&f);
    CHECK_STR(stub_directive(f.pool, f.s, f.q->cfg, "QwdLoginThrottle", "3", "60", NULL), NULL);
    CHECK_INT(qwd_cfg_throttle_max(f.q->cfg), 3);
    CHECK_INT(qwd_cfg_throttle_window(f.q->cfg), 60);
    CHECK_INT(qwd_cfg_throttle_addr_max(f.q->cfg), 15); /* 5 x N */
    CHECK_STR(stub_directive(f.pool, f.s, f.q->cfg, "QwdLoginThrottle", "3", "60", "7"), NULL);
    CHECK_INT(qwd_cfg_throttle_addr_max(f.q->cfg), 7);
    CHECK_STR(stub_directive(f.pool, f.s, f.q->cfg, "QwdLoginThrottle", "0", NULL, NULL), NULL);
    CHECK_INT(qwd_cfg_throttle_max(f.q->cfg), 0);
    /* a section's N without N_PER_ADDRESS counts 5 x its own N, not the enclosing section's */
    server = qwd_create_dir_config(f.pool, NULL);
    location = qwd_create_dir_config(f.pool, NULL);
    CHECK_STR(stub_directive(f.pool, f.s, server, "QwdLoginThrottle", "10", "900", "100"), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, location, "QwdLoginThrottle", "4", "60", NULL), NULL);
    merged = qwd_merge_dir_config(f.pool, server, location);
    CHECK_INT(qwd_cfg_throttle_max(merged), 4);
    CHECK_INT(qwd_cfg_throttle_window(merged), 60);
    CHECK_INT(qwd_cfg_throttle_addr_max(merged), 20);
    CHECK_STR(stub_directive(f.pool, f.s, f.q->cfg, "QwdLoginThrottle", "3", NULL, NULL),
              "QwdLoginThrottle: expects N SECONDS [N_PER_ADDRESS] (N failed logins per user "
              "within SECONDS; 0 = off)");
    CHECK_STR(stub_directive(f.pool, f.s, f.q->cfg, "QwdLoginThrottle", "3", "604801", NULL),
              "QwdLoginThrottle: expects N SECONDS [N_PER_ADDRESS] (N failed logins per user "
              "within SECONDS; 0 = off)");
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_merge_takes_what_a_section_sets_and_replaces_lists)
{
    stub_fixture f;
    qwd_dir_config_t *server, *location, *merged;
    stub_fixture_open(&f);
    server = qwd_create_dir_config(f.pool, NULL);
    location = qwd_create_dir_config(f.pool, apr_pstrdup(f.pool, "/qwd"));
    CHECK_STR(stub_directive(f.pool, f.s, server, "QwdMaxSessions", "5", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, server, "QwdMaxLoad", "2", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, server, "QwdAdmin", "root", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, server, "QwdAdmin", "ops", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, server, "QwdWebsocketTickets", "on", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, location, "QwdMaxSessions", "9", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, location, "QwdAdmin", "alice", NULL, NULL), NULL);
    CHECK_STR(stub_directive(f.pool, f.s, location, "QwdWebsocketTickets", "off", NULL, NULL),
              NULL);
    merged = qwd_merge_dir_config(f.pool, server, location);
    CHECK_STR(qwd_cfg_location(merged), "/qwd");
    CHECK_INT(qwd_cfg_max_sessions(merged), 9);          /* the Location's own */
    CHECK(qwd_cfg_max_load(merged) == 2);                /* inherited */
    CHECK_INT(qwd_cfg_websocket_tickets(merged), 0);     /* an explicit Off wins */
    CHECK_INT(qwd_cfg_max_sessions_per_user(merged), 2); /* nobody set it: default */
    CHECK_INT(qwd_cfg_admins(merged)->nelts, 1);         /* replaced, not appended */
    CHECK(qwd_cfg_is_admin(merged, "alice") && !qwd_cfg_is_admin(merged, "root"));
    merged = qwd_merge_dir_config(f.pool, location,
                                  qwd_create_dir_config(f.pool, apr_pstrdup(f.pool, "/qwd/ws")));
    CHECK_INT(qwd_cfg_max_sessions(merged), 9);
    CHECK_STR(qwd_cfg_location(merged), "/qwd/ws");
    CHECK(qwd_cfg_is_admin(merged, "alice"));
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_secret_file_is_server_relative_and_merged)
{
    stub_fixture f;
    qwd_server_config_t *base, *vhost, *merged;
    stub_fixture_open(&f);
    CHECK_STR(stub_directive(f.pool, f.s, f.q->cfg, "QwdSecretFile", "keys/qwd.key", NULL, NULL),
              NULL);
    base = stub_server_config(f.s);
    CHECK_STR(qwd_scfg_secret_file(base), "/srv/qwd-unit/keys/qwd.key");
    vhost = qwd_create_server_config(f.pool, f.s);
    merged = qwd_merge_server_config(f.pool, base, vhost);
    CHECK_STR(qwd_scfg_secret_file(merged), "/srv/qwd-unit/keys/qwd.key");
    apr_pool_destroy(f.pool);
}

UNIT_TEST(config_idle_stop_takes_minutes_or_a_unit)
{
    stub_fixture f;
    stub_fixture_open(&f);
    CHECK_INT(qwd_cfg_idle_stop(f.q->cfg), 0); /* off */
    CHECK_INT(qwd_cfg_share_login(f.q->cfg), 0);
    static const struct {
        const char *arg;
        int seconds;
    } good[] = {{"15", 900}, {"45s", 45}, {"2m", 120}, {"3h", 10800}, {"0", 0}, {"0s", 0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_STR(set1(&f, "QwdIdleStop", good[i].arg), NULL);
        CHECK_INT(qwd_cfg_idle_stop(f.q->cfg), good[i].seconds);
    }
    static const char *const bad[] = {"",  "-1",  "5d",          "5ms",
                                      "m", "1.5", "99999999999", "20000000m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_STR(set1(&f, "QwdIdleStop", bad[i]),
                  "QwdIdleStop: expects minutes, or a number with s, m or h (0 = never)");
    }
    apr_pool_destroy(f.pool);
}
