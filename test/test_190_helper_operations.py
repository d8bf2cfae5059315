# SPDX-License-Identifier: Apache-2.0
"""qwd-helper's operations ops against real QEMU: metrics (parsed by Prometheus' own text
parser, exact counter changes after known starts, stops and refusals), the events journal,
what each VM uses, extending a lifetime, and the viewers of the helper's relay."""
import json
import os
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import stop_and_check_helper
from qwdtest import env, procs
from qwdtest.helper import Helper, HelperError
from qwdtest.rfb import RfbClient


@pytest.fixture
def make_helper_ops(workdir, machines_dir):
    """Helpers with a test's own keys, purged, stopped and checked at teardown."""
    started = []

    def make(**overrides):
        h = Helper(workdir, machines_dir, **overrides)
        started.append(h.start())
        return h
    yield make
    for h in started:
        stop_and_check_helper(h)


@pytest.fixture
def qwdctl(helper):
    def run(*args, check=True):
        done = subprocess.run([env.QWDCTL, *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "QWD_HELPER_SOCKET": helper.socket})
        assert not check or done.returncode == 0, done.stderr
        return done
    return run


def samples(families):
    """{(name, frozenset(labels)): value} of the helper's JSON families."""
    found = {}
    for family in families:
        for sample in family["samples"]:
            key = (family["name"], frozenset(sample["labels"].items()))
            found[key] = sample.get("value", sample.get("count"))
    return found


def value(families, name, **labels):
    return samples(families).get((name, frozenset(labels.items())))


def start_tiny(helper, **arguments):
    arguments.setdefault("owner", "alice")
    return helper.call("start", machine="tiny.qcow2", **arguments)


def test_metrics_count_starts_ends_and_refusals_exactly(make_helper_ops):
    helper = make_helper_ops(max_sessions=1)
    before = helper.call("metrics")["families"]
    assert value(before, "qwd_session_starts_total", boot="cold", result="ok") == 0
    session = start_tiny(helper, requested_at=time.time() - 0.5)
    helper.wait_state(session["id"], "running")
    with pytest.raises(HelperError) as refused:
        start_tiny(helper)
    assert refused.value.data["limit"] == "max_sessions"
    after_start = helper.call("metrics")["families"]
    assert value(after_start, "qwd_session_starts_total", boot="cold", result="ok") == 1
    assert value(after_start, "qwd_session_starts_total", boot="cold", result="failed") == 0
    assert value(after_start, "qwd_limit_refusals_total", limit="max_sessions") == 1
    assert value(after_start, "qwd_sessions", state="running") == 1
    assert value(after_start, "qwd_sessions_vcpus") == 1
    assert value(after_start, "qwd_sessions_memory_bytes") == 256 * 1024 * 1024
    latency = [f for f in after_start if f["name"] == "qwd_session_start_seconds"][0]
    cold = [s for s in latency["samples"] if s["labels"] == {"boot": "cold"}][0]
    # counted from requested_at (0.5 s before the start was sent), not from the helper's receipt
    assert cold["count"] == 1 and cold["sum"] >= 0.5
    helper.call("stop", id=session["id"])
    again = helper.call("metrics")["families"]
    assert value(again, "qwd_session_ends_total", reason="stopped") == 1
    assert value(again, "qwd_sessions", state="running") == 0
    # a scrape resets nothing
    assert value(helper.call("metrics")["families"], "qwd_session_ends_total",
                 reason="stopped") == 1


def test_metrics_text_parses_with_the_prometheus_parser(helper, qwdctl):
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running")
    text = qwdctl("metrics").stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["qwd_session_starts"].type == "counter"
    assert families["qwd_session_start_seconds"].type == "histogram"
    assert families["qwd_host_memory_bytes"].samples[0].value > 0
    # the host as /proc says it: load averages, CPUs, memory
    assert abs(families["qwd_host_load1"].samples[0].value - os.getloadavg()[0]) < 1.5
    assert families["qwd_host_cpus"].samples[0].value == os.cpu_count()
    with open("/proc/meminfo") as f:
        total_kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal:")))
    # the helper reads them in whole MiB
    assert total_kib * 1024 - (1 << 20) < families["qwd_host_memory_bytes"].samples[0].value \
        <= total_kib * 1024
    assert 0 < families["qwd_host_memory_available_bytes"].samples[0].value <= total_kib * 1024
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names)), "one TYPE per family"
    helper.call("stop", id=session["id"])


def test_events_journal_says_who_stopped_and_why(helper):
    first = helper.call("events")
    assert first["events"] == [] and first["last"] == 0
    session = start_tiny(helper, by="alice", audited=True, lifetime_s=2)
    other = start_tiny(helper)
    helper.call("stop", id=other["id"], by="admin")
    helper.wait_state(session["id"], "ended", timeout=30)
    journal = helper.call("events", after=0)
    assert journal["journal"] == first["journal"]
    kinds = [(e["event"], e["session"], e.get("reason"), e.get("by"), e["audited"])
             for e in journal["events"]]
    assert ("started", session["id"], None, "alice", True) in kinds
    assert ("ended", other["id"], "stopped", "admin", False) in kinds
    assert ("ended", session["id"], "expired", None, False) in kinds
    seqs = [e["seq"] for e in journal["events"]]
    assert seqs == sorted(seqs) and seqs[-1] == journal["last"]
    later = helper.call("events", after=journal["last"])
    assert later["events"] == []
    listed = helper.call("list", brief=True)
    assert listed["events"] == {"journal": journal["journal"], "last": journal["last"]}


def test_usage_reports_cpu_memory_and_disk_of_each_vm(helper):
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running")
    time.sleep(1)
    usage = {u["id"]: u for u in helper.call("usage")["sessions"]}
    mine = usage[session["id"]]
    assert mine["pid"] == helper.call("status", id=session["id"])["pid"]
    assert mine["cpu_seconds"] > 0 and 0 < mine["cpu_percent"] <= 100 * os.cpu_count()
    assert mine["rss_bytes"] >= mine["pss_bytes"] > 1024 * 1024
    disk = os.path.join(helper.session_dir(session["id"]), "disk.qcow2")
    assert mine["disk_bytes"] == os.stat(disk).st_blocks * 512 > 0
    helper.call("stop", id=session["id"])


def test_usage_answers_a_reading_at_most_usage_max_age_old(make_helper_ops):
    """A VM is read again after half of usage_max_age to all of it (by session), not at every
    usage (smaps_rollup walks its page tables); a session's first reading comes at once, and a
    reading is never older than usage_max_age."""
    helper = make_helper_ops(usage_max_age=4)
    first = start_tiny(helper)
    helper.wait_state(first["id"], "running")
    readings, started = [], time.monotonic()
    while time.monotonic() - started < 1.5:
        readings.append({u["id"]: u for u in helper.call("usage")["sessions"]}[first["id"]])
        time.sleep(0.1)
    # cpu_percent counts on /proc/uptime (10 ms steps): a fresh reading would move it
    assert all(reading == readings[0] for reading in readings), readings
    second = start_tiny(helper, owner="bob")
    helper.wait_state(second["id"], "running")
    usage = {u["id"]: u for u in helper.call("usage")["sessions"]}
    assert usage[second["id"]]["pid"] == helper.call("status", id=second["id"])["pid"]
    assert usage[second["id"]]["pss_bytes"] > 1024 * 1024
    time.sleep(max(0.0, started + 4.2 - time.monotonic()))
    assert {u["id"]: u for u in helper.call("usage")["sessions"]}[first["id"]] != readings[0]
    helper.call("stop", id=second["id"])
    helper.call("stop", id=first["id"])
    assert helper.call("usage")["sessions"] == []


def test_monitor_answers_list_usage_load_and_warm_list_at_once(helper):
    """The monitor op is list's answer (brief or not) with what the monitor shows of usage's
    sessions, load's answer and warm_list's images beside it: what the four answer, in one
    request."""
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running")
    helper.call("usage")  # a reading kept usage_max_age (5 s): the same in both answers
    for brief in (True, False):
        monitor = helper.call("monitor", brief=brief)
        assert set(monitor) == {"sessions", "events", "usage", "load", "warm"}
        listed = helper.call("list", brief=brief)
        assert monitor["sessions"] == listed["sessions"] and monitor["sessions"]
        assert monitor["events"] == listed["events"]
        shown = ("id", "cpu_percent", "pss_bytes", "disk_bytes")
        assert monitor["usage"] == [{k: u[k] for k in shown}
                                    for u in helper.call("usage")["sessions"]]
        assert [u["id"] for u in monitor["usage"]] == [session["id"]]
        assert monitor["warm"] == helper.call("warm_list")["warm"]
        load = helper.call("load")
        assert set(monitor["load"]) == set(load)
        assert {k: v for k, v in monitor["load"].items() if not k.startswith(("load", "mem_"))} \
            == {k: v for k, v in load.items() if not k.startswith(("load", "mem_"))}
        assert monitor["load"]["sessions"] == 1
    with pytest.raises(HelperError) as refused:
        helper.call("monitor", brief="yes")
    assert refused.value.code == "bad_argument"
    helper.call("stop", id=session["id"])
    empty = helper.call("monitor")
    assert empty["sessions"] == [] and empty["usage"] == [] and empty["load"]["sessions"] == 0


def test_extend_moves_the_end_within_max_lifetime(make_helper_ops):
    helper = make_helper_ops(max_lifetime=100, default_lifetime=60)
    session = start_tiny(helper, lifetime_s=60)
    extended = helper.call("extend", id=session["id"], seconds=30, by="admin")
    assert extended["expires"] == session["expires"] + 30
    assert helper.call("status", id=session["id"])["expires"] == session["expires"] + 30
    with pytest.raises(HelperError) as too_far:
        helper.call("extend", id=session["id"], seconds=11)
    assert too_far.value.code == "bad_argument" and too_far.value.data["max"] == 10
    with pytest.raises(HelperError) as missing:
        helper.call("extend", id=session["id"])
    assert missing.value.data["field"] == "seconds"
    events = helper.call("events")["events"]
    assert [(e["event"], e["seconds"], e["by"]) for e in events if e["event"] == "extended"] == \
        [("extended", 30, "admin")]
    helper.call("stop", id=session["id"])


def test_an_extended_local_session_outlives_its_old_end(make_helper_ops):
    """extend moves the helper's own expiry check, not only the expires it shows: a 3-second
    session extended by 5 s still runs at 5 s and ends as expired after 8."""
    helper = make_helper_ops(max_lifetime=100, default_lifetime=60, expiry_interval=1)
    session = start_tiny(helper, lifetime_s=3)
    started = time.monotonic()
    extended = helper.call("extend", id=session["id"], seconds=5)
    assert extended["expires"] == session["expires"] + 5
    time.sleep(max(0.0, started + 5 - time.monotonic()))
    assert helper.call("status", id=session["id"])["state"] != "ended"
    ended = helper.wait_state(session["id"], "ended", timeout=15)
    assert ended["ended_reason"] == "expired", ended
    assert time.monotonic() - started >= 7


def relay_viewer(helper, session_id, share=None):
    """A viewer on the session's relay (its own link, or a share's way in), past the handshake."""
    name = f"s-{share}.sock" if share else "relay.sock"
    return RfbClient.unix(os.path.join(helper.session_dir(session_id), name)).handshake()


def test_the_relays_viewers_are_counted_per_kind(helper):
    """One source: the viewers the session's relay lists are the ones load and the metrics
    count (owner: the session's own link; control, view: its shares)."""
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running", timeout=20)
    view = helper.call("share", id=session["id"], kind="view")["id"]
    before = helper.call("metrics")["families"]
    viewers = [relay_viewer(helper, session["id"]), relay_viewer(helper, session["id"], view),
               relay_viewer(helper, session["id"], view)]
    procs.wait_until(lambda: len(helper.call("status", id=session["id"])["viewers"]) == 3, 5,
                     interval=0.05, what="3 viewers")
    viewers.pop().close()
    procs.wait_until(lambda: len(helper.call("status", id=session["id"])["viewers"]) == 2, 5,
                     interval=0.05, what="2 viewers")
    listed = helper.call("status", id=session["id"])["viewers"]
    assert sorted(v["kind"] for v in listed) == ["owner", "view"]
    families = helper.call("metrics")["families"]
    assert value(families, "qwd_viewers", kind="owner") == 1
    assert value(families, "qwd_viewers", kind="view") == 1
    assert value(families, "qwd_viewers", kind="control") == 0
    assert value(families, "qwd_viewer_connections_total", kind="view") - \
        value(before, "qwd_viewer_connections_total", kind="view") == 2
    load = helper.call("load")
    assert load["viewers"] == {"owner": 1, "control": 0, "view": 1}
    assert load["viewer_connects"]["view"] == 2
    # the viewer op of a relay outside the helper is gone: the helper's relay is the only one
    with pytest.raises(HelperError) as refused:
        helper.call("viewer", id=session["id"], event="joined", kind="view")
    assert refused.value.code == "unknown_op"
    helper.call("stop", id=session["id"])
    for v in viewers:
        assert v.closed()  # the session's end closes its viewers
        v.close()
    assert value(helper.call("metrics")["families"], "qwd_viewers", kind="owner") == 0


def test_a_failed_start_is_counted_failed_and_not_ok(make_helper_ops):
    helper = make_helper_ops(qemu_img="/bin/false")
    with pytest.raises(HelperError) as refused:
        start_tiny(helper)
    assert refused.value.code == "start_failed"
    families = helper.call("metrics")["families"]
    assert value(families, "qwd_session_starts_total", boot="cold", result="failed") == 1
    assert value(families, "qwd_session_starts_total", boot="cold", result="ok") == 0
    # a start that never ran has no latency and no journal entry
    latency = [f for f in families if f["name"] == "qwd_session_start_seconds"][0]
    assert all(s["count"] == 0 for s in latency["samples"])
    assert helper.call("events")["events"] == []


def test_viewers_that_leave_are_journaled_with_kind_share_and_time(helper):
    session = start_tiny(helper)
    helper.wait_state(session["id"], "running", timeout=20)
    share = helper.call("share", id=session["id"], kind="view")["id"]
    before = helper.call("metrics")["families"]
    watcher = relay_viewer(helper, session["id"], share)
    time.sleep(1.2)
    watcher.close()
    owner = relay_viewer(helper, session["id"])
    owner.close()

    def journaled():
        viewed = [(e["kind"], e.get("share"), e["seconds"], e["session"], e["owner"])
                  for e in helper.call("events")["events"] if e["event"] == "viewed"]
        return viewed if len(viewed) == 2 else None
    viewed = procs.wait_until(journaled, 5, interval=0.05, what="2 viewed entries")
    assert [v[:2] for v in viewed] == [("view", share), ("owner", None)]
    assert 1.2 <= viewed[0][2] < 5 and 0 <= viewed[1][2] < 1
    assert all(v[3:] == (session["id"], "alice") for v in viewed)
    after = helper.call("metrics")["families"]
    for kind in ("view", "owner"):
        assert value(after, "qwd_viewer_connections_total", kind=kind) - \
            value(before, "qwd_viewer_connections_total", kind=kind) == 1
        assert value(after, "qwd_viewers", kind=kind) == 0
    helper.call("stop", id=session["id"])


def test_qwdctl_answers_as_a_table_or_json(helper, qwdctl):
    session = start_tiny(helper, lifetime_s=600)
    helper.wait_state(session["id"], "running")
    time.sleep(1)
    table = qwdctl("sessions").stdout.splitlines()
    assert table[0].split() == ["ID", "OWNER", "MACHINE", "STATE", "BOOT", "WHERE", "LEFT",
                                "CPU%", "MEM_MiB", "DISK_MiB"]
    row = [line.split() for line in table[1:] if line.startswith(session["id"])][0]
    assert row[1:5] == ["alice", "tiny.qcow2", "running", "cold"]
    assert row[5] == "local/" + os.uname().nodename
    hours, minutes, seconds = map(int, row[6].split(":"))
    assert 500 <= hours * 3600 + minutes * 60 + seconds <= 600
    assert float(row[7]) > 0 and int(row[8]) > 1 and int(row[9]) >= 0
    listed = json.loads(qwdctl("sessions", "--json").stdout)["sessions"]
    mine = [s for s in listed if s["id"] == session["id"]][0]
    assert mine["where"] == row[5] and mine["usage"]["pss_bytes"] > 1024 * 1024
    assert mine["usage"]["disk_bytes"] > 0 and mine["usage"]["cpu_seconds"] > 0
    # extend: a line, or the session object
    extended = qwdctl("extend", session["id"], "60").stdout
    assert extended.startswith(f"session {session['id']} expires {session['expires'] + 60} (in ")
    again = json.loads(qwdctl("extend", session["id"], "30", "--json").stdout)
    assert again["expires"] == session["expires"] + 90
    bad = qwdctl("extend", session["id"], "soon", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("qwdctl: bad_argument: ")
    # events: one line per entry, or the events reply
    lines = qwdctl("events").stdout.splitlines()
    assert any(f"started  {session['id']} owner=alice" in line for line in lines)
    assert sum(f"extended {session['id']}" in line and "by=" in line for line in lines) == 2
    journal = json.loads(qwdctl("events", "--json").stdout)
    assert [e["event"] for e in journal["events"]] == ["started", "extended", "extended"]
    assert all(e["by"].endswith("(qwdctl)") for e in journal["events"][1:])
    later = json.loads(qwdctl("events", "--after", str(journal["last"]), "--json").stdout)
    assert later["events"] == []
    # metrics: the text format, or the families
    families = json.loads(qwdctl("metrics", "--json").stdout)["families"]
    assert value(families, "qwd_sessions", state="running") == 1
    helper.call("stop", id=session["id"])
