"""ConsoleSession against a fake QEMU (tests/fakeqemu/qemu-fake): replayed consoles, QEMU
deaths, hangs with and without a SysRq answer, a QEMU that ignores SIGTERM, kto interrupted,
and the status channel reconciled with the console. Fast: no kernel, no real QEMU."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.guest.protocol import BOOT_OK, POWEROFF, TEST_END, TEST_START
from orchestrator.job.boot_stage import read_status_channel, reconcile_status
from orchestrator.records.layout import CONSOLE, CONSOLE_TIMING
from orchestrator.records.outcome import ConsoleOutcome, Timeouts
from orchestrator.records.verdict import Status, judge
from orchestrator.vm.session import ConsoleSession, Interrupted

HERE = Path(__file__).resolve().parent
FAKE = HERE / "fakeqemu" / "qemu-fake"
GOLDEN = HERE / "parser" / "golden"
CLEAN_BOOTS = sorted(GOLDEN.glob("clean-*boot*.log"))

FAST = Timeouts(boot=5, test=5, silence=1, poweroff=2)


# -- helpers ---------------------------------------------------------------------------------
def guest_console(rc: int = 0, test: str = "boot", boot_lines: int = 3) -> bytes:
    """A console as guest-tests/init/init prints it: kernel lines, then /init's markers."""
    kernel = [f"[    0.{i:03d}] kernel line {i}" for i in range(boot_lines)]
    init = [
        "[    1.000] Run /init as init process",
        BOOT_OK,
        f"{TEST_START} {test}",
        f"{test}: working",
        f"{TEST_END} {test} rc={rc}",
        POWEROFF,
        "[    2.000] reboot: Power down",
    ]
    return "".join(f"{ln}\n" for ln in kernel + init).encode()


def with_markers(golden: bytes, rc: int = 0) -> bytes:
    """A recorded console with /init's markers put in after 'Run /init as init process'."""
    lines = golden.splitlines(keepends=True)
    at = next((i + 1 for i, ln in enumerate(lines) if b"Run /init" in ln), len(lines) - 1)
    markers = f"{BOOT_OK}\n{TEST_START} boot\n{TEST_END} boot rc={rc}\n{POWEROFF}\n".encode()
    return b"".join(lines[:at]) + markers + b"".join(lines[at:])


def gone(pid: int) -> bool:
    """The process no longer exists: it exited and was reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not Path(f"/proc/{pid}").exists()
    return False


def running(pid: int) -> bool:
    """The process exists and is not a zombie (dead, not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class Run:
    """One session against the fake: its console, environment, outcome and child pid."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
        self.tmp = tmp_path
        self.mp = monkeypatch
        self.argv = argv
        self.outdir = tmp_path / "job"
        self.session: ConsoleSession | None = None

    def console(self, data: bytes, **env: object) -> Run:
        replay = self.tmp / "replay.log"
        replay.write_bytes(data)
        self.mp.setenv("FAKEQEMU_REPLAY", str(replay))
        for k, v in env.items():
            self.mp.setenv(f"FAKEQEMU_{k.upper()}", str(v))
        return self

    def start(self, timeouts: Timeouts = FAST, extra: list[str] | None = None) -> ConsoleSession:
        self.session = ConsoleSession([*self.argv, *(extra or [])], self.outdir, timeouts)
        return self.session

    def run(self, timeouts: Timeouts = FAST, extra: list[str] | None = None) -> ConsoleOutcome:
        return self.start(timeouts, extra).run()

    @property
    def pid(self) -> int:
        assert self.session is not None and self.session._child is not None
        return self.session._child.pid

    def log(self) -> bytes:
        return (self.outdir / CONSOLE).read_bytes()

    def timing(self) -> list[tuple[float, int]]:
        rows = (self.outdir / CONSOLE_TIMING).read_text().splitlines()
        assert rows[0] == "seconds\tbyte_offset"
        return [(float(s), int(o)) for s, o in (r.split("\t") for r in rows[1:])]


@pytest.fixture
def fake_qemu(monkeypatch: pytest.MonkeyPatch) -> str:
    """`qemu-fake` on PATH (run by this interpreter through its `env python3` shebang)."""
    assert os.access(FAKE, os.X_OK), f"{FAKE} must be executable"
    path = os.pathsep.join([str(FAKE.parent), str(Path(sys.executable).parent), os.environ["PATH"]])
    monkeypatch.setenv("PATH", path)
    for k in [k for k in os.environ if k.startswith("FAKEQEMU_")]:
        monkeypatch.delenv(k)
    return FAKE.name


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_qemu: str) -> Run:
    return Run(tmp_path, monkeypatch, [fake_qemu])


@pytest.fixture
def short_sysrq(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session listens 4 s after each SysRq key; the fake answers at once: listen 0.3 s."""
    drain = ConsoleSession._drain
    monkeypatch.setattr(
        ConsoleSession, "_drain", lambda self, s, quiet=None: drain(self, min(s, 0.3), quiet)
    )


# -- a guest that runs to the end -------------------------------------------------------------
@pytest.mark.parametrize("golden", CLEAN_BOOTS, ids=lambda p: p.stem)
def test_clean_replay_is_recorded_byte_for_byte_and_passes(fake: Run, golden: Path) -> None:
    data = with_markers(golden.read_bytes())
    o = fake.console(data).run()

    assert (o.boot_ok, o.test_started, o.test_rc, o.poweroff_marker) == (True, True, 0, True)
    assert (o.qemu_exit, o.qemu_signal, o.killed, o.stopped) == (0, None, None, None)
    assert fake.log() == data  # raw pty: no \r\n translation, escape sequences kept
    assert o.bytes == len(data)
    assert o.lines == data.count(b"\n")
    assert o.last_lines[-1] == data.splitlines()[-1].decode(errors="replace").rstrip("\r")
    rows = fake.timing()
    starts = [0, *[i + 1 for i, b in enumerate(data) if b == ord("\n")][:-1]]
    assert [off for _, off in rows] == starts  # one row per line, at the line's first byte
    seconds = [s for s, _ in rows]
    assert seconds == sorted(seconds) and seconds[-1] <= o.seconds
    assert o.boot_seconds is not None and o.boot_seconds <= o.seconds
    v = judge(o, [])
    assert v.status is Status.PASS, v.reason


def test_test_exit_status_is_a_fail(fake: Run) -> None:
    o = fake.console(guest_console(rc=3, test="selftest")).run()
    assert (o.test_rc, o.qemu_exit) == (3, 0)
    v = judge(o, [])
    assert (v.status, v.title) == (Status.FAIL, "kto: test failed with status 3")


def test_console_is_timed_as_it_arrives(fake: Run) -> None:
    o = fake.console(guest_console(), delay=0.1).run()
    seconds = [s for s, _ in fake.timing()]
    assert len(seconds) == o.lines == 10
    assert seconds[-1] - seconds[0] >= 0.7  # 9 pauses of 0.1 s, not one burst
    assert o.test_seconds is not None and o.test_seconds >= 0.15


def test_unterminated_last_line_is_kept_and_counted(fake: Run) -> None:
    data = guest_console() + b"[    2.100] ACPI: PM: final words"
    o = fake.console(data).run()
    assert o.lines == data.count(b"\n") + 1
    assert o.last_lines[-1] == "[    2.100] ACPI: PM: final words"
    assert o.bytes == len(data)
    assert fake.log()[: len(data)] == data
    assert fake.timing()[-1][1] == data.rindex(b"\n") + 1  # a timing row for the last line too


def test_unterminated_last_line_leaves_console_log_untouched(fake: Run) -> None:
    data = guest_console() + b"no newline at the end"
    fake.console(data).run()
    assert fake.log() == data


# -- QEMU dies -------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["mid-boot", "mid-test"])
def test_qemu_exit_status_1_is_an_error_not_a_fail(fake: Run, stage: str) -> None:
    lines = [b"[    0.000] Linux version 6.1.0", b"[    0.100] kernel line"]
    if stage == "mid-test":
        lines += [BOOT_OK.encode(), f"{TEST_START} boot".encode()]
    lines.append(b"qemu-system-x86_64: terminating: virtio-blk failed")
    o = fake.console(b"\n".join(lines) + b"\n", exit=1).run()
    assert (o.qemu_exit, o.test_rc, o.killed) == (1, None, None)
    assert o.boot_ok is (stage == "mid-test")
    v = judge(o, [])
    assert v.status is Status.ERROR
    assert (
        v.reason == "QEMU exited with status 1: qemu-system-x86_64: terminating: virtio-blk failed"
    )


def test_qemu_exit_0_before_userspace_is_an_error(fake: Run) -> None:
    o = fake.console(b"[    0.000] Linux version 6.1.0\n").run()
    v = judge(o, [])
    assert (o.qemu_exit, v.status) == (0, Status.ERROR)
    assert v.reason == "QEMU exited before userspace was reached"


# -- hangs -----------------------------------------------------------------------------------
def test_silent_guest_answering_sysrq_is_a_hang_fail(fake: Run, short_sysrq: None) -> None:
    t0 = time.monotonic()
    o = fake.console(guest_console(), silent_after=6).run()  # stops after TEST_START
    assert time.monotonic() - t0 < 6
    assert o.killed == "no console output for 1 s"
    assert (o.test_started, o.test_rc, o.sysrq_sent, o.sysrq_answered) == (True, None, True, True)
    log = fake.log()
    for answer in (b"Show Blocked State", b"Show State", b"Show backtrace of all active CPUs"):
        assert b"sysrq: " + answer + b"\n" in log  # all of SYSRQ_KEYS were asked for
    assert o.qemu_signal == signal.SIGTERM
    assert gone(fake.pid)
    v = judge(o, [])
    assert v.status is Status.FAIL
    assert v.title == "kto: guest hang: no console output for 1 s"
    assert "kernel answered SysRq" in v.reason


def test_silent_guest_not_answering_sysrq_is_an_error(fake: Run, short_sysrq: None) -> None:
    # sysrq text printed before kto asked is no answer
    data = b"sysrq: Show Blocked State\n" + guest_console()
    o = fake.console(data, silent_after=7, sysrq_dead=1).run()
    assert o.killed == "no console output for 1 s"
    assert (o.test_started, o.sysrq_sent, o.sysrq_answered) == (True, True, False)
    assert fake.log().count(b"sysrq:") == 1
    v = judge(o, [])
    assert v.status is Status.ERROR
    assert "did not answer SysRq" in v.reason


@pytest.mark.parametrize(
    ("silent_after", "timeouts", "killed"),
    [
        # kernel output keeps flowing, but /init never says boot-ok
        pytest.param(
            None,
            Timeouts(boot=1, test=5, silence=5, poweroff=5),
            "(boot timeout)",
        ),
        # the test prints forever and never ends
        pytest.param(
            None,
            Timeouts(boot=5, test=1, silence=5, poweroff=5),
            "(test timeout)",
        ),
        # test-end, then nothing: /init never powers off
        (8, Timeouts(boot=5, test=5, silence=5, poweroff=1), "did not power off within 1 s"),
    ],
    ids=["boot", "test", "poweroff"],
)
def test_phase_timeouts(
    fake: Run, short_sysrq: None, silent_after: int | None, timeouts: Timeouts, killed: str
) -> None:
    if "boot" in killed:
        data = b"".join(f"[  {i:4d}] kernel line\n".encode() for i in range(80))
    elif "test" in killed:
        data = guest_console().split(TEST_END.encode())[0]
        data += b"".join(f"selftest: step {i}\n".encode() for i in range(80))
    else:
        data = guest_console()  # line 8 is TEST_END
    env = {"delay": 0.05} if silent_after is None else {"silent_after": silent_after}
    t0 = time.monotonic()
    o = fake.console(data, **env).run(timeouts)
    assert time.monotonic() - t0 < 5
    assert o.killed is not None and killed in o.killed, o.killed
    assert o.sysrq_answered
    v = judge(o, [])
    assert v.status is Status.FAIL
    assert v.title == "kto: guest hang: " + o.killed.split(" (")[0]


def test_qemu_ignoring_sigterm_is_killed(fake: Run, short_sysrq: None) -> None:
    t0 = time.monotonic()
    o = fake.console(guest_console(), silent_after=6, ignore_term=1).run()
    elapsed = time.monotonic() - t0
    pid = fake.pid
    try:
        # 1 s of silence, ~1.5 s of SysRq, 3 s of SIGTERM grace, then SIGKILL
        assert elapsed < 9, elapsed
        assert o.killed == "no console output for 1 s"
        assert not running(pid)
        assert o.qemu_signal == signal.SIGKILL
        assert gone(pid)
    finally:
        reap(pid)


# -- kto interrupted --------------------------------------------------------------------------
@pytest.fixture
def harmless_signals() -> Iterator[list[int]]:
    """SIGINT/SIGTERM handlers that only record, so a late signal cannot kill pytest."""
    got: list[int] = []
    old = {
        s: signal.signal(s, lambda n, _f: got.append(n)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    yield got
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_to_kto_interrupts_and_stops_the_guest(
    fake: Run, harmless_signals: list[int], signum: signal.Signals
) -> None:
    before = signal.getsignal(signum)
    session = fake.console(guest_console(), silent_after=6).start(
        Timeouts(boot=30, test=30, silence=30, poweroff=30)
    )
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signum))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(Interrupted) as exc:
            session.run()
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 5
    assert exc.value.exit_code == 3
    o = session.outcome
    assert o.killed == f"interrupted by {signum.name}"
    assert o.boot_ok and o.test_rc is None
    assert gone(fake.pid)
    assert signal.getsignal(signum) is before  # kto's handler is gone again
    assert harmless_signals == []
    v = judge(o, [])
    assert (v.status, v.reason) == (Status.ERROR, f"run interrupted by {signum.name}")


def test_signal_while_qemu_starts_still_stops_it_and_says_interrupted(
    fake: Run, harmless_signals: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop lands right after pexpect forked QEMU, before kto holds it (seen in a
    `kto matrix` stopped by Ctrl-C: the job said "QEMU exited before userspace", not
    "interrupted", and `--resume` kept it as a finished run)."""
    import pexpect

    real = pexpect.spawn
    started: list[int] = []

    def spawn_then_signal(*a: object, **kw: object) -> pexpect.spawn:
        child = real(*a, **kw)  # type: ignore[arg-type]
        started.append(child.pid)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before this returns
        return child

    monkeypatch.setattr(pexpect, "spawn", spawn_then_signal)
    session = fake.console(guest_console(), silent_after=6).start(
        Timeouts(boot=30, test=30, silence=30, poweroff=30)
    )
    with pytest.raises(Interrupted):
        session.run()
    assert session.outcome.killed == "interrupted by SIGTERM"
    (pid,) = started
    try:
        deadline = time.monotonic() + 5
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(pid), "the QEMU started as the signal came was left running"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        reap(pid)
    assert harmless_signals == []


# -- the status channel ------------------------------------------------------------------------
def status_run(fake: Run, console: bytes, status: str | None) -> tuple[ConsoleOutcome, Path]:
    path = fake.tmp / "status.log"
    extra: list[str] = []
    if status is not None:
        (fake.tmp / "status.replay").write_text(status)
        fake.mp.setenv("FAKEQEMU_STATUS_REPLAY", str(fake.tmp / "status.replay"))
        extra = ["-chardev", f"file,id=ktostatus,path={path}"]
    return fake.console(console).run(FAST, extra), path


STATUS_OK = f"{BOOT_OK}\n{TEST_START} boot\n{TEST_END} boot rc=0\n{POWEROFF}\n"


def test_status_channel_recovers_a_lost_console_marker(fake: Run) -> None:
    # kernel output interleaved with the test-end marker: the console line no longer matches
    mangled = guest_console().replace(f"{TEST_END} boot".encode(), b"<<KTO>> test-[ 1.5] rcu: x")
    o, path = status_run(fake, mangled, STATUS_OK)
    assert o.test_rc is None and judge(o, []).status is Status.ERROR
    status = read_status_channel(path)
    assert status == {"lines": 4, "test_rc": 0, "boot_ok": True, "poweroff": True}
    reconcile_status(o, status)
    assert o.test_rc == 0
    assert "disagrees_with_console" not in status
    assert judge(o, []).status is Status.PASS


def test_status_channel_wins_over_the_console(fake: Run) -> None:
    o, path = status_run(fake, guest_console(rc=0), STATUS_OK.replace("rc=0", "rc=1"))
    assert o.test_rc == 0
    status = read_status_channel(path)
    reconcile_status(o, status)
    assert o.test_rc == 1
    assert status is not None and status["disagrees_with_console"] == 0
    assert judge(o, []).status is Status.FAIL


def test_status_channel_agreeing_records_nothing(fake: Run) -> None:
    o, path = status_run(fake, guest_console(rc=0), STATUS_OK)
    status = read_status_channel(path)
    reconcile_status(o, status)
    assert o.test_rc == 0 and status is not None and "disagrees_with_console" not in status


def test_status_channel_never_written_changes_nothing(fake: Run) -> None:
    o, path = status_run(fake, guest_console(rc=2), "")  # QEMU made the file, the guest no line
    before = o.to_dict()
    status = read_status_channel(path)
    assert status == {"lines": 0, "test_rc": None, "boot_ok": False, "poweroff": False}
    reconcile_status(o, status)
    assert o.to_dict() == before


def test_no_status_file_is_none_and_changes_nothing(fake: Run) -> None:
    o, path = status_run(fake, guest_console(rc=2), None)
    before = o.to_dict()
    assert not path.exists()
    status = read_status_channel(path)
    assert status is None
    reconcile_status(o, status)
    assert o.to_dict() == before and o.test_rc == 2


# -- the verdict is known: a fatal finding ends the job early ----------------------------------
BUG_REPORT = b"""[   5.100] ------------[ cut here ]------------
[   5.101] kernel BUG at kernel/cpu.c:1130!
[   5.102] invalid opcode: 0000 [#1] PREEMPT SMP
[   5.103] CPU: 1 PID: 17 Comm: cpuhp/1 Not tainted 6.1.0 #1
[   5.104] RIP: 0010:takedown_cpu+0x1a/0x40
[   5.105] Call Trace:
[   5.106]  <TASK>
[   5.107]  cpuhp_invoke_callback+0x10/0x20
[   5.108]  cpuhp_thread_fun+0x11/0x30
[   5.109]  </TASK>
[   5.110] ---[ end trace 0000000000000000 ]---
"""


def _watched(fake: Run, data: bytes, grace: float, **env: object) -> tuple[ConsoleOutcome, list]:
    from orchestrator.job.fatal import FatalWatch
    from orchestrator.parser import ConsoleParser

    parser, watch = ConsoleParser(), FatalWatch(grace)
    findings: list = []

    def on_line(line: str) -> None:
        for f in parser.feed(line):
            findings.append(f)
            watch.feed(f.kind, f.title, f.panicked, time.monotonic())

    fake.console(data, **env)
    session = ConsoleSession(
        [*fake.argv],
        fake.outdir,
        Timeouts(boot=30, test=30, silence=30, poweroff=5),
        on_line=on_line,
        should_stop=watch.should_stop,
    )
    fake.session = session
    return session.run(), findings


def test_fatal_finding_on_a_stuck_guest_ends_the_job_early(fake: Run) -> None:
    head = guest_console().split(TEST_END.encode())[0]
    data = head + BUG_REPORT
    t0 = time.monotonic()
    o, findings = _watched(fake, data, grace=15, silent_after=len(data.splitlines()))
    took = time.monotonic() - t0
    assert [f.title for f in findings] == ["kernel BUG in takedown_cpu"]
    assert o.ended_early and "fatal finding: kernel BUG in takedown_cpu" in o.ended_early
    assert o.killed is None and o.sysrq_sent and o.sysrq_answered
    assert took < 15, f"took {took:.1f} s; the silence timeout was 30 s"
    assert gone(fake.pid)
    v = judge(o, [f.to_dict() for f in findings])
    assert v.status is Status.FAIL and "stopped" in v.reason


def test_a_warning_keeps_the_guest_running(fake: Run) -> None:
    warn = BUG_REPORT.replace(
        b"kernel BUG at kernel/cpu.c:1130!",
        b"WARNING: CPU: 1 PID: 17 at kernel/cpu.c:1130 takedown_cpu+0x1a/0x40",
    ).replace(b"invalid opcode: 0000 [#1] PREEMPT SMP\n", b"")
    head, tail = guest_console().split(TEST_END.encode())
    data = head + warn + b"more test output\n" + TEST_END.encode() + tail
    o, findings = _watched(fake, data, grace=15, delay=0.01)
    assert [f.kind for f in findings] == ["warning"]
    assert o.ended_early is None and o.test_rc == 0 and o.poweroff_marker


def flood_check(fake: Run, flood_lines: int, timeouts: Timeouts = FAST) -> ConsoleOutcome:
    """A guest that prints a WARNING, then floods 100-byte lines, then powers off: the
    1 MiB cap plus the 4 MiB tail on disk, every line parsed, the WARNING judged."""
    from orchestrator.parser import ConsoleParser

    fake.mp.setenv("KTO_CONSOLE_MAX_MB", "1")
    head, tail = guest_console().split(TEST_END.encode())
    warn = b"".join(
        b"[   9.000] " + ln + b"\n"
        for ln in (
            b"------------[ cut here ]------------",
            b"WARNING: CPU: 0 PID: 1 at kernel/fork.c:792 __mmdrop+0x1a/0x40",
            b"Modules linked in:",
            b"CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1",
            b"RIP: 0010:__mmdrop+0x1a/0x40",
            b"Call Trace:",
            b" <TASK>",
            b" finish_task_switch+0x10/0x20",
            b" </TASK>",
            b"---[ end trace 0000000000000000 ]---",
        )
    )
    data = head + warn
    data += TEST_END.encode() + tail
    parser = ConsoleParser()
    session = ConsoleSession([*fake.argv], fake.outdir, timeouts, on_line=parser.feed)
    fake.session = session
    fake.console(data, flood=f"{flood_lines},{'x' * 99}")
    o = session.run()
    parser.finish()
    size = (fake.outdir / CONSOLE).stat().st_size
    assert o.bytes > flood_lines * 100 and o.dropped_bytes > 0
    assert size < (1 << 20) + (4 << 20) + 4096, size  # the cap plus the kept tail
    log = fake.log()
    assert b"console.log capped at 1048576 bytes" in log
    assert log.endswith(b"reboot: Power down\n")  # the flood came just before the last line
    assert [f.title for f in parser.findings] == ["WARNING in __mmdrop"]
    assert o.test_rc == 0 and o.lines > flood_lines
    return o


def test_a_flooding_guest_fills_no_disk_and_is_still_judged(fake: Run) -> None:
    flood_check(fake, 60_000)  # ~6 MB after the warning; 1 GB: tests/faults


def test_a_rebooting_guest_is_an_error_not_a_loop(fake: Run) -> None:
    # QEMU runs with -no-reboot: a guest that reboots ends the job instead of looping.
    data = b"[    0.000] Linux version 6.1.0\n[    0.500] reboot: Restarting system\n"
    o = fake.console(data).run()
    assert o.rebooted and o.qemu_exit == 0 and o.test_rc is None
    v = judge(o, [])
    assert v.status is Status.ERROR and "rebooted" in v.reason
