# SPDX-License-Identifier: Apache-2.0
"""Issue 16 through Apache: share links that watch or type (and are revoked), one-shot links,
idle stop, and who is watching on the API, My sessions and the monitor — real Apache, helper,
websockify and QEMU, viewers speaking RFB through the websocket gate as the viewer page does."""
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from qwdtest import procs, vm
from qwdtest.helper import wait_for_serial
from qwdtest.rfb import Closed, RfbClient, link_ticket
from test_300_module import Browser, api, api_create, csrf_of, wait_running

LOG_SHARE_LOGIN = 3712  # 403: QwdShareLogin, a share opened without logging in
LOG_NOT_OWNER = 513  # 404 for another user's session (a warning)


def http_status(url, method="GET"):
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def page(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.read().decode()


def open_link(link):
    """A viewer of a link, as qwd-viewer.js connects: a fresh ticket as the subprotocol."""
    url, subprotocol = link_ticket(link)
    return RfbClient.websocket(url, subprotocols=("binary", subprotocol)).handshake()


def helper_session(helper, owner="alice"):
    return [s for s in helper.call("list")["sessions"] if s["owner"] == owner][-1]


def viewers_of(httpd, session_id, user="alice"):
    status, answer, _ = api(httpd, "GET", "sessions/" + session_id, user=user)
    assert status == 200, answer
    return answer["viewers"]


def wait_viewers(httpd, session_id, count, user="alice"):
    def counted():
        viewers = viewers_of(httpd, session_id, user)
        return (viewers,) if len(viewers) == count else None
    return procs.wait_until(counted, 10, interval=0.1, what=f"{count} viewer(s)")[0]


def share(httpd, session_id, kind, user="alice", expect=201, **body):
    status, answer, _ = api(httpd, "POST", f"sessions/{session_id}/shares", {"kind": kind, **body},
                            user=user)
    assert status == expect, answer
    return answer


# ---------------------------------------------------------------- shares

def test_view_and_control_shares_through_their_links(httpd, helper):
    session = api_create(httpd)
    sid = session["id"]
    wait_running(httpd, sid)
    view = share(httpd, sid, "view")
    control = share(httpd, sid, "control")
    link_pattern = re.escape(httpd.url("/qwd/s/")) + "[0-9a-f]{32}"
    for made, kind in ((view, "view"), (control, "control")):
        assert made["kind"] == kind and made["expires"] is None and made["revoked"] is None
        assert re.fullmatch(link_pattern, made["url"])
        # its own capability: neither the owner's link nor made of any id the API shows
        assert made["url"] != session["viewer_url"]
        assert sid not in made["url"] and made["id"] not in made["url"]
    status, listed, _ = api(httpd, "GET", f"sessions/{sid}/shares")
    assert status == 200 and [s["id"] for s in listed["shares"]] == [view["id"], control["id"]]
    # the viewer page says what a view share's viewer may do; a control one is a full viewer
    assert 'data-view-only="1"' in page(view["url"]) and "View only" in page(view["url"])
    assert 'data-kind="control"' in page(control["url"])
    assert "data-view-only" not in page(control["url"])
    helper_id = helper_session(helper)["id"]
    wait_for_serial(helper, helper_id, vm.BANNER, timeout=90)
    time.sleep(1)

    watcher, typist = open_link(view["url"]), open_link(control["url"])
    viewers = wait_viewers(httpd, sid, 2)
    assert [(v["kind"], v["share"]) for v in viewers] == [("view", view["id"]),
                                                           ("control", control["id"])]
    assert all(v["since"] >= session["created"] for v in viewers)
    watcher.type_text("echo qwdviewkey1 >/dev/ttyS0\n")
    assert watcher.screen()
    watcher.request_update()
    typist.type_text("echo qwdcontrolkey2 >/dev/ttyS0\n")
    wait_for_serial(helper, helper_id, "qwdcontrolkey2", timeout=30)
    assert watcher.wait_update(timeout=10)  # the view share sees what the control one typed
    with open(os.path.join(helper.session_dir(helper_id), "serial.log"), "rb") as f:
        assert b"qwdviewkey1" not in f.read()

    # the monitor and My sessions say who is watching
    admin = Browser(httpd)
    admin.login("admin")
    status, monitor = admin.get("monitor")
    assert status == 200
    row = re.search(rf'<tr id="s-{sid}".*?</tr>', monitor, re.S).group(0)
    assert 'data-viewers="2"' in row
    assert "view share since" in row and "control share since" in row
    assert re.search(r'id="viewers">0 with the owner\'s link, 1 through control shares, '
                     r'1 through view shares<', monitor)
    owner = Browser(httpd)
    owner.login("alice")
    status, mine = owner.get("sessions")
    assert status == 200 and view["url"] in mine and control["url"] in mine
    watcher.close()
    typist.close()
    wait_viewers(httpd, sid, 0)


def test_revoking_a_share_closes_its_viewer_and_its_link_answers_410(httpd, helper):
    session = api_create(httpd)
    sid = session["id"]
    wait_running(httpd, sid)
    made = share(httpd, sid, "control")
    viewer = open_link(made["url"])
    owner_viewer = open_link(session["viewer_url"])
    wait_viewers(httpd, sid, 2)
    spare_url, spare_protocol = link_ticket(made["url"])  # minted before the revocation
    status, revoked, _ = api(httpd, "DELETE", f"sessions/{sid}/shares/{made['id']}")
    assert status == 200 and revoked["revoked"] and "url" not in revoked
    assert viewer.closed(timeout=5)
    assert owner_viewer.screen()  # the owner's link is not touched
    assert http_status(made["url"]) == 410
    assert http_status(made["url"] + "/ticket", "POST") == 410
    with pytest.raises(Exception) as refused:
        RfbClient.websocket(spare_url, subprotocols=("binary", spare_protocol))
    assert getattr(refused.value, "status_code", None) == 403
    assert [s["revoked"] is not None for s in
            api(httpd, "GET", f"sessions/{sid}/shares")[1]["shares"]] == [True]
    # again: nothing left to revoke, the same answer
    assert api(httpd, "DELETE", f"sessions/{sid}/shares/{made['id']}")[0] == 200
    assert api(httpd, "DELETE", f"sessions/{sid}/shares/0123456789abcdef")[0] == 404

    # the same through My sessions: a share made on the page, then revoked there
    browser = Browser(httpd)
    browser.login("alice")
    token = browser.csrf("sessions")
    status, _ = browser.post("sessions", {"action": "share", "id": sid, "kind": "view",
                                          "expires_in": "3600", "csrf": token})
    assert status == 200
    status, mine = browser.get("sessions")
    listed = api(httpd, "GET", f"sessions/{sid}/shares")[1]["shares"]
    live = [s for s in listed if s["revoked"] is None]
    assert len(live) == 1 and live[0]["kind"] == "view"
    assert live[0]["expires"] - live[0]["created"] == 3600
    assert live[0]["url"] in mine and f'id="share-{live[0]["id"]}"' in mine
    status, _ = browser.post("sessions", {"action": "revoke", "id": sid, "share": live[0]["id"],
                                          "csrf": csrf_of(mine)})
    assert status == 200
    assert http_status(live[0]["url"]) == 410
    owner_viewer.close()


def test_share_requests_are_checked(httpd, helper):
    httpd.expect_lognos(LOG_NOT_OWNER)
    session = api_create(httpd)
    sid = session["id"]
    wait_running(httpd, sid)
    for body, field in (({"kind": "admin"}, "kind"), ({}, "kind"),
                        ({"kind": "view", "expires_in_s": 0}, "expires_in_s"),
                        ({"kind": "view", "expires_in_s": "1h"}, "expires_in_s")):
        status, answer, _ = api(httpd, "POST", f"sessions/{sid}/shares", body)
        assert status == 400 and answer["field"] == field, answer
    # another user's session: no such session for bob
    assert share(httpd, sid, "view", user="bob", expect=404)["error"] == "not_found"
    assert api(httpd, "GET", f"sessions/{sid}/shares", user="bob")[0] == 404
    assert api(httpd, "PUT", f"sessions/{sid}/shares")[0] == 405
    # a share that expires: its link answers 410 once it did, and the helper closed its viewer
    short = share(httpd, sid, "view", expires_in_s=2)
    viewer = open_link(short["url"])
    assert viewer.closed(timeout=8)
    assert http_status(short["url"]) == 410
    assert api(httpd, "DELETE", "sessions/" + sid)[0] == 200
    assert share(httpd, sid, "view", expect=409)["error"] == "ended"


def test_a_share_link_needs_a_login_when_the_site_says_so(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdAdmin admin\nQwdShareLogin On")
    httpd.expect_lognos(LOG_SHARE_LOGIN)
    session = api_create(httpd)
    wait_running(httpd, session["id"])
    made = share(httpd, session["id"], "view")
    assert http_status(made["url"]) == 403
    assert http_status(made["url"] + "/ticket", "POST") == 403
    assert http_status(session["viewer_url"]) == 200  # the owner's own link is not a share
    someone = Browser(httpd)
    someone.login("carol")
    status, viewer_page = someone.get(made["url"])
    assert status == 200 and 'data-view-only="1"' in viewer_page


def test_no_shares_without_links_to_open_them(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdAdmin admin\nQwdWebsocketTickets Off")
    session = api_create(httpd)
    wait_running(httpd, session["id"])
    assert share(httpd, session["id"], "view", expect=409)["error"] == "no_shares"
    assert api(httpd, "GET", f"sessions/{session['id']}/shares")[1] == {"shares": []}


# ---------------------------------------------------------------- one-shot

def test_a_one_shot_link_opens_once_and_closing_it_stops_the_vm(httpd, helper):
    session = api_create(httpd, oneshot=True)
    sid = session["id"]
    wait_running(httpd, sid)
    assert share(httpd, sid, "view", expect=400)["field"] == "id"
    first_ticket = link_ticket(session["viewer_url"])
    second_ticket = link_ticket(session["viewer_url"])  # both minted before anyone opened it
    only = RfbClient.websocket(first_ticket[0], subprotocols=("binary", first_ticket[1]))
    only.handshake()
    assert api(httpd, "GET", "sessions/" + sid)[1]["opened"] is True
    # the second open is refused: by the link, and by the gate for a ticket minted before
    assert http_status(session["viewer_url"]) == 410
    assert http_status(session["viewer_url"] + "/ticket", "POST") == 410
    with pytest.raises(Exception) as refused:
        RfbClient.websocket(second_ticket[0], subprotocols=("binary", second_ticket[1]))
    assert getattr(refused.value, "status_code", None) == 403
    assert only.screen()
    vm_session = helper_session(helper)
    only.close()
    closed = time.monotonic()
    procs.wait_until(lambda: not procs.pid_alive(vm_session["pid"])
                     and not os.path.exists(helper.session_dir(vm_session["id"])), 2,
                     interval=0.02, what="the VM and its files to be gone")
    gone_after = time.monotonic() - closed
    assert gone_after < 2, gone_after
    assert not os.path.exists(os.path.join(helper.state_dir, "tokens", vm_session["token"]))
    assert helper.call("status", id=vm_session["id"])["ended_reason"] == "viewer_left"
    status, ended, _ = api(httpd, "GET", "sessions/" + sid)
    assert ended["state"] == "ended" and ended["ended_reason"] == "viewer_left"
    assert http_status(session["viewer_url"]) == 410


def test_the_form_says_what_one_shot_means(httpd, helper):
    status, form = Browser(httpd).get("")
    assert status == 200
    assert "the link opens the desktop once, for one viewer; when that viewer closes it, " \
           "the machine stops" in form


# ---------------------------------------------------------------- idle stop

def test_idle_stop_fires_without_a_viewer_and_not_while_one_watches(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdAdmin admin\nQwdIdleStop 4s")
    browser = Browser(httpd)
    status, form = browser.get("")
    assert 'id="idle-stop"' in form and "after 4 seconds" in form
    status, result = browser.create("alice")
    assert status == 200, result
    idle_id = re.search(r'<dd id="session">([0-9a-f]{32})</dd>', result).group(1)
    stops_at = int(re.search(r'<dd id="idle-stop" data-unix="(\d+)"', result).group(1))
    assert 2 <= stops_at - time.time() <= 5
    status, mine = browser.get("sessions")
    assert re.search(rf'<tr id="s-{idle_id}".*?class="qwd-idle" data-unix="{stops_at}"', mine,
                     re.S)

    watched = api_create(httpd, user="bob")
    wait_running(httpd, watched["id"], user="bob")
    viewer = open_link(watched["viewer_url"])
    wait_viewers(httpd, watched["id"], 1, user="bob")

    def ended(session_id, user):
        answer = api(httpd, "GET", "sessions/" + session_id, user=user)[1]
        return answer if answer["state"] == "ended" else None
    gone = procs.wait_until(lambda: ended(idle_id, "alice"), 10, interval=0.2,
                            what="the idle session to stop")
    assert gone["ended_reason"] == "idle"
    time.sleep(4)  # past its idle time, watched all along
    assert api(httpd, "GET", "sessions/" + watched["id"], user="bob")[1]["state"] == "running"
    assert viewer.screen()
    viewer.close()
    left = time.monotonic()
    gone = procs.wait_until(lambda: ended(watched["id"], "bob"), 10, interval=0.2,
                            what="the session to stop once nobody watches")
    assert gone["ended_reason"] == "idle" and time.monotonic() - left >= 3.5


def test_an_idle_stop_longer_than_the_lifetime_is_left_to_the_expiry(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdAdmin admin\nQwdIdleStop 2h")
    session = api_create(httpd, lifetime_s=600)  # the helper would refuse idle_stop_s 7200
    assert session["idle_stop_at"] is None
    assert helper_session(helper)["idle_stop_s"] == 0
