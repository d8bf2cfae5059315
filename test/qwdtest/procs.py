# SPDX-License-Identifier: Apache-2.0
"""Process bookkeeping: start children in their own process group, stop them by PID, and
find any process a test left behind (every process of the stack names the test's workdir)."""
import os
import signal
import subprocess
import time


def spawn(argv, log_path, env=None, preexec_fn=None):
    """Starts argv with stdout/stderr appended to log_path (created 0600: logs are read by
    their owner only), in its own session so a signal to the test runner's terminal never
    reaches it."""
    log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, start_new_session=True, preexec_fn=preexec_fn)
    finally:
        log.close()


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Signals one process by PID and waits; escalates to SIGKILL after timeout."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def stop_group(proc, sig=signal.SIGTERM, timeout=10):
    """Like stop(), but escalates to SIGKILL for proc's whole process group: for a server
    whose parent leads a session of its own (spawn), i.e. that server's processes only."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def live_processes():
    """(pid, fields of /proc/PID/stat after the command name: state ppid pgrp session ...)
    of every live (not zombie) process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            yield int(entry), fields


def children(pid):
    """PIDs of the live processes whose parent is pid."""
    return [child for child, fields in live_processes() if int(fields[1]) == pid]


def processes_mentioning(marker):
    """(pid, cmdline) of every live process whose command line contains marker."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        line = cmdline(int(entry))
        if marker in line and pid_alive(int(entry)):
            found.append((int(entry), line))
    return found


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate until it returns a true value; raises AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def kill_leftovers(marker):
    """Last-resort cleanup of processes naming marker (all of them were started by this
    test: the marker is the test's private workdir). Returns what it had to kill."""
    left = processes_mentioning(marker)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid, _ in left:
        try:
            wait_until(lambda: not pid_alive(pid), 5, what=f"pid {pid} to die")
        except AssertionError:
            pass
    return left
