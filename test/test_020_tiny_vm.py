# SPDX-License-Identifier: Apache-2.0
"""The tiny test VM behaves as later tests assume: the banner on serial and on the VGA
screen within seconds, a shell on the serial console, and `poweroff -f` ends QEMU."""
import os
import socket
import subprocess
import time

import pytest

from qwdtest import env, procs, vm
from qwdtest.qmp import Qmp


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    header = data.split(b"\n", 3)
    assert header[0] == b"P6"
    width, height = map(int, header[1].split())
    return width, height, header[3]


def read_until(sock, needle, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            chunk = b""
        if not chunk and time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not seen; got {data[-300:]!r}")
        data += chunk
    return data


@pytest.mark.boot
def test_tiny_vm_boots_to_a_shell_on_serial_and_vga(tiny_vm, workdir):
    serial = os.path.join(workdir, "serial.sock")
    qmp = os.path.join(workdir, "qmp.sock")
    with open(os.path.join(tiny_vm["kernel"][:-len("vmlinuz")], "cmdline")) as f:
        cmdline = f.read().strip()
    qemu = procs.spawn([env.QEMU, "-accel", "tcg", "-m", "256", "-nodefaults", "-vga", "std",
                        "-display", "none", "-kernel", tiny_vm["kernel"],
                        "-initrd", tiny_vm["initrd"], "-append", cmdline,
                        "-chardev", f"socket,id=s0,path={serial},server=on,wait=off",
                        "-serial", "chardev:s0",
                        "-qmp", f"unix:{qmp},server=on,wait=off"],
                       os.path.join(workdir, "qemu.log"))
    try:
        procs.wait_until(lambda: os.path.exists(serial) and os.path.exists(qmp), 10,
                         what="QEMU's sockets")
        with socket.socket(socket.AF_UNIX) as console:
            console.connect(serial)
            read_until(console, vm.BANNER.encode(), 60)
            console.sendall(b"echo QWD-$((6*7))\n")
            read_until(console, b"QWD-42", 10)

            monitor = Qmp(qmp)
            shot = os.path.join(workdir, "screen.ppm")
            assert "return" in monitor.execute("screendump", filename=shot)
            width, height, pixels = read_ppm(shot)
            assert (width, height) == (720, 400)  # VGA text mode: the console is on screen
            assert len(set(pixels[i:i + 3] for i in range(0, len(pixels), 3))) > 1, \
                "the VGA screen is blank"
            monitor.close()

            console.sendall(b"poweroff -f\n")
            assert qemu.wait(15) == 0
    finally:
        procs.stop(qemu)


def test_second_build_is_a_cached_no_op(tiny_vm):
    script = os.path.join(env.SRCDIR, "test", "vm", "build-tiny-vm.sh")
    started = time.monotonic()
    result = subprocess.run(["bash", script, vm.CACHE_DIR], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr
    assert time.monotonic() - started < 30  # a rebuild downloads and packs; a no-op doesn't
