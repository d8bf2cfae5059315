# SPDX-License-Identifier: Apache-2.0
"""The tiny guest's serial console (STATE/sessions/ID/serial.sock): run a shell command in the
guest and read its output, as tests and the bench do to know the guest really answers."""
import os
import re
import socket
import time

from . import procs


class Console:
    """The guest's serial console through the session's serial.sock."""

    def __init__(self, helper, session_id, timeout=20):
        path = os.path.join(helper.session_dir(session_id), "serial.sock")
        self.sock = procs.wait_until(lambda: self._connect(path), timeout, interval=0.01,
                                     what="the serial socket")
        self.sock.settimeout(timeout)
        self.marker = 0

    @staticmethod
    def _connect(path):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            return None

    def run(self, command, timeout=60, resend=3):
        """Runs a shell command; returns its output (between two markers). The command is
        sent again every resend seconds: a guest still booting drops early input."""
        self.marker += 1
        begin, end = f"QB{self.marker}", f"QE{self.marker}"
        # Markers come from shell arithmetic, so the echoed command line never matches them.
        line = (f'\necho "QB$((0+{self.marker})):$({command}):QE$((0+{self.marker}))"\n').encode()
        buffer = b""
        deadline = time.monotonic() + timeout
        next_send = 0
        self.sock.settimeout(0.2)
        pattern = re.compile(f"{begin}:(.*?):{end}", re.S)
        while not pattern.search(buffer.decode(errors="replace")):
            now = time.monotonic()
            assert now < deadline, f"no answer to {command!r}: {buffer[-500:]!r}"
            if now >= next_send:
                self.sock.sendall(line)
                next_send = now + resend
            try:
                buffer += self.sock.recv(65536)
            except socket.timeout:
                pass
        return pattern.search(buffer.decode(errors="replace")).group(1).replace("\r", "").strip()

    def close(self):
        self.sock.close()
