# SPDX-License-Identifier: Apache-2.0
"""qwd-helper started as root with `user` set runs, and runs its QEMU and websockify, as that
user: no VM process of mod_qwd keeps root. (Skipped when the tests do not run as root.)"""
import grp
import os

import pytest

from qwdtest import procs
from qwdtest.helper import Helper, ensure_service_user, run_as
from qwdtest.rfb import websocket_rfb_banner

SERVICE_USER = "qwd-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")


@pytest.fixture(scope="module")
def service_user():
    return ensure_service_user(SERVICE_USER)


def uids_of(pid):
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("Uid:"))
    return {int(uid) for uid in line.split()[1:]}


def test_helper_qemu_and_websockify_run_as_the_configured_user(workdir, machines_dir,
                                                                service_user):
    helper = run_as(Helper(workdir, machines_dir), SERVICE_USER).start()
    try:
        assert uids_of(helper.process.pid) == {service_user.pw_uid}
        session = helper.call("start", machine="tiny.qcow2", owner="alice")
        helper.wait_state(session["id"], "running")
        assert uids_of(session["pid"]) == {service_user.pw_uid}
        websockify = [pid for pid, line in procs.processes_mentioning(helper.state_dir)
                      if "websockify" in line]
        assert websockify and all(uids_of(pid) == {service_user.pw_uid} for pid in websockify)
        overlay_dir = helper.session_dir(session["id"])
        assert os.stat(overlay_dir).st_uid == service_user.pw_uid
        banner = websocket_rfb_banner(
            f"ws://127.0.0.1:{helper.websockify_port}/?token={session['token']}")
        assert banner.startswith(b"RFB ")
        socket_stat = os.stat(helper.socket)
        assert socket_stat.st_gid == grp.getgrnam("www-data").gr_gid
        assert socket_stat.st_mode & 0o007 == 0  # others may not connect
    finally:
        if helper.running():
            helper.call("purge")
            helper.stop()
    assert helper.leftover_files() == []


def test_unknown_user_is_a_clear_startup_error(workdir, machines_dir):
    helper = Helper(workdir, machines_dir, user="no-such-user-qwd")
    with pytest.raises(AssertionError, match='no user "no-such-user-qwd"'):
        helper.start()
