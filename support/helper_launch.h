/* Starting a session's VM: id and token, session directory, disk overlay (or ISO scratch
 * disk), the QEMU child, the session record and the websockify token file. */
#ifndef QWD_HELPER_LAUNCH_H
#define QWD_HELPER_LAUNCH_H

#include "helper.h"
#include "helper_machines.h"

typedef struct launch_request {
    const helper_machine *machine;
    const char *owner;
    const char *video;
    int cpu;
    int memory_mib;
    int lifetime_s;
    int oneshot;
} launch_request;

/* Starts the VM of request. Returns the session (state starting) or NULL with *problem set
 * (allocated in pool); a failed start leaves nothing behind. Never waits for QEMU. */
helper_session *helper_launch(helper *h, apr_pool_t *pool, const launch_request *request,
                              const char **problem);

#endif
