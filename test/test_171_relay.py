# SPDX-License-Identifier: Apache-2.0
"""The viewers' relay in qwd-helper (issue 16): who is watching, shares that only watch or also
type, one-shot sessions, idle stop, and viewers that send what they should not — through the
real websockify and QEMU, with a VNC client of the tests' own (qwdtest.rfb.RfbClient)."""
import os
import random
import signal
import struct
import time

import pytest

from qwdtest import procs, vm
from qwdtest.console import Console
from qwdtest.helper import HelperError, wait_for_serial
from qwdtest.rfb import Closed, RfbClient

MACHINE = "tiny.qcow2"


def start_tiny(helper, **arguments):
    arguments.setdefault("owner", "alice")
    return helper.call("start", machine=MACHINE, **arguments)


def ws_url(helper, token):
    return f"ws://127.0.0.1:{helper.websockify_port}/?token={token}"


def viewer(helper, token, shared=True):
    """A viewer through websockify, as the module's gate sends one, past its handshake."""
    return RfbClient.websocket(ws_url(helper, token)).handshake(shared=shared)


def token_file(helper, token):
    return os.path.join(helper.state_dir, "tokens", token)


def watching(helper, session_id):
    return helper.call("status", id=session_id)["viewers"]


def wait_watching(helper, session_id, count, timeout=5):
    """The session's viewers, once there are count of them."""
    def counted():
        viewers = watching(helper, session_id)
        return (viewers,) if len(viewers) == count else None
    return procs.wait_until(counted, timeout, interval=0.05, what=f"{count} viewer(s)")[0]


def booted(helper, session_id):
    """The guest's shells are up: keys typed on its screen reach tty1's shell."""
    wait_for_serial(helper, session_id, vm.BANNER, timeout=90)
    time.sleep(1)  # tty1's shell prints its prompt right after the banner


def serial_text(helper, session_id):
    with open(os.path.join(helper.session_dir(session_id), "serial.log"), "rb") as f:
        return f.read().decode(errors="replace")


def running_session(helper, **arguments):
    session = start_tiny(helper, **arguments)
    helper.wait_state(session["id"], "running", timeout=20)
    return session


def assert_gone(helper, session, tokens=()):
    procs.wait_until(lambda: not procs.pid_alive(session["pid"]), 10, what="QEMU to exit")
    assert not os.path.exists(helper.session_dir(session["id"]))
    for token in (session["token"], *tokens):
        assert not os.path.exists(token_file(helper, token))


# ---------------------------------------------------------------- who is watching

def test_the_relay_counts_viewers_and_no_viewer_has_the_display_alone(helper):
    session = running_session(helper)
    sid = session["id"]
    relay = os.path.join(helper.session_dir(sid), "relay.sock")
    assert session["relay_socket"] == relay
    # websockify's token leads to the relay, not to QEMU's own socket
    with open(token_file(helper, session["token"])) as f:
        assert f.read().strip() == f"{session['token']}: unix_socket:{relay}"
    assert "share=force-shared" in procs.cmdline(session["pid"])
    assert session["viewers"] == [] and session["opened"] is False
    assert session["viewer_shares"] == []

    # a viewer that asks for the display alone: QEMU (force-shared) would close it, and with
    # allow-exclusive it would evict the others; the relay makes every viewer shared
    before = int(time.time())
    alone = viewer(helper, session["token"], shared=False)
    other = viewer(helper, session["token"])
    for v in (alone, other):
        assert v.screen()
    listed = wait_watching(helper, sid, 2)
    assert [v["kind"] for v in listed] == ["owner", "owner"]
    assert [v["viewer"] for v in listed] == [1, 2] and listed[0]["share"] is None
    assert all(before <= v["since"] <= time.time() + 1 for v in listed)
    assert helper.call("status", id=sid)["opened"] is True
    load = helper.call("load")
    assert load["viewers"] == {"owner": 2, "control": 0, "view": 0}
    assert load["viewer_connects"]["owner"] == 2
    brief = helper.call("list", brief=True)["sessions"][0]
    assert [v["viewer"] for v in brief["viewers"]] == [1, 2]
    assert "opened" not in brief  # it says so only of one-shot sessions, whose link is used up

    alone.close()
    assert [v["viewer"] for v in wait_watching(helper, sid, 1)] == [2]
    assert other.screen()  # the other one never noticed
    other.close()
    wait_watching(helper, sid, 0)
    log = helper.log_text()
    assert f"QWD05710: session {sid}: viewer 1 joined (owner, share none); 1 watching" in log
    assert f"QWD05711: session {sid}: viewer 1 left (owner, share none) after " in log
    assert "the viewer closed (0 input messages dropped); 1 watching" in log
    assert helper.call("load")["viewers"]["owner"] == 0
    helper.call("stop", id=sid)
    assert_gone(helper, session)


def test_two_viewers_both_see_what_one_types(helper):
    session = running_session(helper)
    booted(helper, session["id"])
    typing, watching_one = viewer(helper, session["token"]), viewer(helper, session["token"])
    for v in (typing, watching_one):
        v.screen()
        v.request_update()
    marker = f"qwdtwo{random.randint(10000, 99999)}"
    typing.type_text(f"echo {marker} >/dev/ttyS0\n")
    wait_for_serial(helper, session["id"], marker, timeout=30)
    # the echo on tty1 reaches both screens
    assert typing.wait_update(timeout=10)
    assert watching_one.wait_update(timeout=10)
    typing.close()
    watching_one.close()


# ---------------------------------------------------------------- shares

def test_a_control_share_types_and_a_view_share_only_watches(helper):
    session = running_session(helper)
    sid = session["id"]
    view = helper.call("share", id=sid, kind="view")
    control = helper.call("share", id=sid, kind="control")
    for share in (view, control):
        assert share["session"] == sid and share["expires"] is None
        assert len(share["id"]) == 16 and len(share["token"]) == 22
        socket_path = os.path.join(helper.session_dir(sid), f"s-{share['id']}.sock")
        with open(token_file(helper, share["token"])) as f:
            assert f.read().strip() == f"{share['token']}: unix_socket:{socket_path}"
    assert [(s["id"], s["kind"]) for s in helper.call("status", id=sid)["viewer_shares"]] == [
        (view["id"], "view"), (control["id"], "control")]
    booted(helper, sid)

    watcher = viewer(helper, view["token"])
    typist = viewer(helper, control["token"])
    listed = wait_watching(helper, sid, 2)
    assert [(v["kind"], v["share"]) for v in listed] == [("view", view["id"]),
                                                          ("control", control["id"])]
    # the view share's keys, pointer and QEMU key events never reach the guest ...
    watcher.type_text("echo qwdview12345 >/dev/ttyS0\n")
    watcher.ext_key("xa\n")
    watcher.pointer(10, 10, buttons=1)
    # ... and it still watches: a whole screen, then the echo of what the control share types
    assert watcher.screen()
    watcher.request_update()
    typist.type_text("echo qwdcontrol678 >/dev/ttyS0\n")
    wait_for_serial(helper, sid, "qwdcontrol678", timeout=30)
    assert watcher.wait_update(timeout=10)
    assert "qwdview12345" not in serial_text(helper, sid)
    assert f"QWD05704: session {sid}: viewer 1 (view): dropping its input (KeyEvent first)" \
        in helper.log_text()

    # a view viewer that acts on the machine (xvp: power) is closed; nobody else notices
    watcher.send(b"\xfa\x00\x01\x02")
    assert watcher.closed(timeout=5)
    assert typist.screen()
    # any viewer that sends a message the display does not know is closed the same way
    stranger = viewer(helper, control["token"])
    stranger.send(b"\x99" + bytes(40))
    assert stranger.closed(timeout=5)
    assert typist.screen()
    assert [v["kind"] for v in wait_watching(helper, sid, 1)] == ["control"]
    log = helper.log_text()
    assert "refused xvp: a view-only viewer may not send it" in log
    assert "invalid message: a message type the display does not know" in log
    console = Console(helper, sid)
    assert console.run("echo $((6*7))") == "42"
    console.close()
    typist.close()
    helper.call("stop", id=sid)
    assert_gone(helper, session, (view["token"], control["token"]))


def test_revoking_a_share_closes_its_viewers_and_its_way_in(helper):
    session = running_session(helper)
    sid = session["id"]
    share = helper.call("share", id=sid, kind="control")
    kept = helper.call("share", id=sid, kind="view")
    revoked = viewer(helper, share["token"])
    owner = viewer(helper, session["token"])
    stays = viewer(helper, kept["token"])
    wait_watching(helper, sid, 3)
    assert helper.call("unshare", id=sid, share=share["id"]) == {"share": share["id"],
                                                                 "closed": 1}
    assert revoked.closed(timeout=5)
    assert not os.path.exists(token_file(helper, share["token"]))
    assert not os.path.exists(os.path.join(helper.session_dir(sid), f"s-{share['id']}.sock"))
    assert [s["id"] for s in helper.call("status", id=sid)["viewer_shares"]] == [kept["id"]]
    for v in (owner, stays):
        assert v.screen()
    # its token leads nowhere now: websockify closes at once
    with pytest.raises((Closed, Exception)):
        viewer(helper, share["token"])
    with pytest.raises(HelperError) as unknown:
        helper.call("unshare", id=sid, share=share["id"])
    assert unknown.value.code == "not_found"
    assert f"QWD05715: session {sid}: share {share['id']} revoked, 1 viewer(s) closed" \
        in helper.log_text()
    for v in (owner, stays):
        v.close()
    helper.call("stop", id=sid)
    assert_gone(helper, session, (kept["token"],))


def test_a_share_ends_at_its_expiry(helper):
    session = running_session(helper)
    sid = session["id"]
    share = helper.call("share", id=sid, kind="view", expires=int(time.time()) + 2)
    watcher = viewer(helper, share["token"])
    assert watcher.closed(timeout=8)
    assert helper.call("status", id=sid)["viewer_shares"] == []
    assert not os.path.exists(token_file(helper, share["token"]))
    assert f"QWD05716: session {sid}: share {share['id']} expired, 1 viewer(s) closed" \
        in helper.log_text()
    helper.call("stop", id=sid)


def test_share_arguments_are_checked(helper):
    session = running_session(helper)
    sid = session["id"]
    for arguments, field in (({"kind": "admin"}, "kind"), ({}, "kind"),
                             ({"kind": "view", "expires": int(time.time()) - 1}, "expires"),
                             ({"kind": "view", "expires": "soon"}, "expires")):
        with pytest.raises(HelperError) as bad:
            helper.call("share", id=sid, **arguments)
        assert bad.value.code == "bad_argument" and bad.value.data["field"] == field
    with pytest.raises(HelperError) as unknown:
        helper.call("share", id="0" * 32, kind="view")
    assert unknown.value.code == "not_found"
    shares = [helper.call("share", id=sid, kind="view") for _ in range(32)]
    with pytest.raises(HelperError) as full:
        helper.call("share", id=sid, kind="view")
    assert full.value.code == "limit_reached" and full.value.data["limit"] == "viewer_shares"
    tokens = [s["token"] for s in shares]
    helper.call("stop", id=sid)
    with pytest.raises(HelperError) as ended:
        helper.call("share", id=sid, kind="view")
    assert ended.value.code == "not_found"
    assert_gone(helper, session, tokens)


def test_shares_and_a_used_up_one_shot_link_survive_a_helper_restart(helper):
    shared = running_session(helper)
    share = helper.call("share", id=shared["id"], kind="view")
    oneshot = running_session(helper, oneshot=True)
    used = viewer(helper, oneshot["token"])
    wait_watching(helper, oneshot["id"], 1)
    helper.kill()
    helper.start()
    # the share's way in is back, with the same token
    shares = helper.call("status", id=shared["id"])["viewer_shares"]
    assert [s["id"] for s in shares] == [share["id"]]
    helper.wait_state(shared["id"], "running")
    assert viewer(helper, share["token"]).screen()
    # the one-shot session's viewer left with the helper that relayed it: it stops
    assert helper.wait_state(oneshot["id"], "ended")["ended_reason"] == "viewer_left"
    used.close()
    helper.call("stop", id=shared["id"])
    assert_gone(helper, shared, (share["token"],))


# ---------------------------------------------------------------- one-shot

def test_a_one_shot_session_opens_once_and_ends_with_its_viewer(helper):
    session = running_session(helper, oneshot=True)
    sid = session["id"]
    with pytest.raises(HelperError) as refused:
        helper.call("share", id=sid, kind="view")
    assert refused.value.code == "bad_argument"
    assert "opened" not in helper.call("list", brief=True)["sessions"][0]
    first = viewer(helper, session["token"])
    wait_watching(helper, sid, 1)
    assert helper.call("list", brief=True)["sessions"][0]["opened"] is True
    # the way in closed behind the first viewer: a second one never reaches the display
    assert not os.path.exists(os.path.join(helper.session_dir(sid), "relay.sock"))
    with pytest.raises(Exception):
        viewer(helper, session["token"])
    assert first.screen()
    assert helper.call("status", id=sid)["state"] == "running"
    first.close()
    left = time.monotonic()
    ended = helper.wait_state(sid, "ended", timeout=5)
    assert ended["ended_reason"] == "viewer_left"
    assert_gone(helper, session)
    assert time.monotonic() - left < 2, "the VM and its files must be gone within 2 s"
    assert f"QWD05036: session {sid}: stopping (viewer_left)" in helper.log_text()


# ---------------------------------------------------------------- idle stop

def test_idle_stop_fires_without_a_viewer_and_not_while_one_watches(helper):
    alone = running_session(helper, idle_stop_s=3)
    watched = running_session(helper, idle_stop_s=3)
    assert alone["idle_stop_s"] == 3
    assert alone["idle_stop_at"] == alone["created"] + 3
    v = viewer(helper, watched["token"])
    wait_watching(helper, watched["id"], 1)
    assert helper.call("status", id=watched["id"])["idle_stop_at"] is None
    ended = helper.wait_state(alone["id"], "ended", timeout=10)
    assert ended["ended_reason"] == "idle"
    assert_gone(helper, alone)
    time.sleep(4)  # past its idle time, but watched all along
    assert helper.call("status", id=watched["id"])["state"] == "running"
    assert v.screen()
    v.close()
    closed = time.time()
    status = procs.wait_until(
        lambda: (lambda s: s if s["idle_stop_at"] else None)(
            helper.call("status", id=watched["id"])), 5, interval=0.05, what="idle_stop_at")
    assert closed - 1 <= status["idle_stop_at"] - 3 <= closed + 1
    assert helper.wait_state(watched["id"], "ended", timeout=10)["ended_reason"] == "idle"
    assert time.time() - closed >= 2.8
    with pytest.raises(HelperError) as bad:
        start_tiny(helper, idle_stop_s=-1)
    assert bad.value.code == "bad_argument" and bad.value.data["field"] == "idle_stop_s"


# ---------------------------------------------------------------- bad viewers

BAD_CLIENTS = {
    "not RFB at all": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a version the display does not speak": b"RFB 004.000\n",
    "VNC authentication, which it does not offer": b"RFB 003.008\n\x02" + bytes(16),
    "half a message, then gone": b"RFB 003.008\n\x01\x01\x02\x00\xff",
    "more encodings announced than sent": b"RFB 003.008\n\x01\x01\x02\x00\xff\xff" + bytes(100),
    "cut text over 1 MiB": b"RFB 003.008\n\x01\x01\x06\x00\x00\x00\x00\x20\x00\x00",
    "the largest extended clipboard": b"RFB 003.008\n\x01\x01\x06\x00\x00\x00\x80\x00\x00\x00",
    "an unknown QEMU message": b"RFB 003.008\n\x01\x01\xff\x07",
    "an unknown audio operation": b"RFB 003.008\n\x01\x01\xff\x01\x00\x09",
}


def test_bad_viewers_never_disturb_another_viewer_or_the_vm(helper):
    session = running_session(helper)
    sid = session["id"]
    view = helper.call("share", id=sid, kind="view")
    good = viewer(helper, session["token"])
    for what, data in BAD_CLIENTS.items():
        bad = RfbClient.websocket(ws_url(helper, session["token"]))
        bad.send(data)
        bad.close()
        assert good.screen(), what
    # random bytes after a good handshake, from control and view viewers alike
    rng = random.Random(16)
    for round_ in range(12):
        token = view["token"] if round_ % 2 else session["token"]
        noisy = viewer(helper, token)
        noisy.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
        noisy.close()
        assert good.screen(), round_
    wait_watching(helper, sid, 1)
    assert [v["viewer"] for v in watching(helper, sid)] == [1]
    assert helper.call("status", id=sid)["state"] == "running"
    console = Console(helper, sid)
    assert console.run("echo $((6*7))") == "42"
    console.close()
    assert helper.running()
    good.close()
    helper.call("stop", id=sid)
    assert_gone(helper, session, (view["token"],))


def test_a_slow_viewer_only_slows_itself(helper):
    """A viewer that stops reading fills its own buffer; the relay stops reading the display
    for it (QEMU throttles that client), and the other viewer keeps getting its updates."""
    session = running_session(helper)
    slow = viewer(helper, session["token"])
    fast = viewer(helper, session["token"])
    for _ in range(30):  # whole screens, never read: ~1 MiB each
        slow.request_update(incremental=False)
    for _ in range(5):
        assert fast.screen()
    assert slow.screen(timeout=30)  # and it catches up once it reads
    slow.close()
    fast.close()
