/* SPDX-License-Identifier: Apache-2.0 */
/* Warm images (issue 9, docs/instant-on.md): a machine profile booted once on its own overlay,
 * saved when ready, so that sessions start by restoring that state instead of booting. */
#ifndef QWD_HELPER_WARM_H
#define QWD_HELPER_WARM_H

#include <jansson.h>

#include "helper.h"
#include "qwd_argv.h"

/* Files of a warm image, in STATE/warm/KEY/. */
#define WARM_BASE "base.qcow2"   /* the template's disk: frozen base of every clone's overlay */
#define WARM_STATE "state.bin"   /* the migration stream */
#define WARM_SCREEN "screen.ppm" /* ready_screen_still: the template's last screendump */
#define WARM_META "meta.json"    /* written last: an image without it is incomplete */
#define WARM_RAM "ram.bin"       /* warm_recipe shared: the frozen guest RAM clones map */

/* What a clone needs of a ready image (paths in the caller's pool). */
typedef struct helper_warm_files {
    const char *base;  /* the frozen base of the clone's overlay */
    const char *state; /* the saved state */
    const char *ram;   /* shared recipe: the RAM file mapped copy-on-write; stream: NULL */
} helper_warm_files;

/* At startup: creates STATE/warm, loads the complete images, removes incomplete ones, and
 * starts building the images of machines whose sidecar says warm_at_start. */
void helper_warm_init(helper *h);

/* Whether profile has a ready, still valid image: then fills *files and counts it as used. An
 * image that exists but does not match (QEMU, a clone's argv, master, state file) is refused,
 * logged, dropped and rebuilt in the background. */
int helper_warm_usable(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile,
                       helper_warm_files *files);

/* The warm op: the image of profile (rebuild: built anew even when one is usable), ready or
 * being built, as an item of warm_list (a new reference); NULL with *problem (in pool). */
json_t *helper_warm_request(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile, int rebuild,
                            const char **problem);

/* A clone of profile could not load its image: drops it and starts building it anew. */
void helper_warm_rebuild(helper *h, const qwd_vm_profile *profile);

/* Where the state of profile's image is (whether or not it exists), in pool. */
const char *helper_warm_state_path(helper *h, apr_pool_t *pool, const qwd_vm_profile *profile);

/* Drops the images of machine (all its profiles when cpu is 0); NULL machine: every image.
 * A template being built is killed. Returns how many were dropped. */
int helper_warm_drop(helper *h, const char *machine, int cpu, int memory_mib, const char *video);

/* {"warm": [...]} as in docs/protocol.md (a new reference). */
json_t *helper_warm_list_json(helper *h);

/* warm_auto: after a cold start of profile, builds its image in the background unless it has
 * one (ready, under way or failed), another template is being built, or the template would not
 * fit under max_vcpus / max_memory_mib / max_load beside the live sessions, which use vcpus and
 * memory_mib. */
void helper_warm_auto(helper *h, const qwd_vm_profile *profile, int vcpus, int memory_mib);

/* Whether machine has at least one ready warm image. */
int helper_warm_machine_is_warm(helper *h, const char *machine);

/* After the machines directory changed (qwdctl machines fetch): drops the ready images of
 * machines that are gone, refused or replaced, and builds the images of warm_at_start machines
 * that have none. */
void helper_warm_rescan(helper *h);

/* Readiness checks, save progress, build deadlines. Returns whether a template is being built
 * (the loop then ticks fast). */
int helper_warm_tick(helper *h);

/* At shutdown: kills templates still being built and removes their directories. */
void helper_warm_shutdown(helper *h);

#endif
