"""run_job: the one way any driver builds, boots and judges a JobSpec.

A job always ends with a job.json in its folder: a verdict from the console, a SKIP decided
before any work, or the error that stopped it (a series that does not apply or a kernel that
does not build is MISS, with the exit code 4/5 the user would get from `kto build`; a host
or harness failure before the guest started is ERROR). Drivers never lose a job's record to
an exception, and decide themselves whether to stop (`kto run`) or go on (the matrix).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import atomic, progress
from orchestrator.build.record import BuildResult

if TYPE_CHECKING:
    from orchestrator.build.kernel import BuildRequest
from orchestrator.errors import BuildError, KtoError, PatchApplyError
from orchestrator.job.boot_stage import base_record, boot
from orchestrator.job.decode_stage import decode_findings
from orchestrator.job.plan import JobPlan, Kernel, plan_job
from orchestrator.records import exits
from orchestrator.records.build_outcome import BuildOutcome
from orchestrator.records.layout import JOB_RECORD
from orchestrator.records.outcome import ConsoleOutcome
from orchestrator.records.runrecord import copy_build_log
from orchestrator.records.spec import JobSpec
from orchestrator.records.verdict import Status, Verdict


@dataclass
class JobResult:
    """A finished job: its verdict, folder and record, and the error that stopped it."""

    spec: JobSpec
    verdict: Verdict
    dir: Path
    record: dict[str, Any]
    outcome: ConsoleOutcome = field(default_factory=ConsoleOutcome)
    build: BuildResult | None = None
    error: KtoError | None = None  # what stopped the job before (or instead of) a verdict

    @property
    def exit_code(self) -> int:
        error = self.error.exit_code if self.error is not None else None
        v = self.verdict
        return exits.of_job(v.status, error, self.outcome.test_rc, len(v.findings or []))


def build_request(plan: JobPlan, jobs: int | None = None) -> BuildRequest:
    from orchestrator.build.kernel import BuildRequest

    s = plan.spec
    return BuildRequest(
        tree=plan.tree,
        arch=plan.profile.name,
        ref=s.ref,
        patches=s.patches,
        fragments=list(plan.fragments),
        jobs=jobs,
        sandbox=s.sandbox,
        trusted_tree=s.trusted_tree,
        i_trust_this_series=s.i_trust_this_series,
    )


def stopped_status(exc: KtoError) -> Status:
    """The one place a failed build becomes a status: a series that does not apply or a
    kernel that does not build is MISS (the exit code 4/5 `kto build` gives); anything else
    (a tool that crashed, a full disk, a sandbox that cannot start) is ERROR."""
    return Status.MISS if isinstance(exc, PatchApplyError | BuildError) else Status.ERROR


def build_kernel(plan: JobPlan, jobs: int | None = None) -> BuildOutcome:
    """The job's kernel built (or found in the cache) and nothing else: the matrix's build
    task, shared by every job of the same kernel. Same build, same policy as run_job."""
    try:
        _kernel, built = prepare_kernel(plan, jobs)
    except KtoError as exc:
        return BuildOutcome(stopped_status(exc), error=exc.to_dict())
    if built is None:  # the spec names a prebuilt kernel: nothing to build
        return BuildOutcome(Status.PASS)
    return BuildOutcome(Status.PASS, str(built.dir), str(built.record.get("key")))


def record_stopped(
    plan: JobPlan,
    job_dir: Path,
    status: Status,
    exc: KtoError,
    stage: str,
    extra: dict[str, Any] | None = None,
) -> JobResult:
    """The record of a job stopped before its verdict (its kernel did not build, ...)."""
    verdict = Verdict(status, f"{stage} failed: {exc.message.splitlines()[0]}")
    record = {
        **base_record(plan),
        **(extra or {}),
        "status": str(status),
        "verdict": verdict.to_dict(),
        "stage": stage,
        "error": {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code},
    }
    atomic.write_json(job_dir / JOB_RECORD, record)
    return JobResult(plan.spec, verdict, job_dir, record, error=exc)


def skipped(plan: JobPlan, job_dir: Path, extra: dict[str, Any] | None = None) -> JobResult:
    """A test that cannot run on this arch: a SKIP record, nothing built or booted."""
    verdict = Verdict(Status.SKIP, plan.skip or "skipped")
    record = {
        **base_record(plan),
        **(extra or {}),
        "status": str(verdict.status),
        "verdict": verdict.to_dict(),
    }
    atomic.write_json(job_dir / JOB_RECORD, record)
    return JobResult(plan.spec, verdict, job_dir, record)


def prepare_kernel(plan: JobPlan, jobs: int | None = None) -> tuple[Kernel, BuildResult | None]:
    """The job's kernel: the one given, or a (cached) build of its tree + series + config."""
    if plan.kernel is not None:
        return plan.kernel, None
    from orchestrator.build.kernel import build  # not loaded when the kernel is given

    built = build(build_request(plan, jobs))
    progress.say(f"kernel: {built.kernel}")
    return Kernel(built.kernel, built.record), built


def run_job(
    spec: JobSpec,
    job_dir: Path,
    *,
    plan: JobPlan | None = None,
    echo: bool = False,
    jobs: int | None = None,
    on_built: Callable[[BuildResult], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> JobResult:
    """Build (cached), boot, judge. `plan`: the spec already resolved (bad input fails in
    plan_job, before the driver makes any directory); `on_built`: told about the kernel
    before the guest starts (`kto run` records the run's inputs then); `extra`: fields the
    driver adds to job.json (the matrix cell)."""
    plan = plan or plan_job(spec)
    job_dir.mkdir(parents=True, exist_ok=True)
    if plan.skip:
        return skipped(plan, job_dir, extra)
    try:
        kernel, built = prepare_kernel(plan, jobs)
    except KtoError as exc:
        return record_stopped(plan, job_dir, stopped_status(exc), exc, "build", extra)
    if built is not None:
        copy_build_log(built.dir, job_dir)
        if on_built:
            on_built(built)
    try:
        verdict, outcome, record = boot(plan, kernel, job_dir, echo=echo, extra=extra)
    except KtoError as exc:
        if (job_dir / JOB_RECORD).is_file():
            # The console session ran and wrote its verdict (an interrupt, say): keep it.
            kept = load_result(spec, job_dir)
            kept.build, kept.error = built, exc
            return kept
        return record_stopped(plan, job_dir, Status.ERROR, exc, "boot", extra)
    # findings.json is written by the boot stage; its frames are decoded once the verdict is
    # on disk, with the vmlinux and source tree the build record names.
    decode_findings(job_dir, kernel.build_record, plan.profile)
    return JobResult(spec, verdict, job_dir, record, outcome, built)


def load_result(spec: JobSpec, job_dir: Path) -> JobResult:
    """A job another process ran (`kto job`: the matrix's pool, a Dask worker), read back
    from its job.json the one way every driver reads it."""
    from orchestrator.records.model import load_job

    job = load_job(job_dir)
    verdict = Verdict(job.status, job.reason, job.title, job.findings)
    return JobResult(spec, verdict, job_dir, job.record)
