/* SPDX-License-Identifier: Apache-2.0 */
/* The catalogue side of qwdctl machines: nothing becomes visible in the machines directory
 * before its checksum matched and its bytes passed the helper's own image checks; then the
 * sidecars and the image are renamed into place and the helper rescans. */
#include "qwdctl_machines.h"
#include "helper_config.h"
#include "helper_fs.h"
#include "qwd_argv.h"
#include "qwd_catalogue.h"
#include "qwd_image.h"
#include "qwd_image_file.h"
#include "qwd_proto_client.h"
#include "qwd_protocol.h"
#include "qwd_warm.h"
#include "qwdctl_download.h"

#include <apr_strings.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CATALOGUE_MAX (1024 * 1024)
#define STAMP_SUFFIX ".sha256"
#define DESCRIPTION_SUFFIX ".txt"
#define PART_SUFFIX ".part"
/* The partial file of a download names the sha256 it is for: .NAME.SHA16.part */
#define PART_HASH_CHARS 16
#define SIDECAR_MODE 0644
#define RESCAN_TIMEOUT_MS 15000
#define MIB (1024.0 * 1024.0)

/* Where the machines and the catalogue are, and the helper's socket. */
typedef struct settings {
    const char *machines_dir; /* resolved (realpath) */
    const char *catalogue;
    const char *socket;
    apr_array_header_t *entries; /* qwd_catalogue_entry */
} settings;

static int fail(const char *code, const char *message)
{
    fprintf(stderr, "qwdctl: %s: %s\n", code, message);
    return 1;
}

/* Reads the helper's configuration and the catalogue. Returns 0, or the exit status after
 * printing the error. */
static int load(apr_pool_t *pool, const qwdctl_machines_options *options, settings *out)
{
    helper_config *config = helper_config_defaults(pool);
    const char *path = options->config;
    if (!path && access(HELPER_DEFAULT_CONFIG, F_OK) == 0) {
        path = HELPER_DEFAULT_CONFIG;
    }
    const char *problem = path ? helper_config_read(pool, config, path) : NULL;
    if (problem) {
        return fail("bad_config",
                    apr_psprintf(pool, "%s (or give --machines-dir and --catalogue)", problem));
    }
    char real_dir[PATH_MAX];
    const char *dir = options->machines_dir ? options->machines_dir : config->machines_dir;
    if (!realpath(dir, real_dir)) {
        return fail("bad_config",
                    apr_psprintf(pool, "machines directory %s: %s", dir, strerror(errno)));
    }
    out->machines_dir = apr_pstrdup(pool, real_dir);
    out->catalogue = options->catalogue ? options->catalogue : config->catalogue;
    out->socket = options->socket                ? options->socket
                  : getenv(QWD_PROTO_SOCKET_ENV) ? NULL
                                                 : config->socket;
    char *text = helper_fs_read(pool, out->catalogue, CATALOGUE_MAX);
    if (!text) {
        return fail("bad_catalogue",
                    apr_psprintf(pool, "cannot read %s: %s", out->catalogue, strerror(errno)));
    }
    if ((problem = qwd_catalogue_parse(pool, text, &out->entries))) {
        return fail("bad_catalogue", apr_psprintf(pool, "%s: %s", out->catalogue, problem));
    }
    return 0;
}

static const char *in_dir(apr_pool_t *pool, const settings *s, const char *name)
{
    return apr_pstrcat(pool, s->machines_dir, "/", name, NULL);
}

/* Whether a is later than b. */
static int later(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* The sha256 of the installed image name: from NAME.sha256 when it is not older than the
 * image (qwdctl wrote it when it placed the image), else computed. NULL when there is no
 * image; "" when it cannot be read. */
static const char *installed_sha256(apr_pool_t *pool, const settings *s, const char *name)
{
    const char *image = in_dir(pool, s, name);
    const char *stamp = apr_pstrcat(pool, image, STAMP_SUFFIX, NULL);
    struct stat image_info, stamp_info;
    if (stat(image, &image_info) != 0) {
        return NULL;
    }
    char *text = stat(stamp, &stamp_info) == 0 && !later(&image_info.st_mtim, &stamp_info.st_mtim)
                     ? helper_fs_read(pool, stamp, QWD_SHA256_HEX_LENGTH + PATH_MAX)
                     : NULL;
    if (text && strlen(text) > QWD_SHA256_HEX_LENGTH && text[QWD_SHA256_HEX_LENGTH] == ' ') {
        text[QWD_SHA256_HEX_LENGTH] = '\0';
        if (qwd_sha256_hex_is_valid(text)) {
            return text;
        }
    }
    char *hex = apr_palloc(pool, QWD_SHA256_HEX_LENGTH + 1);
    fprintf(stderr, "%s: computing its sha256 (no current %s%s)\n", name, name, STAMP_SUFFIX);
    return qwdctl_sha256_file(pool, image, hex) ? "" : hex;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_machine_file(const char *name)
{
    return name[0] != '.' && qwd_image_name_format(name) != NULL;
}

static const char *entry_state(const qwd_catalogue_entry *entry, const char *installed)
{
    if (!installed) {
        return "available";
    }
    return strcmp(installed, entry->sha256) ? "outdated" : "installed";
}

int qwdctl_machines_list(apr_pool_t *pool, const qwdctl_machines_options *options)
{
    settings s;
    int status = load(pool, options, &s);
    if (status) {
        return status;
    }
    json_t *list = json_array();
    for (int i = 0; i < s.entries->nelts; i++) {
        const qwd_catalogue_entry *entry = &APR_ARRAY_IDX(s.entries, i, qwd_catalogue_entry);
        const char *installed = installed_sha256(pool, &s, entry->name);
        json_t *item = json_pack(
            "{s:s, s:s, s:s, s:s, s:s}", "name", entry->name, "state",
            entry_state(entry, installed), "arch", entry->arch ? entry->arch : QWD_ARCH_X86_64,
            "description", entry->description ? entry->description : "", "sha256", entry->sha256);
        if (installed) {
            json_object_set_new(item, "installed_sha256", json_string(installed));
        }
        json_array_append_new(list, item);
    }
    /* images of the directory that the catalogue does not name */
    DIR *dir = opendir(s.machines_dir);
    struct dirent *file;
    apr_array_header_t *local = apr_array_make(pool, 8, sizeof(const char *));
    while (dir && (file = readdir(dir))) {
        if (is_machine_file(file->d_name) && !qwd_catalogue_find(s.entries, file->d_name)) {
            APR_ARRAY_PUSH(local, const char *) = apr_pstrdup(pool, file->d_name);
        }
    }
    if (dir) {
        closedir(dir);
    }
    qsort(local->elts, (size_t)local->nelts, sizeof(const char *), by_name);
    for (int i = 0; i < local->nelts; i++) {
        json_array_append_new(list,
                              json_pack("{s:s, s:s}", "name", APR_ARRAY_IDX(local, i, const char *),
                                        "state", "local"));
    }
    if (options->json) {
        json_t *answer = json_pack("{s:o}", "machines", list);
        char *text = json_dumps(answer, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(answer);
        return 0;
    }
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        json_t *arch = json_object_get(item, "arch");
        json_t *description = json_object_get(item, "description");
        printf("%-28s %-10s %-8s %s\n", json_string_value(json_object_get(item, "name")),
               json_string_value(json_object_get(item, "state")),
               arch ? json_string_value(arch) : "-",
               description ? json_string_value(description) : "(not in the catalogue)");
    }
    json_decref(list);
    return 0;
}

/* Writes text to the sidecar name + suffix, atomically (a hidden temp file, renamed). */
static const char *write_sidecar(apr_pool_t *pool, const settings *s, const char *name,
                                 const char *suffix, const char *text)
{
    const char *path = in_dir(pool, s, apr_pstrcat(pool, name, suffix, NULL));
    int error = helper_fs_write_atomic(pool, path, NULL, text, SIDECAR_MODE);
    return error ? apr_psprintf(pool, "%s: %s", path, strerror(error)) : NULL;
}

/* The sidecars of entry: NAME.txt (its description), NAME.warm (its arch and warm settings).
 * An entry without one leaves an administrator's own file alone. */
static const char *write_sidecars(apr_pool_t *pool, const settings *s,
                                  const qwd_catalogue_entry *entry)
{
    const char *problem = NULL;
    if (entry->description) {
        problem = write_sidecar(pool, s, entry->name, DESCRIPTION_SUFFIX,
                                apr_pstrcat(pool, entry->description, "\n", NULL));
    }
    if (!problem && entry->sidecar) {
        problem = write_sidecar(pool, s, entry->name, QWD_WARM_SIDECAR_SUFFIX, entry->sidecar);
    }
    return problem;
}

/* Removes the partial files of name other than keep (downloads of another version). */
static void remove_other_parts(apr_pool_t *pool, const settings *s, const char *name,
                               const char *keep)
{
    const char *prefix = apr_pstrcat(pool, ".", name, ".", NULL);
    DIR *dir = opendir(s->machines_dir);
    struct dirent *file;
    while (dir && (file = readdir(dir))) {
        size_t length = strlen(file->d_name);
        if (!strncmp(file->d_name, prefix, strlen(prefix)) && length > strlen(PART_SUFFIX)
            && !strcmp(file->d_name + length - strlen(PART_SUFFIX), PART_SUFFIX)
            && strcmp(file->d_name, keep)) {
            unlinkat(dirfd(dir), file->d_name, 0);
        }
    }
    if (dir) {
        closedir(dir);
    }
}

/* Fetches one entry. Returns 1 when the image was placed, 0 when it was up to date, -1 after
 * printing an error. */
static int fetch_one(apr_pool_t *pool, const settings *s, const qwd_catalogue_entry *entry)
{
    const char *name = entry->name, *problem;
    const char *installed = installed_sha256(pool, s, name);
    if (installed && !strcmp(installed, entry->sha256)) {
        if ((problem = write_sidecars(pool, s, entry))) {
            return fail("install_failed", problem), -1;
        }
        printf("%s: up to date\n", name);
        return 0;
    }
    const char *part_name =
        apr_psprintf(pool, ".%s.%.*s%s", name, PART_HASH_CHARS, entry->sha256, PART_SUFFIX);
    remove_other_parts(pool, s, name, part_name);
    qwdctl_download download = {
        .url = entry->url, .path = in_dir(pool, s, part_name), .label = name};
    if ((problem = qwdctl_download_run(pool, &download))) {
        return fail("download_failed",
                    apr_psprintf(pool, "%s: %s (run the same command again to resume)", name,
                                 problem)),
               -1;
    }
    const char *kept = installed ? "the installed image is kept" : "nothing was installed";
    if (strcmp(download.sha256, entry->sha256)) {
        unlink(download.path);
        return fail("checksum_mismatch",
                    apr_psprintf(pool, "%s: the download's sha256 is %s, the catalogue says %s; %s",
                                 name, download.sha256, entry->sha256, kept)),
               -1;
    }
    /* the helper's own checks, before the helper can see it */
    qwd_image_inspection inspection;
    qwd_image_inspect(pool, s->machines_dir, name, download.path, &inspection);
    if (inspection.problem) {
        unlink(download.path);
        return fail("refused_image",
                    apr_psprintf(pool, "%s: %s; %s", name, inspection.problem, kept)),
               -1;
    }
    const char *image = in_dir(pool, s, name);
    if ((problem = write_sidecars(pool, s, entry))
        || (rename(download.path, image) != 0
            && (problem = apr_psprintf(pool, "%s: %s", image, strerror(errno))))
        || (problem = write_sidecar(pool, s, name, STAMP_SUFFIX,
                                    apr_psprintf(pool, "%s  %s\n", entry->sha256, name)))) {
        return fail("install_failed", apr_psprintf(pool, "%s: %s", name, problem)), -1;
    }
    printf("%s: installed (%.1f MiB%s, sha256 ok, %s, %s)\n", name, (double)download.size / MIB,
           download.kept ? ", resumed" : "", inspection.format,
           entry->arch ? entry->arch : QWD_ARCH_X86_64);
    return 1;
}

/* Asks the helper to rescan and says what it makes of each placed machine. */
static void rescan(apr_pool_t *pool, const settings *s, apr_array_header_t *placed)
{
    qwd_proto_client *client;
    json_t *result, *error;
    json_t *arguments = qwd_json_pool_bind(pool, json_pack("{s:b}", "rescan", 1));
    if (qwd_proto_client_connect(pool, qwd_proto_client_socket_path(s->socket), RESCAN_TIMEOUT_MS,
                                 &client, &error)
            != APR_SUCCESS
        || qwd_proto_client_call(client, pool, QWD_OP_MACHINES, arguments, &result, &error)
               != APR_SUCCESS) {
        fprintf(stderr,
                "qwdctl: the helper did not rescan (%s: %s); it lists the machines at "
                "its next request\n",
                json_string_value(json_object_get(error, "code")),
                json_string_value(json_object_get(error, "message")));
        return;
    }
    for (int i = 0; i < placed->nelts; i++) {
        const char *name = APR_ARRAY_IDX(placed, i, const char *);
        size_t j;
        json_t *machine, *found = NULL;
        json_array_foreach (json_object_get(result, "machines"), j, machine) {
            if (!strcmp(json_string_value(json_object_get(machine, "name")), name)) {
                found = machine;
            }
        }
        json_t *problem = json_object_get(found, "problem");
        if (!found || json_is_string(problem)) {
            fprintf(stderr, "qwdctl: %s: the helper %s%s\n", name,
                    found ? "cannot start it: " : "does not list it",
                    found ? json_string_value(problem) : "");
        }
        else {
            printf("%s: the helper lists it\n", name);
        }
    }
}

int qwdctl_machines_fetch(apr_pool_t *pool, const qwdctl_machines_options *options,
                          const char *const *names, int count)
{
    settings s;
    int status = load(pool, options, &s);
    if (status) {
        return status;
    }
    apr_array_header_t *wanted = apr_array_make(pool, 8, sizeof(const qwd_catalogue_entry *));
    for (int i = 0; i < count; i++) {
        const qwd_catalogue_entry *entry = qwd_catalogue_find(s.entries, names[i]);
        if (!entry) {
            return fail("not_in_catalogue",
                        apr_psprintf(pool, "%s is not in %s", names[i], s.catalogue));
        }
        APR_ARRAY_PUSH(wanted, const qwd_catalogue_entry *) = entry;
    }
    for (int i = 0; !count && i < s.entries->nelts; i++) {
        APR_ARRAY_PUSH(wanted, const qwd_catalogue_entry *) =
            &APR_ARRAY_IDX(s.entries, i, qwd_catalogue_entry);
    }
    apr_array_header_t *placed = apr_array_make(pool, 8, sizeof(const char *));
    int failed = 0, changed = 0;
    for (int i = 0; i < wanted->nelts; i++) {
        const qwd_catalogue_entry *entry = APR_ARRAY_IDX(wanted, i, const qwd_catalogue_entry *);
        int outcome = fetch_one(pool, &s, entry);
        failed |= outcome < 0;
        changed |= outcome >= 0; /* sidecars are rewritten even when the image is current */
        if (outcome > 0) {
            APR_ARRAY_PUSH(placed, const char *) = entry->name;
        }
    }
    if (changed) {
        rescan(pool, &s, placed);
    }
    return failed;
}
