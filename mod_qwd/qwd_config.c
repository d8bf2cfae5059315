/* SPDX-License-Identifier: Apache-2.0 */
/* The directives of mod_qwd: their handlers (which validate at config time and fail with the
 * directive's name), and creation and merging of the per-directory and per-server records. */
#include "qwd_config.h"

#include <errno.h>

#include <apr_strings.h>
#include <ap_provider.h>
#include <http_log.h>

void *qwd_create_dir_config(apr_pool_t *pool, char *location)
{
    qwd_dir_config_t *cfg = apr_pcalloc(pool, sizeof(*cfg));
    cfg->location = location;
    cfg->auth_mode = QWD_UNSET;
    cfg->max_sessions = QWD_UNSET;
    cfg->max_sessions_per_user = QWD_UNSET;
    cfg->max_cpu_per_user = QWD_UNSET;
    cfg->max_memory_per_user = QWD_UNSET;
    cfg->max_load = QWD_UNSET;
    cfg->default_cpu = QWD_UNSET;
    cfg->default_memory = QWD_UNSET;
    cfg->default_lifetime = QWD_UNSET;
    cfg->max_lifetime = QWD_UNSET;
    cfg->max_body = QWD_UNSET;
    cfg->cookie_lifetime = QWD_UNSET;
    cfg->websocket_tickets = QWD_UNSET;
    cfg->websocket_gate = QWD_UNSET;
    cfg->throttle_max = QWD_UNSET;
    cfg->throttle_window = QWD_UNSET;
    cfg->throttle_addr_max = QWD_UNSET;
    cfg->mail_timeout = QWD_UNSET;
    cfg->mail_verify_peer = QWD_UNSET;
    cfg->mfa = QWD_UNSET;
    cfg->code_lifetime = QWD_UNSET;
    cfg->gpu_passthrough = QWD_UNSET;
    cfg->readonly_viewers = QWD_UNSET;
    return cfg;
}

#define MERGE_PTR(field) merged->field = add->field ? add->field : base->field
#define MERGE_INT(field) merged->field = add->field != QWD_UNSET ? add->field : base->field

void *qwd_merge_dir_config(apr_pool_t *pool, void *base_v, void *add_v)
{
    qwd_dir_config_t *base = base_v, *add = add_v;
    qwd_dir_config_t *merged = apr_pcalloc(pool, sizeof(*merged));
    MERGE_PTR(location);
    MERGE_PTR(helper_socket);
    MERGE_INT(auth_mode);
    /* lists are replaced as a whole, never appended: a Location states its own admins */
    MERGE_PTR(providers);
    MERGE_PTR(admins);
    MERGE_INT(max_sessions);
    MERGE_INT(max_sessions_per_user);
    MERGE_INT(max_cpu_per_user);
    MERGE_INT(max_memory_per_user);
    merged->max_load = add->max_load >= 0 ? add->max_load : base->max_load;
    MERGE_INT(default_cpu);
    MERGE_INT(default_memory);
    MERGE_INT(default_lifetime);
    MERGE_INT(max_lifetime);
    MERGE_PTR(viewer_url);
    MERGE_PTR(websocket_url);
    MERGE_PTR(terms);
    MERGE_PTR(stylesheet);
    MERGE_INT(max_body);
    MERGE_INT(cookie_lifetime);
    MERGE_PTR(static_url);
    MERGE_INT(websocket_tickets);
    MERGE_INT(websocket_gate);
    MERGE_INT(throttle_max);
    MERGE_INT(throttle_window);
    MERGE_INT(throttle_addr_max);
    MERGE_PTR(imap_server);
    MERGE_PTR(smtp_auth_server);
    MERGE_PTR(mail_ca_file);
    MERGE_INT(mail_timeout);
    MERGE_INT(mail_verify_peer);
    MERGE_PTR(smtp_relay);
    MERGE_PTR(mail_from);
    MERGE_PTR(email_domains);
    MERGE_INT(mfa);
    MERGE_PTR(mfa_mail_domain);
    MERGE_INT(code_lifetime);
    MERGE_PTR(mounts);
    MERGE_INT(gpu_passthrough);
    MERGE_PTR(boot_script_dir);
    MERGE_INT(readonly_viewers);
    MERGE_PTR(slurm_partition);
    return merged;
}

void *qwd_create_server_config(apr_pool_t *pool, server_rec *s)
{
    return apr_pcalloc(pool, sizeof(qwd_server_config_t));
}

void *qwd_merge_server_config(apr_pool_t *pool, void *base_v, void *add_v)
{
    qwd_server_config_t *base = base_v, *add = add_v;
    qwd_server_config_t *merged = apr_pcalloc(pool, sizeof(*merged));
    MERGE_PTR(secret_file);
    return merged;
}

int qwd_cfg_int(int value, int default_value)
{
    return value == QWD_UNSET ? default_value : value;
}

int qwd_cfg_is_admin(const qwd_dir_config_t *cfg, const char *user)
{
    int i;
    if (!cfg->admins || !user) {
        return 0;
    }
    for (i = 0; i < cfg->admins->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(cfg->admins, i, const char *), user) == 0) {
            return 1;
        }
    }
    return 0;
}

/* An int directive: cmd->info is the field's offset; 0 allowed (no limit) for limits. */
static const char *set_int(cmd_parms *cmd, void *cfg, const char *arg, int minimum)
{
    char *end;
    apr_int64_t value;
    errno = 0;
    value = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || errno == ERANGE || value < minimum || value > 1000000000) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number >= %d", cmd->cmd->name, arg,
                            minimum);
    }
    *(int *)((char *)cfg + (apr_size_t)cmd->info) = (int)value;
    return NULL;
}

static const char *set_limit(cmd_parms *cmd, void *cfg, const char *arg)
{
    return set_int(cmd, cfg, arg, 0);
}

static const char *set_positive(cmd_parms *cmd, void *cfg, const char *arg)
{
    return set_int(cmd, cfg, arg, 1);
}

static const char *set_max_load(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *end;
    double value = strtod(arg, &end);
    if (!*arg || *end || value < 0) {
        return "QwdMaxLoad: expects a load average >= 0 (0 = no limit)";
    }
    cfg->max_load = value;
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *end;
    apr_int64_t value = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || value < 1024 || value > 16 * 1024 * 1024) {
        return "QwdMaxRequestBody: expects a size in bytes between 1024 and 16777216";
    }
    cfg->max_body = value;
    return NULL;
}

static const char *set_auth(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    if (!strcasecmp(arg, "none")) {
        cfg->auth_mode = QWD_AUTH_NONE;
    }
    else if (!strcasecmp(arg, "form")) {
        cfg->auth_mode = QWD_AUTH_FORM;
    }
    else if (!strcasecmp(arg, "apache")) {
        cfg->auth_mode = QWD_AUTH_APACHE;
    }
    else if (!strcasecmp(arg, "email")) {
        cfg->auth_mode = QWD_AUTH_EMAIL;
    }
    else {
        return "QwdAuth: expects none, form, apache or email";
    }
    return NULL;
}

/* As mod_auth_form does: the provider must be loaded before the directive is read. */
static const char *add_provider(cmd_parms *cmd, void *cfg_v, const char *name)
{
    qwd_dir_config_t *cfg = cfg_v;
    qwd_provider_t *entry;
    const authn_provider *provider =
        ap_lookup_provider(AUTHN_PROVIDER_GROUP, name, AUTHN_PROVIDER_VERSION);
    if (!provider) {
        return apr_psprintf(cmd->pool,
                            "QwdAuthProvider: unknown authn provider '%s' (is mod_authn_%s "
                            "loaded before mod_qwd's directives?)",
                            name, name);
    }
    if (!provider->check_password) {
        return apr_psprintf(
            cmd->pool, "QwdAuthProvider: the authn provider '%s' cannot check passwords", name);
    }
    if (!cfg->providers) {
        cfg->providers = apr_array_make(cmd->pool, 2, sizeof(qwd_provider_t));
    }
    entry = apr_array_push(cfg->providers);
    entry->name = apr_pstrdup(cmd->pool, name);
    entry->provider = provider;
    return NULL;
}

static const char *add_admin(cmd_parms *cmd, void *cfg_v, const char *user)
{
    qwd_dir_config_t *cfg = cfg_v;
    if (!cfg->admins) {
        cfg->admins = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    APR_ARRAY_PUSH(cfg->admins, const char *) = apr_pstrdup(cmd->pool, user);
    return NULL;
}

static const char *set_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (!*arg || strpbrk(arg, "\"<> \t")) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a URL", cmd->cmd->name, arg);
    }
    return ap_set_string_slot(cmd, cfg, arg);
}

static const char *set_websocket_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (arg[0] != '/' && strncasecmp(arg, "ws://", 5) && strncasecmp(arg, "wss://", 6)) {
        return "QwdWebsocketURL: expects ws://HOST:PORT/PATH, wss://… or a path (/…) on this "
               "server";
    }
    return set_url(cmd, cfg, arg);
}

static const char *set_helper_socket(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (arg[0] != '/' || strlen(arg) >= 108) {
        return "QwdHelperSocket: expects an absolute path shorter than 108 bytes";
    }
    return ap_set_string_slot(cmd, cfg, arg);
}

static const char *set_secret_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    qwd_server_config_t *scfg = ap_get_module_config(cmd->server->module_config, &qwd_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (err) {
        return err;
    }
    scfg->secret_file = ap_server_root_relative(cmd->pool, arg);
    if (!scfg->secret_file) {
        return "QwdSecretFile: invalid path";
    }
    return NULL;
}

/* QwdLoginThrottle N SECONDS [N_PER_ADDRESS] */
static const char *set_throttle(cmd_parms *cmd, void *cfg_v, const char *max, const char *window,
                                const char *addr_max)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *end;
    apr_int64_t n = apr_strtoi64(max, &end, 10), seconds = 0, per_address = 0;
    int bad = !*max || *end || n < 0 || n > 1000000;
    if (window) {
        seconds = apr_strtoi64(window, &end, 10);
        bad |= !*window || *end || seconds < 1 || seconds > 86400 * 7;
    }
    if (addr_max) {
        per_address = apr_strtoi64(addr_max, &end, 10);
        bad |= !*addr_max || *end || per_address < 1 || per_address > 1000000;
    }
    if (bad || (n && !window)) {
        return "QwdLoginThrottle: expects N SECONDS [N_PER_ADDRESS] (N failed logins per user "
               "within SECONDS; 0 = off)";
    }
    cfg->throttle_max = (int)n;
    cfg->throttle_window = window ? (int)seconds : QWD_DEFAULT_THROTTLE_WINDOW;
    cfg->throttle_addr_max =
        addr_max ? (int)per_address : (int)n * QWD_DEFAULT_THROTTLE_ADDR_FACTOR;
    return NULL;
}

/* QwdIMAPServer, QwdSMTPAuthServer, QwdSMTPRelay: SCHEME://HOST[:PORT] (STARTTLS) or
 * SCHEMEs://HOST[:PORT] (TLS from the start). */
static const char *set_mail_url(cmd_parms *cmd, void *cfg, const char *arg, const char *scheme)
{
    const char *rest = strstr(arg, "://");
    apr_size_t len = rest ? (apr_size_t)(rest - arg) : 0;
    if (!rest || strncasecmp(arg, scheme, 4) || !(len == 4 || (len == 5 && (arg[4] | 0x20) == 's'))
        || !rest[3] || rest[3] == '/' || strpbrk(arg, " \t\"<>")) {
        return apr_psprintf(cmd->pool,
                            "%s: expects %s://HOST[:PORT] (STARTTLS) or "
                            "%ss://HOST[:PORT] (TLS), not '%s'",
                            cmd->cmd->name, scheme, scheme, arg);
    }
    return ap_set_string_slot(cmd, cfg, arg);
}

static const char *set_imap_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    return set_mail_url(cmd, cfg, arg, "imap");
}

static const char *set_smtp_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    return set_mail_url(cmd, cfg, arg, "smtp");
}

static const char *set_mail_ca(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    apr_finfo_t info;
    cfg->mail_ca_file = ap_server_root_relative(cmd->pool, arg);
    if (!cfg->mail_ca_file
        || apr_stat(&info, cfg->mail_ca_file, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS
        || info.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "QwdMailCACertificate: '%s' is not a readable file", arg);
    }
    return NULL;
}

static const char *set_mail_from(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (!strchr(arg, '@') || strpbrk(arg, " \t\r\n<>\",")) {
        return "QwdMailFrom: expects a plain address, user@domain";
    }
    return ap_set_string_slot(cmd, cfg, arg);
}

static const char *add_email_domain(cmd_parms *cmd, void *cfg_v, const char *domain)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *lower;
    if (!*domain || strpbrk(domain, "@ \t<>\"/,") || domain[0] == '.') {
        return apr_psprintf(cmd->pool, "QwdEmailDomain: '%s' is not a domain name", domain);
    }
    if (!cfg->email_domains) {
        cfg->email_domains = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    lower = apr_pstrdup(cmd->pool, domain);
    ap_str_tolower(lower);
    APR_ARRAY_PUSH(cfg->email_domains, const char *) = lower;
    return NULL;
}

static const char *set_mfa(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    if (!strcasecmp(arg, "off")) {
        cfg->mfa = QWD_MFA_OFF;
    }
    else if (!strcasecmp(arg, "email")) {
        cfg->mfa = QWD_MFA_EMAIL;
    }
    else {
        return "QwdMFA: expects off or email";
    }
    return NULL;
}

static const char *set_mfa_domain(cmd_parms *cmd, void *cfg, const char *arg)
{
    if (!*arg || strpbrk(arg, "@ \t<>\"/,")) {
        return "QwdMFAMailDomain: expects a domain name";
    }
    return ap_set_string_slot(cmd, cfg, arg);
}

#define DIR_OFFSET(field) (void *)APR_OFFSETOF(qwd_dir_config_t, field)
#define WHERE (RSRC_CONF | ACCESS_CONF)

const command_rec qwd_directives[] = {
    AP_INIT_TAKE1("QwdHelperSocket", set_helper_socket, DIR_OFFSET(helper_socket), WHERE,
                  "the qwd-helper's Unix socket"),
    AP_INIT_TAKE1("QwdAuth", set_auth, NULL, WHERE,
                  "none (any user name), form (user + password checked by QwdAuthProvider) or "
                  "apache (r->user set by Apache's own authentication)"),
    AP_INIT_ITERATE("QwdAuthProvider", add_provider, NULL, WHERE,
                    "authn providers (file, dbm, dbd, ldap, ...) tried in order for QwdAuth form "
                    "and the API's Basic credentials"),
    AP_INIT_ITERATE("QwdAdmin", add_admin, NULL, WHERE,
                    "users who see the monitor and may stop any session"),
    AP_INIT_TAKE1("QwdMaxSessions", set_limit, DIR_OFFSET(max_sessions), WHERE,
                  "live sessions of all users together (0 = no limit)"),
    AP_INIT_TAKE1("QwdMaxSessionsPerUser", set_limit, DIR_OFFSET(max_sessions_per_user), WHERE,
                  "live sessions of one user (0 = no limit)"),
    AP_INIT_TAKE1("QwdMaxCPUPerUser", set_positive, DIR_OFFSET(max_cpu_per_user), WHERE,
                  "virtual CPUs of one user's live sessions together"),
    AP_INIT_TAKE1("QwdMaxMemoryPerUser", set_positive, DIR_OFFSET(max_memory_per_user), WHERE,
                  "memory (MiB) of one user's live sessions together"),
    AP_INIT_TAKE1("QwdMaxLoad", set_max_load, NULL, WHERE,
                  "no new session while the host's 1-minute load is above this (0 = no limit)"),
    AP_INIT_TAKE1("QwdDefaultCPU", set_positive, DIR_OFFSET(default_cpu), WHERE,
                  "virtual CPUs preselected on the form and used by the API by default"),
    AP_INIT_TAKE1("QwdDefaultMemory", set_positive, DIR_OFFSET(default_memory), WHERE,
                  "memory (MiB) preselected on the form and used by the API by default"),
    AP_INIT_TAKE1("QwdDefaultLifetime", set_positive, DIR_OFFSET(default_lifetime), WHERE,
                  "lifetime (s) of a session unless the user picks another"),
    AP_INIT_TAKE1("QwdMaxLifetime", set_positive, DIR_OFFSET(max_lifetime), WHERE,
                  "longest lifetime (s) a user may pick"),
    AP_INIT_TAKE1("QwdViewerURL", set_url, DIR_OFFSET(viewer_url), WHERE,
                  "the noVNC page (vnc.html) the links open"),
    AP_INIT_TAKE1("QwdWebsocketURL", set_websocket_url, DIR_OFFSET(websocket_url), WHERE,
                  "where browsers reach websockify: ws://, wss:// or a path on this server"),
    AP_INIT_TAKE1("QwdTerms", ap_set_string_slot, DIR_OFFSET(terms), WHERE,
                  "terms of use the user must accept: a text, or a URL to a page"),
    AP_INIT_TAKE1("QwdStylesheet", set_url, DIR_OFFSET(stylesheet), WHERE,
                  "URL of the stylesheet the pages link (htdocs/qwd.css)"),
    AP_INIT_TAKE1("QwdMaxRequestBody", set_max_body, NULL, WHERE,
                  "largest request body (bytes) the forms and the API accept"),
    AP_INIT_TAKE1("QwdStaticURL", set_url, DIR_OFFSET(static_url), WHERE,
                  "URL where htdocs/ is served (qwd.css, qwd-progress.js), ending in /"),
    AP_INIT_FLAG("QwdWebsocketTickets", ap_set_flag_slot, DIR_OFFSET(websocket_tickets), WHERE,
                 "links open /s/ID, which mints a short-lived ticket for the websocket at "
                 "QwdWebsocketURL (a Location with QwdWebsocketGate On) instead of handing "
                 "out websockify's token"),
    AP_INIT_FLAG("QwdWebsocketGate", ap_set_flag_slot, DIR_OFFSET(websocket_gate), ACCESS_CONF,
                 "in the websocket's <Location>: refuse (403) any request without a valid "
                 "ticket and give websockify the session's token instead"),
    AP_INIT_TAKE1("QwdCookieLifetime", set_positive, DIR_OFFSET(cookie_lifetime), WHERE,
                  "how long (s) the signed identity cookie stays valid"),
    AP_INIT_TAKE1("QwdSecretFile", set_secret_file, NULL, RSRC_CONF,
                  "file holding the key that signs CSRF tokens and cookies (created 0600)"),
    AP_INIT_TAKE123("QwdLoginThrottle", set_throttle, NULL, WHERE,
                    "N SECONDS [N_PER_ADDRESS]: after N failed logins of a user (or "
                    "N_PER_ADDRESS from one client address) within SECONDS, answer 429"),
    AP_INIT_TAKE1("QwdIMAPServer", set_imap_url, DIR_OFFSET(imap_server), WHERE,
                  "IMAP server the imap authn provider logs in to: imap:// (STARTTLS) or "
                  "imaps://"),
    AP_INIT_TAKE1("QwdSMTPAuthServer", set_smtp_url, DIR_OFFSET(smtp_auth_server), WHERE,
                  "SMTP server the smtp authn provider logs in to (AUTH): smtp:// (STARTTLS) "
                  "or smtps://"),
    AP_INIT_TAKE1("QwdMailCACertificate", set_mail_ca, NULL, WHERE,
                  "PEM file of the CAs that sign the mail servers' certificates"),
    AP_INIT_TAKE1("QwdMailTimeout", set_positive, DIR_OFFSET(mail_timeout), WHERE,
                  "seconds a talk with a mail server may take"),
    AP_INIT_FLAG("QwdMailVerifyPeer", ap_set_flag_slot, DIR_OFFSET(mail_verify_peer), WHERE,
                 "check the mail servers' certificates and names (default on)"),
    AP_INIT_TAKE1("QwdSMTPRelay", set_smtp_url, DIR_OFFSET(smtp_relay), WHERE,
                  "SMTP server mod_qwd sends login codes through (smtp:// or smtps://)"),
    AP_INIT_TAKE1("QwdMailFrom", set_mail_from, DIR_OFFSET(mail_from), WHERE,
                  "sender address of the login codes"),
    AP_INIT_ITERATE("QwdEmailDomain", add_email_domain, NULL, WHERE,
                    "domains whose addresses may log in by mailed link (QwdAuth email)"),
    AP_INIT_TAKE1("QwdMFA", set_mfa, NULL, WHERE,
                  "off, or email: after the password, a code mailed to the user"),
    AP_INIT_TAKE1("QwdMFAMailDomain", set_mfa_domain, DIR_OFFSET(mfa_mail_domain), WHERE,
                  "QwdMFA email mails the code to USER@this domain"),
    AP_INIT_TAKE1("QwdLoginCodeLifetime", set_positive, DIR_OFFSET(code_lifetime), WHERE,
                  "seconds a mailed login code or link stays valid"),
    {NULL}};
