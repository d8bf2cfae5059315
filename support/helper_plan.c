/* SPDX-License-Identifier: Apache-2.0 */
/* Every decision about how a VM starts is taken here, once: the warm image is consulted one
 * time, and the spec, the disk and the argv all follow from its answer. */
#include "helper_plan.h"
#include "helper_config.h"
#include "helper_log.h"
#include "helper_warm.h"
#include "qwd_protocol.h"
#include "qwd_seed.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static void place(helper_plan *plan, apr_pool_t *pool, const qwd_vm_profile *profile,
                  const helper_plan_extras *extras, const char *id, const char *dir)
{
    *plan = (helper_plan){.profile = *profile,
                          .extras = extras ? *extras : (helper_plan_extras){0},
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
    /* A GPU session is never a template's model: the image would be of the same profile
     * without the device, which is fine, but it would start on a host whose GPU is taken. */
    plan->build_warm = !image && config->warm_auto && !plan->extras.gpu_count;
    spec.vfio_hosts = plan->extras.gpu;
    spec.vfio_count = plan->extras.gpu_count;
    plan->confirm_launch = plan->extras.gpu_count > 0;
    if (plan->extras.guest_script && image) {
        plan->agent_script = plan->extras.guest_script;
    }
    else if (plan->extras.guest_script) {
        const char *seed_problem = qwd_seed_build(pool, plan->session_id, plan->extras.guest_script,
                                                  (unsigned char **)&plan->seed, &plan->seed_size);
        if (seed_problem) {
            *problem = seed_problem;
            return -1;
        }
        plan->seed_path = qwd_session_file(pool, plan->dir, QWD_SESSION_SEED);
        spec.seed_path = plan->seed_path;
    }
    plan->disk_argv = qwd_disk_argv(
        pool, config->qemu_img, &plan->profile, image ? image->base : NULL, plan->disk_path,
        plan->extras.scratch_size ? plan->extras.scratch_size : config->iso_scratch_size);
    *problem = qwd_argv_build(pool, &spec, &plan->argv);
    return *problem ? -1 : 0;
}

int helper_plan_make(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile,
                     const helper_plan_extras *extras, const char *id, const char *dir,
                     helper_plan *plan, const char **problem)
{
    place(plan, pool, profile, extras, id, dir);
    /* A valid warm image of this profile: the session's overlay goes over its frozen base and
     * QEMU restores its state. Anything wrong with it (checked first) means a cold boot. A
     * restored guest gets its script only through the agent: without one it boots (and reads
     * the seed); a GPU session always boots. */
    helper_warm_files image;
    int may_restore =
        !plan->extras.gpu_count && (!plan->extras.guest_script || profile->guest_agent);
    int restored = may_restore && helper_warm_usable(h, pool, profile, &image);
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

void helper_plan_remote(apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                        const char *dir, helper_plan *plan)
{
    static const helper_plan_extras none; /* a node's VM has no seed, folder or device */
    place(plan, pool, profile, &none, id, dir);
    plan->boot = QWD_BOOT_COLD;
}

int helper_plan_cold_again(helper *h, apr_pool_t *pool, const helper_plan *restored,
                           helper_plan *cold, const char **problem)
{
    helper_warm_rebuild(h, &restored->profile);
    place(cold, pool, &restored->profile, &restored->extras, restored->session_id, restored->dir);
    return decide(h, pool, NULL, cold, problem);
}

void helper_plan_adopted(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, const char *id,
                         const char *dir, const char *boot, helper_plan *plan)
{
    place(plan, pool, profile, NULL, id, dir);
    plan->boot = boot;
    if (!strcmp(boot, QWD_BOOT_RESTORED)) {
        plan->state_path = helper_warm_state_path(h, pool, profile);
    }
}
