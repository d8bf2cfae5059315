/* SPDX-License-Identifier: Apache-2.0 */
/* The directives of mod_qwd: their handlers (which validate at config time and fail with the
 * directive's name), and create, merge and the command table, generated from qwd_config.h. */
#include "qwd_config.h"
#include "qwd_argv.h"
#include "qwd_protocol.h"

#include <errno.h>

#include <apr_strings.h>
#include <ap_provider.h>
#include <http_log.h>

/* create: every field unset, so merge and the getters see what a section set itself */
#define UNSET_FIELD(TYPE, field, ...) cfg->field = QWD_UNSET_##TYPE;
/* merge: each field by its rule */
#define MERGE_FIELD(TYPE, field, default_value, merge, ...) \
    merged->field = QWD_MERGE_##merge(TYPE, base->field, add->field);

void *qwd_create_dir_config(apr_pool_t *pool, char *location)
{
    qwd_dir_config_t *cfg = apr_pcalloc(pool, sizeof(*cfg));
    QWD_DIR_CONFIG(UNSET_FIELD, UNSET_FIELD)
    cfg->location = location;
    return cfg;
}

void *qwd_merge_dir_config(apr_pool_t *pool, void *base_v, void *add_v)
{
    qwd_dir_config_t *base = base_v, *add = add_v;
    qwd_dir_config_t *merged = apr_pcalloc(pool, sizeof(*merged));
    QWD_DIR_CONFIG(MERGE_FIELD, MERGE_FIELD)
    return merged;
}

void *qwd_create_server_config(apr_pool_t *pool, server_rec *s)
{
    qwd_server_config_t *cfg = apr_pcalloc(pool, sizeof(*cfg));
    QWD_SERVER_CONFIG(UNSET_FIELD, UNSET_FIELD)
    return cfg;
}

void *qwd_merge_server_config(apr_pool_t *pool, void *base_v, void *add_v)
{
    qwd_server_config_t *base = base_v, *add = add_v;
    qwd_server_config_t *merged = apr_pcalloc(pool, sizeof(*merged));
    QWD_SERVER_CONFIG(MERGE_FIELD, MERGE_FIELD)
    return merged;
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

/* The largest whole number an int directive takes. */
#define INT_DIRECTIVE_MAX 1000000000
/* The bounds of QwdMaxRequestBody (bytes). */
#define MAX_BODY_MIN 1024
#define MAX_BODY_MAX (16 * 1024 * 1024)

/* An int directive: cmd->info is the field's offset; 0 allowed (no limit) for limits. */
static const char *set_int(cmd_parms *cmd, void *cfg, const char *arg, int minimum)
{
    char *end;
    apr_int64_t value;
    errno = 0;
    value = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || errno == ERANGE || value < minimum || value > INT_DIRECTIVE_MAX) {
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

/* QwdIdleStop DURATION: minutes, or a number with s, m or h; 0: never. */
static const char *set_idle_stop(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *end;
    apr_int64_t value, unit = 60;
    errno = 0;
    value = apr_strtoi64(arg, &end, 10);
    if (end == arg) {
        unit = 0; /* no digits */
    }
    else if (*end && !end[1]) {
        unit = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 0;
        end++;
    }
    if (!*arg || *end || !unit || errno == ERANGE || value < 0
        || value > INT_DIRECTIVE_MAX / unit) {
        return "QwdIdleStop: expects minutes, or a number with s, m or h (0 = never)";
    }
    cfg->idle_stop = (int)(value * unit);
    return NULL;
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
    if (!*arg || *end || value < MAX_BODY_MIN || value > MAX_BODY_MAX) {
        return apr_psprintf(cmd->pool,
                            "QwdMaxRequestBody: expects a size in bytes between %d and %d",
                            MAX_BODY_MIN, MAX_BODY_MAX);
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
    /* the path must fit a sockaddr_un with its NUL */
    if (arg[0] != '/' || strlen(arg) > QWD_UNIX_PATH_MAX) {
        return apr_psprintf(cmd->pool,
                            "QwdHelperSocket: expects an absolute path shorter than %d bytes",
                            QWD_UNIX_PATH_MAX + 1);
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

/* A whole number >= 1 of the per-server record (server config, virtual host). */
static const char *set_server_positive(cmd_parms *cmd, void *dummy, const char *arg)
{
    qwd_server_config_t *scfg = ap_get_module_config(cmd->server->module_config, &qwd_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    return err ? err : set_positive(cmd, scfg, arg);
}

/* QwdLoginThrottle N SECONDS [N_PER_ADDRESS] */
static const char *set_throttle(cmd_parms *cmd, void *cfg_v, const char *max, const char *window,
                                const char *addr_max)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *end;
    apr_int64_t n = apr_strtoi64(max, &end, 10), seconds = 0, per_address = 0;
    int bad = !*max || *end || n < 0 || n > QWD_THROTTLE_COUNT_MAX;
    if (window) {
        seconds = apr_strtoi64(window, &end, 10);
        bad |= !*window || *end || seconds < 1 || seconds > QWD_THROTTLE_WINDOW_MAX;
    }
    if (addr_max) {
        per_address = apr_strtoi64(addr_max, &end, 10);
        bad |= !*addr_max || *end || per_address < 1 || per_address > QWD_THROTTLE_COUNT_MAX;
    }
    if (bad || (n && !window)) {
        return "QwdLoginThrottle: expects N SECONDS [N_PER_ADDRESS] (N failed logins per user "
               "within SECONDS; 0 = off)";
    }
    cfg->throttle_max = (int)n;
    /* without SECONDS (N = 0: off) the window is of no use: left to the default */
    cfg->throttle_window = window ? (int)seconds : QWD_UNSET;
    /* N_PER_ADDRESS follows this section's N, not an enclosing section's N_PER_ADDRESS */
    cfg->throttle_addr_max = addr_max ? (int)per_address : (int)n * QWD_THROTTLE_ADDR_FACTOR;
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

static const char *set_script_max(cmd_parms *cmd, void *cfg_v, const char *arg)
{
    qwd_dir_config_t *cfg = cfg_v;
    char *end;
    apr_int64_t value = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || value < 1 || value > QWD_PROTO_SCRIPT_TEXT_MAX) {
        return apr_psprintf(cmd->pool, "QwdScriptMaxSize: expects a size in bytes from 1 to %d",
                            QWD_PROTO_SCRIPT_TEXT_MAX);
    }
    cfg->script_max = (int)value;
    return NULL;
}

/* A prefix ends in '/': "https://host" would also let "https://host.evil.example/" through. */
static const char *add_script_url_prefix(cmd_parms *cmd, void *cfg_v, const char *prefix)
{
    qwd_dir_config_t *cfg = cfg_v;
    const char *host = strncasecmp(prefix, "https://", 8)
                           ? (strncasecmp(prefix, "http://", 7) ? NULL : prefix + 7)
                           : prefix + 8;
    if (!host || !*host || *host == '/' || prefix[strlen(prefix) - 1] != '/' || !strchr(host, '/')
        || strpbrk(prefix, " \t\"<>\\@%?#") || strstr(prefix, "/.")) {
        return apr_psprintf(cmd->pool,
                            "QwdScriptURLPrefix: '%s' is not http(s)://HOST/PATH/ (ending in /, "
                            "no user, query or dot segment)",
                            prefix);
    }
    if (!cfg->script_url_prefixes) {
        cfg->script_url_prefixes = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    APR_ARRAY_PUSH(cfg->script_url_prefixes, const char *) = apr_pstrdup(cmd->pool, prefix);
    return NULL;
}

/* The command table, from the tables' DIRECTIVE rows: cmd->info is the field's offset. */
#define COMMAND(record, field, name, how, handler, context, help) \
    AP_INIT_##how(name, handler, (void *)APR_OFFSETOF(record, field), QWD_CONTEXT_##context, help),
#define DIR_COMMAND(TYPE, field, default_value, merge, name, how, handler, context, anchor, help) \
    COMMAND(qwd_dir_config_t, field, name, how, handler, context, help)
#define SERVER_COMMAND(TYPE, field, default_value, merge, name, how, handler, context, anchor, \
                       help)                                                                   \
    COMMAND(qwd_server_config_t, field, name, how, handler, context, help)
#define NO_COMMAND(...)

/* one table after the other */
/* clang-format off */
const command_rec qwd_directives[] = {
    QWD_DIR_CONFIG(DIR_COMMAND, NO_COMMAND)
    QWD_SERVER_CONFIG(SERVER_COMMAND, NO_COMMAND)
    {NULL}
};
/* clang-format on */
