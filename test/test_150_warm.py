# SPDX-License-Identifier: Apache-2.0
"""Instant-on (issue 9): warm images of a machine profile, built once by the helper and
restored by each session, against real QEMU (TCG). One warm image is shared by the module;
tests that invalidate it wait for the helper's rebuild before handing it on."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import stop_and_check_helper
from qwdtest import env, procs, vm
from qwdtest.console import Console
from qwdtest.helper import Helper
from qwdtest.qmp import Qmp
from qwdtest.rfb import websocket_rfb_banner

MACHINE = "tiny.qcow2"
PROFILE = {"cpu": 1, "memory_mib": 256}
KEY = "tiny.qcow2-1c-256m-std"
RFB_BANNER = b"RFB 003.008\n"
# The default warm_recipe is shared: guest RAM stays in ram.bin, mapped copy-on-write.
FILES = ["base.qcow2", "meta.json", "ram.bin", "state.bin"]
STREAM_FILES = ["base.qcow2", "meta.json", "state.bin"]


class WarmStack:
    """A private machines dir (a copy of the tiny VM that tests may touch, with its
    tiny.qcow2.warm sidecar) and the helper currently running on the module's state dir."""

    def __init__(self, tiny_vm):
        self.workdir = tempfile.mkdtemp(prefix="qwdw-", dir="/tmp")
        os.chmod(self.workdir, 0o755)
        self.machines_dir = os.path.join(self.workdir, "machines")
        os.mkdir(self.machines_dir)
        self.master = os.path.join(self.machines_dir, MACHINE)
        shutil.copyfile(tiny_vm["qcow2"], self.master)
        with open(self.master + ".warm", "w") as f:
            f.write(f"# readiness of the tiny VM, and warm it when the helper starts\n"
                    f"ready_serial = {vm.BANNER}\nwarm_at_start = yes\n"
                    f"cpu = 1\nmemory_mib = 256\nvideo = std\n")
        self.helper = None

    def start_helper(self, **config):
        self.helper = Helper(self.workdir, self.machines_dir, **config).start()
        return self.helper

    def stop_helper(self):
        """Drops the warm images explicitly (they are kept across sessions and restarts by
        design), then purges, stops and checks the helper like the shared fixture."""
        if self.helper and self.helper.running():
            try:
                self.helper.call("warm_drop")
            except Exception:
                pass
        stop_and_check_helper(self.helper)


@pytest.fixture(scope="module")
def stack(tiny_vm):
    s = WarmStack(tiny_vm)
    s.start_helper()
    yield s
    try:
        s.stop_helper()
    finally:
        left = procs.kill_leftovers(s.workdir)
        shutil.rmtree(s.workdir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


def warm_entry(helper, key=KEY):
    for w in helper.call("warm_list")["warm"]:
        if w["key"] == key:
            return w
    return None


def wait_warm_ready(helper, timeout=90):
    """The shared image, ready (built at helper start, or rebuilt after a test spoiled it)."""
    last = {}

    def ready():
        w = warm_entry(helper) or {}
        last.clear()
        last.update(w)
        assert w.get("state") != "failed", w
        return w if w.get("state") == "ready" else None
    try:
        return procs.wait_until(ready, timeout, interval=0.2, what="the warm image")
    except AssertionError:
        raise AssertionError(f"warm image never ready; last {last}\n{helper.log_text()[-3000:]}")


@pytest.fixture
def warm(stack):
    """The module's helper with a ready warm image of the tiny VM's profile."""
    wait_warm_ready(stack.helper)
    yield stack.helper
    stack.helper.call("purge")


def start(helper, **arguments):
    arguments = {**PROFILE, "owner": "alice", "lifetime_s": 600, **arguments}
    return helper.call("start", machine=MACHINE, **arguments)


def answer_time(helper, **arguments):
    """exec → the guest answers on its console; returns (session, seconds)."""
    t0 = time.monotonic()
    session = start(helper, **arguments)
    console = Console(helper, session["id"], timeout=60)
    assert console.run("echo $((6*7))", timeout=60) == "42"
    console.close()
    return session, time.monotonic() - t0


def stop_and_check(helper, session):
    helper.call("stop", id=session["id"])
    procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 10, what="QEMU to exit")
    assert not os.path.exists(helper.session_dir(session["id"]))


def warm_files(helper):
    directory = os.path.join(helper.state_dir, "warm", KEY)
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


# --- tests -------------------------------------------------------------------------------

def test_restored_start_answers_console_and_rfb_and_stop_keeps_the_image(warm):
    image = warm_entry(warm)
    assert image["state_bytes"] > 1 << 16 and image["argv_hash"]
    assert image["recipe"] == "shared"
    assert warm_files(warm) == FILES
    machines = {m["name"]: m for m in warm.call("machines")["machines"]}
    assert machines[MACHINE]["warm"] is True and machines["tiny.qcow2"]["format"] == "qcow2"

    session, seconds = answer_time(warm)
    status = warm.call("status", id=session["id"])
    assert status["boot"] == "restored"
    assert seconds < 5, f"a restored start took {seconds:.2f} s to answer"
    cmdline = procs.cmdline(session["pid"])
    assert "-incoming defer" in cmdline and "vmgenid,guid=auto" in cmdline
    assert f"mem-path={warm.state_dir}/warm/{KEY}/ram.bin,share=off" in cmdline
    # The session's overlay sits on the warm image's frozen base, never on the master.
    info = json.loads(subprocess.run(
        [env.QEMU_IMG, "info", "--output=json", "-U",
         os.path.join(warm.session_dir(session["id"]), "disk.qcow2")],
        capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"].endswith(f"warm/{KEY}/base.qcow2")
    warm.wait_state(session["id"], "running", timeout=10)
    banner = websocket_rfb_banner(
        f"ws://127.0.0.1:{warm.websockify_port}/?token={session['token']}", timeout=10)
    assert banner == RFB_BANNER
    print(f"\nrestored: exec -> console answer {seconds:.2f} s")

    stop_and_check(warm, session)
    assert warm_files(warm) == FILES
    assert warm_entry(warm)["state"] == "ready"


def metric_values(helper):
    """{(name, frozenset(labels)): value} of the helper's metrics (a histogram: its count)."""
    return {(f["name"], frozenset(s["labels"].items())): s.get("value", s.get("count"))
            for f in helper.call("metrics")["families"] for s in f["samples"]}


def test_metrics_count_restored_starts_and_the_warm_images(warm):
    before = metric_values(warm)
    session = start(warm, requested_at=time.time())
    warm.wait_state(session["id"], "running", timeout=30)
    assert warm.call("status", id=session["id"])["boot"] == "restored"
    after = metric_values(warm)

    def delta(name, **labels):
        key = (name, frozenset(labels.items()))
        return after[key] - before[key]
    assert delta("qwd_session_starts_total", boot="restored", result="ok") == 1
    assert delta("qwd_session_start_seconds", boot="restored") == 1
    assert delta("qwd_session_starts_total", boot="cold", result="ok") == 0
    assert delta("qwd_session_start_seconds", boot="cold") == 0
    # the gauges say what warm_list says
    images = warm.call("warm_list")["warm"]
    ready = [w for w in images if w["state"] == "ready"]
    assert after[("qwd_warm_images", frozenset({("state", "ready")}))] == len(ready) >= 1
    assert after[("qwd_warm_images_bytes", frozenset())] == \
        sum(w["size_bytes"] for w in ready) > 1 << 16
    stop_and_check(warm, session)


def pss_mib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024


def huge_pages_allowed(pid):
    """The process's PR_SET_THP_DISABLE state as the kernel reports it."""
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("THP_enabled:")) == "1"


def anon_huge_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("AnonHugePages:"))


def test_idle_restored_clones_share_the_ram_image(warm):
    """shared recipe: a clone's RAM is the frozen ram.bin mapped copy-on-write; only the
    pages it writes are its own (the stream recipe holds a private copy of all of it), and
    the pages it only reads are shared with the other clones (PSS splits them)."""
    ram = os.path.join(warm.state_dir, "warm", KEY, "ram.bin")
    before = os.stat(ram)
    clones = [answer_time(warm) for _ in range(2)]
    time.sleep(3)  # idle
    for session, seconds in clones:
        pss = pss_mib(session["pid"])
        print(f"\nshared recipe: exec -> console answer {seconds:.2f} s, "
              f"idle clone PSS {pss:.1f} MiB (one of two)")
        assert pss < 64, f"an idle restored clone has {pss:.1f} MiB PSS"
        # warm_clone_hugepages = no: TCG's code buffer would otherwise take 2 MiB pages
        assert not huge_pages_allowed(session["pid"])
        assert anon_huge_kib(session["pid"]) == 0
    for session, _ in clones:
        stop_and_check(warm, session)
    after = os.stat(ram)  # clones never write the image (share=off)
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (
        before.st_mtime_ns, before.st_size, before.st_ino)


def test_two_clones_are_independent(warm):
    first, second = start(warm), start(warm)
    a, b = Console(warm, first["id"]), Console(warm, second["id"])
    assert a.run("echo clone-a > /tmp/marker; cat /tmp/marker") == "clone-a"
    assert b.run("cat /tmp/marker 2>&1 || echo absent").endswith("absent")
    assert b.run("echo clone-b > /tmp/marker; cat /tmp/marker") == "clone-b"
    assert a.run("cat /tmp/marker") == "clone-a"
    a.close()
    b.close()
    for s in (first, second):
        assert warm.call("status", id=s["id"])["boot"] == "restored"
    disks = [os.path.join(warm.session_dir(s["id"]), "disk.qcow2") for s in (first, second)]
    assert os.stat(disks[0]).st_ino != os.stat(disks[1]).st_ino


def restore_pending(qmp_socket):
    """Whether the clone still waits for its state (-incoming defer, nothing sent yet)."""
    with Qmp(qmp_socket) as qmp:
        status = qmp.execute("query-status")["return"]["status"]
        return status == "inmigrate" and "status" not in qmp.execute("query-migrate")["return"]


def test_helper_killed_before_the_restore_resumes_it_after_restart(stack):
    """The helper dies between a clone's exec and its QMP restore (it sends the state on a
    later tick, once QEMU's QMP socket is there): the restarted helper re-adopts the clone,
    sees it still waiting and sends the state, so the session runs restored."""
    helper = stack.helper
    wait_warm_ready(helper)
    for attempt in range(3):
        with helper.connect() as connection:
            session = connection.call("start", machine=MACHINE, owner="alice", **PROFILE)
            helper.kill()  # at once: QEMU has not made its QMP socket yet
        qmp_socket = os.path.join(helper.session_dir(session["id"]), "qmp.sock")
        procs.wait_until(lambda: os.path.exists(qmp_socket), 10, what="the clone's QMP socket")
        caught = restore_pending(qmp_socket)
        helper.start()
        if caught:
            break
        helper.call("purge")  # the restore had gone through already: try again
    else:
        pytest.skip("the helper restored every clone before it was killed")
    assert session["boot"] == "restored"
    status = helper.wait_state(session["id"], ["running"], timeout=20)
    assert status["pid"] == session["pid"] and status["boot"] == "restored"
    assert Console(helper, session["id"]).run("echo $((6*7))", timeout=20) == "42"
    assert "warm restore was still pending" in helper.log_text()
    stop_and_check(helper, session)


def test_other_profile_boots_cold_and_reports_it(warm):
    session = start(warm, memory_mib=320)
    assert session["boot"] == "cold"
    assert "-incoming" not in procs.cmdline(session["pid"])
    assert huge_pages_allowed(session["pid"])  # guest RAM of cold VMs keeps huge pages (KVM)
    stop_and_check(warm, session)


def test_cold_boot_answer_time_for_comparison(warm):
    """One cold boot of the same profile through the same path, for the restored/cold
    numbers of docs/instant-on.md (the warm image is set aside meanwhile)."""
    warm.call("warm_drop", machine=MACHINE)
    session, seconds = answer_time(warm)
    assert warm.call("status", id=session["id"])["boot"] == "cold"
    print(f"\ncold: exec -> console answer {seconds:.2f} s")
    stop_and_check(warm, session)
    # Bring the shared image back for the following tests.
    assert warm.call("warm", machine=MACHINE, **PROFILE)["state"] in ("building", "saving")


def test_corrupt_state_falls_back_to_cold_and_is_rebuilt(warm):
    state = os.path.join(warm.state_dir, "warm", KEY, "state.bin")
    with open(state, "r+b") as f:
        f.write(b"GARBAGE!")
    session = start(warm)
    assert session["boot"] == "cold"
    assert "-incoming" not in procs.cmdline(session["pid"])
    assert warm_entry(warm)["state"] in ("building", "saving")  # refused, being rebuilt
    stop_and_check(warm, session)
    wait_warm_ready(warm)
    with open(state, "rb") as f:
        assert f.read(4) == b"QEVM"


def test_state_that_fails_to_load_falls_back_to_cold_in_place(warm):
    """A state file with its size, mtime and magic intact but broken inside passes the
    identity checks: QEMU exits while loading, and the helper boots the session cold."""
    state = os.path.join(warm.state_dir, "warm", KEY, "state.bin")
    st = os.stat(state)
    with open(state, "r+b") as f:
        f.seek(8)
        f.write(b"\xff" * 64)
    os.utime(state, ns=(st.st_atime_ns, st.st_mtime_ns))
    session = start(warm)
    assert session["boot"] == "restored"
    status = procs.wait_until(
        lambda: (lambda s: s if s["boot"] == "cold" else None)(
            warm.call("status", id=session["id"])), 20, interval=0.1,
        what="the fallback to a cold boot")
    assert status["state"] in ("starting", "running") and status["token"] == session["token"]
    assert status["pid"] != session["pid"] and "-incoming" not in procs.cmdline(status["pid"])
    Console(warm, session["id"]).run("true", timeout=60)  # the cold guest boots and answers
    stop_and_check(warm, status)


def test_missing_state_falls_back_to_cold(warm):
    os.unlink(os.path.join(warm.state_dir, "warm", KEY, "state.bin"))
    session = start(warm)
    assert session["boot"] == "cold"
    stop_and_check(warm, session)


def test_touched_master_is_refused_and_rebuilt_then_restored(warm):
    st = os.stat(warm.config["machines_dir"] + "/" + MACHINE)
    os.utime(warm.config["machines_dir"] + "/" + MACHINE, ns=(st.st_atime_ns,
                                                              st.st_mtime_ns + 10**9))
    session = start(warm)
    assert session["boot"] == "cold"
    stop_and_check(warm, session)
    assert "master image changed" in warm.log_text() or "state file" in warm.log_text()
    wait_warm_ready(warm)
    again = start(warm)
    assert again["boot"] == "restored"
    stop_and_check(warm, again)


def test_changed_command_line_is_refused_at_helper_start_and_rebuilt(stack):
    wait_warm_ready(stack.helper)
    stack.helper.call("purge")
    stack.helper.stop()  # the warm image stays on disk across restarts
    assert warm_files(stack.helper) == FILES
    helper = stack.start_helper(nic_model="e1000")
    # The sidecar says warm_at_start: the loaded image's argv hash no longer matches.
    assert warm_entry(helper)["state"] in ("building", "saving")
    assert "QEMU command line changed" in helper.log_text()
    session = start(helper)
    assert session["boot"] == "cold"
    stop_and_check(helper, session)


def test_stream_recipe_image_is_not_loaded_by_shared_and_back(stack):
    """warm_recipe = stream: the shared image on disk is refused (recipe and argv hash) and
    rebuilt as a full migration stream, which clones load with -incoming fd:N."""
    wait_warm_ready(stack.helper)
    stack.helper.call("purge")
    stack.helper.stop()
    helper = stack.start_helper(warm_recipe="stream")
    assert warm_entry(helper)["state"] in ("building", "saving")
    assert "warm recipe changed" in helper.log_text()
    image = wait_warm_ready(helper)
    assert image["recipe"] == "stream" and image["state_bytes"] > 1 << 20
    assert warm_files(helper) == STREAM_FILES
    session, seconds = answer_time(helper)
    print(f"\nstream recipe: exec -> console answer {seconds:.2f} s, "
          f"idle clone PSS {pss_mib(session['pid']):.1f} MiB")
    assert helper.call("status", id=session["id"])["boot"] == "restored"
    cmdline = procs.cmdline(session["pid"])
    assert "-incoming fd:" in cmdline and "memory-backend" not in cmdline
    stop_and_check(helper, session)
    # Back to the default: the stream image is refused in turn.
    helper.stop()
    helper = stack.start_helper()
    assert warm_entry(helper)["state"] in ("building", "saving")
    assert "warm recipe changed" in helper.log_text()


def test_qwdctl_warm_list_and_drop(stack):
    helper = stack.helper

    def qwdctl(*args):
        return subprocess.run([env.QWDCTL, "--socket", helper.socket, *args],
                              capture_output=True, text=True, timeout=120)
    built = qwdctl("warm", MACHINE, "--cpu", "1", "--memory", "256")
    assert built.returncode == 0, built.stderr
    assert KEY in built.stdout and "ready" in built.stdout
    listed = qwdctl("warm", "--list")
    assert listed.returncode == 0 and KEY in listed.stdout and "ready" in listed.stdout
    assert " size=" in listed.stdout and "MB" in listed.stdout, listed.stdout
    assert qwdctl("warm", "--drop", MACHINE).stdout.strip() == "dropped 1"
    assert qwdctl("warm", "--list").stdout.strip() == ""
    assert warm_files(helper) == []
    refused = qwdctl("warm", "../etc/passwd")
    assert refused.returncode == 1 and refused.stderr.startswith("qwdctl: unknown_machine: ")


def test_warm_budget_drops_the_least_recently_used_and_refuses_an_image_too_big(stack):
    """warm_budget_mib: room for one image of the tiny VM, so a second one pushes the older
    out; then room for none: at start the images over it go, and a build that alone is over it
    fails (and is not rebuilt by itself)."""
    helper = stack.helper
    helper.call("warm", machine=MACHINE, **PROFILE)
    size = wait_warm_ready(helper)["size_bytes"]
    helper.call("purge")
    helper.stop()
    helper = stack.start_helper(warm_budget_mib=(size * 3 // 2) // (1 << 20) + 1)
    assert warm_entry(helper)["state"] == "ready"  # one image fits
    other = "tiny.qcow2-1c-320m-std"
    helper.call("warm", machine=MACHINE, cpu=1, memory_mib=320)
    procs.wait_until(lambda: (warm_entry(helper, other) or {}).get("state") == "ready", 90,
                     interval=0.2, what="the second warm image")
    assert warm_entry(helper) is None  # the older, least recently used one went
    assert f"warm {KEY}: dropped, least recently used" in helper.log_text()
    assert sorted(os.listdir(os.path.join(helper.state_dir, "warm"))) == [other]
    helper.stop()
    helper = stack.start_helper(warm_budget_mib=1)
    assert warm_entry(helper, other) is None  # over the budget at start
    # warm_at_start builds the sidecar's profile, which alone takes more than 1 MiB.
    failed = procs.wait_until(lambda: (lambda w: w if w and w["state"] == "failed" else None)(
        warm_entry(helper)), 90, interval=0.2, what="the build over the budget to fail")
    assert "more than warm_budget_mib (1 MiB)" in failed["problem"]
    assert os.listdir(os.path.join(helper.state_dir, "warm")) == []
    session = start(helper)  # a cold start leaves the failed entry as it is
    assert session["boot"] == "cold" and warm_entry(helper)["state"] == "failed"
    stop_and_check(helper, session)


# A QEMU that made its QMP socket and sent the greeting but has not reached its main loop, so
# it answers no command: what a clone looks like for tens to hundreds of ms after exec, longer
# on a busy or slower host. The wrapper runs it instead of QEMU for restores once SLOW exists.
NOT_YET_STARTED_QEMU = """import socket, sys
args = sys.argv[1:]
path = args[args.index("-qmp") + 1].split(",")[0][len("unix:"):]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
held = []
while True:
    client, _ = server.accept()
    client.sendall(b'{"QMP": {"version": {}, "capabilities": ["oob"]}}\\r\\n')
    held.append(client)
"""


def test_a_clone_still_starting_never_stalls_the_helper(tiny_vm):
    """The restore is sent over QMP as QEMU answers, one line at a time, from the event loop:
    a clone whose QEMU has not reached its main loop yet must not hold up other requests or
    other clones (8 clones starting at once on 2 cores used to queue behind each other's QEMU
    start-up, 500 ms at a time)."""
    s = WarmStack(tiny_vm)
    slow = os.path.join(s.workdir, "SLOW")
    fake = os.path.join(s.workdir, "not-yet-started-qemu.py")
    wrapper = os.path.join(s.workdir, "qemu")
    with open(fake, "w") as f:
        f.write(NOT_YET_STARTED_QEMU)
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\ncase " $* " in *" defer "*) [ -e {slow} ] && '
                f'exec {sys.executable} {fake} "$@";; esac\nexec {env.QEMU} "$@"\n')
    os.chmod(wrapper, 0o755)
    try:
        helper = s.start_helper(qemu_x86_64=wrapper)
        wait_warm_ready(helper)
        open(slow, "w").close()
        session = start(helper)
        assert session["boot"] == "restored"
        procs.wait_until(lambda: os.path.exists(
            os.path.join(helper.session_dir(session["id"]), "qmp.sock")), 10,
            what="the clone's QMP socket")
        slowest = 0
        for _ in range(20):
            started = time.monotonic()
            helper.call("list")
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.05)
        assert slowest < 0.25, f"the helper took {slowest:.3f} s to answer a list"
        assert helper.call("status", id=session["id"])["state"] == "starting"
        os.unlink(slow)
        helper.call("stop", id=session["id"])
        procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 15, what="the fake to go")
        # The same image, with a QEMU that answers: restored as before.
        stop_and_check(helper, answer_time(helper)[0])
    finally:
        try:
            s.stop_helper()
        finally:
            left = procs.kill_leftovers(s.workdir)
            shutil.rmtree(s.workdir, ignore_errors=True)
    assert not left, f"processes left behind: {left}"
