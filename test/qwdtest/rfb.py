# SPDX-License-Identifier: Apache-2.0
"""Speaks just enough RFB to prove a VM's display answers: through a websocket (websockify or
Apache) or directly on QEMU's VNC Unix socket; and to read a whole screen through a websocket,
as noVNC does."""
import socket
import struct
import time

import websocket  # python3-websocket

BANNER_LEN = 12  # "RFB 003.008\n"


def read_banner(ws):
    """The first BANNER_LEN bytes a websocket gives (fewer if it closes first)."""
    data = b""
    while len(data) < BANNER_LEN:
        frame = ws.recv()
        if not frame:
            break
        data += frame if isinstance(frame, bytes) else frame.encode()
    return data[:BANNER_LEN]


def websocket_rfb_banner(ws_url, timeout=10, header=None, subprotocols=("binary",),
                         ca_cert=None):
    """Opens ws_url as a binary websocket and returns the RFB ProtocolVersion banner
    (wss:// checked against ca_cert when given)."""
    ws = websocket.create_connection(ws_url, timeout=timeout, subprotocols=list(subprotocols),
                                     header=header or [],
                                     sslopt={"ca_certs": ca_cert} if ca_cert else None)
    try:
        return read_banner(ws)
    finally:
        ws.close()


def unix_rfb_banner(path, timeout=5):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        data = b""
        while len(data) < BANNER_LEN:
            chunk = s.recv(BANNER_LEN - len(data))
            if not chunk:
                break
            data += chunk
        return data


def open_at_once(ws_url, timeout=30, interval=0.01, subprotocols=("binary",)):
    """What a script does with a websocket URL it was just given: open it at once and retry
    the same URL every interval until the display answers. Returns (banner, outcomes): the
    RFB banner (b"" if none came in time) and what each try got, in order — an HTTP status
    (503 while the display is not accepting yet, 403 refused), "closed" for a websocket that
    opened and closed without data, or 101 for the one that got the banner."""
    deadline = time.monotonic() + timeout
    outcomes = []
    while time.monotonic() < deadline:
        try:
            ws = websocket.create_connection(ws_url, timeout=10, subprotocols=list(subprotocols))
        except websocket.WebSocketBadStatusException as err:
            outcomes.append(err.status_code)
            time.sleep(interval)
            continue
        data = b""
        try:
            data = read_banner(ws)
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            ws.close()
        if data[:4] == b"RFB ":
            outcomes.append(101)
            return data, outcomes
        outcomes.append("closed")
        time.sleep(interval)
    return b"", outcomes


class _WebsocketStream:
    """Reads exact byte counts from a binary websocket (frames split RFB messages anywhere)."""

    def __init__(self, ws):
        self.ws = ws
        self.buffer = b""

    def read(self, count):
        while len(self.buffer) < count:
            frame = self.ws.recv()
            if not frame:
                raise ConnectionError("the websocket closed")
            self.buffer += frame if isinstance(frame, bytes) else frame.encode()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


def websocket_rfb_screen(ws_url, timeout=30, subprotocols=("binary",)):
    """Opens ws_url, logs into the RFB server without a password (security type None), asks
    for the whole framebuffer in raw 32-bit pixels and returns (width, height, colours): the
    number of distinct pixel values on the screen (1: blank)."""
    ws = websocket.create_connection(ws_url, timeout=timeout, subprotocols=list(subprotocols))
    try:
        stream = _WebsocketStream(ws)
        stream.read(12)
        ws.send_binary(b"RFB 003.008\n")
        types = stream.read(stream.read(1)[0])
        assert 1 in types, f"the server offers no security type None: {list(types)}"
        ws.send_binary(b"\x01")
        assert struct.unpack(">I", stream.read(4))[0] == 0, "security handshake failed"
        ws.send_binary(b"\x01")  # ClientInit: shared
        width, height = struct.unpack(">HH", stream.read(4))
        stream.read(16)  # the server's pixel format
        stream.read(struct.unpack(">I", stream.read(4))[0])  # the desktop's name
        # SetPixelFormat: 32 bpp, depth 24, little-endian true colour 8:8:8
        ws.send_binary(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255,
                                   16, 8, 0))
        ws.send_binary(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw only
        ws.send_binary(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        pixels = set()
        while True:
            kind = stream.read(1)[0]
            if kind == 0:  # FramebufferUpdate
                stream.read(1)
                for _ in range(struct.unpack(">H", stream.read(2))[0]):
                    x, y, w, h, encoding = struct.unpack(">HHHHi", stream.read(12))
                    assert encoding == 0, f"unexpected encoding {encoding}"
                    data = stream.read(w * h * 4)
                    pixels.update(data[i:i + 3] for i in range(0, len(data), 4))
                return width, height, len(pixels)
            if kind == 2:  # Bell
                continue
            if kind == 3:  # ServerCutText
                stream.read(3)
                stream.read(struct.unpack(">I", stream.read(4))[0])
                continue
            raise AssertionError(f"unexpected RFB message type {kind}")
    finally:
        ws.close()


def link_ticket(link, timeout=30, ca_cert=None):
    """What our viewer page (htdocs/qwd-viewer.js) does before each connect: POST LINK/ticket.
    Returns (websocket URL, subprotocol "qwd-ticket.TICKET"); retries while the display
    starts (503)."""
    import json
    import ssl
    import time
    import urllib.error
    import urllib.request
    context = ssl.create_default_context(cafile=ca_cert) if ca_cert else None
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(link + "/ticket", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
                answer = json.loads(resp.read())
            return answer["url"], answer["subprotocol"]
        except urllib.error.HTTPError as err:
            if err.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def open_link_websocket(link, timeout=10):
    """Opens a session link's display as our viewer does (a fresh ticket as the websocket
    subprotocol beside "binary"); returns the open websocket, its RFB banner read."""
    url, subprotocol = link_ticket(link)
    ws = websocket.create_connection(url, timeout=timeout, subprotocols=["binary", subprotocol])
    banner = ws.recv()
    assert banner.startswith(b"RFB "), banner
    return ws
