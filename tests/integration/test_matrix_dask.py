"""The matrix on a real Dask cluster on loopback: a scheduler and two workers started here,
the same verdicts as the local run, and a worker SIGKILLed mid-job loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..loopback_dask import free_port, loopback_cluster
from .kto_cli import REPO, kto

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    res = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in res.stdout.split()]


def _verdicts(run: Path) -> dict[str, str]:
    return {p.parent.name: json.loads(p.read_text())["status"] for p in run.glob("*/job.json")}


def _kto(results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kto(*args, results=results)


def test_cluster_matrix_matches_local_and_survives_a_killed_worker(tmp_path: Path) -> None:
    m = tmp_path / "dtest.yaml"
    m.write_text(
        "name: dtest\ntrees: [debian-6.1]\narches: [x86_64, arm64]\n"
        "tests: [smoke, {name: hotplug, duration: 2}]\n"
    )
    local = _kto(tmp_path / "local", "matrix", str(m))
    assert local.returncode == 0, local.stdout + local.stderr[-3000:]
    expected = _verdicts((tmp_path / "local" / "latest").resolve())
    assert len(expected) == 4

    with loopback_cluster(2) as (address, workers):
        results = tmp_path / "cluster"
        env = {**os.environ, "KTO_RESULTS": str(results)}
        run = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "matrix", str(m), "--scheduler", address],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = None
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            for w in workers:
                if _children(w.pid):  # a `kto job` of this worker is running
                    os.kill(w.pid, signal.SIGKILL)
                    killed = w
                    break
            time.sleep(0.2)
        assert killed is not None, "no job ever started on a worker"
        out, err = run.communicate(timeout=1800)
        assert run.returncode == 0, out + err[-3000:]
        got = _verdicts((results / "latest").resolve())
        assert got == expected
        time.sleep(3)
        left = subprocess.run(["pgrep", "-f", "kto-dask-"], capture_output=True, text=True)
        assert left.stdout.strip() == "", "a job of the killed worker outlived it"


def test_unreachable_scheduler_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = tmp_path / "dtest.yaml"
    m.write_text("name: dtest\ntrees: [debian-6.1]\narches: [x86_64]\ntests: [smoke]\n")
    monkeypatch.setenv("KTO_SCHEDULER_TIMEOUT", "2")  # nothing listens there: 15 s is no use
    res = _kto(tmp_path / "r", "matrix", str(m), "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert res.returncode == 2, res.stderr
    assert "cannot reach the Dask scheduler" in res.stderr and "Traceback" not in res.stderr
