"""`kto matrix`: expand a matrix into JobSpecs, build each distinct kernel once, run every job
through `kto job`, resume what an interrupted run left, and judge it against earlier nights.

Run directory: results/<id>-matrix-<name>-<rand>/ with run.json (the matrix and its cells),
one folder per job (<tree>.<series>.<config>.<arch>.<test>-r<repeat>) and the usual reports.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator import atomic, progress
from orchestrator.errors import InfraError, KtoError, UserError
from orchestrator.job.plan import plan_job
from orchestrator.job.runner import record_stopped, skipped
from orchestrator.locks import file_lock
from orchestrator.matrix.history import Classified, classify
from orchestrator.matrix.jobs import MatrixJob
from orchestrator.matrix.pool import Budget, Pool, Task, kto_argv
from orchestrator.matrix.spec import Matrix, describe
from orchestrator.records import exits, runrecord
from orchestrator.records.build_outcome import BUILD_OUTCOME, BuildOutcome
from orchestrator.records.layout import JOB_RECORD
from orchestrator.records.model import load_job
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status
from orchestrator.results.reports import Report, finish_run

STATE = ".matrix"  # per-run scratch: specs, task logs, the run lock
STOPPED = "stopped"  # in STATE: a file per job the pool stopped mid-run (not finished)


@dataclass
class MatrixResult:
    run_dir: Path
    report: Report
    classified: Classified | None
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        new = len(self.classified.new) if self.classified else 0
        statuses = [Status(s) for s, n in self.counts.items() if n]
        return exits.of_night(self.interrupted, new, statuses)


def label(m: Matrix) -> str:
    return f"matrix-{m.name}"


def plan_jobs(m: Matrix) -> list[MatrixJob]:
    """Every job of the matrix, resolved (bad input fails here, before any work)."""
    out = []
    for cell, spec in m.jobs():
        extra = {"cell": {"id": m.cell_id(cell), "matrix": m.name, **cell.labels()}}
        out.append(MatrixJob(cell, spec, plan_job(spec), f"{cell.folder}-r{spec.repeat}", extra))
    return out


def extra_fragments(j: MatrixJob) -> list[str]:
    """The job's fragments beyond the arch profile's own (which every build has)."""
    return [f for f in j.plan.fragments if f not in j.plan.profile.build.fragments]


def build_key(j: MatrixJob) -> tuple[str, ...]:
    s = j.spec
    return (j.plan.tree, s.ref or "", s.patches or "", j.plan.profile.name, *extra_fragments(j))


def _stopped_mark(job_dir: Path) -> Path:
    return job_dir.parent / STATE / STOPPED / job_dir.name


def finished(job_dir: Path) -> bool:
    """A job a resumed run keeps: a final record that is not an interrupt, of a job the
    pool did not stop (a stop can land before the job can say so: a build it ends as a
    plain ERROR, a guest not started yet)."""
    if not (job_dir / JOB_RECORD).is_file() or _stopped_mark(job_dir).exists():
        return False
    job = load_job(job_dir)
    killed = str((job.record.get("outcome") or {}).get("killed") or "")
    return job.raw_status in Status.__members__ and not killed.startswith("interrupted")


def _mem_mb(j: MatrixJob) -> int:
    mem = (j.spec.boot.memory or j.plan.profile.qemu.memory).upper()
    n = float(mem.rstrip("GMK") or 1)
    return int(n * 1024) if mem.endswith("G") else int(n)


def _loads_path() -> Path:
    from orchestrator.paths import cache_dir

    return cache_dir() / "matrix-load.json"


def read_loads() -> dict[str, float]:
    try:
        doc = json.loads(_loads_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def boot_cores(loads: dict[str, float], key: str, vcpus: int) -> float:
    """The cores a boot is charged: its vCPUs, until runs of this kind of job (arch, test,
    vCPUs) have shown how many it keeps busy, then that, to a tenth (at least a quarter).
    A TCG guest with 2 vCPUs idles on one of them through most workloads; charging it 2
    leaves a 2-core host half idle, and charging whole cores leaves a 16-core host a fifth
    idle under guests that keep 0.8 busy. The sum stays within the budget: guests are
    never overcommitted (a starved vCPU makes RCU stalls that are not the kernel's)."""
    measured = loads.get(key)
    if measured is None:
        return float(vcpus)
    return max(0.25, min(float(vcpus), round(measured, 1)))


def _learn_loads(tasks: list[Task]) -> None:
    """Remember each kind of boot's CPU / wall (a moving average over runs)."""
    loads = read_loads()
    for t in tasks:
        wall = t.ended - t.started
        if t.build or not t.load_key or t.rc != 0 or wall < 3:
            continue
        now = t.cpu_s / wall
        old = loads.get(t.load_key)
        loads[t.load_key] = round(now if old is None else 0.7 * old + 0.3 * now, 3)
    with contextlib.suppress(OSError):
        atomic.write_json(_loads_path(), loads)


def schedule(run_dir: Path, jobs: list[MatrixJob], pool: Pool) -> None:
    state = run_dir / STATE
    loads = read_loads()
    groups: dict[tuple[str, ...], list[MatrixJob]] = defaultdict(list)
    for j in jobs:
        if not j.spec.kernel:
            groups[build_key(j)].append(j)

    def boot_task(j: MatrixJob, kernel: Path) -> Task:
        spec_file = state / f"{j.folder}.spec.json"
        extra_file = state / f"{j.folder}.extra.json"
        atomic.write_json(spec_file, j.spec.to_dict())
        atomic.write_json(extra_file, j.extra)
        job_dir = run_dir / j.folder
        argv = kto_argv(
            "job",
            str(spec_file),
            str(job_dir),
            "--kernel",
            str(kernel),
            "--extra",
            str(extra_file),
            "--die-with-parent",
        )
        key = f"{j.spec.arch}:{j.spec.test_name}:{j.plan.smp}"
        cores = boot_cores(loads, key, j.plan.smp)
        log = state / f"{j.folder}.log"
        return Task(j.folder, argv, cores, _mem_mb(j), log, j.folder, load_key=key)

    # A job given its kernel (last time's, for a NEW confirmation) boots it, unbuilt.
    pool.add(*(boot_task(j, Path(j.spec.kernel)) for j in jobs if j.spec.kernel))
    for key, members in groups.items():
        first = members[0]
        build_dir = state / f"build-{len(pool.queue)}"
        # A resumed run numbers its builds again: an old outcome must not stand for this one.
        (build_dir / BUILD_OUTCOME).unlink(missing_ok=True)

        def built(
            task: Task, rc: int, members: list[MatrixJob] = members, folder: Path = build_dir
        ) -> list[Task]:
            outcome = BuildOutcome.load(folder)
            if outcome is None:  # the build process died before it could say why
                err = InfraError(
                    f"the build task exited {rc} without an outcome", hint=f"its log: {task.log}"
                )
                outcome = BuildOutcome(Status.ERROR, error=err.to_dict())
            if outcome.status is Status.PASS and outcome.kernel_dir:
                return [boot_task(j, Path(outcome.kernel_dir)) for j in members]
            for j in members:
                (run_dir / j.folder).mkdir(parents=True, exist_ok=True)
                failure = outcome.failure()
                record_stopped(
                    j.plan, run_dir / j.folder, outcome.status, failure, "build", j.extra
                )
            return []

        name = f"build {first.plan.tree} {first.spec.patches or ''} {first.spec.arch}".split()
        spec_file = state / f"{build_dir.name}.spec.json"
        atomic.write_json(spec_file, first.spec.to_dict())
        # The same `kto job` as every job, told to stop after the kernel: one build path, one
        # policy (sandbox, cache, MISS/ERROR) for every driver.
        argv = kto_argv("job", str(spec_file), str(build_dir), "--build-only", "--die-with-parent")
        pool.add(
            Task(
                "build-" + "-".join(key)[:80],
                argv,
                1,
                2048,
                state / f"{build_dir.name}.log",
                " ".join(name),
                build=True,
                on_done=built,
            )
        )


def run_matrix(
    m: Matrix,
    run_dir: Path | None = None,
    budget: Budget | None = None,
    scheduler: str | None = None,
    confirm: int = 2,
) -> MatrixResult:
    """Run (or, given an existing `run_dir`, resume) the matrix; returns its verdicts.
    `scheduler`: a Dask scheduler address: the jobs run on its workers (matrix/cluster.py).
    `confirm`: runs added to a cell whose failure is NEW, before it is reported (its
    fail:runs then says how reproducible it is; never "until it passes")."""
    jobs = plan_jobs(m)
    resume = run_dir is not None
    if run_dir is None:
        run_dir = runrecord.new_run_dir(label(m))
        runrecord.update(
            run_dir, compare_key=f"matrix:{m.name}", matrix=describe(m), waivers=m.waivers
        )
    (run_dir / STATE).mkdir(exist_ok=True)
    t0 = time.monotonic()
    with file_lock(run_dir / STATE / "lock", f"matrix run {run_dir.name}", wait=False):
        todo = []
        for j in jobs:
            job_dir = run_dir / j.folder
            if resume and finished(job_dir):
                continue
            if job_dir.exists():
                import shutil

                shutil.rmtree(job_dir)  # RUNNING or interrupted when the run died: again
            _stopped_mark(job_dir).unlink(missing_ok=True)
            if j.plan.skip:
                job_dir.mkdir(parents=True)
                skipped(j.plan, job_dir, j.extra)
                continue
            todo.append(j)
        kept = len(jobs) - len(todo)
        progress.say(
            f"matrix {m.name}: {len(jobs)} job(s) in {len(m.cells)} cell(s), "
            f"{len({build_key(j) for j in todo})} build(s); {kept} already done or SKIP"
        )
        interrupted = False
        try:
            if todo:
                execute(run_dir, todo, budget, scheduler)
            # Also when nothing was pending: a resumed night whose confirmation runs were
            # interrupted finishes them (the ones already done are kept).
            if confirm:
                extra = _confirmations(m, run_dir, confirm)
                if extra:
                    progress.say(f"confirming {len(extra)} NEW failure run(s) before reporting")
                    execute(run_dir, extra, budget, scheduler)
        except KeyboardInterrupt:
            interrupted = True
            progress.say("matrix interrupted: running jobs stopped; `kto matrix --resume` goes on")
        timings = {"matrix": round(time.monotonic() - t0, 3)}
        status = "interrupted" if interrupted else "finished"
        report = finish_run(run_dir, timings, status, classify=classify)
    classified = report.night  # classified once, shown by the reports and the summary
    counts: dict[str, int] = defaultdict(int)
    for job in report.run.jobs:
        counts[str(job.status)] += 1
    return MatrixResult(run_dir, report, classified, interrupted, dict(counts))


def execute(
    run_dir: Path, jobs: list[MatrixJob], budget: Budget | None, scheduler: str | None
) -> None:
    if scheduler:
        from orchestrator.matrix.cluster import run_on_cluster

        run_on_cluster(run_dir, jobs, scheduler)
    else:
        pool = Pool(budget)
        schedule(run_dir, jobs, pool)
        try:
            pool.run()
        finally:
            _mark_stopped(run_dir, pool)
            _save_task_stats(run_dir, pool)


def _mark_stopped(run_dir: Path, pool: Pool) -> None:
    """Mark the jobs the pool stopped, unless their record was written before the stop (a
    job that had finished and was still exiting: its verdict stands)."""
    for task in pool.stopped:
        if task.build:
            continue
        job_dir = run_dir / task.key  # a boot task's key is its job's folder
        with contextlib.suppress(OSError):
            if (job_dir / JOB_RECORD).stat().st_mtime < pool.stopped_at:
                continue
        mark = _stopped_mark(job_dir)
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()


TASKS = "tasks.json"  # in STATE: every pool task's wait, wall and CPU time (bench/matrix.py)


def _save_task_stats(run_dir: Path, pool: Pool) -> None:
    path = run_dir / STATE / TASKS
    try:
        old = json.loads(path.read_text()) if path.is_file() else []
    except ValueError:
        old = []
    new = [t.stats() for t in pool.done]
    atomic.write_json(path, [*old, {"cores": pool.budget.cores, "tasks": new}])
    _learn_loads(pool.done)


def _confirmations(m: Matrix, run_dir: Path, runs: int) -> list[MatrixJob]:
    """More repeats of each cell whose failure is NEW against the earlier nights, and as
    many runs of the kernel the cell had last time, where that kernel differs from
    tonight's and its inputs still build it: "3:3 now, 0:2 with last night's kernel"
    says the kernel changed, not the machine or the workload."""
    classified = classify(run_dir)
    new = {line.cell for line in classified.new}
    out = []
    for cell in m.cells:
        if cell.folder not in new:
            continue
        extra = {"cell": {"id": m.cell_id(cell), "matrix": m.name, **cell.labels()}}
        first = m.repeats[cell]
        for r in range(first, first + runs):
            spec = cell.job(m.boot, r)
            folder = f"{cell.folder}-r{r}"
            if not finished(run_dir / folder):
                out.append(
                    MatrixJob(cell, spec, plan_job(spec), folder, {**extra, "confirm": True})
                )
        before = _previous_kernel(run_dir, cell.folder, classified.history)
        if before is None:
            continue
        rid, key, inputs = before
        for r in range(runs):
            # The tree, commit, series and config that built it, not its build dir: a
            # cluster worker has nothing of this host's disk (it builds them or finds them
            # in its own cache; here they are a cache hit). The key says which kernel.
            spec = replace(cell.job(m.boot, r), **inputs)
            folder = f"{cell.folder}-lastkernel-r{r}"
            if not finished(run_dir / folder):
                mark = {"confirm": True, "previous_kernel": {"run": rid, "key": key}}
                out.append(MatrixJob(cell, spec, plan_job(spec), folder, {**extra, **mark}))
    return out


def _record_of(job_dir: Path) -> dict[str, Any]:
    try:
        rec = json.loads((job_dir / JOB_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _previous_kernel(
    run_dir: Path, folder: str, history: list[str]
) -> tuple[str, str, dict[str, Any]] | None:
    """The newest earlier run of this cell whose kernel is not tonight's: (its run id, its
    build key, the JobSpec fields that build it again). None when it is tonight's (a
    re-run says nothing new) or its inputs no longer build it (said why)."""
    key_now = (_record_of(run_dir / f"{folder}-r0").get("build") or {}).get("key")
    for rid in history:
        rec = _record_of(run_dir.parent / rid / f"{folder}-r0")
        key = (rec.get("build") or {}).get("key")
        if key is None:
            continue
        if key == key_now:
            return None
        inputs = _kernel_inputs(rec)
        if isinstance(inputs, str):
            progress.say(f"{folder}: last time's kernel ({rid}) is not run again: {inputs}")
            return None
        return rid, key, inputs
    return None


def _kernel_inputs(rec: dict[str, Any]) -> dict[str, Any] | str:
    """tree/ref/patches/fragments of the kernel a job record booted, or why they would not
    build that kernel again. The commit is pinned: by its hash, or for a Debian tarball
    tree at its tag (committed on each host, so the hash differs) by the tag, which names
    the package version on every host. A series or fragment file must hash as it did."""
    import re
    import tempfile

    from orchestrator.build.kernel import resolve_fragments
    from orchestrator.build.patches import Series, load_dir, load_mail
    from orchestrator.build.trees import load_tree_specs

    built = (rec.get("build") or {}).get("inputs") or {}
    try:
        last = JobSpec.from_dict(rec["job"])
    except (KeyError, TypeError):
        return "its record has no job spec"
    tree = last.tree or built.get("tree")
    if not tree or not built.get("base_commit"):
        return "its record does not say what built it"
    named = load_tree_specs()[0].get(tree)
    tag = str(built.get("describe") or "")
    on_tag = tag and not re.search(r"-\d+-g[0-9a-f]+$", tag) and tag not in built["base_commit"]
    ref = tag if named and named.kind == "tarball" and on_tag else built["base_commit"]
    series = built.get("series") or {}
    kind = series.get("kind") or "none"
    try:
        if kind in ("mbox", "dir"):
            path = Path(last.patches or "").expanduser()
            with tempfile.TemporaryDirectory(prefix="kto-series-") as tmp:
                found = load_dir(path) if kind == "dir" else load_mail(path, Path(tmp))
            if Series(str(path), kind, found).hash != series.get("hash"):
                return f"its series {last.patches} changed since"
        plan = plan_job(replace(last, tree=tree, ref=ref))
        frags = resolve_fragments(plan.profile, list(plan.fragments))
    except (KtoError, OSError) as exc:
        return str(exc).splitlines()[0]
    if [f.sha256() for f in frags] != [f.get("sha256") for f in built.get("fragments") or []]:
        return "a config fragment changed since"
    return {"tree": tree, "ref": ref, "patches": last.patches, "fragments": last.fragments}


def resume_dir(arg: str) -> Path:
    from orchestrator.records.model import resolve_run

    run_dir = resolve_run(arg)
    doc = runrecord.read(run_dir)
    if "matrix" not in doc:
        raise UserError(f"{run_dir} is not a matrix run", hint="give the run id of a kto matrix")
    return run_dir
