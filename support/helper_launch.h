/* SPDX-License-Identifier: Apache-2.0 */
/* Starting a session's VM: id and token, session directory, disk overlay (or ISO scratch
 * disk), the QEMU child, the session record and the websockify token file. */
#ifndef QWD_HELPER_LAUNCH_H
#define QWD_HELPER_LAUNCH_H

#include "helper.h"
#include "helper_machines.h"
#include "qwd_argv.h"

typedef struct launch_request {
    const helper_machine *machine;
    const char *owner;
    const char *video;
    int cpu;
    int memory_mib;
    int lifetime_s;
    int oneshot;
    const char *ref; /* the client's name for it ("" or NULL: none) */
} launch_request;

/* The VM spec of one VM of machine (session, warm template, or the placeholders of a profile
 * hash): every VM of a profile has the same argv apart from id, directory and disk. */
qwd_vm_spec helper_launch_spec(helper *h, const helper_machine *machine, const char *id,
                               const char *dir, int cpu, int memory_mib, const char *video,
                               const char *disk_path);

/* Creates disk_path with qemu-img (~12 ms, synchronous): a qcow2 overlay over base (a qcow2,
 * e.g. a warm image's frozen base) when base is set, else over the machine's master, or the
 * blank scratch disk of an ISO machine. Returns 0, or -1 with *problem. */
int helper_disk_create(helper *h, apr_pool_t *pool, const helper_machine *machine, const char *base,
                       const char *disk_path, int log_fd, const char **problem);

/* Starts the VM of request. Returns the session (state starting) or NULL with *problem set
 * (allocated in pool); a failed start leaves nothing behind. Never waits for QEMU. */
helper_session *helper_launch(helper *h, apr_pool_t *pool, const launch_request *request,
                              const char **problem);

/* The restored QEMU of s died while loading its state (a warm image that passed the identity
 * checks but does not load): drops that image (a rebuild starts) and boots s cold in place,
 * same id and token. Returns 0 when the cold QEMU runs. */
int helper_launch_cold_again(helper_session *s);

#endif
