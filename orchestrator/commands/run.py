"""`kto run`: build (cached) + boot + test, the whole loop for one arch."""

from __future__ import annotations

import argparse

from orchestrator.build.record import BuildResult
from orchestrator.commands.options import (
    add_boot_options,
    add_build_options,
    job_spec,
    print_result,
)
from orchestrator.job.plan import plan_job
from orchestrator.job.runner import JobResult, run_job
from orchestrator.records import runrecord
from orchestrator.records.model import job_seconds
from orchestrator.results.reports import effective_exit, finish_run, print_summary

DESCRIPTION = (
    "Build the tree for --arch (a cache hit when nothing "
    "changed), boot it in QEMU and run a guest test; prints the verdict."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_build_options(p)
    add_boot_options(p, with_arch=False)


def run(args: argparse.Namespace) -> int:
    spec = job_spec(args)
    plan = plan_job(spec)  # bad input fails here, before a run directory exists
    run_dir = runrecord.new_run_dir(f"run-{spec.arch}")
    job_dir = run_dir / spec.name
    # What this run is: regressions are computed only against earlier runs of the same job.
    runrecord.update(run_dir, compare_key=spec.id, job_specs={spec.name: spec.to_dict()})
    timings: dict[str, float] = {}

    def on_built(built: BuildResult) -> None:
        # Recorded before the guest starts: a run killed mid-boot still says what it tested.
        timings.update(runrecord.start_inputs(run_dir, built.record, spec.arch, [spec.test]))

    status = "interrupted"
    result: JobResult | None = None
    try:
        result = run_job(
            spec, job_dir, plan=plan, echo=args.verbose, jobs=args.jobs, on_built=on_built
        )
        status = "finished"
    finally:
        # Reports even after Ctrl-C or a crash: they mark the unfinished job.
        timings["boot"] = job_seconds(job_dir)
        report = finish_run(run_dir, timings, status)
    assert result is not None
    if result.error is not None:
        raise result.error  # the job's record and the reports are written
    print_result(result, f"{spec.arch} {spec.test_name}")
    print_summary(report)
    return effective_exit(result, report)
