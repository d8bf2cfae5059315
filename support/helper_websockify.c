/* SPDX-License-Identifier: Apache-2.0 */
/* websockify with the TokenFile plugin reads every file of the token directory on each
 * connection; files are renamed in from a sibling temp dir so it never reads half a file. Its
 * output reaches the helper's log through a pipe, with every token hidden. */
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
#include <fcntl.h>
#include <poll.h>
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
/* A line of websockify's output is logged in pieces of at most this many bytes. */
#define OUTPUT_LINE_MAX 1024

struct helper_websockify {
    pid_t pid;
    apr_time_t started;
    apr_time_t restart_at;
    int backoff_s;
    /* The read end of its stdout and stderr (and its forked connections'), or -1. */
    int output_fd;
    helper_watch *output_watch;
    char output[OUTPUT_LINE_MAX]; /* a line read in part */
    size_t output_len;
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
        /* named by its token: only the directory goes into the log */
        helper_log_error(QWDLOGNO(05069) "cannot remove a token file of %s: %s",
                         h->config->token_dir, strerror(errno));
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
        /* a token file is named by its token: the name stays out of the log */
        helper_log_info(QWDLOGNO(05070) "removing a stale file of %s", dir);
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
    /* Its connection children outlive it (the death signal reaches only websockify itself),
     * holding the listening socket it gave them: the new one could not bind. */
    if (pid > 1 && helper_group_signal(pid, h->config->token_dir, SIGKILL) > 0) {
        helper_log_info(QWDLOGNO(05902) "stopped the connections of a previous websockify");
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
    char shown[2 * OUTPUT_LINE_MAX]; /* "(hidden)" may be longer than what it hides */
    hide_tokens(line, shown, sizeof shown);
    if (*shown) {
        helper_log_info(QWDLOGNO(05251) "websockify: %s", shown);
    }
}

/* Logs every complete line buffered (and the rest too at the end of the output). */
static void flush_output(helper_websockify *w, int at_end)
{
    char *start = w->output, *end = start + w->output_len, *newline;
    while ((newline = memchr(start, '\n', (size_t)(end - start))) != NULL) {
        *newline = '\0';
        log_output_line(start);
        start = newline + 1;
    }
    /* a line longer than the buffer is logged in pieces */
    if (at_end || (start == w->output && end - start == sizeof w->output - 1)) {
        *end = '\0';
        log_output_line(start);
        start = end;
    }
    w->output_len = (size_t)(end - start);
    memmove(w->output, start, w->output_len);
}

static void close_output(helper_websockify *w)
{
    if (w->output_fd >= 0) {
        flush_output(w, 1);
    }
    helper_watch_close(&w->output_watch, &w->output_fd);
}

/* Reads what websockify wrote; at its end (it and every connection it forked exited) closes
 * the pipe. */
static void read_output(void *data, short revents)
{
    helper_websockify *w = data;
    for (;;) {
        size_t room = sizeof w->output - 1 - w->output_len;
        ssize_t n = read(w->output_fd, w->output + w->output_len, room);
        if (n > 0) {
            w->output_len += (size_t)n;
            flush_output(w, 0);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0 || errno != EAGAIN) {
            close_output(w);
        }
        return;
    }
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
    /* a new websockify, a new pipe: the connections of an old one may still write to theirs */
    close_output(w);
    int output[2];
    int error = pipe2(output, O_CLOEXEC) == 0 ? 0 : errno;
    if (!error) {
        fcntl(output[0], F_SETFL, O_NONBLOCK);
        /* its own process group: its connection children (one per viewer) go with it */
        error = helper_spawn(argv, output[1], SPAWN_DIE_WITH_PARENT | SPAWN_NEW_SESSION, &w->pid);
        close(output[1]);
        if (error
            || !(w->output_watch = helper_watch_fd(h->events, output[0], POLLIN, read_output, w))) {
            close(output[0]);
        }
        else {
            w->output_fd = output[0];
            w->output_len = 0;
        }
    }
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
        w->started = helper_clock_now();
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
    h->websockify->output_fd = -1;
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
    apr_time_t now = helper_clock_now();
    if (w->pid && now - w->started > apr_time_from_sec(STABLE_RUN_S)) {
        w->backoff_s = 1;
    }
    w->pid = 0;
    /* Connection children of the dead websockify hold its listening socket: the next one could
     * not bind while a viewer stays open. Their viewers reconnect to the next one. */
    if (pid > 1) {
        kill(-pid, SIGKILL);
    }
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
    if (!w->pid && w->restart_at && helper_clock_now() >= w->restart_at) {
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
        kill(-w->pid, SIGKILL); /* connections still open: the helper stops, so do they */
        w->pid = 0;
    }
    if (w->output_fd >= 0) {
        read_output(w, POLLIN); /* its last words */
    }
    close_output(w);
    unlink(pid_file(scratch, h));
    apr_pool_destroy(scratch);
}
