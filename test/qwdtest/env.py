# SPDX-License-Identifier: Apache-2.0
"""Where the build products and the tools the harness runs live."""
import os
import shutil
import socket

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

# Tests run under TCG here: no guest boots under this host's nested KVM (shared/notes).
ACCEL = os.environ.get("QWD_TEST_ACCEL", "tcg")


def free_port():
    """A free TCP port on 127.0.0.1 (bound and released; good enough for a private test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
