# SPDX-License-Identifier: Apache-2.0
"""Machines (issue 20): the tiny VM boots from every image format the helper accepts, each on
its own overlay with the master untouched; a file's name states its format and its bytes must
agree (a hybrid ISO named .raw is a disk), anything else, and any header that points QEMU at
files outside the machines directory, is refused with a clear error; the form shows each
machine's arch and greys out refused ones. Real helper, QEMU (TCG), qemu-img and Apache."""
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import stop_and_check_helper
from qwdtest import env, procs, vm
from qwdtest.helper import Helper, HelperError, wait_for_serial
from test_300_module import Browser, api

# name in the machines dir → (how it is made from the tiny VM, the format it is attached as)
FORMATS = {
    "qcow2": ("tiny.qcow2", "qcow2"),
    "raw": ("tiny.raw", "raw"),  # the tiny disk is a hybrid ISO: as a .raw it is a disk
    "vmdk": ("tiny.vmdk", "vmdk"),
    "vdi": ("tiny.vdi", "vdi"),
    "vpc": ("tiny.vhd", "vpc"),
    "vhdx": ("tiny.vhdx", "vhdx"),
    "iso": ("tiny.iso", "iso"),
}
BOOT_CONCURRENCY = 2  # this host's cores: more VMs booting at once only slows each down
BANNER_TIMEOUT = 150


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def qemu_img(*args):
    subprocess.run([env.QEMU_IMG, *args], check=True, capture_output=True)


def overlay_info(path):
    return json.loads(subprocess.run([env.QEMU_IMG, "info", "--output=json", "-U", path],
                                     capture_output=True, text=True, check=True).stdout)


# --- every format boots --------------------------------------------------------------------

def boot_one(helper, fmt, name):
    """Starts name, waits for the guest's banner on its console, reads what the session's disk
    is, stops it. Returns what the test checks."""
    started = time.monotonic()
    session = helper.call("start", machine=name, owner="formats", memory_mib=256)
    result = {"cmdline": procs.cmdline(session["pid"])}
    try:
        result["banner_s"] = wait_for_serial(helper, session["id"], vm.BANNER,
                                             timeout=BANNER_TIMEOUT)
        result["disk"] = overlay_info(os.path.join(helper.session_dir(session["id"]),
                                                   "disk.qcow2"))
    finally:
        helper.call("stop", id=session["id"])
    result["total_s"] = time.monotonic() - started
    return result


@pytest.fixture(scope="module")
def format_boots(tiny_vm):
    """Boots the tiny VM from each format, BOOT_CONCURRENCY at a time, through one helper;
    checksums every master before and after. {fmt: result or the exception it raised}."""
    workdir = tempfile.mkdtemp(prefix="qwdt-", dir="/tmp")
    os.chmod(workdir, 0o755)
    machines = os.path.join(workdir, "machines")
    os.mkdir(machines)
    for fmt, (name, _) in FORMATS.items():
        path = os.path.join(machines, name)
        if fmt in ("qcow2", "iso"):
            vm.place(tiny_vm[fmt], path)
        else:
            vm.convert(tiny_vm["qcow2"], fmt, path)
    before = {fmt: sha256(os.path.join(machines, name)) for fmt, (name, _) in FORMATS.items()}
    helper = Helper(workdir, machines, max_sessions=BOOT_CONCURRENCY).start()
    results = {}
    try:
        listed = {m["name"]: m for m in helper.call("machines")["machines"]}
        with concurrent.futures.ThreadPoolExecutor(max_workers=BOOT_CONCURRENCY) as pool:
            futures = {fmt: pool.submit(boot_one, helper, fmt, name)
                       for fmt, (name, _) in FORMATS.items()}
            for fmt, future in futures.items():
                try:
                    results[fmt] = future.result()
                except Exception as error:  # reported by that format's own test
                    results[fmt] = error
        after = {fmt: sha256(os.path.join(machines, name)) for fmt, (name, _) in FORMATS.items()}
        yield {"results": results, "listed": listed, "before": before, "after": after}
    finally:
        stop_and_check_helper(helper)
        left = procs.kill_leftovers(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


@pytest.mark.boot
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_boots_to_its_banner_on_its_own_overlay(format_boots, fmt):
    name, attached = FORMATS[fmt]
    machine = format_boots["listed"][name]
    assert machine["format"] == attached and "problem" not in machine, machine
    assert machine["arch"] == "x86_64"
    result = format_boots["results"][fmt]
    if isinstance(result, Exception):
        raise result
    # the master is only read: the session wrote to its own overlay (or, for an ISO, to its
    # blank scratch disk beside the read-only CD-ROM)
    assert format_boots["after"][fmt] == format_boots["before"][fmt], f"{name} was modified"
    disk = result["disk"]
    if fmt == "iso":
        assert "backing-filename" not in disk
        assert f"{name},format=raw,media=cdrom,readonly=on" in result["cmdline"]
    else:
        assert disk["backing-filename-format"] == attached
        assert os.path.basename(disk["backing-filename"]) == name
        assert "media=cdrom" not in result["cmdline"]
    print(f"{fmt}: banner after {result['banner_s']:.1f} s")


# --- names, bytes and references -----------------------------------------------------------

@pytest.fixture(scope="module")
def machines_dir(tiny_vm):
    """Machines that follow the rules and machines that break them (the conftest helper and
    httpd fixtures use this directory in this module)."""
    path = tempfile.mkdtemp(prefix="qwdm-", dir="/tmp")
    elsewhere = tempfile.mkdtemp(prefix="qwdo-", dir="/tmp")
    os.chmod(path, 0o755)
    j = lambda name: os.path.join(path, name)  # noqa: E731
    vm.place(tiny_vm["qcow2"], j("tiny.qcow2"))
    vm.place(tiny_vm["iso"], j("tiny.iso"))
    vm.convert(tiny_vm["qcow2"], "raw", j("hybrid.raw"))
    qemu_img("create", "-q", "-f", "raw", j("blank.img"), "16M")
    # a raw disk named .qcow2, a qcow2 named .raw, a disk named .iso
    qemu_img("create", "-q", "-f", "raw", j("raw-named.qcow2"), "16M")
    qemu_img("create", "-q", "-f", "qcow2", j("qcow2-named.raw"), "16M")
    qemu_img("create", "-q", "-f", "raw", j("disk-named.iso"), "16M")
    # backing files: inside (fine), outside, through a symlink that leaves, missing, a protocol
    qemu_img("create", "-q", "-f", "qcow2", "-b", "tiny.qcow2", "-F", "qcow2", j("child.qcow2"))
    qemu_img("create", "-q", "-f", "qcow2", os.path.join(elsewhere, "base.qcow2"), "16M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", os.path.join(elsewhere, "base.qcow2"),
             "-F", "qcow2", j("outside.qcow2"))
    os.symlink(os.path.join(elsewhere, "base.qcow2"), j("link-out"))
    qemu_img("create", "-q", "-f", "qcow2", "-b", "link-out", "-F", "qcow2", j("via-link.qcow2"))
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2",
             j("missing.qcow2"), "16M")
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-b",
             'json:{"driver":"file","filename":"/etc/passwd"}', "-F", "raw",
             j("protocol.qcow2"), "16M")
    # a chain whose second link leaves; a stated backing format the file does not have
    qemu_img("create", "-q", "-f", "qcow2", "-b", "outside.qcow2", "-F", "qcow2", j("chain.qcow2"))
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-b", "blank.img", "-F", "qcow2",
             j("wrong-backing-format.qcow2"), "16M")
    # a VMDK descriptor whose extent is a file elsewhere
    with open(j("descriptor.vmdk"), "w") as f:
        f.write('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                'createType="monolithicFlat"\nRW 2048 FLAT "/etc/passwd" 0\n')
    yield path
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(elsewhere, ignore_errors=True)


REFUSED = {
    "raw-named.qcow2": "its name says a qcow2 image but its bytes are raw data",
    "qcow2-named.raw": "its name says raw data (no known image header) but its bytes are a "
                       "qcow2 image",
    "disk-named.iso": "its name says an ISO 9660 or UDF image but its bytes are raw data",
    "outside.qcow2": "is outside the machines directory",
    "via-link.qcow2": 'its backing file "link-out" is outside the machines directory',
    "missing.qcow2": 'its backing file "gone.qcow2" does not exist',
    "protocol.qcow2": "is not a plain file name",
    "chain.qcow2": 'its backing file "outside.qcow2": its backing file',
    "wrong-backing-format.qcow2": 'its backing file "blank.img" is declared qcow2 but its bytes '
                                  "are raw",
    "descriptor.vmdk": 'its extent "/etc/passwd" is outside the machines directory',
}


def test_names_and_bytes_decide_the_format_and_mismatches_are_refused(helper, machines_dir):
    listed = {m["name"]: m for m in helper.call("machines")["machines"]}
    assert {name: listed[name]["format"] for name in
            ("tiny.qcow2", "tiny.iso", "hybrid.raw", "blank.img", "child.qcow2")} == {
        "tiny.qcow2": "qcow2", "tiny.iso": "iso", "hybrid.raw": "raw", "blank.img": "raw",
        "child.qcow2": "qcow2"}
    usable = {name for name, m in listed.items() if "problem" not in m}
    assert usable == {"tiny.qcow2", "tiny.iso", "hybrid.raw", "blank.img", "child.qcow2"}
    for name, why in REFUSED.items():
        assert why in listed[name]["problem"], (name, listed[name])
    # the refused ones are listed with what their bytes are
    assert listed["raw-named.qcow2"]["format"] == "raw"
    assert listed["qcow2-named.raw"]["format"] == "qcow2"


def test_a_refused_machine_is_never_started(helper, machines_dir):
    for name in ("raw-named.qcow2", "outside.qcow2", "descriptor.vmdk"):
        with pytest.raises(HelperError) as refused:
            helper.call("start", machine=name, owner="alice")
        assert refused.value.code == "unusable_machine"
        assert REFUSED[name] in refused.value.data["reason"]
        assert f'machine "{name}" cannot be started' in refused.value.message
        with pytest.raises(HelperError) as refused:
            helper.call("warm", machine=name)
        assert refused.value.code == "unusable_machine"
    assert helper.call("list")["sessions"] == []
    assert procs.processes_mentioning(machines_dir) == []
    assert "QWD05502" in helper.log_text()


def test_a_hybrid_iso_named_raw_boots_as_a_disk(helper):
    session = helper.call("start", machine="hybrid.raw", owner="alice", memory_mib=256)
    try:
        cmdline = procs.cmdline(session["pid"])
        assert "media=cdrom" not in cmdline and "-boot" not in cmdline
        disk = overlay_info(os.path.join(helper.session_dir(session["id"]), "disk.qcow2"))
        assert disk["backing-filename-format"] == "raw"
    finally:
        helper.call("stop", id=session["id"])


def test_the_form_shows_each_machines_arch_and_greys_out_refused_ones(httpd):
    status, form = Browser(httpd).get("")
    assert status == 200
    assert ('<option value="tiny.qcow2" data-arch="x86_64">tiny.qcow2 (x86_64)</option>'
            in form), form
    assert ('<option value="outside.qcow2" disabled data-arch="x86_64">outside.qcow2 (x86_64)'
            ' (unavailable)</option>' in form)
    # the API marks it unavailable without its problem (file names of the machines directory
    # and beyond are for the administrator); a create is refused without file names too
    status, machines, _ = api(httpd, "GET", "machines")
    assert status == 200
    listed = {m["name"]: m for m in machines["machines"]}
    assert listed["tiny.qcow2"]["arch"] == "x86_64" and "unavailable" not in listed["tiny.qcow2"]
    assert listed["outside.qcow2"]["unavailable"] is True
    assert "problem" not in json.dumps(machines) and "/tmp" not in json.dumps(machines), machines
    status, answer, _ = api(httpd, "POST", "sessions",
                            {"machine": "outside.qcow2", "memory_mib": 256})
    assert status == 400 and answer["field"] == "machine", answer
    assert "cannot be started" in answer["message"] and "/tmp" not in json.dumps(answer)
