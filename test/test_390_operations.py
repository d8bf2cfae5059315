# SPDX-License-Identifier: Apache-2.0
"""mod_qwd's operations against the real stack: the metrics handler (scraped after known
actions, exact counter changes, parsed by Prometheus' own text parser, kept across graceful
restarts), mod_status' section, the audit trail (each event kind that exists, from the
module's requests and from the helper's journal, in SQLite, the API, the monitor and the log)
and extending a session's lifetime."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qwdtest import procs, rfb
from test_300_module import Browser, api, api_create, wait_running

METRICS_CONF = """<Location /metrics>
    SetHandler qwd-metrics
    Require ip 127.0.0.1
</Location>
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1
</Location>"""
ADMIN_CONF = "QwdAuth none\nQwdAdmin admin"
LOG_AUDIT = 3800
LOG_NOT_FOUND_SESSION = 513
LOG_LIMIT = 208
LOG_AUTH_FAILED = 305
LOG_NOT_ADMIN_AUDIT = 3807
LOG_EXTEND_FORBIDDEN = 3804
LOG_EXTEND_TOO_LONG = 3806


@pytest.fixture
def ops_httpd(make_httpd):
    def make(qwd_conf=ADMIN_CONF):
        return make_httpd(qwd_conf, extra_conf=METRICS_CONF, modules=("status", "authz_host"))
    return make


def fetch(httpd, path):
    with urllib.request.urlopen(httpd.url(path), timeout=30) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read().decode()


def scrape(httpd):
    """{(name, labels): value} of one scrape, read by Prometheus' own parser; also checks
    there is one HELP and one TYPE per family."""
    status, content_type, text = fetch(httpd, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    for kind in ("HELP", "TYPE"):
        names = [line.split()[2] for line in text.splitlines() if line.startswith(f"# {kind} ")]
        assert len(names) == len(set(names)), f"a family with two {kind} lines"
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return values


def get(values, name, **labels):
    return values.get((name, frozenset(labels.items())), 0)


def audit(httpd, as_user="admin", password="x", **query):
    status, answer, _ = api(httpd, "GET", "audit?" + urllib.parse.urlencode(query),
                            user=as_user, password=password)
    assert status == 200, answer
    return answer["events"]


def audited(httpd, **query):
    return [(e["event"], e["by"], e["user"]) for e in audit(httpd, **query)]


def audit_lines(httpd):
    return [line for line in httpd.error_log_text().splitlines() if "QWD03800:" in line]


# ---------------------------------------------------------------- metrics

def test_scrape_counts_known_actions_exactly(ops_httpd, helper):
    httpd = ops_httpd(ADMIN_CONF + "\nQwdMaxSessionsPerUser 1")
    httpd.expect_lognos(LOG_LIMIT)
    before = scrape(httpd)
    assert get(before, "qwd_helper_up") == 1
    assert get(before, "qwd_build_info", version="0.1.0") == 1
    assert get(before, "qwd_session_starts_total", boot="cold", result="ok") == 0

    session = api_create(httpd)
    wait_running(httpd, session["id"])
    api_create(httpd, expect=429)  # QwdMaxSessionsPerUser 1
    assert rfb.websocket_status(httpd.url("/qwd/ws").replace("http", "ws")) == 403  # no ticket
    assert rfb.websocket_status(httpd.url("/qwd/ws?ticket=forged").replace("http", "ws")) == 403
    ws = rfb.open_link_websocket(session["viewer_url"])
    ws.close()
    status, _, _ = api(httpd, "DELETE", "sessions/" + session["id"])
    assert status == 200

    after = scrape(httpd)
    changed = {key: after[key] - before.get(key, 0) for key in after
               if after[key] != before.get(key, 0)}
    def delta(name, **labels):
        return changed.get((name, frozenset(labels.items())), 0)
    assert delta("qwd_session_starts_total", boot="cold", result="ok") == 1
    assert delta("qwd_session_start_seconds_count", boot="cold") == 1
    assert delta("qwd_limit_refusals_total", limit="QwdMaxSessionsPerUser") == 1
    assert delta("qwd_ticket_refusals_total", reason="missing") == 1
    assert delta("qwd_ticket_refusals_total", reason="invalid") == 1
    assert delta("qwd_session_ends_total", reason="stopped") == 1
    assert delta("qwd_logins_total") == 0  # the API's Basic requests are no logins
    # the viewer's connection is counted when it closes, after the request's logging
    procs.wait_until(lambda: get(scrape(httpd), "qwd_viewer_connections_total", kind="link")
                     == get(before, "qwd_viewer_connections_total", kind="link") + 1, 10,
                     what="the viewer's connection to be counted")
    assert get(after, "qwd_session_start_seconds_sum", boot="cold") > 0
    assert get(after, "qwd_host_memory_bytes") > 0 and get(after, "qwd_host_cpus") >= 1
    # a scrape resets nothing, and JSON says the same
    again = scrape(httpd)
    assert get(again, "qwd_ticket_refusals_total", reason="missing") == \
        get(after, "qwd_ticket_refusals_total", reason="missing")
    status, content_type, text = fetch(httpd, "/metrics?format=json")
    families = {f["name"]: f for f in json.loads(text)["families"]}
    assert content_type == "application/json"
    refusals = {s["labels"]["limit"]: s["value"]
                for s in families["qwd_limit_refusals_total"]["samples"]}
    assert refusals["QwdMaxSessionsPerUser"] == get(after, "qwd_limit_refusals_total",
                                                    limit="QwdMaxSessionsPerUser")
    assert "max_sessions" in refusals  # the helper's limits, in the same family


def test_counters_survive_graceful_restarts_and_are_shared_by_children(ops_httpd, helper):
    httpd = ops_httpd()
    url = httpd.url("/qwd/ws").replace("http", "ws")
    for _ in range(6):  # over keep-alive-less connections: any child may answer
        assert rfb.websocket_status(url) == 403
    assert get(scrape(httpd), "qwd_ticket_refusals_total", reason="missing") == 6
    httpd.graceful()
    assert get(scrape(httpd), "qwd_ticket_refusals_total", reason="missing") == 6
    httpd.restart()
    assert rfb.websocket_status(url) == 403
    assert get(scrape(httpd), "qwd_ticket_refusals_total", reason="missing") == 7


def test_helper_down_scrape_says_so_and_keeps_the_module_counters(ops_httpd, helper):
    httpd = ops_httpd()
    assert rfb.websocket_status(httpd.url("/qwd/ws").replace("http", "ws")) == 403
    helper.stop()
    values = scrape(httpd)
    assert get(values, "qwd_helper_up") == 0
    assert get(values, "qwd_ticket_refusals_total", reason="missing") == 1
    assert not any(name == "qwd_sessions" for name, _ in values)


def test_server_status_has_a_mod_qwd_section(ops_httpd, helper):
    httpd = ops_httpd()
    session = api_create(httpd)
    wait_running(httpd, session["id"])
    _, _, page = fetch(httpd, "/server-status")
    assert 'name="mod_qwd"' in page and "qwd_helper_up" in page
    _, _, auto = fetch(httpd, "/server-status?auto")
    assert "qwd_helper_up: 1" in auto.splitlines()
    assert "qwd_sessions{state=running}: 1" in auto.splitlines()


def test_metrics_location_has_its_own_access_rules(make_httpd, helper):
    httpd = make_httpd(ADMIN_CONF, modules=("authz_host",),
                       extra_conf="<Location /metrics>\n    SetHandler qwd-metrics\n"
                       "    Require ip 192.0.2.1\n</Location>")
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch(httpd, "/metrics")
    assert refused.value.code == 403


# ---------------------------------------------------------------- audit trail

def test_audit_records_the_modules_events_with_who_and_where(ops_httpd, helper):
    httpd = ops_httpd()
    httpd.expect_lognos(LOG_NOT_ADMIN_AUDIT)
    browser = Browser(httpd)
    assert browser.login("carol")[0] == 200  # a page login (QwdAuth none: a name)
    session = api_create(httpd, user="alice")
    wait_running(httpd, session["id"])
    ws = rfb.open_link_websocket(session["viewer_url"])
    time.sleep(1.1)
    ws.close()
    status, _, _ = api(httpd, "DELETE", "sessions/" + session["id"], user="admin")
    assert status == 200
    procs.wait_until(lambda: ("connected", "link", None) in audited(httpd), 10,
                     what="the websocket's entry")
    # the helper's relay saw the same viewer: the viewed entry, by the viewer's kind
    procs.wait_until(lambda: ("viewed", "owner", None) in audited(httpd), 10,
                     what="the relay's viewer entry")
    entries = audit(httpd)
    # one viewer through Apache: one viewed entry (the relay's) and one connected (the gate's)
    assert [e["event"] for e in entries].count("viewed") == 1
    assert [e["event"] for e in entries].count("connected") == 1
    by_event = {e["event"]: e for e in entries}
    assert by_event["login"]["user"] == "carol" and by_event["login"]["by"] == "user"
    created = by_event["created"]
    assert (created["session"], created["owner"], created["user"], created["by"]) == \
        (session["id"], "alice", "alice", "owner")
    assert created["address"] == "127.0.0.1" and "tiny.qcow2" in created["detail"]
    stopped = by_event["stopped"]
    assert (stopped["session"], stopped["owner"], stopped["user"], stopped["by"]) == \
        (session["id"], "alice", "admin", "admin")
    connected = by_event["connected"]
    assert connected["session"] == session["id"] and connected["address"] == "127.0.0.1"
    assert re.fullmatch(r"for [1-9]\d* s", connected["detail"])
    assert connected["time"] <= stopped["time"]
    viewed = by_event["viewed"]
    assert (viewed["session"], viewed["by"], viewed["address"]) == (session["id"], "owner", None)
    assert re.fullmatch(r"for [1-9]\d* s", viewed["detail"])
    # the helper's journal holds this start and stop too: recorded once, by the module
    assert [e["event"] for e in entries].count("stopped") == 1
    assert [e["event"] for e in entries].count("created") == 1
    # filters: by user (as actor or owner), by event, by time
    assert {e["event"] for e in audit(httpd, user="alice")} == \
        {"created", "stopped", "viewed", "connected"}
    assert [e["event"] for e in audit(httpd, event="login")] == ["login"]
    assert audit(httpd, since=int(time.time()) + 60) == []
    # one numbered log line per entry
    lines = audit_lines(httpd)
    assert len(lines) == len(entries)
    assert any(f"audit stopped session {session['id']} owner alice user admin by admin" in line
               for line in lines)
    # for admins only
    status, answer, _ = api(httpd, "GET", "audit", user="alice")
    assert status == 403 and answer["error"] == "forbidden"


def test_audit_takes_what_the_helper_decided_from_its_journal(ops_httpd, helper):
    httpd = ops_httpd()
    # a session qwdctl-style (no mod_qwd request), which expires by itself
    expiring = helper.call("start", machine="tiny.qcow2", owner="dave", lifetime_s=2, by="ops")
    crashing = helper.call("start", machine="tiny.qcow2", owner="erin")
    helper.wait_state(crashing["id"], "running")
    os.kill(crashing["pid"], signal.SIGKILL)
    stopped = helper.call("start", machine="tiny.qcow2", owner="fay")
    helper.call("stop", id=stopped["id"])
    helper.wait_state(expiring["id"], "ended", timeout=30)
    helper.wait_state(crashing["id"], "ended", timeout=30)
    entries = audit(httpd)
    about = {(e["session"], e["event"]): e for e in entries}
    assert about[(expiring["id"], "created")]["user"] == "ops"
    assert about[(expiring["id"], "created")]["by"] == "client"
    assert about[(expiring["id"], "stopped")]["by"] == "expiry"
    assert about[(expiring["id"], "stopped")]["user"] is None
    assert about[(crashing["id"], "ended")]["by"] == "vm"
    assert about[(crashing["id"], "ended")]["detail"] == "crashed"
    assert about[(stopped["id"], "stopped")]["by"] == "client"
    assert about[(stopped["id"], "stopped")]["user"] == "uid:0"
    # the helper's time, not the time of the read
    assert about[(expiring["id"], "stopped")]["time"] <= int(time.time())
    # read once, however often it is asked
    assert len(audit(httpd)) == len(entries)
    assert len(audit_lines(httpd)) == len(entries)


def test_the_monitor_alone_shows_what_the_helper_decided(ops_httpd, helper):
    """The monitor's audit trail reads the journal through the page's own listing (no second
    read): a stop no mod_qwd request made is on the first monitor page after it."""
    httpd = ops_httpd()
    admin = Browser(httpd)
    admin.login("admin")
    assert 'id="audit"' in admin.get("monitor")[1]
    session = helper.call("start", machine="tiny.qcow2", owner="gil", by="ops")
    helper.call("stop", id=session["id"])
    status, page = admin.get("monitor")
    assert status == 200
    trail = page[page.index('id="audit"'):]
    rows = re.findall(r'<tr class="qwd-audit-(\w+)"><td>[^<]*</td><td>\w+</td><td>(\w+)</td>',
                      trail)
    assert ("created", session["id"][:8]) in rows and ("stopped", session["id"][:8]) in rows


def helper_requests(helper):
    """The ops the helper was asked, in order (its QWD05032 line per request)."""
    return re.findall(r"QWD05032: request uid \d+ pid \d+: (\w+)", helper.log_text())


def test_the_monitor_asks_the_helper_once(ops_httpd, helper):
    """One helper request per monitor page (its monitor op: sessions, usage, load, warm images),
    not list, usage, load and warm_list; the page still shows what each of them answers."""
    httpd = ops_httpd()
    session = api_create(httpd)
    wait_running(httpd, session["id"])
    admin = Browser(httpd)
    admin.login("admin")
    for _ in range(3):  # the once-a-minute sweep may add a list in a child that has not swept
        asked = len(helper_requests(helper))
        status, page = admin.get("monitor")
        assert status == 200
        ops = [op for op in helper_requests(helper)[asked:] if op not in ("list", "events")]
        assert ops == ["monitor"], helper_requests(helper)[asked:]
    assert 'id="load"' in page and '<h2>Warm images</h2>' in page
    row = re.search(rf'<tr id="r-{session["id"]}">(.*?)</tr>', page, re.S).group(1)
    assert re.search(r"<td>\d+\.\d %</td><td>\d+ MiB</td><td>\d+ MiB</td>", row), row
    api(httpd, "DELETE", "sessions/" + session["id"])


def test_owner_stop_is_audited_as_the_owners(ops_httpd, helper):
    httpd = ops_httpd()
    session = api_create(httpd, user="alice")
    wait_running(httpd, session["id"])
    status, _, _ = api(httpd, "DELETE", "sessions/" + session["id"], user="alice")
    assert status == 200
    stops = [(e["session"], e["owner"], e["user"], e["by"], e["address"])
             for e in audit(httpd, event="stopped")]
    assert stops == [(session["id"], "alice", "alice", "owner", "127.0.0.1")]


def test_shares_relay_viewers_and_relay_stops_are_audited(ops_httpd, helper):
    """Shares made and revoked (qwd_share.c), the viewers of the helper's relay (from its
    journal: by kind and share, at the time they joined; the gate's own `link` entry beside
    them), and the stops the relay decides: a one-shot session's viewer leaving (`oneshot`) and
    nobody watching for its idle_stop_s (`idle`); the counters follow the relay."""
    httpd = ops_httpd()
    session = api_create(httpd, user="alice")
    sid = session["id"]
    wait_running(httpd, sid)
    before = scrape(httpd)
    status, made, _ = api(httpd, "POST", f"sessions/{sid}/shares", {"kind": "view"}, user="alice")
    assert status == 201, made
    url, protocol = rfb.link_ticket(made["url"])
    watcher = rfb.RfbClient.websocket(url, subprotocols=("binary", protocol)).handshake()
    procs.wait_until(lambda: get(scrape(httpd), "qwd_viewers", kind="view") == 1, 10,
                     what="the share's viewer to be counted")
    time.sleep(1.1)
    status, revoked, _ = api(httpd, "DELETE", f"sessions/{sid}/shares/{made['id']}", user="admin")
    assert status == 200 and revoked["revoked"]
    assert watcher.closed(timeout=5)  # revoking closed it
    watcher.close()
    api(httpd, "DELETE", f"sessions/{sid}/shares/{made['id']}", user="admin")  # again: no entry
    share_entries = [(e["event"], e["by"], e["user"], e["owner"], e["detail"])
                     for e in audit(httpd) if e["event"] in ("shared", "revoked")]
    assert share_entries == [("revoked", "admin", "admin", "alice", f"share {made['id']} (view)"),
                             ("shared", "owner", "alice", "alice", f"share {made['id']} (view)")]

    def viewed_by(kind):
        return [e for e in audit(httpd, event="viewed") if e["by"] == kind]
    view = procs.wait_until(lambda: viewed_by("view"), 10, what="the share viewer's entry")
    assert len(view) == 1 and view[0]["session"] == sid and view[0]["user"] is None
    assert re.fullmatch(rf"for [1-9]\d* s, share {made['id']}", view[0]["detail"])
    assert [e for e in audit(httpd, event="viewed") if e["session"] == sid] == view
    after = scrape(httpd)
    assert get(after, "qwd_viewers", kind="view") == 0
    assert get(after, "qwd_viewer_connections_total", kind="view") - \
        get(before, "qwd_viewer_connections_total", kind="view") == 1
    assert any(f"audit shared session {sid} owner alice user alice by owner" in line
               for line in audit_lines(httpd))

    # a one-shot session: its viewer leaves, the relay stops it
    oneshot = api_create(httpd, user="bob", oneshot=True)
    wait_running(httpd, oneshot["id"], user="bob")
    rfb.open_link_websocket(oneshot["viewer_url"]).close()

    def stopped(session_id):
        return [e for e in audit(httpd, event="stopped") if e["session"] == session_id]
    stop = procs.wait_until(lambda: stopped(oneshot["id"]), 10, what="the one-shot stop")
    assert [(e["by"], e["user"], e["owner"], e["detail"]) for e in stop] == \
        [("oneshot", None, "bob", "viewer_left")]
    # the relay's viewer (by its kind) and the gate's websocket
    procs.wait_until(lambda: sorted((e["event"], e["by"]) for e in audit(httpd)
                                    if e["session"] == oneshot["id"]
                                    and e["event"] in ("viewed", "connected"))
                     == [("connected", "link"), ("viewed", "owner")], 10,
                     what="the one-shot viewer's entries")
    api(httpd, "DELETE", "sessions/" + sid)

    # idle stop (QwdIdleStop passes idle_stop_s; test_330 runs it through Apache): nobody came
    idle = helper.call("start", machine="tiny.qcow2", owner="carol", idle_stop_s=2, by="ops")
    stop = procs.wait_until(lambda: stopped(idle["id"]), 20, interval=0.5, what="the idle stop")
    assert [(e["by"], e["user"], e["owner"], e["detail"]) for e in stop] == \
        [("idle", None, "carol", "idle")]


def test_refused_logins_and_logins_are_audited(make_httpd, helper, workdir):
    users_file = os.path.join(workdir, "users.htpasswd")
    subprocess.run(["htpasswd", "-cbB", users_file, "kim", "s3cret"], check=True,
                   capture_output=True)
    os.chmod(users_file, 0o644)
    httpd = make_httpd(f"QwdAuth form\nQwdAuthProvider file\nAuthUserFile {users_file}\n"
                       "QwdAdmin kim", extra_conf=METRICS_CONF, modules=("status", "authz_host"))
    httpd.expect_lognos(LOG_AUTH_FAILED)
    before = scrape(httpd)
    browser = Browser(httpd)
    assert browser.login("kim", "nope")[0] == 403
    assert browser.login("kim", "s3cret")[0] == 200
    status, _, _ = api(httpd, "GET", "sessions", user="kim", password="wrong")
    assert status == 401
    entries = audit(httpd, as_user="kim", password="s3cret", user="kim")
    assert [(e["event"], e["detail"]) for e in entries if e["user"] == "kim"] == [
        ("login_refused", "wrong user name or password"), ("login", "password (file)"),
        ("login_refused", "wrong user name or password")]
    after = scrape(httpd)
    assert get(after, "qwd_auth_failures_total", reason="denied") - \
        get(before, "qwd_auth_failures_total", reason="denied") == 2
    assert get(after, "qwd_logins_total") - get(before, "qwd_logins_total") == 1


def test_audit_retention_forgets_old_entries(make_httpd, helper):
    httpd = make_httpd(ADMIN_CONF + "\nQwdAuditRetention 30")
    old = int(time.time()) - 31 * 86400
    with sqlite3.connect(httpd.db_path, timeout=10) as db:
        db.execute("INSERT INTO qwd_audit (at, event, actor) VALUES (?, 'login', 'ancient')", (old,))
        db.execute("INSERT INTO qwd_audit (at, event, actor) VALUES (?, 'login', 'recent')",
                   (old + 2 * 86400,))
    status, _, _ = api(httpd, "GET", "sessions", user="alice")  # the sweep runs
    assert status == 200
    users = {e["user"] for e in audit(httpd)}
    assert "recent" in users and "ancient" not in users


# ---------------------------------------------------------------- extend

def test_extend_within_the_maximum_by_admins_and_allowed_owners(ops_httpd, helper):
    httpd = ops_httpd(ADMIN_CONF + "\nQwdMaxLifetime 7200")
    httpd.expect_lognos(LOG_EXTEND_FORBIDDEN, LOG_EXTEND_TOO_LONG)
    session = api_create(httpd, lifetime_s=3600)
    status, answer, _ = api(httpd, "POST", f"sessions/{session['id']}/extend", {"seconds": 600})
    assert status == 403 and answer["error"] == "forbidden"  # an owner, without QwdOwnerExtend
    status, extended, _ = api(httpd, "POST", f"sessions/{session['id']}/extend",
                              {"seconds": 1800}, user="admin")
    assert status == 200 and extended["expires"] == session["expires"] + 1800
    assert helper.call("status", id=helper.call("list")["sessions"][0]["id"])["expires"] == \
        extended["expires"]
    room = session["created"] + 7200 - extended["expires"]
    status, answer, _ = api(httpd, "POST", f"sessions/{session['id']}/extend",
                            {"seconds": room + 1}, user="admin")
    assert status == 400 and answer["field"] == "seconds"
    # the monitor shows where it runs and what it uses, and extends by its button
    admin = Browser(httpd)
    admin.login("admin")
    status, page = admin.get("monitor")
    row = re.search(rf'<tr id="r-{session["id"]}">(.*?)</tr>', page, re.S).group(1)
    assert "tiny.qcow2" in row and "local/" in row and "MiB" in row
    assert re.search(r'name="seconds" value="(\d+)"', row).group(1) == str(room)
    status, page = admin.post("monitor", {"action": "extend", "id": session["id"],
                                          "seconds": str(room), "csrf": admin.csrf("monitor")})
    assert status == 200
    status, now, _ = api(httpd, "GET", "sessions/" + session["id"])
    assert now["expires"] == session["created"] + 7200
    assert 'id="audit"' in page and "extended" in page
    entries = [e for e in audit(httpd, event="extended")]
    assert [(e["user"], e["by"]) for e in entries] == [("admin", "admin"), ("admin", "admin")]
    api(httpd, "DELETE", "sessions/" + session["id"])


def test_owner_extends_with_qwd_owner_extend(ops_httpd, helper):
    httpd = ops_httpd(ADMIN_CONF + "\nQwdOwnerExtend On")
    session = api_create(httpd, lifetime_s=600)
    status, extended, _ = api(httpd, "POST", f"sessions/{session['id']}/extend", {"seconds": 60})
    assert status == 200 and extended["expires"] == session["expires"] + 60
    assert [(e["user"], e["by"]) for e in audit(httpd, event="extended")] == [("alice", "owner")]
    # a qwdctl-style extend reaches the row at the next listing
    helper_id = helper.call("list")["sessions"][0]["id"]
    helper.call("extend", id=helper_id, seconds=30, by="ops")
    status, now, _ = api(httpd, "GET", "sessions/" + session["id"])
    assert now["expires"] == extended["expires"] + 30
    assert ("extended", "client", "ops") in audited(httpd)
    api(httpd, "DELETE", "sessions/" + session["id"])
