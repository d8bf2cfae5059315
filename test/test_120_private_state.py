# SPDX-License-Identifier: Apache-2.0
"""State no other local user may read. The session database, its directory, QwdSecretFile,
the helper's state and token directories and its log are their owner's alone; the module
and the helper refuse to start, naming path and mode, when one of them is open to others. A
copy of the database opens no desktop (no link, no websockify token in it), and no log line
holds a token, a ticket or a link."""
import glob
import os
import re
import shutil
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websocket  # python3-websocket

from qwdtest import env, procs, rfb
from qwdtest.helper import Helper
from qwdtest.httpd import Httpd
from qwdtest.private import mode, paths_open_to_others
from test_300_module import api, api_create, http_status, wait_running

# The module's numbered lines that LogLevel info shows in these tests: a stop (00514), a link
# of an ended session (01412), an unknown link (01414), the gate's refusals (01401-01406).
INFO_LOGNOS = (514, 1401, 1402, 1403, 1404, 1405, 1406, 1411, 1412, 1414)


def secret_conf(httpd):
    return f"QwdSecretFile {os.path.join(httpd.db_dir, 'secret')}"


def start_server(workdir, helper, **kwargs):
    server = Httpd(workdir, helper, **kwargs)
    server.extra_conf = secret_conf(server) + "\n" + kwargs.get("extra_conf", "")
    return server.start()


def open_viewer(link):
    """What our viewer does with a session link: a ticket from LINK/ticket, the websocket with
    it as subprotocol, the RFB banner read. Returns the ticket it used."""
    url, subprotocol = rfb.link_ticket(link)
    assert rfb.websocket_rfb_banner(url, subprotocols=("binary", subprotocol)) \
        == b"RFB 003.008\n"
    return subprotocol[len("qwd-ticket."):]


def helper_token(helper, session_id):
    """The websockify token of the module's session session_id (the helper's ref)."""
    for session in helper.call("list")["sessions"]:
        if session.get("ref") == session_id:
            return session["token"]
    raise AssertionError(f"no VM for session {session_id}")


# ---------------------------------------------------------------- modes

def test_every_file_of_the_stack_is_its_owners_alone(workdir, helper):
    server = start_server(workdir, helper)
    try:
        session = api_create(server)
        wait_running(server, session["id"])
        open_viewer(session["viewer_url"])
        # what other users may read of the whole stack: the directory it lives in and the
        # helper's configuration (no secret in either)
        assert paths_open_to_others(workdir) == [workdir, helper.config_path]
        files = [server.db_path + suffix for suffix in ("", "-wal", "-shm")]
        assert all(os.path.exists(f) for f in files)
        for path in [server.db_dir, os.path.join(server.db_dir, "secret"), *files,
                     helper.state_dir, os.path.join(helper.state_dir, "tokens"),
                     helper.log_path, server.server_root]:
            assert mode(path) & 0o077 == 0, f"{path}: mode {mode(path):04o}"
        if os.geteuid() == 0:
            # the workers' own: SQLite writes the database and its -wal and -shm as them
            assert {os.stat(p).st_uid for p in [server.db_dir, *files]} == {
                os.stat(server.db_dir).st_uid} != {0}
    finally:
        server.stop()


# ---------------------------------------------------------------- refusals

def make_open(path, file_mode):
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, file_mode)


@pytest.mark.parametrize("what", ["db_dir", "database", "wal", "secret"])
def test_module_refuses_to_start_on_state_open_to_others(workdir, helper, what):
    server = Httpd(workdir, helper)
    secret = os.path.join(server.db_dir, "secret")
    server.extra_conf = secret_conf(server)
    server.write_config()
    if what == "db_dir":
        server.db_dir_mode, path, expected = 0o755, server.db_dir, ("QWD03101", "0755")
    elif what == "database":
        path, expected = server.db_path, ("QWD03101", "0644")
        make_open(path, 0o644)
    elif what == "wal":
        path, expected = server.db_path + "-wal", ("QWD03101", "0604")
        make_open(path, 0o604)
    else:
        path, expected = secret, ("QWD03102", "0644")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(os.urandom(32))
        os.chmod(secret, 0o644)
    with pytest.raises(AssertionError, match="apache2 exited") as refused:
        server.start()
    number, octal = expected
    assert re.search(rf"{number}: .*{re.escape(path)} is open to other users \(mode {octal}\)",
                     str(refused.value)), str(refused.value)


@pytest.mark.parametrize("what", ["state_dir", "token_dir", "log_file", "stderr"])
def test_helper_refuses_to_start_on_state_open_to_others(workdir, machines_dir, what):
    helper = Helper(workdir, machines_dir)
    tokens = os.path.join(helper.state_dir, "tokens")
    if what == "state_dir":
        helper.state_dir_mode, path = 0o755, helper.state_dir
    elif what == "token_dir":
        os.makedirs(tokens, mode=0o700)
        os.chmod(tokens, 0o751)
        path = tokens
    elif what == "log_file":
        path = helper.config["log_file"] = os.path.join(workdir, "qwd-helper.log")
        make_open(path, 0o644)
    else:  # no log_file: the log is stderr, here a file
        path = helper.log_path
        make_open(path, 0o644)
    with pytest.raises(AssertionError, match="qwd-helper exited with 1"):
        helper.start()
    log = helper.log_text()
    if what == "log_file":
        with open(path) as f:
            log += f.read()
    key = {"stderr": "log_file"}.get(what, what)
    assert re.search(rf"QWD05250: {key}: {re.escape(path)} is open to other users "
                     rf"\(mode 0{oct(mode(path))[2:]}\)", log), log
    assert procs.processes_mentioning(workdir) == []


# ---------------------------------------------------------------- a copy of the database

def database_values(db_dir, copy_dir):
    """Every value of every table of a copy of the database (with its -wal and -shm, as a
    local user who could read them would take it), as strings."""
    for path in glob.glob(os.path.join(db_dir, "qwd.db*")):
        shutil.copy(path, copy_dir)
    values = set()
    with sqlite3.connect(os.path.join(copy_dir, "qwd.db")) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                values.update(str(value) for value in row if value is not None)
    return values


def websockify_answers(helper, token):
    try:
        return rfb.websocket_rfb_banner(
            f"ws://127.0.0.1:{helper.websockify_port}/?token={token}", timeout=5) != b""
    except (websocket.WebSocketException, OSError):
        return False


def test_a_copy_of_the_database_opens_no_desktop(workdir, helper):
    server = start_server(workdir, helper)
    try:
        sessions = [api_create(server, user=user) for user in ("alice", "bob")]
        for session in sessions:
            wait_running(server, session["id"], user=session["owner"])
        links = [s["viewer_url"].rsplit("/", 1)[1] for s in sessions]
        tokens = [helper_token(helper, s["id"]) for s in sessions]
        # the real secrets work
        assert all(http_status(s["viewer_url"]) == 200 for s in sessions)  # noVNC, redirected
        assert all(websockify_answers(helper, token) for token in tokens)

        copy_dir = os.path.join(workdir, "copy")
        os.mkdir(copy_dir, 0o700)
        values = database_values(server.db_dir, copy_dir)
        assert {s["id"] for s in sessions} <= values  # the copy has the rows
        text = "\n".join(values)
        assert not any(secret in text for secret in links + tokens)
        # and nothing in it opens a desktop: not as a link, not as websockify's token
        candidates = set(values) | {m for v in values for m in re.findall(r"[0-9a-f]{32}", v)}
        for value in sorted(candidates):
            if re.fullmatch(r"[0-9a-f]{32}", value):
                assert http_status(server.url("/qwd/s/" + value)) == 404, value
            if re.fullmatch(r"[A-Za-z0-9_-]{16,64}", value):
                assert not websockify_answers(helper, value), value
    finally:
        server.stop()


V3_SCHEMA = [
    "CREATE TABLE qwd_schema (version INTEGER NOT NULL)",
    "CREATE TABLE qwd_sessions (id TEXT PRIMARY KEY, owner TEXT NOT NULL, machine TEXT NOT NULL,"
    " cpu INTEGER NOT NULL, memory_mib INTEGER NOT NULL, oneshot INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL, helper_id TEXT UNIQUE, token TEXT, created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL, ended INTEGER, ended_reason TEXT)",
    "CREATE INDEX qwd_sessions_owner ON qwd_sessions (owner, state)",
    "INSERT INTO qwd_schema VALUES (3)",
]


def test_a_database_of_schema_3_loses_its_tokens_and_keeps_its_sessions(workdir, helper):
    """Upgrading: the rows of version 3 had websockify's tokens and ids that were links. The
    module drops the tokens and gives each row its link, so a session started before the
    upgrade is listed and opened through its new link; its old link (/s/ID) opens nothing."""
    server = Httpd(workdir, helper)
    server.extra_conf = secret_conf(server)
    server.write_config()
    row_id = "0123456789abcdef0123456789abcdef"
    started = helper.call("start", machine="tiny.qcow2", owner="alice", memory_mib=256, ref=row_id)
    helper.wait_state(started["id"], "running")
    now = int(time.time())
    with sqlite3.connect(server.db_path) as db:
        for sql in V3_SCHEMA:
            db.execute(sql)
        db.execute("INSERT INTO qwd_sessions VALUES (?, 'alice', 'tiny.qcow2', 1, 256, 0,"
                   " 'running', ?, ?, ?, ?, NULL, NULL)",
                   (row_id, started["id"], started["token"], now, now + 3600))
    os.chmod(server.db_path, 0o600)
    if os.geteuid() == 0:
        shutil.chown(server.db_path, "www-data", "www-data")
    server.start()
    try:
        status, listed, _ = api(server, "GET", "sessions")
        assert status == 200, listed
        [session] = listed["sessions"]
        assert session["id"] == row_id and session["state"] == "running"
        open_viewer(session["viewer_url"])
        assert http_status(server.url("/qwd/s/" + row_id)) == 404
        with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
            columns = [row[1] for row in db.execute("PRAGMA table_info(qwd_sessions)")]
            version = db.execute("SELECT MAX(version) FROM qwd_schema").fetchone()[0]
        assert "token" not in columns and version == 5  # the current schema (5: audit trail)
    finally:
        server.stop()
    assert not server.unexpected_log_lines()


# ---------------------------------------------------------------- logs

def test_no_log_line_holds_a_token_a_ticket_or_a_link(workdir, helper):
    """With LogLevel info: a create, a viewer through its link, a refused ticket, websockify
    asked for an unknown token, a stop, the dead link visited. Neither the helper's log (with
    websockify's output) nor Apache's error log names a websockify token, a ticket or a link;
    Apache's access log (the request lines) holds no token."""
    server = start_server(workdir, helper, extra_conf="LogLevel info")
    server.expect_lognos(*INFO_LOGNOS)
    try:
        session = api_create(server)
        wait_running(server, session["id"])
        token = helper_token(helper, session["id"])
        link = session["viewer_url"].rsplit("/", 1)[1]
        tickets = [open_viewer(session["viewer_url"])]
        api_ticket = urllib.parse.parse_qs(urllib.parse.urlsplit(session["websocket_url"]).query)
        tickets.append(api_ticket["ticket"][0])
        assert rfb.websocket_rfb_banner(session["websocket_url"]) == b"RFB 003.008\n"
        with pytest.raises(websocket.WebSocketBadStatusException) as spent:
            rfb.websocket_rfb_banner(session["websocket_url"])
        assert spent.value.status_code == 403
        unknown = "A" * 22
        assert not websockify_answers(helper, unknown)
        status, _, _ = api(server, "DELETE", "sessions/" + session["id"])
        assert status == 200
        assert http_status(session["viewer_url"]) == 410
        # the helper logs websockify's lines from its loop: they are there, tokens hidden
        procs.wait_until(lambda: "Path: '/?token=(hidden)'" in helper.log_text()
                         and "Token '(hidden)' not found" in helper.log_text(), 10,
                         what="websockify's lines in the helper's log")
    finally:
        server.stop()
    helper_log = helper.log_text()
    logs = {"helper log": helper_log, "error log": server.error_log_text(),
            "Apache's stderr": server.stderr_text()}
    for name, text in logs.items():
        for secret in [token, unknown, link, *tickets]:
            assert secret not in text, f"{name} holds {secret}"
    with open(server.access_log) as f:
        assert token not in f.read()
    assert not server.unexpected_log_lines()


def documented_access_log_config(log_path):
    """The access log configuration docs/browser.md gives for links and tickets, writing to
    log_path."""
    with open(os.path.join(env.SRCDIR, "docs", "browser.md")) as f:
        docs = f.read()
    block = re.search(r"log these requests without their path and query:\n\s*```\n(.*?)```",
                      docs, re.S).group(1)
    lines = [line.strip() for line in block.splitlines() if not line.strip().startswith("#")]
    # "combined" as Debian's apache2.conf defines it (without mod_logio's %O)
    combined = ('LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" '
                '\\"%{User-Agent}i\\"" combined')
    return "\n".join([combined, *lines]).replace("${APACHE_LOG_DIR}/access.log", log_path)


def test_the_documented_access_log_holds_no_link_and_no_ticket(workdir, helper):
    hidden_log = os.path.join(workdir, "httpd", "hidden-access.log")
    server = start_server(workdir, helper, modules=("setenvif",),
                          extra_conf=documented_access_log_config(hidden_log))
    try:
        session = api_create(server)
        wait_running(server, session["id"])
        assert http_status(session["viewer_url"]) == 200  # the viewer page
        ticket = open_viewer(session["viewer_url"])  # its POST LINK/ticket and the websocket
        link = session["viewer_url"].rsplit("/", 1)[1]

        def logged():
            with open(hidden_log) as f:
                text = f.read()
            return text if '"GET /qwd/ws' in text else None
        # Apache writes a websocket's line when the connection has ended
        text = procs.wait_until(logged, 10, what="the websocket's access log line")
    finally:
        server.stop()
    assert '"GET /qwd/s/... HTTP/1.1" 200' in text and '"POST /qwd/s/... HTTP/1.1" 200' in text
    assert '"GET /qwd/ws... HTTP/1.1" 101' in text
    assert '"POST /qwd/api/sessions HTTP/1.1" 201' in text  # the rest as usual
    assert link not in text and ticket not in text
