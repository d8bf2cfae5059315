/* SPDX-License-Identifier: Apache-2.0 */
/* mod_qwd's configuration, spelled once: one table per record (the per-directory record of a
 * <Location> with SetHandler qwd, and the per-server record) from which the struct, the unset
 * values of create, the merge, the command table and the typed getters are all generated. */
#ifndef QWD_CONFIG_H
#define QWD_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <mod_auth.h>

/* The explicit "not set here" value of every int field; merge takes the child's value unless
 * it is unset. */
#define QWD_UNSET (-1)

typedef enum {
    QWD_AUTH_NONE = 0,
    QWD_AUTH_FORM = 1,
    QWD_AUTH_APACHE = 2,
    QWD_AUTH_EMAIL = 3 /* a one-time link mailed to an address of QwdEmailDomain */
} qwd_auth_mode_t;

typedef enum { QWD_MFA_OFF = 0, QWD_MFA_EMAIL = 1 } qwd_mfa_mode_t;

typedef struct qwd_provider {
    const char *name;
    const authn_provider *provider;
} qwd_provider_t;

/* QwdLoginThrottle without N_PER_ADDRESS: this many times N failures per client address. */
#define QWD_THROTTLE_ADDR_FACTOR 5
/* The bounds of QwdLoginThrottle: failures counted, and the longest window (s), after which
 * a recorded failure counts for nothing anywhere. */
#define QWD_THROTTLE_COUNT_MAX 1000000
#define QWD_THROTTLE_WINDOW_MAX (7 * 86400)

/* The types of the tables' fields: the C type, the value create gives (unset), and the test
 * whether a section set it. */
#define QWD_CTYPE_INT int
#define QWD_CTYPE_FLAG int
#define QWD_CTYPE_DOUBLE double
#define QWD_CTYPE_SIZE apr_off_t
#define QWD_CTYPE_STRING const char *
#define QWD_CTYPE_LIST apr_array_header_t *
#define QWD_UNSET_INT QWD_UNSET
#define QWD_UNSET_FLAG QWD_UNSET
#define QWD_UNSET_DOUBLE QWD_UNSET
#define QWD_UNSET_SIZE QWD_UNSET
#define QWD_UNSET_STRING NULL
#define QWD_UNSET_LIST NULL
#define QWD_IS_SET_INT(value) ((value) != QWD_UNSET)
#define QWD_IS_SET_FLAG(value) ((value) != QWD_UNSET)
#define QWD_IS_SET_DOUBLE(value) ((value) >= 0)
#define QWD_IS_SET_SIZE(value) ((value) != QWD_UNSET)
#define QWD_IS_SET_STRING(value) ((value) != NULL)
#define QWD_IS_SET_LIST(value) ((value) != NULL)

/* The merge rules. OVERRIDE: a section's own value if it set one, else the enclosing
 * section's. REPLACE, for lists: a section's list replaces the enclosing one as a whole,
 * never appended (a Location states its own admins). */
#define QWD_MERGE_OVERRIDE(TYPE, base, add) (QWD_IS_SET_##TYPE(add) ? (add) : (base))
#define QWD_MERGE_REPLACE(TYPE, base, add) (QWD_IS_SET_##TYPE(add) ? (add) : (base))

/* Where a directive may stand: ANY (server config, virtual host, <Location>, <Directory>),
 * DIR (<Location>, <Directory>), SERVER (server config, virtual host). */
#define QWD_CONTEXT_ANY (RSRC_CONF | ACCESS_CONF)
#define QWD_CONTEXT_DIR ACCESS_CONF
#define QWD_CONTEXT_SERVER RSRC_CONF

/* The per-directory record, one row per field:
 *   DIRECTIVE(TYPE, field, default, merge rule, "QwdName", how, handler, context,
 *             "docs anchor", "help")  a field set by a directive of its own;
 *   FIELD(TYPE, field, default, merge rule, "docs anchor")  a field set otherwise.
 * The default is what the getter qwd_cfg_FIELD(cfg) answers while no section set the field
 * (an expression; it may read earlier fields through their getters). "how" is the
 * AP_INIT_<how> of the directive, the handler validates at config time (qwd_config.c), and
 * the docs anchor names the section of docs/directives.md that documents it
 * (test/test_001_docs.py checks documentation, default and merge rule of every row). */
#define QWD_DIR_CONFIG(DIRECTIVE, FIELD)                                                           \
    FIELD(STRING, location, NULL, OVERRIDE, "sethandler-qwd")                                      \
    DIRECTIVE(STRING, helper_socket, NULL, OVERRIDE, "QwdHelperSocket", TAKE1, set_helper_socket,  \
              ANY, "qwdhelpersocket", "the qwd-helper's Unix socket")                              \
    DIRECTIVE(INT, auth_mode, QWD_AUTH_FORM, OVERRIDE, "QwdAuth", TAKE1, set_auth, ANY, "qwdauth", \
              "none (any user name), form (user + password checked by QwdAuthProvider) or "        \
              "apache (r->user set by Apache's own authentication)")                               \
    DIRECTIVE(LIST, providers, NULL, REPLACE, "QwdAuthProvider", ITERATE, add_provider, ANY,       \
              "qwdauthprovider",                                                                   \
              "authn providers (file, dbm, dbd, ldap, ...) tried in order for QwdAuth form "       \
              "and the API's Basic credentials")                                                   \
    DIRECTIVE(LIST, admins, NULL, REPLACE, "QwdAdmin", ITERATE, add_admin, ANY, "qwdadmin",        \
              "users who see the monitor and may stop any session")                                \
    DIRECTIVE(INT, max_sessions, 20, OVERRIDE, "QwdMaxSessions", TAKE1, set_limit, ANY, "limits",  \
              "live sessions of all users together (0 = no limit)")                                \
    DIRECTIVE(INT, max_sessions_per_user, 2, OVERRIDE, "QwdMaxSessionsPerUser", TAKE1, set_limit,  \
              ANY, "limits", "live sessions of one user (0 = no limit)")                           \
    DIRECTIVE(INT, max_cpu_per_user, 4, OVERRIDE, "QwdMaxCPUPerUser", TAKE1, set_positive, ANY,    \
              "limits", "virtual CPUs of one user's live sessions together")                       \
    DIRECTIVE(INT, max_memory_per_user, 4096, OVERRIDE, "QwdMaxMemoryPerUser", TAKE1,              \
              set_positive, ANY, "limits", "memory (MiB) of one user's live sessions together")    \
    DIRECTIVE(DOUBLE, max_load, 0, OVERRIDE, "QwdMaxLoad", TAKE1, set_max_load, ANY, "limits",     \
              "no new session while the host's 1-minute load is above this (0 = no limit)")        \
    DIRECTIVE(INT, default_cpu, 1, OVERRIDE, "QwdDefaultCPU", TAKE1, set_positive, ANY,            \
              "defaults-of-a-session",                                                             \
              "virtual CPUs preselected on the form and used by the API by default")               \
    DIRECTIVE(INT, default_memory, 1024, OVERRIDE, "QwdDefaultMemory", TAKE1, set_positive, ANY,   \
              "defaults-of-a-session",                                                             \
              "memory (MiB) preselected on the form and used by the API by default")               \
    DIRECTIVE(INT, default_lifetime, 3600, OVERRIDE, "QwdDefaultLifetime", TAKE1, set_positive,    \
              ANY, "defaults-of-a-session",                                                        \
              "lifetime (s) of a session unless the user picks another")                           \
    DIRECTIVE(INT, max_lifetime, 86400, OVERRIDE, "QwdMaxLifetime", TAKE1, set_positive, ANY,      \
              "defaults-of-a-session", "longest lifetime (s) a user may pick")                     \
    DIRECTIVE(STRING, viewer_url, "/novnc/vnc.html", OVERRIDE, "QwdViewerURL", TAKE1, set_url,     \
              ANY, "qwdviewerurl", "the noVNC page (vnc.html) the links open")                     \
    DIRECTIVE(STRING, websocket_url, NULL, OVERRIDE, "QwdWebsocketURL", TAKE1, set_websocket_url,  \
              ANY, "qwdwebsocketurl",                                                              \
              "where browsers reach websockify: ws://, wss:// or a path on this server")           \
    DIRECTIVE(STRING, terms, NULL, OVERRIDE, "QwdTerms", TAKE1, ap_set_string_slot, ANY,           \
              "qwdterms", "terms of use the user must accept: a text, or a URL to a page")         \
    DIRECTIVE(STRING, stylesheet, NULL, OVERRIDE, "QwdStylesheet", TAKE1, set_url, ANY,            \
              "qwdstylesheet", "URL of the stylesheet the pages link (htdocs/qwd.css)")            \
    DIRECTIVE(SIZE, max_body, 65536, OVERRIDE, "QwdMaxRequestBody", TAKE1, set_max_body, ANY,      \
              "qwdmaxrequestbody", "largest request body (bytes) the forms and the API accept")    \
    DIRECTIVE(STRING, static_url, NULL, OVERRIDE, "QwdStaticURL", TAKE1, set_url, ANY,             \
              "qwdstaticurl",                                                                      \
              "URL where htdocs/ is served (qwd.css, qwd-progress.js), ending in /")               \
    DIRECTIVE(FLAG, websocket_tickets, 0, OVERRIDE, "QwdWebsocketTickets", FLAG, ap_set_flag_slot, \
              ANY, "qwdwebsockettickets",                                                          \
              "links open /s/ID, which mints a short-lived ticket for the websocket at "           \
              "QwdWebsocketURL (a Location with QwdWebsocketGate On) instead of handing "          \
              "out websockify's token")                                                            \
    DIRECTIVE(FLAG, websocket_gate, 0, OVERRIDE, "QwdWebsocketGate", FLAG, ap_set_flag_slot, DIR,  \
              "qwdwebsocketgate",                                                                  \
              "in the websocket's <Location>: refuse (403) any request without a valid "           \
              "ticket and give websockify the session's token instead")                            \
    DIRECTIVE(INT, idle_stop, 0, OVERRIDE, "QwdIdleStop", TAKE1, set_idle_stop, ANY,               \
              "qwdidlestop",                                                                       \
              "stop a session nobody has watched for this long: minutes, or a number with s, m "   \
              "or h (0 = never)")                                                                  \
    DIRECTIVE(FLAG, share_login, 0, OVERRIDE, "QwdShareLogin", FLAG, ap_set_flag_slot, ANY,        \
              "qwdsharelogin",                                                                     \
              "opening a share's link needs a logged-in user (default off: the link is enough)")   \
    DIRECTIVE(INT, cookie_lifetime, 86400, OVERRIDE, "QwdCookieLifetime", TAKE1, set_positive,     \
              ANY, "qwdcookielifetime", "how long (s) the signed identity cookie stays valid")     \
    DIRECTIVE(INT, throttle_max, 10, OVERRIDE, "QwdLoginThrottle", TAKE123, set_throttle, ANY,     \
              "qwdloginthrottle",                                                                  \
              "N SECONDS [N_PER_ADDRESS]: after N failed logins of a user (or "                    \
              "N_PER_ADDRESS from one client address) within SECONDS, answer 429")                 \
    FIELD(INT, throttle_window, 900, OVERRIDE, "qwdloginthrottle")                                 \
    FIELD(INT, throttle_addr_max, qwd_cfg_throttle_max(cfg) * QWD_THROTTLE_ADDR_FACTOR, OVERRIDE,  \
          "qwdloginthrottle")                                                                      \
    DIRECTIVE(STRING, imap_server, NULL, OVERRIDE, "QwdIMAPServer", TAKE1, set_imap_url, ANY,      \
              "qwdimapserver",                                                                     \
              "IMAP server the imap authn provider logs in to: imap:// (STARTTLS) or "             \
              "imaps://")                                                                          \
    DIRECTIVE(STRING, smtp_auth_server, NULL, OVERRIDE, "QwdSMTPAuthServer", TAKE1, set_smtp_url,  \
              ANY, "qwdsmtpauthserver",                                                            \
              "SMTP server the smtp authn provider logs in to (AUTH): smtp:// (STARTTLS) "         \
              "or smtps://")                                                                       \
    DIRECTIVE(STRING, mail_ca_file, NULL, OVERRIDE, "QwdMailCACertificate", TAKE1, set_mail_ca,    \
              ANY, "qwdmailcacertificate",                                                         \
              "PEM file of the CAs that sign the mail servers' certificates")                      \
    DIRECTIVE(INT, mail_timeout, 10, OVERRIDE, "QwdMailTimeout", TAKE1, set_positive, ANY,         \
              "qwdmailtimeout", "seconds a talk with a mail server may take")                      \
    DIRECTIVE(FLAG, mail_verify_peer, 1, OVERRIDE, "QwdMailVerifyPeer", FLAG, ap_set_flag_slot,    \
              ANY, "qwdmailverifypeer",                                                            \
              "check the mail servers' certificates and names (default on)")                       \
    DIRECTIVE(STRING, smtp_relay, NULL, OVERRIDE, "QwdSMTPRelay", TAKE1, set_smtp_url, ANY,        \
              "qwdsmtprelay",                                                                      \
              "SMTP server mod_qwd sends login codes through (smtp:// or smtps://)")               \
    DIRECTIVE(STRING, mail_from, "qwd@localhost", OVERRIDE, "QwdMailFrom", TAKE1, set_mail_from,   \
              ANY, "qwdmailfrom", "sender address of the login codes")                             \
    DIRECTIVE(LIST, email_domains, NULL, REPLACE, "QwdEmailDomain", ITERATE, add_email_domain,     \
              ANY, "qwdemaildomain",                                                               \
              "domains whose addresses may log in by mailed link (QwdAuth email)")                 \
    DIRECTIVE(INT, mfa, QWD_MFA_OFF, OVERRIDE, "QwdMFA", TAKE1, set_mfa, ANY, "qwdmfa",            \
              "off, or email: after the password, a code mailed to the user")                      \
    DIRECTIVE(STRING, mfa_mail_domain, NULL, OVERRIDE, "QwdMFAMailDomain", TAKE1, set_mfa_domain,  \
              ANY, "qwdmfamaildomain", "QwdMFA email mails the code to USER@this domain")          \
    DIRECTIVE(INT, code_lifetime, 600, OVERRIDE, "QwdLoginCodeLifetime", TAKE1, set_positive, ANY, \
              "qwdlogincodelifetime", "seconds a mailed login code or link stays valid")           \
    DIRECTIVE(INT, audit_retention, 365, OVERRIDE, "QwdAuditRetention", TAKE1, set_limit, ANY,     \
              "qwdauditretention", "days the audit trail keeps an entry (0 = forever)")            \
    DIRECTIVE(FLAG, owner_extend, 0, OVERRIDE, "QwdOwnerExtend", FLAG, ap_set_flag_slot, ANY,      \
              "qwdownerextend",                                                                    \
              "owners may extend their own sessions' lifetime (admins always may), up to "         \
              "QwdMaxLifetime")                                                                    \
    DIRECTIVE(FLAG, script_text, 0, OVERRIDE, "QwdScriptText", FLAG, ap_set_flag_slot, ANY,        \
              "data-sessions",                                                                     \
              "users may type a start-up script of their own (else only the admin's)")             \
    DIRECTIVE(INT, script_max, 4096, OVERRIDE, "QwdScriptMaxSize", TAKE1, set_script_max, ANY,     \
              "data-sessions", "largest start-up script (bytes) a user may type or name by URL")   \
    DIRECTIVE(LIST, script_url_prefixes, NULL, REPLACE, "QwdScriptURLPrefix", ITERATE,             \
              add_script_url_prefix, ANY, "data-sessions",                                         \
              "http:// or https:// prefixes, ending in /, below which users may name a "           \
              "start-up script by URL")                                                            \
    DIRECTIVE(INT, max_scratch_gib, 20, OVERRIDE, "QwdMaxScratchDisk", TAKE1, set_positive, ANY,   \
              "data-sessions", "largest scratch disk (GiB) a user may choose for an ISO machine")

/* The per-server record, in the same form. */
#define QWD_SERVER_CONFIG(DIRECTIVE, FIELD)                                                     \
    DIRECTIVE(STRING, secret_file, NULL, OVERRIDE, "QwdSecretFile", TAKE1, set_secret_file,     \
              SERVER, "qwdsecretfile",                                                          \
              "file holding the key that signs CSRF tokens and cookies (created 0600)")         \
    DIRECTIVE(INT, db_cache_kib, 256, OVERRIDE, "QwdDatabaseCache", TAKE1, set_server_positive, \
              SERVER, "qwddatabasecache",                                                       \
              "KiB of SQLite's page cache per database connection (SQLite's own: 2000)")

#define QWD_CONFIG_MEMBER_(TYPE, field, ...) QWD_CTYPE_##TYPE field;

typedef struct qwd_dir_config {
    QWD_DIR_CONFIG(QWD_CONFIG_MEMBER_, QWD_CONFIG_MEMBER_)
} qwd_dir_config_t;

#define QWD_SECRET_LEN 32

typedef struct qwd_server_config {
    QWD_SERVER_CONFIG(QWD_CONFIG_MEMBER_, QWD_CONFIG_MEMBER_)
    /* The key that signs CSRF tokens and identity cookies: read or created in post_config by
     * the parent, so every worker process inherits the same one (qwd_secret.c). */
    unsigned char secret[QWD_SECRET_LEN];
    int has_secret;
    /* HMAC-SHA256 keyed with secret, made once per child (qwd_secret_child_init): each MAC
     * copies it instead of fetching the algorithm and hashing the key again. */
    void *keyed_mac;
} qwd_server_config_t;

/* The typed getters: qwd_cfg_FIELD(cfg) of the per-directory record, qwd_scfg_FIELD(scfg) of
 * the per-server one; each answers the field's value, or its default while it is unset. */
#define QWD_CONFIG_GETTER_(TYPE, field, default_value, ...)                     \
    static inline QWD_CTYPE_##TYPE qwd_cfg_##field(const qwd_dir_config_t *cfg) \
    {                                                                           \
        return QWD_IS_SET_##TYPE(cfg->field) ? cfg->field : (default_value);    \
    }
#define QWD_SERVER_GETTER_(TYPE, field, default_value, ...)                          \
    static inline QWD_CTYPE_##TYPE qwd_scfg_##field(const qwd_server_config_t *scfg) \
    {                                                                                \
        return QWD_IS_SET_##TYPE(scfg->field) ? scfg->field : (default_value);       \
    }
QWD_DIR_CONFIG(QWD_CONFIG_GETTER_, QWD_CONFIG_GETTER_)
QWD_SERVER_CONFIG(QWD_SERVER_GETTER_, QWD_SERVER_GETTER_)

extern module AP_MODULE_DECLARE_DATA qwd_module;
extern const command_rec qwd_directives[];

void *qwd_create_dir_config(apr_pool_t *pool, char *location);
void *qwd_merge_dir_config(apr_pool_t *pool, void *base, void *add);
void *qwd_create_server_config(apr_pool_t *pool, server_rec *s);
void *qwd_merge_server_config(apr_pool_t *pool, void *base, void *add);

/* Whether user is listed by QwdAdmin. */
int qwd_cfg_is_admin(const qwd_dir_config_t *cfg, const char *user);

#endif
