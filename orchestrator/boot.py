"""Boot a built kernel in QEMU with kto's initramfs, run one guest job, judge the console."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, atomic, guestssh, initramfs, progress, workloads
from .accel import choose_accel
from .console import ConsoleOutcome, ConsoleSession, Timeouts
from .errors import KtoError, UserError
from .guest_protocol import BOOT_OK, HOLD_RELEASE, POWEROFF, TEST_END_RE
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
    duration: int | None = None  # workload duration (s); None: the test's default
    test_args: dict[str, str] = field(default_factory=dict)  # run.sh key=value overrides
    network: bool = False  # user networking + the guest's sshd on a loopback port
    ssh_commands: list[str] = field(default_factory=list)  # run over SSH after the test
    fetch: list[str] = field(default_factory=list)  # guest files copied to <job>/files/
    ssh_port: int | None = None  # chosen by guest_argv when network is on


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


def default_timeouts(test: str, plan: workloads.WorkloadPlan | None = None) -> Timeouts:
    t = Timeouts()
    if plan:
        t.test = float(plan.time_limit)
    elif test not in ("command", "boot"):
        t.test = float(initramfs.test_timeout(test) or t.test)
    return t


def workload_plan(
    req: BootRequest, arch: str, accel: str, kernel: Path, build_record: dict[str, Any] | None
) -> workloads.WorkloadPlan | None:
    """The test's kernel parameters, run.sh arguments, duration and time limit."""
    if req.command or req.shell or req.test in initramfs.RESERVED_TESTS:
        return None
    config = kernel.parent / "config"
    plan = workloads.plan(
        initramfs.load_test(req.test),
        arch,
        accel,
        duration=req.duration,
        arg_overrides=req.test_args,
        build_record=build_record,
        config_text=config.read_text() if config.is_file() else None,
    )
    req.append = [*plan.cmdline, *req.append]  # --append comes last: it wins
    req.args = " ".join(a for a in (plan.args, req.args) if a)
    req.patterns = [*req.patterns, *plan.test.criteria.forbidden]
    return plan


def skipped(req: BootRequest, outdir: Path, reason: str) -> BootResult:
    """A test that cannot run on this arch: a SKIP record, nothing built or booted."""
    verdict = Verdict(Status.SKIP, reason)
    record: dict[str, Any] = {
        "kto_version": __version__,
        "kind": "boot",
        "arch": req.arch,
        "test": req.test,
        "status": str(verdict.status),
        "verdict": verdict.to_dict(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic.write_json(outdir / "job.json", record)
    return BootResult(verdict, ConsoleOutcome(), outdir, record)


def boot(req: BootRequest, outdir: Path) -> BootResult:
    profile = load_profile(req.arch)
    kernel, rec = resolve_kernel(req.kernel, profile)
    build_record = req.build_record or rec
    timings: dict[str, float] = {}
    choice = choose_accel(req.accel, profile.name)
    progress.say(f"accelerator: {choice.accel} ({choice.reason})")
    qversion = qemu_version(profile)

    plan = workload_plan(req, profile.name, choice.accel, kernel, build_record)
    with progress.phase("initramfs", timings, key="initramfs"):
        argv = guest_argv(req, profile, kernel, choice.accel, outdir / "initrd.img", outdir)
    factor = profile.qemu.timeout_scale
    timeouts = (req.timeouts or default_timeouts(req.test, plan)).scaled(factor)

    parser = ConsoleParser(req.patterns)

    def on_line(line: str) -> None:
        if plan:
            plan.monitor.feed(line)
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
        "workload": plan.record() if plan else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic.write_json(outdir / "job.json", {**record, "status": "RUNNING"})
    progress.say(f"boot {profile.name}: {reproducer(argv)}")
    host_work = HostWork(req, outdir)
    session = ConsoleSession(
        argv,
        outdir,
        timeouts,
        on_line=on_line,
        echo=req.echo,
        on_test_end=host_work if host_work.wanted else None,
    )
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
        status = read_status_channel(outdir / STATUS_FILE) if profile.qemu.status_serial else None
        if status and status.get("test_rc") is not None:
            if outcome.test_rc is None:
                outcome.test_rc = status["test_rc"]  # the console marker was lost or mangled
            elif outcome.test_rc != status["test_rc"]:
                status["disagrees_with_console"] = outcome.test_rc
                outcome.test_rc = status["test_rc"]
        verdict = judge(outcome, findings, infra_error=host_work.error)
        if plan:
            verdict = workloads.evaluate(plan.test, verdict, outcome, plan.monitor)
            record["metrics"] = plan.monitor.metrics()
        if req.network:
            record["network"] = {"ssh_port": req.ssh_port, **host_work.summary()}
        record["status_channel"] = status
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
    req: BootRequest,
    profile: ArchProfile,
    kernel: Path,
    accel: str,
    initrd_path: Path,
    outdir: Path | None = None,
) -> list[str]:
    """The initramfs for this job (cached base + job archive) and the QEMU argv to boot it."""
    base = initramfs.build_base_initramfs(profile, sshd=req.network)
    pub = None
    if req.network:
        _, pub = guestssh.ensure_client_key()
        req.ssh_port = req.ssh_port or guestssh.free_loopback_port()
    job = initramfs.job_archive(
        "command" if req.command or req.shell else req.test,
        command=req.command,
        shell=req.shell,
        args=req.args,
        net=req.network,
        hold=HOLD_SECONDS if (req.ssh_commands or req.fetch) else 0,
        authorized_key=pub,
    )
    initrd = initramfs.initrd_for(profile, base, job, initrd_path)
    spec = BootSpec(
        kernel=kernel,
        initrd=initrd,
        smp=req.smp,
        memory=req.memory,
        accel=accel,
        append=list(req.append),
        status_path=outdir / STATUS_FILE if outdir else None,
        ssh_port=req.ssh_port if req.network else None,
    )
    return build_argv(profile, spec)


STATUS_FILE = "status.log"
HOLD_SECONDS = 300  # the guest waits this long at most for the host's SSH work


def read_status_channel(path: Path) -> dict[str, Any] | None:
    """What the guest wrote on its status channel: None if the channel never opened."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    status: dict[str, Any] = {
        "lines": len(text.splitlines()),
        "test_rc": None,
        "boot_ok": BOOT_OK in text,
        "poweroff": POWEROFF in text,
    }
    for m in TEST_END_RE.finditer(text):
        status["test_rc"] = int(m.group(2))
    return status


class HostWork:
    """SSH commands and file fetches done while the guest holds after its test."""

    def __init__(self, req: BootRequest, outdir: Path) -> None:
        self.req = req
        self.outdir = outdir
        self.wanted = req.network and bool(req.ssh_commands or req.fetch)
        self.error: str | None = None
        self.results: list[dict[str, Any]] = []
        self.files: list[str] = []

    def __call__(self, _test_rc: int) -> bool:
        """Do the SSH work; False tells the console session to stop the guest."""
        assert self.req.ssh_port
        ssh = guestssh.GuestSSH(self.req.ssh_port)
        try:
            ssh.connect(timeout=60)
            for cmd in self.req.ssh_commands:
                res = ssh.run(cmd)
                self.results.append({"command": cmd, "status": res.status})
                out = self.outdir / "ssh" / f"{len(self.results):02d}.out"
                atomic.write_bytes(out, res.stdout + res.stderr)
                progress.say(f"ssh: `{cmd}` -> status {res.status} ({out})")
            for path in self.req.fetch:
                dest = self.outdir / "files" / path.strip("/").replace("/", "__")
                atomic.write_bytes(dest, ssh.fetch(path))
                self.files.append(str(dest))
                progress.say(f"ssh: fetched {path} -> {dest}")
            ssh.run(f"touch {HOLD_RELEASE}")
        except KtoError as exc:
            self.error = f"SSH work failed: {exc.message}"
            progress.say(self.error)
        finally:
            ssh.close()
        return self.error is None

    def summary(self) -> dict[str, Any]:
        return {"commands": self.results, "files": self.files, "error": self.error}


def shell_argv(req: BootRequest) -> list[str]:
    """QEMU argv for an interactive console session (`kto boot --shell`)."""
    profile = load_profile(req.arch)
    kernel, _ = resolve_kernel(req.kernel, profile)
    choice = choose_accel(req.accel, profile.name)
    tmp = Path(tempfile.mkdtemp(prefix="kto-shell-"))
    req.shell = True
    return guest_argv(req, profile, kernel, choice.accel, tmp / "initrd.img")
