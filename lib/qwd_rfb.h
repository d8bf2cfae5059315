/* SPDX-License-Identifier: Apache-2.0 */
/* What a VNC client sends to the server (RFC 6143 and QEMU's extensions), one unit at a time:
 * the relay between viewers and a VM's display (support/helper_relay.c) asks it how long each
 * handshake step or message is and whether a viewer of its kind may send it. Pure: no I/O, no
 * allocation, so it can be fuzzed on its own. */
#ifndef QWD_RFB_H
#define QWD_RFB_H

#include <stddef.h>
#include <stdint.h>

/* Client message types (the first byte of a message once the handshake is over). */
#define QWD_RFB_SET_PIXEL_FORMAT 0
#define QWD_RFB_SET_ENCODINGS 2
#define QWD_RFB_UPDATE_REQUEST 3
#define QWD_RFB_KEY_EVENT 4
#define QWD_RFB_POINTER_EVENT 5
#define QWD_RFB_CUT_TEXT 6
#define QWD_RFB_XVP 250
#define QWD_RFB_SET_DESKTOP_SIZE 251
#define QWD_RFB_GII 253
#define QWD_RFB_QEMU 255
/* QEMU's submessages (type 255). */
#define QWD_RFB_QEMU_EXT_KEY_EVENT 0
#define QWD_RFB_QEMU_AUDIO 1

/* The longest ClientCutText QEMU takes (it disconnects a client that sends more). */
#define QWD_RFB_CUT_TEXT_MAX (1 << 20)
/* The longest unit whose bytes the parser must see at once to measure it (SetPixelFormat): a
 * caller's buffer must hold at least this much. */
#define QWD_RFB_HEADER_MAX 20

typedef enum {
    QWD_RFB_NEED_MORE, /* the unit is not complete enough to measure: give more bytes */
    QWD_RFB_FORWARD,   /* pass its length bytes to the display */
    QWD_RFB_DROP,      /* skip its length bytes: input a view-only viewer may not give */
    QWD_RFB_REFUSE,    /* a message this viewer may not send: close its connection */
    QWD_RFB_INVALID,   /* not RFB as the display speaks it: close the connection */
} qwd_rfb_verdict;

typedef enum {
    QWD_RFB_PHASE_VERSION,     /* "RFB 003.00N\n" */
    QWD_RFB_PHASE_SECURITY,    /* the security type the client picks (3.7 and later) */
    QWD_RFB_PHASE_CLIENT_INIT, /* the shared flag */
    QWD_RFB_PHASE_MESSAGES,
} qwd_rfb_phase;

/* One viewer's stream, from its first byte. */
typedef struct qwd_rfb_client {
    qwd_rfb_phase phase;
    int minor;     /* the protocol version the client speaks: 3.minor */
    int view_only; /* a view-only viewer: its input is dropped, acts on the machine refused */
} qwd_rfb_client;

typedef struct qwd_rfb_unit {
    qwd_rfb_verdict verdict;
    /* FORWARD, DROP: the unit's bytes, which may be more than were given (the caller passes or
     * skips the rest as it arrives); NEED_MORE: how many bytes the next step needs at least. */
    uint64_t length;
    int type;           /* the message type; -1 during the handshake */
    int subtype;        /* QEMU's submessage; -1 for other types */
    int client_init;    /* FORWARD of ClientInit: its one byte, the shared flag, must become 1 */
    const char *what;   /* the unit's name, for the log: "KeyEvent", "protocol version" */
    const char *reason; /* REFUSE, INVALID: why, for the log */
} qwd_rfb_unit;

/* A new stream; view_only: the viewer may watch, not act. */
void qwd_rfb_client_init(qwd_rfb_client *client, int view_only);

/* Measures and judges the next unit of client's stream, whose next len bytes are at data
 * (len may be 0). On FORWARD and DROP the stream moves past the unit: the caller must then pass
 * or skip exactly length bytes before it asks again. NEED_MORE, REFUSE and INVALID leave the
 * stream as it was. */
qwd_rfb_unit qwd_rfb_client_next(qwd_rfb_client *client, const unsigned char *data, size_t len);

#endif
