/* SPDX-License-Identifier: Apache-2.0 */
/* The launch plan of a session's VM: restored from its profile's warm image or booted cold, its
 * disk and its command lines, decided in one place before anything runs. A backend
 * (helper_backend.h) then carries it out, wherever the VM runs. */
#ifndef QWD_HELPER_PLAN_H
#define QWD_HELPER_PLAN_H

#include "helper.h"
#include "qwd_argv.h"

typedef struct helper_plan {
    qwd_vm_profile profile;
    const char *session_id;
    const char *dir;        /* the session directory: sockets, logs, disk */
    const char *log_path;   /* qemu-img's and QEMU's output */
    const char *boot;       /* QWD_BOOT_RESTORED or QWD_BOOT_COLD */
    qwd_restore restore;    /* how the saved state gets in (restored) */
    const char *state_path; /* restored: the warm image's saved state */
    const char *disk_path;  /* the VM's own qcow2 */
    const char **disk_argv; /* qemu-img, creating disk_path */
    const char **argv;      /* QEMU */
    int no_hugepages;       /* a restored clone without transparent huge pages */
    int build_warm;         /* cold: after the launch, build the profile's warm image */
    const char *accel;      /* what QEMU runs under: the host's, or tcg for another arch */
} helper_plan;

/* Decides how the VM of session id (directory dir) of profile starts, asking helper_warm once
 * whether the profile has a usable image. Returns 0, or -1 with *problem (in pool). */
int helper_plan_make(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                     const char *dir, helper_plan *plan, const char **problem);

/* restored did not load its state: its image is dropped (a rebuild starts) and *cold is the plan
 * of the same session booting cold. Returns 0, or -1 with *problem. */
int helper_plan_cold_again(helper *h, apr_pool_t *pool, const helper_plan *restored,
                           helper_plan *cold, const char **problem);

/* The plan of a VM found running at startup, as its record describes it: boot, and the state
 * of its profile's warm image (a restored VM may still wait for it). */
void helper_plan_adopted(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                         const char *dir, const char *boot, helper_plan *plan);

#endif
