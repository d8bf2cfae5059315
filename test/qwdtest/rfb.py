# SPDX-License-Identifier: Apache-2.0
"""Speaks enough RFB to prove a VM's display answers (through a websocket — websockify or
Apache — or on a Unix socket: QEMU's, or the relay's), to read a whole screen through a
websocket as noVNC does, and to be a viewer: handshake, screen updates, keys, and any bytes a
misbehaving client might send."""
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


def websocket_status(ws_url):
    """The HTTP status a websocket upgrade of ws_url gets (101 when it opens; it is closed at
    once)."""
    try:
        ws = websocket.create_connection(ws_url, timeout=10, subprotocols=["binary"])
    except websocket.WebSocketBadStatusException as err:
        return err.status_code
    ws.close()
    return 101


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


# ---------------------------------------------------------------- a VNC client for the tests

KEY_RETURN = 0xff0d
KEY_SHIFT_L = 0xffe1
# What a US keyboard types with Shift held (QEMU maps keysyms through its en-us keymap).
SHIFTED = set('~!@#$%^&*()_+{}|:"<>?' + "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# XT scan codes (QEMU's "qnum") of what the extended key events of the tests type.
QNUM = {"a": 0x1e, "x": 0x2d, "\n": 0x1c}


class Closed(Exception):
    """The other side closed the connection."""


class _UnixTransport:
    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def send(self, data):
        self.sock.sendall(data)

    def recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return b""

    def close(self):
        self.sock.close()


class _WebsocketTransport:
    def __init__(self, url, timeout, subprotocols, header):
        self.ws = websocket.create_connection(url, timeout=timeout,
                                              subprotocols=list(subprotocols),
                                              header=header or [])

    def send(self, data):
        self.ws.send_binary(data)

    def recv(self, timeout):
        self.ws.settimeout(timeout)
        try:
            frame = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
            return b""
        if isinstance(frame, str):
            frame = frame.encode()
        return frame if frame else b""

    def close(self):
        self.ws.close()


class RfbClient:
    """A VNC client of just what the tests need: the 3.8 handshake (no security, shared
    display), raw 32-bit screen updates, keys as keysyms (with Shift where a US keyboard
    needs it) or as QEMU's extended key events, and raw bytes of any kind."""

    def __init__(self, transport):
        self.transport = transport
        self.buffer = b""
        self.width = self.height = 0
        self.name = ""

    @classmethod
    def unix(cls, path, timeout=10):
        return cls(_UnixTransport(path, timeout))

    @classmethod
    def websocket(cls, url, timeout=10, subprotocols=("binary",), header=None):
        return cls(_WebsocketTransport(url, timeout, subprotocols, header))

    # -- bytes
    def send(self, data):
        self.transport.send(data)

    def _read(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"wanted {n} bytes, have {len(self.buffer)}")
            chunk = self.transport.recv(left)
            if chunk == b"":
                raise Closed("the relay closed the connection")
            if chunk:
                self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def close(self):
        self.transport.close()

    # -- the handshake
    def handshake(self, shared=True, timeout=10):
        banner = self._read(12, timeout)
        assert banner == b"RFB 003.008\n", banner
        self.send(b"RFB 003.008\n")
        count = self._read(1, timeout)[0]
        types = self._read(count, timeout)
        assert 1 in types, types
        self.send(b"\x01")
        assert self._read(4, timeout) == b"\0\0\0\0"  # SecurityResult: OK
        self.send(b"\x01" if shared else b"\x00")
        init = self._read(24, timeout)
        self.width, self.height = struct.unpack(">HH", init[:4])
        self.name = self._read(struct.unpack(">I", init[20:24])[0], timeout).decode(errors="replace")
        # 32 bits per pixel, true colour; only the raw encoding
        self.send(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        self.send(struct.pack(">BxHi", 2, 1, 0))
        return self

    # -- screen updates
    def request_update(self, incremental=True):
        self.send(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0,
                              self.width, self.height))

    def read_message(self, timeout=10):
        """The next server message: ("update", rectangles), ("bell",), ("cut", text) or
        ("colours",). Raises Closed when the connection ends."""
        kind = self._read(1, timeout)[0]
        if kind == 0:
            count = struct.unpack(">xH", self._read(3, timeout))[0]
            rectangles = []
            for _ in range(count):
                x, y, w, h, encoding = struct.unpack(">HHHHi", self._read(12, timeout))
                if encoding == 0:
                    self._read(w * h * 4, timeout)
                elif encoding == -223:  # DesktopSize
                    self.width, self.height = w, h
                rectangles.append((x, y, w, h, encoding))
            return ("update", rectangles)
        if kind == 1:
            _, count = struct.unpack(">xHH", self._read(5, timeout))
            self._read(6 * count, timeout)
            return ("colours",)
        if kind == 2:
            return ("bell",)
        if kind == 3:
            length = struct.unpack(">xxxI", self._read(7, timeout))[0]
            return ("cut", self._read(length, timeout))
        raise AssertionError(f"unknown server message {kind}")

    def wait_update(self, timeout=10):
        """Reads until a screen update with at least one rectangle; returns its rectangles."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.read_message(max(0.1, deadline - time.monotonic()))
            if message[0] == "update" and message[1]:
                return message[1]

    def screen(self, timeout=10):
        """Asks for the whole screen and reads it: proves the display still answers."""
        self.request_update(incremental=False)
        return self.wait_update(timeout)

    def closed(self, timeout=5):
        """Whether the other side closes the connection within timeout (what arrives is
        read and thrown away)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self.transport.recv(max(0.05, deadline - time.monotonic()))
            if chunk == b"":
                return True
        return False

    # -- keys
    def key(self, keysym, down):
        self.send(struct.pack(">BBxxI", 4, 1 if down else 0, keysym))

    def press(self, keysym):
        self.key(keysym, True)
        self.key(keysym, False)

    def type_text(self, text):
        """Types text as a person on a US keyboard does ("\\n" is Return)."""
        for c in text:
            if c == "\n":
                self.press(KEY_RETURN)
            elif c in SHIFTED:
                self.key(KEY_SHIFT_L, True)
                self.press(ord(c))
                self.key(KEY_SHIFT_L, False)
            else:
                self.press(ord(c))

    def ext_key(self, text):
        """Types text (of QNUM's keys) with QEMU's extended key events, as noVNC does."""
        for c in text:
            for down in (1, 0):
                self.send(struct.pack(">BBHII", 255, 0, down, 0, QNUM[c]))

    def pointer(self, x, y, buttons=0):
        self.send(struct.pack(">BBHH", 5, buttons, x, y))
