"""A NEW failure interrupted during its confirmation runs is confirmed when the night is
resumed: `--resume` re-runs what the confirmation had not finished, even though every job of
the matrix itself is done. The executor is replaced by one that writes the records a real
job writes (a FAIL with a finding), so the driver's own resume logic is what runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.matrix import driver
from orchestrator.matrix.spec import load_matrix

MATRIX = """name: resume-confirm
trees: [debian-6.1]
series: [none]
arches: [x86_64]
configs: [default]
tests: [{name: hotplug, duration: 2}]
"""
TITLE = "WARNING in takedown_cpu"


def _fail(run_dir: Path, job: driver.MatrixJob) -> None:
    d = run_dir / job.folder
    d.mkdir(parents=True, exist_ok=True)
    findings = [{"kind": "warning", "title": TITLE}]
    verdict = {"status": "FAIL", "reason": "finding", "title": TITLE, "findings": findings}
    rec = {"arch": "x86_64", "test": "hotplug", "status": "FAIL", "verdict": verdict}
    (d / "job.json").write_text(json.dumps({**rec, **job.extra, "outcome": {"test_rc": 0}}))
    (d / "findings.json").write_text(json.dumps({"findings": findings}))
    (d / "console.log").write_text("")


def test_resume_runs_the_confirmations_an_interrupt_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTO_RESULTS", str(tmp_path / "results"))
    (tmp_path / "m.yaml").write_text(MATRIX)
    m = load_matrix(tmp_path / "m.yaml")
    asked: list[list[str]] = []

    def first_night(run_dir: Path, jobs: list[driver.MatrixJob], *_: Any) -> None:
        asked.append([j.folder for j in jobs])
        if len(asked) == 2:  # the confirmation runs: Ctrl-C before any finishes
            raise KeyboardInterrupt
        for j in jobs:
            _fail(run_dir, j)

    monkeypatch.setattr(driver, "execute", first_night)
    night = driver.run_matrix(m, confirm=2)
    assert night.interrupted and len(asked) == 2, asked
    confirmations = asked[1]
    assert confirmations, "the NEW failure asked for no confirmation runs"

    resumed: list[list[str]] = []

    def resume(run_dir: Path, jobs: list[driver.MatrixJob], *_: Any) -> None:
        resumed.append([j.folder for j in jobs])
        for j in jobs:
            _fail(run_dir, j)

    monkeypatch.setattr(driver, "execute", resume)
    again = driver.run_matrix(m, night.run_dir, confirm=2)
    assert resumed == [confirmations], resumed  # the matrix's own job is not run again
    assert not again.interrupted
    (line,) = again.classified.lines if again.classified else []
    assert line.cls == "new" and str(line.now) == "3:3", line.text()
