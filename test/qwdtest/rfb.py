# SPDX-License-Identifier: Apache-2.0
"""Speaks just enough RFB to prove a VM's display answers: through a websocket (websockify or
Apache) or directly on QEMU's VNC Unix socket."""
import socket

import websocket  # python3-websocket


def websocket_rfb_banner(ws_url, timeout=10, header=None):
    """Opens ws_url as a binary websocket and returns the RFB ProtocolVersion banner."""
    ws = websocket.create_connection(ws_url, timeout=timeout, subprotocols=["binary"],
                                     header=header or [])
    try:
        data = b""
        while len(data) < 12:
            frame = ws.recv()
            if not frame:
                break
            data += frame if isinstance(frame, bytes) else frame.encode()
        return data[:12]
    finally:
        ws.close()


def unix_rfb_banner(path, timeout=5):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        data = b""
        while len(data) < 12:
            chunk = s.recv(12 - len(data))
            if not chunk:
                break
            data += chunk
        return data
