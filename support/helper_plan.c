/* SPDX-License-Identifier: Apache-2.0 */
/* Every decision about how a VM starts is taken here, once: the warm image is consulted one
 * time, and the spec, the disk and the argv all follow from its answer. */
#include "helper_plan.h"
#include "helper_config.h"
#include "helper_log.h"
#include "helper_warm.h"
#include "qwd_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static void place(helper_plan *plan, apr_pool_t *pool, const qwd_vm_profile *profile,
                  const char *id, const char *dir)
{
    *plan = (helper_plan){.profile = *profile,
                          .session_id = id,
                          .dir = dir,
                          .log_path = qwd_session_file(pool, dir, QWD_SESSION_QEMU_LOG),
                          .disk_path = qwd_session_file(pool, dir, QWD_SESSION_DISK)};
}

/* Fills the rest of plan: restored from image when it is set, else cold. */
static int decide(helper *h, apr_pool_t *pool, const helper_warm_files *image, helper_plan *plan,
                  const char **problem)
{
    const helper_config *config = h->config;
    qwd_vm_spec spec =
        qwd_vm_spec_make(&h->host, &plan->profile, plan->session_id, plan->dir, plan->disk_path);
    plan->boot = image ? QWD_BOOT_RESTORED : QWD_BOOT_COLD;
    if (image) {
        /* shared recipe: guest RAM is the image's file mapped copy-on-write, QEMU waits
         * (-incoming defer) for the state over QMP; stream: the state is read from an fd. */
        plan->state_path = image->state;
        spec.ram_path = image->ram;
        spec.ram_shared = 0;
        spec.restore = image->ram ? QWD_RESTORE_DEFER : QWD_RESTORE_FD;
        /* An idle clone's own memory is mostly TCG code and video RAM touched a little at a
         * time: without huge pages each costs what it uses (docs/instant-on.md). */
        plan->no_hugepages = !config->warm_clone_hugepages;
    }
    plan->restore = spec.restore;
    plan->accel = spec.accel;
    plan->build_warm = !image && config->warm_auto;
    plan->disk_argv =
        qwd_disk_argv(pool, config->qemu_img, &plan->profile, image ? image->base : NULL,
                      plan->disk_path, config->iso_scratch_size);
    *problem = qwd_argv_build(pool, &spec, &plan->argv);
    return *problem ? -1 : 0;
}

int helper_plan_make(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                     const char *dir, helper_plan *plan, const char **problem)
{
    place(plan, pool, profile, id, dir);
    /* A valid warm image of this profile: the session's overlay goes over its frozen base and
     * QEMU restores its state. Anything wrong with it (checked first) means a cold boot. */
    helper_warm_files image;
    int restored = helper_warm_usable(h, pool, profile, &image);
    int fd = restored ? open(image.state, O_RDONLY | O_CLOEXEC) : -1;
    if (restored && fd < 0) {
        helper_log_warn(QWDLOGNO(05012) "session %s: cannot open %s (%s), cold boot", id,
                        image.state, strerror(errno));
        restored = 0;
    }
    if (fd >= 0) {
        close(fd);
    }
    return decide(h, pool, restored ? &image : NULL, plan, problem);
}

int helper_plan_cold_again(helper *h, apr_pool_t *pool, const helper_plan *restored,
                           helper_plan *cold, const char **problem)
{
    helper_warm_rebuild(h, &restored->profile);
    place(cold, pool, &restored->profile, restored->session_id, restored->dir);
    return decide(h, pool, NULL, cold, problem);
}

void helper_plan_adopted(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                         const char *dir, const char *boot, helper_plan *plan)
{
    place(plan, pool, profile, id, dir);
    plan->boot = boot;
    if (!strcmp(boot, QWD_BOOT_RESTORED)) {
        plan->state_path = helper_warm_state_path(h, pool, profile);
    }
}
