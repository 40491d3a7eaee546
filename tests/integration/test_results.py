"""A real `kto run` leaves a complete record, and its JUnit, KCIDB, HTML and summary agree
with the job files; a second run of the same matrix is compared with the first."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from .kto_cli import KTO_ARGV, REPO

pytestmark = pytest.mark.integration


def _kto(results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KTO_ARGV, *args],
        cwd=REPO,
        env={**os.environ, "KTO_RESULTS": str(results)},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _check_run(run: Path, expect: str) -> None:
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "finished" and record["reproducer"].startswith("kto run")
    assert record["versions"]["qemu"].startswith("QEMU emulator version")
    assert record["versions"]["compiler"] and record["host"]["cpus"]
    assert set(record["timings"]) >= {"build", "boot", "report"}
    (job_dir,) = [p for p in run.iterdir() if p.is_dir()]
    for name in ("job.json", "console.log", "findings.json", "build.log", "console.timing.tsv"):
        assert (job_dir / name).is_file(), name
    job = json.loads((job_dir / "job.json").read_text())
    assert job["status"] == expect
    assert record["inputs"]["commit"] == job["build"]["inputs"]["base_commit"]

    summary = json.loads((run / "summary.json").read_text())
    assert summary["counts"] == {expect: 1}

    xml = JUnitXml.fromfile(str(run / "junit.xml"))
    failed = sum(1 for s in xml for c in s for r in c.result if isinstance(r, Failure | Error))
    assert failed == (0 if expect == "PASS" else 1)
    assert sum(s.tests for s in xml) == 1

    from kcidb_io.schema import V5_3

    data = json.loads((run / "kcidb.json").read_text())
    V5_3.validate_exactly(data)
    assert [t["status"] for t in data["tests"]] == [expect]

    html = (run / "report.html").read_text()
    for href in re.findall(r'href="([^"#]+)"', html):
        assert (run / href).is_file(), href


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_run_records_and_reports(tmp_path: Path, arch: str) -> None:
    results = tmp_path / "results"
    first = _kto(results, "run", "--arch", arch)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "no earlier run of this matrix" in first.stdout
    run1 = (results / "latest").resolve()
    _check_run(run1, "PASS")

    # Another job on the same arch is not this job's baseline (not "NEW" against smoke).
    second = _kto(results, "run", "--arch", arch, "--", "sh", "-c", "exit 3")
    assert second.returncode == 3, second.stderr[-3000:]
    run2 = (results / "latest").resolve()
    assert run2 != run1 and run1.is_dir()  # a re-run never overwrites an old run
    assert "no earlier run of this matrix" in second.stdout, second.stdout
    _check_run(run2, "FAIL")
    # The same job again: compared with its own last run, still failing.
    third = _kto(results, "run", "--arch", arch, "--", "sh", "-c", "exit 3")
    assert third.returncode == 3, third.stderr[-3000:]
    assert f"regressions vs {run2.name}: tests 0 new, 0 fixed, 1 still" in third.stdout

    # Regenerating gives the same verdicts.
    before = json.loads((run2 / "summary.json").read_text())
    again = _kto(results, "report", run2.name)
    assert again.returncode == 0, again.stderr
    assert json.loads((run2 / "summary.json").read_text())["jobs"] == before["jobs"]


def test_ctrl_c_still_leaves_records_and_reports(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [*KTO_ARGV, "run", "--arch", "arm64", "--", "sleep", "300"],
        cwd=REPO,
        env={**os.environ, "KTO_RESULTS": str(results)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "test command started" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    # An interrupt is an infrastructure error (3), never a verdict of the kernel.
    assert proc.returncode == 3, out[-3000:]
    assert "Traceback" not in out
    run = (results / "latest").resolve()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted"
    summary = json.loads((run / "summary.json").read_text())
    assert [j["status"] for j in summary["jobs"]] == ["ERROR"]
    for name in ("junit.xml", "kcidb.json", "report.html"):
        assert (run / name).is_file()
