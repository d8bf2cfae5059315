/* SPDX-License-Identifier: Apache-2.0 */
/* The relay between a session's viewers and its VM's display: websockify reaches it on one Unix
 * socket per way in (the session's own link, each share), and it joins each viewer to a
 * connection of its own to QEMU's VNC socket. It reads what viewers send message by message
 * (lib/qwd_rfb.c): view-only viewers' input is dropped and their acts on the machine refused,
 * unknown messages close the viewer who sent them, and no viewer may ask for the display alone.
 * It knows who is watching and tells the session through the hook it is given. */
#ifndef QWD_HELPER_RELAY_H
#define QWD_HELPER_RELAY_H

#include <apr_time.h>
#include <jansson.h>

#include "helper_events.h"

typedef struct helper_relay helper_relay;

typedef enum {
    RELAY_VIEWER_JOINED, /* a viewer connected, and the relay reached the display for it */
    RELAY_VIEWER_LEFT,   /* it is gone (its connection is closed) */
} helper_relay_event;

typedef struct helper_relay_report {
    helper_relay_event event;
    unsigned viewer;   /* its number in the session, from 1 */
    const char *kind;  /* QWD_VIEWER_* */
    const char *share; /* the share it came through, or NULL: the session's own link */
    apr_time_t since;  /* when it joined (wall clock: shown) */
    double seconds;    /* LEFT: how long it watched (the helper's monotonic clock) */
    const char *why;   /* LEFT: why it left ("the viewer closed", "refused xvp: ...") */
    unsigned dropped;  /* LEFT: input messages of a view-only viewer dropped */
    unsigned watching; /* viewers after the event */
} helper_relay_report;

/* Called from the loop's events only, after the change; the hook may stop the session but must
 * not call into the relay. */
typedef void helper_relay_hook(void *data, const helper_relay_report *report);

/* A relay to the VNC socket display_socket; session_id names it in the log. NULL when out of
 * memory. */
helper_relay *helper_relay_create(helper_events *events, const char *session_id,
                                  const char *display_socket, helper_relay_hook *hook, void *data);

/* Opens a way in: viewers that connect to path are of kind (QWD_VIEWER_*; view-only for
 * QWD_VIEWER_VIEW) and come through share (NULL: the session's own link). once: the way in
 * closes after its first viewer (a one-shot session). Returns 0 or errno. */
int helper_relay_listen(helper_relay *relay, const char *path, const char *kind, const char *share,
                        int once);

/* Closes the way in of share (NULL: the session's own link) and its viewers, who leave for why.
 * Returns how many viewers it closed. */
unsigned helper_relay_close_entrance(helper_relay *relay, const char *share, const char *why);

/* Viewers connected now: all, or those of kind. */
unsigned helper_relay_watching(const helper_relay *relay, const char *kind);

/* [{"viewer", "kind", "share", "since"}] of the viewers connected now (a new reference). */
json_t *helper_relay_viewers_json(const helper_relay *relay);

/* Closes every viewer (each leaves for why) and way in, removes the sockets, frees relay. */
void helper_relay_destroy(helper_relay *relay, const char *why);
/* Frees relay as the helper exits: closes its sockets without a word to the session and leaves
 * its entrances' files for the next helper, which listens there again when it adopts the VM. */
void helper_relay_release(helper_relay *relay);

#endif
