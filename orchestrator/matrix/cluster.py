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

What a worker is sent names nothing on the client's disk (a second host has none of it):
the tree by its kernels/trees.yaml name (the default applied on the client), fragments by
name, and a patch series or fragment given as a file or directory as its content, written
into the job's scratch dir on the worker as the same kind of thing (a file stays a file, a
directory a directory: the build's trust policy sees what a local job would). A tree given
as a path, or a prebuilt kernel, cannot be sent: such a job is an ERROR that says so. The
record the client keeps names the job as it was asked (its JobSpec); the files the worker
wrote say what ran there: kto's, QEMU's and the compiler's versions of that worker, and
under `worker` its host and Dask name.

Dask facts this relies on: repeats are distinct tasks (`pure=False`, keys carry the run
and the job folder); there is no per-task timeout, so the job enforces its own limits and
kills its QEMU process group; a task whose worker dies is rescheduled elsewhere
(`allowed-failures`), and one that still cannot finish is an ERROR with the reason, as is
one no connected worker can run for KTO_WORKERS_TIMEOUT seconds: never a wait forever.
The `kto job` of a task dies with its worker process (`--die-with-parent`: a SIGKILLed
worker leaves no job or QEMU running). Worker resources steer jobs when the workers
declare them: `kvm=1` for jobs that ask for KVM, `arch-<arch>=1` when any worker declares
arch resources.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import atomic, progress
from orchestrator.errors import InfraError, KtoError, UserError
from orchestrator.records.layout import INITRD, JOB_RECORD
from orchestrator.records.verdict import Status

if TYPE_CHECKING:
    from orchestrator.matrix.jobs import MatrixJob

MAX_FILE = 256 << 20  # a job folder's file larger than this stays on the worker
MAX_SENT = 64 << 20  # a series or fragment larger than this is not sent to a worker
SCRATCH = "kto-dask-"  # a task's scratch dir on the worker: <tmp>/kto-dask-XXXX
STALE_S = 60  # a scratch dir no task holds, this old, was left by a killed worker
POLL_S = 0.5  # how often the client looks for finished tasks
CHECK_S = 5.0  # how often it asks the scheduler which workers are there


class NotPortable(UserError):
    """A job whose spec names something only the client has (a tree path, a kernel)."""


def portable(j: MatrixJob) -> dict[str, Any]:
    """What the worker is sent for one job: the spec with every client path replaced by a
    path relative to the worker's scratch dir (`in_scratch` lists those fields), the files
    to write there, the record's extra fields and the folder name."""
    spec = j.spec.to_dict()
    files: dict[str, bytes] = {}
    in_scratch: list[str] = []
    if j.spec.kernel:
        raise NotPortable(
            f"the job boots a kernel given as a path on this host ({j.spec.kernel}): a "
            "cluster worker does not have it",
            hint="give the tree, commit, series and config that build it",
        )
    if not j.plan.tree:
        raise NotPortable("the job names no tree to build on the worker")
    if not _named_tree(j.plan.tree):
        raise NotPortable(
            f"tree {j.plan.tree} is a path on this host: a cluster worker cannot build it",
            hint="name it in kernels/trees.yaml on every worker host (kind: git) and use "
            "the name, or run without --scheduler",
        )
    spec["tree"] = j.plan.tree  # the client's default tree, not the worker's
    if j.spec.patches:
        path = Path(j.spec.patches).expanduser()
        if path.is_file() or path.is_dir():
            spec["patches"] = _ship(path, Path("series") / path.name, files)
            in_scratch.append("patches")
        # else a git range A..B: commits of the tree, which the worker resolves in its own
    frags = list(spec["fragments"])
    for i, f in enumerate(frags):
        path = Path(f).expanduser()
        if path.is_file():  # a path: find_fragment takes a file before a name
            frags[i] = _ship(path, Path("fragments") / str(i) / path.name, files)
            in_scratch.append(f"fragments.{i}")
    spec["fragments"] = frags
    if sum(len(b) for b in files.values()) > MAX_SENT:
        raise NotPortable(f"the job's series and fragments are over {MAX_SENT >> 20} MiB")
    return {
        "spec": spec,
        "files": files,
        "in_scratch": in_scratch,
        "extra": j.extra,
        "folder": j.folder,
    }


def _named_tree(tree: str) -> bool:
    from orchestrator.build.trees import load_tree_specs

    return tree in load_tree_specs()[0]


def _ship(path: Path, rel: Path, files: dict[str, bytes]) -> str:
    """`path`'s content into `files` under `rel`; `rel` is what the spec names."""
    if path.is_file():
        files[str(rel)] = path.read_bytes()
        return str(rel)
    for p in sorted(path.rglob("*")):
        if p.is_file():
            files[str(rel / p.relative_to(path))] = p.read_bytes()
    return str(rel)


def _materialize(payload: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """On the worker: the payload's files written into `scratch`, and the spec whose
    scratch-relative fields now name them."""
    for rel, data in payload["files"].items():
        dest = scratch / rel
        if scratch.resolve() not in dest.resolve().parents:
            raise InfraError(f"a sent file would land outside the scratch dir: {rel}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    spec = json.loads(json.dumps(payload["spec"]))
    for field in payload["in_scratch"]:
        name, _, index = field.partition(".")
        if index:
            spec[name][int(index)] = str(scratch / spec[name][int(index)])
        else:
            spec[name] = str(scratch / spec[name])
    return spec


def _sweep_scratch() -> None:
    """Remove the scratch dirs of tasks whose worker was killed (their lock is free)."""
    now = time.time()
    for d in Path(tempfile.gettempdir()).glob(SCRATCH + "*"):
        try:
            if now - d.stat().st_mtime < STALE_S:
                continue  # maybe a task between mkdtemp and its lock
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a running task holds it
        finally:
            os.close(fd)
        shutil.rmtree(d, ignore_errors=True)


def _worker_name() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return None  # not in a Dask worker (a test calls this directly)


def remote_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run on a Dask worker: the job in a scratch dir, its files back to the client."""
    from orchestrator.matrix.pool import kto_argv
    from orchestrator.orphan import PARENT_ENV

    _sweep_scratch()
    tmp = Path(tempfile.mkdtemp(prefix=SCRATCH))
    held = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # this task's: _sweep_scratch leaves it alone
        job_dir = tmp / payload["folder"]
        spec = _materialize(payload, tmp)
        worker = {"host": socket.gethostname(), "name": _worker_name()}
        (tmp / "spec.json").write_text(json.dumps(spec))
        (tmp / "extra.json").write_text(json.dumps({**payload["extra"], "worker": worker}))
        argv = kto_argv(
            "job",
            str(tmp / "spec.json"),
            str(job_dir),
            "--extra",
            str(tmp / "extra.json"),
            # The job is in its own session (a Ctrl-C or a killpg of the worker's group
            # does not reach it): without this a SIGKILLed worker would leave it and its
            # QEMU running. The pid closes the gap while `kto job` starts (orphan.py).
            "--die-with-parent",
        )
        repo = Path(__file__).resolve().parents[2]
        log = tmp / "kto.log"
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                argv,
                cwd=repo,
                env=env,
                stdout=fh,
                stderr=fh,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            rc = proc.wait()
        finally:  # the task was cancelled (or the worker is closing): no orphan QEMU
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
    finally:
        os.close(held)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "rc": rc,
        "files": files,
        "host": worker["host"],
        "pid": os.getpid(),
        # Where each sent file was on the worker, as given and resolved (build.json
        # records a series by its resolved path): the client maps them back.
        "sent": {
            f: sorted({_field(spec, f), str(Path(_field(spec, f)).resolve())})
            for f in payload["in_scratch"]
        },
    }


def _field(spec: dict[str, Any], field: str) -> str:
    name, _, index = field.partition(".")
    return str(spec[name][int(index)] if index else spec[name])


def connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency of kto
        raise InfraError("dask distributed is not installed: run make setup") from exc
    # A refused connection is retried until the timeout: long enough for a scheduler
    # across a network, KTO_SCHEDULER_TIMEOUT (seconds) for one known to be near.
    timeout = _seconds("KTO_SCHEDULER_TIMEOUT", 15, "KTO_SCHEDULER_TIMEOUT=5")
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise UserError(
            f"cannot reach the Dask scheduler at {address}: {exc}",
            hint="start it (`dask scheduler`) and its workers, or run without --scheduler "
            "(or with --fallback-local)",
        ) from exc


def _seconds(var: str, default: float, example: str) -> float:
    raw = os.environ.get(var) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise UserError(
            f"{var}={raw!r} is not a number of seconds",
            hint=f"unset it ({default:g} s) or set e.g. {example}",
        )
    return value


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


def _able(workers: dict[str, Any], wanted: dict[str, int] | None) -> bool:
    """Some connected worker declares every resource the task asks for."""
    return any(
        all((w.get("resources") or {}).get(k, 0) >= v for k, v in (wanted or {}).items())
        for w in workers.values()
    )


def _error(run_dir: Path, j: MatrixJob, message: str, hint: str | None = None) -> None:
    from orchestrator.job.runner import record_stopped

    job_dir = run_dir / j.folder
    job_dir.mkdir(parents=True, exist_ok=True)
    record_stopped(j.plan, job_dir, Status.ERROR, KtoError(message, hint), "cluster", j.extra)
    progress.say(f"done  {j.folder}: ERROR on the cluster ({message.splitlines()[0]})")


def _back(run_dir: Path, j: MatrixJob, res: dict[str, Any]) -> None:
    """A finished task's files into the run dir; job.json names the job as the client
    asked for it (its spec), the sent series and fragments by their paths here."""
    job_dir = run_dir / j.folder
    files = dict(res["files"])
    raw = files.pop(JOB_RECORD, None)
    for name, data in files.items():
        atomic.write_bytes(job_dir / name, data)
    record = None
    with contextlib.suppress(ValueError):
        record = json.loads(raw) if raw else None
    if not isinstance(record, dict) or record.get("status") in (None, "RUNNING"):
        # `kto job` died before its verdict (killed, out of memory, a crash).
        log = res["files"].get("kto.log", b"").decode(errors="replace")
        tail = "\n".join(log.splitlines()[-12:])
        _error(run_dir, j, f"kto job on {res['host']} exited {res['rc']} with no verdict\n{tail}")
        return
    given = j.spec.to_dict()
    here = {
        there: str(Path(_field(given, f)).expanduser().resolve())
        for f, paths in res.get("sent", {}).items()
        for there in paths
    }
    record = _unscratch(record, here)
    record.update(job=j.spec.to_dict(), job_id=j.spec.id)
    atomic.write_json(job_dir / JOB_RECORD, record)
    progress.say(f"done  {j.folder}: exit {res['rc']} on {res['host']}")


def _unscratch(obj: Any, paths: dict[str, str]) -> Any:
    """Every string naming a sent file on the worker names it as the client gave it."""
    if isinstance(obj, str):
        for worker_path, client_path in paths.items():
            obj = obj.replace(worker_path, client_path)
        return obj
    if isinstance(obj, dict):
        return {k: _unscratch(v, paths) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unscratch(v, paths) for v in obj]
    return obj


def run_on_cluster(run_dir: Path, jobs: list[MatrixJob], address: str) -> None:
    """Every job on the cluster; each result written into run_dir as it comes back."""
    from distributed import as_completed

    grace = _seconds("KTO_WORKERS_TIMEOUT", 300, "KTO_WORKERS_TIMEOUT=60")
    payloads = {}
    for j in jobs:
        try:
            payloads[j.folder] = portable(j)
        except NotPortable as exc:
            _error(run_dir, j, exc.message, exc.hint)
    client = connect(address)
    try:
        pending: dict[Any, tuple[MatrixJob, dict[str, int] | None]] = {}
        for j in jobs:
            if j.folder not in payloads:
                continue
            wanted = _resources(client, payloads[j.folder]["spec"])
            fut = client.submit(
                remote_job,
                payloads[j.folder],
                key=f"kto-{run_dir.name}-{j.folder}",
                pure=False,
                resources=wanted,
            )
            pending[fut] = (j, wanted)
        progress.say(f"cluster {address}: {len(pending)} job(s) submitted")
        done = as_completed(list(pending))
        stuck: dict[Any, float] = {}  # a task no connected worker can run, since when
        checked = time.monotonic()
        while pending:
            batch = done.next_batch(block=False)
            for fut in batch:
                if fut not in pending:
                    continue  # given up on below
                j, _ = pending.pop(fut)
                try:
                    res = fut.result()
                except Exception as exc:  # lost with its workers beyond allowed-failures
                    _error(run_dir, j, f"the cluster could not run the job: {exc}")
                    continue
                _back(run_dir, j, res)
            if batch or not pending:
                continue
            time.sleep(POLL_S)
            now = time.monotonic()
            if now - checked < CHECK_S:
                continue
            checked = now
            try:
                workers = client.scheduler_info().get("workers", {})
            except (OSError, TimeoutError):
                workers = {}  # the scheduler is gone: nothing will run
            for fut, (j, wanted) in list(pending.items()):
                if _able(workers, wanted):
                    stuck.pop(fut, None)
                    continue
                since = stuck.setdefault(fut, now)
                if now - since >= grace:
                    pending.pop(fut)
                    fut.cancel()
                    need = ", ".join(f"{k}={v}" for k, v in (wanted or {}).items())
                    _error(
                        run_dir,
                        j,
                        f"no worker of the cluster could run the job for {grace:g} s "
                        + (f"(none declares {need})" if need else "(none connected)"),
                        hint="start workers (`kto workers run`), or raise KTO_WORKERS_TIMEOUT",
                    )
    finally:
        client.close()
