"""The matrix on a real Dask cluster on loopback: a scheduler and two workers (nanny + worker
process, as `kto workers run` starts them) started here, the same verdicts and the same
kernels as the local run, and a worker SIGKILLed while its job's QEMU runs: that job and its
QEMU are gone within seconds, and the job is run again on the other worker.

arm64 only, hotplug (2 s locally; 12 s on the cluster, so that the killed job would still
be running when it is checked), the tree as it is and a series from a directory (sent to
the worker as its content): the kernels test_matrix.py's first night built, so nothing
compiles in a warm cache."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.records.spec import JobSpec

from ..loopback_dask import free_port, loopback_cluster
from .kto_cli import REPO, kto

pytestmark = pytest.mark.integration

BANNER = REPO / "kernels" / "series" / "kto-banner"
GONE_WITHIN_S = 10
LONG_S = 12  # the cluster's hotplug: past GONE_WITHIN_S after the kill, under KVM too


def _procs() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, state, start time) of every process, from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d)] = (int(fields[1]), fields[0], fields[19])
    return out


def _descendants(pid: int) -> dict[int, str]:
    """pid -> start time of every process below `pid` (a pid and its start time name one
    process: a pid reused by another test's process is not this one)."""
    procs = _procs()
    kids: dict[int, list[int]] = {}
    for p, (ppid, _, _) in procs.items():
        kids.setdefault(ppid, []).append(p)
    out, todo = {}, [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out[c] = procs[c][2]
            todo.append(c)
    return out


def _alive(which: dict[int, str]) -> dict[int, str]:
    procs = _procs()
    return {
        p: t for p, t in which.items() if p in procs and procs[p][2] == t and procs[p][1] != "Z"
    }


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _records(run: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in run.glob("*/job.json")}


def test_cluster_matrix_matches_local_and_a_killed_worker_takes_its_job_with_it(
    tmp_path: Path,
) -> None:
    def matrix(duration: int) -> Path:
        m = tmp_path / f"d{duration}" / "dtest.yaml"
        m.parent.mkdir()
        m.write_text(
            "name: dtest\ntrees: [debian-6.1]\n"
            f"series: [none, {{name: banner, patches: {BANNER}}}]\n"
            f"arches: [arm64]\ntests: [{{name: hotplug, duration: {duration}}}]\n"
        )
        return m

    local = kto("matrix", str(matrix(2)), results=tmp_path / "local")
    assert local.returncode == 0, local.stdout + local.stderr[-3000:]
    expected = _records((tmp_path / "local" / "latest").resolve())
    assert len(expected) == 2

    t0 = time.monotonic()
    with loopback_cluster(2, nanny=True) as (address, nannies):
        results = tmp_path / "cluster"
        env = {**os.environ, "KTO_RESULTS": str(results)}
        # A job that would run on for longer than GONE_WITHIN_S after the kill: its end is
        # the kill's doing, not its own.
        m = matrix(LONG_S)
        run = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "matrix", str(m), "--scheduler", address],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            killed: dict[int, str] = {}
            deadline = time.monotonic() + 300
            while not killed and time.monotonic() < deadline and run.poll() is None:
                for nanny in nannies:
                    below = _descendants(nanny.pid)
                    if not any("qemu-system" in " ".join(_cmdline(p)) for p in below):
                        continue
                    # Its job's QEMU runs: the worker process (the nanny's child) and the
                    # nanny go at once, as in a host's OOM kill; nothing gets to clean up.
                    workers = [p for p in below if _procs().get(p, (0,))[0] == nanny.pid]
                    job = next(_cmdline(p) for p in below if "job" in _cmdline(p)[3:4])
                    for p in [*workers, nanny.pid]:
                        os.kill(p, signal.SIGKILL)
                    killed_at = time.monotonic()
                    killed = {p: t for p, t in below.items() if p not in workers}
                    folder = Path(job[job.index("job") + 2]).name
                    name = f"w{nannies.index(nanny) + 1}"
                    break
                time.sleep(0.1)
            assert killed, "no job's QEMU ever ran on a worker"
            # The worker's `kto job` and its QEMU (and whatever else ran below the worker) are
            # gone soon, while the matrix goes on: they died with their worker.
            while _alive(killed) and time.monotonic() - killed_at < GONE_WITHIN_S:
                time.sleep(0.1)
            left = {p: _cmdline(p)[:4] for p in _alive(killed)}
            gone_s = time.monotonic() - killed_at
            assert not left, f"{gone_s:.0f} s after the kill, still running: {left}"
            print(f"killed worker {name}: its job and QEMU gone {gone_s:.1f} s after the kill")
            out, err = run.communicate(timeout=600)
        finally:  # a failed check leaves no client, and no job of the killed worker
            if run.poll() is None:
                run.kill()
                run.communicate()
            for p in _alive(killed):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
    print(f"cluster matrix with a killed worker: {time.monotonic() - t0:.0f} s")
    assert run.returncode == 0, out + err[-3000:]
    got = _records((results / "latest").resolve())
    assert {k: r["status"] for k, r in got.items()} == {k: r["status"] for k, r in expected.items()}
    for k, rec in got.items():
        # The same kernel as the local run (the series arrived as the same content; the
        # build made the same trust decision, whose cache domain is part of the key); the
        # record says what was asked and where it ran, with that worker's versions.
        assert rec["build"]["key"] == expected[k]["build"]["key"], k
        assert rec["job"] == {**expected[k]["job"], "duration": LONG_S}
        assert rec["job_id"] == JobSpec.from_dict(rec["job"]).id
        assert rec["kto_version"] and rec["qemu"]["version"] and rec["build"]["compiler"]
    # The killed job has its record, from the worker that was not killed.
    assert got[folder]["worker"]["name"] != name, got[folder]["worker"]


def test_unreachable_scheduler_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = tmp_path / "dtest.yaml"
    m.write_text("name: dtest\ntrees: [debian-6.1]\narches: [x86_64]\ntests: [smoke]\n")
    monkeypatch.setenv("KTO_SCHEDULER_TIMEOUT", "2")  # nothing listens there: 15 s is no use
    res = kto("matrix", str(m), "--scheduler", f"tcp://127.0.0.1:{free_port()}", results=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "cannot reach the Dask scheduler" in res.stderr and "Traceback" not in res.stderr
