"""`kto` command line: one sub-module per sub-command under orchestrator/commands/."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys

from orchestrator import __version__
from orchestrator.errors import EXIT_INFRA, EXIT_USAGE, KtoError

# Each module provides add_arguments(parser) and run(args) -> int, and may set DESCRIPTION,
# EPILOG and FORMATTER. Only the module of the command being run is imported (`kto parse` is
# started once per log by scorers: keep it fast).
COMMANDS = {
    "build": "build a kernel (cached by content)",
    "boot": "boot a kernel in QEMU, run a command or test, judge the console",
    "run": "build (cached) + boot + run a test (default: smoke)",
    "parse": "find kernel crashes, warnings, hangs and test failures in console logs",
    "report": "regenerate JUnit/KCIDB/HTML reports of a run",
    "compare": "regressions between two runs: new / fixed / still failing / flaky",
    "bugs": "the bugs across runs: list, show, close/invalid/dup/undup/reopen",
    "matrix": "run a matrix (trees x series x arches x configs x tests): nightly, resumable",
    "bisect": "find the commit between --good and --bad that introduced a finding",
    "test": "test a fix against a bug: enough runs to say it is gone",
    "job": "run one job from a JobSpec JSON file (what the matrix and bisect run)",
    "workers": "start Dask workers for --scheduler (here, or on hosts over SSH)",
}


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
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
        if only is not None and name != only:
            continue  # argv names `only`: the other commands' parsers (~1 ms each) go unused
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.commands.{name}":
                continue  # command not written yet
            raise
        # The one sub-parser shape: help from COMMANDS, the rest from the command's module.
        cmd = sub.add_parser(
            name,
            help=COMMANDS[name],
            description=getattr(module, "DESCRIPTION", None),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=getattr(module, "FORMATTER", argparse.HelpFormatter),
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _terminated(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _host_error(command: str, exc: OSError) -> int:
    where = f" ({exc.filename})" if exc.filename else ""
    print(f"kto {command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
    return EXIT_INFRA


def _stdout_gone() -> bool:
    """Is stdout a pipe whose reader went away? If so it now goes to /dev/null, so that
    Python's flush at exit does not complain."""
    import select

    try:
        fd = sys.stdout.fileno()
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        # A pipe's write end reports POLLERR once its reader is gone.
        if not any(ev & select.POLLERR for _, ev in poll.poll(0)):
            return False
    except (OSError, ValueError):  # no stdout, or not a file
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return True


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `kto CMD ...` builds CMD's parser only; `kto -h CMD` still lists every command.
    first = argv[0] if argv else None
    parser = make_parser(first if first in COMMANDS else None)
    # Everything after `--` is a command for the guest (`kto boot -- uname -a`).
    guest_command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, guest_command = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    args.guest_command = guest_command
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # SIGTERM (a CI timeout, systemd, kill) unwinds like Ctrl-C: children stopped,
        # records kept, exit 3; the console session and the matrix pool refine this.
        signal.signal(signal.SIGTERM, _terminated)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A shell script's `kto ... &` starts kto with SIGINT ignored (and Python then
        # installs no KeyboardInterrupt): a `kill -INT` would be lost mid-build.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args._run(args))
    except KtoError as exc:
        print(f"kto {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # Interrupted is an infrastructure outcome (exit 3), like a job stopped by a signal.
        print(f"kto {args.command}: interrupted", file=sys.stderr)
        return EXIT_INFRA
    except BrokenPipeError as exc:
        if not _stdout_gone():
            return _host_error(args.command, exc)  # a pipe of QEMU, ssh, a worker...
        # The reader of kto's output went away (`kto bugs show 1 | head`): nothing to say to
        # it. Not green: what kto meant to print was not all read.
        return EXIT_INFRA
    except OSError as exc:
        # A file system that filled up or went read-only under kto is the host's problem:
        # an infrastructure error naming the file, not a traceback (which would exit 1, FAIL).
        return _host_error(args.command, exc)
    except Exception:
        # A kto bug is an infrastructure outcome, never a verdict: Python's own exit status
        # for a traceback is 1, which would read as "the kernel FAILed".
        import traceback

        traceback.print_exc()
        print(f"kto {args.command}: internal error (a kto bug): exit 3", file=sys.stderr)
        return EXIT_INFRA


def entry() -> None:
    """The `kto` executable: main(), then a quick exit.

    With only the main thread left, nothing is waiting to be joined: the atexit handlers
    run and the streams are flushed, but the interpreter's teardown of ~200 modules (5-8 ms,
    a share of kto's per-boot overhead) is skipped. Threads still running (a Dask client,
    an SSH transport) get the normal exit, which joins them."""
    rc = main()
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(rc)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(rc & 0xFF)  # what sys.exit(rc) gives the shell


if __name__ == "__main__":
    entry()
