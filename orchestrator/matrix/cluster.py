"""The matrix beyond one host: the same jobs on a Dask distributed cluster.

`kto matrix FILE --scheduler tcp://HOST:8786` submits one Dask task per job to a cluster
whose workers (`dask worker tcp://HOST:8786 --nthreads 1` on hosts with kto set up) each
run the job as a `kto job` process of their own: build (in the worker host's own cache;
no shared file system is assumed) and boot. The task returns the job folder's files and
the client writes them into its one run directory, so results never depend on where a job
ran.

Why two backends rather than a LocalCluster for the one-host default: the local pool
needs no server, counts a build's -j and a guest's vCPUs against the host's cores and
memory, and shares one build per kernel between jobs; a Dask worker runs one job at a time
(`--nthreads 1`) and builds what its job needs. The job itself is the same: `kto job`.

Dask facts this relies on: repeats are distinct tasks (`pure=False`, keys carry the run
and the job folder); there is no per-task timeout, so the job enforces its own limits and
kills its QEMU process group; a task whose worker dies is rescheduled elsewhere
(`allowed-failures`), and one that still cannot finish is an ERROR with the reason, never a
wait forever. Worker resources steer jobs when the workers declare them: `kvm=1` for jobs
that ask for KVM, `arch-<arch>=1` when any worker declares arch resources.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from orchestrator import atomic, progress
from orchestrator.errors import InfraError, KtoError, UserError
from orchestrator.records.layout import INITRD
from orchestrator.records.verdict import Status

MAX_FILE = 256 << 20  # a job folder's file larger than this stays on the worker


def remote_job(spec: dict[str, Any], extra: dict[str, Any], folder: str) -> dict[str, Any]:
    """Run on a Dask worker: the job in a scratch dir, its files back to the client."""
    import json

    from orchestrator.matrix.pool import kto_argv

    with tempfile.TemporaryDirectory(prefix="kto-dask-") as tmp:
        job_dir = Path(tmp) / folder
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        (Path(tmp) / "extra.json").write_text(json.dumps(extra))
        argv = kto_argv(
            "job",
            str(Path(tmp) / "spec.json"),
            str(job_dir),
            "--extra",
            str(Path(tmp) / "extra.json"),
        )
        repo = Path(__file__).resolve().parents[2]
        log = Path(tmp) / "kto.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                argv,
                cwd=repo,
                stdout=fh,
                stderr=fh,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            rc = proc.wait()
        finally:  # the worker is going away (or the task was cancelled): no orphan QEMU
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        files = {}
        for p in sorted(job_dir.rglob("*")) if job_dir.is_dir() else []:
            if p.is_file() and p.name != INITRD and p.stat().st_size <= MAX_FILE:
                files[str(p.relative_to(job_dir))] = p.read_bytes()
        files["kto.log"] = log.read_bytes()[-(1 << 20) :]
    return {"rc": rc, "files": files, "host": socket.gethostname(), "pid": os.getpid()}


def connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency of kto
        raise InfraError("dask distributed is not installed: run make setup") from exc
    # A refused connection is retried until the timeout: long enough for a scheduler
    # across a network, KTO_SCHEDULER_TIMEOUT (seconds) for one known to be near.
    raw = os.environ.get("KTO_SCHEDULER_TIMEOUT") or "15"
    try:
        timeout = float(raw)
    except ValueError:
        timeout = math.nan
    if not 0 < timeout < math.inf:
        raise UserError(
            f"KTO_SCHEDULER_TIMEOUT={raw!r} is not a number of seconds",
            hint="unset it (15 s) or set e.g. KTO_SCHEDULER_TIMEOUT=5",
        )
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise UserError(
            f"cannot reach the Dask scheduler at {address}: {exc}",
            hint="start it (`dask scheduler`) and its workers, or run without --scheduler "
            "(or with --fallback-local)",
        ) from exc


def _resources(client: Any, spec: dict[str, Any]) -> dict[str, int] | None:
    info = client.scheduler_info().get("workers", {})
    declared = {k for w in info.values() for k in (w.get("resources") or {})}
    wanted = {}
    if spec.get("boot", {}).get("accel") == "kvm" and "kvm" in declared:
        wanted["kvm"] = 1
    arch_key = f"arch-{spec['arch']}"
    if any(k.startswith("arch-") for k in declared):
        wanted[arch_key] = 1
    return wanted or None


def run_on_cluster(run_dir: Path, jobs: list[Any], address: str) -> None:
    """Every job on the cluster; each result written into run_dir as it comes back."""
    from distributed import as_completed

    from orchestrator.job.runner import record_stopped

    client = connect(address)
    try:
        futures = {}
        for j in jobs:
            spec = j.spec.to_dict()
            fut = client.submit(
                remote_job,
                spec,
                j.extra,
                j.folder,
                key=f"kto-{run_dir.name}-{j.folder}",
                pure=False,
                resources=_resources(client, spec),
            )
            futures[fut] = j
        progress.say(f"cluster {address}: {len(futures)} job(s) submitted")
        for fut in as_completed(futures):
            j = futures[fut]
            job_dir = run_dir / j.folder
            try:
                res = fut.result()
            except Exception as exc:  # lost with its workers beyond allowed-failures
                err = KtoError(f"the cluster could not run the job: {exc}")
                job_dir.mkdir(parents=True, exist_ok=True)
                record_stopped(j.plan, job_dir, Status.ERROR, err, "cluster", j.extra)
                progress.say(f"done  {j.folder}: ERROR on the cluster ({exc})")
                continue
            for name, data in res["files"].items():
                atomic.write_bytes(job_dir / name, data)
            progress.say(f"done  {j.folder}: exit {res['rc']} on {res['host']}")
    finally:
        client.close()
