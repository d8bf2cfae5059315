# SPDX-License-Identifier: Apache-2.0
"""aarch64 guests (issue 20): a machine whose sidecar says `arch = aarch64` runs with
qemu-system-aarch64 (virt machine, UEFI, virtio-gpu or ramfb, USB input) under TCG on this x86
host; the tiny aarch64 VM (Debian arm64 kernel + busybox) boots from its disk and its ISO to
its banner, and its screen is read through the websocket; its warm image restores with the
screen intact, while ramfb profiles, whose screen QEMU 7.2 does not save, get none."""
import os
import shutil
import subprocess
import tempfile

import pytest

from qwdtest import procs, rfb, vm
from qwdtest.console import Console
from qwdtest.helper import HelperError, wait_for_serial
from test_300_module import Browser

ARM_DISK = "tiny-arm64.qcow2"
ARM_ISO = "tiny-arm64.iso"
BANNER_TIMEOUT = 120
KEY = "tiny-arm64.qcow2-1c-256m-virtio"
AARCH64_QEMU = shutil.which("qemu-system-aarch64") or "/usr/bin/qemu-system-aarch64"
FIRMWARE = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"

pytestmark = pytest.mark.skipif(
    not (os.access(AARCH64_QEMU, os.X_OK) and os.path.exists(FIRMWARE)),
    reason="needs qemu-system-arm and qemu-efi-aarch64 (scripts/install-deps installs them)")


@pytest.fixture(scope="module")
def tiny_vm_arm64():
    return vm.tiny_vm_arm64()


@pytest.fixture(scope="module")
def machines_dir(tiny_vm, tiny_vm_arm64):
    """The aarch64 tiny VM as a disk and as an ISO, each with a sidecar naming its arch (and,
    for the disk, when a template is ready to be saved), beside the x86_64 one."""
    path = tempfile.mkdtemp(prefix="qwdm-", dir="/tmp")
    os.chmod(path, 0o755)
    vm.place(tiny_vm["qcow2"], os.path.join(path, "tiny.qcow2"))
    vm.place(tiny_vm_arm64["qcow2"], os.path.join(path, ARM_DISK))
    vm.place(tiny_vm_arm64["iso"], os.path.join(path, ARM_ISO))
    with open(os.path.join(path, ARM_DISK + ".warm"), "w") as f:
        f.write(f"arch = aarch64\nready_serial = {vm.BANNER}\n")
    with open(os.path.join(path, ARM_ISO + ".warm"), "w") as f:
        f.write("arch = aarch64\n")
    with open(os.path.join(path, ARM_DISK + ".txt"), "w") as f:
        f.write("Tiny busybox test VM (aarch64)\n")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ws_url(helper, session):
    return f"ws://127.0.0.1:{helper.websockify_port}/?token={session['token']}"


def screen(helper, session):
    width, height, colours = rfb.websocket_rfb_screen(ws_url(helper, session))
    return width, height, colours


def assert_gone(helper, session):
    procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 10, what="QEMU to exit")
    assert not os.path.exists(helper.session_dir(session["id"]))


def test_aarch64_machines_are_listed_with_their_arch(helper):
    machines = {m["name"]: m for m in helper.call("machines")["machines"]}
    assert machines[ARM_DISK]["arch"] == "aarch64" and "problem" not in machines[ARM_DISK]
    assert machines[ARM_ISO]["arch"] == "aarch64" and machines[ARM_ISO]["format"] == "iso"
    assert machines["tiny.qcow2"]["arch"] == "x86_64"
    load = helper.call("load")
    assert load["arch"] == os.uname().machine


@pytest.mark.boot
def test_aarch64_disk_and_iso_boot_to_their_banner_and_show_their_screen(helper):
    disk = helper.call("start", machine=ARM_DISK, owner="alice", memory_mib=256)
    iso = helper.call("start", machine=ARM_ISO, owner="alice", memory_mib=256, video="std")
    try:
        cmdline = procs.cmdline(disk["pid"])
        assert cmdline.startswith(AARCH64_QEMU + " ")
        assert "-machine virt-7.2,gic-version=max -accel tcg -cpu max" in cmdline
        assert f"-bios {FIRMWARE} -device virtio-gpu-pci" in cmdline  # default video: virtio
        assert "usb-tablet" in cmdline and "i440fx" not in cmdline and "-vga" not in cmdline
        iso_cmdline = procs.cmdline(iso["pid"])
        assert "-device ramfb" in iso_cmdline
        assert "scsi-cd,bus=qwd-scsi.0,drive=qwd-cd,bootindex=0" in iso_cmdline
        for session in (disk, iso):
            wait_for_serial(helper, session["id"], vm.BANNER, timeout=BANNER_TIMEOUT)
            helper.wait_state(session["id"], "running")
        # the screens, read as noVNC reads them: through websockify, from QEMU's VNC socket
        width, height, colours = procs.wait_until(
            lambda: (lambda s: s if s[2] > 1 else None)(screen(helper, disk)), 20,
            interval=0.5, what="the virtio-gpu screen to show the console")
        assert (width, height) == (1280, 800) and colours > 1
        width, height, colours = procs.wait_until(
            lambda: (lambda s: s if s[2] > 1 else None)(screen(helper, iso)), 20,
            interval=0.5, what="the ramfb screen to show the console")
        assert (width, height) == (800, 600) and colours > 1
    finally:
        for session in (disk, iso):
            helper.call("stop", id=session["id"])
    for session in (disk, iso):
        assert_gone(helper, session)


def test_aarch64_video_is_std_or_virtio(helper):
    with pytest.raises(HelperError) as refused:
        helper.call("start", machine=ARM_DISK, owner="alice", video="qxl")
    assert refused.value.code == "bad_argument" and refused.value.data["field"] == "video"
    assert "aarch64" in refused.value.message


@pytest.mark.boot
def test_aarch64_warm_image_restores_with_its_screen(make_helper_here):
    h = make_helper_here(warm_auto="yes")
    try:
        image = h.call("warm", machine=ARM_DISK, memory_mib=256)
        assert image["key"] == KEY and image["video"] == "virtio"
        ready = procs.wait_until(
            lambda: (lambda w: w if w and w["state"] in ("ready", "failed") else None)(
                next((w for w in h.call("warm_list")["warm"] if w["key"] == KEY), None)),
            180, interval=0.5, what="the aarch64 warm image")
        assert ready["state"] == "ready", ready
        session = h.call("start", machine=ARM_DISK, owner="alice", memory_mib=256)
        assert session["boot"] == "restored"
        h.wait_state(session["id"], "running", timeout=10)
        width, height, colours = screen(h, session)
        assert (width, height) == (1280, 800) and colours > 1, "the restored screen is blank"
        console = Console(h, session["id"])
        assert console.run("uname -m", timeout=30) == "aarch64"  # the restored guest runs
        console.close()
        h.call("stop", id=session["id"])
        assert_gone(h, session)

        # ramfb (video std) keeps no state in QEMU 7.2: no warm image, asked for or automatic
        with pytest.raises(HelperError) as refused:
            h.call("warm", machine=ARM_DISK, memory_mib=256, video="std")
        assert refused.value.code == "start_failed" and "ramfb" in refused.value.message
        cold = h.call("start", machine=ARM_DISK, owner="alice", memory_mib=256, video="std")
        assert cold["boot"] == "cold"
        procs.wait_until(lambda: "QWD05500" in h.log_text(), 10, what="the skip to be logged")
        h.call("stop", id=cold["id"])
        assert not [w for w in h.call("warm_list")["warm"] if w["video"] == "std"]
    finally:
        h.call("purge")
        h.call("warm_drop")


@pytest.fixture
def make_helper_here(workdir, machines_dir):
    """Helpers on this module's machines, stopped and checked for leftovers at teardown."""
    from conftest import stop_and_check_helper
    from qwdtest.helper import Helper
    started = []

    def make(**overrides):
        h = Helper(workdir, machines_dir, **overrides).start()
        started.append(h)
        return h
    yield make
    for h in started:
        stop_and_check_helper(h)


def test_without_an_aarch64_qemu_its_machines_say_so(make_helper_here):
    h = make_helper_here(qemu_aarch64="/nonexistent/qemu-system-aarch64")
    machines = {m["name"]: m for m in h.call("machines")["machines"]}
    assert "no QEMU for aarch64 guests" in machines[ARM_DISK]["problem"]
    assert "qemu-system-arm" in machines[ARM_DISK]["problem"]
    assert "problem" not in machines["tiny.qcow2"]
    with pytest.raises(HelperError) as refused:
        h.call("start", machine=ARM_DISK, owner="alice")
    assert refused.value.code == "unusable_machine"


def test_the_form_shows_the_aarch64_machine(httpd):
    status, form = Browser(httpd).get("")
    assert status == 200
    assert (f'<option value="{ARM_DISK}" data-arch="aarch64">{ARM_DISK} (aarch64) - Tiny busybox '
            "test VM (aarch64)</option>") in form


def test_an_unknown_arch_is_a_problem_of_its_machine(make_helper_here, machines_dir):
    odd = os.path.join(machines_dir, "odd.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", odd, "16M"], check=True)
    with open(odd + ".warm", "w") as f:
        f.write("arch = riscv64\n")
    try:
        h = make_helper_here()
        machine = {m["name"]: m for m in h.call("machines")["machines"]}["odd.qcow2"]
        assert machine["arch"] == "riscv64"
        assert 'arch "riscv64" is not one of x86_64 and aarch64' in machine["problem"]
    finally:
        os.unlink(odd)
        os.unlink(odd + ".warm")
