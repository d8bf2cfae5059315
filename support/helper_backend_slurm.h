/* SPDX-License-Identifier: Apache-2.0 */
/* The Slurm backend: a session's VM is one batch job running qwd-node on a cluster node, its
 * display reached through the node's channel (node_channel.h), relayed to the session's
 * vnc.sock on this host so websockify and the gate work as for a local VM. docs/slurm.md. */
#ifndef QWD_HELPER_BACKEND_SLURM_H
#define QWD_HELPER_BACKEND_SLURM_H

#include "helper_backend.h"

/* The batch jobs' name: this prefix and the session id. */
#define SLURM_JOB_PREFIX "qwd-"
/* The jobs that build a profile's warm image on a node: this prefix and a fresh id. */
#define SLURM_WARM_PREFIX "qwd-warm-"
/* The warning signal qwd-node gets slurm_signal_s before the time limit. */
#define SLURM_WARNING_SIGNAL "USR1"

/* Sets up the backend's shared state (its key, the poller); before adoption. */
void helper_slurm_init(helper *h);

extern const helper_backend helper_backend_slurm;

#endif
