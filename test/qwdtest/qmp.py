# SPDX-License-Identifier: Apache-2.0
"""A QMP client for tests: what a VM's owner or an admin could type on its QMP socket."""
import json
import socket


class Qmp:
    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        json.loads(self.file.readline())  # greeting
        self.execute("qmp_capabilities")

    def execute(self, command, **arguments):
        """The command's reply ({"return": ...} or {"error": ...}); events are skipped."""
        self.file.write(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QEMU closed its QMP socket")
            reply = json.loads(line)
            if "event" not in reply:
                return reply

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
