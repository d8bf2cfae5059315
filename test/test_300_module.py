# SPDX-License-Identifier: Apache-2.0
"""mod_qwd end to end: a private Apache with the module, a real qwd-helper and QEMU (TCG).
Form and API creates, the RFB banner through the returned websocket URL, the QR code, owners
and admins, limits, bad input, CSRF, XSS, restarts, concurrency, QwdAuth form."""
import base64
import html
import http.cookiejar
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from qwdtest import procs, rfb
from qwdtest.httpd import DEFAULT_QWD_CONF, Httpd

MACHINE = "tiny.qcow2"
# Log numbers (QWDnnnnn) the module writes at warning level or above; tests declare the ones
# they provoke, so any other one fails the test in the httpd fixture's teardown.
LOG_AUTH_FAILED = 305
LOG_CSRF = 801
LOG_NOT_LOGGED_IN = 803
LOG_NOT_ADMIN = 902
LOG_MONITOR_NO_LOGIN = 901
LOG_NOT_OWNER = 513
LOG_HELPER_DOWN = 101
LOG_ADMIN_STOPPED_ALL = 904  # notice: Apache logs notices whatever LogLevel says


# ---------------------------------------------------------------- clients

class Browser:
    """A cookie-keeping HTML client (urllib), like one browser profile."""

    def __init__(self, httpd):
        self.httpd = httpd
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=httpd.ssl_context()))

    def request(self, method, path, fields=None, multipart=False, headers=None):
        data = None
        headers = dict(headers or {})
        if fields is not None:
            if multipart:
                data, content_type = encode_multipart(fields)
            else:
                data = urllib.parse.urlencode(fields).encode()
                content_type = "application/x-www-form-urlencoded"
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.httpd.url(path), data=data, method=method,
                                     headers=headers)
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields, multipart=False):
        return self.request("POST", path, fields, multipart)

    def csrf(self, path=""):
        status, page = self.get(path)
        assert status == 200, page
        return csrf_of(page)

    def login(self, user, password=None):
        fields = {"action": "login", "user": user, "csrf": self.csrf("sessions")}
        if password is not None:
            fields["password"] = password
        return self.post("sessions", fields)

    def create(self, user, machine=MACHINE, multipart=False, **fields):
        form = {"user": user, "machine": machine, "memory": "256", "csrf": self.csrf()}
        form.update({k: str(v) for k, v in fields.items()})
        return self.post("", form, multipart)


def encode_multipart(fields):
    boundary = "qwdtest" + os.urandom(8).hex()
    lines = []
    for name, value in fields.items():
        lines += [f"--{boundary}", f'Content-Disposition: form-data; name="{name}"', "",
                  str(value)]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode(), f"multipart/form-data; boundary={boundary}"


def csrf_of(page):
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, page
    return match.group(1)


def api(httpd, method, path, body=None, user="alice", password="x", raw=None, auth=True):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(httpd.url("api/" + path), data=data, method=method)
    if auth:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60, context=httpd.ssl_context()) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body) if body.strip() else {}, err.headers
        except ValueError:  # an answer of Apache itself (mod_auth_basic), not of the module
            return err.code, {"html": body.decode(errors="replace")}, err.headers


def api_create(httpd, user="alice", expect=201, **body):
    body.setdefault("machine", MACHINE)
    body.setdefault("memory_mib", 256)
    status, answer, _ = api(httpd, "POST", "sessions", body, user=user)
    assert status == expect, answer
    return answer


def wait_running(httpd, session_id, user="alice", timeout=20):
    def running():
        status, answer, _ = api(httpd, "GET", "sessions/" + session_id, user=user)
        assert status == 200, answer
        return answer if answer["state"] == "running" else None
    return procs.wait_until(running, timeout, interval=0.1, what="the session to run")


def helper_ids(helper):
    return sorted(s["id"] for s in helper.call("list")["sessions"])


def db_rows(httpd):
    """The sessions table as the module wrote it (read-only, via python's sqlite3)."""
    import sqlite3
    if not os.path.exists(httpd.db_path):
        return []
    with sqlite3.connect(f"file:{httpd.db_path}?mode=ro", uri=True, timeout=10) as db:
        try:
            return db.execute("SELECT id, owner, state, helper_id FROM qwd_sessions").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return []  # the module never needed the database
            raise


# ---------------------------------------------------------------- create → link → RFB

def test_api_create_gives_a_websocket_that_speaks_rfb(httpd, helper):
    status, machines, _ = api(httpd, "GET", "machines")
    assert status == 200
    assert MACHINE in [m["name"] for m in machines["machines"]]

    # not one-shot: its display is opened below and its link used again after (a one-shot
    # session's link opens once and it stops when that viewer leaves: test_330_shares)
    session = api_create(httpd, cpu=1, lifetime_s=600, oneshot=False)
    for key in ("id", "state", "expires", "viewer_url", "websocket_url"):
        assert key in session, session
    # one port: websockify's token never leaves the server; links go through Apache
    assert "token" not in session
    assert session["owner"] == "alice" and session["oneshot"] is False
    assert session["expires"] - session["created"] == pytest.approx(600, abs=5)
    assert re.match(rf"ws://127\.0\.0\.1:{httpd.port}/qwd/ws\?ticket=[0-9a-f]{{32}}\.\d+\.",
                    session["websocket_url"])
    # the link is a capability of its own (an HMAC of the id under the server's key): the
    # session's id, which the API, the pages and the logs show, opens nothing
    assert re.fullmatch(httpd.url("/qwd/s/") + "[0-9a-f]{32}", session["viewer_url"])
    assert session["id"] not in session["viewer_url"]

    wait_running(httpd, session["id"])
    assert http_status(httpd.url("/qwd/s/" + session["id"])) == 404
    assert rfb.websocket_rfb_banner(session["websocket_url"]) == b"RFB 003.008\n"
    # the link serves the viewer page, which loads noVNC's core from under the Location
    with urllib.request.urlopen(session["viewer_url"], timeout=10) as resp:
        assert resp.status == 200 and "qwd-viewer.js" in resp.read().decode()
    for path in ("/qwd/static/qwd-viewer.js", "/qwd/viewer/core/rfb.js"):
        with urllib.request.urlopen(httpd.url(path), timeout=10) as resp:
            assert resp.status == 200 and "javascript" in resp.headers["Content-Type"]

    status, listed, _ = api(httpd, "GET", "sessions")
    assert [s["id"] for s in listed["sessions"]] == [session["id"]]
    status, stopped, _ = api(httpd, "DELETE", "sessions/" + session["id"])
    assert status == 200 and stopped["state"] == "ended"
    assert stopped["ended_reason"] == "stopped"
    assert helper_ids(helper) == []
    status, again, _ = api(httpd, "GET", "sessions/" + session["id"])
    assert status == 200 and again["state"] == "ended"


def assert_opens_at_once(url):
    """A script opening url right after it got it, retrying every 10 ms, gets the display
    with that same URL: until the display accepts, the gate answers 503 without spending the
    ticket; never a websocket that closes without data, never a 403. Then the ticket is
    spent: a replay is refused."""
    banner, outcomes = rfb.open_at_once(url)
    assert banner == b"RFB 003.008\n", outcomes
    assert set(outcomes[:-1]) <= {503}, outcomes
    assert rfb.websocket_status(url) == 403
    return outcomes


def test_a_websocket_url_opened_at_once_speaks_rfb(httpd, helper):
    """Issue 13.1: a ticket counts as used only by a connection that reaches the display."""
    session = api_create(httpd, lifetime_s=600)  # a cold start
    assert assert_opens_at_once(session["websocket_url"])
    # right after a helper restart, which probes every display again before saying running
    helper.stop()
    helper.start()
    status, again, _ = api(httpd, "GET", "sessions/" + session["id"])
    assert status == 200 and again["state"] in ("starting", "running"), again
    assert_opens_at_once(again["websocket_url"])


def test_a_ticket_is_not_spent_by_an_upgrade_that_never_reached_websockify(httpd, helper):
    """websockify restarting (the helper restarts it a second after it died): the proxy
    cannot upgrade, the gate gives the ticket back, and the same URL works once it is back."""
    import signal
    session = api_create(httpd, lifetime_s=600)
    wait_running(httpd, session["id"])
    pid_file = os.path.join(helper.state_dir, "websockify.pid")
    with open(pid_file) as f:
        old_pid = int(f.read())
    os.kill(old_pid, signal.SIGKILL)
    procs.wait_until(lambda: not procs.pid_alive(old_pid), 5, interval=0.01,
                     what="websockify to die")
    assert rfb.websocket_status(session["websocket_url"]) == 503
    assert_opens_at_once(session["websocket_url"])


def post_ticket(link):
    """POST LINK/ticket as the viewer does: (status, JSON answer, headers)."""
    req = urllib.request.Request(link + "/ticket", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def test_the_link_serves_the_viewer_and_a_ticket_per_connect(httpd, helper):
    """Issue 13.2: /s/ID serves our viewer page (no ticket in it); POST /s/ID/ticket hands
    out a fresh ticket for each connect, as a websocket subprotocol the gate reads and
    removes: RFB without any ticket in the URL, once per ticket."""
    import websocket  # python3-websocket
    session = api_create(httpd, lifetime_s=600)
    link = session["viewer_url"]
    wait_running(httpd, session["id"])
    with urllib.request.urlopen(link, timeout=30) as resp:
        page = resp.read().decode()
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        csp = resp.headers["Content-Security-Policy"]
    assert "qwd-viewer.js" in page and "ticket" in page and session["id"] + "." not in page
    assert f'data-novnc="/qwd/viewer/"' in page
    assert "script-src 'self'" in csp and f"ws://127.0.0.1:{httpd.port}/qwd/ws" in csp

    status, first, headers = post_ticket(link)
    assert status == 200 and headers["Cache-Control"] == "no-store", first
    assert first["url"] == f"ws://127.0.0.1:{httpd.port}/qwd/ws"
    assert first["subprotocol"].startswith("qwd-ticket." + session["id"] + ".")
    assert first["session_expires"] == session["expires"]
    status, second, _ = post_ticket(link)
    assert status == 200 and second["subprotocol"] != first["subprotocol"]

    ws = websocket.create_connection(first["url"], timeout=10,
                                     subprotocols=["binary", first["subprotocol"]])
    try:
        # websockify picked "binary": it never saw the ticket
        assert ws.getsubprotocol() == "binary"
        assert ws.recv()[:12] == b"RFB 003.008\n"
    finally:
        ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(first["url"], timeout=10,
                                    subprotocols=["binary", first["subprotocol"]])
    assert refused.value.status_code == 403  # spent
    assert rfb.websocket_rfb_banner(first["url"], subprotocols=["binary", second["subprotocol"]]) \
        == b"RFB 003.008\n"

    status, answer, _ = post_ticket(httpd.url("/qwd/s/" + "0" * 32))
    assert status == 404 and answer["error"] == "not_found"
    req = urllib.request.Request(link + "/ticket", method="GET")
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(req, timeout=10)
    assert wrong.value.code == 405
    status, _, _ = api(httpd, "DELETE", "sessions/" + session["id"])
    assert status == 200
    status, answer, _ = post_ticket(link)
    assert status == 410 and answer["error"] == "ended" and "stopped" in answer["message"]
def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def follow_link(link):
    """The Location a session link (/qwd/s/ID) redirects to, parsed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None
    try:
        urllib.request.build_opener(NoRedirect).open(link, timeout=30)
    except urllib.error.HTTPError as err:
        assert err.code == 303, err.read()
        return urllib.parse.urlparse(err.headers["Location"])
    raise AssertionError(f"{link} did not redirect")


def test_without_static_url_the_link_redirects_to_novnc(workdir, helper):
    """No QwdStaticURL, so no viewer script: the link redirects to noVNC's own page with a
    fresh ticket in the URL fragment (never sent to a server), which connects once."""
    httpd = Httpd(workdir, helper, static_url=False).start()
    try:
        session = api_create(httpd, cpu=1)
        wait_running(httpd, session["id"])
        viewer = follow_link(session["viewer_url"])
        assert viewer.path == "/qwd/viewer/vnc.html" and not viewer.query
        fragment = urllib.parse.parse_qs(viewer.fragment)
        assert fragment["autoconnect"] == ["1"] and fragment["resize"] == ["remote"]
        assert fragment["port"] == [str(httpd.port)] and fragment["host"] == ["127.0.0.1"]
        assert fragment["path"][0].startswith("qwd/ws?ticket=" + session["id"] + ".")
        ws_url = f"ws://127.0.0.1:{httpd.port}/" + fragment["path"][0]
        assert rfb.websocket_rfb_banner(ws_url) == b"RFB 003.008\n"
    finally:
        httpd.stop()
    httpd.assert_log_clean()


def test_direct_websockify_port_still_works(workdir, helper):
    """QwdWebsocketURL ws://HOST:PORT/ without tickets: links carry websockify's token."""
    httpd = Httpd(workdir, helper, one_port=False).start()
    try:
        session = api_create(httpd, cpu=1)
        assert re.match(r"ws://127\.0\.0\.1:\d+/\?token=", session["websocket_url"])
        viewer = urllib.parse.urlparse(session["viewer_url"])
        query = urllib.parse.parse_qs(viewer.query)
        assert viewer.path == "/novnc/vnc.html"
        assert query["path"] == ["?token=" + session["token"]]
        assert query["port"] == [str(helper.websockify_port)]
        wait_running(httpd, session["id"])
        assert rfb.websocket_rfb_banner(session["websocket_url"]) == b"RFB 003.008\n"
        # the token is not stored: listings learn it from the helper
        status, listed, _ = api(httpd, "GET", "sessions")
        assert [s["token"] for s in listed["sessions"]] == [session["token"]]
        status, again, _ = api(httpd, "GET", "sessions/" + session["id"])
        assert again["token"] == session["token"]
        assert again["viewer_url"] == session["viewer_url"]
        import sqlite3
        with sqlite3.connect(f"file:{httpd.db_path}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute("SELECT * FROM qwd_sessions").fetchall()
        assert len(rows) == 1 and session["token"] not in str(rows)
    finally:
        httpd.stop()
    httpd.assert_log_clean()


def test_form_create_shows_link_token_qr_and_expiry(httpd, helper, workdir):
    browser = Browser(httpd)
    status, form = browser.get("")
    assert status == 200
    assert re.search(f'<option value="{MACHINE}"( data-warm="1")? data-arch="x86_64">{MACHINE} '
                     r'\(x86_64\) - Tiny busybox test VM \(disk\)', form), form
    assert 'name="cpu"' in form and 'name="memory"' in form and 'name="lifetime"' in form
    assert 'name="oneshot"' in form and 'name="terms"' not in form

    status, page = browser.create("carol", cpu=1, lifetime=900)
    assert status == 200, page
    link = html.unescape(re.search(r'<a id="viewer" href="([^"]+)"', page).group(1))
    session_id = re.search(r'<dd id="session">([0-9a-f]{32})</dd>', page).group(1)
    assert re.fullmatch(httpd.url("/qwd/s/") + "[0-9a-f]{32}", link) and session_id not in link
    assert f'<code id="link">{link}</code>' in page
    assert 'id="token"' not in page  # websockify's token stays on the server
    assert re.search(r'<dd id="expires" data-unix="\d+">\d{4}-\d\d-\d\d ', page)

    # the inline SVG QR code decodes (rsvg-convert + zbarimg) to exactly the link
    svg = re.search(r"(<svg .*?</svg>)", page, re.S).group(1)
    svg_path, png_path = os.path.join(workdir, "qr.svg"), os.path.join(workdir, "qr.png")
    with open(svg_path, "w") as f:
        f.write(svg)
    subprocess.run(["rsvg-convert", "-o", png_path, svg_path], check=True)
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", png_path], check=True,
                             capture_output=True, text=True).stdout.strip()
    assert decoded == link

    wait_running(httpd, session_id, user="carol")
    status, ticket, _ = post_ticket(link)
    assert status == 200, ticket
    assert rfb.websocket_rfb_banner(ticket["url"], subprotocols=["binary", ticket["subprotocol"]]) \
        == b"RFB 003.008\n"

    # the identity cookie set at create shows the session under /sessions
    status, mine = browser.get("sessions")
    assert status == 200 and f'id="s-{session_id}"' in mine


def test_multipart_form_create(httpd, helper):
    browser = Browser(httpd)
    status, page = browser.create("dave", multipart=True, cpu=1)
    assert status == 200, page
    assert re.search(r'<dd id="session">[0-9a-f]{32}</dd>', page)
    assert len(helper_ids(helper)) == 1
    assert [row[1] for row in db_rows(httpd)] == ["dave"]


# ---------------------------------------------------------------- owners and admins

def test_users_see_and_stop_only_their_own_sessions(httpd, helper):
    httpd.expect_lognos(LOG_NOT_OWNER, LOG_NOT_LOGGED_IN)
    alice = api_create(httpd, user="alice")
    bob = api_create(httpd, user="bob")

    status, listed, _ = api(httpd, "GET", "sessions", user="bob")
    assert [s["id"] for s in listed["sessions"]] == [bob["id"]]
    status, answer, _ = api(httpd, "GET", "sessions/" + alice["id"], user="bob")
    assert status == 404 and answer["error"] == "not_found"
    status, answer, _ = api(httpd, "DELETE", "sessions/" + alice["id"], user="bob")
    assert status == 404
    # ?all=1 is for admins only
    status, listed, _ = api(httpd, "GET", "sessions?all=1", user="bob")
    assert [s["id"] for s in listed["sessions"]] == [bob["id"]]

    # the HTML side: bob's browser neither lists nor stops alice's session
    bob_browser = Browser(httpd)
    status, _ = bob_browser.login("bob")
    assert status == 200
    status, page = bob_browser.get("sessions")
    assert bob["id"] in page and alice["id"] not in page
    status, page = bob_browser.post("sessions", {"action": "stop", "id": alice["id"],
                                                 "csrf": bob_browser.csrf("sessions")})
    assert status == 404
    # a browser with no identity cannot stop anything, even knowing the id
    stranger = Browser(httpd)
    status, _ = stranger.post("sessions", {"action": "stop", "id": alice["id"],
                                           "csrf": stranger.csrf()})
    assert status == 403
    assert len(helper_ids(helper)) == 2

    # alice stops her own through the page
    alice_browser = Browser(httpd)
    alice_browser.login("alice")
    status, page = alice_browser.post("sessions", {"action": "stop", "id": alice["id"],
                                                   "csrf": alice_browser.csrf("sessions")})
    assert status == 200 and re.search(rf'id="s-{alice["id"]}" class="qwd-ended"', page)
    assert len(helper_ids(helper)) == 1


def test_admin_monitor_lists_and_stops_all(httpd, helper):
    httpd.expect_lognos(LOG_NOT_ADMIN, LOG_MONITOR_NO_LOGIN, LOG_ADMIN_STOPPED_ALL)
    first = api_create(httpd, user="alice")
    second = api_create(httpd, user="bob")
    third = api_create(httpd, user="bob")

    status, _ = Browser(httpd).get("monitor")
    assert status == 403
    bob_browser = Browser(httpd)
    bob_browser.login("bob")
    status, _ = bob_browser.get("monitor")
    assert status == 403

    admin = Browser(httpd)
    admin.login("admin")
    status, page = admin.get("monitor")
    assert status == 200
    assert 'id="load"' in page and "MiB available" in page
    for session in (first, second, third):
        assert f'id="s-{session["id"]}"' in page
    assert page.count('class="qwd-owner">bob<') == 2

    status, listed, _ = api(httpd, "GET", "sessions?all=1", user="admin")
    assert len(listed["sessions"]) == 3
    status, _, _ = api(httpd, "DELETE", "sessions/" + first["id"], user="admin")
    assert status == 200
    assert len(helper_ids(helper)) == 2

    status, page = admin.post("monitor", {"action": "stop_all", "csrf": admin.csrf("monitor")})
    assert status == 200
    assert helper_ids(helper) == []
    assert "qwd-running" not in page and "qwd-starting" not in page
    assert {row[2] for row in db_rows(httpd)} == {"ended"}


def test_a_vm_that_ended_shows_as_ended(httpd, helper):
    session = api_create(httpd)
    status, answer, _ = api(httpd, "GET", "sessions/" + session["id"])
    helper_id = [s["id"] for s in helper.call("list")["sessions"]][0]
    helper.call("stop", id=helper_id)
    status, answer, _ = api(httpd, "GET", "sessions/" + session["id"])
    assert status == 200 and answer["state"] == "ended"
    assert "websocket_url" not in answer
    browser = Browser(httpd)
    browser.login("alice")
    status, page = browser.get("sessions")
    assert re.search(rf'id="s-{session["id"]}" class="qwd-ended"', page)


# ---------------------------------------------------------------- limits

def test_per_user_session_limit(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdAdmin admin\nQwdMaxSessionsPerUser 1")
    api_create(httpd, user="alice")
    answer = api_create(httpd, user="alice", expect=429)
    assert answer["error"] == "limit_reached" and answer["limit"] == "QwdMaxSessionsPerUser"
    assert "QwdMaxSessionsPerUser" in answer["message"]
    api_create(httpd, user="bob")  # another user is not affected
    # the HTML side names the limit too
    status, page = Browser(httpd).create("alice")
    assert status == 429 and "QwdMaxSessionsPerUser" in page
    assert len(helper_ids(helper)) == 2 and len(db_rows(httpd)) == 2


def test_total_session_limit(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdMaxSessions 2")
    api_create(httpd, user="a")
    api_create(httpd, user="b")
    answer = api_create(httpd, user="c", expect=429)
    assert answer["limit"] == "QwdMaxSessions"
    assert len(helper_ids(helper)) == 2


def test_vms_stopped_behind_the_modules_back_free_their_places(make_httpd, helper):
    """qwdctl purge (or a crash) ends VMs without the module seeing it: the next create must
    not be refused for places those rows still seemed to hold."""
    httpd = make_httpd("QwdAuth none\nQwdMaxSessions 2")
    api_create(httpd, user="a")
    api_create(httpd, user="b")
    helper.call("purge")
    api_create(httpd, user="c")
    assert len(helper_ids(helper)) == 1


def test_cpu_and_memory_per_user_limits(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdMaxSessionsPerUser 5\nQwdMaxCPUPerUser 2\n"
                       "QwdMaxMemoryPerUser 768")
    # one request above the per-user maximum is a bad field; a sum above it is a limit
    answer = api_create(httpd, cpu=3, expect=400)
    assert answer["field"] == "cpu"
    api_create(httpd, cpu=2)
    answer = api_create(httpd, cpu=1, expect=429)
    assert answer["limit"] == "QwdMaxCPUPerUser"
    api_create(httpd, user="bob", cpu=1, memory_mib=512)
    answer = api_create(httpd, user="bob", cpu=1, memory_mib=512, expect=429)
    assert answer["limit"] == "QwdMaxMemoryPerUser"
    assert len(helper_ids(helper)) == 2
    # the form offers nothing above the limits
    status, form = Browser(httpd).get("")
    cpus = re.search(r'name="cpu">(.*?)</select>', form).group(1)
    assert re.findall(r'value="(\d+)"', cpus) == ["1", "2"]
    memory = re.search(r'name="memory">(.*?)</select>', form).group(1)
    assert max(int(v) for v in re.findall(r'value="(\d+)"', memory)) <= 768


def test_load_limit(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdMaxLoad 0.0001")
    load1 = float(helper.call("load")["load1"])
    if load1 <= 0.0001:
        pytest.skip("the host is idle to the last digit")
    answer = api_create(httpd, expect=429)
    assert answer["limit"] == "QwdMaxLoad"
    assert helper_ids(helper) == []


def test_lifetime_limits(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdMaxLifetime 1800\nQwdDefaultLifetime 7200")
    answer = api_create(httpd, lifetime_s=3600, expect=400)
    assert answer["field"] == "lifetime_s"
    session = api_create(httpd)  # the default is capped at the maximum
    assert session["expires"] - session["created"] <= 1800 + 5


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("body, field", [
    ({"machine": "nope.qcow2"}, "machine"),
    ({"machine": "../tiny.qcow2"}, "machine"),
    ({"machine": "/etc/passwd"}, "machine"),
    ({}, "machine"),
    ({"machine": 7}, "machine"),
    ({"machine": MACHINE, "cpu": 0}, "cpu"),
    ({"machine": MACHINE, "cpu": "2"}, "cpu"),
    ({"machine": MACHINE, "memory_mib": 1}, "memory_mib"),
    ({"machine": MACHINE, "memory_mib": 10 ** 7}, "memory_mib"),
    ({"machine": MACHINE, "lifetime_s": 5}, "lifetime_s"),
    ({"machine": MACHINE, "oneshot": "yes"}, "oneshot"),
])
def test_api_bad_fields_are_named_and_record_nothing(httpd, helper, body, field):
    status, answer, _ = api(httpd, "POST", "sessions", body)
    assert status == 400, answer
    assert answer["error"] == "bad_field" and answer["field"] == field
    assert helper_ids(helper) == [] and db_rows(httpd) == []


@pytest.mark.parametrize("fields, field", [
    ({"machine": "nope"}, "machine"),
    ({"cpu": "abc"}, "cpu"),
    ({"memory": "-5"}, "memory"),
    ({"lifetime": "10"}, "lifetime"),
    ({"user": ""}, "user"),
    ({"user": "x" * 65}, "user"),
])
def test_form_bad_fields_are_named(httpd, helper, fields, field):
    browser = Browser(httpd)
    form = {"user": "erin", "machine": MACHINE, "memory": "256", "csrf": browser.csrf()}
    form.update(fields)
    status, page = browser.post("", form)
    assert status == 400, page
    assert field in page
    assert helper_ids(helper) == []


def test_malformed_requests(httpd, helper):
    httpd.expect_lognos(LOG_CSRF)
    status, answer, _ = api(httpd, "POST", "sessions", raw=b"{not json")
    assert status == 400 and answer["error"] == "bad_json"
    status, answer, _ = api(httpd, "POST", "sessions", raw=b"[1, 2]")
    assert status == 400
    status, answer, _ = api(httpd, "POST", "sessions",
                            raw=json.dumps({"machine": MACHINE, "pad": "x" * 70000}).encode())
    assert status == 413 and answer["error"] == "too_large"
    status, answer, headers = api(httpd, "PUT", "sessions", {"machine": MACHINE})
    assert status == 405 and "POST" in headers["Allow"]
    status, answer, _ = api(httpd, "GET", "nothing-here")
    assert status == 404 and answer["error"] == "not_found"
    browser = Browser(httpd)
    status, page = browser.request("POST", "", headers={"Content-Type": "text/plain"})
    assert status == 403  # an empty body has no CSRF token
    status, page = browser.post("", {"user": "x", "csrf": browser.csrf()} | {"pad": "y" * 70000})
    assert status == 413
    assert helper_ids(helper) == [] and db_rows(httpd) == []


def test_api_needs_basic_credentials(httpd):
    status, answer, headers = api(httpd, "GET", "sessions", auth=False)
    assert status == 401 and answer["error"] == "unauthorized"
    assert headers["WWW-Authenticate"].startswith("Basic")


def test_helper_down_answers_503_and_records_nothing(httpd, helper):
    httpd.expect_lognos(LOG_HELPER_DOWN)
    helper.stop()
    status, page = Browser(httpd).get("")
    assert status == 503 and "not available" in page
    status, answer, headers = api(httpd, "POST", "sessions", {"machine": MACHINE})
    assert status == 503 and answer["error"] == "helper_unavailable"
    assert headers["Retry-After"]
    status, answer, _ = api(httpd, "GET", "machines")
    assert status == 503
    status, listed, _ = api(httpd, "GET", "sessions")
    assert status == 200 and listed == {"sessions": [], "helper_down": True}
    assert db_rows(httpd) == []


# ---------------------------------------------------------------- CSRF and XSS

def test_csrf_is_required_on_state_changes(httpd, helper):
    httpd.expect_lognos(LOG_CSRF)
    victim = Browser(httpd)
    status, page = victim.create("victim")
    assert status == 200
    session_id = re.search(r'<dd id="session">([0-9a-f]{32})</dd>', page).group(1)

    # a forged form: no token, or the token of another browser
    status, _ = victim.post("", {"user": "victim", "machine": MACHINE, "memory": "256"})
    assert status == 403
    attacker = Browser(httpd)
    status, _ = victim.post("sessions", {"action": "stop", "id": session_id,
                                         "csrf": attacker.csrf()})
    assert status == 403
    status, _ = victim.post("sessions", {"action": "stop", "id": session_id, "csrf": "0" * 40})
    assert status == 403
    assert len(helper_ids(helper)) == 1
    # with its own token the same request works
    status, _ = victim.post("sessions", {"action": "stop", "id": session_id,
                                         "csrf": victim.csrf("sessions")})
    assert status == 200 and helper_ids(helper) == []


def test_user_names_come_back_escaped(httpd, helper):
    payload = '<script>alert("x")</script>'
    browser = Browser(httpd)
    status, page = browser.create(payload)
    assert status == 200, page
    assert payload not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    status, page = browser.get("sessions")
    assert status == 200 and payload not in page and "&lt;script&gt;" in page
    admin = Browser(httpd)
    admin.login("admin")
    status, page = admin.get("monitor")
    assert payload not in page and "&lt;script&gt;" in page
    status, listed, _ = api(httpd, "GET", "sessions?all=1", user="admin")
    assert listed["sessions"][0]["owner"] == payload  # JSON carries it as data, unescaped


# ---------------------------------------------------------------- robustness

def test_graceful_restart_and_helper_restart_keep_sessions(httpd, helper):
    browser = Browser(httpd)
    status, page = browser.create("frank")
    assert status == 200
    session = api_create(httpd, user="gina")
    wait_running(httpd, session["id"], user="gina")

    httpd.graceful()
    status, again, _ = api(httpd, "GET", "sessions/" + session["id"], user="gina")
    assert status == 200 and again["state"] == "running"
    assert again["viewer_url"] == session["viewer_url"]
    # a ticket minted before the restart still opens the websocket (the key survived)
    assert rfb.websocket_rfb_banner(session["websocket_url"]) == b"RFB 003.008\n"
    # the signing key survived too: the cookie and the CSRF token still work
    status, mine = browser.get("sessions")
    assert status == 200 and ('class="qwd-starting"' in mine or 'class="qwd-running"' in mine)

    helper.stop()
    helper.start()
    # the restarted helper re-adopts the VM (and probes its display again)
    again = wait_running(httpd, session["id"], user="gina")
    assert again["viewer_url"] == session["viewer_url"]
    assert rfb.websocket_rfb_banner(again["websocket_url"]) == b"RFB 003.008\n"
    assert len(helper_ids(helper)) == 2


def connections_to(socket_path):
    """Connected sockets on the helper's side of socket_path (its accepted clients)."""
    with open("/proc/net/unix") as f:
        return sum(1 for line in f.readlines()[1:]
                   if line.split()[-1] == socket_path and line.split()[5] == "03")


def test_kept_helper_connections_are_reused_and_never_used_dead(make_httpd, helper):
    """Apache's children keep idle helper connections between requests
    (mod_qwd/qwd_helper_conns.c). One the helper has closed — it restarted, or its idle
    timeout ran out — is noticed before use: a DELETE, whose first helper call (stop) is never
    retried because it has effects, still goes through, and nothing is logged as an error."""
    # One child process, so the requests below share its kept connections.
    httpd = make_httpd(DEFAULT_QWD_CONF, "ServerLimit 1\nMaxRequestWorkers 25\n")
    for _ in range(5):
        status, _, _ = api(httpd, "GET", "sessions")
        assert status == 200
    kept = connections_to(helper.socket)
    assert 1 <= kept <= 5, kept  # kept after the requests ended, and reused
    helper.stop()
    helper.start()
    # the kept ones are dead now (the count waits for the helper to drop start()'s probe)
    procs.wait_until(lambda: connections_to(helper.socket) == 0, 5, what="no connections")
    first = api_create(httpd, user="kim")
    second = api_create(httpd, user="kim")
    status, _, _ = api(httpd, "DELETE", "sessions/" + first["id"], user="kim")
    assert status == 200
    helper.stop()
    helper.config["client_timeout"] = 1  # the helper closes idle clients after 1 s
    helper.start()
    status, _, _ = api(httpd, "GET", "sessions", user="kim")
    assert status == 200 and connections_to(helper.socket) >= 1
    procs.wait_until(lambda: connections_to(helper.socket) == 0, 5,
                     what="the helper to close the idle connection")
    # routine for the helper: no "error timeout" line (QWD05006) nor warning (QWD05101)
    assert "no complete request" not in helper.log_text()
    assert "QWD05101" not in helper.log_text()
    status, answer, _ = api(httpd, "DELETE", "sessions/" + second["id"], user="kim")
    assert status == 200 and answer["state"] == "ended", answer
    assert helper_ids(helper) == []


def insert_pending_row(httpd, owner, age_s):
    """A row as a create leaves it before the helper's answer is recorded."""
    import secrets
    import sqlite3
    row_id = secrets.token_hex(16)
    created = int(time.time()) - age_s
    with sqlite3.connect(httpd.db_path, timeout=10) as db:
        db.execute("INSERT INTO qwd_sessions (id, owner, machine, cpu, memory_mib, oneshot,"
                   " state, created, expires) VALUES (?, ?, ?, 1, 256, 0, 'pending', ?, ?)",
                   (row_id, owner, MACHINE, created, created + 3600))
    return row_id


def test_a_vm_whose_create_never_finished_is_recorded_not_orphaned(httpd, helper):
    """A worker that dies between the helper's start and recording the answer leaves a
    pending row and a VM started with that row's id as its ref. The next listing finds the VM
    by its ref and records it, before the sweep could take the row: the owner sees the
    session and can stop it. A pending row without a VM is swept after 5 minutes."""
    httpd.expect_lognos(515)
    status, _, _ = api(httpd, "GET", "machines")  # the module has made its tables
    assert status == 200
    recent = insert_pending_row(httpd, "bob", 120)
    old = insert_pending_row(httpd, "carol", 400)
    vm_less = insert_pending_row(httpd, "dave", 400)
    for owner, ref in (("bob", recent), ("carol", old)):
        helper.call("start", machine=MACHINE, owner=owner, memory_mib=256, ref=ref)
    # Anyone's listing: the first in this Apache child also sweeps, after adopting.
    status, _, _ = api(httpd, "GET", "sessions", user="alice")
    assert status == 200
    rows = {row[0]: row for row in db_rows(httpd)}
    assert vm_less not in rows
    for owner, ref in (("bob", recent), ("carol", old)):
        assert rows[ref][2] in ("starting", "running") and rows[ref][3], rows[ref]
        status, mine, _ = api(httpd, "GET", "sessions", user=owner)
        assert [s["id"] for s in mine["sessions"]] == [ref]
        assert mine["sessions"][0]["viewer_url"]
    assert "recorded its VM" in httpd.error_log_text()
    status, stopped, _ = api(httpd, "DELETE", "sessions/" + old, user="carol")
    assert status == 200 and stopped["state"] == "ended"
    assert len(helper_ids(helper)) == 1


def test_concurrent_creates_are_consistent(make_httpd, helper):
    httpd = make_httpd("QwdAuth none\nQwdMaxSessionsPerUser 2\nQwdMaxSessions 5")
    results = []

    def create(user):
        status, answer, _ = api(httpd, "POST", "sessions",
                                {"machine": MACHINE, "memory_mib": 256}, user=user)
        results.append((user, status, answer))

    # 4 tries by one user, 1 each by two others: at most 2 for "hasty", 5 in all
    users = ["hasty"] * 4 + ["ivy", "jack"]
    threads = [threading.Thread(target=create, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == len(users)
    assert {s for _, s, _ in results} <= {201, 429}, results
    created = [a for _, s, a in results if s == 201]
    hasty = [a for u, s, a in results if u == "hasty" and s == 201]
    assert len(hasty) == 2
    assert all(a["limit"] == "QwdMaxSessionsPerUser" for u, s, a in results
               if u == "hasty" and s == 429)
    assert len(created) == 4
    rows = db_rows(httpd)
    # one row per VM, one VM per row, nothing pending
    assert sorted(r[3] for r in rows) == helper_ids(helper)
    assert sorted(r[0] for r in rows) == sorted(a["id"] for a in created)
    assert all(r[2] in ("starting", "running") for r in rows)


# ---------------------------------------------------------------- QwdAuth form

def test_form_auth_with_htpasswd(make_httpd, helper, workdir):
    users_file = os.path.join(workdir, "users.htpasswd")
    subprocess.run(["htpasswd", "-cbB", users_file, "kim", "s3cret"], check=True,
                   capture_output=True)
    os.chmod(users_file, 0o644)
    secret_file = os.path.join(workdir, "qwd.secret")
    httpd = make_httpd(f"QwdAuth form\nQwdAuthProvider file\nAuthUserFile {users_file}\n"
                       "QwdAdmin kim", extra_conf=f"QwdSecretFile {secret_file}")
    assert os.stat(secret_file).st_mode & 0o777 == 0o600
    assert os.path.getsize(secret_file) == 32
    httpd.expect_lognos(LOG_AUTH_FAILED)
    browser = Browser(httpd)
    status, form = browser.get("")
    assert 'name="password"' in form

    wrong_password = browser.create("kim", password="nope")
    unknown_user = browser.create("nobody", password="s3cret")
    assert wrong_password[0] == unknown_user[0] == 403
    # the answer does not say which part was wrong
    assert wrong_password[1] == unknown_user[1]
    assert helper_ids(helper) == []

    status, page = browser.create("kim", password="s3cret")
    assert status == 200 and 'id="viewer"' in page
    key = open(secret_file, "rb").read()
    httpd.graceful()
    assert open(secret_file, "rb").read() == key
    status, page = browser.get("sessions")  # the identity cookie is still valid
    assert status == 200 and 'class="qwd-sessions"' in page

    status, answer, _ = api(httpd, "GET", "sessions", user="kim", password="nope")
    assert status == 401
    status, answer, _ = api(httpd, "GET", "sessions", user="kim", password="s3cret")
    assert status == 200 and len(answer["sessions"]) == 1


def test_auth_provider_failure_is_503_not_wrong_password(make_httpd, helper, workdir):
    missing = os.path.join(workdir, "no-such.htpasswd")
    httpd = make_httpd(f"QwdAuth form\nQwdAuthProvider file\nAuthUserFile {missing}")
    httpd.expect_lognos(304)
    status, page = Browser(httpd).create("kim", password="s3cret")
    assert status == 503 and "unavailable" in page and "password" not in page.lower()
    status, answer, _ = api(httpd, "GET", "sessions", user="kim", password="s3cret")
    assert status == 503 and answer["error"] == "auth_unavailable"


def test_auth_apache_trusts_r_user(make_httpd, helper, workdir):
    users_file = os.path.join(workdir, "users.htpasswd")
    subprocess.run(["htpasswd", "-cbB", users_file, "lee", "pw"], check=True,
                   capture_output=True)
    os.chmod(users_file, 0o644)
    httpd = make_httpd("QwdAuth apache\nAuthType Basic\nAuthName qwd\n"
                       f"AuthUserFile {users_file}\nRequire valid-user")
    status, answer, _ = api(httpd, "GET", "sessions", user="lee", password="wrong")
    assert status == 401  # refused by mod_auth_basic before the module runs
    status, answer, _ = api(httpd, "POST", "sessions", {"machine": MACHINE, "memory_mib": 256},
                            user="lee", password="pw")
    assert status == 201 and answer["owner"] == "lee"
    # the pages know the user from Apache: no user field, the session is listed
    token = base64.b64encode(b"lee:pw").decode()
    browser = Browser(httpd)
    status, page = browser.request("GET", "sessions", headers={"Authorization": "Basic " + token})
    assert status == 200 and answer["id"] in page
    status, form = browser.request("GET", "", headers={"Authorization": "Basic " + token})
    assert status == 200 and 'name="user"' not in form and "<b>lee</b>" in form


def test_server_and_location_config_merge(workdir, helper):
    extra = (f"QwdMaxSessionsPerUser 1\nQwdHelperSocket {helper.socket}\n"
             f"QwdWebsocketURL ws://127.0.0.1:{helper.websockify_port}/\nQwdAuth none\n"
             "<Location /qwd2>\n    SetHandler qwd\n    QwdMaxSessionsPerUser 2\n</Location>\n")
    httpd = Httpd(workdir, None, qwd_conf="", extra_conf=extra).start()
    try:
        # /qwd inherits everything from the server context
        api_create(httpd, user="mo")
        answer = api_create(httpd, user="mo", expect=429)
        assert answer["limit"] == "QwdMaxSessionsPerUser" and "1)" in answer["message"]
        # /qwd2 overrides one field and inherits the rest (helper socket, websocket URL)
        req = urllib.request.Request(httpd.url("/qwd2/api/sessions"), method="POST",
                                     data=json.dumps({"machine": MACHINE,
                                                      "memory_mib": 256}).encode())
        req.add_header("Authorization", "Basic " + base64.b64encode(b"mo:x").decode())
        with urllib.request.urlopen(req, timeout=60) as resp:
            created = json.loads(resp.read())
        assert resp.status == 201 and created["websocket_url"].startswith("ws://127.0.0.1:")
        assert len(helper_ids(helper)) == 2
    finally:
        httpd.stop()
    httpd.assert_log_clean()


def test_database_cache_is_a_server_directive(workdir, helper):
    """QwdDatabaseCache (SQLite's page cache per connection, KiB): a whole number >= 1 in
    server config or a virtual host, refused at config time elsewhere or below 1; with a
    small one the database still serves a create."""
    for conf in ("QwdDatabaseCache 0", "QwdDatabaseCache lots"):
        result = Httpd(workdir, helper, extra_conf=conf).check_config()
        assert result.returncode != 0, conf
        assert "QwdDatabaseCache" in result.stderr + result.stdout, result.stderr
    result = Httpd(workdir, helper, qwd_conf="QwdDatabaseCache 64").check_config()
    assert result.returncode != 0
    assert "QwdDatabaseCache" in result.stderr + result.stdout, result.stderr
    httpd = Httpd(workdir, helper, extra_conf="QwdDatabaseCache 16").start()
    try:
        created = api_create(httpd, user="cy")
        wait_running(httpd, created["id"], user="cy")
    finally:
        httpd.stop()
    httpd.assert_log_clean()


def test_bad_directives_fail_at_config_time(workdir, helper):
    for conf, words in (("QwdAuthProvider nosuch", "QwdAuthProvider"),
                        ("QwdAuth maybe", "QwdAuth"),
                        ("QwdMaxSessions lots", "QwdMaxSessions"),
                        ("QwdWebsocketURL http://x/", "QwdWebsocketURL")):
        result = Httpd(workdir, helper, qwd_conf=conf).check_config()
        assert result.returncode != 0, conf
        assert words in result.stderr + result.stdout, result.stderr
