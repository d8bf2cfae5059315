# SPDX-License-Identifier: Apache-2.0
"""Authentication against real servers (issue 7): Apache's providers (ldap, dbd, dbm) with
QwdAuth form, mod_qwd's own imap and smtp providers (also through mod_auth_basic), the
brute-force throttle, the e-mailed login link and the mailed second factor."""
import base64
import http.client
import json
import os
import re
import sqlite3
import subprocess
import time

import pytest

from qwdtest.httpd import Httpd
from qwdtest.servers import Dovecot, SilentServer, Slapd, SmtpServer, TestCA, closed_port
from test_300_module import MACHINE, Browser, helper_ids

LOG_PROVIDER_FAILED = 304
LOG_AUTH_FAILED = 305
LOG_THROTTLED = 2101
LOG_MAIL_SERVER_UNUSABLE = 2202
LOG_BAD_CODE = 2403
LOG_BAD_DOMAIN = 2405

LDAP_MODULES = ("ldap", "authnz_ldap")


@pytest.fixture
def ca(workdir):
    return TestCA(workdir).start()


def call(httpd, method, path, user, password, body=None, source=None):
    """An API request with Basic credentials, optionally from another loopback address.
    Returns (status, body text, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", httpd.port, timeout=30,
                                      source_address=(source, 0) if source else None)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": "Basic " + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    return resp.status, text, resp.headers


def sessions(httpd, user, password, source=None, location="/qwd"):
    return call(httpd, "GET", f"{location}/api/sessions", user, password, source=source)


def assert_right_wrong_unknown(httpd, user, password):
    """Right password → 200; wrong password and unknown user → the same 401 answer."""
    status, body, _ = sessions(httpd, user, password)
    assert status == 200, body
    wrong = sessions(httpd, user, password + "x")
    unknown = sessions(httpd, "mallory", password)
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1] and '"unauthorized"' in wrong[1]


def assert_unavailable(httpd, user, password):
    status, body, headers = sessions(httpd, user, password)
    assert status == 503 and '"auth_unavailable"' in body, body
    assert "password" not in body.lower()
    assert headers["Retry-After"]


def htpasswd(workdir, users):
    path = os.path.join(workdir, "users.htpasswd")
    for i, (user, password) in enumerate(users.items()):
        subprocess.run(["htpasswd", "-bB" + ("c" if i == 0 else ""), path, user, password],
                       check=True, capture_output=True)
    os.chmod(path, 0o644)
    return path


# ------------------------------------------------------------------ Apache's own providers

def test_ldap_provider_with_starttls_right_wrong_and_down(make_httpd, workdir, ca):
    slapd = Slapd(workdir, ca).start()
    try:
        httpd = make_httpd(
            "QwdAuth form\nQwdAuthProvider ldap\n"
            f'AuthLDAPURL "{slapd.url}/{slapd.people_dn}?uid?sub?(objectClass=*)" TLS\n'
            f"AuthLDAPBindDN {slapd.bind_dn}\nAuthLDAPBindPassword {slapd.bind_password}",
            extra_conf=f"LDAPTrustedGlobalCert CA_BASE64 {ca.ca_cert}\nLDAPRetries 0",
            modules=LDAP_MODULES)
        httpd.expect_lognos(LOG_AUTH_FAILED, LOG_PROVIDER_FAILED)
        assert_right_wrong_unknown(httpd, "alice", "alice-secret")
        assert sessions(httpd, "carol", "carol-sécret")[0] == 200
    finally:
        slapd.stop()
    # bob: mod_ldap caches alice's successful bind, which is its documented behaviour
    assert_unavailable(httpd, "bob", "bob-secret")


def test_dbm_and_dbd_providers_in_one_chain(make_httpd, workdir, helper):
    dbm_file = os.path.join(workdir, "users.dbm")
    subprocess.run(["htdbm", "-cbB", dbm_file, "dee", "dbm-secret"], check=True,
                   capture_output=True)
    for name in os.listdir(workdir):
        if name.startswith("users.dbm"):
            os.chmod(os.path.join(workdir, name), 0o644)
    # the users table lives in mod_qwd's own SQLite file: one DBDParams per server
    server = Httpd(workdir, helper)
    os.makedirs(server.db_dir, exist_ok=True)
    hashed = subprocess.run(["htpasswd", "-nbB", "dan", "dbd-secret"], check=True,
                            capture_output=True, text=True).stdout.strip().split(":", 1)[1]
    with sqlite3.connect(server.db_path) as db:
        db.execute("CREATE TABLE users (name TEXT PRIMARY KEY, password TEXT NOT NULL)")
        db.execute("INSERT INTO users VALUES (?, ?)", ("dan", hashed))
    os.chmod(server.db_path, 0o600)  # mod_qwd refuses a database other users may read
    subprocess.run(["chown", "-R", "www-data:www-data", server.db_dir], check=True)
    httpd = make_httpd(
        "QwdAuth form\nQwdAuthProvider dbm dbd\n"
        f"AuthDBMUserFile {dbm_file}\n"
        'AuthDBDUserPWQuery "SELECT password FROM users WHERE name = %s"',
        modules=("authn_dbm", "authn_dbd"))
    httpd.expect_lognos(LOG_AUTH_FAILED)
    assert_right_wrong_unknown(httpd, "dee", "dbm-secret")
    assert_right_wrong_unknown(httpd, "dan", "dbd-secret")


# ------------------------------------------------------------------ mod_qwd's imap provider

def test_imap_provider_starttls_imaps_down_and_through_mod_auth_basic(make_httpd, workdir, ca,
                                                                      helper):
    dovecot = Dovecot(workdir, ca, host="127.0.0.2").start()  # no LOGIN before STARTTLS
    other_ca = TestCA(workdir, name="other-ca").start()
    mail_tls = f"QwdMailCACertificate {ca.ca_cert}\nQwdMailTimeout 5"
    basic = f"""<Location /basic>
    SetHandler qwd
    QwdHelperSocket {helper.socket}
    QwdAuth apache
    AuthType Basic
    AuthName qwd
    AuthBasicProvider imap
    QwdIMAPServer imap://127.0.0.2:{dovecot.imap_port}
    {mail_tls}
    Require valid-user
</Location>
<Location /untrusted>
    SetHandler qwd
    QwdHelperSocket {helper.socket}
    QwdAuthProvider imap
    QwdIMAPServer imaps://127.0.0.2:{dovecot.imaps_port}
    QwdMailCACertificate {other_ca.ca_cert}
</Location>
<Location /imaps>
    SetHandler qwd
    QwdHelperSocket {helper.socket}
    QwdAuthProvider imap
    QwdIMAPServer imaps://127.0.0.2:{dovecot.imaps_port}
    {mail_tls}
</Location>"""
    try:
        httpd = make_httpd(f"QwdAuth form\nQwdAuthProvider imap\n"
                           f"QwdIMAPServer imap://127.0.0.2:{dovecot.imap_port}\n{mail_tls}",
                           extra_conf=basic)
        httpd.expect_lognos(LOG_AUTH_FAILED, LOG_PROVIDER_FAILED, LOG_MAIL_SERVER_UNUSABLE)
        assert_right_wrong_unknown(httpd, "alice", "alice-secret")
        # implicit TLS
        status, text, _ = sessions(httpd, "bob", "bob-secret", location="/imaps")
        assert status == 200, text
        # a server whose certificate the configured CA did not sign is unusable, not "wrong"
        status, text, _ = sessions(httpd, "bob", "bob-secret", location="/untrusted")
        assert status == 503 and '"auth_unavailable"' in text
        assert "SSL" in httpd.error_log_text() or "certificate" in httpd.error_log_text()
        # the same provider serves mod_auth_basic: r->user reaches the module
        status, text, _ = call(httpd, "POST", "/basic/api/sessions", "bob", "bob-secret",
                               {"machine": MACHINE, "memory_mib": 256})
        assert status == 201 and json.loads(text)["owner"] == "bob"
        assert sessions(httpd, "bob", "wrong", location="/basic")[0] == 401
    finally:
        dovecot.stop()
    assert_unavailable(httpd, "alice", "alice-secret")
    # mod_auth_basic answers a provider failure with its own 500, never a 401
    assert sessions(httpd, "bob", "bob-secret", location="/basic")[0] == 500


# ------------------------------------------------------------------ mod_qwd's smtp provider

def test_smtp_provider_starttls_smtps_down_and_silent(make_httpd, workdir, ca, helper):
    smtp = SmtpServer(workdir, ca).start()
    silent = SilentServer().start()
    dead_port = closed_port()
    mail_tls = f"QwdMailCACertificate {ca.ca_cert}"
    extra = ""
    for path, url in (("smtps", f"smtps://127.0.0.1:{smtp.smtps_port}"),
                      ("down", f"smtp://127.0.0.1:{dead_port}"),
                      ("silent", f"smtp://127.0.0.1:{silent.port}")):
        extra += (f"<Location /{path}>\n    SetHandler qwd\n    QwdHelperSocket {helper.socket}\n"
                  f"    QwdAuthProvider smtp\n    QwdSMTPAuthServer {url}\n    {mail_tls}\n"
                  "    QwdMailTimeout 1\n</Location>\n")
    try:
        httpd = make_httpd(f"QwdAuth form\nQwdAuthProvider smtp\n"
                           f"QwdSMTPAuthServer smtp://127.0.0.1:{smtp.port}\n{mail_tls}",
                           extra_conf=extra)
        httpd.expect_lognos(LOG_AUTH_FAILED, LOG_PROVIDER_FAILED, LOG_MAIL_SERVER_UNUSABLE)
        assert_right_wrong_unknown(httpd, "alice", "alice-secret")
        status, text, _ = sessions(httpd, "bob", "bob-secret", location="/smtps")
        assert status == 200, text
        for path in ("down", "silent"):
            begin = time.monotonic()
            status, text, _ = sessions(httpd, "bob", "bob-secret", location=f"/{path}")
            assert status == 503 and '"auth_unavailable"' in text, (path, text)
            assert time.monotonic() - begin < 4  # QwdMailTimeout 1
    finally:
        silent.stop()
        smtp.stop()


# ------------------------------------------------------------------ brute force

def test_throttle_blocks_user_and_address_but_not_others(make_httpd, workdir):
    users = htpasswd(workdir, {"kim": "kim-secret", "lee": "lee-secret"})
    httpd = make_httpd(f"QwdAuth form\nAuthUserFile {users}\nQwdLoginThrottle 3 60 6")
    httpd.expect_lognos(LOG_AUTH_FAILED, LOG_THROTTLED)
    for _ in range(3):
        assert sessions(httpd, "kim", "guess")[0] == 401
    # kim is blocked, even with the right password, from any address
    for source in (None, "127.0.0.2"):
        status, body, headers = sessions(httpd, "kim", "kim-secret", source=source)
        assert status == 429 and '"too_many_logins"' in body
        assert 0 < int(headers["Retry-After"]) <= 60
    # lee, from the same address (3 failures < 6), is not
    assert sessions(httpd, "lee", "lee-secret")[0] == 200
    # an address with 6 failures of any users is blocked for everyone...
    for i in range(6):
        assert sessions(httpd, f"nobody{i}", "guess", source="127.0.0.2")[0] == 401
    assert sessions(httpd, "lee", "lee-secret", source="127.0.0.2")[0] == 429
    # ...while another address is not
    assert sessions(httpd, "lee", "lee-secret")[0] == 200
    # the form answers the same way
    status, page = Browser(httpd).create("kim", password="kim-secret")
    assert status == 429 and "Too many failed logins" in page


# ------------------------------------------------------------------ mailed link and code

def mail_conf(smtp, ca):
    return (f"QwdSMTPRelay smtp://127.0.0.1:{smtp.port}\nQwdMailFrom qwd@qwd.test\n"
            f"QwdMailCACertificate {ca.ca_cert}")


def test_email_link_login_end_to_end_single_use(make_httpd, workdir, ca, helper):
    with SmtpServer(workdir, ca) as smtp:
        httpd = make_httpd("QwdAuth email\nQwdEmailDomain qwd.test example.org\n"
                           + mail_conf(smtp, ca))
        httpd.expect_lognos(LOG_BAD_CODE, LOG_BAD_DOMAIN)
        browser = Browser(httpd)
        status, page = browser.create("elsewhere@evil.test")
        assert status == 403
        status, page = browser.create("Alice@QWD.test")
        assert status == 200 and "alice@qwd.test" in page
        assert helper_ids(helper) == []  # nothing starts before the link is used
        mail = smtp.wait_for_message("alice@qwd.test", timeout=10)
        assert mail.envelope["tls"] and mail["From"] == "qwd@qwd.test"
        link = re.search(r"(http://\S+/login\?token=\S+)", mail.get_content()).group(1)
        # opening the link shows a confirmation; only the POST spends it
        other = Browser(httpd)
        status, page = other.get(link)
        assert status == 200 and 'name="token"' in page
        status, page = other.get(link)
        assert status == 200
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        status, page = other.post(link, {"token": token, "csrf": csrf})
        assert status == 200 and 'class="qwd-sessions"' in page, page
        assert len(helper_ids(helper)) == 1
        assert sessions(httpd, "alice@qwd.test", "")[0] == 401  # the API cannot skip the mail
        # single use
        status, page = other.post(link, {"token": token, "csrf": csrf})
        assert status == 403 and "already used" in page
        assert len(helper_ids(helper)) == 1


def test_mfa_code_after_password_end_to_end(make_httpd, workdir, ca, helper):
    users = htpasswd(workdir, {"kim": "kim-secret"})
    with SmtpServer(workdir, ca) as smtp:
        httpd = make_httpd(f"QwdAuth form\nAuthUserFile {users}\nQwdMFA email\n"
                           "QwdMFAMailDomain qwd.test\n" + mail_conf(smtp, ca))
        httpd.expect_lognos(LOG_AUTH_FAILED, LOG_BAD_CODE)
        browser = Browser(httpd)
        status, page = browser.create("kim", password="wrong")
        assert status == 403
        status, page = browser.create("kim", password="kim-secret")
        assert status == 200 and 'name="code"' in page
        assert helper_ids(helper) == []
        code = re.search(r"code is (\d{8})", smtp.wait_for_message("kim@qwd.test").get_content())
        ref = re.search(r'name="otp_ref" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        wrong = "%08d" % ((int(code.group(1)) + 1) % 100000000)
        status, page = browser.post("", {"otp_ref": ref, "code": wrong, "csrf": csrf})
        assert status == 403 and helper_ids(helper) == []
        status, page = browser.post("", {"otp_ref": ref, "code": code.group(1), "csrf": csrf})
        assert status == 200 and 'class="qwd-sessions"' in page, page
        assert len(helper_ids(helper)) == 1
        status, page = browser.post("", {"otp_ref": ref, "code": code.group(1), "csrf": csrf})
        assert status == 403 and len(helper_ids(helper)) == 1
        # a password alone does not open the API
        assert sessions(httpd, "kim", "kim-secret")[0] == 401
        # five wrong tries spend a code: the right one is refused after them
        status, page = browser.create("kim", password="kim-secret")
        assert status == 200
        code = re.search(r"code is (\d{8})", smtp.wait_for_message("kim@qwd.test").get_content())
        ref = re.search(r'name="otp_ref" value="([^"]+)"', page).group(1)
        for _ in range(5):
            status, _ = browser.post("", {"otp_ref": ref, "code": "x", "csrf": csrf})
            assert status == 403
        status, page = browser.post("", {"otp_ref": ref, "code": code.group(1), "csrf": csrf})
        assert status == 403 and len(helper_ids(helper)) == 1


# ------------------------------------------------------------------ configuration

@pytest.mark.parametrize("line, message", [
    ("QwdIMAPServer http://mail.example.org", "QwdIMAPServer: expects imap://"),
    ("QwdSMTPAuthServer smtp://", "QwdSMTPAuthServer: expects smtp://"),
    ("QwdLoginThrottle 5", "QwdLoginThrottle: expects N SECONDS"),
    ("QwdMailCACertificate /no/such/ca.pem", "QwdMailCACertificate:"),
    ("QwdLoginThrottle 5 0", "QwdLoginThrottle: expects N SECONDS"),
    ("QwdMFA sms", "QwdMFA: expects off or email"),
    ("QwdEmailDomain @example.org", "QwdEmailDomain:"),
    ("QwdAuth kerberos", "none, form, apache or email"),
])
def test_bad_authentication_directives_stop_apache(workdir, line, message):
    checked = Httpd(workdir, None, qwd_conf=line).check_config()
    assert checked.returncode != 0 and message in checked.stderr + checked.stdout
