/* SPDX-License-Identifier: Apache-2.0 */
/* Reads the scripts directory. A client only ever names a listed script: paths, hidden files,
 * descriptions and symlinks leading out of the directory are never scripts. */
#include "helper_scripts.h"
#include "helper_fs.h"
#include "helper_machines.h"
#include "qwd_machine_name.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_description(const char *name)
{
    size_t length = strlen(name), suffix = strlen(SCRIPT_DESCRIPTION_SUFFIX);
    return length >= suffix && !strcmp(name + length - suffix, SCRIPT_DESCRIPTION_SUFFIX);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const helper_script *)a)->name, ((const helper_script *)b)->name);
}

apr_array_header_t *helper_scripts_scan(apr_pool_t *pool, const char *scripts_dir)
{
    apr_array_header_t *scripts = apr_array_make(pool, 8, sizeof(helper_script));
    char real_dir[PATH_MAX];
    DIR *dir = scripts_dir && realpath(scripts_dir, real_dir) ? opendir(real_dir) : NULL;
    if (!dir) {
        return scripts;
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (qwd_machine_name_problem(entry->d_name) || is_description(entry->d_name)
            || strlen(entry->d_name) > QWD_PROTO_SCRIPT_NAME_MAX) {
            continue;
        }
        helper_script script = {.name = apr_pstrdup(pool, entry->d_name)};
        script.path = helper_machines_file_inside(pool, real_dir, script.name);
        struct stat info;
        if (!script.path || stat(script.path, &info) != 0
            || info.st_size > QWD_PROTO_SCRIPT_TEXT_MAX) {
            continue;
        }
        script.description = helper_machines_description(pool, real_dir, script.name);
        APR_ARRAY_PUSH(scripts, helper_script) = script;
    }
    closedir(dir);
    qsort(scripts->elts, (size_t)scripts->nelts, sizeof(helper_script), by_name);
    return scripts;
}

const char *helper_script_text(apr_pool_t *pool, const char *scripts_dir, const char *name,
                               const char **problem)
{
    apr_array_header_t *scripts = helper_scripts_scan(pool, scripts_dir);
    for (int i = 0; i < scripts->nelts; i++) {
        const helper_script *script = &APR_ARRAY_IDX(scripts, i, helper_script);
        if (strcmp(script->name, name)) {
            continue;
        }
        apr_size_t length = 0;
        char *text =
            helper_fs_read_length(pool, script->path, QWD_PROTO_SCRIPT_TEXT_MAX + 1, &length);
        if (!text || length > QWD_PROTO_SCRIPT_TEXT_MAX || strlen(text) != length) {
            *problem = apr_psprintf(pool,
                                    "the script \"%s\" cannot be read, is too large or is "
                                    "not text",
                                    name);
            return NULL;
        }
        return text;
    }
    *problem = apr_psprintf(pool, "there is no script \"%s\"", name);
    return NULL;
}
