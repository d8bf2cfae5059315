/* SPDX-License-Identifier: Apache-2.0 */
/* Scans the machines directory. A client only ever names a listed machine; paths, "..", hidden
 * files and symlinks leading out of the directory never make it into the list, and an image
 * whose name and bytes disagree, or whose header refers to files elsewhere, is listed with its
 * problem and never started. */
#include "helper_machines.h"
#include "helper_fs.h"
#include "qwd_image.h"
#include "qwd_image_file.h"
#include "qwd_machine_name.h"

#include <apr_strings.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest sidecar (NAME.warm) read; a description is the first line of NAME.txt, this long. */
#define SIDECAR_MAX 65536
#define DESCRIPTION_MAX 512

/* The real path of dir/name if it is a regular file inside real_dir, else NULL. */
static const char *resolve_inside(apr_pool_t *pool, const char *real_dir, const char *name)
{
    char resolved[PATH_MAX];
    if (!realpath(apr_pstrcat(pool, real_dir, "/", name, NULL), resolved)) {
        return NULL;
    }
    size_t dir_len = strlen(real_dir);
    if (strncmp(resolved, real_dir, dir_len) || resolved[dir_len] != '/') {
        return NULL;
    }
    struct stat info;
    if (stat(resolved, &info) != 0 || !S_ISREG(info.st_mode)) {
        return NULL;
    }
    return apr_pstrdup(pool, resolved);
}

/* First line of the sidecar NAME.txt (or STEM.txt), for the form's machine list. */
static const char *read_description(apr_pool_t *pool, const char *real_dir, const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *stem = dot ? apr_pstrndup(pool, name, (apr_size_t)(dot - name)) : name;
    const char *candidates[] = {apr_pstrcat(pool, name, ".txt", NULL),
                                apr_pstrcat(pool, stem, ".txt", NULL)};
    for (int i = 0; i < 2; i++) {
        const char *path = resolve_inside(pool, real_dir, candidates[i]);
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            continue;
        }
        char line[DESCRIPTION_MAX];
        ssize_t len = read(fd, line, sizeof line - 1);
        close(fd);
        line[len > 0 ? len : 0] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        return apr_pstrdup(pool, line);
    }
    return "";
}

/* The image's format (or its problem) and size; -1 when it cannot be read at all. */
static int probe_image(apr_pool_t *pool, const char *real_dir, helper_machine *machine)
{
    qwd_image_inspection inspection;
    if (qwd_image_inspect(pool, real_dir, machine->name, machine->path, &inspection) != 0) {
        return -1;
    }
    machine->format = inspection.format ? inspection.format : inspection.content_format;
    machine->virtual_size = inspection.virtual_size;
    machine->problem = inspection.problem;
    return 0;
}

/* A problem of a machine of arch that host cannot run. */
static const char *arch_problem(apr_pool_t *pool, const char *arch, const qwd_vm_host *host)
{
    if (!qwd_argv_arch_is_valid(arch)) {
        return apr_psprintf(pool,
                            "its sidecar's arch \"%s\" is not one of " QWD_ARCH_X86_64
                            " and " QWD_ARCH_AARCH64,
                            arch);
    }
    int aarch64 = !strcmp(arch, QWD_ARCH_AARCH64);
    const char *qemu = aarch64 ? host->qemu_aarch64 : host->qemu_x86_64;
    if (!qemu || access(qemu, X_OK) != 0) {
        return apr_psprintf(pool, "no QEMU for %s guests (qemu_%s%s%s; Debian: %s)", arch, arch,
                            qemu ? " = " : " is not set", qemu ? qemu : "",
                            aarch64 ? "qemu-system-arm" : "qemu-system-x86");
    }
    if (aarch64 && (!host->firmware_aarch64 || access(host->firmware_aarch64, R_OK) != 0)) {
        return apr_psprintf(pool,
                            "no UEFI firmware for aarch64 guests (firmware_aarch64 = %s; "
                            "Debian: qemu-efi-aarch64)",
                            host->firmware_aarch64 ? host->firmware_aarch64 : "");
    }
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const helper_machine *)a)->name, ((const helper_machine *)b)->name);
}

int helper_machine_read_sidecar(apr_pool_t *pool, const char *machines_dir, const char *name,
                                qwd_warm_sidecar *out, const char **problem)
{
    const char *path = apr_pstrcat(pool, machines_dir, "/", name, QWD_WARM_SIDECAR_SUFFIX, NULL);
    char *text = helper_fs_read(pool, path, SIDECAR_MAX);
    *problem = text ? qwd_warm_sidecar_parse(pool, text, out) : NULL;
    return text ? 0 : -1;
}

apr_array_header_t *helper_machines_scan(apr_pool_t *pool, const char *machines_dir,
                                         const qwd_vm_host *host)
{
    apr_array_header_t *machines = apr_array_make(pool, 8, sizeof(helper_machine));
    char real_dir[PATH_MAX];
    DIR *dir = realpath(machines_dir, real_dir) ? opendir(real_dir) : NULL;
    if (!dir) {
        return machines;
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (qwd_machine_name_problem(entry->d_name) || !qwd_image_name_format(entry->d_name)) {
            continue;
        }
        helper_machine machine = {.name = apr_pstrdup(pool, entry->d_name),
                                  .arch = QWD_ARCH_X86_64};
        machine.path = resolve_inside(pool, real_dir, machine.name);
        if (!machine.path || probe_image(pool, real_dir, &machine) != 0) {
            continue;
        }
        machine.description = read_description(pool, real_dir, machine.name);
        qwd_warm_sidecar sidecar = {0};
        const char *ignored; /* reported where the sidecar is used for a build */
        if (helper_machine_read_sidecar(pool, machines_dir, machine.name, &sidecar, &ignored)
            == 0) {
            machine.guest_agent = sidecar.guest_agent;
            machine.arch = sidecar.arch ? sidecar.arch : machine.arch;
            machine.videos = sidecar.videos;
            machine.gpu = sidecar.gpu;
        }
        if (!machine.problem) {
            machine.problem = arch_problem(pool, machine.arch, host);
        }
        APR_ARRAY_PUSH(machines, helper_machine) = machine;
    }
    closedir(dir);
    qsort(machines->elts, (size_t)machines->nelts, sizeof(helper_machine), by_name);
    return machines;
}

qwd_vm_profile helper_machine_profile(const helper_machine *machine, int cpu, int memory_mib,
                                      const char *video)
{
    qwd_vm_profile profile = {.machine = machine->name,
                              .image_path = machine->path,
                              .image_format = machine->format,
                              .arch = machine->arch,
                              .guest_agent = machine->guest_agent,
                              .cpu = cpu,
                              .memory_mib = memory_mib,
                              .video = video};
    return profile;
}

const helper_machine *helper_machines_find(apr_array_header_t *machines, const char *name)
{
    for (int i = 0; i < machines->nelts; i++) {
        const helper_machine *machine = &APR_ARRAY_IDX(machines, i, helper_machine);
        if (!strcmp(machine->name, name)) {
            return machine;
        }
    }
    return NULL;
}

const char *helper_machines_file_inside(apr_pool_t *pool, const char *real_dir, const char *name)
{
    return resolve_inside(pool, real_dir, name);
}

const char *helper_machines_description(apr_pool_t *pool, const char *real_dir, const char *name)
{
    return read_description(pool, real_dir, name);
}

int helper_machine_allows_video(apr_pool_t *pool, const helper_machine *machine, const char *video)
{
    if (!qwd_argv_video_is_valid_for(machine->arch, video)) {
        return 0;
    }
    if (!machine->videos) {
        return 1;
    }
    char *copy = apr_pstrdup(pool, machine->videos), *state;
    for (char *allowed = apr_strtok(copy, " \t,", &state); allowed;
         allowed = apr_strtok(NULL, " \t,", &state)) {
        if (!strcmp(allowed, video)) {
            return 1;
        }
    }
    return 0;
}

const char *helper_machine_first_video(apr_pool_t *pool, const helper_machine *machine)
{
    char *copy = apr_pstrdup(pool, machine->videos ? machine->videos : "std"), *state;
    return apr_strtok(copy, " \t,", &state);
}
