#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Debian's qemu-web-desktop (the Perl CGI mod_qwd succeeds) as a benchmark peer, in its own
private Apache: `bench/run --compare` measures the same rows against it.

    QemuWebDesktopStack.install()          # once: apt-get install the package (root)
    with QemuWebDesktopStack() as peer:
        status, body = peer.create("bench") # 201, body: session, websocket_url, token, ...
        peer.delete(body["session"]); peer.vm_gone(body["session"])

Nothing under /etc or /var/lib is edited: the CGI reads /etc/qemu-web-desktop/config.pl at a
fixed path and `qwdctl` writes /var/lib/qemu-web-desktop/machines.html, so the private Apache
(and `qwdctl refresh`) run in their own mount namespace (`unshare -m`) where a private copy of
/etc/qemu-web-desktop and of /var/lib/qemu-web-desktop, both under the temp dir
/tmp/qwdp-XXXXXX, are bind-mounted over the real ones. Every path the CGI writes to (machines,
snapshots, session JSONs) names the temp dir directly, so the files are the same from outside.

Smoke run (root): python3 bench/peer_qwd.py
"""
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test"))
from qwdtest.env import free_port  # noqa: E402
from qwdtest.procs import kill_leftovers, processes_mentioning  # noqa: E402
from qwdtest.rfb import websocket_rfb_banner  # noqa: E402

PACKAGES = ("qemu-web-desktop", "libapache2-mod-perl2", "libapache2-mpm-itk")
SERVICE = "qemu-web-desktop"
CGI_PATH = "/cgi-bin/qemu-web-desktop.pl"
FORM_PATH = "/qemu-web-desktop/"
ETC_DIR = "/etc/qemu-web-desktop"
VAR_DIR = "/var/lib/qemu-web-desktop"
APACHE_CONF = "/etc/apache2/conf-available/qemu-web-desktop.conf"
QWDCTL = "/usr/bin/qwdctl"            # the package's (the project's own is in sbin)
MODULES = "/usr/lib/apache2/modules"
POLICY_RC_D = "/usr/sbin/policy-rc.d"
RUN_USER = "_qemu-web-desktop"        # what mpm-itk switches to for the CGI (package conf)
BANNER = "QWD-TINY-VM READY"          # printed on ttyS0 by the tiny VM (test/vm)
TINY_ISO = os.path.join(os.environ.get("QWD_VM_CACHE", os.path.join(
    os.path.expanduser("~"), ".cache", "qwd", "tiny-vm")), "tiny.iso")

# QEMU wrapper for $config{qemu_exec}. The CGI always asks for KVM
# (-machine pc,accel=kvm -enable-kvm -cpu host,kvm=off); guests don't boot under this host's
# nested KVM, so for accel=tcg drop -enable-kvm and turn accel=kvm into accel=tcg; the -cpu
# value becomes CPU when set (max for tcg; under this host's KVM, QEMU 7.2 aborts with
# "failed to set MSR 0x10a" for -cpu host and max, qemu64 starts).
# It also logs the guest's serial port into the session's snapshot directory (the CGI gives
# its QEMU no serial port at all) so the bench can see when the guest has booted; the CGI's
# session_stop removes that directory, so the log adds no leftover.
WRAPPER = r"""#!/bin/sh
# qemu_exec wrapper for the qemu-web-desktop benchmark peer (bench/peer_qwd.py)
ACCEL=@ACCEL@
CPU=@CPU@
SERIAL=@SERIAL@
prev=
serial=
for arg do
    shift
    if [ "$prev" = -hda ]; then serial="${arg%/*}/serial.log"; fi
    if [ "$prev" = -cpu ] && [ -n "$CPU" ]; then arg=$CPU; fi
    if [ "$ACCEL" = tcg ]; then
        case "$arg" in
            -enable-kvm) prev=$arg; continue ;;
            *accel=kvm*) arg=$(printf '%s' "$arg" | sed 's/accel=kvm/accel=tcg/') ;;
        esac
    fi
    prev=$arg
    set -- "$@" "$arg"
done
if [ "$SERIAL" = yes ] && [ -n "$serial" ]; then
    set -- "$@" -serial "file:$serial"
fi
exec /usr/bin/qemu-system-x86_64 "$@"
"""

# Debian's apache2.conf / mpm_prefork.conf defaults, plus what the package enables
# (cgi include perl mpm_itk, conf qemu-web-desktop and the default serve-cgi-bin conf).
HTTPD_CONF = """# private Apache for the qemu-web-desktop benchmark peer (bench/peer_qwd.py)
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O %D" timed
CustomLog "{root}/access.log" timed
Mutex file:{root} default
User www-data
Group www-data
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
HostnameLookups Off

LoadModule mpm_prefork_module {mods}/mod_mpm_prefork.so
LoadModule mpm_itk_module {mods}/mpm_itk.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule authz_host_module {mods}/mod_authz_host.so
LoadModule alias_module {mods}/mod_alias.so
LoadModule mime_module {mods}/mod_mime.so
LoadModule dir_module {mods}/mod_dir.so
LoadModule include_module {mods}/mod_include.so
LoadModule cgi_module {mods}/mod_cgi.so
LoadModule perl_module {mods}/mod_perl.so

<IfModule mpm_prefork_module>
    StartServers 5
    MinSpareServers 5
    MaxSpareServers 10
    MaxRequestWorkers 150
    MaxConnectionsPerChild 0
</IfModule>

TypesConfig /etc/mime.types
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
DirectoryIndex index.html index.cgi index.pl index.php index.xhtml index.htm

<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all denied
</Directory>
<Directory /usr/share>
    AllowOverride None
    Require all granted
</Directory>

# serve-cgi-bin.conf
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory "/usr/lib/cgi-bin">
    AllowOverride None
    Options +ExecCGI -MultiViews +SymLinksIfOwnerMatch
    Require all granted
</Directory>

# {package_conf}, as installed:
{package_conf_text}
"""

MONITOR_BODY = "user={user}&manage=Manage+sessions&machine=monitor"
WRK_LUA = """-- wrk script: POST the qemu-web-desktop "Manage sessions" (monitor) form
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def _installed(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                         capture_output=True, text=True).stdout
    return out.strip() == "install ok installed"


def _wait(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _multipart(fields):
    boundary = "----qwdpeer" + uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n")
    parts.append(f"--{boundary}--\r\n")
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


class QemuWebDesktopStack:
    """Debian's qemu-web-desktop in a private Apache on 127.0.0.1:port, no authentication,
    serving the tiny VM as machine `tiny.iso`. Same calling shape as bench/run's Stack:
    create(user) → (status, body), delete(session) → status, url(path)."""

    def __init__(self, accel="tcg", image=TINY_ISO, memory_gb=1, cpu=1,
                 snapshot_lifetime=3600, max_sessions=64, per_user=3, relax_admission=True,
                 boot_delay=None, serial_log=True, cpu_model=None):
        """accel: tcg (wrapper rewrites the CGI's KVM flags) or kvm (QEMU as the CGI asks).
        max_sessions / per_user: the package's session limits, set so that these many
        sessions (service total / per user) are admitted — its own defaults are 10 and,
        through its CPU-fraction rule, 1 per user on 2 cores.
        relax_admission: its CGI refuses every create while the 15-min load average is
        above cores - cpu or load/cores > 0.8 ("Not enough free CPU's", "Server load
        exceeded"); mod_qwd's bench runs its helper without a load limit, so by default the
        peer's config.pl reports a load of 0 to those checks (the CGI calls
        Sys::CpuLoad::load fully qualified; config.pl is Perl and runs first).
        boot_delay: the CGI's fixed sleep before answering (package default 5 s) if not None.
        serial_log: the wrapper adds -serial file:SNAPSHOT_DIR/serial.log (see WRAPPER).
        cpu_model: what the wrapper puts in place of the CGI's -cpu host,kvm=off (default:
        max under tcg, unchanged under kvm)."""
        self.accel, self.image, self.memory_gb, self.cpu = accel, image, memory_gb, cpu
        self.snapshot_lifetime, self.max_sessions, self.per_user = \
            snapshot_lifetime, max_sessions, per_user
        self.relax_admission, self.boot_delay, self.serial_log = \
            relax_admission, boot_delay, serial_log
        self.cpu_model = cpu_model if cpu_model is not None else \
            ("max" if accel == "tcg" else "")
        self.workdir = None
        self.left_behind = []
        self.port = self.ws_port = None
        self.httpd = self.websockify = None
        self.dev_kvm_changed = None

    # ------------------------------------------------------------------ install
    @staticmethod
    def installed():
        return all(_installed(p) for p in PACKAGES)

    @classmethod
    def install(cls, log=sys.stderr):
        """Idempotent: apt-get installs the package, mod_perl and mpm-itk (root). A
        policy-rc.d that exits 101 is in place during the install so that no maintainer
        script starts Apache on port 80 (or dnsmasq); the previous policy-rc.d (or its
        absence) is restored afterwards. The package's postinst also runs a2enmod/a2enconf
        and switches /etc/apache2 to mpm_itk: that only concerns an Apache started from
        /etc/apache2, not the private ones (-f CONF). Its `qwdctl download` fetches nothing
        (machines.conf names no URL)."""
        if cls.installed():
            return False
        saved = None
        if os.path.lexists(POLICY_RC_D):
            st = os.lstat(POLICY_RC_D)
            with open(POLICY_RC_D, "rb") as f:
                saved = (f.read(), st.st_mode & 0o7777)
        try:
            with open(POLICY_RC_D + ".qwdpeer", "w") as f:
                f.write("#!/bin/sh\n# bench/peer_qwd.py: no service starts during the install\n"
                        "exit 101\n")
            os.chmod(POLICY_RC_D + ".qwdpeer", 0o755)
            os.replace(POLICY_RC_D + ".qwdpeer", POLICY_RC_D)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                            "-o", "DPkg::Lock::Timeout=600", *PACKAGES],
                           check=True, env=env, stdout=log, stderr=log)
        finally:
            if saved is None:
                os.unlink(POLICY_RC_D)
            else:
                with open(POLICY_RC_D + ".qwdpeer", "wb") as f:
                    f.write(saved[0])
                os.chmod(POLICY_RC_D + ".qwdpeer", saved[1])
                os.replace(POLICY_RC_D + ".qwdpeer", POLICY_RC_D)
        return True

    # ------------------------------------------------------------------ start / stop
    def __enter__(self):
        if not self.installed():
            raise RuntimeError("qemu-web-desktop is not installed: call "
                               "QemuWebDesktopStack.install() first (root)")
        if not os.path.exists(self.image):
            raise RuntimeError(f"{self.image} is missing: run bash test/vm/build-tiny-vm.sh")
        self.workdir = tempfile.mkdtemp(prefix="qwdp-", dir="/tmp")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def _in_namespace(self, argv):
        """argv run in a private mount namespace where the temp dir's etc/ and var/ are
        /etc/qemu-web-desktop and /var/lib/qemu-web-desktop (with a clean environment)."""
        script = ('mount --bind "$1" ' + ETC_DIR + ' && mount --bind "$2" ' + VAR_DIR +
                  ' && shift 2 && exec "$@"')
        return ["env", "-i", "PATH=/usr/bin:/bin", "/usr/bin/unshare", "--mount",
                "--propagation", "private", "/bin/sh", "-c", script, "sh",
                self._path("etc"), self._path("var"), *argv]

    def _start(self):
        import pwd
        import grp
        os.chmod(self.workdir, 0o755)
        uid = pwd.getpwnam(RUN_USER).pw_uid
        gid = grp.getgrnam(RUN_USER).gr_gid
        for d in ("etc", "var", "var/machines", "var/snapshots",
                  "var/snapshots/websockify-target.d", "cfg", "apache"):
            os.makedirs(self._path(d), mode=0o755)
        for d in ("var", "var/snapshots", "var/snapshots/websockify-target.d", "cfg"):
            os.chown(self._path(d), uid, gid)
        self.port, self.ws_port = free_port(), free_port()
        while self.ws_port == self.port:
            self.ws_port = free_port()

        # the machine, its machines.conf section, and the package's qwdctl refresh
        shutil.copyfile(self.image, self._path("var", "machines", "tiny.iso"))
        os.chmod(self._path("var", "machines", "tiny.iso"), 0o644)
        with open(os.path.join(ETC_DIR, "machines.conf")) as f:
            machines_conf = f.read()
        with open(self._path("etc", "machines.conf"), "w") as f:
            f.write(machines_conf + "\n[tiny.iso]\ndescription=QWD tiny test VM (bench)\n")
        with open(os.path.join(ETC_DIR, "config.pl")) as f:
            config_pl = f.read()
        with open(self._path("etc", "config.pl"), "w") as f:
            f.write(self._config_pl(config_pl))
        subprocess.run(self._in_namespace([QWDCTL, "refresh"]), check=True,
                       capture_output=True)
        with open(self._path("var", "machines.html")) as f:
            if "tiny.iso" not in f.read():
                raise RuntimeError("qwdctl refresh did not list tiny.iso")

        with open(self._path("qemu-wrapper"), "w") as f:
            f.write(WRAPPER.replace("@ACCEL@", self.accel)
                    .replace("@CPU@", shlex.quote(self.cpu_model))
                    .replace("@SERIAL@", "yes" if self.serial_log else "no"))
        os.chmod(self._path("qemu-wrapper"), 0o755)
        if self.accel == "kvm":
            self._kvm_group_access()

        # the shared websockify daemon, as the CGI would start it (it tries again on every
        # create; those attempts fail on the taken port, as on a server that has run a while)
        log = open(self._path("websockify.log"), "ab")
        self.websockify = subprocess.Popen(
            ["env", "-i", "PATH=/usr/bin:/bin", "websockify", "--web", "/usr/share/novnc",
             "--token-plugin=TokenFile",
             f"--token-source={self._path('var', 'snapshots', 'websockify-target.d')}",
             f"127.0.0.1:{self.ws_port}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

        with open(APACHE_CONF) as f:
            package_conf = f.read()
        with open(self._path("apache", "httpd.conf"), "w") as f:
            f.write(HTTPD_CONF.format(root=self._path("apache"), port=self.port, mods=MODULES,
                                      package_conf=APACHE_CONF,
                                      package_conf_text=package_conf))
        with open(self._path("monitor.lua"), "w") as f:
            f.write(WRK_LUA.format(body=MONITOR_BODY.format(user="admin")))
        log = open(self._path("apache", "stdout.log"), "ab")
        self.httpd = subprocess.Popen(
            self._in_namespace(["/usr/sbin/apache2", "-f", self._path("apache", "httpd.conf"),
                                "-DFOREGROUND"]),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

        def up():
            if self.httpd.poll() is not None:
                raise RuntimeError("apache2 exited: " + self._tail("apache/error.log") +
                                   self._tail("apache/stdout.log"))
            try:
                return self._request("GET", FORM_PATH, timeout=5)[0] == 200 and \
                    self._port_open(self.ws_port)
            except OSError:
                return False
        if not _wait(up, 30, 0.1):
            raise RuntimeError("the peer's Apache did not answer: " +
                               self._tail("apache/error.log"))

    def _config_pl(self, original):
        """The package's config.pl with the bench's settings appended (before its `1;`)."""
        ncpu = os.cpu_count()
        lines = [
            "# ---- bench/peer_qwd.py: settings for the benchmark run ----",
            f'$config{{dir_machines}}  = "{self._path("var", "machines")}";',
            f'$config{{dir_snapshots}} = "{self._path("var", "snapshots")}";',
            f'$config{{dir_cfg}}       = "{self._path("cfg")}";',
            f'$config{{qemu_exec}}     = "{self._path("qemu-wrapper")}";',
            "$config{machine}          = 'tiny.iso';",
            f"$config{{service_port}}     = {self.ws_port};",
            f"$config{{snapshot_lifetime}} = {max(self.snapshot_lifetime, 60)};",
            "$config{check_user_with_email} = 0;",
            "$config{check_user_with_imap}  = 0;",
            "$config{check_user_with_smtp}  = 0;",
            "$config{check_user_with_ldap}  = 0;",
            '$config{check_user_custom}     = "";',
            "$config{user_admin} = ['admin'];",
            # the CGI refuses when (existing count) > limit: these admit exactly N
            f"$config{{service_max_session_nb}} = {self.max_sessions - 1};",
            f"$config{{service_max_session_nb_per_user}} = {self.per_user - 1};",
            f"$config{{service_max_cpu_fraction_nb_per_user}} = "
            f"{(self.per_user - 1) * self.cpu / ncpu!r};",
            "$config{service_max_mem_fraction_nb_per_user} = 1.0;",
        ]
        if self.boot_delay is not None:
            lines.append(f"$config{{boot_delay}} = {int(self.boot_delay)};")
        if self.relax_admission:
            lines += ["$config{service_max_load} = 1000;",
                      "{ no warnings 'redefine'; *Sys::CpuLoad::load = sub { return 0; }; }"]
        text = re.sub(r"\n1;\s*$", "\n", original.rstrip() + "\n")
        return text + "\n".join(lines) + "\n1;\n"

    def _kvm_group_access(self):
        """accel=kvm only (under tcg QEMU never opens /dev/kvm): QEMU runs as
        _qemu-web-desktop:kvm (mpm-itk), so /dev/kvm must be group kvm 0660 (no udev here).
        Set if needed and left so (the setting the platform notes recommend; restoring
        0600 could pull it from under a concurrent job): self.dev_kvm_changed says."""
        import grp
        st = os.stat("/dev/kvm")
        kvm_gid = grp.getgrnam("kvm").gr_gid
        if st.st_gid != kvm_gid or (st.st_mode & 0o060) != 0o060:
            os.chown("/dev/kvm", st.st_uid, kvm_gid)
            os.chmod("/dev/kvm", 0o660)
            self.dev_kvm_changed = (st.st_uid, st.st_gid, oct(st.st_mode & 0o7777))

    def __exit__(self, *exc):
        if self.workdir is None:
            return
        if self.httpd is not None and self.httpd.poll() is None:
            self.httpd.send_signal(signal.SIGTERM)      # graceful-stop of its children too
            try:
                self.httpd.wait(15)
            except subprocess.TimeoutExpired:
                self.httpd.kill()
                self.httpd.wait(5)
        if self.websockify is not None and self.websockify.poll() is None:
            self.websockify.terminate()
            try:
                self.websockify.wait(10)
            except subprocess.TimeoutExpired:
                self.websockify.kill()
                self.websockify.wait(5)
        # the VMs (and any websockify the CGI managed to start) name the temp dir
        self.left_behind = kill_leftovers(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    # ------------------------------------------------------------------ HTTP
    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def server(self):
        """bench/run calls stack.server.url(path): the stack answers it itself."""
        return self

    def form_url(self):
        return self.url(FORM_PATH)

    def monitor_url(self):
        """POST MONITOR_BODY here (see monitor_body / monitor_wrk_script)."""
        return self.url(CGI_PATH)

    @staticmethod
    def monitor_body(user="admin"):
        return MONITOR_BODY.format(user=user)

    def monitor_wrk_script(self):
        """A wrk Lua script (-s) that POSTs the monitor form as user admin."""
        return self._path("monitor.lua")

    def _request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    @staticmethod
    def _port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def _tail(self, rel, n=2000):
        try:
            with open(self._path(rel), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    # ------------------------------------------------------------------ sessions
    def create(self, user="bench", password="x"):
        """POSTs the form's Create. Returns (status, body): status 201 when the answer page
        shows a session (the CGI itself answers 200 either way: http_status), 503 when it
        shows [ERROR] (body["error"]: its message, e.g. "Not enough free CPU's"). body:
        id = session (qemu-web-desktop_XXXXXXXX), token, websocket_url
        (ws://127.0.0.1:PORT/?token=…), vnc_url (the page's noVNC link), elapsed (s)."""
        data, ctype = _multipart({
            "user": user, "password": password, "machine": "tiny.iso", "cpu": self.cpu,
            "memory": self.memory_gb, "snapshot_lifetime": self.snapshot_lifetime,
            "create": "Create"})
        started = time.monotonic()
        status, page = self._request("POST", CGI_PATH, data, {"Content-Type": ctype})
        body = {"http_status": status, "elapsed": time.monotonic() - started}
        link = re.search(r"(https?)://([^/\s:\"'<>]+):(\d+)/vnc\.html\?[^\s\"'<>]*?"
                         r"token=([A-Za-z0-9]+)", page)
        name = re.search(r'name=session_stop value="(' + SERVICE + r'_\w+)"', page)
        if status == 200 and link and name and "[ERROR]" not in page:
            scheme = "wss" if link.group(1) == "https" else "ws"
            body.update(id=name.group(1), session=name.group(1), token=link.group(4),
                        vnc_url=link.group(0),
                        websocket_url=f"{scheme}://{link.group(2)}:{link.group(3)}/"
                                      f"?token={link.group(4)}")
            return 201, body
        error = re.search(r"<div style='color:red'>(.*?)</div>", page, re.S)
        body["error"] = (error.group(1).strip() if error else page[-500:])
        return (503 if status == 200 else status), body

    def delete(self, session, user="bench"):
        """POSTs session_stop=SESSION (the page's stop button). Returns the HTTP status
        (200; the CGI answers "OK Stopped …" even for an unknown session)."""
        form = urllib.parse.urlencode({"session_stop": session}).encode()
        status, _ = self._request("POST", CGI_PATH, form,
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        return status

    def session_dir(self, session):
        return self._path("var", "snapshots", session)

    def session_json(self, session):
        return self._path("cfg", session + ".json")

    def session_info(self, session):
        """The CGI's record of a session (its JSON: pid list, port_vnc, token_vnc, …)."""
        import json
        try:
            with open(self.session_json(session)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def vm_pids(self, session):
        """PIDs of the processes that carry the session's name (QEMU: -name SESSION:…)."""
        return [pid for pid, _ in processes_mentioning(session + ":")]

    def vm_gone(self, session):
        """True when no process names the session and its snapshot dir and JSON are gone."""
        return not self.vm_pids(session) and not os.path.exists(self.session_dir(session)) \
            and not os.path.exists(self.session_json(session))

    def serial_banner_seen(self, session):
        """Whether the guest printed its banner on the serial port (the wrapper logs it into
        the session dir); None when serial_log is off (the CGI's QEMU has no serial)."""
        if not self.serial_log:
            return None
        try:
            with open(os.path.join(self.session_dir(session), "serial.log"), "rb") as f:
                return BANNER.encode() in f.read()
        except OSError:
            return False

    def sessions(self):
        cfg = self._path("cfg")
        return sorted(n[:-5] for n in os.listdir(cfg)
                      if n.startswith(SERVICE + "_") and n.endswith(".json"))

    def purge(self, timeout=60):
        """Stops every session (its stop button, one by one) and waits until no session JSON
        and no VM is left. (Empty qemu-web-desktop_* dirs may stay: every CGI request, even
        a stop or a monitor page, makes one first and only the next request's housekeeping
        removes it when it has no JSON.)"""
        for session in self.sessions():
            self.delete(session)
        snapshots = self._path("var", "snapshots")

        def clean():
            return not self.sessions() and \
                not processes_mentioning(os.path.join(snapshots, SERVICE + "_"))
        if not _wait(clean, timeout, 0.1):
            raise RuntimeError("sessions still there after purge: " + repr(self.sessions()))

    def pids(self):
        """Long-lived processes of the peer: Apache's parent and the websockify daemon."""
        return {"apache": self.httpd.pid if self.httpd else None,
                "websockify": self.websockify.pid if self.websockify else None}


def _etc_snapshot():
    """What the smoke run checks is unchanged afterwards."""
    found = {}
    for path in (os.path.join(ETC_DIR, "config.pl"), os.path.join(ETC_DIR, "machines.conf"),
                 os.path.join(VAR_DIR, "machines.html"), POLICY_RC_D):
        try:
            with open(path, "rb") as f:
                found[path] = f.read()
        except OSError:
            found[path] = None
    found["/var/lib/qemu-web-desktop/*"] = sorted(os.listdir(VAR_DIR)) \
        if os.path.isdir(VAR_DIR) else None
    st = os.stat("/dev/kvm") if os.path.exists("/dev/kvm") else None
    found["/dev/kvm"] = (st.st_uid, st.st_gid, st.st_mode) if st else None
    found["mounts"] = sorted(line for line in open("/proc/self/mounts")
                             if "qemu-web-desktop" in line or "qwdp-" in line)
    return found


def smoke(accel="tcg", cpu_model=None):
    def say(*args):
        print(*args, flush=True)
    started = time.monotonic()
    say("install:", "installed now" if QemuWebDesktopStack.install() else "already installed",
        f"({time.monotonic() - started:.1f} s)")
    before = _etc_snapshot()
    started = time.monotonic()
    with QemuWebDesktopStack(accel=accel, cpu_model=cpu_model) as peer:
        workdir = peer.workdir
        say(f"started in {time.monotonic() - started:.2f} s: {peer.form_url()} "
            f"(websockify :{peer.ws_port}, {workdir})")
        status, page = peer._request("GET", FORM_PATH)
        say("form page:", status, "lists tiny.iso:", "value='tiny.iso'" in page)
        t0 = time.monotonic()
        status, body = peer.create("smoke")
        t_page = time.monotonic() - t0
        say("create:", status, {k: v for k, v in body.items() if k != "vnc_url"})
        assert status == 201, body
        session = body["session"]
        banner = _wait(lambda: _try(lambda: websocket_rfb_banner(body["websocket_url"])), 30, 0.02)
        t_rfb = time.monotonic() - t0
        say(f"POST → page {t_page:.2f} s; → RFB banner {t_rfb:.2f} s: {banner!r}")
        assert banner.startswith(b"RFB "), banner
        say("VM pids:", peer.vm_pids(session), "info pid:", peer.session_info(session)["pid"])
        booted = _wait(lambda: peer.serial_banner_seen(session), 90 if accel == "tcg" else 15, 0.1)
        say(f"POST → guest banner on serial {time.monotonic() - t0:.2f} s: {booted}")
        status, page = peer._request("POST", CGI_PATH, peer.monitor_body().encode(),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        say("monitor:", status, "lists session:", session in page)
        status2, body2 = peer.create("smoke")
        say("second create, same user:", status2, body2.get("error", body2.get("session")))
        t0 = time.monotonic()
        say("delete:", peer.delete(session))
        gone = _wait(lambda: peer.vm_gone(session), 30, 0.01)
        say(f"delete → gone {time.monotonic() - t0:.2f} s: {gone}")
        assert gone
        peer.purge()
    left = processes_mentioning(workdir)
    after = _etc_snapshot()
    if peer.dev_kvm_changed:
        say("/dev/kvm was", peer.dev_kvm_changed, "- now group kvm 0660 (left so)")
        before.pop("/dev/kvm"), after.pop("/dev/kvm")
    say("left behind at exit:", peer.left_behind, "now:", left,
        "temp dir exists:", os.path.exists(workdir))
    say("/etc, /var/lib, policy-rc.d, /dev/kvm, mounts unchanged:", before == after)
    assert not left and before == after and not os.path.exists(workdir)


def _try(fn):
    try:
        return fn()
    except Exception:
        return None


if __name__ == "__main__":
    smoke(*sys.argv[1:3])
