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
import urllib.request

from qwdtest import env, procs
from qwdtest.httpd import BASE_MODULES

# What only the tests and the bench run: `scripts/setup demo` must install none of them.
TEST_ONLY_PACKAGES = {
    "chromium", "nodejs", "npm", "npm:playwright-core", "slapd", "ldap-utils", "dovecot-imapd",
    "python3-aiosmtpd", "python3-ldap3", "wrk", "zbar-tools", "librsvg2-bin", "clang-format-16",
    "python3-pytest", "python3-websocket",
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


def test_demo_serves_the_form_and_stops_cleanly_on_sigterm():
    port = env.free_port()
    demo = subprocess.Popen([os.path.join(env.SRCDIR, "scripts", "demo")],
                            env=dict(os.environ, QWD_PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    output = ""
    workdir = None
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C" not in output and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output += line
        assert "Press Ctrl-C" in output, output
        workdir = re.search(r"logs:\s+(\S+)", output).group(1)
        form_url = re.search(r"form:\s+(\S+)", output).group(1)
        assert form_url == f"http://127.0.0.1:{port}/qwd/"
        with urllib.request.urlopen(form_url, timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "tiny.qcow2" in page
        # instant-on: the demo warms the tiny VM first, so its session is restored
        assert "starts instantly" in page
        assert "boot: restored" in output, output
        vm_processes = [line for _, line in procs.processes_mentioning(workdir)
                        if "qemu-system" in line]
        assert len(vm_processes) == 1, vm_processes  # the demo VM runs
        demo.send_signal(signal.SIGTERM)
        output += demo.communicate(timeout=60)[0]
        assert demo.returncode == 0, output
        assert "demo stopped." in output
        assert "had to kill leftovers" not in output
        assert procs.processes_mentioning(workdir) == []
        assert not os.path.exists(workdir)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        if workdir:
            procs.kill_leftovers(workdir)
