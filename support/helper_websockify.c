/* SPDX-License-Identifier: Apache-2.0 */
/* websockify with the TokenFile plugin reads every file of the token directory on each
 * connection; files are renamed in from a sibling temp dir so it never reads half a file. Its
 * output comes to the helper through a pipe, because it logs each connection's path, which
 * carries the token: the helper logs its lines with every token hidden. */
#include "helper_websockify.h"
#include "helper_fs.h"
#include "helper_log.h"
#include "helper_proc.h"
#include "qwd_token.h"

#include <apr_file_info.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#define BACKOFF_MAX_S 30
/* A websockify that ran this long before dying gets the short backoff again. */
#define STABLE_RUN_S 30
#define STOP_WAIT_MS 2000
#define STARTUP_WAIT_MS 5000

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
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", h->config->token_dir, token);
    if (unlink(path) != 0 && errno != ENOENT) {
        /* named by its token: only the directory goes into the log */
        helper_log_error(QWDLOGNO(05069) "cannot remove a token file of %s: %s",
                         h->config->token_dir, strerror(errno));
    }
}

static int token_is_live(helper *h, const char *token)
{
    for (apr_hash_index_t *i = apr_hash_first(NULL, h->sessions); i; i = apr_hash_next(i)) {
        helper_session *s = apr_hash_this_val(i);
        if (s->state != SESSION_ENDED && s->token && !strcmp(s->token, token)) {
            return 1;
        }
    }
    return 0;
}

/* Removes the files of dir for which keep() says no. */
static void prune_dir(helper *h, apr_pool_t *pool, const char *dir,
                      int (*keep)(helper *, const char *))
{
    apr_dir_t *handle;
    apr_finfo_t entry;
    if (apr_dir_open(&handle, dir, pool) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&entry, APR_FINFO_NAME | APR_FINFO_TYPE, handle) == APR_SUCCESS) {
        if (entry.filetype != APR_REG || (keep && keep(h, entry.name))) {
            continue;
        }
        /* a token file is named by its token: the name stays out of the log */
        helper_log_info(QWDLOGNO(05070) "removing a stale file of %s", dir);
        unlink(apr_pstrcat(pool, dir, "/", entry.name, NULL));
    }
    apr_dir_close(handle);
}

void helper_tokens_prune(helper *h)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    prune_dir(h, scratch, h->config->token_dir, token_is_live);
    prune_dir(h, scratch, h->token_tmp_dir, NULL);
    apr_pool_destroy(scratch);
}

static const char *pid_file(apr_pool_t *pool, helper *h)
{
    return apr_pstrcat(pool, h->config->state_dir, "/websockify.pid", NULL);
}

/* Waits up to timeout_ms for our child pid to exit; SIGKILL after that. */
static void wait_or_kill(pid_t pid, int timeout_ms, int is_child)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (is_child ? waitpid(pid, NULL, WNOHANG) == pid : kill(pid, 0) != 0) {
            return;
        }
        usleep(20000);
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
    char *text = helper_fs_read(pool, pid_file(pool, h), 32);
    pid_t pid = text ? (pid_t)atoi(text) : 0;
    if (pid > 1 && helper_process_matches(pid, h->config->token_dir)) {
        helper_log_info(QWDLOGNO(05071) "stopping the websockify (pid %d) of a previous helper",
                        (int)pid);
        kill(pid, SIGTERM);
        wait_or_kill(pid, STOP_WAIT_MS, 0);
    }
    unlink(pid_file(pool, h));
}

/* Copies line to out (of out_size bytes) with the value of every "token=" and "Token '" (the
 * connection's path, the "Token '...' not found" of an unknown one) replaced by "(hidden)". */
static void hide_tokens(const char *line, char *out, size_t out_size)
{
    static const char hidden[] = "(hidden)";
    size_t len = 0;
    while (*line && len + sizeof hidden < out_size) {
        size_t prefix = !strncasecmp(line, "token=", 6)    ? 6
                        : !strncasecmp(line, "token '", 7) ? 7
                                                           : 0;
        if (!prefix) {
            out[len++] = *line++;
            continue;
        }
        memcpy(out + len, line, prefix);
        memcpy(out + len + prefix, hidden, sizeof hidden - 1);
        len += prefix + sizeof hidden - 1;
        for (line += prefix; *line && !strchr("&'\" \t,;", *line); line++) {
        }
    }
    out[len] = '\0';
}

static void log_output_line(const char *line)
{
    char shown[2048]; /* twice a buffered line: "(hidden)" may be longer than what it hides */
    hide_tokens(line, shown, sizeof shown);
    if (*shown) {
        helper_log_info(QWDLOGNO(05251) "websockify: %s", shown);
    }
}

/* Logs every complete line buffered (and the rest too at the end of the output). */
static void flush_output(helper *h, int at_end)
{
    char *start = h->websockify_output, *end = start + h->websockify_output_len, *newline;
    while ((newline = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        *newline = '\0';
        log_output_line(start);
        start = newline + 1;
    }
    /* a line longer than the buffer is logged in pieces */
    if (at_end
        || (start == h->websockify_output && end - start == sizeof h->websockify_output - 1)) {
        *end = '\0';
        log_output_line(start);
        start = end;
    }
    h->websockify_output_len = (size_t)(end - start);
    memmove(h->websockify_output, start, h->websockify_output_len);
}

static void close_output(helper *h)
{
    if (h->websockify_output_fd >= 0) {
        flush_output(h, 1);
        close(h->websockify_output_fd);
        h->websockify_output_fd = -1;
    }
}

void helper_websockify_output(helper *h)
{
    for (;;) {
        size_t room = sizeof h->websockify_output - 1 - h->websockify_output_len;
        ssize_t n =
            read(h->websockify_output_fd, h->websockify_output + h->websockify_output_len, room);
        if (n > 0) {
            h->websockify_output_len += (size_t)n;
            flush_output(h, 0);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 || errno != EAGAIN) {
            /* websockify and every connection it forked have exited */
            close_output(h);
        }
        return;
    }
}

static void spawn(helper *h)
{
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
    /* a new websockify, a new pipe: the connections of an old one may still write to theirs */
    close_output(h);
    int output[2];
    int error = pipe2(output, O_CLOEXEC) == 0 ? 0 : errno;
    if (!error) {
        fcntl(output[0], F_SETFL, O_NONBLOCK);
        error = helper_spawn(argv, output[1], SPAWN_DIE_WITH_PARENT, &h->websockify_pid);
        close(output[1]);
        if (error) {
            close(output[0]);
        }
        else {
            h->websockify_output_fd = output[0];
            h->websockify_output_len = 0;
        }
    }
    if (error) {
        helper_log_error(QWDLOGNO(05072) "cannot start %s: %s", config->websockify,
                         strerror(error));
        h->websockify_pid = 0;
        helper_websockify_exited(h, 127 << 8);
    }
    else {
        h->websockify_started = apr_time_now();
        h->websockify_restart_at = 0;
        helper_fs_write_atomic(scratch, pid_file(scratch, h), NULL,
                               apr_psprintf(scratch, "%d\n", (int)h->websockify_pid), 0600);
        helper_log_info(QWDLOGNO(05073) "websockify started (pid %d) on %s", (int)h->websockify_pid,
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
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    stop_stale(h, scratch);
    h->websockify_backoff_s = 1;
    spawn(h);
    /* Only at startup: wait until websockify listens, so "the helper answers" also means
     * "viewer URLs work" for whoever waits for the helper's socket. */
    for (int waited = 0; h->websockify_pid && waited < STARTUP_WAIT_MS; waited += 50) {
        if (accepts_connections(scratch, h->config->websockify_listen)) {
            break;
        }
        usleep(50000);
    }
    apr_pool_destroy(scratch);
}

void helper_websockify_exited(helper *h, int status)
{
    apr_time_t now = apr_time_now();
    if (h->websockify_pid && now - h->websockify_started > apr_time_from_sec(STABLE_RUN_S)) {
        h->websockify_backoff_s = 1;
    }
    h->websockify_pid = 0;
    if (h->stopping) {
        return;
    }
    helper_log_warn(QWDLOGNO(05074) "websockify exited (%s), restarting in %d s",
                    helper_describe_status(h->pool, status), h->websockify_backoff_s);
    h->websockify_restart_at = now + apr_time_from_sec(h->websockify_backoff_s);
    h->websockify_backoff_s *= 2;
    if (h->websockify_backoff_s > BACKOFF_MAX_S) {
        h->websockify_backoff_s = BACKOFF_MAX_S;
    }
}

void helper_websockify_tick(helper *h)
{
    if (!h->websockify_pid && h->websockify_restart_at
        && apr_time_now() >= h->websockify_restart_at) {
        spawn(h);
    }
}

void helper_websockify_stop(helper *h)
{
    apr_pool_t *scratch;
    apr_pool_create(&scratch, h->pool);
    if (h->websockify_pid) {
        kill(h->websockify_pid, SIGTERM);
        wait_or_kill(h->websockify_pid, STOP_WAIT_MS, 1);
        h->websockify_pid = 0;
    }
    if (h->websockify_output_fd >= 0) {
        helper_websockify_output(h); /* its last words */
    }
    close_output(h);
    unlink(pid_file(scratch, h));
    apr_pool_destroy(scratch);
}
