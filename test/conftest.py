# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures: a private workdir per test, the tiny VM's machines dir, a started
qwd-helper and a started Apache — each torn down by PID, then checked: nothing may be left."""
import os
import shutil
import tempfile

import pytest

from qwdtest import env, procs, vm
from qwdtest.helper import Helper
from qwdtest.httpd import Httpd


if env.SANITIZERS:
    # the helper, qwdctl and whatever else of the build a test runs inherit these
    os.makedirs(env.SANITIZER_DIR, exist_ok=True)
    os.chmod(env.SANITIZER_DIR, 0o1777)  # Apache's workers (www-data) write there too
    os.environ.update(env.sanitizer_env())


def sanitizer_reports():
    try:
        return {name for name in os.listdir(env.SANITIZER_DIR) if name.startswith("report")}
    except FileNotFoundError:
        return set()


@pytest.fixture(autouse=True)
def no_sanitizer_report():
    """With --enable-sanitizers: fails the test during which any ASan/UBSan report appeared
    (kept in SANITIZER_DIR as report.PID)."""
    if not env.SANITIZERS:
        yield
        return
    before = sanitizer_reports()
    yield
    new = sorted(sanitizer_reports() - before)
    texts = []
    for name in new:
        with open(os.path.join(env.SANITIZER_DIR, name), errors="replace") as f:
            texts.append(f"--- {name}\n{f.read()[:6000]}")
    assert not new, "sanitizer reports:\n" + "\n".join(texts)


@pytest.fixture
def workdir():
    """A fresh, short directory (Unix socket paths must stay under 108 bytes). Every process
    of the stack names a path inside it, which is how the leak check finds leftovers."""
    path = tempfile.mkdtemp(prefix="qwdt-", dir="/tmp")
    os.chmod(path, 0o755)  # Apache's workers (www-data) reach the helper socket and the db
    yield path
    left = procs.kill_leftovers(path)
    shutil.rmtree(path, ignore_errors=True)
    assert not left, f"processes left behind by the test: {left}"


@pytest.fixture(scope="session")
def tiny_vm():
    return vm.tiny_vm()


@pytest.fixture(scope="session")
def machines_dir(tiny_vm):
    path = tempfile.mkdtemp(prefix="qwdm-", dir="/tmp")
    os.chmod(path, 0o755)
    vm.place(tiny_vm["qcow2"], os.path.join(path, "tiny.qcow2"))
    vm.place(tiny_vm["iso"], os.path.join(path, "tiny.iso"))
    with open(os.path.join(path, "tiny.qcow2.txt"), "w") as f:
        f.write("Tiny busybox test VM (disk)\n")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def stop_and_check_helper(helper):
    """Purges the helper's VMs, stops it by PID, then asserts nothing of it remains."""
    if helper.running():
        try:
            helper.call("purge")
        except Exception:
            pass
        helper.stop()
    left_processes = procs.processes_mentioning(helper.state_dir)
    left_files = helper.leftover_files()
    assert not left_processes, f"helper left processes: {left_processes}"
    assert not left_files, f"helper left files in its state dir: {left_files}"


@pytest.fixture
def helper(workdir, machines_dir):
    h = Helper(workdir, machines_dir).start()
    yield h
    stop_and_check_helper(h)


@pytest.fixture
def httpd(workdir, helper):
    server = Httpd(workdir, helper).start()
    yield server
    server.stop_and_check()


@pytest.fixture
def make_httpd(workdir, helper):
    """Starts Apaches with a test's own QwdXxx lines (and extra config and modules):
    make(qwd_conf, extra_conf="", modules=()). Each is stopped, then log-checked, afterwards."""
    started = []

    def make(qwd_conf, extra_conf="", modules=()):
        server = Httpd(workdir, helper, qwd_conf=qwd_conf, extra_conf=extra_conf,
                       modules=modules).start()
        started.append(server)
        return server
    yield make
    for server in started:
        server.stop()
    for server in started:
        server.assert_log_clean()
