"""The boot stage of a job: initramfs + QEMU argv for a kernel, the console session, the
status channel, SSH work after the test, and the verdict with its record."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import __version__, atomic, progress
from orchestrator.build import record as build_record
from orchestrator.config.arch import ArchProfile
from orchestrator.errors import KtoError
from orchestrator.guest import initramfs
from orchestrator.guest.protocol import BOOT_OK, HOLD_RELEASE, POWEROFF, TEST_END_RE
from orchestrator.job.fatal import QUIET, FatalWatch
from orchestrator.job.plan import JobPlan, Kernel, timeouts
from orchestrator.proc import tool_version
from orchestrator.records.layout import FINDINGS, INITRD, JOB_RECORD, STATUS_LOG
from orchestrator.records.outcome import ConsoleOutcome
from orchestrator.records.verdict import Verdict, expect, judge
from orchestrator.vm.accel import choose_accel
from orchestrator.vm.qemu import BootSpec, build_argv, reproducer
from orchestrator.vm.session import ConsoleSession

if TYPE_CHECKING:  # a command job (`kto boot -- CMD`) needs no workload, SSH only --network
    from orchestrator.guest import ssh as guestssh
    from orchestrator.guest import workload
    from orchestrator.parser import ConsoleParser, CustomPattern, Finding

HOLD_SECONDS = 300  # the guest waits this long at most for the host's SSH work


@dataclass(frozen=True)
class GuestJob:
    """What this boot asks of the guest's /init, and the host side of its network."""

    name: str  # a guest-tests/ folder, or "command"
    command: str | None = None
    shell: bool = False
    args: str = ""  # run.sh arguments
    append: tuple[str, ...] = ()  # kernel parameters: the test's, then --append
    network: bool = False
    hold: int = 0  # seconds the guest waits after the test for the host's SSH work
    ssh_port: int | None = None  # 127.0.0.1:PORT -> the guest's sshd
    host_key: guestssh.HostKey | None = None  # this boot's, pinned (network only)


def qemu_version(profile: ArchProfile) -> str:
    return tool_version(profile.qemu.binary, profile.qemu.package)


def guest_argv(
    plan: JobPlan,
    image: Path,
    accel: str,
    guest: GuestJob,
    initrd_path: Path,
    status_path: Path | None = None,
) -> list[str]:
    """The initramfs for this boot (cached base + job archive) and the QEMU argv to boot it."""
    profile = plan.profile
    base = initramfs.build_base_initramfs(profile, sshd=guest.network)
    pub = None
    if guest.network:
        from orchestrator.guest.ssh import ensure_client_key

        pub = ensure_client_key()[1]
    job = initramfs.job_archive(
        guest.name,
        command=guest.command,
        shell=guest.shell,
        args=guest.args,
        net=guest.network,
        hold=guest.hold,
        authorized_key=pub,
        host_key=guest.host_key.dropbear if guest.host_key else None,
    )
    spec = BootSpec(
        kernel=image,
        initrd=initramfs.initrd_for(profile, base, job, initrd_path),
        smp=plan.smp,
        memory=plan.spec.boot.memory,
        accel=accel,
        append=list(guest.append),
        status_path=status_path,
        ssh_port=guest.ssh_port,
    )
    return build_argv(profile, spec)


def _guest_job(
    plan: JobPlan, wl: workload.WorkloadPlan | None, kernel: Kernel, shell: bool = False
) -> GuestJob:
    spec, b = plan.spec, plan.spec.boot
    return GuestJob(
        name=spec.test_name if not shell else "command",
        command=spec.command,
        shell=shell,
        args=wl.args if wl else "",
        append=(*(wl.cmdline if wl else _fragment_cmdline(kernel)), *b.append),  # --append wins
        network=b.network,
        hold=HOLD_SECONDS if (b.ssh_commands or b.fetch) and not shell else 0,
        ssh_port=_free_port() if b.network else None,
        host_key=_host_key() if b.network else None,
    )


def _fragment_cmdline(kernel: Kernel) -> list[str]:
    """A command or shell boot gets its kernel's fragment parameters too (cmdline.yaml):
    without `rcutorture.torture_type=none`, built-in rcutorture would run beside the
    command on every such boot."""
    from orchestrator.build.fragment_params import fragment_cmdline

    params = fragment_cmdline(build_record.fragment_names(kernel.build_record) or [])
    return [f"{k}={v}" for k, v in params.items()]


def _free_port() -> int:
    from orchestrator.guest.ssh import free_loopback_port

    return free_loopback_port()


def _host_key() -> guestssh.HostKey:
    from orchestrator.guest.ssh import make_host_key

    return make_host_key()


def _workload(plan: JobPlan, accel: str, kernel: Kernel) -> workload.WorkloadPlan | None:
    if plan.test is None:
        return None
    from orchestrator.guest import workload

    return workload.plan(
        plan.test,
        plan.profile.name,
        accel,
        duration=plan.spec.duration,
        arg_overrides=dict(plan.spec.test_args),
        build_record=kernel.build_record,
        config_text=kernel.config_text,
    )


def shell_argv(plan: JobPlan, kernel: Kernel) -> tuple[list[str], int | None]:
    """QEMU argv for an interactive console (`kto boot --shell`), and the SSH port if any."""
    choice = choose_accel(plan.spec.boot.accel, plan.profile.name)
    guest = _guest_job(plan, None, kernel, shell=True)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="kto-shell-"))
    return guest_argv(plan, kernel.image, choice.accel, guest, tmp / INITRD), guest.ssh_port


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


def reconcile_status(outcome: ConsoleOutcome, status: dict[str, Any] | None) -> None:
    """The status channel's test exit status wins over the console marker (which a flood of
    kernel output can mangle or a lost line can drop); a disagreement is recorded."""
    if not status or status.get("test_rc") is None:
        return
    if outcome.test_rc is None:
        outcome.test_rc = status["test_rc"]
    elif outcome.test_rc != status["test_rc"]:
        status["disagrees_with_console"] = outcome.test_rc
        outcome.test_rc = status["test_rc"]


class HostWork:
    """SSH commands and file fetches done while the guest holds after its test."""

    def __init__(self, plan: JobPlan, guest: GuestJob, outdir: Path) -> None:
        self.commands = plan.spec.boot.ssh_commands
        self.fetch = plan.spec.boot.fetch
        self.port = guest.ssh_port
        self.host_key = guest.host_key
        self.outdir = outdir
        self.wanted = guest.network and bool(self.commands or self.fetch)
        self.error: str | None = None
        self.results: list[dict[str, Any]] = []
        self.files: list[str] = []

    def __call__(self, _test_rc: int) -> bool:
        """Do the SSH work; False tells the console session to stop the guest."""
        assert self.port and self.host_key
        from orchestrator.guest.ssh import GuestSSH

        ssh = GuestSSH(self.port, self.host_key.public)
        try:
            ssh.connect(timeout=60)
            for cmd in self.commands:
                res = ssh.run(cmd)
                self.results.append({"command": cmd, "status": res.status})
                out = self.outdir / "ssh" / f"{len(self.results):02d}.out"
                atomic.write_bytes(out, res.stdout + res.stderr)
                progress.say(f"ssh: `{cmd}` -> status {res.status} ({out})")
            for path in self.fetch:
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


def base_record(plan: JobPlan) -> dict[str, Any]:
    """The fields every job.json starts with, whatever stage the job reached."""
    spec = plan.spec
    return {
        "kto_version": __version__,
        "kind": "boot",
        "job_id": spec.id,
        "job": spec.to_dict(),
        "arch": plan.profile.name,
        "test": spec.test_name,
        "command": spec.command,
        "repeat": spec.repeat,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def boot(
    plan: JobPlan,
    kernel: Kernel,
    outdir: Path,
    echo: bool = False,
    extra: dict[str, Any] | None = None,
) -> tuple[Verdict, ConsoleOutcome, dict[str, Any]]:
    profile = plan.profile
    timings: dict[str, float] = {}
    choice = choose_accel(plan.spec.boot.accel, profile.name)
    progress.say(f"accelerator: {choice.accel} ({choice.reason})")
    qversion = qemu_version(profile)
    wl = _workload(plan, choice.accel, kernel)
    guest = _guest_job(plan, wl, kernel)
    status_path = outdir / STATUS_LOG if profile.qemu.status_serial else None
    with progress.phase("initramfs", timings, key="initramfs"):
        argv = guest_argv(plan, kernel.image, choice.accel, guest, outdir / INITRD, status_path)
    limits = timeouts(plan, wl.time_limit if wl else None).scaled(profile.qemu.timeout_scale)
    forbidden = [p for p in (wl.test.criteria.forbidden if wl else ())]
    patterns: list[str | CustomPattern] = [*plan.spec.boot.patterns, *forbidden]
    for p in patterns:  # a bad --pattern fails here, before QEMU starts
        re.compile(p if isinstance(p, str) else p.regex)
    parser: ConsoleParser | None = None

    def console_parser() -> ConsoleParser:
        # Made once QEMU runs (the session's on_spawn): loading the parser's tables then
        # overlaps QEMU's start-up instead of delaying it.
        nonlocal parser
        if parser is None:
            from orchestrator.parser import ConsoleParser

            parser = ConsoleParser(patterns)
        return parser

    watch = FatalWatch(plan.spec.boot.fatal_grace)

    def found(findings: list[Finding]) -> None:
        for f in findings:
            progress.say(f"finding: {f.title} (console line {f.first_line})")
            watch.feed(f.kind, f.title, f.panicked, time.monotonic())

    def on_line(line: str) -> None:
        if wl:
            wl.monitor.feed(line)
        found(console_parser().feed(line))

    def should_stop(now: float, last_output: float) -> str | None:
        # A report followed by silence (a deadlock) is complete: judge it now, not when
        # the next report (a hung task, minutes later) would have closed it.
        p = console_parser()
        if p.reporting and now - last_output >= QUIET:
            found(p.flush())
        return watch.should_stop(now, last_output)

    record: dict[str, Any] = {
        **base_record(plan),
        **(extra or {}),
        "kernel": str(kernel.image),
        "build": build_record.summary(kernel.build_record) if kernel.build_record else None,
        "accel": choice.to_dict(),
        "qemu": {"version": qversion, "argv": argv, "reproducer": reproducer(argv)},
        "timeouts": limits.__dict__,
        "fatal_grace_s": plan.spec.boot.fatal_grace,
        "workload": wl.record() if wl else None,
    }
    # Not fsynced: a marker that the job started; the final record below is durable.
    atomic.write_json(outdir / JOB_RECORD, {**record, "status": "RUNNING"}, durable=False)
    progress.say(f"boot {profile.name}: {reproducer(argv)}")
    host_work = HostWork(plan, guest, outdir)
    session = ConsoleSession(
        argv,
        outdir,
        limits,
        on_line=on_line,
        echo=echo,
        on_test_end=host_work if host_work.wanted else None,
        should_stop=should_stop,
        on_spawn=console_parser,
    )
    try:
        with progress.phase(
            f"boot {profile.name} + {record['test']}",
            timings,
            key="guest",
            ticker=lambda: f"({session.outcome.lines} console lines)",
        ):
            session.run()
    finally:
        done = console_parser()
        done.finish()
        findings = [f.to_dict() for f in done.findings]
        atomic.write_json(outdir / FINDINGS, {"findings": findings})
        outcome = session.outcome
        status = read_status_channel(status_path) if status_path else None
        reconcile_status(outcome, status)
        verdict = judge(outcome, findings, infra_error=host_work.error)
        if wl:
            from orchestrator.guest import monitor

            verdict = monitor.evaluate(wl.test, verdict, outcome, wl.monitor)
            record["metrics"] = wl.monitor.metrics()
        verdict = expect(verdict, plan.spec.expect)
        if guest.network:
            record["network"] = {"ssh_port": guest.ssh_port, **host_work.summary()}
        record["status_channel"] = status
        record.update(
            {
                "status": str(verdict.status),
                "verdict": verdict.to_dict(),
                "outcome": outcome.to_dict(),
                "durations": timings,
            }
        )
        atomic.write_json(outdir / JOB_RECORD, record)
    return verdict, outcome, record
