/* SPDX-License-Identifier: Apache-2.0 */
/* Every configuration key is spelled once, in the table below, with its type and default;
 * docs/helper.md documents the same keys in the same order. */
#include "helper_config.h"
#include "helper_shares.h"
#include "qwd_argv.h"
#include "qwd_text.h"
#include "qwd_protocol.h"

#include <apr_strings.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEY_LIST: a key that may repeat; each line adds one string. */
typedef enum { KEY_STRING, KEY_INT, KEY_MODE, KEY_DOUBLE, KEY_BOOL, KEY_LIST } key_type;

typedef struct {
    const char *name;
    key_type type;
    size_t offset;
    const char *default_value; /* NULL: unset */
} config_key;

#define KEY(name, type, default_value)                            \
    {                                                             \
        #name, type, offsetof(helper_config, name), default_value \
    }

static const config_key config_keys[] = {
    KEY(socket, KEY_STRING, QWD_PROTO_DEFAULT_SOCKET),
    KEY(socket_mode, KEY_MODE, "0660"),
    KEY(socket_group, KEY_STRING, NULL),
    KEY(machines_dir, KEY_STRING, "/var/lib/qwd/machines"),
    KEY(state_dir, KEY_STRING, "/var/lib/qwd/state"),
    KEY(user, KEY_STRING, NULL),
    KEY(qemu_img, KEY_STRING, "/usr/bin/qemu-img"),
    KEY(firmware_aarch64, KEY_STRING, "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"),
    KEY(accel, KEY_STRING, "auto"),
    KEY(cpu_model, KEY_STRING, NULL),
    KEY(websockify, KEY_STRING, "/usr/bin/websockify"),
    KEY(websockify_listen, KEY_STRING, "127.0.0.1:6080"),
    KEY(websockify_web, KEY_STRING, NULL),
    KEY(token_dir, KEY_STRING, NULL),
    KEY(nic_model, KEY_STRING, "virtio-net-pci"),
    KEY(max_sessions, KEY_INT, "10"),
    KEY(max_vcpus, KEY_INT, "32"),
    KEY(max_memory_mib, KEY_INT, "16384"),
    KEY(max_load, KEY_DOUBLE, "0"),
    KEY(max_cpu, KEY_INT, "4"),
    KEY(max_session_memory_mib, KEY_INT, "4096"),
    KEY(default_cpu, KEY_INT, "1"),
    KEY(default_memory_mib, KEY_INT, "1024"),
    KEY(default_lifetime, KEY_INT, "3600"),
    KEY(max_lifetime, KEY_INT, "86400"),
    KEY(iso_scratch_size, KEY_STRING, "10G"),
    KEY(max_scratch_gib, KEY_INT, "100"),
    KEY(allowed_group, KEY_STRING, NULL),
    KEY(log_file, KEY_STRING, NULL),
    KEY(expiry_interval, KEY_INT, "2"),
    KEY(client_timeout, KEY_INT, "10"),
    KEY(ended_keep, KEY_INT, "600"),
    KEY(usage_max_age, KEY_INT, "5"),
    KEY(warm_auto, KEY_BOOL, "yes"),
    KEY(warm_recipe, KEY_STRING, "shared"),
    KEY(warm_clone_hugepages, KEY_BOOL, "no"),
    KEY(warm_budget_mib, KEY_INT, "4096"),
    KEY(share_root, KEY_STRING, NULL),
    KEY(share, KEY_LIST, NULL),
    KEY(scripts_dir, KEY_STRING, NULL),
    KEY(gpu_devices, KEY_STRING, NULL),
    KEY(sysfs_root, KEY_STRING, "/sys"),
    KEY(backend, KEY_STRING, QWD_BACKEND_LOCAL),
    KEY(slurm_machines, KEY_STRING, NULL),
    KEY(slurm_bin_dir, KEY_STRING, "/usr/bin"),
    KEY(slurm_partition, KEY_STRING, NULL),
    KEY(slurm_account, KEY_STRING, NULL),
    KEY(slurm_qos, KEY_STRING, NULL),
    KEY(slurm_signal_s, KEY_INT, "30"),
    KEY(slurm_memory_overhead_mib, KEY_INT, "256"),
    KEY(slurm_poll_interval, KEY_INT, "2"),
    KEY(slurm_node_command, KEY_STRING, "/usr/sbin/qwd-node"),
    KEY(slurm_node_config, KEY_STRING, NULL),
    KEY(slurm_output, KEY_STRING, "/dev/null"),
    KEY(slurm_warm, KEY_BOOL, "yes"),
    KEY(node_listen, KEY_STRING, "0.0.0.0"),
    KEY(node_ports, KEY_STRING, "47000-47999"),
    KEY(catalogue, KEY_STRING, "/etc/qwd/catalogue.conf"),
    KEY(min_free_mib, KEY_INT, "512"),
};

#define QEMU_KEY_PREFIX "qemu_"
/* No configuration is this long: a longer file is refused rather than read in part. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Bounds of integer keys: any integer key, and the keys below. */
#define KEY_INT_MAX 1000000000
#define MAX_CPU_BOUND 1024
#define MEMORY_MIB_BOUND (1 << 24) /* 16 TiB */
#define LIFETIME_BOUND_S (1 << 30)
#define INTERVAL_BOUND_S 3600
#define SCRATCH_GIB_BOUND (1 << 20) /* 1 PiB */
#define MAX_PORT 65535
#define DEFAULT_QEMU_X86_64 "/usr/bin/qemu-system-x86_64"
#define DEFAULT_QEMU_AARCH64 "/usr/bin/qemu-system-aarch64"

static const char *set_key(apr_pool_t *pool, helper_config *config, const config_key *key,
                           const char *value)
{
    void *field = (char *)config + key->offset;
    char *end;
    errno = 0;
    switch (key->type) {
    case KEY_STRING:
        /* an empty value unsets an optional key; a key with a default always has a value */
        if (!*value && key->default_value) {
            return apr_psprintf(pool, "%s must not be empty (its default is %s)", key->name,
                                key->default_value);
        }
        *(const char **)field = *value ? apr_pstrdup(pool, value) : NULL;
        return NULL;
    case KEY_LIST: {
        apr_array_header_t **list = field;
        if (!*list) {
            *list = apr_array_make(pool, 4, sizeof(const char *));
        }
        APR_ARRAY_PUSH(*list, const char *) = apr_pstrdup(pool, value);
        return NULL;
    }
    case KEY_INT: {
        long number = strtol(value, &end, 10);
        if (errno || end == value || *end || number < 0 || number > KEY_INT_MAX) {
            return apr_psprintf(pool, "%s: \"%s\" is not a non-negative integer", key->name, value);
        }
        *(int *)field = (int)number;
        return NULL;
    }
    case KEY_MODE: {
        long mode = strtol(value, &end, 8);
        if (errno || end == value || *end || mode < 0 || mode > 07777) {
            return apr_psprintf(pool, "%s: \"%s\" is not an octal mode", key->name, value);
        }
        *(int *)field = (int)mode;
        return NULL;
    }
    case KEY_BOOL:
        if (!strcmp(value, "yes") || !strcmp(value, "on") || !strcmp(value, "true")
            || !strcmp(value, "1")) {
            *(int *)field = 1;
        }
        else if (!strcmp(value, "no") || !strcmp(value, "off") || !strcmp(value, "false")
                 || !strcmp(value, "0")) {
            *(int *)field = 0;
        }
        else {
            return apr_psprintf(pool, "%s: \"%s\" is not yes or no", key->name, value);
        }
        return NULL;
    case KEY_DOUBLE: {
        double number = strtod(value, &end);
        if (errno || end == value || *end || number < 0) {
            return apr_psprintf(pool, "%s: \"%s\" is not a non-negative number", key->name, value);
        }
        *(double *)field = number;
        return NULL;
    }
    }
    return "unreachable";
}

static const char *apply(apr_pool_t *pool, helper_config *config, const char *name,
                         const char *value)
{
    if (!strncmp(name, QEMU_KEY_PREFIX, strlen(QEMU_KEY_PREFIX)) && strcmp(name, "qemu_img")) {
        apr_table_set(config->qemu_binaries, name + strlen(QEMU_KEY_PREFIX), value);
        return NULL;
    }
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        if (!strcmp(config_keys[i].name, name)) {
            return set_key(pool, config, &config_keys[i], value);
        }
    }
    return apr_psprintf(pool, "unknown configuration key \"%s\"", name);
}

helper_config *helper_config_defaults(apr_pool_t *pool)
{
    helper_config *config = apr_pcalloc(pool, sizeof *config);
    config->qemu_binaries = apr_table_make(pool, 4);
    apr_table_set(config->qemu_binaries, QWD_ARCH_X86_64, DEFAULT_QEMU_X86_64);
    apr_table_set(config->qemu_binaries, QWD_ARCH_AARCH64, DEFAULT_QEMU_AARCH64);
    for (size_t i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
        if (config_keys[i].default_value) {
            set_key(pool, config, &config_keys[i], config_keys[i].default_value);
        }
    }
    return config;
}

const char *helper_config_set(apr_pool_t *pool, helper_config *config, const char *setting)
{
    char *copy = apr_pstrdup(pool, setting);
    char *equals = strchr(copy, '=');
    if (!equals) {
        return apr_psprintf(pool, "\"%s\" is not key=value", setting);
    }
    *equals = '\0';
    return apply(pool, config, qwd_trim(copy), qwd_trim(equals + 1));
}

const char *helper_config_parse(apr_pool_t *pool, helper_config *config, const char *text,
                                apr_size_t length, const char *name)
{
    char *copy = apr_pstrmemdup(pool, text, length), *line = copy;
    int line_number = 0;
    if (strlen(copy) != length) {
        return apr_psprintf(pool, "%s: a NUL byte is no text", name);
    }
    while (line) {
        char *next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        line_number++;
        char *setting = qwd_trim(line);
        if (*setting && *setting != '#') {
            const char *problem = helper_config_set(pool, config, setting);
            if (problem) {
                return apr_psprintf(pool, "%s:%d: %s", name, line_number, problem);
            }
        }
        line = next;
    }
    return NULL;
}

const char *helper_config_read(apr_pool_t *pool, helper_config *config, const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        return apr_psprintf(pool, "cannot read %s: %s", path, strerror(errno));
    }
    char *text = apr_palloc(pool, CONFIG_FILE_MAX + 1);
    size_t length = fread(text, 1, CONFIG_FILE_MAX + 1, file);
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        return apr_psprintf(pool, "cannot read %s", path);
    }
    if (length > CONFIG_FILE_MAX) {
        return apr_psprintf(pool, "%s is longer than %d bytes", path, CONFIG_FILE_MAX);
    }
    return helper_config_parse(pool, config, text, length, path);
}

static const char *must_be_absolute(apr_pool_t *pool, const char *name, const char *path)
{
    if (!path || path[0] != '/') {
        return apr_psprintf(pool, "%s must be an absolute path", name);
    }
    return NULL;
}

static const char *in_range(apr_pool_t *pool, const char *name, int value, int min, int max)
{
    if (value < min || value > max) {
        return apr_psprintf(pool, "%s is %d, it must be between %d and %d", name, value, min, max);
    }
    return NULL;
}

void helper_config_node_ports(const helper_config *config, int *min, int *max)
{
    *min = *max = 0;
    if (sscanf(config->node_ports, "%d-%d", min, max) != 2) {
        *min = *max = 0;
    }
}

int helper_config_machine_on_slurm(const helper_config *config, const char *machine)
{
    if (!config->slurm_machines) {
        return !strcmp(config->backend, QWD_BACKEND_SLURM);
    }
    char *patterns = strdup(config->slurm_machines), *state = NULL;
    int match = 0;
    for (char *pattern = strtok_r(patterns, " \t,", &state); pattern && !match;
         pattern = strtok_r(NULL, " \t,", &state)) {
        match = fnmatch(pattern, machine, 0) == 0;
    }
    free(patterns);
    return match;
}

/* The Slurm keys: a backend this helper knows, absolute paths, a port range. */
static const char *check_slurm(apr_pool_t *pool, const helper_config *config)
{
    const char *problem;
    int min, max;
    if (strcmp(config->backend, QWD_BACKEND_LOCAL) && strcmp(config->backend, QWD_BACKEND_SLURM)) {
        return "backend must be local or slurm";
    }
    if ((problem = must_be_absolute(pool, "slurm_bin_dir", config->slurm_bin_dir))
        || (problem = must_be_absolute(pool, "slurm_node_command", config->slurm_node_command))
        || (config->slurm_node_config
            && (problem = must_be_absolute(pool, "slurm_node_config", config->slurm_node_config)))
        || (problem = must_be_absolute(pool, "slurm_output", config->slurm_output))) {
        return problem;
    }
    helper_config_node_ports(config, &min, &max);
    if (min < 1 || max > MAX_PORT || min > max) {
        return "node_ports must be a port range MIN-MAX (1 to 65535)";
    }
    if ((problem = in_range(pool, "slurm_poll_interval", config->slurm_poll_interval, 1,
                            INTERVAL_BOUND_S))
        || (problem =
                in_range(pool, "slurm_signal_s", config->slurm_signal_s, 1, INTERVAL_BOUND_S))) {
        return problem;
    }
    /* what goes into sbatch's options and the job's command: no spaces, no quotes */
    const char *words[] = {config->slurm_partition,   config->slurm_account,
                           config->slurm_qos,         config->slurm_node_command,
                           config->slurm_node_config, config->slurm_output};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (words[i] && strcspn(words[i], " \t'\"\\;&|$`<>") != strlen(words[i])) {
            return apr_psprintf(pool,
                                "\"%s\": Slurm names and paths may not contain spaces, "
                                "quotes or shell characters",
                                words[i]);
        }
    }
    return NULL;
}

const char *helper_config_check(apr_pool_t *pool, helper_config *config)
{
    const char *problem;
    if ((problem = must_be_absolute(pool, "socket", config->socket))
        || (problem = must_be_absolute(pool, "machines_dir", config->machines_dir))
        || (problem = must_be_absolute(pool, "state_dir", config->state_dir))
        || (problem = must_be_absolute(pool, "qemu_img", config->qemu_img))
        || (problem = must_be_absolute(pool, "websockify", config->websockify))) {
        return problem;
    }
    if (!config->token_dir) {
        config->token_dir = apr_pstrcat(pool, config->state_dir, "/tokens", NULL);
    }
    if ((problem = must_be_absolute(pool, "token_dir", config->token_dir))) {
        return problem;
    }
    if (strcmp(config->accel, "auto") && strcmp(config->accel, "kvm")
        && strcmp(config->accel, "tcg")) {
        return "accel must be auto, kvm or tcg";
    }
    if (config->cpu_model && !qwd_argv_cpu_model_is_valid(config->cpu_model)) {
        return "cpu_model must be one QEMU CPU model name (like host, max or qemu64)";
    }
    if (strcmp(config->nic_model, "virtio-net-pci") && strcmp(config->nic_model, "e1000")) {
        return "nic_model must be virtio-net-pci or e1000";
    }
    if (!config->warm_recipe
        || (strcmp(config->warm_recipe, "shared") && strcmp(config->warm_recipe, "stream"))) {
        return "warm_recipe must be shared or stream";
    }
    /* An empty qemu_<arch> means no guests of that arch (their machines say so when listed). */
    const apr_array_header_t *binaries = apr_table_elts(config->qemu_binaries);
    for (int i = 0; i < binaries->nelts; i++) {
        const apr_table_entry_t *entry = &APR_ARRAY_IDX(binaries, i, apr_table_entry_t);
        if (*entry->val
            && (problem = must_be_absolute(
                    pool, apr_pstrcat(pool, QEMU_KEY_PREFIX, entry->key, NULL), entry->val))) {
            return problem;
        }
    }
    if ((problem = must_be_absolute(pool, "firmware_aarch64", config->firmware_aarch64))
        || (problem = must_be_absolute(pool, "catalogue", config->catalogue))) {
        return problem;
    }
    if ((problem = must_be_absolute(pool, "sysfs_root", config->sysfs_root))
        || (config->scripts_dir
            && (problem = must_be_absolute(pool, "scripts_dir", config->scripts_dir)))) {
        return problem;
    }
    if ((problem = helper_shares_parse(pool, config->share, config->share_root, &config->shares))) {
        return apr_pstrcat(pool, "share: ", problem, NULL);
    }
    if (config->gpu_devices && strcmp(config->gpu_devices, "vfio")) {
        char *copy = apr_pstrdup(pool, config->gpu_devices), *state;
        for (char *address = apr_strtok(copy, " ,", &state); address;
             address = apr_strtok(NULL, " ,", &state)) {
            if (!qwd_argv_pci_address_is_valid(address)) {
                return apr_psprintf(
                    pool, "gpu_devices: \"%s\" is not a PCI address like 0000:65:00.0", address);
            }
        }
    }
    if (strspn(config->iso_scratch_size, "0123456789") == 0
        || strspn(config->iso_scratch_size, "0123456789KMGT") != strlen(config->iso_scratch_size)) {
        return "iso_scratch_size must be a size like 10G";
    }
    if ((problem = check_slurm(pool, config))) {
        return problem;
    }
    if ((problem = in_range(pool, "max_cpu", config->max_cpu, 1, MAX_CPU_BOUND))
        || (problem = in_range(pool, "default_cpu", config->default_cpu, 1, config->max_cpu))
        || (problem = in_range(pool, "max_session_memory_mib", config->max_session_memory_mib,
                               QWD_PROTO_MIN_MEMORY_MIB, MEMORY_MIB_BOUND))
        || (problem = in_range(pool, "default_memory_mib", config->default_memory_mib,
                               QWD_PROTO_MIN_MEMORY_MIB, config->max_session_memory_mib))
        || (problem = in_range(pool, "max_lifetime", config->max_lifetime, 1, LIFETIME_BOUND_S))
        || (problem = in_range(pool, "default_lifetime", config->default_lifetime, 1,
                               config->max_lifetime))
        || (problem =
                in_range(pool, "expiry_interval", config->expiry_interval, 1, INTERVAL_BOUND_S))
        || (problem = in_range(pool, "client_timeout", config->client_timeout, 1, INTERVAL_BOUND_S))
        || (problem = in_range(pool, "usage_max_age", config->usage_max_age, 0, INTERVAL_BOUND_S))
        || (problem = in_range(pool, "max_scratch_gib", config->max_scratch_gib,
                               QWD_PROTO_MIN_SCRATCH_GIB, SCRATCH_GIB_BOUND))) {
        return problem;
    }
    return NULL;
}

const char *helper_config_qemu(const helper_config *config, const char *arch)
{
    const char *binary = apr_table_get(config->qemu_binaries, arch);
    return binary && *binary ? binary : NULL;
}
