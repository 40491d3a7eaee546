"""What the matrix sends a Dask worker, and what the client keeps, without a cluster: a fake
client records every submit and runs the task in-process, with a stand-in `kto job`.

Nothing sent may name a path of the client (a second host has none of its disk): series and
fragments travel as content, the last-kernel confirmation as the inputs that build it. The
client's job.json still says what was asked; a job that cannot be sent, that ends without a
verdict, or that no worker can run is an ERROR that says why, never a lost job or a hang."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.build.kernel import resolve_fragments
from orchestrator.build.patches import Series, load_dir
from orchestrator.job.plan import plan_job
from orchestrator.matrix import cluster
from orchestrator.matrix.driver import MatrixJob, _previous_kernel
from orchestrator.paths import REPO_ROOT, cache_dir
from orchestrator.records.spec import JobSpec

BANNER = REPO_ROOT / "kernels" / "series" / "kto-banner"

# A stand-in for `kto job SPEC JOB_DIR --extra EXTRA --die-with-parent`: writes the record
# a real one would (the spec it was given, build inputs naming the series it read) and what
# it saw (argv, the parent pid it was told, the content of the files the spec names).
FAKE_JOB = r"""
import hashlib, json, os, sys
from pathlib import Path
args = sys.argv[1:]
if os.environ.get("FAKE_JOB_DIES"):
    print("Traceback: something broke", file=sys.stderr)
    sys.exit(3)
spec = json.loads(Path(args[1]).read_text())
job_dir = Path(args[2])
job_dir.mkdir(parents=True)
extra = json.loads(Path(args[args.index("--extra") + 1]).read_text())
def digests(p):
    p = Path(p)
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    return {(x.name if p.is_file() else str(x.relative_to(p))):
            hashlib.sha256(x.read_bytes()).hexdigest() for x in files}
patches = spec.get("patches")
seen = {
    "argv": args,
    "parent_env": os.environ.get("KTO_PARENT_PID"),
    "ppid": os.getppid(),
    "series": digests(patches) if patches else None,
    "fragments": [digests(f) for f in spec["fragments"] if os.path.isfile(f)],
}
source = str(Path(patches).resolve()) if patches else ""
rec = {
    **extra,
    "job": spec,
    "status": "PASS",
    "build": {"key": "k1", "reproducer": f"kto build --patches {source}",
              "inputs": {"series": {"source": source, "kind": "dir"}}},
}
(job_dir / "job.json").write_text(json.dumps(rec))
(job_dir / "seen.json").write_text(json.dumps(seen))
"""


class FakeFuture:
    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error, self.cancelled = value, error, False

    def result(self) -> Any:
        if self.error:
            raise self.error
        return self.value

    def cancel(self) -> None:
        self.cancelled = True


class FakeClient:
    """Runs each task at submit (when `run`), or never (a cluster with no worker)."""

    def __init__(self, run: bool = True, workers: dict[str, Any] | None = None) -> None:
        self.run, self.submitted, self.futures = run, [], []  # type: ignore[var-annotated]
        self.workers = {"tcp://w1": {"resources": {}}} if workers is None else workers

    def submit(self, fn: Any, *args: Any, **kw: Any) -> FakeFuture:
        self.submitted.append((fn, args, kw))
        if not self.run:
            fut = FakeFuture()
        else:
            try:
                fut = FakeFuture(fn(*args))
            except Exception as exc:  # the task's error goes to the client, as in Dask
                fut = FakeFuture(error=exc)
        self.futures.append(fut)
        return fut

    def scheduler_info(self) -> dict[str, Any]:
        return {"workers": self.workers}

    def close(self) -> None:
        pass


class FakeAsCompleted:
    def __init__(self, futures: list[FakeFuture], client: FakeClient) -> None:
        self.ready = [f for f in futures if client.run]

    def next_batch(self, block: bool = True) -> list[FakeFuture]:
        out, self.ready = self.ready, []
        return out


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    import distributed

    client = FakeClient()
    monkeypatch.setattr(cluster, "connect", lambda address: client)
    monkeypatch.setattr(distributed, "as_completed", lambda fs: FakeAsCompleted(fs, client))
    monkeypatch.setattr(
        "orchestrator.matrix.pool.kto_argv", lambda *a: [sys.executable, "-c", FAKE_JOB, *a]
    )
    return client


def _job(spec: JobSpec, folder: str, **extra: Any) -> MatrixJob:
    return MatrixJob(None, spec, plan_job(spec), folder, {"cell": {"id": folder}, **extra})


def _digests(p: Path) -> dict[str, str]:
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    return {
        (x.name if p.is_file() else str(x.relative_to(p))): hashlib.sha256(
            x.read_bytes()
        ).hexdigest()
        for x in files
    }


def _old_night(tmp_path: Path, series: Path, frag: Path) -> tuple[Path, JobSpec]:
    """Two nights of one cell: last time's r0 record (its build's inputs as build.json
    states them), tonight's with another kernel."""
    results = tmp_path / "results"
    spec = JobSpec(arch="arm64", tree="debian-6.1", patches=str(series), fragments=(str(frag),))
    plan = plan_job(spec)
    frags = resolve_fragments(plan.profile, list(plan.fragments))
    inputs = {
        "tree": "debian-6.1",
        "base_commit": "0" * 40,  # this host's commit of the tarball: not what is sent
        "describe": "debian-6.1-6.1.192-3",
        "series": {"kind": "dir", "hash": Series(str(series), "dir", load_dir(series)).hash},
        "fragments": [{"name": f.name, "path": str(f.path), "sha256": f.sha256()} for f in frags],
    }
    for rid, key in (("20261201-010000-matrix-n-0001", "k-old"), ("tonight", "k-now")):
        d = results / rid / "cell-r0"
        d.mkdir(parents=True)
        rec = {"job": spec.to_dict(), "kernel": str(cache_dir() / "builds" / key / "Image")}
        rec["build"] = {"key": key, "inputs": inputs}
        (d / "job.json").write_text(json.dumps(rec))
    return results / "tonight", spec


def test_nothing_sent_names_a_client_path_and_the_record_says_what_was_asked(
    tmp_path: Path, fake_cluster: FakeClient
) -> None:
    series_dir = shutil.copytree(BANNER, tmp_path / "series" / "banner")
    mbox = tmp_path / "one.mbx"
    shutil.copy(BANNER / "0001-init-print-a-kto-banner-line.patch", mbox)
    frag = tmp_path / "frags" / "extra.config"
    frag.parent.mkdir()
    frag.write_text("CONFIG_PRINTK_TIME=y\n")
    run_dir, old_spec = _old_night(tmp_path, series_dir, frag)
    before = _previous_kernel(run_dir, "cell", ["20261201-010000-matrix-n-0001"])
    assert before is not None
    _, key, inputs = before
    # The kernel of last time as the inputs that build it: a tag, not this host's commit.
    assert key == "k-old" and inputs["ref"] == "debian-6.1-6.1.192-3"
    assert inputs["patches"] == str(series_dir) and "kernel" not in inputs
    smoke = JobSpec(arch="arm64", test="smoke")  # the default tree: a name is sent
    jobs = [
        _job(replace(old_spec, **inputs), "cell-lastkernel-r0", previous_kernel={"key": key}),
        _job(replace(smoke, patches=str(mbox)), "mbox-r0"),
        _job(smoke, "plain-r0"),
    ]

    cluster.run_on_cluster(run_dir, jobs, "tcp://scheduler:8786")

    assert len(fake_cluster.submitted) == 3
    client_paths = [tmp_path, run_dir, series_dir, mbox, frag, cache_dir(), REPO_ROOT]
    for fn, args, kw in fake_cluster.submitted:
        blob = pickle.dumps((args, kw))
        for p in client_paths:
            assert str(p).encode() not in blob, f"{p} sent to a worker: {args}"
        assert fn is cluster.remote_job
    for j in jobs:
        rec = json.loads((run_dir / j.folder / "job.json").read_text())
        seen = json.loads((run_dir / j.folder / "seen.json").read_text())
        # The worker ran the same content from its own scratch dir, tied to its parent.
        assert "--die-with-parent" in seen["argv"] and seen["parent_env"] == str(seen["ppid"])
        if j.spec.patches:
            assert seen["series"] == _digests(Path(j.spec.patches))
            assert not seen["argv"][1].startswith(str(tmp_path))
        # The client's record: the spec as asked, the series by its path here.
        assert rec["job"] == json.loads(json.dumps(j.spec.to_dict()))
        assert rec["job_id"] == j.spec.id
        source = str(Path(j.spec.patches).resolve()) if j.spec.patches else ""
        assert rec["build"]["inputs"]["series"]["source"] == source
        assert rec["build"]["reproducer"] == f"kto build --patches {source}"
        assert rec["worker"]["host"] and rec["cell"] == {"id": j.folder}
    seen = json.loads((run_dir / "cell-lastkernel-r0" / "seen.json").read_text())
    assert seen["fragments"] == [_digests(frag)]
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"{cluster.SCRATCH}*/seen.json"))


def test_last_kernel_is_not_rerun_when_its_inputs_changed(tmp_path: Path) -> None:
    series_dir = shutil.copytree(BANNER, tmp_path / "series" / "banner")
    frag = tmp_path / "extra.config"
    frag.write_text("CONFIG_PRINTK_TIME=y\n")
    run_dir, _ = _old_night(tmp_path, series_dir, frag)
    history = ["20261201-010000-matrix-n-0001"]
    assert _previous_kernel(run_dir, "cell", history) is not None
    # A commit past the tarball's tag exists on this host only: pinned by its hash.
    old = run_dir.parent / history[0] / "cell-r0" / "job.json"
    rec = json.loads(old.read_text())
    rec["build"]["inputs"]["describe"] = "debian-6.1-6.1.192-3-1-g0123abc"
    old.write_text(json.dumps(rec))
    before = _previous_kernel(run_dir, "cell", history)
    assert before is not None and before[2]["ref"] == "0" * 40
    frag.write_text("CONFIG_PRINTK_TIME=n\n")
    assert _previous_kernel(run_dir, "cell", history) is None  # not "last time's kernel"
    frag.write_text("CONFIG_PRINTK_TIME=y\n")
    patch = series_dir / "0001-init-print-a-kto-banner-line.patch"
    patch.write_text(patch.read_text().replace("kto", "otk"))
    assert _previous_kernel(run_dir, "cell", history) is None


def test_a_job_that_cannot_be_sent_is_an_error_naming_why(
    tmp_path: Path, fake_cluster: FakeClient, tiny_repo: Path
) -> None:
    run_dir = tmp_path / "run"
    jobs = [
        _job(JobSpec(arch="arm64", tree=str(tiny_repo)), "path-tree-r0"),
        _job(JobSpec(arch="arm64", test="smoke"), "fine-r0"),
    ]
    cluster.run_on_cluster(run_dir, jobs, "tcp://scheduler:8786")
    assert len(fake_cluster.submitted) == 1
    rec = json.loads((run_dir / "path-tree-r0" / "job.json").read_text())
    assert rec["status"] == "ERROR" and "is a path on this host" in rec["error"]["message"]
    assert json.loads((run_dir / "fine-r0" / "job.json").read_text())["status"] == "PASS"


def test_a_job_that_ends_without_a_verdict_is_an_error_with_its_log(
    tmp_path: Path, fake_cluster: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JOB_DIES", "1")
    run_dir = tmp_path / "run"
    cluster.run_on_cluster(run_dir, [_job(JobSpec(arch="arm64"), "j-r0")], "tcp://s:8786")
    rec = json.loads((run_dir / "j-r0" / "job.json").read_text())
    assert rec["status"] == "ERROR" and "exited 3 with no verdict" in rec["error"]["message"]
    assert "something broke" in rec["error"]["message"]


def test_no_worker_that_can_run_it_is_an_error_not_a_hang(
    tmp_path: Path, fake_cluster: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_cluster.run, fake_cluster.workers = False, {}
    monkeypatch.setenv("KTO_WORKERS_TIMEOUT", "0.3")
    monkeypatch.setattr(cluster, "CHECK_S", 0.05)
    monkeypatch.setattr(cluster, "POLL_S", 0.01)
    run_dir = tmp_path / "run"
    t0 = time.monotonic()
    cluster.run_on_cluster(run_dir, [_job(JobSpec(arch="arm64"), "j-r0")], "tcp://s:8786")
    assert time.monotonic() - t0 < 5
    rec = json.loads((run_dir / "j-r0" / "job.json").read_text())
    assert rec["status"] == "ERROR" and "(none connected)" in rec["error"]["message"]
    assert fake_cluster.futures[0].cancelled


def test_a_job_whose_parent_died_while_it_started_stops_at_once() -> None:
    """KTO_PARENT_PID names the starter; a process that is not (any more) its parent is
    gone: the job stops before it starts anything, not never (it would watch init)."""
    code = (
        "import time; from orchestrator.orphan import die_with_parent; "
        "die_with_parent(); time.sleep(30)"
    )
    env = {**os.environ, "KTO_PARENT_PID": "1"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, start_new_session=True,
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGTERM and time.monotonic() - t0 < 10
    assert "is gone" in proc.stderr
