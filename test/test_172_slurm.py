# SPDX-License-Identifier: Apache-2.0
"""Sessions on a real Slurm cluster (issue 17): munged, slurmctld and two slurmd nodes, each in
its own network namespace (test/qwdtest/slurm.py), one cluster shared by this module. The web
host (the helper, Apache) is the root namespace: every display crosses a veth hop on the node's
TLS channel. API create → job on a node → RFB through Apache → DELETE → job and QEMU gone;
expiry by the job's time limit; queued while the cluster is full; re-adoption after a helper
restart; a lost node; a channel without the secret; two users on two nodes."""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import stop_and_check_helper
from qwdtest import procs, rfb, slurm
from qwdtest.console import Console
from qwdtest.helper import Helper, HelperError
from qwdtest.httpd import Httpd
from test_300_module import Browser, api, api_create, wait_running

MACHINE = "tiny.qcow2"


@pytest.fixture(scope="module")
def cluster(tiny_vm):
    why = slurm.available()
    assert why is None, why
    c = slurm.Cluster(cpus=1, memory_mib=1024).start()
    try:
        c.install_qwd_node(tiny_vm["qcow2"], MACHINE)
        yield c
    finally:
        left = c.stop()
    assert not left, f"processes left on the cluster: {left}"


def slurm_helper_for(workdir, machines_dir, cluster, **overrides):
    config = cluster.helper_config()
    config.update(overrides)
    return Helper(workdir, machines_dir, extra_env=cluster.env(), **config)


def assert_cluster_clean(cluster):
    """No job of ours alive, no QEMU or qwd-node left on any node."""
    def clean():
        alive = {j: v for j, v in cluster.jobs().items()
                 if v[1] in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")}
        on_nodes = [p for n in cluster.nodes for p in n.processes("qwd-")]
        return (alive, on_nodes) if alive or on_nodes else None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = clean()
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"left on the cluster: {clean()}")


def stop_slurm_helper(h, cluster):
    """Purges (scancel) and stops the helper; its channel key is the one file it keeps."""
    if h.running():
        h.call("purge")
        h.stop()
    key = os.path.join(h.state_dir, "node.key")
    assert os.stat(key).st_mode & 0o777 == 0o600
    os.remove(key)
    stop_and_check_helper(h)
    assert_cluster_clean(cluster)


@pytest.fixture
def slurm_helper(workdir, machines_dir, cluster):
    h = slurm_helper_for(workdir, machines_dir, cluster).start()
    yield h
    stop_slurm_helper(h, cluster)


@pytest.fixture
def slurm_httpd(workdir, slurm_helper):
    server = Httpd(workdir, slurm_helper).start()
    yield server
    server.stop_and_check()


def job_of(cluster, session_id):
    """(job id, state, node) of the session's job, or None."""
    for job_id, (name, state, nodes) in cluster.jobs().items():
        if name == "qwd-" + session_id:
            return job_id, state, nodes
    return None


def on_nodes(cluster, session_id):
    """(node, program) of every process of the session on the nodes: qwd-node, QEMU."""
    return sorted((n.name, os.path.basename(line.split()[0])) for n in cluster.nodes
                  for _, line in n.processes(session_id))


def test_api_session_runs_on_a_node_and_its_display_crosses_the_network(slurm_httpd,
                                                                        slurm_helper, cluster):
    session = api_create(slurm_httpd, lifetime_s=600)
    assert session["state"] in ("queued", "starting", "running"), session
    running = wait_running(slurm_httpd, session["id"], timeout=60)
    assert running["state"] == "running"
    helper_id = slurm_helper.call("list")["sessions"][0]["id"]
    status = slurm_helper.call("status", id=helper_id)
    assert status["backend"] == "slurm" and status["node"] in ("qn1", "qn2"), status
    job = job_of(cluster, helper_id)
    assert job and job[1] == "RUNNING" and job[2] == status["node"], job
    # QEMU runs on that node (its network namespace), not on the web host
    node = status["node"]
    assert on_nodes(cluster, helper_id) == [(node, "qemu-system-x86_64"), (node, "qwd-node")]
    assert rfb.websocket_rfb_banner(running["websocket_url"]) == b"RFB 003.008\n"

    status_code, stopped, _ = api(slurm_httpd, "DELETE", "sessions/" + session["id"])
    assert status_code == 200 and stopped["state"] == "ended", stopped
    # the stop answers once the job is over: QEMU is gone from the node already
    assert on_nodes(cluster, helper_id) == []
    assert job_of(cluster, helper_id)[1] in ("CANCELLED", "COMPLETED")
    slurm_httpd.expect_lognos()


def test_two_users_on_two_nodes_and_a_full_cluster_queues(slurm_httpd, slurm_helper, cluster):
    """One CPU per node: alice and bob fill the two nodes, carol's session is queued (with
    Slurm's reason, not an error; the gate answers 503 without spending her ticket) and runs
    on the node that alice's stop frees, with the link she got at creation."""
    alice = api_create(slurm_httpd, user="alice", lifetime_s=600)
    bob = api_create(slurm_httpd, user="bob", lifetime_s=600)
    alice = wait_running(slurm_httpd, alice["id"], user="alice", timeout=60)
    bob = wait_running(slurm_httpd, bob["id"], user="bob", timeout=60)
    assert {alice["node"], bob["node"]} == {"qn1", "qn2"}, (alice, bob)
    for session in (alice, bob):
        assert rfb.websocket_rfb_banner(session["websocket_url"]) == b"RFB 003.008\n"

    carol = api_create(slurm_httpd, user="carol", lifetime_s=600)
    assert carol["state"] == "queued", carol

    def resources():
        status_code, answer, _ = api(slurm_httpd, "GET", "sessions/" + carol["id"], user="carol")
        assert answer["state"] == "queued", answer
        return answer if answer["queued_reason"] == "Resources" else None
    carol = procs.wait_until(resources, 20, interval=0.2, what="Slurm's reason Resources")
    assert "node" not in carol
    assert rfb.websocket_status(carol["websocket_url"]) == 503
    status_code, listed, _ = api(slurm_httpd, "GET", "sessions?all=1", user="admin")
    assert sorted(s["state"] for s in listed["sessions"]) == ["queued", "running", "running"]

    # the form says so too: its machine list, its result page, and the monitor
    dave = Browser(slurm_httpd)
    status_code, form = dave.get("")
    assert re.search(r'<option value="tiny.qcow2"[^>]* data-backend="slurm">tiny.qcow2[^<]*'
                     r' \(on the cluster: may wait for a free node\)</option>', form), form
    status_code, page = dave.create("dave", lifetime="600")
    assert status_code == 200 and 'data-state="queued"' in page, page
    assert "Waiting for a free node on the cluster" in page
    admin = Browser(slurm_httpd)
    admin.login("admin")
    # the first in line waits for Resources, the one behind it for Priority (Slurm's words)
    procs.wait_until(lambda: "queued (Resources)" in admin.get("monitor")[1]
                     and "queued (Priority)" in admin.get("monitor")[1], 20,
                     interval=0.3, what="the monitor to show why each session waits")
    monitor = admin.get("monitor")[1]
    assert monitor.count(" on qn") == 2 and "on qn1" in monitor and "on qn2" in monitor

    status_code, stopped, _ = api(slurm_httpd, "DELETE", "sessions/" + alice["id"], user="alice")
    assert stopped["state"] == "ended"
    carol = wait_running(slurm_httpd, carol["id"], user="carol", timeout=60)
    assert carol["node"] == alice["node"]
    banner, outcomes = rfb.open_at_once(carol["websocket_url"])
    assert banner == b"RFB 003.008\n", outcomes


def test_mod_qwds_own_limits_apply_before_anything_is_submitted(workdir, machines_dir,
                                                                  cluster):
    """Admission: the module's per-user limit and the helper's max_sessions refuse a start
    before sbatch; what fits on the nodes is Slurm's: the web host's max_vcpus and
    max_memory_mib neither refuse a cluster session (512 MiB here, above max_memory_mib)
    nor count it against a local one."""
    helper = slurm_helper_for(workdir, machines_dir, cluster, max_sessions=3, max_vcpus=1,
                              max_memory_mib=256).start()
    server = Httpd(workdir, helper, qwd_conf="QwdAuth none\nQwdAdmin admin\n"
                   "QwdMaxSessionsPerUser 1").start()
    try:
        alice = api_create(server, user="alice", lifetime_s=600, memory_mib=512)
        answer = api_create(server, user="alice", lifetime_s=600, expect=429)
        assert answer["limit"] == "QwdMaxSessionsPerUser", answer
        bob = api_create(server, user="bob", lifetime_s=600, memory_mib=512)
        local = helper.call("start", machine=MACHINE, owner="dave", memory_mib=256,
                            lifetime_s=600, backend="local")
        answer = api_create(server, user="carol", lifetime_s=600, expect=429)
        assert answer["limit"] == "helper:max_sessions", answer
        # two jobs, the cluster sessions' (the earlier tests' jobs are over: squeue still
        # shows them for MinJobAge)
        submitted = sorted(name for name, state, _ in cluster.jobs().values()
                           if state in ("PENDING", "CONFIGURING", "RUNNING"))
        ids = sorted("qwd-" + s["id"] for s in helper.call("list")["sessions"]
                     if s["id"] != local["id"])
        assert len(ids) == 2 and submitted == ids, (ids, submitted)
        for session in (alice, bob):
            assert wait_running(server, session["id"], user=session["owner"],
                                timeout=60)["state"] == "running"
        assert helper.wait_state(local["id"], "running", timeout=30)["backend"] == "local"
        server.expect_lognos(103, 208, 507)
    finally:
        server.stop_and_check()
        stop_slurm_helper(helper, cluster)


def test_qwdmaxload_counts_only_for_sessions_on_the_web_host(workdir, machines_dir, cluster):
    """QwdMaxLoad is the web host's load: a create of a machine the helper runs on the cluster
    is not refused by it (as the helper's max_load skips them), one of a local machine is
    (429, QwdMaxLoad, QWD00507)."""
    helper = slurm_helper_for(workdir, machines_dir, cluster, backend="local",
                              slurm_machines="*.qcow2").start()
    server = Httpd(workdir, helper, qwd_conf="QwdAuth none\nQwdMaxLoad 0.001").start()
    try:
        assert helper.call("load")["load1"] > 0.001  # slurmd, slurmctld and munged run
        on_cluster = api_create(server, user="alice", lifetime_s=600)
        assert on_cluster["state"] in ("queued", "starting", "running"), on_cluster
        here = api_create(server, user="bob", machine="tiny.iso", lifetime_s=600, expect=429)
        assert here["error"] == "limit_reached" and here["limit"] == "QwdMaxLoad", here
        assert wait_running(server, on_cluster["id"], timeout=60)["state"] == "running"
        assert [s["backend"] for s in helper.call("list")["sessions"]] == ["slurm"]
        server.expect_lognos(507)
    finally:
        server.stop_and_check()
        stop_slurm_helper(helper, cluster)


def test_the_backend_is_chosen_per_machine(workdir, machines_dir, cluster):
    """slurm_machines: tiny.qcow2 on the cluster, tiny.iso here; a start's backend argument
    overrides the choice."""
    helper = slurm_helper_for(workdir, machines_dir, cluster, backend="local",
                              slurm_machines="*.qcow2").start()
    try:
        machines = {m["name"]: m["backend"] for m in helper.call("machines")["machines"]}
        assert machines == {"tiny.qcow2": "slurm", "tiny.iso": "local"}, machines
        on_cluster = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                                 lifetime_s=600)
        here = helper.call("start", machine="tiny.iso", owner="bob", memory_mib=256,
                           lifetime_s=600)
        told = helper.call("start", machine=MACHINE, owner="carol", memory_mib=256,
                           lifetime_s=600, backend="local")
        on_cluster = helper.wait_state(on_cluster["id"], "running", timeout=60)
        assert on_cluster["backend"] == "slurm" and on_cluster["node"] in ("qn1", "qn2")
        assert job_of(cluster, on_cluster["id"])[1] == "RUNNING"
        for session in (here, told):
            session = helper.wait_state(session["id"], "running", timeout=30)
            assert session["backend"] == "local" and "node" not in session, session
            assert job_of(cluster, session["id"]) is None
            assert on_nodes(cluster, session["id"]) == []
    finally:
        stop_slurm_helper(helper, cluster)


def test_a_cluster_session_refuses_the_web_hosts_folders_gpu_and_scripts(workdir, machines_dir,
                                                                         cluster):
    """The node has no folder of the web host and builds its VM without a seed: a start on
    the cluster that would need a share (even a machine's mandatory one), a script or a
    scratch disk is bad_argument naming the field, and nothing is submitted."""
    root = os.path.join(workdir, "data")
    os.makedirs(os.path.join(root, "alice"))
    helper = slurm_helper_for(workdir, machines_dir, cluster, share_root=root,
                              share=f"home path={root}/@USER@ tag=home mode=rw "
                                    "machines=tiny.iso").start()
    try:
        for machine, extra, field in ((MACHINE, {"script_text": "echo hi"}, "script"),
                                      ("tiny.iso", {"backend": "slurm"}, "shares")):
            with pytest.raises(HelperError) as refused:
                helper.call("start", machine=machine, owner="alice", memory_mib=256,
                            lifetime_s=600, **extra)
            assert refused.value.code == "bad_argument", refused.value.data
            assert refused.value.data.get("field") == field, refused.value.data
        assert not [j for j, v in cluster.jobs().items() if v[1] in ("PENDING", "RUNNING")]
        assert not helper.call("list")["sessions"]
    finally:
        stop_slurm_helper(helper, cluster)


def test_a_lifetime_ends_with_the_jobs_time_limit(slurm_helper, cluster):
    """lifetime 60 s: a one-minute job whose warning signal (slurm_signal_s = 30 before the
    limit, which Slurm may send up to 60 s earlier: here often ~10 s after the start) makes
    qwd-node quit QEMU cleanly; the session ends as expired, nothing stays."""
    started = time.monotonic()
    session = slurm_helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                                lifetime_s=60)
    running = slurm_helper.wait_state(session["id"], "running", timeout=60)
    job_id = running["job"]
    # the session's lifetime is the job's: its end time is Slurm's
    assert running["expires"] - time.time() == pytest.approx(60, abs=10), running
    ended = slurm_helper.wait_state(session["id"], "ended", timeout=100)
    assert ended["ended_reason"] == "expired", ended
    assert time.monotonic() - started < 75
    assert cluster.jobs()[job_id][1] in ("COMPLETED", "TIMEOUT")
    assert on_nodes(cluster, session["id"]) == []
    assert not os.path.exists(slurm_helper.session_dir(session["id"]))


def job_field(cluster, job_id, field):
    """A field of `scontrol show job` (TimeLimit=00:03:00 → "00:03:00")."""
    shown = cluster.run(slurm.SCONTROL, "show", "job", str(job_id)).stdout
    return re.search(rf"\b{field}=(\S+)", shown).group(1)


def test_an_extend_raises_the_jobs_time_limit_and_the_session_outlives_the_old_one(
        workdir, machines_dir, cluster):
    """extend (the API's, as an admin) of a cluster session is `scontrol update TimeLimit`:
    Slurm's limit covers the new expires (whole minutes, as at sbatch), the session's expires
    stays there at the next polls (it is the job's end time), and the job runs past its old
    limit: neither Slurm's time limit nor its --signal warning (which follows the job's end
    time: due 30 s before the old one, it would have come 60 to 90 s after the start) ends
    it."""
    helper = slurm_helper_for(workdir, machines_dir, cluster).start()
    server = Httpd(workdir, helper).start()
    try:
        session = api_create(server, lifetime_s=120)
        wait_running(server, session["id"], timeout=60)
        started = time.monotonic()
        helper_id = helper.call("list")["sessions"][0]["id"]
        before = helper.call("status", id=helper_id)
        job = before["job"]
        assert job_field(cluster, job, "TimeLimit") == "00:02:00"
        status_code, extended, _ = api(server, "POST", f"sessions/{session['id']}/extend",
                                       {"seconds": 120}, user="admin")
        assert status_code == 200 and extended["expires"] == before["expires"] + 120, \
            (before, extended)
        assert job_field(cluster, job, "TimeLimit") == "00:04:00"
        time.sleep(3)  # polls (every second here) do not move it back
        assert helper.call("status", id=helper_id)["expires"] == extended["expires"]
        assert api(server, "GET", "sessions/" + session["id"])[1]["expires"] == \
            extended["expires"]
        assert [(e["seconds"], e["expires"]) for e in helper.call("events")["events"]
                if e["event"] == "extended"] == [(120, extended["expires"])]
        assert f"job {job}'s time limit raised to 4 min" in helper.log_text()
        # past the old warning and the old limit: it runs on
        time.sleep(max(0.0, 125 - (time.monotonic() - started)))
        assert helper.call("status", id=helper_id)["state"] == "running"
        assert job_of(cluster, helper_id)[1] == "RUNNING"
        now = api(server, "GET", "sessions/" + session["id"])[1]  # a fresh ticket
        assert rfb.websocket_rfb_banner(now["websocket_url"]) == b"RFB 003.008\n"
    finally:
        server.stop_and_check()
        stop_slurm_helper(helper, cluster)


def test_an_extend_slurm_refuses_changes_nothing(workdir, machines_dir, cluster):
    """The helper's polls a minute apart. Past max_lifetime nothing is asked of Slurm
    (bad_argument). Within its last slurm_signal_s + 60 s (Slurm's warning, which ends it, may
    be on its way) a session is not extended: extend_failed, 409 through the API. Its job
    cancelled outside the helper, which has not seen it yet: scontrol update fails, extend
    answers extend_failed in Slurm's words. Each time the session's expires, its record, its
    job's limit and the journal stay as they were, QWD05801 says why; it still stops
    cleanly. (Nothing else may be starting or stopping then: the helper would poll within a
    second and see the cancel first — the extend then fails with "the session ended".)"""
    helper = slurm_helper_for(workdir, machines_dir, cluster, slurm_poll_interval=60,
                              max_lifetime=3600).start()
    server = Httpd(workdir, helper).start()
    try:
        server.expect_lognos(109)
        short = api_create(server, lifetime_s=60)
        short = wait_running(server, short["id"], timeout=60)
        short_id = [s["id"] for s in helper.call("list")["sessions"]][0]
        short_before = helper.call("status", id=short_id)
        status_code, refused, _ = api(server, "POST", f"sessions/{short['id']}/extend",
                                      {"seconds": 600}, user="admin")
        assert status_code == 409 and refused["error"] == "extend_failed", refused
        assert "Slurm may have sent the warning that ends it" in refused["message"], refused
        assert helper.call("status", id=short_id)["expires"] == short_before["expires"]
        assert job_field(cluster, short_before["job"], "TimeLimit") == "00:01:00"
        # stopped now: its end a minute on would poll Slurm early and see the cancel below
        status_code, stopped, _ = api(server, "DELETE", "sessions/" + short["id"], user="admin")
        assert status_code == 200 and stopped["state"] == "ended", stopped

        session = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                              lifetime_s=600)
        running = helper.wait_state(session["id"], "running", timeout=60)
        job = running["job"]
        with pytest.raises(HelperError) as refused:
            helper.call("extend", id=session["id"], seconds=3600)
        assert refused.value.code == "bad_argument", refused.value.data
        assert job_field(cluster, job, "TimeLimit") == "00:10:00"

        cluster.run("/usr/bin/scancel", job)
        procs.wait_until(lambda: cluster.jobs()[job][1] not in ("RUNNING", "COMPLETING"), 30,
                         interval=0.2, what="the job to end")
        record = os.path.join(helper.session_dir(session["id"]), "session.json")
        with open(record) as f:
            recorded = f.read()
        with pytest.raises(HelperError) as refused:
            helper.call("extend", id=session["id"], seconds=600, by="ops")
        assert refused.value.code == "extend_failed", refused.value.data
        assert refused.value.message.startswith(
            f"scontrol update JobId={job} TimeLimit=20 failed: "), refused.value.message
        assert refused.value.data["reason"] == refused.value.message
        assert helper.call("status", id=session["id"])["expires"] == running["expires"]
        with open(record) as f:
            assert f.read() == recorded
        assert not [e for e in helper.call("events")["events"] if e["event"] == "extended"]
        log = helper.log_text()
        assert re.search(rf"QWD05801: session {short_id}: not extended by 600 s \(by admin\): "
                         r"it ends in \d+ s", log), log
        assert re.search(rf"QWD05801: session {session['id']}: not extended by 600 s "
                         rf"\(by ops\): scontrol update JobId={job}", log), log
        stopped = helper.call("stop", id=session["id"])
        assert stopped["state"] == "ended", stopped
    finally:
        server.stop_and_check()
        stop_slurm_helper(helper, cluster)


def test_a_second_extend_while_scontrol_works_is_refused(workdir, machines_dir, cluster):
    """Slurm's real scontrol, made slow (slurm_bin_dir holds the real commands and an scontrol
    that waits 3 s first): while one extend of a session waits for it, a second of the same
    session is refused at once (extend_failed, "under way": QWD05801) and runs no scontrol;
    the first then answers, its limit raised once."""
    bin_dir = os.path.join(workdir, "slurm-bin")
    os.mkdir(bin_dir)
    for name in ("sbatch", "squeue", "sinfo", "scancel"):
        os.symlink(shutil.which(name, path="/usr/bin"), os.path.join(bin_dir, name))
    calls = os.path.join(workdir, "scontrol-calls")
    with open(os.path.join(bin_dir, "scontrol"), "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {calls}\nsleep 3\nexec {slurm.SCONTROL} "$@"\n')
    os.chmod(os.path.join(bin_dir, "scontrol"), 0o755)
    helper = slurm_helper_for(workdir, machines_dir, cluster, slurm_bin_dir=bin_dir,
                              max_lifetime=3600).start()
    try:
        session = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                              lifetime_s=600)
        running = helper.wait_state(session["id"], "running", timeout=60)
        job = running["job"]
        with helper.connect() as first:
            first.send_line(json.dumps({"execute": "extend", "id": 1, "arguments": {
                "id": session["id"], "seconds": 600, "by": "first"}}) + "\n")
            procs.wait_until(lambda: os.path.exists(calls), 10, interval=0.05,
                             what="the first extend's scontrol")
            with pytest.raises(HelperError) as refused:
                helper.call("extend", id=session["id"], seconds=600, by="second")
            assert refused.value.code == "extend_failed", refused.value.data
            assert "under way" in refused.value.message, refused.value.message
            answered = first.read_message()
        assert answered["id"] == 1 and "return" in answered, answered
        assert answered["return"]["expires"] == running["expires"] + 600, answered
        with open(calls) as f:
            assert f.read() == f"update JobId={job} TimeLimit=20\n"
        assert job_field(cluster, job, "TimeLimit") == "00:20:00"
        log = helper.log_text()
        assert re.search(rf"QWD05801: session {session['id']}: not extended by 600 s "
                         r"\(by second\): an extend of this session is under way", log), log
        assert len(re.findall(rf"QWD05618: session {session['id']}: ", log)) == 1, log
    finally:
        stop_slurm_helper(helper, cluster)


def test_a_restarted_helper_readopts_its_jobs(slurm_helper, cluster):
    """The helper killed (SIGKILL): its jobs run on; the next helper finds them by name with
    squeue, reconnects to their channels and stops them."""
    first = slurm_helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                              lifetime_s=600)
    second = slurm_helper.call("start", machine=MACHINE, owner="bob", memory_mib=256,
                               lifetime_s=600)
    for session in (first, second):
        slurm_helper.wait_state(session["id"], "running", timeout=60)
    jobs = {s["id"]: slurm_helper.call("status", id=s["id"])["job"] for s in (first, second)}
    slurm_helper.kill()
    assert all(cluster.jobs()[job][1] == "RUNNING" for job in jobs.values())
    slurm_helper.start()
    for session_id, job in jobs.items():
        again = slurm_helper.wait_state(session_id, "running", timeout=30)
        assert again["job"] == job and again["backend"] == "slurm", again
        banner = rfb.unix_rfb_banner(os.path.join(slurm_helper.session_dir(session_id),
                                                  "vnc.sock"))
        assert banner == b"RFB 003.008\n"
    assert "re-adopted its slurm job" in slurm_helper.log_text()
    stopped = slurm_helper.call("stop", id=first["id"])
    assert stopped["state"] == "ended" and stopped["ended_reason"] == "stopped"
    assert on_nodes(cluster, first["id"]) == []


def test_a_lost_node_ends_its_sessions(slurm_helper, cluster):
    """slurmd killed on a node: Slurm marks the node down and the job NODE_FAIL; the session
    ends as node_lost and its files go. When the node's slurmd comes back, Slurm kills what
    the job left there."""
    session = slurm_helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                                lifetime_s=600)
    running = slurm_helper.wait_state(session["id"], "running", timeout=60)
    node = cluster.node(running["node"])
    node.kill_slurmd()
    try:
        ended = slurm_helper.wait_state(session["id"], "ended", timeout=60)
        assert ended["ended_reason"] == "node_lost", ended
        assert not os.path.exists(slurm_helper.session_dir(session["id"]))
        assert "node_lost" in slurm_helper.log_text()
    finally:
        node.start_slurmd()
        cluster.wait_nodes_idle(timeout=60)
    procs.wait_until(lambda: on_nodes(cluster, session["id"]) == [], 30,
                     what="the lost job's processes to go")


def session_key(helper, session_id):
    """What the helper derives the session's channel key from (the test reads the helper's
    private state as root: a positive control for the refusals)."""
    import hashlib
    import hmac
    with open(os.path.join(helper.state_dir, "node.key"), "rb") as f:
        return hmac.new(f.read(), session_id.encode(), hashlib.sha256).hexdigest()


def s_client(address, port, identity, key_hex):
    """openssl s_client with a TLS 1.3 external PSK: what a peer holding key_hex gets."""
    try:
        return subprocess.run(
            ["openssl", "s_client", "-connect", f"{address}:{port}", "-tls1_3",
             "-ciphersuites", "TLS_AES_128_GCM_SHA256", "-psk_identity", identity, "-psk",
             key_hex, "-quiet"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=5).stdout
    except subprocess.TimeoutExpired as err:  # a display waits for its client's answer
        return err.output or b""


def test_the_nodes_channel_refuses_peers_without_the_sessions_secret(slurm_helper, cluster):
    session = slurm_helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                                lifetime_s=600)
    running = slurm_helper.wait_state(session["id"], "running", timeout=60)
    node = cluster.node(running["node"])
    comment = cluster.run(slurm.SQUEUE, "-h", "-j", running["job"], "-o", "%k").stdout
    port = int(comment.split("port=")[1].split()[0])

    # plain TCP speaking RFB: closed, nothing of the display
    with socket.create_connection((node.address, port), timeout=10) as s:
        s.sendall(b"RFB 003.008\n")
        s.settimeout(10)
        try:
            answer = s.recv(100)
        except ConnectionResetError:  # the TLS server's alert, then the close
            answer = b""
        assert b"RFB" not in answer
    # TLS without any key (a certificate handshake): refused
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((node.address, port), timeout=10) as s:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            context.wrap_socket(s).recv(12)
    # the session's identity with another key: refused; another session's key too
    assert b"RFB" not in s_client(node.address, port, session["id"], os.urandom(32).hex())
    other = "0" * 32
    assert b"RFB" not in s_client(node.address, port, other, session_key(slurm_helper, other))
    # the positive control: the session's own key opens the display
    assert s_client(node.address, port, session["id"],
                    session_key(slurm_helper, session["id"])).startswith(b"RFB 003.008")
    job_log = os.path.join(node.local_dir, f"job-{running['job']}.log")
    with open(job_log) as f:
        assert f.read().count("refused a channel connection") >= 3


class NodeSession:
    """What Console needs to reach a session's serial console on its node."""

    def __init__(self, cluster, node):
        self.cluster, self.node = cluster, node

    def session_dir(self, session_id):
        return self.cluster.node_session_dir(self.node, session_id)


def test_a_cold_start_builds_a_warm_image_on_its_node_and_the_next_start_is_restored(
        workdir, machines_dir, cluster):
    """slurm_warm: after a cold start on a node, a job pinned to that node builds the profile's
    warm image there (node-local: STATE/warm/KEY); the next session of the profile on that node
    restores it, its guest answering at once."""
    helper = slurm_helper_for(workdir, machines_dir, cluster, slurm_warm="yes").start()
    try:
        first = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256,
                            lifetime_s=600)
        first = helper.wait_state(first["id"], "running", timeout=60)
        assert first["boot"] == "cold", first
        node = cluster.node(first["node"])
        procs.wait_until(lambda: "warm image build submitted" in helper.log_text(), 20,
                         what="the warm build job")
        helper.call("stop", id=first["id"])  # the node's one CPU goes to the build job
        image = os.path.join(node.local_dir, "state", "warm", "tiny.qcow2-1c-256m-std")
        procs.wait_until(lambda: os.path.exists(os.path.join(image, "meta.json")), 120,
                         interval=0.5, what="the node-local warm image")
        assert sorted(os.listdir(image)) == ["base.qcow2", "meta.json", "state.bin"]
        other = [n for n in cluster.nodes if n is not node][0]
        assert not os.path.exists(os.path.join(other.local_dir, "state", "warm",
                                               "tiny.qcow2-1c-256m-std"))
        procs.wait_until(lambda: not [j for j in cluster.jobs().values()
                                      if j[0].startswith("qwd-warm-") and
                                      j[1] in ("PENDING", "RUNNING", "COMPLETING")], 30,
                         what="the build job to end")

        # two at once: one lands on the node with the image (restored), one on the other
        started = time.monotonic()
        sessions = [helper.call("start", machine=MACHINE, owner=owner, memory_mib=256,
                                lifetime_s=600) for owner in ("bob", "carol")]
        running = [helper.wait_state(s["id"], "running", timeout=60) for s in sessions]
        on_warm = [s for s in running if s["node"] == node.name]
        assert len(on_warm) == 1, running
        restored = on_warm[0]
        assert restored["boot"] == "restored", restored
        console = Console(NodeSession(cluster, node.name), restored["id"], timeout=20)
        try:
            assert console.run("echo $((6*7))", timeout=20) == "42"
        finally:
            console.close()
        assert time.monotonic() - started < 15
        banner = rfb.unix_rfb_banner(os.path.join(helper.session_dir(restored["id"]),
                                                  "vnc.sock"))
        assert banner == b"RFB 003.008\n"
        helper.call("purge")
    finally:
        # the cold session on the other node asked for a build there: not this test's
        for job_id, (name, state, _) in cluster.jobs().items():
            if name.startswith("qwd-warm-") and state in ("PENDING", "RUNNING"):
                cluster.run("/usr/bin/scancel", job_id, check=False)
        stop_slurm_helper(helper, cluster)
        for n in cluster.nodes:
            shutil.rmtree(os.path.join(n.local_dir, "state", "warm"), ignore_errors=True)
