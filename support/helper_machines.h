/* SPDX-License-Identifier: Apache-2.0 */
/* The machines list: image files of machines_dir whose name is acceptable, that stay inside
 * the directory once symlinks are resolved, with the format their name and bytes agree on
 * (docs/machines.md), their arch, and why one cannot be started. */
#ifndef QWD_HELPER_MACHINES_H
#define QWD_HELPER_MACHINES_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "qwd_argv.h"
#include "qwd_warm.h"

typedef struct helper_machine {
    const char *name;   /* as listed and as clients name it */
    const char *path;   /* resolved absolute path of the master image */
    const char *format; /* as attached (qwd_image_attach_format): qcow2, raw, iso, ...; when
                           refused, what its bytes are */
    apr_uint64_t virtual_size;
    const char *description; /* first line of NAME.txt, or "" */
    int guest_agent;         /* its sidecar NAME.warm says guest_agent (or ready_agent) */
    const char *arch;        /* its sidecar's arch, else x86_64 */
    const char *problem;     /* why it cannot be started (refused image, unknown arch, no QEMU
                                for its arch), or NULL */
    const char *videos;      /* the video cards its sidecar allows (videos =); NULL: all */
    int gpu;                 /* its sidecar says gpu = yes */
} helper_machine;

/* Scans machines_dir; returns an array of helper_machine, sorted by name. host says which
 * arches have a QEMU (a machine of another one has a problem). */
apr_array_header_t *helper_machines_scan(apr_pool_t *pool, const char *machines_dir,
                                         const qwd_vm_host *host);

/* Reads the sidecar NAME.warm of machines_dir into *out, which holds the defaults on entry.
 * Returns 0 when there is one (*problem: its first bad line, or NULL; the good lines still
 * count), -1 when there is none. */
int helper_machine_read_sidecar(apr_pool_t *pool, const char *machines_dir, const char *name,
                                qwd_warm_sidecar *out, const char **problem);

/* The profile of a VM of machine with this size and video (borrows machine's strings). */
qwd_vm_profile helper_machine_profile(const helper_machine *machine, int cpu, int memory_mib,
                                      const char *video);

/* For other lists read like the machines (the admin's scripts): the real path of
 * real_dir/name when it is a regular file inside real_dir (symlinks resolved), else NULL; and
 * the first line of NAME.txt or STEM.txt beside it, or "". */
const char *helper_machines_file_inside(apr_pool_t *pool, const char *real_dir, const char *name);
const char *helper_machines_description(apr_pool_t *pool, const char *real_dir, const char *name);

/* The first video card machine's sessions may have (std when it allows every card). */
const char *helper_machine_first_video(apr_pool_t *pool, const helper_machine *machine);

/* Whether machine's sessions may have video card video. */
int helper_machine_allows_video(apr_pool_t *pool, const helper_machine *machine, const char *video);

/* The listed machine called name, or NULL. */
const helper_machine *helper_machines_find(apr_array_header_t *machines, const char *name);

#endif
