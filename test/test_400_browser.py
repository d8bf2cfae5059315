# SPDX-License-Identifier: Apache-2.0
"""mod_qwd in a real browser: Debian's chromium (headless) driven by playwright-core
(test/browser/driver.js). Form → result page that turns "ready" by itself → the session link →
noVNC through Apache's port → keys typed in the browser reach the guest → the canvas shows the
guest's own screen (QMP screendump). Screenshots of every page at 375 and 1280 px go to
test/artifacts/browser/. Also: the websocket gate refuses forged, expired and revoked tickets."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import random
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from qwdtest import env, procs, rfb
from qwdtest.helper import wait_for_serial
from qwdtest.httpd import Httpd

MACHINE = "tiny.qcow2"
BROWSER_DIR = os.path.join(env.SRCDIR, "test", "browser")
ARTIFACTS = os.path.join(env.SRCDIR, "test", "artifacts", "browser")
CHROMIUM = "/usr/bin/chromium"
WIDTHS = ((375, 740), (1280, 800))
BANNER = "QWD-TINY-VM READY"


# ---------------------------------------------------------------- the browser

class Browser:
    """One chromium with its own profile, driven over driver.js's JSON lines."""

    def __init__(self, workdir, args=()):
        self.log_path = os.path.join(workdir, "browser.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "driver.js")],
                                        cwd=BROWSER_DIR, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.next_id = 0
        profile = os.path.join(workdir, "chromium-profile")
        os.makedirs(profile)
        self.call("launch", userDataDir=profile, executablePath=CHROMIUM, args=list(args))

    def call(self, op, **args):
        self.next_id += 1
        self.process.stdin.write(json.dumps({"id": self.next_id, "op": op, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"driver.js died during {op}:\n" + self.log_text())
        reply = json.loads(line)
        assert reply["id"] == self.next_id
        if "error" in reply:
            raise AssertionError(f"{op} {args}: {reply['error']}")
        return reply["result"]

    def screenshots(self, page, name, restore=(1280, 800)):
        """name-375.png and name-1280.png of the page as it is now."""
        for width, height in WIDTHS:
            self.call("viewport", page=page, width=width, height=height)
            time.sleep(0.3)  # noVNC rescales on resize
            self.call("screenshot", page=page, path=os.path.join(ARTIFACTS, f"{name}-{width}.png"),
                      fullPage=page != "viewer")
        self.call("viewport", page=page, width=restore[0], height=restore[1])

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def close(self):
        try:
            self.call("close")
        except Exception:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def playwright_installed():
    """test/browser/node_modules from package-lock.json (npm ci), once."""
    assert os.path.exists(CHROMIUM), "chromium is missing: run scripts/install-deps"
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, check=True)
    os.makedirs(ARTIFACTS, exist_ok=True)


@pytest.fixture
def browser(workdir, playwright_installed):
    b = Browser(workdir)
    yield b
    b.close()


# ---------------------------------------------------------------- the guest's own screen

def qmp_screendump(qmp_path, ppm_path, timeout=20):
    """screendump through the VM's QMP socket. QMP takes one client at a time and the helper
    may hold it for a moment: retry until the greeting comes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(3)
                s.connect(qmp_path)
                stream = s.makefile("rwb")
                json.loads(stream.readline())  # greeting (none while another client is in)
                for command in ({"execute": "qmp_capabilities"},
                                {"execute": "screendump", "arguments": {"filename": ppm_path}}):
                    stream.write(json.dumps(command).encode() + b"\n")
                    stream.flush()
                    while True:
                        reply = json.loads(stream.readline())
                        if "error" in reply:
                            raise AssertionError(f"QMP {command}: {reply}")
                        if "return" in reply:
                            break
            return read_ppm(ppm_path)
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_ppm(path):
    """(width, height, RGB bytes) of a binary PPM (P6, maxval 255) as QEMU writes it."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255", fields
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[pos + 1:pos + 1 + width * height * 3]


def canvas_rgb(browser):
    """(width, height, RGB bytes) of noVNC's canvas: its own pixels, not a page screenshot."""
    answer = browser.call("eval", page="viewer", expression="""(() => {
        const canvas = document.querySelector('#qwd-viewer-screen canvas');
        const rgba = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let text = '';
        for (let i = 0; i < rgba.length; i += 0x8000) {
            text += String.fromCharCode.apply(null, rgba.subarray(i, i + 0x8000));
        }
        return {width: canvas.width, height: canvas.height, rgba: btoa(text)};
    })()""")
    rgba = base64.b64decode(answer["rgba"])
    rgb = bytearray(len(rgba) // 4 * 3)
    rgb[0::3], rgb[1::3], rgb[2::3] = rgba[0::4], rgba[1::4], rgba[2::4]
    return answer["width"], answer["height"], bytes(rgb)


def mean_abs_difference(a, b):
    """Mean absolute difference per channel (0-255) of two images, b scaled to a's size by
    nearest neighbour."""
    (aw, ah, apix), (bw, bh, bpix) = a, b
    total = 0
    for y in range(ah):
        by = y * bh // ah
        arow = apix[y * aw * 3:(y + 1) * aw * 3]
        if (aw, ah) == (bw, bh):
            brow = bpix[y * aw * 3:(y + 1) * aw * 3]
        else:
            brow = bytes(bpix[(by * bw + x * bw // aw) * 3 + c] for x in range(aw)
                         for c in range(3))
        total += sum(abs(p - q) for p, q in zip(arow, brow))
    return total / (aw * ah * 3)


def lit_pixels(image):
    width, height, pixels = image
    return sum(1 for i in range(0, len(pixels), 3) if max(pixels[i:i + 3]) > 60)


# ---------------------------------------------------------------- the flow

def test_form_to_desktop_in_a_real_browser(httpd, helper, browser, workdir):
    admin_browser_done = False
    browser.call("newPage", name="app", width=1280, height=800)
    # the form, with its stylesheet really served and applied
    result = browser.call("goto", page="app", url=httpd.url("/qwd/"))
    assert result["status"] == 200
    assert browser.call("eval", page="app", expression=(
        "getComputedStyle(document.body).backgroundColor")) == "rgb(245, 246, 248)"
    browser.screenshots("app", "form")
    browser.call("fill", page="app", selector="input[name=user]", value="webuser")
    browser.call("select", page="app", selector="select[name=machine]", value=MACHINE)
    browser.call("select", page="app", selector="select[name=memory]", value="256")
    result = browser.call("submit", page="app", selector="form.qwd-form button[type=submit]")
    assert result["status"] == 200, result

    # the result page shows the boot, then switches to ready without a reload
    # state and display read in one evaluation: the page may turn ready between two of them
    state, display = browser.call("eval", page="app", expression=(
        "[document.getElementById('progress').dataset.state,"
        " getComputedStyle(document.getElementById('ready')).display]"))
    assert state in ("starting", "running")
    if state == "starting":
        assert display == "none"
        browser.screenshots("app", "result-starting")
    browser.call("waitFor", page="app", selector="#progress[data-state=running]", timeout=30000)
    assert browser.call("eval", page="app", expression=(
        "getComputedStyle(document.getElementById('ready')).display")) != "none"
    link = browser.call("eval", page="app", expression="document.getElementById('viewer').href")
    session_id = browser.call("eval", page="app",
                              expression="document.getElementById('session').textContent")
    assert re.fullmatch(httpd.url("/qwd/s/") + "[0-9a-f]{32}", link) and session_id not in link
    assert browser.call("eval", page="app", expression="!!document.querySelector('#qr svg')")
    browser.screenshots("app", "result")

    # the link → our viewer on noVNC's core → websocket through Apache's own port
    browser.call("newPage", name="viewer", width=1280, height=800)
    result = browser.call("goto", page="viewer", url=link)
    assert result["url"] == link and result["status"] == 200
    wait_viewer(browser, "connected")

    helper_id = helper.call("list")["sessions"][0]["id"]
    wait_for_serial(helper, helper_id, BANNER, timeout=90)
    time.sleep(1)  # tty1's shell prints its prompt right after the banner
    marker = f"QWD-{random.randint(10000, 99999)}"
    browser.call("click", page="viewer", selector="#qwd-viewer-screen canvas")
    browser.call("type", page="viewer", text=f"echo {marker} >/dev/ttyS0\n")
    wait_for_serial(helper, helper_id, marker, timeout=30)

    # the canvas shows the guest's own screen
    dump_dir = os.path.join(workdir, "dumps")
    os.makedirs(dump_dir)
    qmp = os.path.join(helper.session_dir(helper_id), "qmp.sock")
    best = None
    for attempt in range(10):
        time.sleep(0.5)  # let noVNC draw the last update; the text cursor blinks
        guest = qmp_screendump(qmp, os.path.join(dump_dir, f"screen{attempt}.ppm"))
        canvas = canvas_rgb(browser)
        difference = mean_abs_difference(canvas, guest)
        blank = mean_abs_difference((guest[0], guest[1], bytes(len(guest[2]))), guest)
        best = min(best or (difference, blank), (difference, blank))
        if difference < 0.2 * blank:
            break
    difference, blank = best
    assert lit_pixels(canvas) > 500, "the noVNC canvas is blank"
    assert difference < 0.2 * blank, (
        f"canvas differs from the guest's screen: {difference:.2f} (a black canvas: {blank:.2f})")
    browser.screenshots("viewer", "viewer")

    # sessions and the admins' monitor, for the screenshots and their layout
    browser.call("goto", page="app", url=httpd.url("/qwd/sessions"))
    assert browser.call("eval", page="app", expression=(
        f"!!document.getElementById('s-{session_id}')"))
    browser.screenshots("app", "sessions")
    browser.call("goto", page="app", url=httpd.url("/qwd/sessions"))
    browser.call("submit", page="app",
                 selector="form.qwd-inline:has(input[value=logout]) button")  # forget me
    browser.call("fill", page="app", selector="input[name=user]", value="admin")
    browser.call("submit", page="app", selector="form.qwd-form button[type=submit]")
    result = browser.call("goto", page="app", url=httpd.url("/qwd/monitor"))
    assert result["status"] == 200
    assert browser.call("eval", page="app", expression="!!document.getElementById('load')")
    browser.screenshots("app", "monitor")
    admin_browser_done = True

    # nothing spills out of the narrow viewport
    for page in ("/qwd/", "/qwd/monitor"):
        browser.call("viewport", page="app", width=375, height=740)
        browser.call("goto", page="app", url=httpd.url(page))
        assert browser.call("eval", page="app", expression=(
            "document.documentElement.scrollWidth <= window.innerWidth")), page
    assert admin_browser_done


def wait_viewer(browser, state, page="viewer", timeout=30000):
    browser.call("waitFunction", page=page, timeout=timeout,
                 expression=f"document.body.dataset.state === '{state}'")


def viewer_tickets(browser, page="viewer"):
    return int(browser.call("eval", page=page, expression="document.body.dataset.tickets"))


def websockify_children(helper):
    """PIDs of the websockify processes serving one connection each (it forks per
    connection), and the pid of websockify itself."""
    with open(os.path.join(helper.state_dir, "websockify.pid")) as f:
        parent = int(f.read())
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                    children.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return parent, children


def test_viewer_reconnects_with_new_tickets_and_says_when_the_session_ended(
        httpd, helper, browser):
    """Issue 13.2: the link's viewer asks for a fresh ticket before every connect; a
    connection cut on the server's side comes back by itself within seconds, through a
    visible "reconnecting" state; a stopped session ends the page with a message, no more
    tries. No ticket is ever in a URL."""
    import signal
    from test_300_module import api, api_create, wait_running
    session = api_create(httpd, lifetime_s=600)
    wait_running(httpd, session["id"])
    browser.call("newPage", name="viewer", width=1280, height=800)
    browser.call("goto", page="viewer", url=session["viewer_url"])
    wait_viewer(browser, "connected")
    assert viewer_tickets(browser) == 1
    browser.call("eval", page="viewer", expression="""(() => {
        window.qwdStates = [];
        new MutationObserver(() => window.qwdStates.push(document.body.dataset.state))
            .observe(document.body, {attributes: true, attributeFilter: ['data-state']});
        return true; })()""")

    # the websockify process serving this connection dies: back within seconds
    parent, children = websockify_children(helper)
    assert len(children) == 1, children
    cut = time.monotonic()
    os.kill(children[0], signal.SIGKILL)
    browser.call("waitFunction", page="viewer", timeout=15000, expression=(
        "document.body.dataset.state === 'connected' && document.body.dataset.tickets === '2'"))
    back_after = time.monotonic() - cut
    assert back_after < 5, back_after
    states = browser.call("eval", page="viewer", expression="window.qwdStates")
    assert "reconnecting" in states, states
    browser.screenshots("viewer", "viewer-reconnected")

    # websockify itself dies with its connection (the helper starts it again a second
    # later; meanwhile the proxy cannot upgrade): back too
    parent, children = websockify_children(helper)
    os.kill(parent, signal.SIGKILL)
    for child in children:
        os.kill(child, signal.SIGKILL)
    browser.call("waitFunction", page="viewer", timeout=20000, expression=(
        "document.body.dataset.state === 'connected' && Number(document.body.dataset.tickets) >= 3"))

    # the session stops: the page says so and stops asking
    status, _, _ = api(httpd, "DELETE", "sessions/" + session["id"])
    assert status == 200
    wait_viewer(browser, "ended", timeout=15000)
    message = browser.call("eval", page="viewer",
                           expression="document.querySelector('.qwd-viewer-end').textContent")
    assert "ended" in message and "stopped" in message, message
    browser.screenshots("viewer", "viewer-ended")
    with open(httpd.access_log) as f:
        log = f.read()
    asked = log.count(f"POST /qwd/s/{session['id']}/ticket")
    time.sleep(3)
    with open(httpd.access_log) as f:
        log = f.read()
    assert log.count(f"POST /qwd/s/{session['id']}/ticket") == asked  # no endless retry
    assert "ticket=" not in log  # tickets travel in a header, never in a URL


def test_result_page_shows_why_a_start_failed(httpd, helper, browser):
    """When the VM ends while starting (QEMU died, image unreadable), the helper's status says
    ended + ended_reason, and the result page shows that reason instead of a link. The status
    answer is replaced in the browser: a VM that dies at exactly that moment is hard to make."""
    browser.call("newPage", name="app", width=1280, height=800)
    browser.call("route", page="app", pattern="**/qwd/api/sessions/*",
                 body={"state": "ended", "ended_reason": "crashed"})
    browser.call("goto", page="app", url=httpd.url("/qwd/"))
    browser.call("fill", page="app", selector="input[name=user]", value="unlucky")
    browser.call("select", page="app", selector="select[name=machine]", value=MACHINE)
    browser.call("select", page="app", selector="select[name=memory]", value="256")
    browser.call("submit", page="app", selector="form.qwd-form button[type=submit]")
    if browser.call("eval", page="app",
                    expression="document.getElementById('progress').dataset.state") == "running":
        pytest.skip("the VM was running before the page was written: nothing to poll")
    browser.call("waitFor", page="app", selector="#progress[data-state=ended]", timeout=10000)
    detail = browser.call("eval", page="app",
                          expression="document.getElementById('state-detail').textContent")
    assert "crashed" in detail
    assert browser.call("eval", page="app", expression=(
        "getComputedStyle(document.getElementById('ready')).display")) == "none"
    browser.screenshots("app", "result-failed")


# ---------------------------------------------------------------- the websocket gate

SECRET = bytes(range(32))


def ticket(session_id, expiry, key=SECRET, nonce=None):
    """A ticket as mod_qwd mints them: SESSION.EXPIRY.NONCE.MAC."""
    nonce = nonce or secrets.token_hex(8)
    mac = hmac.new(key, f"ws|{session_id}|{expiry}|{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{session_id}.{expiry}.{nonce}.{mac}"


def ws_status(httpd, query):
    """The HTTP status Apache answers a websocket upgrade on /qwd/ws?query with."""
    return rfb.websocket_status(f"ws://127.0.0.1:{httpd.port}/qwd/ws?{query}")


def test_websocket_gate_refuses_bad_expired_and_revoked_tickets(workdir, helper):
    secret_file = os.path.join(workdir, "secret")
    with open(os.open(secret_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(SECRET)
    httpd = Httpd(workdir, helper, extra_conf=f"QwdSecretFile {secret_file}").start()
    try:
        from test_300_module import api, api_create, wait_running
        session = api_create(httpd, user="alice")
        wait_running(httpd, session["id"])
        now = int(time.time())
        # a ticket made with the server's key opens the VM's display through Apache
        good = ticket(session["id"], now + 30)
        assert rfb.websocket_rfb_banner(
            f"ws://127.0.0.1:{httpd.port}/qwd/ws?ticket={good}") == b"RFB 003.008\n"
        # and nothing else reaches websockify
        assert ws_status(httpd, "") == 403
        assert ws_status(httpd, "token=" + "x" * 22) == 403
        assert ws_status(httpd, "ticket=garbage") == 403
        assert ws_status(httpd, "ticket=" + ticket(session["id"], now - 1)) == 403  # expired
        assert ws_status(httpd, "ticket=" + ticket(session["id"], now + 30, b"k" * 32)) == 403
        assert ws_status(httpd, "ticket=" + ticket("0" * 32, now + 30)) == 403  # no session
        forged = good[:-1] + ("0" if good[-1] != "0" else "1")
        assert ws_status(httpd, "ticket=" + forged) == 403
        # a ticket opens the display once: the same one again is refused, a new one works
        assert ws_status(httpd, "ticket=" + good) == 403
        unused = ticket(session["id"], now + 30)
        assert ws_status(httpd, "ticket=" + ticket(session["id"], now + 30)) == 101

        # stopping the session revokes its link and every ticket
        status, _, _ = api(httpd, "DELETE", "sessions/" + session["id"])
        assert status == 200
        assert ws_status(httpd, "ticket=" + unused) == 403
        try:
            urllib.request.urlopen(session["viewer_url"], timeout=10)
            raise AssertionError("the link of a stopped session still works")
        except urllib.error.HTTPError as err:
            assert err.code == 410
        # refusals never reached websockify: its log has only the one good connection
        with open(httpd.access_log) as f:
            refused = [line for line in f if "GET /qwd/ws" in line and '" 403 ' in line]
        assert len(refused) == 9
    finally:
        httpd.stop()
    httpd.assert_log_clean()


# ---------------------------------------------------------------- TLS

def test_tls_end_to_end(workdir, helper, playwright_installed):
    """Issue 13.7: Apache with mod_ssl and a certificate of a CA this test made. The form over
    https, https/wss links, Secure cookies, plain http refused on the TLS port and redirected
    on the plain one, and the viewer over wss in chromium (which trusts the server's key)."""
    from test_300_module import Browser as Client, api, api_create, wait_running
    httpd = Httpd(workdir, helper, tls=True).start()
    browser = None
    try:
        client = Client(httpd)
        assert httpd.url("/qwd/").startswith("https://")
        status, page = client.create("tina")
        assert status == 200, page
        cookies = {cookie.name: cookie for cookie in client.jar}
        assert {"qwd_nonce", "qwd_user"} <= set(cookies), cookies
        assert all(cookie.secure for cookie in cookies.values()), cookies

        session = api_create(httpd, user="tina")
        assert re.fullmatch(rf"https://127\.0\.0\.1:{httpd.port}/qwd/s/[0-9a-f]{{32}}",
                            session["viewer_url"]), session["viewer_url"]
        assert session["id"] not in session["viewer_url"]  # the link is no session id
        assert session["websocket_url"].startswith(
            f"wss://127.0.0.1:{httpd.port}/qwd/ws?ticket={session['id']}.")
        wait_running(httpd, session["id"], user="tina")
        assert rfb.websocket_rfb_banner(session["websocket_url"],
                                        ca_cert=httpd.tls.ca_cert) == b"RFB 003.008\n"

        # plain http: refused on the TLS port, redirected to https on the plain one
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{httpd.port}/qwd/", timeout=10)
        assert refused.value.code == 400

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args):
                return None
        with pytest.raises(urllib.error.HTTPError) as moved:
            urllib.request.build_opener(NoRedirect).open(
                session["viewer_url"].replace(f"https://127.0.0.1:{httpd.port}",
                                              f"http://127.0.0.1:{httpd.redirect_port}"),
                timeout=10)
        assert moved.value.code == 301
        assert moved.value.headers["Location"] == session["viewer_url"]

        # chromium: the form over https, then the link's viewer connects over wss
        browser = Browser(workdir, args=[
            "--ignore-certificate-errors-spki-list=" + httpd.tls.spki_sha256()])
        browser.call("newPage", name="app", width=1280, height=800)
        result = browser.call("goto", page="app", url=httpd.url("/qwd/"))
        assert result["status"] == 200
        assert browser.call("eval", page="app", expression="window.isSecureContext")
        browser.call("newPage", name="viewer", width=1280, height=800)
        result = browser.call("goto", page="viewer", url=session["viewer_url"])
        assert result["status"] == 200
        wait_viewer(browser, "connected")
        assert browser.call("eval", page="viewer", expression="location.protocol") == "https:"
        browser.screenshots("viewer", "viewer-tls")
        browser.close()  # Apache logs a websocket when it closes
        browser = None

        def upgrades():
            with open(httpd.access_log) as f:
                return [line for line in f if '"GET /qwd/ws HTTP/1.1" 101 ' in line]
        # chromium's, the ticket in a header, on the TLS port (the only one serving /qwd/ws)
        assert len(procs.wait_until(upgrades, 10, what="the websocket's log line")) == 1
    finally:
        if browser:
            browser.close()
        httpd.stop()
    httpd.assert_log_clean()
