/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what a viewer sends to the helper's relay (lib/qwd_rfb.c), fed as the relay feeds
 * it. Input: a byte of flags (bit 0: a view-only viewer), a byte choosing the read size, then
 * the viewer's stream. Aborts where the parser would let the relay lose its place or pass a
 * view-only viewer's input to the VM. */
#include "fuzz.h"
#include "qwd_rfb.h"

#include <stdlib.h>
#include <string.h>

/* The longest unit the parser may announce: a ClientCutText at the display's bound. */
#define UNIT_MAX (8 + (uint64_t)QWD_RFB_CUT_TEXT_MAX)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_apr_init();
    return 0;
}

/* What a view-only viewer may have forwarded: the handshake, and messages that only ask the
 * display for pictures or sound. */
static int view_may_pass(const qwd_rfb_unit *u)
{
    return u->type < 0 || u->type == QWD_RFB_SET_PIXEL_FORMAT || u->type == QWD_RFB_SET_ENCODINGS
           || u->type == QWD_RFB_UPDATE_REQUEST
           || (u->type == QWD_RFB_QEMU && u->subtype == QWD_RFB_QEMU_AUDIO);
}

/* What a view-only viewer's input is (dropped, never passed). */
static int is_input(const qwd_rfb_unit *u)
{
    return u->type == QWD_RFB_KEY_EVENT || u->type == QWD_RFB_POINTER_EVENT
           || (u->type == QWD_RFB_QEMU && u->subtype == QWD_RFB_QEMU_EXT_KEY_EVENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    qwd_rfb_client client;
    int view_only = data[0] & 1;
    size_t chunk = 1 + data[1] % 64, end;
    const unsigned char *stream = data + 2;
    size_t len = size - 2;
    uint64_t at = 0;
    qwd_rfb_client_init(&client, view_only);
    end = chunk < len ? chunk : len;
    for (;;) {
        size_t have = end > at ? end - (size_t)at : 0;
        qwd_rfb_client before = client;
        qwd_rfb_unit u = qwd_rfb_client_next(&client, stream + at, have);
        if (!u.what || client.phase < before.phase) {
            abort();
        }
        switch (u.verdict) {
        case QWD_RFB_NEED_MORE: {
            /* it asks for more than it has, never more than a header, and stays put */
            if (u.length <= have || u.length > QWD_RFB_HEADER_MAX
                || memcmp(&before, &client, sizeof client)) {
                abort();
            }
            qwd_rfb_unit again = qwd_rfb_client_next(&client, stream + at, have);
            if (again.verdict != QWD_RFB_NEED_MORE || again.length != u.length) {
                abort(); /* the same bytes, the same answer */
            }
            if (end == len) {
                return 0; /* the viewer sent no more */
            }
            end = end + chunk < len ? end + chunk : len;
            break;
        }
        case QWD_RFB_FORWARD:
        case QWD_RFB_DROP:
            /* every unit moves the stream on, by a bounded length */
            if (u.length < 1 || u.length > UNIT_MAX) {
                abort();
            }
            if (view_only && u.verdict == QWD_RFB_FORWARD && !view_may_pass(&u)) {
                abort(); /* a view-only viewer's message reached the VM */
            }
            if (u.verdict == QWD_RFB_DROP && (!view_only || !is_input(&u))) {
                abort(); /* only a view-only viewer's input is dropped */
            }
            if (u.client_init && before.phase != QWD_RFB_PHASE_CLIENT_INIT) {
                abort();
            }
            at += u.length;
            if (at >= len) {
                return 0; /* the rest of the unit would come in later reads */
            }
            if (end < at) {
                end = (size_t)at;
            }
            break;
        case QWD_RFB_REFUSE:
        case QWD_RFB_INVALID:
            /* the relay closes this viewer: said why, the stream untouched */
            if (!u.reason || memcmp(&before, &client, sizeof client)
                || (u.verdict == QWD_RFB_REFUSE && !view_only)) {
                abort();
            }
            return 0;
        default: abort();
        }
    }
}
