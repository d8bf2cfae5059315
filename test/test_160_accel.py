# SPDX-License-Identifier: Apache-2.0
"""The accelerator and CPU model (helper keys accel, cpu_model): under this host's KVM, QEMU
7.2 aborts with "failed to set MSR 0x10a" for -cpu host and max, so accel = auto probes KVM
with the configured model and falls back to TCG; cpu_model = qemu64 makes KVM usable."""
import os

import pytest

from conftest import stop_and_check_helper
from qwdtest import procs, rfb
from qwdtest.helper import Helper

MACHINE = "tiny.qcow2"
KVM_USABLE = os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


@pytest.fixture
def make_helper(workdir, machines_dir):
    started = []

    def make(**config):
        h = Helper(workdir, machines_dir, **config).start()
        started.append(h)
        return h
    yield make
    for h in started:
        stop_and_check_helper(h)


def start_and_reach_vnc(helper):
    session = helper.call("start", machine=MACHINE, owner="alice", memory_mib=256)
    helper.wait_state(session["id"], "running", timeout=30)
    vnc = os.path.join(helper.session_dir(session["id"]), "vnc.sock")
    assert rfb.unix_rfb_banner(vnc) == b"RFB 003.008\n"
    return session


@pytest.mark.skipif(not KVM_USABLE, reason="/dev/kvm is not accessible")
def test_kvm_with_qemu64_starts_and_vnc_answers(make_helper):
    helper = make_helper(accel="kvm", cpu_model="qemu64")
    load = helper.call("load")
    assert load["accel"] == "kvm" and load["cpu_model"] == "qemu64"
    session = start_and_reach_vnc(helper)
    cmdline = procs.cmdline(session["pid"])
    assert "-accel kvm -cpu qemu64 " in cmdline
    # QEMU keeps running (no MSR abort after the display came up)
    assert helper.call("status", id=session["id"])["state"] == "running"


def test_auto_picks_an_accelerator_that_works(make_helper):
    helper = make_helper(accel="auto")
    load = helper.call("load")
    assert load["accel"] in ("kvm", "tcg")
    assert "accel " + load["accel"] + ", cpu model " in helper.log_text()
    session = start_and_reach_vnc(helper)
    assert f"-accel {load['accel']} -cpu {load['cpu_model']} " in procs.cmdline(session["pid"])


@pytest.mark.skipif(not KVM_USABLE, reason="/dev/kvm is not accessible")
def test_auto_with_qemu64_chooses_kvm(make_helper):
    helper = make_helper(accel="auto", cpu_model="qemu64")
    assert helper.call("load")["accel"] == "kvm"
    assert "KVM with -cpu qemu64 works" in helper.log_text()


def test_bad_cpu_model_stops_the_helper_at_startup(workdir, machines_dir):
    h = Helper(workdir, machines_dir, cpu_model="host,+vmx")
    with pytest.raises(AssertionError, match="cpu_model"):
        h.start(timeout=5)
