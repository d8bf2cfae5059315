# SPDX-License-Identifier: Apache-2.0
"""Warm-image readiness besides a serial text (docs/instant-on.md): a screen that stays still,
and the QEMU guest agent, which also sets a restored clone's clock. Real QEMU (TCG) and the
tiny VM, whose qemu-ga starts when its machine has the agent channel. Each image costs a boot."""
import os
import shutil
import tempfile
import time

import pytest

from conftest import stop_and_check_helper
from qwdtest import procs, vm
from qwdtest.console import Console
from qwdtest.helper import Helper

PROFILE = {"cpu": 1, "memory_mib": 256}
# The tiny VM's screen stays still for ~9 s while its (quiet) kernel boots under TCG, and a
# blinking cursor does not count as a change: more than that means "booted and idle".
STILL_S = 12


@pytest.fixture(scope="module")
def stack(tiny_vm):
    """A helper over a machines dir with one copy of the tiny VM per readiness kind."""
    workdir = tempfile.mkdtemp(prefix="qwdr-", dir="/tmp")
    os.chmod(workdir, 0o755)
    machines = os.path.join(workdir, "machines")
    os.mkdir(machines)
    sidecars = {"still.qcow2": f"ready_screen_still = {STILL_S}\n",
                "agent.qcow2": "ready_agent = yes\n",
                "plain.qcow2": f"ready_serial = {vm.BANNER}\n"}
    for name, sidecar in sidecars.items():
        shutil.copyfile(tiny_vm["qcow2"], os.path.join(machines, name))
        with open(os.path.join(machines, name + ".warm"), "w") as f:
            f.write(sidecar)
    helper = Helper(workdir, machines).start()
    yield helper
    try:
        if helper.running():
            helper.call("warm_drop")
        stop_and_check_helper(helper)
    finally:
        left = procs.kill_leftovers(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


def build(helper, machine, timeout=120):
    helper.call("warm", machine=machine, **PROFILE)

    def ready():
        image = next(w for w in helper.call("warm_list")["warm"] if w["machine"] == machine)
        assert image["state"] != "failed", image
        return image if image["state"] == "ready" else None
    return procs.wait_until(ready, timeout, interval=0.2, what=f"the warm image of {machine}")


def start(helper, machine):
    return helper.call("start", machine=machine, owner="alice", lifetime_s=600, **PROFILE)


def warm_dir_files(helper, machine):
    key = f"{machine}-1c-256m-std"
    return sorted(os.listdir(os.path.join(helper.state_dir, "warm", key)))


def test_still_screen_readiness_saves_the_booted_guest(stack):
    """Saved once the screen has not changed for STILL_S seconds (the cursor blinks all along):
    after the boot, not during the kernel's silent seconds, so a clone answers at once."""
    image = build(stack, "still.qcow2")
    assert image["build_ms"] >= STILL_S * 1000
    assert "ready on still screen" in stack.log_text()
    assert warm_dir_files(stack, "still.qcow2") == ["base.qcow2", "meta.json", "ram.bin",
                                                   "state.bin"]  # no screen.ppm left
    session = start(stack, "still.qcow2")
    assert session["boot"] == "restored"
    started = time.monotonic()
    # A guest saved mid-boot would need ~9 s more before its shell answered.
    assert Console(stack, session["id"], timeout=5).run("echo $((6*7))", timeout=5) == "42"
    print(f"\nstill screen: build {image['build_ms'] / 1000:.1f} s, restored clone answers "
          f"{time.monotonic() - started:.2f} s after start returned")
    stack.call("stop", id=session["id"])


def test_agent_readiness_and_a_restored_clone_gets_the_hosts_time(stack):
    image = build(stack, "agent.qcow2")
    assert "guest agent" in stack.log_text()
    # The saved guest's clock stops at the save; let it fall behind the host's.
    time.sleep(max(0.0, image["created"] + 6 - time.time()))
    session = start(stack, "agent.qcow2")
    assert session["boot"] == "restored"
    assert "name=org.qemu.guest_agent.0" in procs.cmdline(session["pid"])
    status = procs.wait_until(
        lambda: (lambda s: s if s.get("clock") in ("synced", "not synced") else None)(
            stack.call("status", id=session["id"])), 15, interval=0.1, what="the clock sync")
    assert status["clock"] == "synced", status
    guest = int(Console(stack, session["id"]).run("date +%s", timeout=20))
    assert abs(guest - time.time()) <= 2, f"guest clock {guest}, host {time.time():.0f}"
    assert "guest clock set through the guest agent" in stack.log_text()
    stack.call("stop", id=session["id"])


def test_without_the_agent_a_clone_keeps_the_saved_clock(stack):
    """The comparison that makes the previous test meaningful: a machine without the agent
    channel restores a clock that lags by the image's age, and `status` has no `clock`."""
    image = build(stack, "plain.qcow2")
    time.sleep(max(0.0, image["created"] + 6 - time.time()))
    session = start(stack, "plain.qcow2")
    assert session["boot"] == "restored" and "clock" not in session
    assert "guest_agent" not in procs.cmdline(session["pid"])
    guest = int(Console(stack, session["id"]).run("date +%s", timeout=20))
    assert time.time() - guest >= 4, f"guest clock {guest}, host {time.time():.0f}"
    assert "clock" not in stack.call("status", id=session["id"])
    stack.call("stop", id=session["id"])


def test_cold_sessions_of_an_agent_machine_have_the_channel_too(stack):
    """The channel is part of the machine's device set, so every VM has it (else the argv hash
    of cold and restored VMs would differ); only restored ones get their clock set."""
    session = stack.call("start", machine="agent.qcow2", owner="alice", cpu=1, memory_mib=320)
    assert session["boot"] == "cold"
    assert "guest_agent.0" in procs.cmdline(session["pid"])
    assert "clock" not in stack.call("status", id=session["id"])
    stack.call("stop", id=session["id"])
