"""Boot a built kernel in QEMU with kto's initramfs, run one guest job, judge the console."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, atomic, initramfs, progress
from .accel import choose_accel
from .console import ConsoleOutcome, ConsoleSession, Timeouts
from .errors import UserError
from .parser import ConsoleParser
from .proc import require_tool, run
from .profiles import ArchProfile, load_profile
from .qemu import BootSpec, build_argv, reproducer
from .verdict import Status, Verdict, judge


@dataclass
class BootRequest:
    arch: str
    kernel: Path
    test: str = "smoke"  # a folder under guest-tests/, or "command"
    command: str | None = None
    args: str = ""
    shell: bool = False
    smp: int = 2
    memory: str | None = None
    accel: str = "auto"
    append: list[str] = field(default_factory=list)
    timeouts: Timeouts | None = None
    patterns: list[str] = field(default_factory=list)  # custom finding patterns
    echo: bool = False
    build_record: dict[str, Any] | None = None


@dataclass
class BootResult:
    verdict: Verdict
    outcome: ConsoleOutcome
    dir: Path
    record: dict[str, Any]

    @property
    def exit_code(self) -> int:
        # `kto boot -- CMD` passes the command's status through when the kernel was fine.
        if (
            self.verdict.status is Status.FAIL
            and not self.verdict.findings
            and self.outcome.test_rc
        ):
            return self.outcome.test_rc
        return self.verdict.status.exit_code


def qemu_version(profile: ArchProfile) -> str:
    binary = require_tool(profile.qemu.binary)
    return run([binary, "--version"]).stdout.splitlines()[0].strip()


def resolve_kernel(path: Path, profile: ArchProfile) -> tuple[Path, dict[str, Any] | None]:
    """A kernel image, or a build directory with a build.json from `kto build`."""
    from .build import load_record

    if path.is_dir():
        rec = load_record(path)
        if rec is None:
            raise UserError(
                f"{path}: a directory without a build.json",
                hint="give a kernel image or a `kto build` output directory",
            )
        if rec["inputs"]["arch"] != profile.name:
            raise UserError(
                f"{path}: built for {rec['inputs']['arch']}, not {profile.name}",
                hint=f"use --arch {rec['inputs']['arch']}",
            )
        return path / rec["artifacts"]["kernel"]["path"], rec
    if not path.is_file():
        raise UserError(
            f"kernel {path} does not exist",
            hint="give a kernel image, a `kto build` directory, or omit it to "
            "build the default tree",
        )
    return path, None


def default_timeouts(test: str) -> Timeouts:
    t = Timeouts()
    if test not in ("command", "boot"):
        t.test = float(initramfs.test_timeout(test) or t.test)
    return t


def boot(req: BootRequest, outdir: Path) -> BootResult:
    profile = load_profile(req.arch)
    kernel, rec = resolve_kernel(req.kernel, profile)
    build_record = req.build_record or rec
    timings: dict[str, float] = {}
    choice = choose_accel(req.accel, profile.name)
    progress.say(f"accelerator: {choice.accel} ({choice.reason})")
    qversion = qemu_version(profile)

    with progress.phase("initramfs", timings, key="initramfs"):
        argv = guest_argv(req, profile, kernel, choice.accel, outdir / "initrd.img")
    factor = profile.qemu.timeout_scale
    timeouts = (req.timeouts or default_timeouts(req.test)).scaled(factor)

    parser = ConsoleParser(req.patterns)

    def on_line(line: str) -> None:
        for f in parser.feed(line):
            progress.say(f"finding: {f.title} (console line {f.first_line})")

    record: dict[str, Any] = {
        "kto_version": __version__,
        "kind": "boot",
        "arch": profile.name,
        "test": "command" if req.command else req.test,
        "command": req.command,
        "kernel": str(kernel),
        "build": {k: build_record.get(k) for k in ("key", "reproducer", "inputs")}
        if build_record
        else None,
        "accel": choice.to_dict(),
        "qemu": {"version": qversion, "argv": argv, "reproducer": reproducer(argv)},
        "timeouts": timeouts.__dict__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic.write_json(outdir / "job.json", {**record, "status": "RUNNING"})
    progress.say(f"boot {profile.name}: {reproducer(argv)}")
    session = ConsoleSession(argv, outdir, timeouts, on_line=on_line, echo=req.echo)
    try:
        with progress.phase(
            f"boot {profile.name} + {record['test']}",
            timings,
            key="guest",
            ticker=lambda: f"({session.outcome.lines} console lines)",
        ):
            outcome = session.run()
    finally:
        parser.finish()
        findings = [f.to_dict() for f in parser.findings]
        atomic.write_json(outdir / "findings.json", {"findings": findings})
        outcome = session.outcome
        verdict = judge(outcome, findings)
        record.update(
            {
                "status": str(verdict.status),
                "verdict": verdict.to_dict(),
                "outcome": outcome.to_dict(),
                "durations": timings,
            }
        )
        atomic.write_json(outdir / "job.json", record)
    return BootResult(verdict, outcome, outdir, record)


def guest_argv(
    req: BootRequest, profile: ArchProfile, kernel: Path, accel: str, initrd_path: Path
) -> list[str]:
    """The initramfs for this job (cached base + job archive) and the QEMU argv to boot it."""
    base = initramfs.build_base_initramfs(profile)
    job = initramfs.job_archive(
        "command" if req.command or req.shell else req.test,
        command=req.command,
        shell=req.shell,
        args=req.args,
    )
    initrd = initramfs.initrd_for(profile, base, job, initrd_path)
    spec = BootSpec(
        kernel=kernel,
        initrd=initrd,
        smp=req.smp,
        memory=req.memory,
        accel=accel,
        append=list(req.append),
    )
    return build_argv(profile, spec)


def shell_argv(req: BootRequest) -> list[str]:
    """QEMU argv for an interactive console session (`kto boot --shell`)."""
    profile = load_profile(req.arch)
    kernel, _ = resolve_kernel(req.kernel, profile)
    choice = choose_accel(req.accel, profile.name)
    tmp = Path(tempfile.mkdtemp(prefix="kto-shell-"))
    req.shell = True
    return guest_argv(req, profile, kernel, choice.accel, tmp / "initrd.img")
