/* SPDX-License-Identifier: Apache-2.0 */
/* The httpd functions the module's unit-tested files call, done the simple way on the real
 * APR (nothing of httpd is linked), and the records of stub.h the tests run them with. */
#include "stub.h"
#include "qwd_store.h"

#include <apr_lib.h>
#include <apr_strings.h>
#include <ap_provider.h>
#include <http_log.h>
#include <http_protocol.h>
#include <util_cookies.h>

#define STUB_SERVER_ROOT "/srv/qwd-unit"

module AP_MODULE_DECLARE_DATA qwd_module = {STANDARD20_MODULE_STUFF};

static char last_log[1024];

const char *stub_last_log(void)
{
    return last_log;
}

void stub_log_clear(void)
{
    last_log[0] = '\0';
}

server_rec *stub_server(apr_pool_t *pool)
{
    server_rec *s = apr_pcalloc(pool, sizeof(*s));
    void **vector = apr_pcalloc(pool, sizeof(void *));
    qwd_server_config_t *scfg = qwd_create_server_config(pool, s);
    s->process = apr_pcalloc(pool, sizeof(*s->process));
    s->process->pool = pool;
    s->process->pconf = pool;
    s->log.level = APLOG_DEBUG;
    memset(scfg->secret, 'k', sizeof(scfg->secret));
    scfg->has_secret = 1;
    qwd_module.module_index = 0; /* the only module: its config is vector[0] */
    vector[0] = scfg;
    s->module_config = (ap_conf_vector_t *)vector;
    return s;
}

void stub_fixture_open(stub_fixture *f)
{
    apr_pool_create(&f->pool, NULL);
    f->s = stub_server(f->pool);
    f->q = stub_req(f->pool, f->s, NULL);
}

qwd_server_config_t *stub_server_config(server_rec *s)
{
    return ap_get_module_config(s->module_config, &qwd_module);
}

qwd_req_t *stub_req(apr_pool_t *pool, server_rec *s, const char *cookie_header)
{
    request_rec *r = apr_pcalloc(pool, sizeof(*r));
    qwd_req_t *q = apr_pcalloc(pool, sizeof(*q));
    r->pool = pool;
    r->server = s;
    r->method = "GET";
    r->headers_in = apr_table_make(pool, 4);
    r->headers_out = apr_table_make(pool, 4);
    r->err_headers_out = apr_table_make(pool, 4);
    r->notes = apr_table_make(pool, 4);
    if (cookie_header) {
        apr_table_setn(r->headers_in, "Cookie", cookie_header);
    }
    q->r = r;
    q->cfg = qwd_create_dir_config(pool, apr_pstrdup(pool, "/qwd"));
    q->base = "/qwd";
    q->route = "/";
    return q;
}

const char *stub_set_cookie(qwd_req_t *q, const char *name, const char **attributes)
{
    const apr_array_header_t *headers = apr_table_elts(q->r->err_headers_out);
    const apr_table_entry_t *entry = (const apr_table_entry_t *)headers->elts;
    apr_size_t name_len = strlen(name);
    int i;
    for (i = headers->nelts - 1; i >= 0; i--) {
        const char *value = entry[i].val;
        if (!strcasecmp(entry[i].key, "Set-Cookie") && !strncmp(value, name, name_len)
            && value[name_len] == '=') {
            value += name_len + 1;
            if (attributes) {
                *attributes = value + strcspn(value, ";");
            }
            return apr_pstrndup(q->r->pool, value, strcspn(value, ";"));
        }
    }
    return NULL;
}

const char *stub_directive(apr_pool_t *pool, server_rec *s, void *cfg, const char *name,
                           const char *arg1, const char *arg2, const char *arg3)
{
    const command_rec *command;
    cmd_parms cmd;
    for (command = qwd_directives; command->name; command++) {
        if (!strcmp(command->name, name)) {
            break;
        }
    }
    if (!command->name) {
        return "no such directive";
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.pool = pool;
    cmd.temp_pool = pool;
    cmd.server = s;
    cmd.cmd = command;
    cmd.info = command->cmd_data;
    cmd.override = command->req_override;
    switch (command->args_how) {
    case TAKE1: return command->AP_TAKE1(&cmd, cfg, arg1);
    case FLAG: return command->AP_FLAG(&cmd, cfg, !strcasecmp(arg1, "on") ? 1 : 0);
    case TAKE123: return command->AP_TAKE3(&cmd, cfg, arg1, arg2, arg3);
    case ITERATE: return command->AP_TAKE1(&cmd, cfg, arg1);
    default: return "args_how not stubbed";
    }
}

/* --------------------------------------------------------------- httpd, the simple way */

AP_DECLARE(const char *) ap_set_string_slot(cmd_parms *cmd, void *struct_ptr, const char *arg)
{
    *(const char **)((char *)struct_ptr + (apr_size_t)cmd->info) = arg;
    return NULL;
}

AP_DECLARE(const char *) ap_set_flag_slot(cmd_parms *cmd, void *struct_ptr, int arg)
{
    *(int *)((char *)struct_ptr + (apr_size_t)cmd->info) = arg ? 1 : 0;
    return NULL;
}

/* Directives are run outside <Directory>/<Location> here: only the server's context. */
AP_DECLARE(const char *) ap_check_cmd_context(cmd_parms *cmd, unsigned forbidden)
{
    return NULL;
}

AP_DECLARE(char *) ap_server_root_relative(apr_pool_t *p, const char *fname)
{
    char *path = NULL;
    if (apr_filepath_merge(&path, STUB_SERVER_ROOT, fname, APR_FILEPATH_TRUENAME, p)
        != APR_SUCCESS) {
        return NULL;
    }
    return path;
}

AP_DECLARE(void) ap_str_tolower(char *s)
{
    for (; *s; s++) {
        *s = (char)apr_tolower(*s);
    }
}

/* The file provider, as mod_authn_file registers it; no other is loaded. */
static authn_status file_check_password(request_rec *r, const char *user, const char *password)
{
    return AUTH_DENIED;
}

static const authn_provider file_provider = {file_check_password, NULL};

AP_DECLARE(void *)
ap_lookup_provider(const char *provider_group, const char *provider_name,
                   const char *provider_version)
{
    if (!strcmp(provider_group, AUTHN_PROVIDER_GROUP) && !strcmp(provider_name, "file")) {
        return (void *)&file_provider;
    }
    return NULL;
}

AP_DECLARE(const char *) ap_run_http_scheme(const request_rec *r)
{
    return "http";
}

AP_DECLARE(apr_status_t)
ap_cookie_read(request_rec *r, const char *name, const char **val, int remove)
{
    const char *header = apr_table_get(r->headers_in, "Cookie");
    apr_size_t name_len = strlen(name);
    *val = NULL;
    while (header && *header) {
        header += strspn(header, " ;");
        if (!strncmp(header, name, name_len) && header[name_len] == '=') {
            *val =
                apr_pstrndup(r->pool, header + name_len + 1, strcspn(header + name_len + 1, ";"));
            return APR_SUCCESS;
        }
        header = strchr(header, ';');
    }
    return APR_SUCCESS;
}

AP_DECLARE(void)
ap_log_error_(const char *file, int line, int module_index, int level, apr_status_t status,
              const server_rec *s, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    apr_vsnprintf(last_log, sizeof(last_log), fmt, args);
    va_end(args);
}

/* Spending a ticket needs mod_dbd, which the pytest suites run for real; no unit test spends
 * one (this only satisfies the linker: it changes no row). */
qwd_error_t *qwd_store_run(qwd_store_t *store, const char *label, int *nrows, int n,
                           const char **params)
{
    if (nrows) {
        *nrows = 0;
    }
    return NULL;
}
