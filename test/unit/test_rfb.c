/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the RFB client-stream parser (lib/qwd_rfb.c) behind the viewers' relay: every
 * unit's length and verdict, for control and view-only viewers, and a whole stream cut into
 * pieces of every size, which must come out the same (the parser never loses its place). */
#include "unit.h"
#include "qwd_rfb.h"

#include <stdlib.h>

/* A client past its handshake. */
static qwd_rfb_client talking(int view_only)
{
    qwd_rfb_client client;
    qwd_rfb_client_init(&client, view_only);
    client.phase = QWD_RFB_PHASE_MESSAGES;
    client.minor = 8;
    return client;
}

static qwd_rfb_unit next_of(int view_only, const unsigned char *data, size_t len)
{
    qwd_rfb_client client = talking(view_only);
    return qwd_rfb_client_next(&client, data, len);
}

UNIT_TEST(rfb_handshake_38_forwards_version_security_and_a_shared_client_init)
{
    qwd_rfb_client client;
    qwd_rfb_client_init(&client, 1);
    const unsigned char *version = (const unsigned char *)"RFB 003.008\n";
    qwd_rfb_unit u = qwd_rfb_client_next(&client, version, 5);
    CHECK_INT(u.verdict, QWD_RFB_NEED_MORE);
    CHECK_INT(u.length, 12);
    CHECK_INT(client.phase, QWD_RFB_PHASE_VERSION); /* NEED_MORE changes nothing */
    u = qwd_rfb_client_next(&client, version, 12);
    CHECK_INT(u.verdict, QWD_RFB_FORWARD);
    CHECK_INT(u.length, 12);
    CHECK_INT(client.minor, 8);
    CHECK_INT(client.phase, QWD_RFB_PHASE_SECURITY);
    CHECK_INT(qwd_rfb_client_next(&client, NULL, 0).verdict, QWD_RFB_NEED_MORE);
    u = qwd_rfb_client_next(&client, (const unsigned char *)"\x01", 1);
    CHECK_INT(u.verdict, QWD_RFB_FORWARD);
    CHECK_INT(u.length, 1);
    u = qwd_rfb_client_next(&client, (const unsigned char *)"\x00", 1); /* exclusive asked */
    CHECK_INT(u.verdict, QWD_RFB_FORWARD);
    CHECK_INT(u.length, 1);
    CHECK(u.client_init);
    CHECK_INT(client.phase, QWD_RFB_PHASE_MESSAGES);
}

UNIT_TEST(rfb_handshake_33_has_no_security_byte_and_odd_versions_are_invalid)
{
    qwd_rfb_client client;
    qwd_rfb_client_init(&client, 0);
    CHECK_INT(qwd_rfb_client_next(&client, (const unsigned char *)"RFB 003.003\n", 12).verdict,
              QWD_RFB_FORWARD);
    CHECK_INT(client.phase, QWD_RFB_PHASE_CLIENT_INIT);
    qwd_rfb_client_init(&client, 0);
    CHECK_INT(qwd_rfb_client_next(&client, (const unsigned char *)"RFB 003.005\n", 12).verdict,
              QWD_RFB_FORWARD);
    CHECK_INT(client.minor, 3);
    static const char *const bad[] = {"RFB 003.006\n", "RFB 004.001\n", "RFB 003.008\r",
                                      "GET / HTTP/1.", "RFB 003.00x\n", "\0\0\0\0\0\0\0\0\0\0\0\0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qwd_rfb_client_init(&client, 0);
        qwd_rfb_unit u = qwd_rfb_client_next(&client, (const unsigned char *)bad[i], 12);
        CHECK_INT(u.verdict, QWD_RFB_INVALID);
        CHECK(u.reason != NULL);
        CHECK_INT(client.phase, QWD_RFB_PHASE_VERSION);
    }
    /* VNC authentication (2) or VeNCrypt (19): the displays offer None only */
    qwd_rfb_client_init(&client, 0);
    qwd_rfb_client_next(&client, (const unsigned char *)"RFB 003.008\n", 12);
    CHECK_INT(qwd_rfb_client_next(&client, (const unsigned char *)"\x02", 1).verdict,
              QWD_RFB_INVALID);
    CHECK_INT(qwd_rfb_client_next(&client, (const unsigned char *)"\x13", 1).verdict,
              QWD_RFB_INVALID);
}

/* (bytes, their count, the length a control viewer's FORWARD says, a view viewer's verdict) */
typedef struct {
    const char *bytes;
    size_t len;
    uint64_t length;
    qwd_rfb_verdict view;
} message_case;

UNIT_TEST(rfb_every_message_type_has_its_length_and_view_verdict)
{
    static const message_case cases[] = {
        {"\x00", 1, 20, QWD_RFB_FORWARD},                      /* SetPixelFormat */
        {"\x02\0\x00\x03", 4, 16, QWD_RFB_FORWARD},            /* SetEncodings, 3 */
        {"\x02\0\xff\xff", 4, 4 + 4 * 65535, QWD_RFB_FORWARD}, /* SetEncodings, most */
        {"\x03", 1, 10, QWD_RFB_FORWARD},                      /* FramebufferUpdateRequest */
        {"\x04", 1, 8, QWD_RFB_DROP},                          /* KeyEvent */
        {"\x05", 1, 6, QWD_RFB_DROP},                          /* PointerEvent */
        {"\x06\0\0\0\0\0\0\x05", 8, 13, QWD_RFB_REFUSE},       /* ClientCutText */
        {"\x06\0\0\0\xff\xff\xff\xfb", 8, 13, QWD_RFB_REFUSE}, /* extended clipboard */
        {"\x06\0\0\0\x00\x10\x00\x00", 8, 8 + (1 << 20), QWD_RFB_REFUSE}, /* 1 MiB */
        {"\xfa", 1, 4, QWD_RFB_REFUSE},                                   /* xvp (power) */
        {"\xfb\0\0\0\0\0\x02\0", 8, 8 + 32, QWD_RFB_REFUSE},              /* SetDesktopSize, 2 */
        {"\xfd\0\x01\x00", 4, 4 + 256, QWD_RFB_REFUSE},                   /* gii */
        {"\xff\x00", 2, 12, QWD_RFB_DROP},                                /* QEMU extended key */
        {"\xff\x01\x00\x00", 4, 4, QWD_RFB_FORWARD},                      /* QEMU audio enable */
        {"\xff\x01\x00\x01", 4, 4, QWD_RFB_FORWARD},                      /* QEMU audio disable */
        {"\xff\x01\x00\x02", 4, 10, QWD_RFB_FORWARD}, /* QEMU audio set format */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const message_case *c = &cases[i];
        const unsigned char *data = (const unsigned char *)c->bytes;
        qwd_rfb_unit control = next_of(0, data, c->len);
        qwd_rfb_unit view = next_of(1, data, c->len);
        if (control.verdict != QWD_RFB_FORWARD || control.length != c->length
            || view.verdict != c->view) {
            fprintf(stderr, "  case %zu (type %d): control %d/%llu, view %d\n", i, data[0],
                    control.verdict, (unsigned long long)control.length, view.verdict);
            *unit_failed_ = 1;
        }
        if (c->view == QWD_RFB_DROP) {
            CHECK(view.length == c->length); /* skipped whole: the stream stays in step */
        }
        CHECK(control.what != NULL);
        /* one byte short of the header: more is needed, for every kind of viewer */
        if (c->len > 1) {
            CHECK_INT(next_of(0, data, c->len - 1).verdict, QWD_RFB_NEED_MORE);
            CHECK_INT(next_of(1, data, c->len - 1).verdict, QWD_RFB_NEED_MORE);
        }
    }
}

UNIT_TEST(rfb_unknown_types_and_oversized_text_are_invalid_for_everyone)
{
    static const char *const bad[] = {
        "\x01", /* FixColourMapEntries: not spoken */
        "\x07",
        "\x96",
        "\xf8", /* FileTransfer, EnableContinuousUpdates, Fence */
        "\xfc",
        "\xfe",                        /* tight, VMware */
        "\xff\x02",                    /* QEMU submessage 2 */
        "\xff\x01\x00\x03",            /* QEMU audio operation 3 */
        "\x06\0\0\0\x00\x10\x00\x01",  /* cut text one byte over 1 MiB */
        "\x06\0\0\0\x80\x00\x00\x00",  /* INT32_MIN: the largest extended clipboard */
        "\x06\0\0\0\x7f\xff\xff\xff"}; /* INT32_MAX */
    static const size_t lens[] = {1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int view_only = 0; view_only <= 1; view_only++) {
            qwd_rfb_unit u = next_of(view_only, (const unsigned char *)bad[i], lens[i]);
            if (u.verdict != QWD_RFB_INVALID || !u.reason) {
                fprintf(stderr, "  bad[%zu], view_only %d: verdict %d\n", i, view_only, u.verdict);
                *unit_failed_ = 1;
            }
        }
    }
}

/* What a relay does with a client's stream given in pieces of chunk bytes (the last one may be
 * shorter): out gets every byte it forwards, with the shared flag set; returns the offset in
 * stream of the unit that closed the connection, or -1 when it never closed. The relay's own
 * logic, written out: a buffer, a unit passed or skipped in part as its bytes arrive. */
static long relay(int view_only, const unsigned char *stream, size_t len, size_t chunk,
                  unsigned char *out, size_t *out_len)
{
    qwd_rfb_client client;
    qwd_rfb_client_init(&client, view_only);
    unsigned char buffer[64];
    size_t held = 0, done = 0; /* bytes in buffer, bytes of stream consumed */
    uint64_t pass = 0, skip = 0;
    *out_len = 0;
    for (size_t at = 0; at < len;) {
        size_t n = len - at < chunk ? len - at : chunk;
        if (n > sizeof buffer - held) {
            n = sizeof buffer - held;
        }
        memcpy(buffer + held, stream + at, n);
        held += n;
        at += n;
        for (;;) {
            if (pass || skip) {
                uint64_t *left = pass ? &pass : &skip;
                size_t take = held < *left ? held : (size_t)*left;
                if (pass) {
                    memcpy(out + *out_len, buffer, take);
                    *out_len += take;
                }
                memmove(buffer, buffer + take, held - take);
                held -= take;
                done += take;
                *left -= take;
                if (*left) {
                    break;
                }
                continue;
            }
            qwd_rfb_unit u = qwd_rfb_client_next(&client, buffer, held);
            if (u.verdict == QWD_RFB_NEED_MORE) {
                break;
            }
            if (u.verdict == QWD_RFB_REFUSE || u.verdict == QWD_RFB_INVALID) {
                return (long)done;
            }
            if (u.client_init && held) {
                buffer[0] = 1;
            }
            if (u.verdict == QWD_RFB_FORWARD) {
                pass = u.length;
            }
            else {
                skip = u.length;
            }
        }
    }
    return -1;
}

static size_t append(unsigned char *stream, size_t at, const char *bytes, size_t len)
{
    memcpy(stream + at, bytes, len);
    return at + len;
}

UNIT_TEST(rfb_a_stream_cut_anywhere_comes_out_the_same)
{
    unsigned char stream[4096], expected[4096], out[4096];
    size_t len = 0, expected_len = 0;
    /* what a view-only viewer may send, as noVNC sends it, with input among it */
    len = append(stream, len, "RFB 003.008\n\x01\x00", 14);
    len = append(stream, len, "\x00\0\0\0 \x18\0\x01\0\xff\0\xff\0\xff\x10\x08\0\0\0\0", 20);
    len = append(stream, len, "\x02\0\x00\x02\0\0\0\0\xff\xff\xfe\xfc", 12);
    len = append(stream, len, "\x03\0\0\0\0\0\x02\xd0\x01\x90", 10);
    size_t input_at = len;
    len = append(stream, len, "\x04\x01\0\0\0\0\0a", 8);
    len = append(stream, len, "\x05\0\0\x10\0\x20", 6);
    len = append(stream, len, "\xff\x00\0\x01\0\0\0a\0\0\0\x1e", 12);
    size_t after_input = len;
    len = append(stream, len, "\xff\x01\x00\x02\x03\x02\0\0\xac\x44", 10);
    len = append(stream, len, "\x03\x01\0\0\0\0\x02\xd0\x01\x90", 10);
    memcpy(expected, stream, input_at);
    expected[13] = 1; /* the shared flag */
    expected_len = input_at;
    memcpy(expected + expected_len, stream + after_input, len - after_input);
    expected_len += len - after_input;
    for (size_t chunk = 1; chunk <= len; chunk++) {
        size_t out_len;
        long closed = relay(1, stream, len, chunk, out, &out_len);
        if (closed != -1 || out_len != expected_len || memcmp(out, expected, expected_len)) {
            fprintf(stderr, "  view, chunks of %zu: closed at %ld, %zu bytes out\n", chunk, closed,
                    out_len);
            *unit_failed_ = 1;
            break;
        }
        /* a control viewer's stream passes whole (but for the shared flag) */
        closed = relay(0, stream, len, chunk, out, &out_len);
        if (closed != -1 || out_len != len || memcmp(out + 14, stream + 14, len - 14)
            || out[13] != 1) {
            fprintf(stderr, "  control, chunks of %zu: closed at %ld, %zu bytes out\n", chunk,
                    closed, out_len);
            *unit_failed_ = 1;
            break;
        }
    }
    /* then power off through xvp: the view viewer is closed there, the control one is not */
    size_t xvp_at = len;
    len = append(stream, len, "\xfa\0\x01\x02", 4);
    len = append(stream, len, "\x03\x01\0\0\0\0\x02\xd0\x01\x90", 10);
    for (size_t chunk = 1; chunk <= len; chunk += 7) {
        size_t out_len;
        CHECK_INT(relay(1, stream, len, chunk, out, &out_len), xvp_at);
        CHECK_INT(relay(0, stream, len, chunk, out, &out_len), -1);
        CHECK_INT(out_len, len);
    }
}

UNIT_TEST(rfb_long_messages_pass_through_a_small_buffer)
{
    /* 65535 encodings and 1 MiB of cut text go through a 64-byte buffer: only their headers
     * are parsed, the rest is passed as it comes */
    size_t len = 14 + 4 + 4 * 65535 + 8 + (1 << 20) + 10;
    unsigned char *stream = calloc(1, len), *out = calloc(1, len);
    size_t at = append(stream, 0, "RFB 003.008\n\x01\x01", 14);
    at = append(stream, at, "\x02\0\xff\xff", 4);
    memset(stream + at, 0x04, 4 * 65535); /* bytes that look like KeyEvents */
    at += 4 * 65535;
    at = append(stream, at, "\x06\0\0\0\x00\x10\x00\x00", 8);
    memset(stream + at, 0xfa, 1 << 20); /* bytes that look like xvp */
    at += 1 << 20;
    at = append(stream, at, "\x03\x01\0\0\0\0\x02\xd0\x01\x90", 10);
    CHECK_INT(at, len);
    size_t out_len;
    CHECK_INT(relay(0, stream, len, 4096, out, &out_len), -1);
    CHECK_INT(out_len, len);
    CHECK(memcmp(out, stream, len) == 0);
    /* a view viewer: the encodings pass, the cut text closes it */
    CHECK_INT(relay(1, stream, len, 4096, out, &out_len), 14 + 4 + 4 * 65535);
    free(stream);
    free(out);
}
