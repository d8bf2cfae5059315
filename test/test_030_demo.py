# SPDX-License-Identifier: Apache-2.0
"""make demo: the whole service comes up on the given port, serves the form, and a SIGTERM
stops everything it started (Apache, helper, websockify, the demo VM) and removes its files."""
import os
import re
import signal
import subprocess
import time
import urllib.request

from qwdtest import env, procs


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
