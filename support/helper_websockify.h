/* SPDX-License-Identifier: Apache-2.0 */
/* The one websockify the helper runs and supervises (restarted with backoff if it dies), and
 * the token files that tell it which VNC socket each token reaches. */
#ifndef QWD_HELPER_WEBSOCKIFY_H
#define QWD_HELPER_WEBSOCKIFY_H

#include "helper.h"

/* Writes TOKENDIR/TOKEN = "TOKEN: unix_socket:VNC_SOCKET" atomically. Returns 0 or errno. */
int helper_token_write(helper *h, const char *token, const char *vnc_socket);
void helper_token_remove(helper *h, const char *token);

/* Removes token files (and temp files) for which is_live says no. */
void helper_tokens_prune(helper *h, int (*is_live)(void *data, const char *token), void *data);

/* Stops a websockify left by a helper that was killed, then starts ours. When it exits, it is
 * restarted (after 1 s, doubling to 30 s while it keeps dying). */
void helper_websockify_start(helper *h);

/* Restarts websockify when its backoff is over. */
void helper_websockify_tick(helper *h);

/* Stops websockify and waits for it (helper shutdown). */
void helper_websockify_stop(helper *h);

#endif
