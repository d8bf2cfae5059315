/* SPDX-License-Identifier: Apache-2.0 */
/* The launch plan of a session's VM: restored from its profile's warm image or booted cold, its
 * disk and its command lines, decided in one place before anything runs. A backend
 * (helper_backend.h) then carries it out, wherever the VM runs. */
#ifndef QWD_HELPER_PLAN_H
#define QWD_HELPER_PLAN_H

#include "helper.h"
#include "qwd_argv.h"

/* What a session adds to its profile's VM (docs/data-sessions.md); none of it is ever part of
 * a warm image. */
typedef struct helper_plan_extras {
    const char *guest_script; /* host folders' mounts and start-up script (lib/qwd_guest_script),
                                 or NULL: a cold boot gets it in a NoCloud seed, a restore
                                 through the guest agent */
    const char *const *gpu;   /* PCI addresses passed through, or NULL: never restored */
    int gpu_count;
    const char *scratch_size; /* an ISO session's scratch disk ("20G"); NULL: iso_scratch_size */
} helper_plan_extras;

typedef struct helper_plan {
    qwd_vm_profile profile;
    helper_plan_extras extras;
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
    /* cold with a guest script: the NoCloud seed to write at seed_path before QEMU runs */
    const char *seed_path;
    const unsigned char *seed;
    apr_size_t seed_size;
    /* restored with a guest script: run it through the guest agent once the clock is set */
    const char *agent_script;
    /* the start is answered once the display answers, not at exec: a passed-through device
       QEMU cannot open makes it exit first, and the start fails with its words */
    int confirm_launch;
    int lifetime_s; /* a batch job's time limit (the session sets it) */
} helper_plan;

/* Decides how the VM of session id (directory dir) of profile, with extras (NULL: none),
 * starts, asking helper_warm once whether the profile has a usable image: never for a GPU, nor
 * for a guest script when the machine has no guest agent. Returns 0, or -1 with *problem (in
 * pool). */
int helper_plan_make(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile,
                     const helper_plan_extras *extras, const char *id, const char *dir,
                     helper_plan *plan, const char **problem);

/* The plan of a VM that runs elsewhere (a cluster node, which keeps its own warm images and
 * builds its own command line): its place and profile, booted as the node decides. */
void helper_plan_remote(apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                        const char *dir, helper_plan *plan);

/* restored did not load its state: its image is dropped (a rebuild starts) and *cold is the plan
 * of the same session booting cold. Returns 0, or -1 with *problem. */
int helper_plan_cold_again(helper *h, apr_pool_t *pool, const helper_plan *restored,
                           helper_plan *cold, const char **problem);

/* The plan of a VM found running at startup, as its record describes it: boot, and the state
 * of its profile's warm image (a restored VM may still wait for it). */
void helper_plan_adopted(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                         const char *dir, const char *boot, helper_plan *plan);

#endif
