"""A job the pool stopped mid-run is run again by `kto matrix --resume`, even when its
record does not say it was interrupted (seen in CI: Ctrl-C landed as the job's QEMU
started, and the job wrote "ERROR: QEMU exited before userspace was reached"; the resumed
run kept that as a finished job and the night ended with an ERROR no kernel caused).
The pool and its processes are real; the task is a script that writes such a record when
the pool stops it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.matrix import driver
from orchestrator.matrix.pool import Pool, Task
from orchestrator.matrix.spec import load_matrix

MATRIX = """name: resume-stopped
trees: [debian-6.1]
series: [none]
arches: [x86_64]
configs: [default]
tests: [{name: smoke}]
"""

# Its record is written as a job stopped at the wrong moment writes it: an ERROR that does
# not say "interrupted". Then, ready, it asks the driver to stop (Ctrl-C on the terminal).
STOPPED_JOB = """
import json, os, signal, sys, time
d = sys.argv[1]
def stop(*_):
    os.makedirs(d, exist_ok=True)
    verdict = {"status": "ERROR", "reason": "QEMU exited before userspace was reached"}
    rec = {"arch": "x86_64", "test": "smoke", "status": "ERROR", "verdict": verdict,
           "outcome": {"killed": None}}
    with open(os.path.join(d, "job.json"), "w") as f:
        json.dump(rec, f)
    open(os.path.join(d, "console.log"), "w").close()
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
os.kill(os.getppid(), signal.SIGINT)
time.sleep(60)
"""


# A job that finished (its PASS record is written) and was still exiting when the driver
# was stopped: its verdict stands (seen in CI: such a PASS was run again on resume).
FINISHED_JOB = """
import json, os, signal, sys, time
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
verdict = {"status": "PASS", "reason": "test passed"}
rec = {"arch": "x86_64", "test": "smoke", "status": "PASS", "verdict": verdict, "outcome": {}}
with open(os.path.join(d, "job.json"), "w") as f:
    json.dump(rec, f)
open(os.path.join(d, "console.log"), "w").close()
time.sleep(0.05)  # the record is older than the stop
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
os.kill(os.getppid(), signal.SIGINT)
time.sleep(60)
"""


def _interrupted_night(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> driver.MatrixResult:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    (tmp_path / "m.yaml").write_text(MATRIX)
    m = load_matrix(tmp_path / "m.yaml")

    def schedule(run_dir: Path, jobs: list[driver.MatrixJob], pool: Pool) -> None:
        for j in jobs:
            argv = [sys.executable, "-c", script, str(run_dir / j.folder)]
            pool.add(Task(j.folder, argv, 1, 10, tmp_path / f"{j.folder}.log"))

    monkeypatch.setattr(driver, "schedule", schedule)
    return driver.run_matrix(m)


def test_a_job_that_finished_as_the_pool_stopped_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    night = _interrupted_night(tmp_path, monkeypatch, FINISHED_JOB)
    assert night.interrupted
    (job_dir,) = [
        night.run_dir / j.folder for j in driver.plan_jobs(load_matrix(tmp_path / "m.yaml"))
    ]
    assert driver.finished(job_dir)


def test_a_job_the_pool_stopped_runs_again_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    night = _interrupted_night(tmp_path, monkeypatch, STOPPED_JOB)
    m = load_matrix(tmp_path / "m.yaml")
    assert night.interrupted
    (folder,) = [j.folder for j in driver.plan_jobs(m)]
    job_dir = night.run_dir / folder
    assert json.loads((job_dir / "job.json").read_text())["status"] == "ERROR"
    assert not driver.finished(job_dir)

    resumed: list[list[str]] = []

    def passes(run_dir: Path, jobs: list[driver.MatrixJob], *_: Any) -> None:
        resumed.append([j.folder for j in jobs])
        for j in jobs:
            d = run_dir / j.folder
            d.mkdir(parents=True, exist_ok=True)
            verdict = {"status": "PASS", "reason": "test passed"}
            rec = {"arch": "x86_64", "test": "smoke", "status": "PASS", "verdict": verdict}
            (d / "job.json").write_text(json.dumps({**rec, **j.extra, "outcome": {}}))
            (d / "console.log").write_text("")

    monkeypatch.setattr(driver, "execute", passes)
    again = driver.run_matrix(m, night.run_dir)
    assert resumed == [[folder]]
    assert not again.interrupted and again.counts == {"PASS": 1}
    assert driver.finished(job_dir)
