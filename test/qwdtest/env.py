# SPDX-License-Identifier: Apache-2.0
"""Where the build products and the tools the harness runs live."""
import os
import shutil
import socket
import subprocess

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("QWD_BUILDDIR", SRCDIR)

HELPER = os.path.join(BUILDDIR, "support", "qwd-helper")
QWDCTL = os.path.join(BUILDDIR, "support", "qwdctl")
NODE = os.path.join(BUILDDIR, "support", "qwd-node")
MODULE = os.path.join(BUILDDIR, "mod_qwd", ".libs", "mod_qwd.so")

APACHE = os.environ.get("QWD_HTTPD") or shutil.which("apache2", path="/usr/sbin:/usr/bin") \
    or shutil.which("httpd", path="/usr/sbin:/usr/bin")
APACHE_MODULES = os.environ.get("QWD_HTTPD_MODULES", "/usr/lib/apache2/modules")
QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
QEMU_IMG = shutil.which("qemu-img") or "/usr/bin/qemu-img"
WEBSOCKIFY = shutil.which("websockify") or "/usr/bin/websockify"
NOVNC_DIR = "/usr/share/novnc"


def _linked_with_asan(path):
    try:
        with open(path, "rb") as f:
            return b"libasan.so" in f.read()
    except OSError:
        return False


# ./configure --enable-sanitizers: the module and the helper are built with ASan and UBSan.
# Every report goes to a file under SANITIZER_DIR (log_path), never only to a log that a test
# may not read: conftest.py fails the test during which one appears (docs/testing.md).
SANITIZERS = _linked_with_asan(HELPER) or _linked_with_asan(MODULE)
SANITIZER_DIR = os.environ.get("QWD_SANITIZER_DIR", "/tmp/qwd-sanitizer-reports")
# httpd itself is not instrumented: the ASan runtime must be loaded before anything else.
LIBASAN = os.environ.get("QWD_LIBASAN") or (
    subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                   text=True).stdout.strip() if SANITIZERS else "")


def sanitizer_env(leaks=True):
    """ASAN_OPTIONS/UBSAN_OPTIONS for a process of the stack (leaks=False: httpd, whose
    pools live until exit by design), or {} when the build has no sanitizers."""
    if not SANITIZERS:
        return {}
    report = os.path.join(SANITIZER_DIR, "report")
    return {
        "ASAN_OPTIONS": f"log_path={report}:detect_leaks={1 if leaks else 0}"
                        ":abort_on_error=0:verify_asan_link_order=0:handle_segv=1",
        "UBSAN_OPTIONS": f"log_path={report}:print_stacktrace=1:halt_on_error=1",
    }


# Tests run under TCG here: no guest boots under this host's nested KVM (shared/notes).
ACCEL = os.environ.get("QWD_TEST_ACCEL", "tcg")


def free_port():
    """A free TCP port on 127.0.0.1 (bound and released; good enough for a private test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
