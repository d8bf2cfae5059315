# SPDX-License-Identifier: Apache-2.0
"""Instant-on on the web side (issue 9): the form marks machines that start instantly, an API
or form create of a warm profile answers ready with boot "restored" and a websocket that
speaks RFB, the monitor lists warm images; and warm_auto builds an image after a profile's
first cold start. Real Apache, helper and QEMU (TCG); each warm image costs one boot (~11 s)."""
import os
import re
import shutil
import tempfile

import pytest

from conftest import stop_and_check_helper
from qwdtest import procs, rfb, vm
from qwdtest.helper import Helper
from test_300_module import Browser, api, api_create, assert_opens_at_once

MACHINE = "tiny.qcow2"
PROFILE = {"cpu": 1, "memory_mib": 256}
KEY = "tiny.qcow2-1c-256m-std"


@pytest.fixture(scope="module")
def machines_dir(tiny_vm):
    """The tiny VM with a sidecar that says when it is ready (its console banner), so a warm
    image takes one boot, not the default 30 s delay. No warm_at_start: tests build."""
    path = tempfile.mkdtemp(prefix="qwdm-", dir="/tmp")
    os.chmod(path, 0o755)
    vm.place(tiny_vm["qcow2"], os.path.join(path, MACHINE))
    with open(os.path.join(path, MACHINE + ".txt"), "w") as f:
        f.write("Tiny busybox test VM (disk)\n")
    with open(os.path.join(path, MACHINE + ".warm"), "w") as f:
        f.write(f"ready_serial = {vm.BANNER}\n")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def warm_entry(helper, key=KEY):
    return next((w for w in helper.call("warm_list")["warm"] if w["key"] == key), None)


def wait_warm_ready(helper, timeout=120):
    def ready():
        w = warm_entry(helper) or {}
        assert w.get("state") != "failed", w
        return w if w.get("state") == "ready" else None
    return procs.wait_until(ready, timeout, interval=0.2, what="the warm image")


@pytest.fixture
def warm_dropped(helper):
    """Drops the warm images at the end: the teardown fails on files left in the state dir."""
    yield helper
    helper.call("purge")
    helper.call("warm_drop")


def machine_option(page):
    return re.search(rf'<option value="{re.escape(MACHINE)}"[^>]*>[^<]*</option>', page).group(0)


def test_warm_machine_is_marked_created_ready_and_listed(httpd, warm_dropped):
    helper = warm_dropped
    browser = Browser(httpd)
    status, form = browser.get("")
    assert status == 200 and "starts instantly" not in machine_option(form)

    helper.call("warm", machine=MACHINE, **PROFILE)
    image = wait_warm_ready(helper)
    assert image["size_bytes"] > 1 << 20 and image["created"] > 0

    # the form marks the machine
    status, form = browser.get("")
    assert status == 200
    option = machine_option(form)
    assert 'data-warm="1"' in option and "\u26a1 starts instantly" in option, option
    status, machines, _ = api(httpd, "GET", "machines")
    assert {m["name"]: m["warm"] for m in machines["machines"]}[MACHINE] is True

    # an API create of that profile is restored and answers ready, its websocket speaks RFB
    session = api_create(httpd, **PROFILE, lifetime_s=600)
    assert session["boot"] == "restored", session
    assert session["state"] == "running", session
    assert rfb.websocket_rfb_banner(session["websocket_url"]) == b"RFB 003.008\n"
    status, again, _ = api(httpd, "GET", "sessions/" + session["id"])
    assert status == 200 and again["boot"] == "restored" and again["state"] == "running"

    # the form's result page is ready at once: nothing to wait for
    status, page = browser.create("carol", cpu=1, lifetime=900)
    assert status == 200, page
    assert 'data-state="running"' in page and "started instantly" in page, page

    # the monitor lists the warm image with its size and age
    admin = Browser(httpd)
    admin.login("admin")
    status, page = admin.get("monitor")
    assert status == 200
    row = re.search(rf'<tr data-key="{KEY}">(.*?)</tr>', page).group(1)
    assert "tiny.qcow2, 1 CPU, 256 MiB, std" in row and "ready" in row
    assert re.search(r"<td>\d+ MB</td><td>\d+ s</td>", row), row


def test_a_warm_websocket_url_opened_at_once_speaks_rfb(httpd, warm_dropped):
    """Issue 13.1 on a warm machine right after the helper started: the restored clone's
    websocket URL, opened at once and retried every 10 ms, gets RFB with that same URL."""
    helper = warm_dropped
    helper.call("warm", machine=MACHINE, **PROFILE)
    wait_warm_ready(helper)
    helper.stop()
    helper.start()
    session = api_create(httpd, **PROFILE, lifetime_s=600)
    assert session["boot"] == "restored", session
    assert_opens_at_once(session["websocket_url"])


def test_a_cold_session_reports_boot_cold(httpd, helper):
    session = api_create(httpd, **PROFILE, lifetime_s=600)
    assert session["boot"] == "cold" and session["state"] == "starting"
    status, page = Browser(httpd).get("")
    assert "starts instantly" not in machine_option(page)


@pytest.fixture
def auto_helper(workdir, machines_dir, request):
    """A helper with warm_auto = yes (the product default) and the test's own settings."""
    overrides = getattr(request, "param", {})
    h = Helper(workdir, machines_dir, warm_auto="yes", **overrides).start()
    yield h
    if h.running():
        h.call("purge")
        h.call("warm_drop")
    stop_and_check_helper(h)


def test_warm_auto_builds_after_the_first_cold_start(auto_helper):
    helper = auto_helper
    assert helper.call("load")["warm_auto"] is True
    first = helper.call("start", machine=MACHINE, owner="alice", **PROFILE)
    assert first["boot"] == "cold"
    assert warm_entry(helper)["state"] in ("building", "saving")
    # a second cold start meanwhile does not start a second build
    other = helper.call("start", machine=MACHINE, owner="alice", cpu=1, memory_mib=320)
    assert other["boot"] == "cold"
    assert [w["key"] for w in helper.call("warm_list")["warm"]] == [KEY]
    wait_warm_ready(helper)
    later = helper.call("start", machine=MACHINE, owner="bob", **PROFILE)
    assert later["boot"] == "restored"
    helper.wait_state(later["id"], "running", timeout=10)
    assert "building automatically after a cold start" in helper.log_text()


@pytest.mark.parametrize("auto_helper", [{"max_vcpus": 1}], indirect=True)
def test_warm_auto_skips_the_build_when_the_host_is_full(auto_helper):
    helper = auto_helper
    session = helper.call("start", machine=MACHINE, owner="alice", **PROFILE)
    assert session["boot"] == "cold"
    assert helper.call("warm_list")["warm"] == []
    assert "not built automatically now, the host is full" in helper.log_text()
