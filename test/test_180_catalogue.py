# SPDX-License-Identifier: Apache-2.0
"""The machine catalogue (issue 20): `qwdctl machines fetch` downloads from a real HTTP server
of the test's own (Range requests, a connection cut mid-file, a redirect), resumes an
interrupted download, verifies the sha256 before anything becomes visible, places image and
sidecars atomically and has the helper rescan; a wrong checksum keeps the old image; a name that
would leave the machines directory is refused before any download; `qwdctl machines list`
tells installed, outdated, available and local machines apart."""
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading

import pytest

from qwdtest import env, procs, vm
from qwdtest.helper import Helper


class FileServer:
    """A threaded HTTP/1.1 server for files in memory, with Range support. cut: paths whose
    next GET stops after that many body bytes (the connection closes mid-file). no_range: paths
    that ignore Range. redirect: path → Location. Every GET is logged."""

    def __init__(self):
        self.files, self.cut, self.no_range, self.redirect = {}, {}, set(), {}
        self.log = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                entry = {"path": self.path, "range": self.headers.get("Range"), "sent": 0}
                server.log.append(entry)
                if self.path in server.redirect:
                    entry["status"] = 302
                    self.send_response(302)
                    self.send_header("Location", server.redirect[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files.get(self.path)
                if data is None:
                    entry["status"] = 404
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and self.path not in server.no_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        entry["status"] = 416
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                entry["status"] = 206 if start else 200
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                limit = server.cut.pop(self.path, None)
                if limit is not None:
                    self.wfile.write(body[:limit])
                    self.wfile.flush()
                    entry["sent"] = limit
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)
                entry["sent"] = len(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def requests(self, path):
        return [entry for entry in self.log if entry["path"] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def blank_qcow2(workdir, size):
    """A small, valid qcow2 image (its bytes differ with its size)."""
    path = os.path.join(workdir, f"blank-{size}.qcow2")
    subprocess.run([env.QEMU_IMG, "create", "-q", "-f", "qcow2", path, size], check=True)
    return read(path)


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


@pytest.fixture
def site(workdir, server):
    """An empty machines dir, a catalogue file, and a helper whose configuration names both (it
    is what qwdctl reads with --config)."""
    machines = os.path.join(workdir, "machines")
    os.mkdir(machines)
    catalogue = os.path.join(workdir, "catalogue.conf")
    with open(catalogue, "w") as f:
        f.write("")
    helper = Helper(workdir, machines, catalogue=catalogue).start()
    site = type("Site", (), {})()
    site.machines, site.catalogue, site.helper, site.server = machines, catalogue, helper, server

    def write_catalogue(text):
        with open(catalogue, "w") as f:
            f.write(text)
    site.write_catalogue = write_catalogue

    def qwdctl(*args):
        environment = {k: v for k, v in os.environ.items() if k != "QWD_HELPER_SOCKET"}
        return subprocess.run([env.QWDCTL, "--config", helper.config_path, "machines", *args],
                              capture_output=True, text=True, timeout=120, env=environment)
    site.qwdctl = qwdctl
    yield site
    from conftest import stop_and_check_helper
    if helper.running():
        helper.call("warm_drop")
    stop_and_check_helper(helper)


def entry(name, url, digest, **extra):
    lines = [f"[{name}]", f"url = {url}", f"sha256 = {digest}"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def machine_files(site):
    return sorted(os.listdir(site.machines))


def test_fetch_verifies_places_atomically_and_the_helper_rescans(site, tiny_vm):
    data = read(tiny_vm["qcow2"])
    site.server.files["/tiny.qcow2"] = data
    site.write_catalogue(
        "# the test's catalogue\n"
        + entry("tiny.qcow2", site.server.url("/tiny.qcow2"), sha256(data),
                description="Tiny busybox test VM (fetched)", ready_serial=vm.BANNER,
                ready_delay=0, warm_at_start="yes", memory_mib=256))
    listed = site.qwdctl("list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^tiny.qcow2\s+available\s+x86_64\s+Tiny busybox test VM \(fetched\)$",
                     listed.stdout, re.M), listed.stdout

    fetched = site.qwdctl("fetch", "tiny.qcow2")
    assert fetched.returncode == 0, fetched.stderr
    assert "tiny.qcow2: installed (" in fetched.stdout and "sha256 ok, qcow2, x86_64)" \
        in fetched.stdout
    assert "tiny.qcow2: the helper lists it" in fetched.stdout
    assert re.search(r"tiny.qcow2: 100% [\d.]+ of [\d.]+ MiB", fetched.stderr), fetched.stderr
    # the image, its description and sidecar, its checksum; no partial file left
    assert machine_files(site) == ["tiny.qcow2", "tiny.qcow2.sha256", "tiny.qcow2.txt",
                                   "tiny.qcow2.warm"]
    assert read(os.path.join(site.machines, "tiny.qcow2")) == data
    assert read(os.path.join(site.machines, "tiny.qcow2.sha256"), "r") == \
        f"{sha256(data)}  tiny.qcow2\n"
    assert read(os.path.join(site.machines, "tiny.qcow2.warm"), "r") == (
        f"ready_serial = {vm.BANNER}\nready_delay = 0\nwarm_at_start = yes\nmemory_mib = 256\n")
    machine = {m["name"]: m for m in site.helper.call("machines")["machines"]}["tiny.qcow2"]
    assert machine["description"] == "Tiny busybox test VM (fetched)" and "problem" not in machine
    # the rescan started the warm_at_start build of the new machine
    assert [w["key"] for w in site.helper.call("warm_list")["warm"]] == \
        ["tiny.qcow2-1c-256m-std"]

    # a second fetch finds it current (from its .sha256) and downloads nothing
    requests = len(site.server.log)
    again = site.qwdctl("fetch")
    assert again.returncode == 0 and "tiny.qcow2: up to date" in again.stdout, again.stderr
    assert len(site.server.log) == requests
    listed = site.qwdctl("list", "--json")
    assert json.loads(listed.stdout)["machines"][0]["state"] == "installed"


def test_an_interrupted_download_resumes_where_it_stopped(site, tiny_vm):
    data = read(tiny_vm["qcow2"])
    cut = len(data) * 2 // 5
    site.server.files["/t.qcow2"] = data
    site.server.cut["/t.qcow2"] = cut
    site.write_catalogue(entry("tiny.qcow2", site.server.url("/t.qcow2"), sha256(data)))

    first = site.qwdctl("fetch", "tiny.qcow2")
    assert first.returncode == 1
    assert "qwdctl: download_failed: tiny.qcow2:" in first.stderr
    assert "run the same command again to resume" in first.stderr
    # nothing visible: only the hidden partial file, with what arrived
    part = [name for name in machine_files(site) if name.endswith(".part")]
    assert machine_files(site) == part == [f".tiny.qcow2.{sha256(data)[:16]}.part"]
    assert os.path.getsize(os.path.join(site.machines, part[0])) == cut
    assert "tiny.qcow2" not in [m["name"] for m in site.helper.call("machines")["machines"]]

    second = site.qwdctl("fetch", "tiny.qcow2")
    assert second.returncode == 0, second.stderr
    assert f"tiny.qcow2: resuming after {cut} bytes" in second.stderr
    assert ", resumed, sha256 ok" in second.stdout
    last = site.server.requests("/t.qcow2")[-1]
    assert last["range"] == f"bytes={cut}-" and last["status"] == 206
    assert last["sent"] == len(data) - cut
    assert read(os.path.join(site.machines, "tiny.qcow2")) == data
    assert not [name for name in machine_files(site) if name.endswith(".part")]


def test_a_server_without_ranges_sends_it_anew(site, workdir):
    data = blank_qcow2(workdir, "3M")
    site.server.files["/b.qcow2"] = data
    site.server.no_range.add("/b.qcow2")
    site.server.cut["/b.qcow2"] = 1000
    site.write_catalogue(entry("b.qcow2", site.server.url("/b.qcow2"), sha256(data)))
    assert site.qwdctl("fetch").returncode == 1
    second = site.qwdctl("fetch")
    assert second.returncode == 0, second.stderr
    assert "the server sends the whole file (HTTP 200): starting over" in second.stderr
    assert read(os.path.join(site.machines, "b.qcow2")) == data


def test_a_wrong_checksum_keeps_the_old_image_and_says_so(site, workdir):
    old, new = blank_qcow2(workdir, "1M"), blank_qcow2(workdir, "2M")
    site.server.files["/v1.qcow2"] = old
    site.server.files["/v2.qcow2"] = new
    site.write_catalogue(entry("app.qcow2", site.server.url("/v1.qcow2"), sha256(old),
                               description="App v1"))
    assert site.qwdctl("fetch").returncode == 0
    files = machine_files(site)

    # the catalogue moves to v2, but the file served is not what it says
    wrong = sha256(b"something else")
    site.write_catalogue(entry("app.qcow2", site.server.url("/v2.qcow2"), wrong,
                               description="App v2"))
    listed = site.qwdctl("list")
    assert re.search(r"^app.qcow2\s+outdated\s", listed.stdout, re.M), listed.stdout
    fetched = site.qwdctl("fetch", "app.qcow2")
    assert fetched.returncode == 1
    assert (f"qwdctl: checksum_mismatch: app.qcow2: the download's sha256 is {sha256(new)}, the "
            f"catalogue says {wrong}; the installed image is kept") in fetched.stderr
    assert read(os.path.join(site.machines, "app.qcow2")) == old
    assert read(os.path.join(site.machines, "app.qcow2.txt"), "r") == "App v1\n"
    assert machine_files(site) == files  # the bad download is gone, nothing changed

    # with the right checksum v2 replaces v1
    site.write_catalogue(entry("app.qcow2", site.server.url("/v2.qcow2"), sha256(new),
                               description="App v2"))
    assert site.qwdctl("fetch").returncode == 0
    assert read(os.path.join(site.machines, "app.qcow2")) == new
    assert read(os.path.join(site.machines, "app.qcow2.txt"), "r") == "App v2\n"
    assert re.search(r"^app.qcow2\s+installed\s", site.qwdctl("list").stdout, re.M)


@pytest.mark.parametrize("name", ["../evil.qcow2", "sub/evil.qcow2", ".hidden.qcow2",
                                  "/tmp/evil.qcow2"])
def test_a_name_that_leaves_the_machines_directory_is_refused(site, workdir, name):
    data = blank_qcow2(workdir, "1M")
    site.server.files["/e.qcow2"] = data
    site.write_catalogue(entry("fine.qcow2", site.server.url("/e.qcow2"), sha256(data))
                         + entry(name, site.server.url("/e.qcow2"), sha256(data)))
    fetched = site.qwdctl("fetch")
    assert fetched.returncode == 1
    assert fetched.stderr.startswith(f"qwdctl: bad_catalogue: {site.catalogue}: line 4: [{name}]")
    assert site.server.log == []  # refused before any download
    assert machine_files(site) == []
    assert not os.path.exists(os.path.join(workdir, "evil.qcow2"))
    assert site.qwdctl("list").returncode == 1


def test_a_download_whose_bytes_break_the_image_rules_is_refused(site, workdir):
    raw = b"\0" * (1 << 20)  # raw bytes under a .qcow2 name
    site.server.files["/r"] = raw
    site.write_catalogue(entry("disk.qcow2", site.server.url("/r"), sha256(raw)))
    fetched = site.qwdctl("fetch", "disk.qcow2")
    assert fetched.returncode == 1
    assert ("qwdctl: refused_image: disk.qcow2: its name says a qcow2 image but its bytes are "
            "raw data") in fetched.stderr
    assert "nothing was installed" in fetched.stderr
    assert machine_files(site) == []


def test_only_http_and_https_even_after_a_redirect(site):
    site.server.redirect["/moved"] = "file:///etc/passwd"
    digest = sha256(read("/etc/passwd"))
    site.write_catalogue(entry("p.raw", site.server.url("/moved"), digest))
    fetched = site.qwdctl("fetch")
    assert fetched.returncode == 1 and "download_failed" in fetched.stderr
    assert "p.raw" not in machine_files(site)
    assert site.qwdctl("fetch", "nothere.qcow2").stderr.startswith(
        "qwdctl: not_in_catalogue: nothere.qcow2 is not in ")


def test_list_shows_local_machines_and_json(site, workdir):
    data = blank_qcow2(workdir, "1M")
    site.write_catalogue(entry("arm.qcow2", "https://example.invalid/a.qcow2", sha256(data),
                               arch="aarch64", description="An aarch64 machine"))
    shutil.copy(os.path.join(workdir, "blank-1M.qcow2"), os.path.join(site.machines, "mine.img"))
    listed = site.qwdctl("list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^arm.qcow2\s+available\s+aarch64\s+An aarch64 machine$", listed.stdout,
                     re.M)
    assert re.search(r"^mine.img\s+local\s+-\s+\(not in the catalogue\)$", listed.stdout, re.M)
    machines = {m["name"]: m for m in json.loads(site.qwdctl("list", "--json").stdout)["machines"]}
    assert machines["arm.qcow2"]["sha256"] == sha256(data)
    assert machines["mine.img"]["state"] == "local"
