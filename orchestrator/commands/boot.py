"""`kto boot`: boot a kernel in QEMU and run a command or test in the guest."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from orchestrator import progress
from orchestrator.commands.options import add_boot_options, job_spec, print_result
from orchestrator.job.boot_stage import shell_argv
from orchestrator.job.plan import plan_job
from orchestrator.job.runner import prepare_kernel, run_job
from orchestrator.records.runrecord import new_run_dir

DESCRIPTION = (
    "Boot KERNEL (an image, or a `kto build` output dir; default: build the "
    "default tree) in QEMU with kto's initramfs. `kto boot -- CMD ARGS` runs CMD in the "
    "guest and exits with its status (1 if the kernel reported findings, 3 on "
    "infrastructure errors)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kernel", nargs="?", type=Path, help="kernel image or build directory")
    add_boot_options(p)
    p.add_argument(
        "--shell",
        action="store_true",
        help="interactive console (QEMU: Ctrl-A x quits, Ctrl-A c is the monitor)",
    )


def _shell(args: argparse.Namespace) -> int:
    plan = plan_job(job_spec(args, args.kernel))
    kernel, _ = prepare_kernel(plan)
    argv, port = shell_argv(plan, kernel)
    progress.say(f"interactive console: {shlex.join(argv)}")
    if port:
        from orchestrator.guest.ssh import ensure_client_key

        key, _ = ensure_client_key()
        progress.say(
            f"ssh: ssh -p {port} -i {key} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null root@127.0.0.1"
        )
    progress.say("QEMU keys: Ctrl-A x quits, Ctrl-A c toggles the monitor")
    os.execvp(argv[0], argv)


def run(args: argparse.Namespace) -> int:
    if args.shell:
        return _shell(args)
    spec = job_spec(args, args.kernel)
    plan = plan_job(spec)  # bad input fails here, before a run directory exists
    run_dir = new_run_dir(f"boot-{spec.arch}")
    result = run_job(spec, run_dir / spec.name, plan=plan, echo=args.verbose)
    if result.error is not None:
        raise result.error  # the record is written; the CLI prints the error and its code
    print_result(result, f"{spec.arch} {spec.test_name}")
    return result.exit_code
