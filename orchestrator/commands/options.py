"""Options shared by `kto build`, `kto boot` and `kto run`, and argv -> JobSpec."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.config.arch import known_arches
from orchestrator.errors import UserError
from orchestrator.records.layout import CONSOLE, JOB_RECORD
from orchestrator.records.spec import DEFAULT_GRACE, BootOptions, JobSpec

if TYPE_CHECKING:  # `kto build` need not load the boot stage
    from orchestrator.job.runner import JobResult


def add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        dest="fragments",
        action="append",
        default=[],
        metavar="FRAG",
        help="extra Kconfig fragment: a name in configs/kconfig/ or a path "
        "(repeatable; the arch profile's own fragments always apply)",
    )


def add_build_options(p: argparse.ArgumentParser) -> None:
    from orchestrator.build.trees import load_tree_specs  # `kto boot KERNEL` needs no build code

    specs, default = load_tree_specs()
    p.add_argument(
        "--tree",
        default=default,
        help=f"named tree ({', '.join(specs)}) or a path to a local git tree (default: {default})",
    )
    p.add_argument("--ref", help="commit/branch/tag in the tree (default: its HEAD)")
    p.add_argument(
        "--arch",
        default="x86_64",
        choices=known_arches(),
        help="target architecture (default: x86_64)",
    )
    p.add_argument(
        "--patches",
        metavar="P",
        help="series to apply: an mbox (lore thread; b4 picks the patches), a "
        "directory of .patch files (optional `series` file), or a git range A..B",
    )
    add_config_option(p)
    p.add_argument(
        "--trusted",
        dest="trusted_tree",
        action="store_true",
        help="declare the --tree PATH trusted: its own commits (and git ranges in it) build "
        "without the sandbox (trees in kernels/trees.yaml are trusted already)",
    )
    p.add_argument(
        "--sandbox",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="build in the sandbox: an unprivileged uid, no network, read-only host, own "
        "build dirs and compiler cache, process/file/disk/time limits (default: for "
        "everything that is not a commit of a trusted tree: an mbox, a patch directory, "
        "a range in an untrusted tree; docs/security.md). --no-sandbox builds without it "
        "and says so in build.json",
    )
    p.add_argument(
        "--i-trust-this-series",
        action="store_true",
        help="with --no-sandbox: build a series from a mail without the sandbox (refused "
        "otherwise)",
    )
    p.add_argument("-j", "--jobs", type=int, help="parallel make jobs (default: all cores)")


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
        metavar="S",
        help="QEMU start to userspace (default 120)",
    )
    p.add_argument(
        "--silence-timeout",
        type=float,
        metavar="S",
        help="no console output at all for this long = hang (default 120)",
    )
    p.add_argument(
        "--fatal-grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="S",
        help="after a fatal finding (BUG, Oops, panic, deadlock, hung task) kto captures SysRq "
        f"stacks and stops the guest within S seconds (default {DEFAULT_GRACE:.0f}; 0: never)",
    )
    p.add_argument(
        "--pattern",
        action="append",
        default=[],
        metavar="REGEX",
        help="extra console pattern reported as a finding (repeatable)",
    )
    p.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="TITLE",
        help="a finding the job must produce (repeatable): seen, and nothing else, is XFAIL "
        "(caught as expected, exit 0); not seen is FAIL (exit 1)",
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


def test_args(items: list[str]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--arg {item!r}: expected KEY=VALUE")
        out[key] = value
    return tuple(out.items())


def job_spec(args: argparse.Namespace, kernel: Path | None = None) -> JobSpec:
    """The JobSpec of `kto run` / `kto boot` argv (build options only where the command has
    them: `kto boot` builds the default tree)."""
    boot = BootOptions(
        smp=args.smp,
        memory=args.memory,
        accel=args.accel,
        append=tuple(args.append),
        patterns=tuple(args.pattern),
        test_timeout=args.timeout,
        boot_timeout=args.boot_timeout,
        silence_timeout=args.silence_timeout,
        fatal_grace=args.fatal_grace,
        network=args.network,
        ssh_commands=tuple(args.ssh_commands),
        fetch=tuple(args.fetch),
    )
    return JobSpec(
        arch=args.arch,
        tree=getattr(args, "tree", None),
        ref=getattr(args, "ref", None),
        patches=getattr(args, "patches", None),
        fragments=tuple(dict.fromkeys(getattr(args, "fragments", None) or ())),
        sandbox=getattr(args, "sandbox", None),
        trusted_tree=getattr(args, "trusted_tree", False),
        i_trust_this_series=getattr(args, "i_trust_this_series", False),
        kernel=str(kernel) if kernel else None,
        test=args.test,
        command=shlex.join(args.guest_command) if args.guest_command else None,
        duration=args.duration,
        test_args=test_args(args.test_args),
        boot=boot,
        expect=tuple(args.expect),
    )


def print_result(result: JobResult, label: str) -> None:
    v = result.verdict
    o = result.outcome
    print(f"{label}: {v.status} - {v.reason}")
    if v.title:
        print(f"  title:    {v.title}")
    if o.boot_seconds is not None:
        print(f"  boot:     userspace after {o.boot_seconds:.2f} s; total {o.seconds:.2f} s")
    if (result.dir / CONSOLE).is_file():
        print(f"  console:  {result.dir / CONSOLE} ({o.lines} lines)")
    print(f"  record:   {result.dir / JOB_RECORD}")


def bug_id(text: str) -> int:
    """A bug number as argparse takes it: 12 or #12."""
    try:
        n = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a bug number (12 or #12)") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a bug number (they start at 1)")
    return n
