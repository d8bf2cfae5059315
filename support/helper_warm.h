/* SPDX-License-Identifier: Apache-2.0 */
/* Warm images (issue 9, docs/instant-on.md): a machine profile booted once on its own overlay,
 * saved when ready, so that sessions start by restoring that state instead of booting. */
#ifndef QWD_HELPER_WARM_H
#define QWD_HELPER_WARM_H

#include "helper.h"
#include "helper_machines.h"

/* Files of a warm image, in STATE/warm/KEY/. */
#define WARM_BASE "base.qcow2"   /* the template's disk: frozen base of every clone's overlay */
#define WARM_STATE "state.bin"   /* the migration stream */
#define WARM_SCREEN "screen.ppm" /* ready_screen_still: the template's last screendump */
#define WARM_META "meta.json"    /* written last: an image without it is incomplete */
#define WARM_RAM "ram.bin"       /* warm_recipe shared: the frozen guest RAM clones map */

/* Whether the configured warm_recipe is "shared". */
int helper_warm_recipe_shared(const helper *h);

/* At startup: creates STATE/warm, loads the complete images, removes incomplete ones, and
 * starts building the images of machines whose sidecar says warm_at_start. */
void helper_warm_init(helper *h);

/* Starts building the warm image of a profile (no-op when it is being built; a ready image
 * that no longer matches is dropped and rebuilt). Returns the image or NULL with *problem. */
helper_warm *helper_warm_build(helper *h, const helper_machine *machine, int cpu, int memory_mib,
                               const char *video, const char **problem);

/* The ready, still valid warm image of a profile, or NULL. An image that exists but does not
 * match (QEMU, a session's argv, master, state file) is refused, logged, dropped and rebuilt
 * in the background. */
helper_warm *helper_warm_usable(helper *h, const helper_machine *machine, int cpu, int memory_mib,
                                const char *video);

/* Paths of a warm image's frozen base and state, in pool. */
const char *helper_warm_file(apr_pool_t *pool, const helper_warm *w, const char *name);

/* Drops the images of machine (all profiles when cpu is 0); NULL machine: every image.
 * A template being built is killed. Returns how many were dropped. */
int helper_warm_drop(helper *h, const char *machine, int cpu, int memory_mib, const char *video);

/* {"warm": [...]} as in docs/protocol.md (a new reference). */
json_t *helper_warm_list_json(helper *h);

/* warm_auto: after a cold start of this profile, builds its image in the background unless
 * it has one (ready, under way or failed), another template is being built, or the template
 * would not fit under max_vcpus / max_memory_mib / max_load beside the live sessions. */
void helper_warm_auto(helper *h, const helper_machine *machine, int cpu, int memory_mib,
                      const char *video);

/* Whether machine has at least one ready warm image. */
int helper_warm_machine_is_warm(helper *h, const char *machine);

/* Whether a template is being built (the loop then ticks fast). */
int helper_warm_busy(helper *h);

/* Readiness checks, save progress, build deadlines. */
void helper_warm_tick(helper *h);

/* pid exited: returns 1 when it was a template (handled), else 0. */
int helper_warm_child_exited(helper *h, pid_t pid, int status);

/* At shutdown: kills templates still being built and removes their directories. */
void helper_warm_shutdown(helper *h);

#endif
