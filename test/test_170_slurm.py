# SPDX-License-Identifier: Apache-2.0
"""Sessions on a real Slurm cluster (issue 17): munged, slurmctld and two slurmd nodes, each in
its own network namespace (test/qwdtest/slurm.py), one cluster shared by this module. The web
host (the helper, Apache) is the root namespace: every display crosses a veth hop on the node's
TLS channel. API create → job on a node → RFB through Apache → DELETE → job and QEMU gone;
expiry by the job's time limit; queued while the cluster is full; re-adoption after a helper
restart; a lost node; a channel without the secret; two users on two nodes."""
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import stop_and_check_helper
from qwdtest import env, procs, rfb, slurm, vm
from qwdtest.helper import Helper
from qwdtest.httpd import Httpd
from test_300_module import api, api_create, wait_running

MACHINE = "tiny.qcow2"
# Log numbers a Slurm test provokes on purpose.
LOG_JOB_ENDED = 5604


@pytest.fixture(scope="module")
def cluster(tiny_vm):
    why = slurm.available()
    assert why is None, why
    c = slurm.Cluster(cpus=1, memory_mib=1024).start()
    try:
        for node in c.nodes:
            machines = os.path.join(node.local_dir, "machines")
            os.makedirs(machines, exist_ok=True)
            vm.place(tiny_vm["qcow2"], os.path.join(machines, MACHINE))
        c.node_config = os.path.join(c.dir, "qwd-node.conf")
        with open(c.node_config, "w") as f:
            f.write(f"""# qwd-node's configuration: the same file on every node, node-local paths
machines_dir = {c.node_dir}/machines
state_dir = {c.node_dir}/state
qemu_x86_64 = {env.QEMU}
qemu_img = {env.QEMU_IMG}
accel = {env.ACCEL}
iso_scratch_size = 64M
node_listen = 0.0.0.0
node_ports = 47000-47099
""")
        yield c
    finally:
        left = c.stop()
    assert not left, f"processes left on the cluster: {left}"


def slurm_helper_for(workdir, machines_dir, cluster, **overrides):
    config = dict(backend="slurm", slurm_node_command=env.NODE,
                  slurm_node_config=cluster.node_config,
                  slurm_output=f"{cluster.node_dir}/job-%j.log", slurm_poll_interval=1)
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
