/* SPDX-License-Identifier: Apache-2.0 */
/* websockify with the TokenFile plugin reads every file of the token directory on each
 * connection; files are renamed in from a sibling temp dir so it never reads half a file. */
#include "helper_websockify.h"
#include "helper_config.h"
#include "helper_events.h"
#include "helper_fs.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "qwd_token.h"

#include <apr_file_info.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MAX_S 30
/* A websockify that ran this long before dying gets the short backoff again. */
#define STABLE_RUN_S 30
#define STOP_WAIT_MS 2000
#define STARTUP_WAIT_MS 5000
/* How often the waits above look again. */
#define STOP_POLL_MS 20
#define STARTUP_POLL_MS 50
#define PID_FILE_MAX 32

struct helper_websockify {
    pid_t pid;
    apr_time_t started;
    apr_time_t restart_at;
    int backoff_s;
};

static const char *token_path(apr_pool_t *pool, helper *h, const char *token)
{
    return apr_pstrcat(pool, h->config->token_dir, "/", token, NULL);
}

int helper_token_write(helper *h, const char *token, const char *vnc_socket)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    const char *line = apr_pstrcat(scratch, token, ": unix_socket:", vnc_socket, "\n", NULL);
    int error = helper_fs_write_atomic(scratch, token_path(scratch, h, token), h->token_tmp_dir,
                                       line, 0600);
    apr_pool_destroy(scratch);
    return error;
}

void helper_token_remove(helper *h, const char *token)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    const char *path = token_path(scratch, h, token);
    if (unlink(path) != 0 && errno != ENOENT) {
        helper_log_error(QWDLOGNO(05069) "cannot remove token file %s: %s", path, strerror(errno));
    }
    apr_pool_destroy(scratch);
}

/* Removes the files of dir for which keep() says no (keep NULL: all). */
static void prune_dir(apr_pool_t *pool, const char *dir, int (*keep)(void *, const char *),
                      void *data)
{
    apr_dir_t *handle;
    apr_finfo_t entry;
    if (apr_dir_open(&handle, dir, pool) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&entry, APR_FINFO_NAME | APR_FINFO_TYPE, handle) == APR_SUCCESS) {
        if (entry.filetype != APR_REG || (keep && keep(data, entry.name))) {
            continue;
        }
        helper_log_info(QWDLOGNO(05070) "removing stale %s/%s", dir, entry.name);
        unlink(apr_pstrcat(pool, dir, "/", entry.name, NULL));
    }
    apr_dir_close(handle);
}

void helper_tokens_prune(helper *h, int (*is_live)(void *data, const char *token), void *data)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    prune_dir(scratch, h->config->token_dir, is_live, data);
    prune_dir(scratch, h->token_tmp_dir, NULL, NULL);
    apr_pool_destroy(scratch);
}

static const char *pid_file(apr_pool_t *pool, helper *h)
{
    return apr_pstrcat(pool, h->config->state_dir, "/websockify.pid", NULL);
}

/* Waits up to timeout_ms for our child pid to exit; SIGKILL after that. */
static void wait_or_kill(pid_t pid, int timeout_ms, int is_child)
{
    for (int waited = 0; waited < timeout_ms; waited += STOP_POLL_MS) {
        if (is_child ? waitpid(pid, NULL, WNOHANG) == pid : kill(pid, 0) != 0) {
            return;
        }
        usleep(STOP_POLL_MS * 1000);
    }
    kill(pid, SIGKILL);
    if (is_child) {
        waitpid(pid, NULL, 0);
    }
}

/* A websockify of a helper that was SIGKILLed may still hold the port (its death signal
 * normally takes it down with the helper; this covers the rest). */
static void stop_stale(helper *h, apr_pool_t *pool)
{
    char *text = helper_fs_read(pool, pid_file(pool, h), PID_FILE_MAX);
    pid_t pid = text ? (pid_t)atoi(text) : 0;
    if (pid > 1 && helper_process_matches(pid, h->config->token_dir)) {
        helper_log_info(QWDLOGNO(05071) "stopping the websockify (pid %d) of a previous helper",
                        (int)pid);
        kill(pid, SIGTERM);
        wait_or_kill(pid, STOP_WAIT_MS, 0);
    }
    unlink(pid_file(pool, h));
}

static void exited(void *data, pid_t pid, int status);

static void spawn(helper *h)
{
    helper_websockify *w = h->websockify;
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    helper_config *config = h->config;
    const char *argv[12];
    int argc = 0;
    argv[argc++] = config->websockify;
    if (config->websockify_web) {
        argv[argc++] = "--web";
        argv[argc++] = config->websockify_web;
    }
    argv[argc++] = "--token-plugin";
    argv[argc++] = "TokenFile";
    argv[argc++] = "--token-source";
    argv[argc++] = config->token_dir;
    argv[argc++] = config->websockify_listen;
    argv[argc] = NULL;
    int error = helper_spawn(argv, helper_log_fd(), SPAWN_DIE_WITH_PARENT, &w->pid);
    if (!error && helper_watch_child(h->events, w->pid, exited, h) != 0) {
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        error = ENOMEM;
    }
    if (error) {
        helper_log_error(QWDLOGNO(05072) "cannot start %s: %s", config->websockify,
                         strerror(error));
        w->pid = 0;
        exited(h, 0, W_EXITCODE(SPAWN_EXEC_FAILED, 0));
    }
    else {
        w->started = apr_time_now();
        w->restart_at = 0;
        helper_fs_write_atomic(scratch, pid_file(scratch, h), NULL,
                               apr_psprintf(scratch, "%d\n", (int)w->pid), 0600);
        helper_log_info(QWDLOGNO(05073) "websockify started (pid %d) on %s", (int)w->pid,
                        config->websockify_listen);
    }
    apr_pool_destroy(scratch);
}

/* Whether something accepts TCP connections on listen ("host:port" or "port"). */
static int accepts_connections(apr_pool_t *pool, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    const char *host = colon ? apr_pstrndup(pool, listen, (apr_size_t)(colon - listen)) : "";
    apr_sockaddr_t *address;
    apr_socket_t *probe;
    if (apr_sockaddr_info_get(&address, *host ? host : "127.0.0.1", APR_UNSPEC,
                              (apr_port_t)atoi(colon ? colon + 1 : listen), 0, pool)
            != APR_SUCCESS
        || apr_socket_create(&probe, address->family, SOCK_STREAM, APR_PROTO_TCP, pool)
               != APR_SUCCESS) {
        return 0;
    }
    int connected = apr_socket_connect(probe, address) == APR_SUCCESS;
    apr_socket_close(probe);
    return connected;
}

void helper_websockify_start(helper *h)
{
    h->websockify = apr_pcalloc(h->pool, sizeof *h->websockify);
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    stop_stale(h, scratch);
    h->websockify->backoff_s = 1;
    spawn(h);
    /* Only at startup: wait until websockify listens, so "the helper answers" also means
     * "viewer URLs work" for whoever waits for the helper's socket. */
    for (int waited = 0; h->websockify->pid && waited < STARTUP_WAIT_MS;
         waited += STARTUP_POLL_MS) {
        if (accepts_connections(scratch, h->config->websockify_listen)) {
            break;
        }
        usleep(STARTUP_POLL_MS * 1000);
    }
    apr_pool_destroy(scratch);
}

/* Our websockify exited: a restart is scheduled (backoff). */
static void exited(void *data, pid_t pid, int status)
{
    helper *h = data;
    helper_websockify *w = h->websockify;
    apr_time_t now = apr_time_now();
    if (w->pid && now - w->started > apr_time_from_sec(STABLE_RUN_S)) {
        w->backoff_s = 1;
    }
    w->pid = 0;
    if (h->stopping) {
        return;
    }
    helper_log_warn(QWDLOGNO(05074) "websockify exited (%s), restarting in %d s",
                    helper_describe_status(h->pool, status), w->backoff_s);
    w->restart_at = now + apr_time_from_sec(w->backoff_s);
    w->backoff_s *= 2;
    if (w->backoff_s > BACKOFF_MAX_S) {
        w->backoff_s = BACKOFF_MAX_S;
    }
}

void helper_websockify_tick(helper *h)
{
    helper_websockify *w = h->websockify;
    if (!w->pid && w->restart_at && apr_time_now() >= w->restart_at) {
        spawn(h);
    }
}

void helper_websockify_stop(helper *h)
{
    helper_websockify *w = h->websockify;
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    if (w->pid) {
        helper_unwatch_child(h->events, w->pid);
        kill(w->pid, SIGTERM);
        wait_or_kill(w->pid, STOP_WAIT_MS, 1);
        w->pid = 0;
    }
    unlink(pid_file(scratch, h));
    apr_pool_destroy(scratch);
}
