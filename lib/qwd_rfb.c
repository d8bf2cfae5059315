/* SPDX-License-Identifier: Apache-2.0 */
/* The client side of RFB as QEMU 7.2 reads it (ui/vnc.c protocol_version, protocol_client_auth,
 * protocol_client_init, protocol_client_msg): every unit's length comes from its own header, so
 * a relay that skips or passes units never loses its place in the stream. */
#include "qwd_rfb.h"

#include <string.h>

#define VERSION_LEN 12
#define SECURITY_NONE 1

/* How a view-only viewer's message is judged. */
typedef enum { VIEW_PASS, VIEW_DROP, VIEW_REFUSE } view_rule;

static qwd_rfb_unit unit(qwd_rfb_verdict verdict, uint64_t length, int type, int subtype,
                         const char *what, const char *reason)
{
    qwd_rfb_unit u = {verdict, length, type, subtype, 0, what, reason};
    return u;
}

static qwd_rfb_unit need(uint64_t length, int type, const char *what)
{
    return unit(QWD_RFB_NEED_MORE, length, type, -1, what, NULL);
}

static uint16_t u16_at(const unsigned char *data)
{
    return (uint16_t)((data[0] << 8) | data[1]);
}

static int64_t s32_at(const unsigned char *data)
{
    uint32_t value = ((uint32_t)data[0] << 24) | ((uint32_t)data[1] << 16)
                     | ((uint32_t)data[2] << 8) | (uint32_t)data[3];
    return (int64_t)(int32_t)value;
}

void qwd_rfb_client_init(qwd_rfb_client *client, int view_only)
{
    memset(client, 0, sizeof *client);
    client->phase = QWD_RFB_PHASE_VERSION;
    client->view_only = view_only;
}

/* "RFB 003.00N\n": QEMU speaks 3.3, 3.7 and 3.8 (and reads 3.4 and 3.5 as 3.3). */
static qwd_rfb_unit version(qwd_rfb_client *client, const unsigned char *data, size_t len)
{
    static const char prefix[] = "RFB 003.00";
    if (len < VERSION_LEN) {
        return need(VERSION_LEN, -1, "protocol version");
    }
    int minor = data[10] - '0';
    if (memcmp(data, prefix, sizeof prefix - 1) || data[11] != '\n' || minor < 3 || minor > 8
        || minor == 6) {
        return unit(QWD_RFB_INVALID, 0, -1, -1, "protocol version",
                    "not a protocol version the display speaks (3.3, 3.7 or 3.8)");
    }
    client->minor = minor >= 7 ? minor : 3;
    /* 3.3: the server picks the security type, the client answers nothing */
    client->phase = client->minor >= 7 ? QWD_RFB_PHASE_SECURITY : QWD_RFB_PHASE_CLIENT_INIT;
    return unit(QWD_RFB_FORWARD, VERSION_LEN, -1, -1, "protocol version", NULL);
}

/* The displays run without a VNC password: None is the one type they offer. */
static qwd_rfb_unit security(qwd_rfb_client *client, const unsigned char *data, size_t len)
{
    if (len < 1) {
        return need(1, -1, "security type");
    }
    if (data[0] != SECURITY_NONE) {
        return unit(QWD_RFB_INVALID, 0, -1, -1, "security type",
                    "a security type the display does not offer");
    }
    client->phase = QWD_RFB_PHASE_CLIENT_INIT;
    return unit(QWD_RFB_FORWARD, 1, -1, -1, "security type", NULL);
}

static qwd_rfb_unit client_init(qwd_rfb_client *client, size_t len)
{
    if (len < 1) {
        return need(1, -1, "ClientInit");
    }
    client->phase = QWD_RFB_PHASE_MESSAGES;
    qwd_rfb_unit u = unit(QWD_RFB_FORWARD, 1, -1, -1, "ClientInit", NULL);
    u.client_init = 1; /* shared: no viewer may ask to have the display alone */
    return u;
}

/* A complete message header's verdict for a viewer of client's kind. */
static qwd_rfb_unit judge(const qwd_rfb_client *client, uint64_t length, int type, int subtype,
                          const char *what, view_rule rule)
{
    if (!client->view_only || rule == VIEW_PASS) {
        return unit(QWD_RFB_FORWARD, length, type, subtype, what, NULL);
    }
    if (rule == VIEW_DROP) {
        return unit(QWD_RFB_DROP, length, type, subtype, what, NULL);
    }
    return unit(QWD_RFB_REFUSE, 0, type, subtype, what, "a view-only viewer may not send it");
}

static qwd_rfb_unit qemu_message(const qwd_rfb_client *client, const unsigned char *data,
                                 size_t len)
{
    if (len < 2) {
        return need(2, QWD_RFB_QEMU, "QEMU message");
    }
    if (data[1] == QWD_RFB_QEMU_EXT_KEY_EVENT) {
        return judge(client, 12, QWD_RFB_QEMU, data[1], "QEMU extended key event", VIEW_DROP);
    }
    if (data[1] != QWD_RFB_QEMU_AUDIO) {
        return unit(QWD_RFB_INVALID, 0, QWD_RFB_QEMU, data[1], "QEMU message",
                    "a QEMU submessage the display does not know");
    }
    if (len < 4) {
        return need(4, QWD_RFB_QEMU, "QEMU audio");
    }
    /* operations: 0 enable, 1 disable, 2 set format (u8 format, u8 channels, u32 frequency) */
    uint16_t operation = u16_at(data + 2);
    if (operation > 2) {
        return unit(QWD_RFB_INVALID, 0, QWD_RFB_QEMU, data[1], "QEMU audio",
                    "an audio operation the display does not know");
    }
    return judge(client, operation == 2 ? 10 : 4, QWD_RFB_QEMU, data[1], "QEMU audio", VIEW_PASS);
}

static qwd_rfb_unit message(const qwd_rfb_client *client, const unsigned char *data, size_t len)
{
    if (len < 1) {
        return need(1, -1, "message");
    }
    int type = data[0];
    switch (type) {
    case QWD_RFB_SET_PIXEL_FORMAT: return judge(client, 20, type, -1, "SetPixelFormat", VIEW_PASS);
    case QWD_RFB_SET_ENCODINGS:
        if (len < 4) {
            return need(4, type, "SetEncodings");
        }
        return judge(client, 4 + 4 * (uint64_t)u16_at(data + 2), type, -1, "SetEncodings",
                     VIEW_PASS);
    case QWD_RFB_UPDATE_REQUEST:
        return judge(client, 10, type, -1, "FramebufferUpdateRequest", VIEW_PASS);
    case QWD_RFB_KEY_EVENT: return judge(client, 8, type, -1, "KeyEvent", VIEW_DROP);
    case QWD_RFB_POINTER_EVENT: return judge(client, 6, type, -1, "PointerEvent", VIEW_DROP);
    case QWD_RFB_CUT_TEXT: {
        if (len < 8) {
            return need(8, type, "ClientCutText");
        }
        /* a negative length is the extended clipboard's; its size is the absolute value */
        int64_t text = s32_at(data + 4);
        uint64_t size = (uint64_t)(text < 0 ? -text : text);
        if (size > QWD_RFB_CUT_TEXT_MAX) {
            return unit(QWD_RFB_INVALID, 0, type, -1, "ClientCutText",
                        "longer than the display accepts");
        }
        return judge(client, 8 + size, type, -1, "ClientCutText", VIEW_REFUSE);
    }
    case QWD_RFB_XVP: return judge(client, 4, type, -1, "xvp", VIEW_REFUSE);
    case QWD_RFB_SET_DESKTOP_SIZE:
        if (len < 8) {
            return need(8, type, "SetDesktopSize");
        }
        return judge(client, 8 + 16 * (uint64_t)data[6], type, -1, "SetDesktopSize", VIEW_REFUSE);
    case QWD_RFB_GII:
        if (len < 4) {
            return need(4, type, "gii");
        }
        return judge(client, 4 + (uint64_t)u16_at(data + 2), type, -1, "gii", VIEW_REFUSE);
    case QWD_RFB_QEMU: return qemu_message(client, data, len);
    default:
        /* QEMU disconnects a client that sends a type it does not know */
        return unit(QWD_RFB_INVALID, 0, type, -1, "message",
                    "a message type the display does "
                    "not know");
    }
}

qwd_rfb_unit qwd_rfb_client_next(qwd_rfb_client *client, const unsigned char *data, size_t len)
{
    switch (client->phase) {
    case QWD_RFB_PHASE_VERSION: return version(client, data, len);
    case QWD_RFB_PHASE_SECURITY: return security(client, data, len);
    case QWD_RFB_PHASE_CLIENT_INIT: return client_init(client, len);
    case QWD_RFB_PHASE_MESSAGES: break;
    }
    return message(client, data, len);
}
