# SPDX-License-Identifier: Apache-2.0
"""The tiny test VM (kernel + busybox initramfs), built once by test/vm/build-tiny-vm.sh and
cached outside the tree, its aarch64 twin (test/vm/build-tiny-vm-arm64.sh), and copies of it
in the other image formats the helper accepts."""
import os
import subprocess

from . import env

BANNER = "QWD-TINY-VM READY"
CACHE_DIR = os.environ.get("QWD_VM_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "qwd", "tiny-vm"))
ARM64_CACHE_DIR = os.environ.get(
    "QWD_VM_ARM64_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "qwd", "tiny-vm-arm64"))


def tiny_vm():
    """Builds the VM if the cache is missing or stale; returns {name: path}."""
    script = os.path.join(env.SRCDIR, "test", "vm", "build-tiny-vm.sh")
    subprocess.run(["bash", script, CACHE_DIR], check=True)
    return {name: os.path.join(CACHE_DIR, file) for name, file in
            (("kernel", "vmlinuz"), ("initrd", "initrd.img"), ("iso", "tiny.iso"),
             ("qcow2", "tiny.qcow2"))}


def tiny_vm_arm64():
    """The aarch64 tiny VM (UEFI boots its ISO or disk), built if missing or stale; returns
    {name: path} like tiny_vm()."""
    script = os.path.join(env.SRCDIR, "test", "vm", "build-tiny-vm-arm64.sh")
    subprocess.run(["bash", script, ARM64_CACHE_DIR], check=True)
    return {name: os.path.join(ARM64_CACHE_DIR, file) for name, file in
            (("kernel", "vmlinuz"), ("initrd", "initrd.img"), ("iso", "tiny.iso"),
             ("qcow2", "tiny.qcow2"))}


def convert(source, fmt, dest):
    """One-liner for the other formats: raw, vmdk, vdi, vhdx, vpc, qcow2."""
    subprocess.run(["bash", os.path.join(env.SRCDIR, "test", "vm", "convert.sh"),
                    source, fmt, dest], check=True)
    return dest


def place(source, dest):
    """Puts an image into a machines dir: a hard link where possible (no copy, and no
    symlink, which the helper rightly refuses when it leaves the machines dir)."""
    try:
        os.link(source, dest)
    except OSError:
        subprocess.run(["cp", "--reflink=auto", source, dest], check=True)
    return dest
