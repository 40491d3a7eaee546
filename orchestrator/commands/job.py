"""`kto job SPEC.json JOB_DIR`: run one job from its JobSpec, the unit every driver runs.

The matrix runs each job in its own `kto job` process (its own process group: a crash or a
kill takes only that job, and its QEMU with it); a Dask worker runs the same command. The
job's record is JOB_DIR/job.json; stdout gets one JSON line with the status and exit code.
With --build-only it builds the job's kernel and writes JOB_DIR/build-outcome.json instead:
the matrix's build task, one per distinct kernel, through the same build as every job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from orchestrator.errors import UserError
from orchestrator.job.plan import plan_job
from orchestrator.job.runner import build_kernel, run_job
from orchestrator.orphan import die_with_parent
from orchestrator.records.spec import JobSpec

DESCRIPTION = __doc__.splitlines()[0] if __doc__ else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", type=Path, help="JobSpec as JSON (job.json's `job` field)")
    p.add_argument("job_dir", type=Path, help="the job's folder (created)")
    p.add_argument("--kernel", type=Path, help="a `kto build` dir already built for this job")
    p.add_argument("--extra", type=Path, help="JSON object of fields to add to job.json")
    p.add_argument("-v", "--verbose", action="store_true", help="echo the guest console")
    p.add_argument(
        "--build-only",
        action="store_true",
        help="build (or find in the cache) the job's kernel, write JOB_DIR/build-outcome.json",
    )
    p.add_argument("-j", "--jobs", type=int, help="parallel make jobs (default: all CPUs)")
    p.add_argument(
        "--die-with-parent",
        action="store_true",
        help="stop (SIGTERM to this job's process group) when the starting process is gone",
    )


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the {what}: {exc}") from exc
    if not isinstance(doc, dict):
        raise UserError(f"{path}: the {what} must be a JSON object")
    return doc


def run(args: argparse.Namespace) -> int:
    if args.die_with_parent:
        die_with_parent()
    try:
        spec = JobSpec.from_dict(_read(args.spec, "job spec"))
    except TypeError as exc:
        raise UserError(f"{args.spec}: not a JobSpec: {exc}") from exc
    extra = _read(args.extra, "extra record fields") if args.extra else None
    plan = plan_job(spec, prebuilt=args.kernel)
    if args.build_only:
        outcome = build_kernel(plan, args.jobs)
        args.job_dir.mkdir(parents=True, exist_ok=True)
        outcome.save(args.job_dir)
        status, code = outcome.status, outcome.exit_code
    else:
        result = run_job(
            spec, args.job_dir, plan=plan, echo=args.verbose, jobs=args.jobs, extra=extra
        )
        status, code = result.verdict.status, result.exit_code
    print(json.dumps({"status": str(status), "exit_code": code}))
    return code
