# SPDX-License-Identifier: Apache-2.0
"""make demo: the whole service comes up on the given port, serves the form, and a SIGTERM
stops everything it started (Apache, helper, websockify, the demo VM) and removes its files.
`scripts/setup demo` installs what the demo runs, and none of what only the tests run."""
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from qwdtest import env, procs, rfb
from qwdtest.httpd import BASE_MODULES
from qwdtest.private import paths_open_to_others

# What only the tests and the bench run: `scripts/setup demo` must install none of them.
TEST_ONLY_PACKAGES = {
    "chromium", "nodejs", "npm", "npm:playwright-core", "slapd", "ldap-utils", "dovecot-imapd",
    "python3-aiosmtpd", "python3-ldap3", "wrk", "zbar-tools", "librsvg2-bin", "clang-format-16",
    "python3-pytest", "python3-websocket", "clang", "libfuzzer-14-dev", "valgrind",
}


def install_list(goal):
    result = subprocess.run([os.path.join(env.SRCDIR, "scripts", "install-deps"), "--list", goal],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def package_closure(packages):
    """packages and everything they depend on (apt-cache, no recommends)."""
    result = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        capture_output=True, text=True, timeout=120)
    return {line.strip("<>") for line in result.stdout.splitlines() if not line.startswith(" ")}


def owner_package(path):
    """The package that installed path (after the /usr merge dpkg knows some files by their
    /bin or /sbin name, others by their /usr one)."""
    real = os.path.realpath(path)
    for name in (path, real, re.sub(r"^/usr/(s?bin)/", r"/\1/", real)):
        result = subprocess.run(["dpkg-query", "-S", name], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":")[0]
    raise AssertionError(f"{path}: {result.stderr}")


def test_setup_demo_installs_what_the_demo_runs_and_nothing_only_tests_need():
    demo, check = install_list("demo"), install_list("check")
    assert set(demo) & TEST_ONLY_PACKAGES == set()
    assert set(demo) <= set(check) and TEST_ONLY_PACKAGES <= set(check)
    closure = package_closure(demo)
    # nor does anything the demo's packages pull in (but Debian's novnc depends on nodejs)
    assert closure & TEST_ONLY_PACKAGES <= {"nodejs"}
    # every program and file the demo runs comes with a package of its list: Apache and the
    # modules of its generated config, the SQLite driver, QEMU, websockify, noVNC, python3,
    # apxs for the build, and the tools that build the tiny demo VM
    used = [env.APACHE, env.QEMU, env.QEMU_IMG, env.WEBSOCKIFY, env.NOVNC_DIR + "/vnc.html",
            "/usr/bin/python3", "/usr/bin/apxs", "/bin/busybox",
            *(f"{env.APACHE_MODULES}/mod_{m}.so" for m in BASE_MODULES)]
    used += [shutil.which(tool) for tool in ("cpio", "zstd", "grub-mkrescue", "xorriso",
                                             "mformat", "flock", "sqlite3")]
    driver = [os.path.join(root, name) for root, _, names in os.walk("/usr/lib")
              for name in names if name.startswith("apr_dbd_sqlite3")]
    assert driver
    for path in used + driver[:1]:
        assert path and owner_package(path) in closure, f"{path}: not installed by setup demo"


class Demo:
    """scripts/demo in its own session (so a signal to its process group is what a terminal's
    Ctrl-C sends), with its output read up to "Press Ctrl-C"."""

    def __init__(self):
        self.port = env.free_port()
        self.process = subprocess.Popen(
            [os.path.join(env.SRCDIR, "scripts", "demo")],
            env=dict(os.environ, QWD_PORT=str(self.port)), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output = ""
        self.workdir = None

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C" not in self.output and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output += line
        assert "Press Ctrl-C" in self.output, self.output
        self.workdir = re.search(r"logs:\s+(\S+)", self.output).group(1)

    def printed_url(self, label):
        return re.search(label + r":\s+(\S+)", self.output).group(1)

    def signal_group(self, sig):
        os.killpg(self.process.pid, sig)

    def wait_stopped(self, timeout=60):
        """Waits for the demo's exit; returns how long its stop took."""
        start = time.monotonic()
        self.output += self.process.communicate(timeout=timeout)[0]
        return time.monotonic() - start

    def assert_nothing_left(self):
        assert "demo stopped." in self.output, self.output
        assert "had to kill leftovers" not in self.output, self.output
        assert procs.processes_mentioning(self.workdir) == []
        assert not os.path.exists(self.workdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.workdir:
            procs.kill_leftovers(self.workdir)


def test_demo_serves_the_form_and_stops_cleanly_on_sigterm():
    with Demo() as demo:
        demo.wait_ready()
        form_url = demo.printed_url("form")
        assert form_url == f"http://127.0.0.1:{demo.port}/qwd/"
        with urllib.request.urlopen(form_url, timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "tiny.qcow2" in page
        # instant-on: the demo warms the tiny VM first, so its session is restored
        assert "starts instantly" in page
        assert "boot: restored" in demo.output, demo.output
        vm_processes = [line for _, line in procs.processes_mentioning(demo.workdir)
                        if "qemu-system" in line]
        assert len(vm_processes) == 1, vm_processes  # the demo VM runs
        # what other local users may read of the demo: its directory, the master images and
        # the helper's configuration; not the database, the helper's state or any log
        machines = os.path.join(demo.workdir, "machines")
        public = {demo.workdir, machines, os.path.join(demo.workdir, "helper.conf")}
        public |= {os.path.join(machines, name) for name in os.listdir(machines)}
        assert set(paths_open_to_others(demo.workdir)) <= public
        demo.process.send_signal(signal.SIGTERM)
        demo.wait_stopped()
        assert demo.process.returncode == 0, demo.output
        demo.assert_nothing_left()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_second_signal_never_aborts_the_stop_even_with_a_viewer_connected(sig):
    """Ctrl-C pressed twice (or SIGTERM twice), a second apart, while a viewer's websocket is
    open through Apache: the demo still stops Apache, the helper, websockify and the VM, and
    the open websocket does not hold the stop for long."""
    with Demo() as demo:
        demo.wait_ready()
        ws = rfb.open_link_websocket(demo.printed_url("demo VM"))
        try:
            demo.signal_group(sig)
            time.sleep(1)
            demo.signal_group(sig)
            took = demo.wait_stopped()
        finally:
            ws.close()
        demo.assert_nothing_left()
        assert demo.process.returncode == 0, demo.output
        # Apache waits for no viewer: the VMs stop first, and it gets 3 s at most
        assert took < 8, f"the stop took {took:.1f} s"
