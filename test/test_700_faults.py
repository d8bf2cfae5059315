# SPDX-License-Identifier: Apache-2.0
"""Injected faults on the real stack (docs/testing.md): qwd-helper SIGKILLed among concurrent
creates, QEMU and websockify SIGKILLed, Apache's children killed mid-request, the session
database held by another writer. Afterwards every row matches a VM or is ended, no VM is
without a row, nothing is left behind (the fixtures' checks), and new creates work."""
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import websocket

from qwdtest import procs, rfb
from qwdtest.helper import Helper
from qwdtest.httpd import Httpd
from conftest import stop_and_check_helper
from test_300_module import MACHINE, api, api_create, db_rows, helper_ids, wait_running

LOG_HELPER_DOWN = 101
LOG_START_FAILED = 107
LOG_HELPER_ERROR = 108
LOG_RECORDED_ORPHAN = 515
LOG_DB_BEGIN = 209

BIG = {"max_sessions": 20, "max_vcpus": 40, "max_memory_mib": 8192}
BIG_CONF = ("QwdAuth none\nQwdAdmin admin\nQwdMaxSessions 20\nQwdMaxSessionsPerUser 20\n"
            "QwdMaxCPUPerUser 40\nQwdMaxMemoryPerUser 8192")


def apache_children(httpd):
    """The pids of Apache's worker processes (children of its parent)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if parent == httpd.process.pid:
            children.append(int(entry))
    return children


def reconcile(httpd, users):
    """Every user's listing (each reconciles that user's rows with the helper's VMs)."""
    for user in users:
        status, answer, _ = api(httpd, "GET", "sessions", user=user)
        assert status == 200, answer


def assert_rows_match_vms(httpd, helper):
    """Every row not ended has its VM, and every VM has its row."""
    rows = db_rows(httpd)
    live = sorted(r[3] for r in rows if r[2] != "ended")
    assert all(r[2] in ("starting", "running", "ended") for r in rows), rows
    assert live == helper_ids(helper), (rows, helper_ids(helper))
    return rows


def concurrent_creates(httpd, users, results):
    def create(user):
        try:
            status, answer, _ = api(httpd, "POST", "sessions",
                                    {"machine": MACHINE, "memory_mib": 256}, user=user)
        except OSError as err:  # the worker that served it was killed
            status, answer = None, str(err)
        results.append((user, status, answer))
    threads = [threading.Thread(target=create, args=(u,)) for u in users]
    for t in threads:
        t.start()
    return threads


@pytest.fixture
def big_stack(workdir, machines_dir):
    """A helper and an Apache that take 20 sessions."""
    helper = Helper(workdir, machines_dir, **BIG).start()
    httpd = Httpd(workdir, helper, qwd_conf=BIG_CONF).start()
    yield httpd, helper
    httpd.stop()
    try:
        httpd.assert_log_clean()
    finally:
        stop_and_check_helper(helper)


def test_helper_killed_among_20_concurrent_creates(big_stack):
    httpd, helper = big_stack
    httpd.expect_lognos(LOG_HELPER_DOWN, LOG_START_FAILED, LOG_HELPER_ERROR, LOG_RECORDED_ORPHAN)
    status, _, _ = api(httpd, "GET", "machines")
    assert status == 200
    users = [f"user{i}" for i in range(20)]
    results = []
    threads = concurrent_creates(httpd, users, results)
    sessions_dir = os.path.join(helper.state_dir, "sessions")
    # kill it in the middle: some VMs launched, others still being made
    procs.wait_until(lambda: os.path.isdir(sessions_dir) and len(os.listdir(sessions_dir)) >= 3,
                     30, interval=0.01, what="the first sessions")
    helper.kill()
    for t in threads:
        t.join(120)
    assert len(results) == 20
    codes = sorted({status for _, status, _ in results})
    assert set(codes) <= {201, 500, 502, 503}, results
    assert 503 in codes or 500 in codes or 502 in codes, "the kill came too late"
    failed = [(s, a) for _, s, a in results if s != 201]
    assert all(a.get("error") in ("helper_unavailable", "start_failed", "helper_error")
               for _, a in failed), failed

    helper.start()  # re-adopts what the killed one launched
    reconcile(httpd, users)
    rows = assert_rows_match_vms(httpd, helper)
    created = {a["id"] for _, s, a in results if s == 201}
    assert created <= {r[0] for r in rows}
    # afterwards creates work
    again = api_create(httpd, user="late")
    wait_running(httpd, again["id"], user="late")
    assert_rows_match_vms(httpd, helper)


def test_qemu_killed_ends_its_row(httpd, helper):
    session = api_create(httpd)
    wait_running(httpd, session["id"])
    [row] = db_rows(httpd)
    pid = helper.call("status", id=row[3])["pid"]
    os.kill(pid, signal.SIGKILL)

    def ended():
        status, answer, _ = api(httpd, "GET", "sessions/" + session["id"])
        return answer if answer["state"] == "ended" else None
    procs.wait_until(ended, 20, interval=0.2, what="the row to end")
    assert_rows_match_vms(httpd, helper)
    # its directory (overlay, sockets, record) and its websockify token file go with it
    procs.wait_until(lambda: not [f for f in helper.leftover_files()
                                  if row[3] in f or "/tokens/" in f], 10,
                     what="the session's files to go")
    again = api_create(httpd)
    wait_running(httpd, again["id"])
    assert_rows_match_vms(httpd, helper)


def websockify_main(helper):
    marker = os.path.join(helper.state_dir, "tokens")
    found = []
    for pid, _ in procs.processes_mentioning(marker):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if parent == helper.process.pid:
            found.append(pid)
    return found


def test_websockify_killed_with_viewers_open(httpd, helper):
    session = api_create(httpd)
    wait_running(httpd, session["id"])
    viewers = [rfb.open_link_websocket(session["viewer_url"]) for _ in range(2)]
    [first] = websockify_main(helper)
    os.kill(first, signal.SIGKILL)
    procs.wait_until(lambda: websockify_main(helper) not in ([], [first]), 15,
                     what="the helper to start websockify again")

    def opens():
        try:
            ws = rfb.open_link_websocket(session["viewer_url"])
        except (OSError, AssertionError, websocket.WebSocketException):
            return None
        ws.close()
        return True
    procs.wait_until(opens, 20, interval=0.3, what="a new viewer to open")
    for ws in viewers:
        ws.close()
    # the killed one's connection children leave with their viewers
    procs.wait_until(lambda: len(procs.processes_mentioning(
        os.path.join(helper.state_dir, "tokens"))) == 1, 15, what="old websockify children")
    assert_rows_match_vms(httpd, helper)
    again = api_create(httpd)
    wait_running(httpd, again["id"])


def test_apache_children_killed_mid_request(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdMaxSessionsPerUser 3\nQwdMaxSessions 6")
    httpd.expect_child_kills()
    httpd.expect_lognos(LOG_RECORDED_ORPHAN)
    status, _, _ = api(httpd, "GET", "machines")
    assert status == 200
    users = ["ann", "ben", "cat", "dan"]
    results = []
    threads = concurrent_creates(httpd, users, results)
    time.sleep(0.3)
    killed = apache_children(httpd)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(120)
    assert len(results) == 4 and killed
    procs.wait_until(lambda: apache_children(httpd), 15, what="new Apache children")
    # a row whose worker died after the helper started its VM is recorded by the next listing;
    # one whose worker died before is removed by it once its VM cannot come any more
    procs.wait_until(lambda: (reconcile(httpd, users), _rows_match(httpd, helper))[1], 30,
                     interval=0.5, what="rows and VMs to match")
    again = api_create(httpd, user="eve")
    wait_running(httpd, again["id"], user="eve")
    assert_rows_match_vms(httpd, helper)


def _rows_match(httpd, helper):
    rows = db_rows(httpd)
    return sorted(r[3] for r in rows if r[2] != "ended") == helper_ids(helper) and all(
        r[2] in ("starting", "running", "ended") for r in rows)


def test_database_held_by_another_writer_is_503_and_writes_nothing(httpd, helper):
    httpd.expect_lognos(LOG_DB_BEGIN)
    status, _, _ = api(httpd, "GET", "machines")
    assert status == 200
    api(httpd, "GET", "sessions")  # the module has made its tables
    holder = sqlite3.connect(httpd.db_path, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # SQLite's write lock, longer than every retry
        started = time.monotonic()
        status, answer, headers = api(httpd, "POST", "sessions",
                                      {"machine": MACHINE, "memory_mib": 256})
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == 503 and answer["error"] == "database_busy", answer
    assert headers["Retry-After"]
    assert waited < 20
    assert db_rows(httpd) == [] and helper_ids(helper) == []
    again = api_create(httpd)
    wait_running(httpd, again["id"])
    assert_rows_match_vms(httpd, helper)


# ---------------------------------------------------------------- the wall clock jumps

def wallclock_shim(workdir):
    """test/fault/wallclock_shift.c built for this test: LD_PRELOAD it and write a shift (s)."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault",
                          "wallclock_shift.c")
    shim = os.path.join(workdir, "wallclock_shift.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", shim, source, "-ldl"], check=True)
    return shim


def test_wall_clock_jumps_neither_end_nor_extend_sessions(workdir, machines_dir):
    """Lifetimes count on the monotonic clock: a wall clock stepped a day forward ends no
    session early, one stepped back keeps none alive longer (NTP or an admin's date)."""
    shift = os.path.join(workdir, "wallclock-shift")
    with open(shift, "w") as f:
        f.write("0")
    helper = Helper(workdir, machines_dir, extra_env={
        "LD_PRELOAD": " ".join(filter(None, [os.environ.get("LD_PRELOAD"),
                                             wallclock_shim(workdir)])),
        "QWD_WALLCLOCK_SHIFT_FILE": shift}).start()
    try:
        short = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                            lifetime_s=8)
        long = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                           lifetime_s=3600)
        for session in (short, long):
            helper.wait_state(session["id"], "running", timeout=20)
        with open(shift, "w") as f:
            f.write(str(86400))  # a day forward
        time.sleep(3)  # three expiry ticks
        for session in (short, long):
            assert helper.call("status", id=session["id"])["state"] == "running"
        with open(shift, "w") as f:
            f.write(str(-86400))  # a day back
        ended = helper.wait_state(short["id"], "ended", timeout=20)
        assert ended["ended_reason"] == "expired"
        assert ended["uptime"] <= 12, ended
        assert helper.call("status", id=long["id"])["state"] == "running"
    finally:
        stop_and_check_helper(helper)


# ---------------------------------------------------------------- a VM that cannot be re-adopted

def fault_shim(workdir, name):
    """test/fault/NAME.c built for this test, to LD_PRELOAD."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault", name + ".c")
    shim = os.path.join(workdir, name + ".so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", shim, source, "-ldl"], check=True)
    return shim


def assert_restart_stops_the_vm(helper, before_restart, log_number):
    """Starts a session and kills the helper; before_restart(session) makes what the next
    helper finds. That helper must stop the VM its predecessor left (log_number says so) and
    remove its directory, and a new session must start."""
    session = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256)
    helper.wait_state(session["id"], "running", timeout=20)
    helper.kill()
    assert procs.pid_alive(session["pid"])
    before_restart(session)
    helper.start()
    procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 10,
                     what=f"the VM of the killed helper to stop ({log_number})")
    assert helper.call("list")["sessions"] == []
    assert not os.path.exists(helper.session_dir(session["id"]))
    assert log_number in helper.log_text()
    again = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256)
    helper.wait_state(again["id"], "running", timeout=20)


def test_a_vm_that_cannot_be_readopted_is_stopped_not_left_running(workdir, helper):
    """The helper restarted where pidfd_open fails (valgrind, a seccomp filter) cannot watch the
    VM of its predecessor: it removes the session's record, so it stops that VM too instead of
    leaving it running with no row, no token and nobody to stop it."""
    def without_pidfd(session):
        helper.extra_env["LD_PRELOAD"] = " ".join(
            filter(None, [os.environ.get("LD_PRELOAD"), fault_shim(workdir, "no_pidfd")]))
    assert_restart_stops_the_vm(helper, without_pidfd, "QWD05903")


def test_a_vm_started_but_not_recorded_is_stopped_at_restart(helper):
    """A helper killed between its VM's start and writing the record that names the VM's pid
    (the window 20 concurrent creates open wide) leaves a session directory without a record
    and a QEMU nobody knows: the next helper finds that QEMU by the directory in its command
    line and stops it, instead of removing the directory under it and leaving it running."""
    def without_record(session):
        # what the directory holds when the helper dies before the record is written
        os.remove(os.path.join(helper.session_dir(session["id"]), "session.json"))
    assert_restart_stops_the_vm(helper, without_record, "QWD05904")


# ---------------------------------------------------------------- the state directory full

LOG_NO_SPACE = 3900


@pytest.fixture
def small_state(workdir, machines_dir):
    """A helper whose state directory is a 96 MiB tmpfs (min_free_mib 16), and its Apache;
    the mount goes after the helper has cleaned up."""
    state_dir = os.path.join(workdir, "state")
    os.makedirs(state_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs", state_dir],
                   check=True)
    try:
        helper = Helper(workdir, machines_dir, min_free_mib=16).start()
        httpd = Httpd(workdir, helper).start()
        try:
            yield httpd, helper
        finally:
            httpd.stop()
            try:
                httpd.assert_log_clean()
            finally:
                stop_and_check_helper(helper)
    finally:
        subprocess.run(["umount", state_dir], check=True)


def free_mib(path):
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize // (1024 * 1024)


def test_state_directory_full_refuses_creates_and_builds_keeps_sessions(small_state):
    httpd, helper = small_state
    httpd.expect_lognos(LOG_NO_SPACE)
    running = api_create(httpd)
    wait_running(httpd, running["id"])
    before = set(helper.leftover_files())
    # leave 8 MiB: less than min_free_mib
    filler = os.path.join(helper.state_dir, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * ((free_mib(helper.state_dir) - 8) * 1024 * 1024))
        f.flush()
        os.fsync(f.fileno())
    try:
        status, answer, _ = api(httpd, "POST", "sessions", {"machine": MACHINE, "memory_mib": 256})
        assert status == 507 and answer["error"] == "no_space", answer
        with pytest.raises(Exception) as refused:
            helper.call("warm", machine=MACHINE, memory_mib=256)
        assert "no_space" in str(refused.value)
        # nothing half-made: no new session directory, overlay or warm image
        assert set(helper.leftover_files()) - {filler} == before
        assert helper_ids(helper) == [db_rows(httpd)[0][3]]
        assert len(db_rows(httpd)) == 1
        # the running session lost nothing
        assert helper.call("status", id=db_rows(httpd)[0][3])["state"] == "running"
        assert rfb.open_link_websocket(running["viewer_url"]).close() is None
        assert "refusing a start" in helper.log_text()
    finally:
        os.unlink(filler)
    again = api_create(httpd)
    wait_running(httpd, again["id"])
    assert_rows_match_vms(httpd, helper)
