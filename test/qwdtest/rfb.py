# SPDX-License-Identifier: Apache-2.0
"""Speaks just enough RFB to prove a VM's display answers: through a websocket (websockify or
Apache) or directly on QEMU's VNC Unix socket."""
import socket
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
