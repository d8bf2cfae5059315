# SPDX-License-Identifier: Apache-2.0
"""qwd-helper and qwdctl against real QEMU (TCG) and websockify: sessions from start to
cleanup, re-adoption after a helper crash, limits under concurrent starts, and bad input."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import websocket

from conftest import stop_and_check_helper
from qwdtest import env, procs, vm
from qwdtest.helper import Helper, HelperError, wait_for_serial
from qwdtest.qmp import Qmp
from qwdtest.rfb import websocket_rfb_banner

RFB_BANNER = b"RFB 003.008\n"


@pytest.fixture
def make_helper(workdir, machines_dir):
    """Starts helpers with extra configuration; each one is purged, stopped and checked for
    leftovers at teardown, like the shared `helper` fixture."""
    started = []

    def make(machines=None, **overrides):
        h = Helper(workdir, machines or machines_dir, **overrides)
        if "state_dir" in overrides:
            h.state_dir = overrides["state_dir"]
        started.append(h.start())
        return h
    yield make
    for h in started:
        stop_and_check_helper(h)


def start_tiny(helper, machine="tiny.qcow2", **arguments):
    arguments.setdefault("owner", "alice")
    return helper.call("start", machine=machine, **arguments)


def ws_url(helper, token):
    return f"ws://127.0.0.1:{helper.websockify_port}/?token={token}"


def token_file(helper, token):
    return os.path.join(helper.state_dir, "tokens", token)


def assert_session_gone(helper, session):
    """Nothing of an ended session may remain: process, session dir, token file."""
    procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 10,
                     what=f"QEMU pid {session['pid']} to exit")
    assert not os.path.exists(helper.session_dir(session["id"]))
    assert not os.path.exists(token_file(helper, session["token"]))
    assert procs.processes_mentioning(session["id"]) == []


def qmp_command(path, command):
    """Runs one QMP command on a VM's QMP socket, as a user of the VM might."""
    with Qmp(path, timeout=5) as qmp:
        qmp.execute(command)


# --- a session's life ---------------------------------------------------------------------

def test_start_answers_rfb_through_websockify_and_stop_leaves_nothing(helper):
    session = start_tiny(helper, cpu=1, memory_mib=256)
    assert len(session["id"]) == 32 and int(session["id"], 16) >= 0
    assert len(session["token"]) == 22
    assert session["state"] in ("starting", "running")
    assert session["owner"] == "alice" and session["machine"] == "tiny.qcow2"
    assert session["vnc_socket"] == os.path.join(helper.session_dir(session["id"]), "vnc.sock")
    # websockify reaches the display through the session's relay (test_171_relay.py)
    assert session["relay_socket"] == os.path.join(helper.session_dir(session["id"]), "relay.sock")
    with open(token_file(helper, session["token"])) as f:
        assert f.read().strip() == f"{session['token']}: unix_socket:{session['relay_socket']}"
    # The master is only a backing file: QEMU writes to the session's own overlay.
    cmdline = procs.cmdline(session["pid"])
    assert f"-name qwd-{session['id']}" in cmdline
    assert "-accel tcg" in cmdline and "-machine pc-i440fx-7.2" in cmdline
    assert "tiny.qcow2,format" not in cmdline and "disk.qcow2,format=qcow2" in cmdline

    helper.wait_state(session["id"], "running", timeout=10)
    assert websocket_rfb_banner(ws_url(helper, session["token"]), timeout=10) == RFB_BANNER
    assert _banner_or_none(ws_url(helper, "A" * 22)) is None  # unknown token: closed
    # what the module's listings reconcile with: four fields a session
    assert helper.call("list", brief=True)["sessions"] == [
        {"id": session["id"], "state": "running", "boot": "cold", "expires": session["expires"]}]
    with pytest.raises(HelperError) as refused:
        helper.call("list", brief="yes")
    assert refused.value.code == "bad_argument" and refused.value.data["field"] == "brief"

    stopped = helper.call("stop", id=session["id"])
    assert stopped["state"] == "ended" and stopped["ended_reason"] == "stopped"
    assert_session_gone(helper, session)
    assert helper.call("status", id=session["id"])["ended_reason"] == "stopped"
    assert helper.call("list")["sessions"] == []


def test_guest_boots_to_its_serial_banner(helper):
    session = start_tiny(helper, lifetime_s=300)
    helper.wait_state(session["id"], "running", timeout=10)
    wait_for_serial(helper, session["id"], vm.BANNER, timeout=90)
    helper.call("stop", id=session["id"])
    assert_session_gone(helper, session)


def test_vm_ending_by_itself_is_reaped_and_cleaned(helper):
    clean = start_tiny(helper)
    crashing = start_tiny(helper)
    for s in (clean, crashing):
        helper.wait_state(s["id"], "running", timeout=10)
    qmp_command(os.path.join(helper.session_dir(clean["id"]), "qmp.sock"), "quit")
    os.kill(crashing["pid"], signal.SIGKILL)
    assert helper.wait_state(clean["id"], "ended")["ended_reason"] == "poweroff"
    assert helper.wait_state(crashing["id"], "ended")["ended_reason"] == "crashed"
    for s in (clean, crashing):
        assert_session_gone(helper, s)


def test_lifetime_expiry_stops_and_cleans(helper):
    session = start_tiny(helper, lifetime_s=2)
    assert session["expires"] - session["created"] == 2
    ended = helper.wait_state(session["id"], "ended", timeout=15)
    assert ended["ended_reason"] == "expired"
    assert_session_gone(helper, session)


def test_iso_gets_a_readonly_cdrom_and_a_scratch_disk(helper):
    session = start_tiny(helper, machine="tiny.iso")
    helper.wait_state(session["id"], "running", timeout=10)
    cmdline = procs.cmdline(session["pid"])
    assert "tiny.iso,format=raw,media=cdrom,readonly=on" in cmdline
    info = subprocess.run([env.QEMU_IMG, "info", "--output=json", "-U",
                           os.path.join(helper.session_dir(session["id"]), "disk.qcow2")],
                          capture_output=True, text=True, check=True)
    disk = json.loads(info.stdout)
    assert disk["virtual-size"] == 64 * 1024 * 1024 and "backing-filename" not in disk
    helper.call("stop", id=session["id"])
    assert_session_gone(helper, session)


def test_other_image_formats_are_detected_and_start(make_helper, workdir, tiny_vm):
    machines = os.path.join(workdir, "machines")
    os.mkdir(machines)
    for fmt, name in (("vmdk", "t.vmdk"), ("vdi", "t.vdi"), ("vpc", "t.vhd"),
                      ("vhdx", "t.vhdx"), ("raw", "t.raw")):
        vm.convert(tiny_vm["qcow2"], fmt, os.path.join(machines, name))
    # The tiny disk is a hybrid ISO: named .raw it is a disk (docs/machines.md). A blank disk
    # is raw.
    subprocess.run([env.QEMU_IMG, "create", "-q", "-f", "raw",
                    os.path.join(machines, "t.img"), "16M"], check=True)
    h = make_helper(machines=machines)
    listed = {m["name"]: m["format"] for m in h.call("machines")["machines"]}
    assert listed == {"t.vmdk": "vmdk", "t.vdi": "vdi", "t.vhd": "vpc", "t.vhdx": "vhdx",
                      "t.raw": "raw", "t.img": "raw"}
    for name in ("t.vdi", "t.img"):
        session = start_tiny(h, machine=name)
        h.wait_state(session["id"], "running", timeout=10)
        h.call("stop", id=session["id"])
        assert_session_gone(h, session)


def test_machines_lists_formats_sizes_and_descriptions(helper):
    machines = {m["name"]: m for m in helper.call("machines")["machines"]}
    assert set(machines) == {"tiny.qcow2", "tiny.iso"}
    assert machines["tiny.qcow2"]["format"] == "qcow2"
    assert machines["tiny.qcow2"]["description"] == "Tiny busybox test VM (disk)"
    assert machines["tiny.iso"]["format"] == "iso"
    assert machines["tiny.iso"]["virtual_size"] == os.path.getsize(
        os.path.join(helper.config["machines_dir"], "tiny.iso"))


# --- the helper's own life ----------------------------------------------------------------

def test_a_stopping_helper_counts_only_the_vms_it_leaves_running(helper):
    """SIGTERM leaves VMs running for the next helper and says how many: an ended session it
    still remembers (ended_keep) is not one of them."""
    ended = start_tiny(helper)
    helper.call("stop", id=ended["id"])
    kept = start_tiny(helper)
    helper.wait_state(kept["id"], "running", timeout=10)
    helper.stop()
    assert "stopped; 1 session(s) left running for the next helper" in helper.log_text()
    helper.start()
    helper.call("purge")
    helper.stop()
    assert "stopped; 0 session(s) left running for the next helper" in helper.log_text()
    helper.start()


def test_helper_killed_then_restarted_readopts_running_vm(helper):
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running", timeout=10)
    helper.kill()
    assert procs.pid_alive(session["pid"]), "a VM must outlive its helper"
    helper.start()
    status = helper.wait_state(session["id"], "running", timeout=10)
    assert status["pid"] == session["pid"] and status["token"] == session["token"]
    # The new websockify may need a retry to bind while the old one is still going away.
    banner = procs.wait_until(
        lambda: _banner_or_none(ws_url(helper, session["token"])), 10, interval=0.3,
        what="websockify to answer")
    assert banner == RFB_BANNER
    # Adopted VMs are no longer children: their end is still noticed (pidfd).
    os.kill(session["pid"], signal.SIGTERM)
    assert helper.wait_state(session["id"], "ended")["state"] == "ended"
    assert_session_gone(helper, session)


def test_helper_restart_cleans_records_of_vms_that_died_meanwhile(helper):
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running", timeout=10)
    helper.kill()
    os.kill(session["pid"], signal.SIGKILL)
    procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 10, what="QEMU to die")
    assert os.path.exists(helper.session_dir(session["id"]))
    helper.start()
    assert not os.path.exists(helper.session_dir(session["id"]))
    assert not os.path.exists(token_file(helper, session["token"]))
    assert helper.call("list")["sessions"] == []


def test_sigterm_stops_websockify_but_leaves_vms_running(helper):
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running", timeout=10)
    helper.stop()
    assert procs.pid_alive(session["pid"])
    assert procs.processes_mentioning(os.path.join(helper.state_dir, "tokens")) == []
    assert not os.path.exists(helper.socket)
    helper.start()
    helper.wait_state(session["id"], "running", timeout=10)
    helper.call("stop", id=session["id"])
    assert_session_gone(helper, session)


def websockify_pids(helper):
    """websockify's main process, the helper's child: its per-connection children have the
    same command line, and outlive a killed parent for a moment (then init is their parent)."""
    marker = os.path.join(helper.state_dir, "tokens")
    main = []
    for pid, _ in procs.processes_mentioning(marker):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:  # a connection child that just left
            continue
        if parent == helper.process.pid:
            main.append(pid)
    return main


def test_websockify_is_restarted_when_it_dies(helper):
    first = websockify_pids(helper)
    assert len(first) == 1
    os.kill(first[0], signal.SIGKILL)
    procs.wait_until(lambda: websockify_pids(helper) not in ([], first), 10,
                     what="a new websockify")
    assert "websockify exited" in helper.log_text()
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running", timeout=10)
    banner = procs.wait_until(
        lambda: _banner_or_none(ws_url(helper, session["token"])), 10, interval=0.3,
        what="websockify to answer again")
    assert banner == RFB_BANNER


def _banner_or_none(url):
    try:
        return websocket_rfb_banner(url, timeout=3) or None
    except (OSError, websocket.WebSocketException):
        return None


# --- concurrency and limits ---------------------------------------------------------------

def concurrent_starts(helper, count):
    """count clients start a VM at once; returns [(session or None, error or None)]."""
    results = [None] * count
    barrier = threading.Barrier(count)

    def one(i):
        with helper.connect() as connection:
            barrier.wait()
            try:
                results[i] = (connection.call("start", machine="tiny.qcow2", owner=f"u{i}"),
                              None)
            except HelperError as error:
                results[i] = (None, error)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_five_concurrent_starts_all_run(helper):
    results = concurrent_starts(helper, 5)
    sessions = [s for s, _ in results if s]
    assert [e for _, e in results if e] == []
    assert len({s["id"] for s in sessions}) == 5 and len({s["token"] for s in sessions}) == 5
    for s in sessions:
        helper.wait_state(s["id"], "running", timeout=20)
    assert helper.call("load")["sessions"] == 5
    assert helper.call("purge") == {"stopped": 5}
    for s in sessions:
        assert_session_gone(helper, s)


def test_twenty_concurrent_starts_surplus_get_limit_reached(make_helper):
    h = make_helper(max_sessions=4)
    results = concurrent_starts(h, 20)
    sessions = [s for s, _ in results if s]
    errors = [e for _, e in results if e]
    assert len(sessions) == 4 and len(errors) == 16
    assert {(e.code, e.data.get("limit")) for e in errors} == {("limit_reached", "max_sessions")}
    assert len(h.call("list")["sessions"]) == 4


@pytest.mark.parametrize("limit,overrides,arguments", [
    ("max_vcpus", {"max_vcpus": 2}, {"cpu": 3}),
    ("max_memory_mib", {"max_memory_mib": 300}, {"memory_mib": 512}),
    ("max_load", {"max_load": 0.000001}, {}),
])
def test_other_limits_are_named(make_helper, limit, overrides, arguments):
    h = make_helper(**overrides)
    if limit == "max_load" and h.call("load")["load1"] == 0:
        pytest.skip("the host is completely idle: no load to exceed")
    with pytest.raises(HelperError) as refused:
        start_tiny(h, **arguments)
    assert refused.value.code == "limit_reached" and refused.value.data["limit"] == limit


# --- bad input ----------------------------------------------------------------------------

@pytest.fixture
def strict_helper(make_helper, workdir, machines_dir):
    """A helper with a 1 s client timeout and a machines dir holding a symlink that leaves it,
    one that stays inside, and a file that is not an image."""
    machines = os.path.join(workdir, "machines")
    os.mkdir(machines)
    vm.place(os.path.join(machines_dir, "tiny.qcow2"), os.path.join(machines, "tiny.qcow2"))
    outside = os.path.join(workdir, "outside.qcow2")
    vm.place(os.path.join(machines_dir, "tiny.qcow2"), outside)
    os.symlink(outside, os.path.join(machines, "escape.qcow2"))
    os.symlink("tiny.qcow2", os.path.join(machines, "alias.qcow2"))
    with open(os.path.join(machines, "notes.txt"), "w") as f:
        f.write("not a machine\n")
    return make_helper(machines=machines, client_timeout=1)


@pytest.mark.parametrize("machine", [
    "nope.qcow2", "../tiny.qcow2", "/etc/passwd", "tiny.qcow2/..", ".tiny.qcow2",
    "escape.qcow2", "notes.txt", "", "a\nb", 5,
])
def test_unknown_or_path_like_machines_are_refused(strict_helper, machine):
    with pytest.raises(HelperError) as refused:
        start_tiny(strict_helper, machine=machine)
    expected = "bad_argument" if not isinstance(machine, str) else "unknown_machine"
    assert refused.value.code == expected, refused.value.data
    assert os.listdir(os.path.join(strict_helper.state_dir, "sessions")) == []


def test_symlink_inside_the_machines_dir_is_listed(strict_helper):
    names = [m["name"] for m in strict_helper.call("machines")["machines"]]
    assert names == ["alias.qcow2", "tiny.qcow2"]


@pytest.mark.parametrize("field,value", [
    ("cpu", 0), ("cpu", 5), ("cpu", "2"), ("memory_mib", 10), ("memory_mib", 4096),
    ("lifetime_s", 0), ("lifetime_s", 86401), ("video", "vmware"), ("owner", ""),
    ("owner", "x" * 65), ("owner", None), ("oneshot", "yes"),
])
def test_arguments_out_of_bounds_are_refused(helper, field, value):
    arguments = {"machine": "tiny.qcow2", "owner": "alice", field: value}
    if value is None:
        del arguments[field]
    with pytest.raises(HelperError) as refused:
        helper.call("start", **arguments)
    assert refused.value.code == "bad_argument" and refused.value.data["field"] == field
    if field in ("cpu", "memory_mib", "lifetime_s"):
        assert refused.value.data["min"] >= 1 and refused.value.data["max"] >= 1
    assert helper.call("list")["sessions"] == []


def test_unknown_ids_are_not_found(helper):
    for op in ("status", "stop"):
        with pytest.raises(HelperError) as refused:
            helper.call(op, id="0" * 32)
        assert refused.value.code == "not_found"


def raw_exchange(helper, data, hello=True):
    """Sends data on a fresh connection and returns the replies until the helper closes it or
    goes quiet for 3 s."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(3)
        s.connect(helper.socket)
        if hello:
            data = b'{"execute":"hello","arguments":{"version":1},"id":0}\n' + data
        received = b""
        try:
            # The helper may close before taking all of an oversized message.
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass
    messages = [json.loads(line) for line in received.splitlines()]
    assert "qwd" in messages[0] and messages[0]["qwd"]["version"] == 1
    return messages[2:] if hello else messages[1:]


def test_malformed_json_gets_bad_json_and_the_connection_goes_on(helper):
    replies = raw_exchange(helper, b'{"execute": \n[1,2]\n{"arguments":{}}\n'
                                   b'{"execute":"list","id":9}\n')
    assert [r["error"]["code"] for r in replies[:3]] == ["bad_json"] * 3
    assert replies[3]["id"] == 9 and replies[3]["return"]["sessions"] == []


def test_oversized_message_gets_too_large_and_is_closed(helper):
    huge = b'{"execute":"list","arguments":{"x":"' + b"a" * 70000 + b'"}}\n'
    replies = raw_exchange(helper, huge + b'{"execute":"list","id":1}\n')
    assert [r["error"]["code"] for r in replies] == ["too_large"]
    assert helper.call("list")["sessions"] == []


def test_unknown_op_and_requests_before_hello(helper):
    replies = raw_exchange(helper, b'{"execute":"list","id":1}\n'
                                   b'{"execute":"hello","arguments":{"version":1},"id":2}\n'
                                   b'{"execute":"reboot","id":3}\n', hello=False)
    assert replies[0]["error"]["code"] == "no_hello" and replies[0]["id"] == 1
    assert replies[1]["return"]["version"] == 1
    assert replies[2]["error"]["code"] == "unknown_op" and replies[2]["id"] == 3


def test_wrong_protocol_version_is_refused_and_closed(helper):
    replies = raw_exchange(helper, b'{"execute":"hello","arguments":{"version":2},"id":1}\n'
                                   b'{"execute":"list","id":2}\n', hello=False)
    assert len(replies) == 1
    assert replies[0]["error"]["code"] == "bad_version"
    assert replies[0]["error"]["supported"] == [1]


def test_silent_client_times_out_and_others_are_served_meanwhile(strict_helper):
    with socket.socket(socket.AF_UNIX) as silent:
        silent.settimeout(5)
        silent.connect(strict_helper.socket)
        started = time.monotonic()
        assert strict_helper.call("load")["sessions"] == 0  # not blocked by the silent one
        data = b""
        while True:
            chunk = silent.recv(65536)
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - started
    lines = [json.loads(line) for line in data.splitlines()]
    assert lines[-1]["error"]["code"] == "timeout"
    assert 0.5 < waited < 4


def test_an_idle_connection_is_closed_without_a_line_a_partial_request_with_a_warning(
        strict_helper):
    """A connection that sent nothing since its last request (one a client keeps for reuse,
    as mod_qwd does) is closed at client_timeout as routine: the timeout reply, no log line.
    One that began a request and did not finish it gets the same reply and a warning."""
    def closed_after(sent):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(strict_helper.socket)
            s.sendall(sent)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return [json.loads(line) for line in data.splitlines()]
                data += chunk
    hello = b'{"execute":"hello","arguments":{"version":1},"id":0}\n'
    assert closed_after(hello)[-1]["error"]["code"] == "timeout"
    log = strict_helper.log_text()
    assert "no complete request" not in log and "QWD05101" not in log, log
    assert closed_after(hello + b'{"execute":"li')[-1]["error"]["code"] == "timeout"
    warnings = [line for line in strict_helper.log_text().splitlines() if "QWD05101" in line]
    assert len(warnings) == 1 and "14 bytes of a request" in warnings[0], warnings
    assert "no complete request" not in strict_helper.log_text()


def test_client_disconnecting_mid_request_harms_nothing(helper):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(helper.socket)
        s.recv(65536)  # the greeting
        s.sendall(b'{"execute":"hello","arguments":{"version":1},"id":0}\n{"execute":"sta')
    # A complete start whose client leaves before the reply: the session exists and stops.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(helper.socket)
        s.recv(65536)  # the greeting: the helper has taken the connection
        s.sendall(b'{"execute":"hello","arguments":{"version":1},"id":0}\n'
                  b'{"execute":"start","arguments":{"machine":"tiny.qcow2","owner":"gone"}}\n')
    sessions = procs.wait_until(lambda: helper.call("list")["sessions"], 10,
                                what="the orphaned start to be listed")
    assert [s["owner"] for s in sessions] == ["gone"]
    helper.call("stop", id=sessions[0]["id"])
    assert_session_gone(helper, sessions[0])
    assert "disconnected" in helper.log_text()


def test_socket_path_too_long_is_start_failed(make_helper, workdir):
    state = os.path.join(workdir, "s" * 70)
    h = make_helper(state_dir=state)
    with pytest.raises(HelperError) as refused:
        start_tiny(h)
    assert refused.value.code == "start_failed" and "longer" in refused.value.message
    assert os.listdir(os.path.join(state, "sessions")) == []


def test_a_failing_qemu_img_is_start_failed_and_leaves_nothing(make_helper, workdir):
    """qemu-img runs as a child the loop watches; the start's reply waits for it, and its
    failure is the start's."""
    h = make_helper(qemu_img="/bin/false")
    with pytest.raises(HelperError) as refused:
        start_tiny(h)
    assert refused.value.code == "start_failed"
    assert refused.value.data["reason"] == "/bin/false failed (exit status 1)"
    assert h.call("list")["sessions"] == []
    assert os.listdir(os.path.join(h.state_dir, "sessions")) == []
    assert os.listdir(os.path.join(h.state_dir, "tokens")) == []


def test_a_session_stopped_while_its_overlay_is_made_ends_and_its_start_fails(make_helper,
                                                                                workdir):
    """The overlay is made by a qemu-img child the loop watches (here a slow one): a stop that
    comes meanwhile ends the session without a VM; its start is start_failed; nothing stays."""
    slow_qemu_img = os.path.join(workdir, "slow-qemu-img")
    with open(slow_qemu_img, "w") as f:
        f.write(f"#!/bin/sh\nsleep 1\nexec {env.QEMU_IMG} \"$@\"\n")
    os.chmod(slow_qemu_img, 0o755)
    h = make_helper(qemu_img=slow_qemu_img)
    with h.connect() as starting, h.connect() as other:
        starting.send_line(json.dumps({"execute": "start", "arguments": {
            "machine": "tiny.qcow2", "owner": "alice"}, "id": 1}) + "\n")
        listed = procs.wait_until(lambda: other.call("list")["sessions"], 5, interval=0.05,
                                  what="the start to be listed")
        assert listed[0]["state"] == "starting" and listed[0]["pid"] == 0
        stopped = other.call("stop", id=listed[0]["id"])
        failed = starting.read_message()
    assert stopped["state"] == "ended" and stopped["ended_reason"] == "stopped"
    assert failed["id"] == 1 and failed["error"]["code"] == "start_failed"
    assert "before its VM started" in failed["error"]["message"]
    assert h.call("list")["sessions"] == []
    assert os.listdir(os.path.join(h.state_dir, "sessions")) == []
    assert procs.processes_mentioning(listed[0]["id"]) == []


def test_a_stop_waiting_for_qmp_does_not_hold_up_other_clients(helper):
    """QMP serves one client at a time: while another client holds a VM's QMP socket, a stop
    gets no greeting until its QMP deadline (500 ms) passes and then sends SIGTERM. The helper
    answers everyone else meanwhile: it never waits for a VM."""
    session, other = start_tiny(helper), start_tiny(helper)
    for s in (session, other):
        helper.wait_state(s["id"], "running", timeout=10)
    stop_requests = re.compile(r"request uid \d+ pid \d+: stop$", re.M)
    with socket.socket(socket.AF_UNIX) as holder, helper.connect() as stopping, \
            helper.connect() as asking:
        holder.connect(os.path.join(helper.session_dir(session["id"]), "qmp.sock"))
        assert b'"QMP"' in holder.recv(65536)  # the greeting: QMP is this client's now
        stopping.send_line(json.dumps({"execute": "stop", "arguments": {"id": session["id"]},
                                       "id": 1}) + "\n")
        procs.wait_until(lambda: stop_requests.search(helper.log_text()), 5, interval=0.005,
                         what="the helper to take the stop")
        started = time.monotonic()
        assert asking.call("status", id=other["id"])["state"] == "running"
        answered_in = time.monotonic() - started
        stopped = stopping.read_message()["return"]
    assert answered_in < 0.25, f"status took {answered_in:.3f} s while a stop waited for QMP"
    assert stopped["state"] == "ended" and stopped["ended_reason"] == "stopped"
    assert "QMP quit failed, sending SIGTERM" in helper.log_text()
    assert_session_gone(helper, session)
    helper.call("stop", id=other["id"])
    assert_session_gone(helper, other)


# --- who may talk to the helper -----------------------------------------------------------

PEER_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
print(s.makefile().readline(), end="")
"""


def run_as(user, group, socket_path, extra=()):
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={group}", *extra,
                           "/usr/bin/python3", "-c", PEER_CLIENT, socket_path],
                          capture_output=True, text=True, timeout=20)


def test_peer_outside_allowed_group_is_forbidden(make_helper):
    # The socket is world-connectable here, so only SO_PEERCRED stands in the way.
    h = make_helper(socket_mode="0666")
    outsider = run_as("nobody", "nogroup", h.socket, ["--clear-groups"])
    assert outsider.returncode == 0, outsider.stderr
    assert json.loads(outsider.stdout)["error"]["code"] == "forbidden"
    member = run_as("nobody", "nogroup", h.socket, ["--groups=www-data"])
    assert member.returncode == 0, member.stderr
    assert "qwd" in json.loads(member.stdout)
    assert "forbidden" in h.log_text()


# --- command lines ------------------------------------------------------------------------

def qwdctl(helper, *args):
    return subprocess.run([env.QWDCTL, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "QWD_HELPER_SOCKET": helper.socket})


def test_qwdctl_start_status_stop(helper):
    started = qwdctl(helper, "start", "tiny.qcow2", "--memory", "256", "--lifetime", "600",
                     "--owner", "bob", "--viewer-base", "http://qwd.example/vnc.html")
    assert started.returncode == 0, started.stderr
    fields = dict(line.split(" ", 1) for line in started.stdout.splitlines())
    assert fields["url"] == ("http://qwd.example/vnc.html?path=websockify?token="
                             + fields["token"])
    status = json.loads(qwdctl(helper, "status", fields["session"], "--json").stdout)
    assert status["owner"] == "bob" and status["memory_mib"] == 256
    listed = qwdctl(helper, "status")
    assert fields["session"] in listed.stdout
    assert "tiny.iso" in qwdctl(helper, "machines").stdout
    assert json.loads(qwdctl(helper, "load", "--json").stdout)["sessions"] == 1
    stopped = qwdctl(helper, "stop", fields["session"])
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert qwdctl(helper, "stop", "all").stdout.strip() == "stopped 0"


def test_qwdctl_errors_are_one_line_with_code(helper, workdir):
    refused = qwdctl(helper, "start", "../etc/passwd")
    assert refused.returncode != 0
    assert refused.stderr.startswith("qwdctl: unknown_machine: ")
    assert len(refused.stderr.splitlines()) == 1
    unreachable = subprocess.run([env.QWDCTL, "--socket", os.path.join(workdir, "none.sock"),
                                  "load"], capture_output=True, text=True, timeout=30)
    assert unreachable.returncode != 0
    assert unreachable.stderr.startswith("qwdctl: unreachable: ")
    helped = subprocess.run([env.QWDCTL, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for word in ("start", "status", "stop", "machines", "load", "--viewer-base", "--socket"):
        assert word in helped.stdout


def test_helper_help_and_bad_configuration(workdir):
    helped = subprocess.run([env.HELPER, "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--set" in helped.stdout and "--config" in helped.stdout
    bad = subprocess.run([env.HELPER, "--set", "accel=fast", "--set",
                          f"socket={workdir}/h.sock"], capture_output=True, text=True,
                         timeout=10)
    assert bad.returncode != 0 and "accel" in bad.stderr
    unknown = subprocess.run([env.HELPER, "--set", "no_such_key=1"], capture_output=True,
                             text=True, timeout=10)
    assert unknown.returncode != 0 and "no_such_key" in unknown.stderr
    # found by fuzzing (test/fuzz/corpus/helper_config/empty-*): an empty value of a key with
    # a default left it NULL and the helper crashed on its own check instead of saying why
    for key in ("iso_scratch_size", "accel", "nic_model", "warm_recipe", "state_dir"):
        empty = subprocess.run([env.HELPER, "--set", f"{key}=", "--set",
                                f"socket={workdir}/h.sock"], capture_output=True, text=True,
                               timeout=10)
        assert empty.returncode == 1 and f"{key} must not be empty" in empty.stderr, empty
