/* SPDX-License-Identifier: Apache-2.0 */
/* The websocket gate (QwdWebsocketGate On): an access_checker that runs before mod_proxy
 * forwards the upgrade to websockify, so only a valid ticket of a live session gets through. */
#ifndef QWD_WS_GATE_H
#define QWD_WS_GATE_H

#include <httpd.h>

/* Registers the hook (from qwd_register_hooks). */
void qwd_ws_gate_register_hooks(apr_pool_t *pool);

#endif
