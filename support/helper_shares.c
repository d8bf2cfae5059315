/* SPDX-License-Identifier: Apache-2.0 */
/* Share definitions and folder resolution. A user name reaches a host path only through
 * helper_share_folder, which refuses values that are not one plain path component and any
 * path that does not resolve to a directory below share_root. */
#include "helper_shares.h"
#include "qwd_guest_script.h"
#include "qwd_text.h"

#include <apr_strings.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHARE_NAME_MAX 32
#define DEFAULT_SECURITY_MODEL "mapped-xattr"
#define DEFAULT_MOUNT_DIR "/mnt/"
#define COMPONENT_MAX 255
#define SESSION_FOLDER_MODE 0700

static int yes_no(const char *value, int *flag)
{
    if (!strcmp(value, "yes")) {
        *flag = 1;
        return 0;
    }
    if (!strcmp(value, "no")) {
        *flag = 0;
        return 0;
    }
    return -1;
}

/* Whether path (absolute) has an empty, "." or ".." component. */
static int has_odd_component(const char *path)
{
    for (const char *c = path; *c; c++) {
        if (*c != '/') {
            continue;
        }
        const char *next = c + 1;
        size_t length = strcspn(next, "/");
        if ((length == 0 && next[0] == '/') || (length == 1 && next[0] == '.')
            || (length == 2 && next[0] == '.' && next[1] == '.')) {
            return 1;
        }
    }
    return 0;
}

const char *helper_share_parse(apr_pool_t *pool, const char *text, helper_share *share)
{
    char *copy = apr_pstrdup(pool, text), *state;
    char *name = apr_strtok(copy, " \t", &state);
    *share = (helper_share){
        .name = name, .readonly = 1, .security_model = DEFAULT_SECURITY_MODEL, .machines = "*"};
    if (!name || strlen(name) > SHARE_NAME_MAX
        || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
               != strlen(name)) {
        return "a share starts with its name (1 to 32 letters, digits, '_', '-')";
    }
    for (char *word = apr_strtok(NULL, " \t", &state); word;
         word = apr_strtok(NULL, " \t", &state)) {
        char *value = strchr(word, '=');
        if (!value) {
            return apr_psprintf(pool, "share %s: \"%s\" is not key=value", name, word);
        }
        *value++ = '\0';
        int bad = 0;
        if (!strcmp(word, "path")) {
            share->path_template = value;
        }
        else if (!strcmp(word, "tag")) {
            share->tag = value;
        }
        else if (!strcmp(word, "mode")) {
            bad = strcmp(value, "ro") && strcmp(value, "rw");
            share->readonly = !strcmp(value, "ro");
        }
        else if (!strcmp(word, "security")) {
            share->security_model = value;
            bad = !qwd_argv_security_model_is_valid(value);
        }
        else if (!strcmp(word, "mount")) {
            share->mount_point = value;
            bad = !qwd_guest_mount_point_is_valid(value);
        }
        else if (!strcmp(word, "machines")) {
            share->machines = value;
            bad = !*value;
        }
        else if (!strcmp(word, "optional")) {
            bad = yes_no(value, &share->optional);
        }
        else {
            return apr_psprintf(pool, "share %s: unknown key \"%s\"", name, word);
        }
        if (bad) {
            return apr_psprintf(pool, "share %s: bad %s \"%s\"", name, word, value);
        }
    }
    if (!share->path_template || share->path_template[0] != '/'
        || has_odd_component(share->path_template)) {
        return apr_psprintf(pool, "share %s: path= must be an absolute path without . or ..", name);
    }
    if (!share->tag) {
        share->tag = name;
    }
    if (!qwd_argv_share_tag_is_valid(share->tag)) {
        return apr_psprintf(pool, "share %s: tag= must be 1 to 31 letters, digits, '_', '-'", name);
    }
    if (!share->mount_point) {
        share->mount_point = apr_pstrcat(pool, DEFAULT_MOUNT_DIR, share->tag, NULL);
    }
    return NULL;
}

const char *helper_shares_parse(apr_pool_t *pool, const apr_array_header_t *lines, const char *root,
                                apr_array_header_t **shares)
{
    *shares = apr_array_make(pool, lines ? lines->nelts : 0, sizeof(helper_share));
    if (!lines || !lines->nelts) {
        return NULL;
    }
    if (!root || root[0] != '/' || has_odd_component(root)) {
        return "share_root must be set (an absolute path) when there are shares";
    }
    size_t root_length = strlen(root);
    while (root_length > 1 && root[root_length - 1] == '/') {
        root_length--;
    }
    for (int i = 0; i < lines->nelts; i++) {
        helper_share share;
        const char *problem =
            helper_share_parse(pool, APR_ARRAY_IDX(lines, i, const char *), &share);
        if (problem) {
            return problem;
        }
        if (strncmp(share.path_template, root, root_length)
            || share.path_template[root_length] != '/') {
            return apr_psprintf(pool, "share %s: path= must lie below share_root (%s)", share.name,
                                root);
        }
        for (int k = 0; k < (*shares)->nelts; k++) {
            const helper_share *other = &APR_ARRAY_IDX(*shares, k, helper_share);
            if (!strcmp(other->name, share.name) || !strcmp(other->tag, share.tag)) {
                return apr_psprintf(pool, "share %s: its name or tag is another share's",
                                    share.name);
            }
        }
        APR_ARRAY_PUSH(*shares, helper_share) = share;
    }
    return NULL;
}

static int machine_matches(apr_pool_t *pool, const char *patterns, const char *machine)
{
    char *copy = apr_pstrdup(pool, patterns), *state;
    for (char *pattern = apr_strtok(copy, ",", &state); pattern;
         pattern = apr_strtok(NULL, ",", &state)) {
        if (fnmatch(pattern, machine, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

apr_array_header_t *helper_shares_of(apr_pool_t *pool, const apr_array_header_t *shares,
                                     const char *machine)
{
    apr_array_header_t *of = apr_array_make(pool, 4, sizeof(const helper_share *));
    for (int i = 0; shares && i < shares->nelts; i++) {
        const helper_share *share = &APR_ARRAY_IDX(shares, i, helper_share);
        if (machine_matches(pool, share->machines, machine)) {
            APR_ARRAY_PUSH(of, const helper_share *) = share;
        }
    }
    return of;
}

const qwd_vm_share *helper_shares_devices(apr_pool_t *pool, const apr_array_header_t *of_machine,
                                          const char *placeholder)
{
    qwd_vm_share *devices =
        apr_pcalloc(pool, sizeof *devices * (apr_size_t)(of_machine->nelts + 1));
    for (int i = 0; i < of_machine->nelts; i++) {
        const helper_share *share = APR_ARRAY_IDX(of_machine, i, const helper_share *);
        devices[i] =
            (qwd_vm_share){share->tag, share->security_model, share->readonly, placeholder};
    }
    return devices;
}

void helper_shares_profile(apr_pool_t *pool, const apr_array_header_t *shares,
                           const char *placeholder, qwd_vm_profile *profile)
{
    apr_array_header_t *of_machine = helper_shares_of(pool, shares, profile->machine);
    profile->shares = helper_shares_devices(pool, of_machine, placeholder);
    profile->share_count = of_machine->nelts;
}

/* A substituted value is one plain path component, or NULL. */
static const char *component(const char *value)
{
    size_t length = value ? strlen(value) : 0;
    if (!length || length > COMPONENT_MAX || strchr(value, '/') || !strcmp(value, ".")
        || !strcmp(value, "..")) {
        return NULL;
    }
    return value;
}

const char *helper_share_folder(apr_pool_t *pool, const helper_share *share, const char *root,
                                const char *user, const char *session, const char **problem,
                                const char **detail)
{
    const char *user_part = component(user), *session_part = component(session);
    *detail = NULL;
    if (!user_part || !session_part) {
        *problem = apr_psprintf(pool,
                                "share \"%s\": the user name cannot name a folder (it is "
                                "empty, \".\", \"..\" or has a '/')",
                                share->name);
        *detail = apr_psprintf(pool, "user \"%s\"", user);
        return NULL;
    }
    const char *const pairs[] = {SHARE_USER, user_part, SHARE_SESSION, session_part, NULL};
    const char *path = qwd_substitute(pool, share->path_template, pairs);
    char real_root[PATH_MAX], real_path[PATH_MAX];
    if (!realpath(root, real_root)) {
        *problem = apr_psprintf(pool, "share \"%s\" is not available", share->name);
        *detail = apr_psprintf(pool, "share_root %s: %s", root, strerror(errno));
        return NULL;
    }
    const char *last = strrchr(share->path_template, '/');
    if (strstr(last, SHARE_SESSION) && !has_odd_component(path)) {
        /* A folder per session: made now (its parent must lie below the root), and left for
         * its user when the session ends. */
        const char *slash = strrchr(path, '/');
        char real_parent[PATH_MAX];
        size_t length = strlen(real_root);
        const char *parent = apr_pstrndup(pool, path, (apr_size_t)(slash - path));
        if (realpath(*parent ? parent : "/", real_parent)
            && !strncmp(real_parent, real_root, length)
            && (real_parent[length] == '/' || real_parent[length] == '\0')) {
            mkdir(apr_pstrcat(pool, real_parent, slash, NULL), SESSION_FOLDER_MODE);
        }
    }
    struct stat info;
    if (has_odd_component(path) || !realpath(path, real_path) || stat(real_path, &info) != 0
        || !S_ISDIR(info.st_mode)) {
        *problem =
            apr_psprintf(pool, "share \"%s\": there is no folder for this session", share->name);
        *detail = apr_psprintf(pool, "%s: %s", path,
                               has_odd_component(path) ? "a . or .. component"
                               : errno                 ? strerror(errno)
                                                       : "not a directory");
        return NULL;
    }
    size_t length = strlen(real_root);
    if (strncmp(real_path, real_root, length) || real_path[length] != '/') {
        *problem = apr_psprintf(pool, "share \"%s\": the folder lies outside the shared area",
                                share->name);
        *detail = apr_psprintf(pool, "%s resolves to %s, outside share_root %s", path, real_path,
                               real_root);
        return NULL;
    }
    return apr_pstrdup(pool, real_path);
}
