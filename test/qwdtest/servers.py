# SPDX-License-Identifier: Apache-2.0
"""Real authentication servers on loopback for the tests: a throwaway CA, OpenLDAP's slapd,
Dovecot (IMAP), an aiosmtpd SMTP server (smtp_server.py), and "server down" helpers.

Everything a server uses lives under the caller's workdir (a short /tmp/qwdt-XXXXXX), it
listens on 127.0.0.1 on free unprivileged ports, runs in its own session and is stopped by
PID (never systemctl, never /etc config, never default ports). Every process started here
names the workdir in its command line, so the conftest leak check finds leftovers.

Each server class: start() -> self, stop(), and a context manager (with X(...) as x:).
start() after stop() restarts the same server on the same ports with the same data, so a
test can take a server down and bring it back."""
import base64
import email
import email.policy
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

from . import env, procs

LDAP_SCHEMA_DIR = "/etc/ldap/schema"      # static schema files shipped by slapd
LDAP_MODULE_DIR = "/usr/lib/ldap"
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
DOVECOT = "/usr/sbin/dovecot"
DOVECOT_DH = "/usr/share/dovecot/dh.pem"  # static ffdhe parameters shipped by dovecot-core
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SMTP_SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_server.py")

DEFAULT_USERS = {"alice": "alice-secret", "bob": "bob-secret"}


# --------------------------------------------------------------------------------------------
# small helpers

def _write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def _read_tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "(no log)"
    return data[-limit:].decode(errors="replace")


def _run(argv, **kwargs):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {' '.join(argv)}\n"
                           f"{result.stdout}{result.stderr}")
    return result


def _port_accepts(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _session_members(sid):
    """PIDs of the live processes in session sid (our servers are session leaders)."""
    return [pid for pid, fields in procs.live_processes() if int(fields[3]) == sid]


def _stop_session(proc, timeout=10):
    """SIGTERM to the session leader proc, wait for it, then wait for every other process of
    its session (forked helpers) to go; SIGKILL whatever is left after the timeout."""
    if proc is None:
        return
    sid = proc.pid
    procs.stop(proc, signal.SIGTERM, timeout)
    deadline = time.monotonic() + timeout
    while True:
        left = _session_members(sid)
        if not left:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    procs.wait_until(lambda: not _session_members(sid), 5, what=f"session {sid} to die")


def _ensure_traversable(path):
    """Daemons drop privileges (openldap, dovecot, nobody): they must reach workdir."""
    mode = os.stat(path).st_mode
    if not mode & 0o001:
        os.chmod(path, (mode & 0o7777) | 0o111)


def _chown_tree(path, user):
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


def _user_exists(user):
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


class _Server:
    """start()/stop()/context manager plumbing shared by the servers."""
    __test__ = False  # not a pytest test class
    name = "server"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def running(self):
        return getattr(self, "process", None) is not None and self.process.poll() is None

    def log_text(self):
        return _read_tail(self.log_path, 1 << 20)

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def _port_taken(self, offset):
        """Whether the log written since offset reports EADDRINUSE."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return b"Address already in use" in f.read()
        except FileNotFoundError:
            return False

    def _start_retrying_ports(self, launch, new_ports, timeout):
        """launch() spawns self.process; then waits for self._ready. A port taken between
        free_port() and the server's bind (EADDRINUSE in its log) picks new_ports() and tries
        again, three times in all, unless the ports were given."""
        for attempt in range(3):
            offset = self._log_size()
            launch()
            try:
                self._wait_ready(self._ready, timeout)
                return self
            except RuntimeError:
                if self._fixed_ports or attempt == 2 or not self._port_taken(offset):
                    raise
                new_ports()

    def _wait_ready(self, ready, timeout):
        def check():
            if self.process.poll() is not None:
                return "exited"
            return ready()
        try:
            result = procs.wait_until(check, timeout, interval=0.02,
                                      what=f"{self.name} to accept connections")
        except AssertionError:
            self.stop()
            raise AssertionError(f"{self.name} did not come up within {timeout}s:\n"
                                 + _read_tail(self.log_path))
        if result == "exited":
            code = self.process.returncode
            self.stop()
            raise RuntimeError(f"{self.name} exited with {code}:\n" + _read_tail(self.log_path))


# --------------------------------------------------------------------------------------------
# 1. a throwaway CA

class TestCA:
    """A throwaway CA (EC P-256, openssl CLI) and a server certificate for localhost, this
    machine's host name, 127.0.0.1 and 127.0.0.2, all under workdir/<name>/. (The host name
    because libldap checks an ldap[s]://localhost server's certificate against the local
    host name, not "localhost".)

    .ca_cert  the CA certificate (PEM): give it to clients as their trust anchor
    .cert     the server certificate (PEM), .key its private key (PEM, 0600)
    .issue(name, dns=..., ips=...) -> (cert, key): another server cert from this CA (e.g. one
              for a wrong host name)
    .client_context() -> ssl.SSLContext trusting only this CA, checking host names
    A second TestCA(workdir, name="other-ca") gives an untrusted CA for negative tests."""
    __test__ = False

    def __init__(self, workdir, name="ca", dns=None, ips=("127.0.0.1", "127.0.0.2")):
        self.workdir = workdir
        self.dir = os.path.join(workdir, name)
        self.name = name
        self.ca_cert = os.path.join(self.dir, "ca.crt")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "server.crt")
        self.key = os.path.join(self.dir, "server.key")
        if dns is None:
            dns = ["localhost"] + sorted({socket.gethostname(), socket.getfqdn()}
                                         - {"localhost", ""})
        self.dns = tuple(dns)
        self.ips = tuple(ips)
        self._serial = 1

    def start(self):
        if os.path.exists(self.cert):
            return self
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        _run([OPENSSL, "req", "-x509", "-new", "-newkey", "ec",
              "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "30",
              "-subj", f"/O=qwd tests/CN=qwd test CA {self.name}",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.issue("server", self.dns, self.ips)
        return self

    def issue(self, name, dns=("localhost",), ips=("127.0.0.1",)):
        """Issues workdir/<ca>/<name>.crt/.key for the given names; returns (cert, key)."""
        cert = os.path.join(self.dir, f"{name}.crt")
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        ext = os.path.join(self.dir, f"{name}.ext")
        san = ",".join([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips])
        _write(ext, "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\n"
                    + (f"subjectAltName={san}\n" if san else ""))
        common_name = (list(dns) + list(ips) + [name])[0]
        _run([OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
              "-subj", f"/O=qwd tests/CN={common_name}"])
        self._serial += 1
        _run([OPENSSL, "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
              "-set_serial", str(int(time.time() * 1000) * 100 + self._serial),
              "-days", "30", "-extfile", ext, "-out", cert])
        os.chmod(key, 0o600)
        os.unlink(csr)
        return cert, key

    def stop(self):
        pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca_cert)


# --------------------------------------------------------------------------------------------
# 2. OpenLDAP

def _ssha(password):
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _ldif_value(attr, value):
    """attr: value, or attr:: base64 when the value is not an LDIF SAFE-STRING."""
    raw = value.encode("utf-8")
    safe = (raw and all(0x01 <= b <= 0x7f and b not in (0x0a, 0x0d) for b in raw)
            and raw[0] not in b" :<" and not raw.endswith(b" "))
    if safe:
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(raw).decode()}"


def _ldif(entries):
    blocks = []
    for dn, attrs in entries:
        lines = [_ldif_value("dn", dn)]
        for attr, values in attrs:
            for value in (values if isinstance(values, (list, tuple)) else [values]):
                lines.append(_ldif_value(attr, value))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


class Slapd(_Server):
    """OpenLDAP slapd (mdb backend, slapd.conf in workdir/slapd/) with base dc=qwd,dc=test.

    Directory content:
      uid=alice,ou=people,dc=qwd,dc=test  alice-secret   member of vmusers and staff
      uid=bob,ou=people,...               bob-secret     member of staff only
      uid=carol,ou=people,...             carol-sécret   cn with non-ASCII and HTML specials,
                                                         member of vmusers
      cn=qwd-service,ou=services,...      .bind_password  a read-only search account
      cn=vmusers,ou=groups,... and cn=staff,ou=groups,... (groupOfNames, member=DNs)
    Anonymous binds can only authenticate (no search); bound users and the service account
    read everything but passwords; the rootdn (.admin_dn/.admin_password) can do anything.

    .url        ldap://127.0.0.1:PORT (StartTLS available when ca is given)
    .ldaps_url  ldaps://127.0.0.1:PORT2 when ca is given, else None
    .host .port .ldaps_port .base_dn .people_dn .groups_dn
    .bind_dn / .bind_password   the service account
    .admin_dn / .admin_password the rootdn
    .users      {uid: password}
    .people     {uid: {"dn", "cn", "mail", "password", "groups"}}
    .groups     {cn: dn}; .group_dn = dn of vmusers
    .user_dn(uid)
    .cli_env()  environment for ldap-utils: LDAPTLS_CACERT=the TestCA, LDAPTLS_REQCERT=demand
    .whoami(dn, password, starttls=False, url=None) -> subprocess.CompletedProcess of
                ldapwhoami (returncode 49 = invalidCredentials)
    .search(filter, attrs=(), dn=None, password=None) -> CompletedProcess of ldapsearch -LLL
    Runs as openldap:openldap (-u/-g) when the workdir is reachable by that user."""

    name = "slapd"
    base_dn = "dc=qwd,dc=test"

    def __init__(self, workdir, ca=None, port=None, ldaps_port=None):
        self.workdir = workdir
        self.ca = ca
        self.dir = os.path.join(workdir, "slapd")
        self.data_dir = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, "slapd.conf")
        self.ldif_path = os.path.join(self.dir, "data.ldif")
        self.pid_path = os.path.join(self.dir, "slapd.pid")
        self.log_path = os.path.join(self.dir, "slapd.log")
        self.host = "127.0.0.1"
        self._fixed_ports = port is not None
        self.port = port or env.free_port()
        self.ldaps_port = (ldaps_port or env.free_port()) if ca else None
        self.people_dn = f"ou=people,{self.base_dn}"
        self.groups_dn = f"ou=groups,{self.base_dn}"
        self.admin_dn = f"cn=admin,{self.base_dn}"
        self.admin_password = "admin-secret"
        self.bind_dn = f"cn=qwd-service,ou=services,{self.base_dn}"
        self.bind_password = "service-secret"
        self.people = {
            "alice": {"cn": "Alice Liddell", "sn": "Liddell", "password": "alice-secret",
                      "groups": ["vmusers", "staff"]},
            "bob": {"cn": "Bob Builder", "sn": "Builder", "password": "bob-secret",
                    "groups": ["staff"]},
            "carol": {"cn": "Carol \"Zoë\" <b>O'Brien</b> & Co", "sn": "O'Brien & Zoë",
                      "password": "carol-sécret", "groups": ["vmusers"]},
        }
        for uid, person in self.people.items():
            person["dn"] = self.user_dn(uid)
            person["mail"] = f"{uid}@qwd.test"
        self.groups = {cn: f"cn={cn},{self.groups_dn}" for cn in ("vmusers", "staff")}
        self.group_dn = self.groups["vmusers"]
        self.users = {uid: p["password"] for uid, p in self.people.items()}
        self.process = None
        self.run_as = None

    @property
    def url(self):
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self):
        return f"ldaps://{self.host}:{self.ldaps_port}" if self.ldaps_port else None

    def user_dn(self, uid):
        return f"uid={uid},{self.people_dn}"

    def _entries(self):
        b = self.base_dn
        entries = [
            (b, [("objectClass", ["top", "dcObject", "organization"]), ("dc", "qwd"),
                 ("o", "qwd tests")]),
            (self.people_dn, [("objectClass", "organizationalUnit"), ("ou", "people")]),
            (self.groups_dn, [("objectClass", "organizationalUnit"), ("ou", "groups")]),
            (f"ou=services,{b}", [("objectClass", "organizationalUnit"), ("ou", "services")]),
            (self.bind_dn, [("objectClass", ["organizationalRole", "simpleSecurityObject"]),
                            ("cn", "qwd-service"),
                            ("userPassword", _ssha(self.bind_password))]),
        ]
        for number, (uid, p) in enumerate(self.people.items()):
            entries.append((p["dn"], [
                ("objectClass", ["inetOrgPerson", "posixAccount"]),
                ("uid", uid), ("cn", p["cn"]), ("sn", p["sn"]), ("displayName", p["cn"]),
                ("mail", p["mail"]), ("uidNumber", str(20001 + number)),
                ("gidNumber", "20000"), ("homeDirectory", f"/nonexistent/{uid}"),
                ("userPassword", _ssha(p["password"]))]))
        for cn, dn in self.groups.items():
            members = [p["dn"] for p in self.people.values() if cn in p["groups"]]
            entries.append((dn, [("objectClass", "groupOfNames"), ("cn", cn),
                                 ("member", members)]))
        return entries

    def _config(self):
        tls = ""
        if self.ca:
            tls = (f"TLSCACertificateFile {self.ca.ca_cert}\n"
                   f"TLSCertificateFile {os.path.join(self.dir, 'server.crt')}\n"
                   f"TLSCertificateKeyFile {os.path.join(self.dir, 'server.key')}\n")
        schemas = "".join(f"include {LDAP_SCHEMA_DIR}/{s}.schema\n"
                          for s in ("core", "cosine", "nis", "inetorgperson"))
        return (f"# generated by the mod_qwd test harness\n{schemas}"
                f"pidfile {self.pid_path}\n"
                f"argsfile {os.path.join(self.dir, 'slapd.args')}\n"
                f"modulepath {LDAP_MODULE_DIR}\nmoduleload back_mdb\n"
                f"{tls}"
                "database mdb\n"
                "maxsize 16777216\n"
                f"suffix \"{self.base_dn}\"\n"
                f"rootdn \"{self.admin_dn}\"\n"
                f"rootpw {_ssha(self.admin_password)}\n"
                f"directory {self.data_dir}\n"
                "index objectClass eq\nindex uid eq\nindex member eq\n"
                "access to attrs=userPassword\n  by anonymous auth\n  by * none\n"
                "access to *\n  by users read\n  by * none\n")

    def _build(self):
        if os.path.exists(os.path.join(self.data_dir, "data.mdb")):
            return
        _ensure_traversable(self.workdir)
        os.makedirs(self.data_dir, exist_ok=True)
        os.chmod(self.dir, 0o750)
        if self.ca:
            shutil.copy(self.ca.cert, os.path.join(self.dir, "server.crt"))
            shutil.copy(self.ca.key, os.path.join(self.dir, "server.key"))
            os.chmod(os.path.join(self.dir, "server.key"), 0o600)
        _write(self.config_path, self._config(), 0o640)
        _write(self.ldif_path, _ldif(self._entries()), 0o640)
        _run([SLAPADD, "-q", "-f", self.config_path, "-l", self.ldif_path])
        if os.getuid() == 0 and _user_exists("openldap"):
            _chown_tree(self.dir, "openldap")
            self.run_as = "openldap"

    def start(self, timeout=10):
        self._build()
        return self._start_retrying_ports(self._launch, self._new_ports, timeout)

    def _launch(self):
        urls = self.url + "/" + (f" {self.ldaps_url}/" if self.ldaps_url else "")
        argv = [SLAPD, "-d", "256", "-f", self.config_path, "-h", urls]
        if self.run_as:
            argv += ["-u", self.run_as, "-g", self.run_as]
        self.process = procs.spawn(argv, self.log_path)

    def _new_ports(self):
        self.port = env.free_port()
        if self.ldaps_port:
            self.ldaps_port = env.free_port()

    def _ready(self):
        return _port_accepts(self.host, self.port) and (
            not self.ldaps_port or _port_accepts(self.host, self.ldaps_port))

    def stop(self):
        _stop_session(self.process)

    def cli_env(self):
        # (not LDAPNOINIT: it also disables the LDAPTLS_* variables; these override
        # /etc/ldap/ldap.conf anyway)
        environment = dict(os.environ)
        if self.ca:
            environment["LDAPTLS_CACERT"] = self.ca.ca_cert
            environment["LDAPTLS_REQCERT"] = "demand"
        return environment

    def whoami(self, dn, password, starttls=False, url=None, timeout=10):
        argv = ["ldapwhoami", "-x", "-H", url or self.url, "-D", dn, "-w", password,
                "-o", "nettimeout=5"]
        if starttls:
            argv.append("-ZZ")
        return subprocess.run(argv, env=self.cli_env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def search(self, search_filter, attrs=(), dn=None, password=None, base=None, url=None,
               timeout=10):
        argv = ["ldapsearch", "-LLL", "-x", "-o", "ldif-wrap=no", "-o", "nettimeout=5",
                "-H", url or self.url, "-b", base or self.base_dn]
        if dn is not None:
            argv += ["-D", dn, "-w", password]
        argv += [search_filter, *attrs]
        return subprocess.run(argv, env=self.cli_env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------------------------
# 3. Dovecot (IMAP)

class Dovecot(_Server):
    """Dovecot IMAP with a private config (workdir/dovecot/dovecot.conf, run with -F -c).

    .imap_port   IMAP with STARTTLS;  .imaps_port  implicit TLS (both on .host)
    .users       {user: password} (passwd-file, PLAIN scheme); default alice/bob
    .host        127.0.0.1 by default. NOTE: Dovecot treats a client whose address equals the
                 server's as "secured" and then allows LOGIN before STARTTLS; on 127.0.0.1
                 that is every loopback client. Pass host="127.0.0.2" (the client still
                 connects from 127.0.0.1) to get a server that refuses cleartext logins
                 ("[PRIVACYREQUIRED]"/LOGINDISABLED) until STARTTLS; the TestCA's server
                 certificate covers 127.0.0.2.
    auth_failure_delay: seconds Dovecot waits before answering a failed login (Dovecot's
                 default is 2; 0 here, which still answers within 0.5 s: Dovecot flushes
                 failures on a 0.5 s timer). anvil's per-IP failed-login penalty (2^n s) is
                 disabled, since tests fail logins on purpose.
    The instance_name is the workdir path, so every Dovecot child process (dovecot/auth,
    imap-login, imap, ...) shows it in its title; stop() also waits for the whole session."""

    name = "dovecot"

    def __init__(self, workdir, ca, users=None, host="127.0.0.1", imap_port=None,
                 imaps_port=None, auth_failure_delay=0):
        self.workdir = workdir
        self.auth_failure_delay = auth_failure_delay
        self.ca = ca
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.host = host
        self.dir = os.path.join(workdir, "dovecot")
        self.config_path = os.path.join(self.dir, "dovecot.conf")
        self.passwd_path = os.path.join(self.dir, "passwd")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.home_dir = os.path.join(self.dir, "home")
        self._fixed_ports = imap_port is not None
        self.imap_port = imap_port or env.free_port()
        self.imaps_port = imaps_port or env.free_port()
        self.process = None

    def _config(self):
        d = self.dir
        return f"""# generated by the mod_qwd test harness
instance_name = {d}
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap
listen = {self.host}
ssl = yes
ssl_cert = <{self.ca.cert}
ssl_key = <{self.ca.key}
ssl_dh = <{DOVECOT_DH}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = {self.auth_failure_delay}
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={self.home_dir}/%u
}}
service anvil {{
  # no failed-login penalty (2^n s per client IP, by anvil): tests log in wrongly on purpose
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
"""

    def _build(self):
        _ensure_traversable(self.workdir)
        for sub in ("", "run", "state"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.makedirs(self.home_dir, exist_ok=True)
        if os.getuid() == 0:
            _chown_tree(self.home_dir, "nobody")
        _write(self.passwd_path,
               "".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()), 0o640)
        if os.getuid() == 0:
            shutil.chown(self.passwd_path, "root", "dovecot")
        _write(self.config_path, self._config(), 0o644)

    def start(self, timeout=10):
        return self._start_retrying_ports(self._launch, self._new_ports, timeout)

    def _launch(self):
        self._build()  # the config names the ports
        self.process = procs.spawn([DOVECOT, "-F", "-c", self.config_path], self.log_path)

    def _new_ports(self):
        self.imap_port = env.free_port()
        self.imaps_port = env.free_port()

    def _ready(self):
        # the greeting proves imap-login is up, not just the master's listening socket
        try:
            with socket.create_connection((self.host, self.imap_port), timeout=1) as s:
                return s.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self):
        _stop_session(self.process)


# --------------------------------------------------------------------------------------------
# 4. SMTP (aiosmtpd)

class SmtpServer(_Server):
    """An aiosmtpd server (test/qwdtest/smtp_server.py, run with /usr/bin/python3) with
    STARTTLS on .port and implicit TLS (SMTPS) on .smtps_port, both with the TestCA cert.

    AUTH PLAIN/LOGIN is checked against .users (default alice/bob). By default:
      - AUTH is refused (538) before STARTTLS; auth_require_tls=False allows it in clear;
      - AUTH is optional: the server also relays without AUTH (the module's one-time-code
        mail goes this way); auth_required=True refuses MAIL FROM before AUTH (530);
      - require_starttls=True refuses everything but EHLO/STARTTLS/QUIT before STARTTLS.
    Recipients whose local part starts with "bounce" are refused with 550 (to test failed
    deliveries). Every accepted message is written to workdir/mail/<n>.eml (bytes as
    received) plus <n>.json (envelope: mail_from, rcpt_tos, auth_user, tls, peer, port).

    .messages()  -> [email.message.EmailMessage], oldest first, each with .envelope (dict)
    .wait_for_message(to=None, timeout=10) -> the oldest message to `to` (envelope
                 recipient, case-insensitive; None = any) that no earlier wait_for_message
                 call returned; AssertionError on timeout
    .clear()     deletes the stored messages
    .host .port .smtps_port .users .mail_dir"""

    name = "smtp"

    def __init__(self, workdir, ca, users=None, auth_require_tls=True, auth_required=False,
                 require_starttls=False, port=0, smtps_port=0):
        self.workdir = workdir
        self.ca = ca
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.host = "127.0.0.1"
        self.dir = os.path.join(workdir, "smtp")
        self.mail_dir = os.path.join(workdir, "mail")
        self.config_path = os.path.join(self.dir, "config.json")
        self.ports_path = os.path.join(self.dir, "ports.json")
        self.log_path = os.path.join(self.dir, "smtp.log")
        self.port = port
        self.smtps_port = smtps_port
        self.auth_require_tls = auth_require_tls
        self.auth_required = auth_required
        self.require_starttls = require_starttls
        self.process = None
        self._returned = set()

    def start(self, timeout=10):
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.mail_dir, exist_ok=True)
        config = {
            "host": self.host, "port": self.port, "smtps_port": self.smtps_port,
            "cert": self.ca.cert, "key": self.ca.key, "users": self.users,
            "mail_dir": self.mail_dir, "ports_file": self.ports_path,
            "auth_require_tls": self.auth_require_tls, "auth_required": self.auth_required,
            "require_starttls": self.require_starttls,
        }
        _write(self.config_path, json.dumps(config, indent=1), 0o600)
        try:
            os.unlink(self.ports_path)
        except FileNotFoundError:
            pass
        self.process = procs.spawn(["/usr/bin/python3", SMTP_SERVER_SCRIPT, self.config_path],
                                   self.log_path)
        self._wait_ready(lambda: os.path.exists(self.ports_path), timeout)
        with open(self.ports_path) as f:
            ports = json.load(f)
        self.port, self.smtps_port = ports["port"], ports["smtps_port"]
        return self

    def stop(self):
        _stop_session(self.process)

    def _files(self):
        try:
            names = os.listdir(self.mail_dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-4] for n in names if n.endswith(".eml"))

    def _load(self, stem):
        with open(os.path.join(self.mail_dir, stem + ".eml"), "rb") as f:
            message = email.message_from_bytes(f.read(), policy=email.policy.default)
        with open(os.path.join(self.mail_dir, stem + ".json")) as f:
            message.envelope = json.load(f)
        message.envelope["file"] = os.path.join(self.mail_dir, stem + ".eml")
        return message

    def messages(self):
        return [self._load(stem) for stem in self._files()]

    def wait_for_message(self, to=None, timeout=10):
        want = to.lower() if to else None

        def find():
            for stem in self._files():
                if stem in self._returned:
                    continue
                message = self._load(stem)
                if want is None or want in [r.lower() for r in message.envelope["rcpt_tos"]]:
                    self._returned.add(stem)
                    return message
            return None
        return procs.wait_until(find, timeout, interval=0.05, what=f"a message to {to}")

    def clear(self):
        for name in os.listdir(self.mail_dir):
            os.unlink(os.path.join(self.mail_dir, name))
        self._returned.clear()


# --------------------------------------------------------------------------------------------
# 5. "server down" helpers

_held_sockets = []


def closed_port(host="127.0.0.1"):
    """A TCP port on host where nothing listens: connecting is refused at once
    (ECONNREFUSED). The port stays bound (not listening) by this process until it exits,
    so no other server can take it meanwhile."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    _held_sockets.append(s)
    return s.getsockname()[1]


class SilentServer:
    """A port that accepts TCP connections and never says a word (a hung server), to test
    client timeouts. In-process (a thread), so no process to leak. .host, .port,
    .connections (count accepted). start()/stop()/context manager."""
    __test__ = False

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.connections = 0
        self._listener = None
        self._held = []
        self._thread = None

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.host, self.port or 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)

    def stop(self):
        if self._listener:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        if self._thread:
            self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._held.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
