# SPDX-License-Identifier: Apache-2.0
"""The Debian packages: built from a copy of the tree, lintian-clean, installed into a fresh
Debian 12 chroot where `a2enmod qwd`, the helper (as qwd) and Apache run a session, then purged."""
import base64
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from qwdtest import env, procs, rfb, vm
from qwdtest.httpd import QWDLOGNO_PATTERN, RECORD_LOGNOS

SUITE = "bookworm"
MIRROR = os.environ.get("QWD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "qwd")
BASE_TARBALL = os.path.join(CACHE_DIR, f"debian-{SUITE}-minbase.tar.zst")
PACKAGES = ("libapache2-mod-qwd", "qwd-helper")
# What the administrator has besides our packages: Apache itself (a2enmod, apache2ctl).
ADMIN_PACKAGES = ("apache2",)
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "DEBIAN_FRONTEND": "noninteractive"}
TOOLS = ("dpkg-buildpackage", "dh", "dh_apache2", "lintian", "debootstrap", "zstd")
MACHINE = "tiny.qcow2"
# Logs of the last run (build, apt in the root, helper, Apache), kept for a failure's reader.
ARTIFACTS = os.path.join(env.SRCDIR, "test", "artifacts", "debian")

MODULE_FILES = (
    "usr/lib/apache2/modules/mod_qwd.so",
    "etc/apache2/mods-available/qwd.load",
    "etc/apache2/mods-available/qwd.conf",
    "usr/share/qwd/htdocs/qwd.css",
    "usr/share/qwd/htdocs/qwd-progress.js",
    "usr/share/qwd/htdocs/qwd-form.js",
    "usr/share/doc/libapache2-mod-qwd/directives.md.gz",
    "usr/share/doc/libapache2-mod-qwd/copyright",
)
HELPER_FILES = (
    "usr/sbin/qwd-helper",
    "usr/sbin/qwdctl",
    "usr/sbin/qwd-node",
    "etc/qwd/qwd-helper.conf",
    "etc/qwd/catalogue.conf",
    "lib/systemd/system/qwd-helper.service",
    "usr/lib/sysusers.d/qwd-helper.conf",
    "usr/lib/tmpfiles.d/qwd-helper.conf",
    "usr/share/man/man8/qwd-helper.8.gz",
    "usr/share/man/man8/qwdctl.8.gz",
    "usr/share/man/man8/qwd-node.8.gz",
    "usr/share/doc/qwd-helper/helper.md.gz",
    "usr/share/doc/qwd-helper/data-sessions.md.gz",
    "usr/share/doc/qwd-helper/slurm.md.gz",
    "usr/share/doc/qwd-helper/copyright",
)
# Installed files that are the tree's own conf/ files, byte for byte.
FROM_CONF = {
    "etc/apache2/mods-available/qwd.load": "conf/qwd.load",
    "etc/apache2/mods-available/qwd.conf": "conf/qwd.conf",
    "etc/qwd/qwd-helper.conf": "conf/qwd-helper.conf",
    "etc/qwd/catalogue.conf": "conf/catalogue.conf",
    "lib/systemd/system/qwd-helper.service": "conf/qwd-helper.service",
}


def configure_version():
    with open(os.path.join(env.SRCDIR, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[mod_qwd\], \[([^]]+)\]", f.read()).group(1)


def test_package_version_is_the_configure_version():
    """A native package: debian/changelog names the version configure.ac builds."""
    with open(os.path.join(env.SRCDIR, "debian", "changelog")) as f:
        first = f.readline()
    assert re.match(r"mod-qwd \(([^)]+)\)", first).group(1) == configure_version()
    with open(os.path.join(env.SRCDIR, "debian", "source", "format")) as f:
        assert f.read().strip() == "3.0 (native)"


# ---------------------------------------------------------------- building

def run(argv, log=None, check=True, timeout=1800, **kwargs):
    """Runs argv; on failure the assertion shows its output (or the tail of log)."""
    if log:
        with open(log, "ab") as out:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            with open(log, errors="replace") as f:
                tail = f.read()[-4000:]
            raise AssertionError(f"{argv} exited {result.returncode}:\n{tail}")
        return result
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n"
                             f"{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return result


def copy_tree(dest):
    """The working tree as git sees it (tracked and untracked files, not ignored ones), so the
    build sees uncommitted changes but no build products of the checkout."""
    listing = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                             cwd=env.SRCDIR, capture_output=True)
    if listing.returncode != 0:  # a release tarball: everything but what a build adds
        shutil.copytree(env.SRCDIR, dest, symlinks=True, ignore=shutil.ignore_patterns(
            "artifacts", "node_modules", ".pytest_cache", "__pycache__"))
        return
    for name in listing.stdout.decode().split("\0"):
        source = os.path.join(env.SRCDIR, name)
        if not name or not os.path.lexists(source):  # deleted, not yet committed
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(dest, name), follow_symlinks=False)


def build_packages(workdir, logs):
    """dpkg-buildpackage -us -uc -b in a copy of the tree (it writes into the parent
    directory, here workdir/build); returns {package: .deb path} and the .changes path."""
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    assert not missing, (f"missing {missing}: scripts/install-deps check installs them "
                         "(debhelper, dpkg-dev, lintian, debootstrap, zstd)")
    build = os.path.join(workdir, "build")
    tree = os.path.join(build, f"mod-qwd-{configure_version()}")
    os.makedirs(tree)
    copy_tree(tree)
    # Not the flags of a surrounding `make check` (its jobserver's descriptors are not ours).
    build_env = {key: value for key, value in os.environ.items()
                 if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    build_env["DEB_BUILD_OPTIONS"] = "nocheck parallel=2"
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], log=os.path.join(logs, "build.log"),
        cwd=tree, env=build_env)
    debs = {}
    for package in PACKAGES:
        found = glob.glob(os.path.join(build, f"{package}_*.deb"))
        assert len(found) == 1, (package, os.listdir(build))
        debs[package] = found[0]
    changes = glob.glob(os.path.join(build, "*.changes"))
    assert len(changes) == 1, os.listdir(build)
    return debs, changes[0]


def deb_files(deb):
    names = run(["sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -t', "sh", deb]).stdout.split()
    return {name[2:].rstrip("/") for name in names if name.startswith("./")}


def check_contents(debs):
    for package, expected in (("libapache2-mod-qwd", MODULE_FILES), ("qwd-helper", HELPER_FILES)):
        files = deb_files(debs[package])
        missing = [name for name in expected if name not in files]
        assert not missing, f"{package} lacks {missing}"


def check_lintian(changes):
    """No error and no warning at lintian's default level."""
    result = run(["lintian", "--fail-on", "error,warning", changes], check=False)
    tags = [line for line in result.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert result.returncode == 0 and not tags, result.stdout + result.stderr


# ---------------------------------------------------------------- the Debian 12 root

class Chroot:
    """A Debian root in a directory: /proc mounted while needed, every process started in it
    stopped by PID, and nothing unmounted left behind when it is removed."""

    def __init__(self, path):
        self.path = path
        self.mounts = []
        self.started = []

    def file(self, name):
        return os.path.join(self.path, name.lstrip("/"))

    def run(self, *argv, check=True, timeout=1200, input=None, log=None):
        if log:
            return run(["chroot", self.path, *argv], log=log, check=check, timeout=timeout,
                       env=CHROOT_ENV, stdin=subprocess.DEVNULL)
        return run(["chroot", self.path, *argv], check=check, timeout=timeout, input=input,
                   env=CHROOT_ENV)

    def mount_proc(self):
        target = self.file("proc")
        run(["mount", "-t", "proc", "proc", target])
        self.mounts.append(target)

    def unmount_all(self):
        for target in reversed(self.mounts):
            subprocess.run(["umount", target], capture_output=True)
        self.mounts = [target for target in self.mounts if self.is_mounted(target)]
        return not self.mounts

    @staticmethod
    def is_mounted(target):
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == target for line in f)

    def spawn(self, argv, log_path, userspec=None, groups=None):
        prefix = ["chroot"]
        if userspec:
            prefix.append(f"--userspec={userspec}")
        if groups:
            prefix.append(f"--groups={groups}")
        process = procs.spawn(prefix + [self.path] + argv, log_path, env=CHROOT_ENV)
        self.started.append(process)
        return process

    def processes(self):
        """(pid, command line) of every live process whose root is this directory."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                root = os.readlink(f"/proc/{entry}/root")
            except OSError:
                continue
            if root == self.path and procs.pid_alive(int(entry)):
                found.append((int(entry), procs.cmdline(int(entry))))
        return found

    def stop_everything(self):
        """Stops what was started here by PID; then kills, by PID, whatever they left."""
        for process in reversed(self.started):
            procs.stop(process)
        left = self.processes()
        for pid, _ in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid, _ in left:
            with contextlib.suppress(AssertionError):
                procs.wait_until(lambda: not procs.pid_alive(pid), 5, what=f"pid {pid}")
        return left

    def remove(self):
        left = self.stop_everything()
        unmounted = self.unmount_all()
        if unmounted:  # never walk into a mounted /proc
            shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)
        assert unmounted, f"still mounted: {self.mounts} (left in place)"
        return left


def extract(tarball, chroot):
    run(["tar", "--zstd", "--numeric-owner", "-xpf", tarball, "-C", chroot.path])
    os.chmod(chroot.path, 0o755)  # the root's "/": every user in it traverses it


def save(chroot, tarball):
    """Writes the root as a tarball, atomically (a killed run leaves no half cache)."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    partial = tarball + ".partial"
    run(["tar", "--zstd", "--numeric-owner", "-cpf", partial, "-C", chroot.path, "."])
    os.replace(partial, tarball)


def base_tarball(scratch, log):
    """debootstrap --variant=minbase, once: later runs start from the cached tarball."""
    if os.path.exists(BASE_TARBALL):
        return BASE_TARBALL
    chroot = Chroot(tempfile.mkdtemp(prefix="root-", dir=scratch))
    os.chmod(chroot.path, 0o755)
    run(["debootstrap", "--variant=minbase", SUITE, chroot.path, MIRROR], log=log,
        timeout=1800)
    # Services never start in this root: Apache's own postinst would listen on port 80.
    with open(chroot.file("usr/sbin/policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\n# a chroot of test/test_950_debian.py: no service starts\nexit 101\n")
    os.chmod(chroot.file("usr/sbin/policy-rc.d"), 0o755)
    save(chroot, BASE_TARBALL)
    shutil.rmtree(chroot.path)
    return BASE_TARBALL


def dependencies(debs):
    """What our packages depend on, as dependency lines for `apt-get satisfy`."""
    lines = list(ADMIN_PACKAGES)
    for deb in debs.values():
        fields = run(["dpkg-deb", "-f", deb, "Pre-Depends", "Depends"]).stdout
        for line in fields.splitlines():
            value = line.split(":", 1)[1].strip()
            if value:
                lines.append(value)
    return lines


def deps_tarball(debs, scratch, log):
    """The base root with everything our packages need (not our packages), cached under a
    name that changes when the dependencies do; older ones are removed."""
    lines = dependencies(debs)
    key = hashlib.sha256("\n".join([SUITE, MIRROR] + lines).encode()).hexdigest()[:12]
    tarball = os.path.join(CACHE_DIR, f"debian-{SUITE}-qwd-deps-{key}.tar.zst")
    if os.path.exists(tarball):
        return tarball
    base = base_tarball(scratch, log)
    chroot = Chroot(os.path.join(tempfile.mkdtemp(prefix="deps-", dir=scratch), "root"))
    os.mkdir(chroot.path)
    try:
        extract(base, chroot)
        shutil.copy("/etc/resolv.conf", chroot.file("etc/resolv.conf"))
        chroot.mount_proc()
        chroot.run("apt-get", "update", log=log)
        chroot.run("apt-get", "satisfy", "-y", "--no-install-recommends", *lines, log=log)
        chroot.run("apt-get", "clean", log=log)
        chroot.unmount_all()
        for old in glob.glob(os.path.join(CACHE_DIR, f"debian-{SUITE}-qwd-deps-*.tar.zst")):
            os.unlink(old)
        save(chroot, tarball)
    finally:
        chroot.remove()
    return tarball


@pytest.fixture
def debian_root():
    """A fresh Debian 12 root (from the cache) in a private directory, torn down by PID and
    unmounted whatever happens."""
    scratch = tempfile.mkdtemp(prefix="qwdd-", dir="/tmp")
    os.chmod(scratch, 0o755)
    root = os.path.join(scratch, "root")
    os.mkdir(root)
    os.chmod(root, 0o755)  # the root directory of the chroot: qwd and www-data traverse it
    chroot = Chroot(root)
    chroot.scratch = scratch
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    os.makedirs(ARTIFACTS)
    chroot.logs = ARTIFACTS
    yield chroot
    for log in glob.glob(chroot.file("var/log/apache2/*.log")):
        shutil.copy(log, os.path.join(ARTIFACTS, "apache2-" + os.path.basename(log)))
    left = chroot.remove()
    assert not left, f"processes left in the chroot: {left}"


# ---------------------------------------------------------------- the stack in the root

def passwd_entry(chroot, name, database="passwd"):
    with open(chroot.file(f"etc/{database}")) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                return fields
    return None


def unit_settings(chroot):
    settings = {}
    with open(chroot.file("lib/systemd/system/qwd-helper.service")) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                key, value = line.rstrip("\n").split("=", 1)
                settings[key] = value
    return settings


def start_helper(chroot, workdir, websockify_port):
    """The helper as the unit starts it: its ExecStart, as User/Group with the unit's
    SupplementaryGroups, in the RuntimeDirectory systemd would make. TCG, no warm image build."""
    unit = unit_settings(chroot)
    user = passwd_entry(chroot, unit["User"])
    group = passwd_entry(chroot, unit["Group"], "group")
    extra = [passwd_entry(chroot, name, "group")[2]
             for name in unit["SupplementaryGroups"].split()]
    runtime = chroot.file(f"run/{unit['RuntimeDirectory']}")
    os.makedirs(runtime, exist_ok=True)
    os.chown(runtime, int(user[2]), int(group[2]))
    os.chmod(runtime, int(unit["RuntimeDirectoryMode"], 8))
    state = chroot.file(f"var/lib/{unit['StateDirectory']}")
    status = os.stat(state)  # made by the package (tmpfiles.d) as the unit wants it
    assert (status.st_uid, oct(status.st_mode & 0o7777)) == (
        int(user[2]), oct(int(unit["StateDirectoryMode"], 8))), unit
    argv = unit["ExecStart"].split() + [
        "--set", "accel=tcg", "--set", "warm_auto=no",
        "--set", f"websockify_listen=127.0.0.1:{websockify_port}"]
    log = os.path.join(workdir, "helper.log")
    process = chroot.spawn(argv, log, userspec=f"{user[2]}:{group[2]}", groups=",".join(extra))
    socket_path = os.path.join(runtime, "helper.sock")

    def ready():
        if process.poll() is not None:
            with open(log, errors="replace") as f:
                raise AssertionError(f"qwd-helper exited {process.returncode}:\n{f.read()}")
        return os.path.exists(socket_path)
    procs.wait_until(ready, 20, what="the helper's socket")
    return process


def start_apache(chroot, workdir, port):
    """Debian's apache2 with Debian's /etc/apache2 of the root, as apache2ctl runs it."""
    with open(chroot.file("etc/apache2/ports.conf"), "w") as f:
        f.write(f"Listen 127.0.0.1:{port}\n")
    script = ('. /etc/apache2/envvars && mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" '
              '"$APACHE_LOG_DIR" && exec /usr/sbin/apache2 -DFOREGROUND')
    process = chroot.spawn(["/bin/sh", "-c", script], os.path.join(workdir, "apache.log"))

    def ready():
        if process.poll() is not None:
            raise AssertionError(f"apache2 exited {process.returncode}:\n"
                                 + read(chroot.file("var/log/apache2/error.log"))
                                 + read(os.path.join(workdir, "apache.log")))
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True
    procs.wait_until(ready, 20, what="apache2 in the root")
    return process


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def api(port, method, path, body=None, user="alice", password=""):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/qwd/api/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"html": text}


def unexpected_log_lines(chroot, logs):
    """The helper's warnings and errors; Apache's lines the harness also refuses (httpd.py):
    a log number of ours but the one wrong password we sent and the audit trail's records, a
    crashed child."""
    bad = [line for line in read(os.path.join(logs, "helper.log")).splitlines()
           if re.search(r"\[(warn|error)\]", line)]
    for line in read(chroot.file("var/log/apache2/error.log")).splitlines():
        match = QWDLOGNO_PATTERN.search(line)
        if (match and int(match.group(1)) not in {305, *RECORD_LOGNOS}) \
                or "Segmentation fault" in line \
                or "AH00052" in line:
            bad.append(line)
    return bad


def qemu_processes(chroot):
    return [(pid, line) for pid, line in chroot.processes() if "qemu-system" in line]


def ours_left(chroot):
    """Every trace of our packages in the root: files named after them, the user and group,
    alternatives, dpkg's and a2enmod's records."""
    found = []
    for top, dirs, files in os.walk(chroot.path):
        dirs[:] = [d for d in dirs if os.path.join(top, d) != chroot.file("proc")]
        for name in dirs + files:
            if "qwd" in name:
                found.append(os.path.relpath(os.path.join(top, name), chroot.path))
    for database in ("passwd", "group", "shadow", "gshadow"):
        for line in read(chroot.file(f"etc/{database}")).splitlines():
            fields = line.split(":")
            if fields[0] == "qwd" or "qwd" in fields[-1].split(","):
                found.append(f"/etc/{database}: {line}")
    status = chroot.run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n",
                        *PACKAGES, check=False).stdout
    found += [line for line in status.splitlines() if line.split()[1:]]
    return found


# ---------------------------------------------------------------- the test

@pytest.mark.debian
@pytest.mark.skipif(os.geteuid() != 0,
                    reason="needs root: debootstrap, chroot, mount, users in the Debian root")
def test_packages_install_run_a_session_and_purge_to_nothing(debian_root, tiny_vm):
    chroot = debian_root
    scratch = chroot.scratch
    log = os.path.join(chroot.logs, "root.log")
    timings = {}
    start = time.monotonic()

    debs, changes = build_packages(scratch, chroot.logs)
    check_contents(debs)
    check_lintian(changes)
    timings["build+lintian"] = time.monotonic() - start

    mark = time.monotonic()
    extract(deps_tarball(debs, scratch, log), chroot)
    timings["root"] = time.monotonic() - mark

    mark = time.monotonic()
    chroot.mount_proc()
    os.makedirs(chroot.file("tmp/debs"))
    inside = []
    for package, deb in debs.items():
        shutil.copy(deb, chroot.file("tmp/debs"))
        inside.append("/tmp/debs/" + os.path.basename(deb))
    chroot.run("apt-get", "install", "-y", "--no-install-recommends", *inside,
               log=log)
    shutil.rmtree(chroot.file("tmp/debs"))
    timings["install"] = time.monotonic() - mark

    # What the packages made: the files of the tree, the user, the directories, the conffile.
    for installed, source in FROM_CONF.items():
        assert read(chroot.file(installed)) == read(os.path.join(env.SRCDIR, source)), installed
    user = passwd_entry(chroot, "qwd")
    assert user and user[6] == "/usr/sbin/nologin" and int(user[2]) < 1000, user
    for group in ("kvm", "www-data"):
        assert "qwd" in passwd_entry(chroot, group, "group")[3].split(","), group
    www = passwd_entry(chroot, "www-data")
    qwd_group = passwd_entry(chroot, "qwd", "group")
    for path, owner, group, mode in (
            ("var/lib/qwd", 0, 0, 0o755),
            ("var/lib/qwd/state", int(user[2]), int(user[3]), 0o700),
            ("var/lib/qwd/machines", 0, int(qwd_group[2]), 0o750),
            ("var/lib/qwd/web", int(www[2]), int(www[3]), 0o700)):
        status = os.stat(chroot.file(path))
        assert (status.st_uid, status.st_gid, oct(status.st_mode & 0o7777)) == (
            owner, group, oct(mode)), path
    conffiles = chroot.run("dpkg-query", "-W", "-f", "${Conffiles}", "qwd-helper").stdout
    assert "/etc/qwd/qwd-helper.conf" in conffiles
    assert os.path.islink(chroot.file(
        "etc/systemd/system/multi-user.target.wants/qwd-helper.service"))
    # Installing publishes nothing: the administrator enables the module.
    assert not glob.glob(chroot.file("etc/apache2/mods-enabled/qwd.*"))

    chroot.run("a2enmod", "qwd")
    for name in ("qwd.load", "qwd.conf", "dbd.load", "proxy_wstunnel.load", "proxy.load"):
        assert os.path.exists(chroot.file(f"etc/apache2/mods-enabled/{name}")), name

    # The administrator's part: a master image, a password file Apache's user reads, ports.
    vm.place(tiny_vm["qcow2"], chroot.file(f"var/lib/qwd/machines/{MACHINE}"))
    password = base64.b32encode(os.urandom(10)).decode()
    chroot.run("htpasswd", "-c", "-B", "-i", "/etc/qwd/users.htpasswd", "alice",
               input=password)
    chroot.run("chgrp", "www-data", "/etc/qwd/users.htpasswd")
    chroot.run("chmod", "0640", "/etc/qwd/users.htpasswd")
    websockify_port, port = env.free_port(), env.free_port()
    conf = chroot.file("etc/apache2/mods-available/qwd.conf")
    text = read(conf)
    assert "ws://127.0.0.1:6080/" in text
    with open(conf, "w") as f:
        f.write(text.replace("ws://127.0.0.1:6080/", f"ws://127.0.0.1:{websockify_port}/"))

    mark = time.monotonic()
    helper = start_helper(chroot, chroot.logs, websockify_port)
    apache = start_apache(chroot, chroot.logs, port)
    status, answer = api(port, "GET", "machines", password=password)
    assert status == 200 and MACHINE in [m["name"] for m in answer["machines"]], answer
    status, answer = api(port, "GET", "machines", password="wrong")
    assert status == 401, answer
    status, session = api(port, "POST", "sessions",
                          {"machine": MACHINE, "memory_mib": 256, "lifetime_s": 600},
                          password=password)
    assert status == 201, session

    def running():
        status, answer = api(port, "GET", "sessions/" + session["id"], password=password)
        assert status == 200, answer
        return answer if answer["state"] == "running" else None
    session = procs.wait_until(running, 60, interval=0.2, what="the session to run")
    # The display through Apache's gate, websockify and QEMU's VNC socket, all in the root.
    assert rfb.websocket_rfb_banner(session["websocket_url"]).startswith(b"RFB ")
    vms = qemu_processes(chroot)
    assert len(vms) == 1, vms
    assert os.stat(f"/proc/{vms[0][0]}").st_uid == int(user[2])  # QEMU runs as qwd
    assert os.stat(f"/proc/{helper.pid}").st_uid == int(user[2])
    timings["session"] = time.monotonic() - mark

    mark = time.monotonic()
    procs.stop(apache)
    # Removing the helper's package ends its VMs (through the helper that still runs).
    chroot.run("apt-get", "remove", "-y", *PACKAGES, log=log)
    assert not qemu_processes(chroot)
    assert not os.listdir(chroot.file("var/lib/qwd/state/sessions"))
    assert not glob.glob(chroot.file("etc/apache2/mods-enabled/qwd.*"))
    procs.stop(helper)
    assert helper.returncode == 0, read(os.path.join(chroot.logs, "helper.log"))
    bad = unexpected_log_lines(chroot, chroot.logs)
    assert not bad, "\n".join(bad)
    chroot.run("apt-get", "purge", "-y", *PACKAGES, log=log)
    timings["remove+purge"] = time.monotonic() - mark

    left = ours_left(chroot)
    assert not left, f"left after purge: {left}"
    assert not chroot.processes()
    alternatives = chroot.run("update-alternatives", "--get-selections").stdout
    assert "qwd" not in alternatives
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
          + f", total {time.monotonic() - start:.0f}")
