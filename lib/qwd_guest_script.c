/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's one-time script and the substitution of its placeholders. A user name can hold
 * any character, so a substituted value is either plain (letters, digits, . _ @ + -) or a
 * command substitution of printf octal escapes: the shell rebuilds the value after parsing,
 * where it can only be data. */
#include "qwd_guest_script.h"
#include "qwd_text.h"

#include <apr_strings.h>
#include <string.h>

#define MOUNT_POINT_MAX 128
#define HEREDOC_END "QWD_SCRIPT_END"
/* "\ooo" per byte. */
#define OCTAL_ESCAPE_LENGTH 4

const char *qwd_script_value(apr_pool_t *pool, const char *value)
{
    apr_size_t length = strlen(value);
    if (length && strspn(value, QWD_SCRIPT_PLAIN_CHARS) == length) {
        return value;
    }
    static const char prefix[] = "$(printf '", suffix[] = "')";
    char *text = apr_palloc(pool, sizeof prefix + length * OCTAL_ESCAPE_LENGTH + sizeof suffix);
    char *out = text + strlen(prefix);
    memcpy(text, prefix, strlen(prefix));
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        *out++ = '\\';
        *out++ = (char)('0' + ((*c >> 6) & 7));
        *out++ = (char)('0' + ((*c >> 3) & 7));
        *out++ = (char)('0' + (*c & 7));
    }
    memcpy(out, suffix, sizeof suffix); /* with its NUL */
    return text;
}

const char *qwd_script_substitute(apr_pool_t *pool, const char *script,
                                  const qwd_script_values *values)
{
    const char *const pairs[] = {QWD_SCRIPT_USER,
                                 qwd_script_value(pool, values->user),
                                 QWD_SCRIPT_SESSION,
                                 qwd_script_value(pool, values->session),
                                 QWD_SCRIPT_VM,
                                 qwd_script_value(pool, values->vm),
                                 NULL};
    /* Anything else between @ signs (an address, @PASSWORD@...) is kept as it is. */
    return qwd_substitute(pool, script, pairs);
}

int qwd_guest_mount_point_is_valid(const char *text)
{
    size_t length = text ? strlen(text) : 0;
    return length >= 2 && length <= MOUNT_POINT_MAX && text[0] == '/'
           && strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.")
                  == length
           && !strstr(text, "/..") && !strstr(text, "//");
}

/* value between single quotes, each ' written as '\'' (for the exports). */
static const char *single_quoted(apr_pool_t *pool, const char *value)
{
    const char *result = "'";
    for (const char *quote; (quote = strchr(value, '\'')); value = quote + 1) {
        result = apr_pstrcat(pool, result, apr_pstrndup(pool, value, (apr_size_t)(quote - value)),
                             "'\\''", NULL);
    }
    return apr_pstrcat(pool, result, value, "'", NULL);
}

/* Whether script has a line that is exactly end. */
static int has_line(const char *script, const char *end)
{
    size_t length = strlen(end);
    for (const char *line = script; line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (!strncmp(line, end, length) && (line[length] == '\n' || line[length] == '\0')) {
            return 1;
        }
    }
    return 0;
}

const char *qwd_guest_script(apr_pool_t *pool, const qwd_guest_mount *mounts, int mount_count,
                             const char *script, const qwd_script_values *values)
{
    if (!mount_count && !script) {
        return NULL;
    }
    const char *text = apr_pstrcat(
        pool,
        "#!/bin/sh\n"
        "# mod_qwd: this session's host folders and start-up script (docs/data-sessions.md)\n"
        "export QWD_USER=",
        single_quoted(pool, values->user), " QWD_SESSION=", single_quoted(pool, values->session),
        " QWD_VM=", single_quoted(pool, values->vm), "\n", NULL);
    if (mount_count) {
        text = apr_pstrcat(
            pool, text,
            "qwd_mount() { # TAG DIRECTORY OPTIONS\n"
            "    mkdir -p \"$2\" && mount -t 9p -o \"trans=virtio,version=9p2000.L$3\" \"$1\" "
            "\"$2\" ||\n"
            "        echo \"qwd: cannot mount the host folder $1 on $2\" >&2\n"
            "}\n",
            NULL);
    }
    for (int i = 0; i < mount_count; i++) {
        /* Tags and mount points are checked words (qwd_argv_share_tag_is_valid, above). */
        text = apr_pstrcat(pool, text, "qwd_mount ", mounts[i].tag, " ", mounts[i].mount_point,
                           mounts[i].readonly ? " ,ro\n" : " ''\n", NULL);
    }
    if (!script) {
        return text;
    }
    const char *end = HEREDOC_END;
    while (has_line(script, end)) {
        end = apr_pstrcat(pool, end, "_", NULL);
    }
    size_t length = strlen(script);
    return apr_pstrcat(pool, text,
                       "qwd_script=$(mktemp) || exit 1\n"
                       "cat > \"$qwd_script\" <<'",
                       end, "'\n", script, length && script[length - 1] != '\n' ? "\n" : "", end,
                       "\n"
                       "chmod 700 \"$qwd_script\"\n"
                       "case $(head -c 2 \"$qwd_script\") in\n"
                       "'#!') \"$qwd_script\" ;;\n"
                       "*) sh \"$qwd_script\" ;;\n"
                       "esac\n"
                       "qwd_status=$?\n"
                       "rm -f \"$qwd_script\"\n"
                       "exit $qwd_status\n",
                       NULL);
}
