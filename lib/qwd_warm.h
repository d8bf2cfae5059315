/* SPDX-License-Identifier: Apache-2.0 */
/* A machine's warm sidecar (docs/instant-on.md) and the key of a profile's warm image, shared by
 * the helper and its tests; the warm ops' names are in qwd_protocol.h. */
#ifndef QWD_WARM_H
#define QWD_WARM_H

#include <apr_pools.h>
#include <jansson.h>

/* Name of a machine's warm sidecar beside its image: NAME.warm. */
#define QWD_WARM_SIDECAR_SUFFIX ".warm"

/* Readiness and profile of a machine's warm image, from its sidecar. Every readiness
 * condition that is set must hold; with none set, a default delay applies. */
typedef struct qwd_warm_sidecar {
    const char *ready_serial; /* this text is on the serial console; NULL: not a condition */
    int ready_delay_s;        /* this many seconds since exec; < 0: not set */
    int ready_screen_still_s; /* the screen (QMP screendump) unchanged this long; 0: not set */
    int ready_agent;          /* the guest agent answers guest-ping */
    int guest_agent;          /* VMs of the machine get the guest agent channel (implied by
                                  ready_agent): readiness and the clock of restored clones */
    int at_start;             /* warm_at_start: build when the helper starts */
    int cpu;                  /* the profile built at start */
    int memory_mib;
    const char *video;
    const char *arch; /* the machine's guest architecture ("arch = aarch64"); NULL: x86_64.
                         Any word is kept: the machine list says when it is not a known one */
    /* What sessions of the machine may choose (docs/data-sessions.md): */
    const char *videos; /* the video cards its guest handles, space-separated; NULL: all */
    int gpu;            /* a session may ask for a passed-through GPU */
} qwd_warm_sidecar;

/* Parses a sidecar's text (key = value lines, # comments) into *sidecar, which holds the
 * defaults on entry. Returns NULL, or the first problem (unknown key, bad number or video),
 * in pool; the other lines are still applied. */
const char *qwd_warm_sidecar_parse(apr_pool_t *pool, const char *text, qwd_warm_sidecar *sidecar);

/* The key (and directory name) of a profile's warm image: MACHINE-CPUc-MEMm-VIDEO. */
const char *qwd_warm_key(apr_pool_t *pool, const char *machine, int cpu, int memory_mib,
                         const char *video);

/* A file's identity as a warm image's meta records it (the master it was built from, its state
 * and RAM files): {"size", "mtime_ns", "inode"}, which any rewrite changes and which costs one
 * stat(). NULL when path cannot be stat'ed. */
json_t *qwd_warm_file_identity(const char *path);

#endif
