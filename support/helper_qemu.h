/* SPDX-License-Identifier: Apache-2.0 */
/* A QEMU process on this host, from launch to exit: its disk made by qemu-img (a child the loop
 * watches), then QEMU itself; or, after a restart, a running QEMU adopted through a pidfd. Its
 * owner hears of each step through one callback. Sessions and warm templates both run here. */
#ifndef QWD_HELPER_QEMU_H
#define QWD_HELPER_QEMU_H

#include <apr_pools.h>
#include <sys/types.h>

#include "helper_events.h"

typedef struct helper_qemu helper_qemu;

typedef enum {
    QEMU_STARTED, /* QEMU runs (helper_qemu_pid) */
    QEMU_FAILED,  /* qemu-img failed, or QEMU could not be spawned: nothing runs */
    QEMU_EXITED,  /* QEMU is gone */
} helper_qemu_event;

typedef struct helper_qemu_report {
    helper_qemu_event event;
    const char *problem; /* QEMU_FAILED: why (in the pool given to helper_qemu_start) */
    int status_known;    /* QEMU_EXITED: an adopted QEMU's status cannot be known */
    int status;          /* its waitpid status */
} helper_qemu_report;

/* The owner may free the qemu from within. */
typedef void helper_qemu_fn(void *data, const helper_qemu_report *report);

typedef struct helper_qemu_launch {
    const char *dir;              /* created (0700) when missing */
    const char *log_path;         /* qemu-img's and QEMU's output, appended */
    const char *const *disk_argv; /* qemu-img, creating disk_path (removed first) */
    const char *disk_path;
    const char *const *argv; /* QEMU */
    const char *state_path;  /* opened now, open in QEMU as QWD_RESTORE_STATE_FD; or NULL */
    int flags;               /* SPAWN_* of helper_proc.h */
    const char *seed_path;   /* written (0600) with seed_size bytes of seed first; or NULL */
    const unsigned char *seed;
    apr_size_t seed_size;
} helper_qemu_launch;

/* Creates dir, writes the seed, opens the log (and the state), starts qemu-img. Returns NULL with *problem (in
 * pool) when that fails; else each step is reported through fn, never from within this call.
 * The qemu lives in a subpool of pool (launch's strings must live as long as pool); destroying
 * pool frees it as helper_qemu_free does. */
helper_qemu *helper_qemu_start(helper_events *events, apr_pool_t *pool,
                               const helper_qemu_launch *launch, helper_qemu_fn *fn, void *data,
                               const char **problem);

/* Watches a QEMU that is not our child (a previous helper's) through a pidfd; it is running
 * already. NULL when pid cannot be watched. */
helper_qemu *helper_qemu_adopt(helper_events *events, apr_pool_t *pool, pid_t pid,
                               helper_qemu_fn *fn, void *data);

/* QEMU's pid, 0 before it runs. */
pid_t helper_qemu_pid(const helper_qemu *qemu);

/* Sends sig to QEMU, or to qemu-img while the disk is made. */
void helper_qemu_kill(helper_qemu *qemu, int sig);

/* Stops watching and frees (the processes are left alone: an exit is then reaped unheard). */
void helper_qemu_free(helper_qemu *qemu);

#endif
