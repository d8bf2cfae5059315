/* SPDX-License-Identifier: Apache-2.0 */
/* The seam between sessions and the place their VMs run. A backend carries out launch plans
 * (helper_plan.h) and reports each VM's life through the hook its session gives it. The local
 * backend (helper_backend_local.c) runs QEMU on this host; another place (a cluster node: one
 * batch job per session running a node-side launcher with the same argv) is another file that
 * fills this struct, with no change to the sessions, the ops or the loop. */
#ifndef QWD_HELPER_BACKEND_H
#define QWD_HELPER_BACKEND_H

#include <apr_time.h>
#include <sys/types.h>

#include "helper.h"
#include "helper_plan.h"

typedef struct helper_vm helper_vm; /* one VM, as its backend knows it */

typedef enum {
    VM_LAUNCHED,      /* it runs (pid known): the start can be answered */
    VM_FAILED,        /* it could not be launched (problem): nothing of it runs */
    VM_RUNNING,       /* its display answers: ready for a viewer */
    VM_ENDED,         /* it is gone (a VM stopped before its launch ends without VM_LAUNCHED) */
    VM_EXTENDED,      /* the place granted a longer lifetime (extend): place() says its new end */
    VM_EXTEND_FAILED, /* the place refused it (problem): the VM's end is as it was */
} helper_vm_event;

typedef struct helper_vm_report {
    helper_vm_event event;
    const char *problem; /* VM_FAILED, VM_EXTEND_FAILED: why; problem and how are in the pool
                            given to launch */
    int crashed;         /* VM_ENDED: it did not end cleanly (an end that cannot be known, e.g.
                            of an adopted VM, counts as clean) */
    const char *how;     /* VM_ENDED: how it ended ("QEMU exit status 1"), or NULL */
    const char *reason;  /* VM_ENDED: the end reason (QWD_END_*) when the place knows it better
                            than the exit does (a batch job's time limit: expired; a lost node:
                            node_lost), or NULL */
} helper_vm_report;

/* Where a VM is and what its place decided, for the session object (all may be unset). */
typedef struct helper_vm_place {
    const char *queued; /* it waits for room (a pending batch job): why, in the scheduler's
                            words ("Resources", "Priority"); NULL when it does not wait */
    const char *node;   /* the cluster node it runs on */
    const char *job;    /* its batch job */
    const char *boot;   /* QWD_BOOT_*, when the place decides it (the node's warm images) */
    apr_time_t expires; /* when the place ends it (a running job's end time); 0: unknown */
    int limit_s;        /* the lifetime it grants from its start (a job's time limit, whole
                           minutes); 0: unknown */
} helper_vm_place;

/* A backend reports through this, only from the loop's events and ticks (never from within one
 * of its own entry points). The session may release vm from within. */
typedef void helper_vm_hook(void *session, helper_vm *vm, const helper_vm_report *report);

typedef struct helper_backend {
    const char *name; /* QWD_BACKEND_* */
    /* Its VMs run elsewhere: they count against no limit of this host (vCPUs, memory, load),
     * this host's warm images are not theirs, and their lifetime is the place's own clock (a
     * batch job's time limit) rather than the session's expiry check. */
    int remote;
    /* Starts carrying out plan (which lives as long as pool). Returns the VM, or NULL with
     * *problem (in pool) when it cannot even begin; everything after is reported through hook. */
    helper_vm *(*launch)(helper *h, apr_pool_t *pool, const helper_plan *plan, helper_vm_hook *hook,
                         void *session, const char **problem);
    /* After a helper restart: takes over the VM of plan (from the session record) that ran as
     * pid. NULL when it is gone or not ours. Called at startup, before the loop runs: it may
     * ask the VM a few short questions and wait for the answers. */
    helper_vm *(*adopt)(helper *h, apr_pool_t *pool, const helper_plan *plan, pid_t pid,
                        helper_vm_hook *hook, void *session);
    /* Optional (NULL: the session's own expiry check ends the VM, nothing to ask): asks the
     * place for seconds more of the VM's lifetime (a batch job's time limit). Returns 0 once
     * asked: VM_EXTENDED or VM_EXTEND_FAILED follows (VM_ENDED instead when the VM ends
     * meanwhile); -1 with *problem (in pool) when it cannot even ask. */
    int (*extend)(helper_vm *vm, apr_pool_t *pool, int seconds, const char **problem);
    /* Begins ending the VM; VM_ENDED follows once it is gone. */
    void (*stop)(helper_vm *vm);
    /* Time-based work (probes, deadlines). Returns whether the loop should tick fast. */
    int (*tick)(helper_vm *vm, apr_time_t now);
    /* What a session shows: the VM's pid (0 before it runs), and its guest clock ("syncing",
     * "synced", "not synced", or NULL when not applicable). */
    pid_t (*pid)(const helper_vm *vm);
    const char *(*clock)(const helper_vm *vm);
    /* Optional (NULL: the backend never runs a plan's agent_script, so its plans must not have
     * one): where the guest script of a restored VM stands, QWD_SETUP_WAITING, _RUNNING, _DONE
     * or _FAILED (docs/protocol.md), or NULL when it has none. */
    const char *(*setup)(const helper_vm *vm);
    /* Forgets the VM (ended or failed, or abandoned to a next helper); frees it. */
    void (*release)(helper_vm *vm);
    /* Where it is (NULL: on this host, nothing to say). */
    void (*place)(const helper_vm *vm, helper_vm_place *place);
} helper_backend;

#endif
