"""The matrix driver for real: builds shared by jobs, repeats, a seeded regression found
NEW with fail:runs on the second night, SIGINT mid-matrix and a resume that re-runs nothing
finished. arm64 kernels only (the cheapest incremental builds and boots), short workloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .kto_cli import REPO, kto

pytestmark = pytest.mark.integration

SERIES = REPO / "kernels" / "series"


def _matrix(path: Path, series: str, tests: str = "smoke, ") -> Path:
    path.write_text(
        f"""name: itest
trees: [debian-6.1]
series: [none, {{name: mm, patches: {SERIES / series}}}]
arches: [arm64]
tests: [{tests}{{name: hotplug, duration: 2}}]
repeats: 2
"""
    )
    return path


def _kto(results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kto(*args, results=results)


def _jobs(run: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in run.glob("*/job.json")}


def test_two_nights_a_regression_is_new_with_fail_runs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    # hotplug only: the regression is there, and smoke's jobs would add 8 boots
    m = _matrix(tmp_path / "itest.yaml", "kto-banner", tests="")
    first = _kto(results, "matrix", str(m))
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    run1 = (results / "latest").resolve()
    jobs = _jobs(run1)
    assert len(jobs) == 4 and {j["status"] for j in jobs.values()} == {"PASS"}
    assert "2 build(s)" in first.stderr  # one kernel per series, shared by tests and repeats
    # Night 2: the series named "mm" now breaks CPU offline.
    _matrix(m, "broken-offline-warn", tests="")
    second = _kto(results, "matrix", str(m))
    assert second.returncode == 1, second.stdout + second.stderr[-3000:]
    out = second.stdout
    assert "NEW" in out and "debian-6.1.mm.default.arm64.hotplug: WARNING in takedown_cpu" in out
    # Confirmed before it is reported: 2 more runs of the NEW cell (not "until it passes"),
    # and 2 of last night's kernel, still in the build cache: the kernel changed.
    assert "4:4 now vs 0:2 last time; 0:2 with last time's kernel, re-run now" in out, out
    assert "confirming 4 NEW failure run(s)" in second.stderr
    summary = json.loads(((results / "latest").resolve() / "summary.json").read_text())
    assert summary["status"] == "FAIL"


def test_sigint_mid_matrix_then_resume_runs_only_what_is_missing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    m = _matrix(tmp_path / "itest.yaml", "kto-banner")
    env = {**os.environ, "KTO_RESULTS": str(results)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "matrix", str(m)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    run_dir = None
    while time.monotonic() < deadline:  # wait until a job has finished and others run
        latest = results / "latest"
        if latest.exists():
            run_dir = latest.resolve()
            done = [j for j in _jobs(run_dir).values() if j.get("status") in ("PASS", "FAIL")]
            if done:
                break
        time.sleep(0.5)
    assert run_dir is not None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err[-3000:]
    assert "--resume" in out
    qemus = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True)
    assert qemus.stdout.strip() == "", "a process of the interrupted run outlived it"
    before = {k: j for k, j in _jobs(run_dir).items() if j.get("status") in ("PASS", "FAIL")}
    assert 0 < len(before) < 8
    resumed = _kto(results, "matrix", str(m), "--resume", run_dir.name)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr[-3000:]
    after = _jobs(run_dir)
    assert len(after) == 8 and {j["status"] for j in after.values()} == {"PASS"}
    for name, job in before.items():  # finished jobs were kept, not re-run
        assert after[name]["started"] == job["started"], name
    assert f"{len(before)} already done or SKIP" in resumed.stderr
