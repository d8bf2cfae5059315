/* SPDX-License-Identifier: Apache-2.0 */
/* The one websockify the helper runs and supervises (restarted with backoff if it dies), and
 * the token files that tell it which VNC socket each token reaches. */
#ifndef QWD_HELPER_WEBSOCKIFY_H
#define QWD_HELPER_WEBSOCKIFY_H

#include "helper.h"

/* Writes TOKENDIR/TOKEN = "TOKEN: unix_socket:VNC_SOCKET" atomically. Returns 0 or errno. */
int helper_token_write(helper *h, const char *token, const char *vnc_socket);
void helper_token_remove(helper *h, const char *token);

/* Removes token files (and temp files) that belong to no live session. */
void helper_tokens_prune(helper *h);

/* Stops a websockify left by a helper that was killed, then starts ours. */
void helper_websockify_start(helper *h);

/* Our websockify exited: schedule a restart (1 s, doubling to 30 s while it keeps dying). */
void helper_websockify_exited(helper *h, int status);

/* Restarts websockify when its backoff is over. */
void helper_websockify_tick(helper *h);

/* websockify wrote: its lines go into the helper's log, each token hidden. */
void helper_websockify_output(helper *h);

/* Stops websockify and waits for it (helper shutdown). */
void helper_websockify_stop(helper *h);

#endif
