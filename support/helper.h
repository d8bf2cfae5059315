/* SPDX-License-Identifier: Apache-2.0 */
/* What every part of qwd-helper shares: its configuration, what all its VMs have in common, the
 * event registry, and a handle on each part's own state (each part's structs live in its file).
 *
 * Inside the helper (docs/helper.md), calls go one way, down this list; a part reports upward
 * only through a hook the part above gives it:
 *   helper_main → helper_loop → helper_clients → helper_ops → helper_session → helper_plan →
 *   helper_warm, and helper_session → helper_backend.h, whose local implementation
 *   (helper_backend_local.c) runs QEMU through helper_qemu; below them all: helper_qmp,
 *   helper_agent, helper_reply, helper_relay, helper_websockify, helper_machines, helper_proc,
 *   helper_events, helper_fs, helper_config, helper_log, helper_metrics, helper_journal,
 *   helper_usage.
 *   test/test_002_style.py fails on an include cycle. */
#ifndef QWD_HELPER_H
#define QWD_HELPER_H

#include <apr_pools.h>

#include "qwd_argv.h"

typedef struct helper_config helper_config;           /* helper_config.h */
typedef struct helper_events helper_events;           /* helper_events.h */
typedef struct helper_clients helper_clients;         /* helper_clients.c */
typedef struct helper_sessions helper_sessions;       /* helper_session.c */
typedef struct helper_warm_images helper_warm_images; /* helper_warm.c */
typedef struct helper_websockify helper_websockify;   /* helper_websockify.c */
typedef struct helper_metrics helper_metrics;         /* helper_metrics.c */
typedef struct helper_journal helper_journal;         /* helper_journal.c */
typedef struct helper_usage_cache helper_usage_cache; /* helper_usage.c */
typedef struct helper_slurm helper_slurm;             /* helper_backend_slurm.c */

typedef struct helper {
    apr_pool_t *pool;
    helper_config *config;
    qwd_vm_host host;          /* QEMU binary, accelerator, CPU model, NIC: every VM's */
    const char *sessions_dir;  /* STATE/sessions */
    const char *token_tmp_dir; /* TOKENDIR.tmp */
    const char *empty_dir;     /* STATE/empty: what a share's device points to when the VM
                                  must not see a folder (templates, unchosen optional shares) */
    helper_events *events;
    helper_clients *clients;
    helper_sessions *sessions;
    helper_warm_images *warm;
    helper_websockify *websockify;
    helper_metrics *metrics;   /* counters of what the helper did, for the metrics op */
    helper_journal *journal;   /* what happened to sessions, for the events op */
    helper_usage_cache *usage; /* the last reading of each VM, for the usage op */
    helper_slurm *slurm;       /* NULL without the Slurm backend */
    int stopping;              /* SIGTERM/SIGINT: the loop ends after this turn */
} helper;

#define HELPER_VERSION_STRING "qwd-helper 0.1.0"

#endif
