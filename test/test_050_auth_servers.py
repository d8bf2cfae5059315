# SPDX-License-Identifier: Apache-2.0
"""The authentication fixtures are real servers that can also say no: slapd, Dovecot and the
aiosmtpd server accept the right password, refuse a wrong one, verify against the TestCA,
refuse cleartext AUTH where they should, and leave no process behind once stopped."""
import imaplib
import smtplib
import socket
import ssl
import subprocess
import time
from email.message import EmailMessage

import pytest

from qwdtest import procs
from qwdtest.servers import (Dovecot, SilentServer, Slapd, SmtpServer, TestCA, closed_port)


@pytest.fixture
def ca(workdir):
    return TestCA(workdir).start()


def assert_nothing_mentions(workdir):
    left = procs.processes_mentioning(workdir)
    assert not left, f"processes left after stop(): {left}"


def started(server):
    begin = time.monotonic()
    server.start()
    return time.monotonic() - begin


# --------------------------------------------------------------------------------------------
# the CA

def test_ca_issues_a_certificate_python_verifies_for_localhost_and_127_0_0_1(ca):
    for name in ("localhost", "127.0.0.1", "127.0.0.2"):
        checked = subprocess.run(["openssl", "verify", "-CAfile", ca.ca_cert,
                                  "-verify_hostname" if name[0].isalpha() else "-verify_ip",
                                  name, ca.cert], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    wrong = subprocess.run(["openssl", "verify", "-CAfile", ca.ca_cert, "-verify_hostname",
                            "example.org", ca.cert], capture_output=True, text=True)
    assert wrong.returncode != 0


# --------------------------------------------------------------------------------------------
# LDAP

def test_slapd_binds_with_the_right_password_and_refuses_a_wrong_one(workdir, ca):
    slapd = Slapd(workdir, ca)
    took = started(slapd)
    try:
        assert took < 5, f"slapd took {took:.2f}s to start"
        alice = slapd.user_dn("alice")
        ok = slapd.whoami(alice, "alice-secret")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == f"dn:{alice}"

        wrong = slapd.whoami(alice, "bob-secret")
        assert wrong.returncode == 49, wrong.stdout + wrong.stderr  # invalidCredentials
        assert "Invalid credentials" in wrong.stderr
        nobody = slapd.whoami(slapd.user_dn("mallory"), "x")
        assert nobody.returncode == 49, nobody.stdout + nobody.stderr

        # non-ASCII password and a name full of HTML specials
        carol = slapd.whoami(slapd.user_dn("carol"), "carol-sécret")
        assert carol.returncode == 0, carol.stderr

        # StartTLS and ldaps, verified against the TestCA
        assert slapd.whoami(alice, "alice-secret", starttls=True).returncode == 0
        assert slapd.whoami(alice, "alice-secret", url=slapd.ldaps_url).returncode == 0
        assert slapd.whoami(alice, "wrong", url=slapd.ldaps_url).returncode == 49
        other = TestCA(workdir, name="other-ca").start()
        untrusted = subprocess.run(
            ["ldapwhoami", "-x", "-H", slapd.ldaps_url, "-D", alice, "-w", "alice-secret"],
            env=dict(slapd.cli_env(), LDAPTLS_CACERT=other.ca_cert),
            capture_output=True, text=True, timeout=10)
        assert untrusted.returncode != 0
    finally:
        slapd.stop()
    assert_nothing_mentions(workdir)


def test_slapd_directory_has_the_group_and_hides_passwords(workdir, ca):
    with Slapd(workdir, ca) as slapd:
        found = slapd.search(f"(&(objectClass=groupOfNames)(member={slapd.user_dn('alice')}))",
                             ["cn"], dn=slapd.bind_dn, password=slapd.bind_password)
        assert found.returncode == 0, found.stderr
        assert f"dn: {slapd.group_dn}" in found.stdout
        bob_groups = slapd.search(f"(member={slapd.user_dn('bob')})", ["cn"],
                                  dn=slapd.bind_dn, password=slapd.bind_password)
        assert slapd.group_dn not in bob_groups.stdout

        carol = slapd.search("(uid=carol)", ["cn", "userPassword"],
                             dn=slapd.bind_dn, password=slapd.bind_password)
        assert carol.returncode == 0, carol.stderr
        assert "cn:: " in carol.stdout  # non-ASCII: base64 in LDIF
        assert "userPassword" not in carol.stdout

        anonymous = slapd.search("(uid=alice)")
        # anonymous may only bind: even the base is invisible (noSuchObject)
        assert anonymous.returncode == 32 and "dn:" not in anonymous.stdout

        wrong_service = slapd.search("(uid=alice)", dn=slapd.bind_dn, password="nope")
        assert wrong_service.returncode == 49


@pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning")
def test_ldap3_sees_the_same_directory(workdir, ca):
    ldap3 = pytest.importorskip("ldap3")
    with Slapd(workdir, ca) as slapd:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca.ca_cert)
        server = ldap3.Server(slapd.host, port=slapd.port, tls=tls, connect_timeout=5)
        conn = ldap3.Connection(server, slapd.user_dn("carol"), "carol-sécret")
        conn.open()
        conn.start_tls()
        assert conn.bind(), conn.result
        conn.search(slapd.people_dn, "(uid=carol)", attributes=["cn"])
        assert conn.entries[0].cn.value == slapd.people["carol"]["cn"]
        conn.unbind()
        bad = ldap3.Connection(server, slapd.user_dn("alice"), "wrong")
        assert not bad.bind()
        assert bad.result["description"] == "invalidCredentials"


def test_slapd_restarts_on_the_same_port_and_a_stopped_one_refuses(workdir, ca):
    slapd = Slapd(workdir, ca).start()
    port = slapd.port
    slapd.stop()
    down = slapd.whoami(slapd.user_dn("alice"), "alice-secret")
    assert down.returncode == 255, down.stderr  # LDAP_SERVER_DOWN, not invalidCredentials
    slapd.start()
    try:
        assert slapd.port == port
        assert slapd.whoami(slapd.user_dn("alice"), "alice-secret").returncode == 0
    finally:
        slapd.stop()
    assert_nothing_mentions(workdir)


# --------------------------------------------------------------------------------------------
# IMAP

def test_dovecot_imap_starttls_login_right_and_wrong(workdir, ca):
    dovecot = Dovecot(workdir, ca)
    took = started(dovecot)
    try:
        assert took < 5, f"dovecot took {took:.2f}s to start"
        context = ca.client_context()
        with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
            imap.starttls(ssl_context=context)
            typ, _ = imap.login("alice", "alice-secret")
            assert typ == "OK"
            typ, data = imap.select("INBOX")
            assert typ == "OK"
        with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
            imap.starttls(ssl_context=context)
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.login("alice", "bob-secret")
        with imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port, ssl_context=context,
                               timeout=10) as imap:
            assert imap.login("bob", "bob-secret")[0] == "OK"
        # a client that does not trust the TestCA is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port,
                              ssl_context=TestCA(workdir, "other-ca").start().client_context(),
                              timeout=10)
        # Dovecot's helper processes all carry the workdir (instance_name)
        mentioned = {pid for pid, _ in procs.processes_mentioning(workdir)}
        assert len(mentioned) >= 3
    finally:
        dovecot.stop()
    assert_nothing_mentions(workdir)


def test_dovecot_on_127_0_0_2_refuses_cleartext_login(workdir, ca):
    with Dovecot(workdir, ca, host="127.0.0.2") as dovecot:
        with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
            assert "LOGINDISABLED" in imap.capabilities
            with pytest.raises(imaplib.IMAP4.error):
                imap.login("alice", "alice-secret")
        with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
            imap.starttls(ssl_context=ca.client_context())
            assert imap.login("alice", "alice-secret")[0] == "OK"
    assert_nothing_mentions(workdir)


# --------------------------------------------------------------------------------------------
# SMTP

def message(to, subject="your code", body="123456"):
    m = EmailMessage()
    m["From"] = "qwd@qwd.test"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body)
    return m


def test_smtp_auth_after_starttls_right_and_wrong_and_mail_lands(workdir, ca):
    smtp = SmtpServer(workdir, ca)
    took = started(smtp)
    try:
        assert took < 5, f"the SMTP server took {took:.2f}s to start"
        context = ca.client_context()
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            client.ehlo()
            assert not client.has_extn("auth")  # not offered in clear
            code, _ = client.docmd("AUTH", "PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==")
            assert code == 538
            client.starttls(context=context)
            client.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                client.login("alice", "bob-secret")
            assert refused.value.smtp_code == 535
        for mechanism in ("PLAIN", "LOGIN"):
            with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
                client.starttls(context=context)
                client.ehlo()
                client.user, client.password = "alice", "alice-secret"
                code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
                assert code == 235
                client.send_message(message("bob@qwd.test", subject=mechanism))
        with smtplib.SMTP_SSL(smtp.host, smtp.smtps_port, context=context, timeout=10) as c:
            c.login("bob", "bob-secret")
            c.send_message(message("alice@qwd.test", subject="smtps"))
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtplib.SMTP_SSL(smtp.host, smtp.smtps_port, context=context,
                                 timeout=10).login("bob", "wrong")

        got = smtp.wait_for_message("BOB@qwd.test", timeout=5)
        assert got["Subject"] == "PLAIN"
        assert got.envelope["auth_user"] == "alice" and got.envelope["tls"]
        assert smtp.wait_for_message("bob@qwd.test", timeout=5)["Subject"] == "LOGIN"
        smtps = smtp.wait_for_message("alice@qwd.test", timeout=5)
        assert smtps["Subject"] == "smtps" and smtps.envelope["auth_user"] == "bob"
        assert [m["Subject"] for m in smtp.messages()] == ["PLAIN", "LOGIN", "smtps"]
        with pytest.raises(AssertionError):
            smtp.wait_for_message("bob@qwd.test", timeout=0.3)
    finally:
        smtp.stop()
    assert_nothing_mentions(workdir)


def test_smtp_relays_without_auth_and_bounces_on_request(workdir, ca):
    with SmtpServer(workdir, ca) as smtp:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            client.send_message(message("alice@qwd.test", body="Your code: 424242"))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.send_message(message("bounce-me@qwd.test"))
        got = smtp.wait_for_message("alice@qwd.test", timeout=5)
        assert got.get_content().strip() == "Your code: 424242"
        assert got.envelope["auth_user"] is None and not got.envelope["tls"]
        assert got.envelope["mail_from"] == "qwd@qwd.test"
        assert len(smtp.messages()) == 1


def test_smtp_options_require_auth_or_allow_cleartext_auth(workdir, ca):
    with SmtpServer(workdir, ca, auth_required=True) as strict:
        with smtplib.SMTP(strict.host, strict.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.send_message(message("alice@qwd.test"))
            assert refused.value.smtp_code == 530
        strict.stop()
    with SmtpServer(workdir, ca, auth_require_tls=False) as lax:
        with smtplib.SMTP(lax.host, lax.port, timeout=10) as client:
            client.login("alice", "alice-secret")
            client.send_message(message("bob@qwd.test"))
        assert lax.wait_for_message("bob@qwd.test", 5).envelope["auth_user"] == "alice"
    assert_nothing_mentions(workdir)


# --------------------------------------------------------------------------------------------
# down servers

def test_closed_port_refuses_and_silent_server_hangs():
    port = closed_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with SilentServer() as silent:
        with socket.create_connection((silent.host, silent.port), timeout=2) as s:
            s.settimeout(0.3)
            with pytest.raises(socket.timeout):
                s.recv(1)
        procs.wait_until(lambda: silent.connections == 1, 2, what="the accept")


def test_all_servers_together_stop_cleanly(workdir, ca):
    begin = time.monotonic()
    with Slapd(workdir, ca) as slapd, Dovecot(workdir, ca) as dovecot, \
            SmtpServer(workdir, ca) as smtp:
        took = time.monotonic() - begin
        assert took < 6, f"the three servers took {took:.2f}s"
        ports = {slapd.port, slapd.ldaps_port, dovecot.imap_port, dovecot.imaps_port,
                 smtp.port, smtp.smtps_port}
        assert len(ports) == 6
        assert procs.processes_mentioning(workdir)
    assert_nothing_mentions(workdir)
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
