# SPDX-License-Identifier: Apache-2.0
"""The mod_qwd test harness: starts the real stack (qwd-helper, QEMU, websockify, Apache)
from generated configs in private directories and checks that nothing is left behind."""
