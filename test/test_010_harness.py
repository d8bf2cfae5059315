# SPDX-License-Identifier: Apache-2.0
"""The harness itself: the leak check finds what a test leaves behind, the private Apache
loads the freshly built module without touching /etc/apache2, and the images convert."""
import json
import os
import subprocess
import sys

from qwdtest import env, procs, vm
from qwdtest.httpd import Httpd


def test_leak_check_finds_and_kills_a_process_naming_the_workdir(workdir):
    marker = os.path.join(workdir, "leak-probe")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        # Popen returns before the child has exec'd: wait for its new command line.
        found = procs.wait_until(lambda: procs.processes_mentioning(marker), 5,
                                 what="the probe to exec")
        assert [pid for pid, _ in found] == [sleeper.pid]
        killed = procs.kill_leftovers(marker)
        assert [pid for pid, _ in killed] == [sleeper.pid]
        assert sleeper.wait(5) == -9
    finally:
        procs.stop(sleeper)
    assert procs.processes_mentioning(marker) == []


def test_private_apache_loads_the_module_and_stops_by_pid(workdir):
    server = Httpd(workdir, qwd_conf="QwdAuth none")
    checked = server.check_config()
    assert checked.returncode == 0, checked.stderr
    assert "/etc/apache2" not in server.config_text()
    server.start()
    try:
        assert procs.pid_alive(server.process.pid)
        assert any(server.config_path in line
                   for _, line in procs.processes_mentioning(server.config_path))
    finally:
        server.stop()
    assert procs.processes_mentioning(server.config_path) == []


def test_tiny_vm_images_convert_to_every_format(tiny_vm, workdir):
    for fmt, qemu_name in (("raw", "raw"), ("vmdk", "vmdk"), ("vdi", "vdi"),
                           ("vhdx", "vhdx"), ("vpc", "vpc")):
        dest = vm.convert(tiny_vm["qcow2"], fmt, os.path.join(workdir, f"tiny.{fmt}"))
        info = json.loads(subprocess.run([env.QEMU_IMG, "info", "--output=json", dest],
                                         check=True, capture_output=True, text=True).stdout)
        assert info["format"] == qemu_name
    info = json.loads(subprocess.run([env.QEMU_IMG, "info", "--output=json", tiny_vm["iso"]],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "raw"  # an ISO is a raw image to qemu-img; the helper tells it apart


def test_make_install_places_module_binaries_pages_and_conf(workdir):
    dest = os.path.join(workdir, "inst")
    result = subprocess.run(["make", "-s", "-C", env.BUILDDIR, "install", f"DESTDIR={dest}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = {os.path.relpath(os.path.join(root, f), dest)
                 for root, _, files in os.walk(dest) for f in files}
    apxs_libexec = subprocess.run(["apxs", "-q", "LIBEXECDIR"], capture_output=True,
                                  text=True, check=True).stdout.strip()
    assert os.path.join(apxs_libexec, "mod_qwd.so").lstrip("/") in installed
    for name in ("qwd-helper", "qwdctl"):
        assert any(path.endswith(f"sbin/{name}") for path in installed), installed
    for name in ("conf/qwd.conf", "conf/qwd.load", "conf/qwd-helper.conf",
                 "conf/qwd-helper.service", "htdocs/qwd.css"):
        assert any(path.endswith(f"share/qwd/{name}") for path in installed), installed
