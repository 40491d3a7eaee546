"""`kto` command line: one sub-module per sub-command under orchestrator/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import EXIT_USAGE, KtoError

# Each module provides add_parser(subparsers) and run(args) -> int.
COMMANDS = ["build", "boot", "run", "parse"]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kto",
        description="Build, boot, stress and judge Linux kernels in QEMU.",
        epilog="Exit codes: 0 ok, 1 kernel FAIL/findings, 2 bad input, 3 infrastructure error, "
        "4 patch does not apply, 5 kernel does not build, 6 missing host dependency "
        "(run `make setup`).",
    )
    parser.add_argument("--version", action="version", version=f"kto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.commands.{name}":
                continue  # command not written yet
            raise
        cmd = module.add_parser(sub)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args._run(args))
    except KtoError as exc:
        print(f"kto {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"kto {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
