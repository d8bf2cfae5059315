/* SPDX-License-Identifier: Apache-2.0 */
/* qwd-helper's configuration: defaults, the key = value file, --set overrides, and the checks
 * run once at startup so a bad value stops the helper with the key's name. */
#ifndef QWD_HELPER_CONFIG_H
#define QWD_HELPER_CONFIG_H

#include <apr_pools.h>
#include <apr_tables.h>

#define HELPER_DEFAULT_CONFIG "/etc/qwd/qwd-helper.conf"

/* Every key of docs/helper.md, in its order; helper_config.c's table gives each its default. */
typedef struct helper_config {
    const char *socket;
    int socket_mode;
    const char *socket_group;
    const char *machines_dir;
    const char *state_dir;
    const char *user;
    apr_table_t *qemu_binaries; /* arch ("x86_64") → QEMU binary, from the qemu_<arch> keys */
    const char *qemu_img;
    const char *firmware_aarch64; /* UEFI image of aarch64 guests */
    const char *accel;            /* as configured: auto, kvm or tcg */
    const char *cpu_model;        /* -cpu; NULL: host under kvm, max under tcg */
    const char *websockify;
    const char *websockify_listen;
    const char *websockify_web;
    const char *token_dir;
    const char *nic_model;
    int max_sessions;
    int max_vcpus;
    int max_memory_mib;
    double max_load;
    int max_cpu;
    int max_session_memory_mib;
    int default_cpu;
    int default_memory_mib;
    int default_lifetime;
    int max_lifetime;
    const char *iso_scratch_size;
    int max_scratch_gib; /* bound of start's scratch_gib */
    const char *allowed_group;
    const char *log_file;
    int expiry_interval;
    int client_timeout;
    int ended_keep;
    int usage_max_age; /* seconds a VM's reading answers the usage op before it is read again */
    int warm_auto;     /* build a warm image after a profile's first cold start */
    const char *warm_recipe;  /* "shared" (RAM in a file clones map copy-on-write) or "stream" */
    int warm_clone_hugepages; /* restored clones may use transparent huge pages */
    int warm_budget_mib;      /* disk for ready warm images; 0: no limit */
    /* Sessions for data analysis (docs/data-sessions.md). */
    const char *share_root;     /* every share's folder lies below it */
    apr_array_header_t *share;  /* the `share` lines as written (a key that repeats) */
    apr_array_header_t *shares; /* derived by helper_config_check: helper_share each */
    const char *scripts_dir;    /* the admin's named start-up scripts; NULL: none */
    const char *gpu_devices;    /* PCI addresses that may be passed through, "vfio", or NULL */
    const char *sysfs_root;     /* where PCI devices and IOMMU groups are read */
    /* Sessions on a Slurm cluster (docs/slurm.md): the helper's keys, then qwd-node's. */
    const char *backend;        /* a start's backend when it names none: local or slurm */
    const char *slurm_machines; /* machines (fnmatch patterns, space-separated) run on Slurm */
    const char *slurm_bin_dir;  /* sbatch, squeue, scancel, sinfo, scontrol */
    const char *slurm_partition;
    const char *slurm_account;
    const char *slurm_qos;
    int slurm_signal_s;             /* the warning signal's lead before the time limit */
    int slurm_memory_overhead_mib;  /* --mem = memory_mib + this (QEMU's own memory) */
    int slurm_poll_interval;        /* seconds between squeue polls */
    const char *slurm_node_command; /* qwd-node, on the nodes */
    const char *slurm_node_config;  /* qwd-node's --config, on the nodes; NULL: its default */
    const char *slurm_output;       /* the job's output file on the node (sbatch --output) */
    int slurm_warm; /* after a cold start on a node, build the profile's warm image there */
    const char *node_listen; /* qwd-node: the address its channel listens on */
    const char *node_ports;  /* qwd-node: the port range of its channel, MIN-MAX */
    const char *catalogue;   /* the machine catalogue qwdctl machines reads */
    int min_free_mib;        /* free space the state dir keeps: starts and builds refused */
} helper_config;

/* A configuration holding every default. */
helper_config *helper_config_defaults(apr_pool_t *pool);

/* Applies one "key = value" (or "key=value") setting; returns NULL or an error message. */
const char *helper_config_set(apr_pool_t *pool, helper_config *config, const char *setting);

/* Applies text (length bytes, no NUL): "key = value" lines, '#' comments, blank lines. Returns
 * NULL or an error message naming name and the line. */
const char *helper_config_parse(apr_pool_t *pool, helper_config *config, const char *text,
                                apr_size_t length, const char *name);

/* Reads path (at most 1 MiB) as helper_config_parse does, '#' comments, blank lines. Returns NULL or an error
 * message naming the file and line. */
const char *helper_config_read(apr_pool_t *pool, helper_config *config, const char *path);

/* Checks values and fills derived defaults (token_dir). Returns NULL or an error message. */
const char *helper_config_check(apr_pool_t *pool, helper_config *config);

/* The port range of node_ports (checked by helper_config_check). */
void helper_config_node_ports(const helper_config *config, int *min, int *max);

/* Whether machine runs on Slurm when a start names no backend (backend, slurm_machines). */
int helper_config_machine_on_slurm(const helper_config *config, const char *machine);

/* The QEMU binary for arch, or NULL when no qemu_<arch> key names one. */
const char *helper_config_qemu(const helper_config *config, const char *arch);

#endif
