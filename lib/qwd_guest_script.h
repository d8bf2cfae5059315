/* SPDX-License-Identifier: Apache-2.0 */
/* What a session's guest runs once (docs/data-sessions.md): a POSIX shell script that mounts
 * the session's host folders and then runs its start-up script, with @USER@, @SESSION@ and @VM@
 * substituted so that no value can become shell syntax. The same text is the NoCloud user-data
 * of a cold boot and the guest-exec command of a restored session. */
#ifndef QWD_GUEST_SCRIPT_H
#define QWD_GUEST_SCRIPT_H

#include <apr_pools.h>

/* The placeholders of a start-up script. */
#define QWD_SCRIPT_USER "@USER@"
#define QWD_SCRIPT_SESSION "@SESSION@"
#define QWD_SCRIPT_VM "@VM@"
/* Characters a value may have to be substituted as it is; any other makes it the inert form
 * $(printf '\NNN...') (octal escapes only, see qwd_script_value). */
#define QWD_SCRIPT_PLAIN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-"

/* A host folder the guest mounts: its 9p tag at mount_point, read-only or not. */
typedef struct qwd_guest_mount {
    const char *tag;
    const char *mount_point;
    int readonly;
} qwd_guest_mount;

/* What the script's placeholders stand for. */
typedef struct qwd_script_values {
    const char *user;    /* the session's owner */
    const char *session; /* its id */
    const char *vm;      /* its machine's name */
} qwd_script_values;

/* value as shell text that expands to exactly value wherever expansions happen (a bare word,
 * double quotes, a here-document, backquotes) and never to anything else: value itself when it
 * has only QWD_SCRIPT_PLAIN_CHARS, else $(printf '\NNN\NNN...') with every byte an octal escape
 * (no quote, $, backquote or backslash of value ever reaches the shell's parser). */
const char *qwd_script_value(apr_pool_t *pool, const char *value);

/* script with every placeholder replaced by qwd_script_value of its value. */
const char *qwd_script_substitute(apr_pool_t *pool, const char *script,
                                  const qwd_script_values *values);

/* Whether text can be a guest mount point: an absolute path of letters, digits, '/', '_', '-',
 * '.' without "..", at most 128 characters. */
int qwd_guest_mount_point_is_valid(const char *text);

/* The guest's script: exports QWD_USER, QWD_SESSION, QWD_VM (single-quoted), mounts the
 * folders (9p over virtio, 9p2000.L), then, when script is set (already substituted), writes
 * it to a temporary file and runs it (by its #! line, else with sh); its exit status is the
 * script's. NULL when there is nothing to do (no mount, no script). */
const char *qwd_guest_script(apr_pool_t *pool, const qwd_guest_mount *mounts, int mount_count,
                             const char *script, const qwd_script_values *values);

#endif
