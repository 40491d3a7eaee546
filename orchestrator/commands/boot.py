"""`kto boot`: boot a kernel in QEMU and run a command or test in the guest."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from .. import progress
from ..boot import BootRequest, boot, shell_argv, skipped
from ..console import Timeouts
from ..errors import UserError
from ..guestssh import ensure_client_key
from ..initramfs import RESERVED_TESTS, load_test
from ..profiles import known_arches, load_profile
from ..qemu import effective_smp
from ..rundir import new_run_dir


def add_boot_options(p: argparse.ArgumentParser, with_arch: bool = True) -> None:
    if with_arch:
        p.add_argument(
            "--arch",
            default="x86_64",
            choices=known_arches(),
            help="guest architecture (default: x86_64)",
        )
    p.add_argument(
        "--smp",
        type=int,
        help="vCPUs (default: 2, or the machine's maximum if lower: sparc64 has 1)",
    )
    p.add_argument("--mem", dest="memory", help="guest memory, e.g. 1G (default: profile)")
    p.add_argument(
        "--accel",
        default="auto",
        choices=["auto", "kvm", "tcg"],
        help="auto picks KVM only when it is real hardware KVM for this guest",
    )
    p.add_argument(
        "--append",
        action="append",
        default=[],
        metavar="ARGS",
        help="extra kernel command line (repeatable)",
    )
    p.add_argument(
        "--test",
        default="smoke",
        help="guest test to run: a folder under guest-tests/ (default: smoke)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="test timeout in seconds (default: the test's own, else 300)",
    )
    p.add_argument(
        "--boot-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="QEMU start to userspace (default 120)",
    )
    p.add_argument(
        "--silence-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="no console output at all for this long = hang (default 120)",
    )
    p.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="REGEX",
        help="extra console pattern reported as a finding (repeatable)",
    )
    p.add_argument(
        "--network",
        action="store_true",
        help="QEMU user networking with the guest's sshd on a loopback-only port "
        "(kto run/boot add the arch's net fragment to the build)",
    )
    p.add_argument(
        "--ssh",
        dest="ssh_commands",
        action="append",
        default=[],
        metavar="CMD",
        help="with --network: run CMD in the guest over SSH after the test (output in <job>/ssh/)",
    )
    p.add_argument(
        "--fetch",
        action="append",
        default=[],
        metavar="GUEST_PATH",
        help="with --network: copy a guest file to <job>/files/ after the test",
    )
    p.add_argument(
        "--duration",
        type=int,
        metavar="S",
        help="workload duration in seconds (default: the test's duration_s for the arch)",
    )
    p.add_argument(
        "--arg",
        dest="test_args",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a run.sh argument of the test, e.g. --arg seed=1234 to replay a hotplug run "
        "(repeatable; overrides test.yaml `args`)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="echo the guest console")


def boot_request(args: argparse.Namespace, kernel: Path) -> BootRequest:
    timeouts = Timeouts(boot=args.boot_timeout, silence=args.silence_timeout)
    command = shlex.join(args.guest_command) if args.guest_command else None
    req = BootRequest(
        arch=args.arch,
        kernel=kernel,
        test=args.test,
        command=command,
        smp=args.smp if args.smp is not None else min(2, load_profile(args.arch).qemu.max_cpus),
        memory=args.memory,
        accel=args.accel,
        append=list(args.append),
        patterns=list(args.pattern),
        echo=args.verbose,
        duration=args.duration,
        test_args=_test_args(args.test_args),
        network=args.network,
        ssh_commands=list(args.ssh_commands),
        fetch=list(args.fetch),
    )
    if (req.ssh_commands or req.fetch) and not req.network:
        raise UserError("--ssh and --fetch need --network")
    # Bad input fails before a build starts or a run directory is made.
    effective_smp(load_profile(req.arch), req.smp)
    if args.timeout:
        timeouts.test = args.timeout
        req.timeouts = timeouts
    elif args.boot_timeout != 120.0 or args.silence_timeout != 120.0:
        from ..boot import default_timeouts

        t = default_timeouts(req.test)
        t.boot, t.silence = timeouts.boot, timeouts.silence
        req.timeouts = t
    return req


def _test_args(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--arg {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def test_skip(args: argparse.Namespace, run_kind: str) -> int | None:
    """A test that cannot run on --arch is a SKIP (exit 0), decided before any build."""
    if args.guest_command or args.test in RESERVED_TESTS:
        return None
    reason = load_test(args.test).skip_reason(args.arch)
    if reason is None:
        return None
    req = boot_request(args, Path("-"))
    result = skipped(
        req, new_run_dir(f"{run_kind}-{args.arch}") / f"{args.arch}-{args.test}", reason
    )
    print_result(result, f"{args.arch} {args.test}")
    return result.exit_code


def test_fragments(args: argparse.Namespace) -> list[str]:
    """Kconfig fragments the test needs on --arch (test.yaml `kconfig`)."""
    if args.guest_command or args.test in RESERVED_TESTS:
        return []
    return load_test(args.test).fragments_for(args.arch)


def print_result(result, label: str) -> None:
    v = result.verdict
    o = result.outcome
    print(f"{label}: {v.status} - {v.reason}")
    if v.title:
        print(f"  title:    {v.title}")
    if o.boot_seconds is not None:
        print(f"  boot:     userspace after {o.boot_seconds:.2f} s; total {o.seconds:.2f} s")
    print(f"  console:  {result.dir / 'console.log'} ({o.lines} lines)")
    print(f"  record:   {result.dir / 'job.json'}")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "boot",
        help="boot a kernel in QEMU, run a command or test, judge the console",
        description="Boot KERNEL (an image, or a `kto build` output dir; default: build the "
        "default tree) in QEMU with kto's initramfs. `kto boot -- CMD ARGS` runs CMD in the "
        "guest and exits with its status (1 if the kernel reported findings, 3 on "
        "infrastructure errors).",
    )
    p.add_argument("kernel", nargs="?", type=Path, help="kernel image or build directory")
    add_boot_options(p)
    p.add_argument(
        "--shell",
        action="store_true",
        help="interactive console (QEMU: Ctrl-A x quits, Ctrl-A c is the monitor)",
    )
    return p


def default_kernel(arch: str, extra: list[str] | None = None) -> Path:
    from ..build import BuildRequest, build
    from ..trees import load_tree_specs

    _, tree = load_tree_specs()
    frags = list(dict.fromkeys(extra or []))
    return build(BuildRequest(tree=tree, arch=arch, fragments=frags)).dir


def run(args: argparse.Namespace) -> int:
    if (code := test_skip(args, "boot")) is not None:
        return code
    kernel = args.kernel or default_kernel(args.arch, test_fragments(args))
    req = boot_request(args, kernel)
    if args.shell:
        argv = shell_argv(req)
        progress.say(f"interactive console: {shlex.join(argv)}")
        if req.network:
            key, _ = ensure_client_key()
            progress.say(
                f"ssh: ssh -p {req.ssh_port} -i {key} -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null root@127.0.0.1"
            )
        progress.say("QEMU keys: Ctrl-A x quits, Ctrl-A c toggles the monitor")
        os.execvp(argv[0], argv)
    outdir = (
        new_run_dir(f"boot-{args.arch}")
        / f"{args.arch}-{req.test if not req.command else 'command'}"
    )
    result = boot(req, outdir)
    print_result(result, f"{args.arch} {result.record['test']}")
    return result.exit_code
