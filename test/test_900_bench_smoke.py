# SPDX-License-Identifier: Apache-2.0
"""A bench that cannot rot: every `make check` runs `bench/run --smoke` (one run per row, few
sessions, 1 s of wrk) and fails when the bench breaks. Its figures are printed, never asserted:
timings belong to bench/RESULTS.md, taken on a quiet machine (bench/README.md)."""
import json
import os
import subprocess
import sys

from qwdtest import env, procs

BENCH = os.path.join(env.SRCDIR, "bench", "run")
# One row of each section: each must have been measured, not skipped.
MEASURED = ("POST create → response",
            "POST create → RFB banner through the websocket URL",
            "stop → VM process and files gone",
            "form page with 0 sessions: requests/s",
            "3 concurrent creates, distinct users: created",
            "4 concurrent creates, one user: created",
            "POST create → guest answers on its console, warm (restored)",
            "POST create → guest answers on its console, cold boot",
            "POST create with a folder and a script → guest answers, warm",
            "PSS per idle warm clone (2 clones)",
            "of which TCG's translated code",
            "helper RSS, 2 sessions",
            "monitor page with 3 sessions: requests/s")
ENVIRONMENT = ("commit", "tree", "kernel", "thp", "ksm", "qemu", "tiny_vm", "load_at_start")


def bench_processes():
    return {pid for pid, _ in procs.processes_mentioning("/tmp/qwdb-")}


def test_bench_smoke_measures_every_section(tmp_path, capsys):
    figures = tmp_path / "smoke.json"
    before = bench_processes()
    run = subprocess.run([sys.executable, BENCH, "--smoke", "--accel", env.ACCEL,
                          "--json", str(figures)],
                         capture_output=True, text=True, timeout=900)
    with capsys.disabled():  # the figures, for whoever reads the run (never asserted)
        print("\n" + run.stdout)
    assert run.returncode == 0, f"bench/run --smoke failed:\n{run.stdout}\n{run.stderr}"
    assert "FAILED" not in run.stdout
    assert bench_processes() <= before, "the bench left processes behind"
    lines = [json.loads(line) for line in figures.read_text().splitlines()]
    ours = [line for line in lines if line["stack"] == "mod_qwd"]
    assert len(ours) == 1, lines
    rows = ours[0]["rows"]
    for key in MEASURED:
        assert rows.get(key, {}).get("values"), f"row not measured: {key}; rows: {sorted(rows)}"
    assert not ours[0]["failures"]
    for key in ENVIRONMENT:
        assert ours[0]["environment"].get(key) not in (None, "", "?"), key
