"""`kto run`: build (cached) + boot + test, the whole loop for one arch."""

from __future__ import annotations

import argparse

from .. import progress
from ..boot import boot
from ..build import build
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
    if args.network:
        from ..profiles import load_profile

        breq.fragments += list(load_profile(args.arch).build.network_fragments)
    built = build(breq)
    progress.say(f"kernel: {built.kernel}")
    req = boot_request(args, built.dir)
    req.build_record = built.record
    run_dir = new_run_dir(f"run-{args.arch}")
    result = boot(req, run_dir / f"{args.arch}-{req.test if not req.command else 'command'}")
    print_result(result, f"{args.arch} {result.record['test']}")
    return result.exit_code
