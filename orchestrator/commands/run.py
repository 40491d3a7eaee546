"""`kto run`: build (cached) + boot + test, the whole loop for one arch."""

from __future__ import annotations

import argparse

from .. import progress, runrecord
from ..boot import boot
from ..build import build
from ..reporting import effective_exit, finish_run, print_summary
from ..rundir import new_run_dir
from .boot import add_boot_options, boot_request, print_result, test_fragments, test_skip
from .build import add_build_options, request_from_args


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="build (cached) + boot + run a test (default: smoke)",
        description="Build the tree for --arch (a cache hit when nothing "
        "changed), boot it in QEMU and run a guest test; prints the verdict.",
    )
    add_build_options(p)
    add_boot_options(p, with_arch=False)
    return p


def run(args: argparse.Namespace) -> int:
    if (code := test_skip(args, "run")) is not None:
        return code
    breq = request_from_args(args)
    breq.fragments += [f for f in test_fragments(args) if f not in breq.fragments]
    built = build(breq)
    progress.say(f"kernel: {built.kernel}")
    req = boot_request(args, built.dir)
    req.build_record = built.record
    run_dir = new_run_dir(f"run-{args.arch}")
    job_dir = run_dir / f"{args.arch}-{req.test if not req.command else 'command'}"
    timings = runrecord.start_inputs(run_dir, built.record, args.arch, [req.test])
    runrecord.copy_build_log(built.dir, job_dir)
    status = "interrupted"
    try:
        result = boot(req, job_dir)
        status = "finished"
    finally:
        # Reports even after Ctrl-C or a crash: they mark the unfinished job.
        timings["boot"] = runrecord.job_seconds(job_dir)
        report = finish_run(run_dir, timings, status)
    print_result(result, f"{args.arch} {result.record['test']}")
    print_summary(report)
    return effective_exit(result, report)
